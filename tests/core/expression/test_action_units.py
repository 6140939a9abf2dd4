"""Speech-related action units from tracking: the named mapping, the landmark regressor that stands in for it on
models without named modes, and OpenFace's columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.expression.action_units import (
    JAW_FULL,
    SPEECH_AUS,
    action_units,
    au_report,
    landmark_action_units,
    named_action_units,
    openface_columns,
)
from core.morphable.data import FaceParams
from core.morphable.registry import load_model


@pytest.fixture(scope="module")
def procedural():
    return load_model("procedural")


def test_named_units_follow_their_modes_and_the_jaw(procedural) -> None:
    names = procedural.expr_names
    params = FaceParams.zeros(3, procedural.n_shape, procedural.n_expr)
    params.expression[0, names.index("smile_left")] = 0.6
    params.expression[0, names.index("smile_right")] = 0.6
    params.expression[1, names.index("blink_left")] = 1.0  # one eye: half a blink
    params.jaw_pose[2, 0] = JAW_FULL
    units = action_units(procedural, params)
    at = {au: units[:, k] for k, au in enumerate(SPEECH_AUS)}
    assert at["AU12"][0] == pytest.approx(3.0) and at["AU45"][1] == pytest.approx(2.5)
    assert at["AU26"][2] == pytest.approx(5.0) and at["AU25"][2] > 4.5  # the jaw parts the lips
    assert float(units[0].sum() - at["AU12"][0]) < 1e-5  # a smile is only AU12
    assert float(units[1].sum() - at["AU45"][1]) < 1e-5


def test_the_landmark_regressor_recovers_the_named_units_on_unseen_faces(procedural) -> None:
    generator = torch.Generator().manual_seed(11)  # not the fit's seed
    n = 300
    params = FaceParams.zeros(n, procedural.n_shape, procedural.n_expr)
    params.expression = torch.rand(n, procedural.n_expr, generator=generator) * (
        torch.rand(n, procedural.n_expr, generator=generator) < 0.25)
    params.shape = 0.8 * torch.randn(n, procedural.n_shape, generator=generator)
    params.jaw_pose[:, 0] = 0.3 * torch.rand(n, generator=generator)
    report = au_report(landmark_action_units(procedural, params).numpy(), named_action_units(procedural,
                                                                                            params).numpy())
    for au, figures in report.items():
        assert figures["r"] > 0.6, (au, figures)  # measured 0.65 (AU15) to 1.0
    assert np.mean([f["mae"] for f in report.values()]) < 0.6  # on the 0-5 scale


def test_openface_columns_are_found_by_name() -> None:
    header = ["frame", *(f" {au}_r" for au in reversed(SPEECH_AUS)), "AU01_r"]
    columns = openface_columns(header)
    assert [header[c].strip() for c in columns] == [f"{au}_r" for au in SPEECH_AUS]
    with pytest.raises(ValueError, match="AU45_r"):
        openface_columns(["AU10_r", "AU12_r"])
