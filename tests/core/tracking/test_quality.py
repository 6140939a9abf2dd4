"""The quality record's blink measures on hand-made landmarks."""

from __future__ import annotations

import numpy as np

from core.eval.lipsync import pair_gaps
from core.tracking.geometry import EYELID_PAIRS
from core.tracking.quality import lid_and_lip_following


def _landmarks(gaps: np.ndarray) -> np.ndarray:
    """(N, 68, 2) landmarks whose four lid pairs are ``gaps`` pixels apart (vertically)."""
    lmk = np.zeros((len(gaps), 68, 2), np.float32)
    for upper, lower in EYELID_PAIRS:
        lmk[:, upper, 0] = lmk[:, lower, 0] = float(upper)
        lmk[:, lower, 1] = gaps
    return lmk


def test_blink_closure_is_the_share_of_the_targets_closing() -> None:
    target = np.full(20, 8.0)
    target[9:12] = [4.0, 1.0, 4.0]  # a three-frame blink
    half = 8.0 - (8.0 - target) / 2  # the tracked lids close half as far
    np.testing.assert_allclose(pair_gaps(_landmarks(target), EYELID_PAIRS), target, rtol=1e-6)
    usable = np.ones(20, bool)
    record = lid_and_lip_following(_landmarks(half), _landmarks(target), usable)
    assert record["blink_frames"] == 3
    assert abs(record["blink_closure"] - 0.5) < 1e-3
    assert record["eyelid_gap_corr"] > 0.999
    followed = lid_and_lip_following(_landmarks(target), _landmarks(target), usable)
    assert abs(followed["blink_closure"] - 1.0) < 1e-3
    # the blink frames are not usable: no blink to measure, and constant gaps have no correlation
    usable[9:12] = False
    record = lid_and_lip_following(_landmarks(half), _landmarks(target), usable)
    assert record == {"eyelid_gap_corr": None, "blink_frames": 0, "blink_closure": None, "lip_gap_corr": None}
