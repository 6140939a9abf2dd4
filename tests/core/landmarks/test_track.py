"""Landmark tracks: gap filling, the ground-truth detector, storage, no-face errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.landmarks.detector import Detection, GroundTruthDetector
from core.landmarks.track import LandmarkConfig, LandmarkTrack, NoFaceError, detect_clip, fill_gaps


def moving_face(n: int, seed: int = 0) -> np.ndarray:
    """(n, 68, 2) landmarks of a template face translating linearly (so linear interpolation is exact)."""
    rng = np.random.default_rng(seed)
    template = rng.uniform(80, 180, size=(68, 2)).astype(np.float32)
    shift = np.stack([np.linspace(0, 60, n), np.linspace(0, -20, n)], axis=1).astype(np.float32)
    return template[None] + shift[:, None]


def blank_frames(n: int) -> list[np.ndarray]:
    return [np.zeros((240, 320, 3), np.uint8)] * n


def test_fill_gaps_interpolates_short_and_flags_long_gaps() -> None:
    n = 40
    truth = moving_face(n)
    valid = np.ones(n, bool)
    valid[[0, 1]] = False          # short gap at the start: held, counted as interpolated
    valid[10:13] = False           # short interior gap (3 <= 5): linear
    valid[20:30] = False           # long gap (10 > 5): held, flagged
    valid[38:] = False             # short gap at the end
    values = truth.copy()
    values[~valid] = np.nan
    filled, interp, flagged = fill_gaps(values, valid, max_gap=5)
    assert np.all(np.isfinite(filled))
    np.testing.assert_allclose(filled[10:13], truth[10:13], atol=1e-4)  # linear motion: exact
    np.testing.assert_array_equal(filled[:2], truth[[2, 2]])
    np.testing.assert_array_equal(filled[38:], truth[[37, 37]])
    # long gap: first half holds frame 19, second half frame 30 (nearest valid neighbour)
    np.testing.assert_array_equal(filled[20:25], np.repeat(truth[19:20], 5, axis=0))
    np.testing.assert_array_equal(filled[25:30], np.repeat(truth[30:31], 5, axis=0))
    assert np.flatnonzero(interp).tolist() == [0, 1, 10, 11, 12, 38, 39]
    assert np.flatnonzero(flagged).tolist() == list(range(20, 30))
    np.testing.assert_array_equal(filled[valid], truth[valid])
    # a gap of exactly max_gap is interpolated, one more is flagged
    v2 = np.ones(20, bool)
    v2[5:10] = False
    v2[12:18] = False
    _, i2, f2 = fill_gaps(truth[:20], v2, max_gap=5)
    assert i2[5:10].all() and f2[12:18].all() and not f2[5:10].any()


def test_detect_clip_with_ground_truth_and_noise() -> None:
    n = 30
    truth = moving_face(n)
    lmk = truth.copy()
    lmk[5:7] = np.nan    # the face is missing in frames 5-6 -> interpolated
    lmk[12:22] = np.nan  # and in 12-21 -> flagged
    detector = GroundTruthDetector(lmk, noise_px=0.0)
    done: list[int] = []
    track = detect_clip(blank_frames(n), detector, LandmarkConfig(max_gap=5), progress=done.append)
    assert done == list(range(1, n + 1))
    assert track.image_size == (320, 240) and track.detector == "ground_truth"
    assert track.detected.sum() == n - 12
    assert np.flatnonzero(track.interpolated).tolist() == [5, 6]
    assert np.flatnonzero(track.flagged).tolist() == list(range(12, 22))
    np.testing.assert_allclose(track.lmk68[5:7], truth[5:7], atol=1e-4)
    assert track.gaps() == [(5, 6, "interpolated"), (12, 21, "flagged")]
    summary = track.summary(fps=25)
    assert summary["flagged"] == 10 and summary["gaps"][1]["frames"] == "12-21 (0.48-0.88 s)"

    noisy = detect_clip(blank_frames(n), GroundTruthDetector(truth, noise_px=2.0, seed=3))
    err = (noisy.lmk68 - truth).ravel()
    assert abs(err.std() - 2.0) < 0.15 and abs(err.mean()) < 0.1
    again = detect_clip(blank_frames(n), GroundTruthDetector(truth, noise_px=2.0, seed=3))
    np.testing.assert_array_equal(noisy.lmk68, again.lmk68)  # seeded


def test_low_confidence_detections_count_as_missing() -> None:
    class Flaky:
        name = "flaky"
        dense_points = 0

        def __init__(self) -> None:
            self.i = 0
            self.truth = moving_face(12)

        def reset(self) -> None:
            self.i = 0

        def close(self) -> None:
            pass

        def detect(self, frame: np.ndarray) -> Detection:
            i, self.i = self.i, self.i + 1
            return Detection(self.truth[i] + (50 if i == 4 else 0), 0.1 if i == 4 else 0.9)

    track = detect_clip(blank_frames(12), Flaky(), LandmarkConfig(min_confidence=0.3))
    assert not track.detected[4] and track.interpolated[4]
    assert track.confidence[4] == pytest.approx(0.1)
    np.testing.assert_allclose(track.lmk68[4], moving_face(12)[4], atol=1e-4)  # the outlier was replaced


def test_no_face_at_all_is_a_clear_error() -> None:
    lmk = np.full((8, 68, 2), np.nan, np.float32)
    with pytest.raises(NoFaceError) as err:
        detect_clip(blank_frames(8), GroundTruthDetector(lmk))
    assert "no face found in any of the 8 frames" in err.value.message and err.value.hint
    weak = GroundTruthDetector(moving_face(8), confidence=0.1)
    with pytest.raises(NoFaceError) as err:
        detect_clip(blank_frames(8), weak)
    assert "never with confidence" in err.value.message
    with pytest.raises(ValueError):
        detect_clip([], GroundTruthDetector(moving_face(3)))


def test_ground_truth_detector_validates() -> None:
    with pytest.raises(ValueError):
        GroundTruthDetector(np.zeros((5, 10, 2)))
    det = GroundTruthDetector(moving_face(2))
    det.detect(blank_frames(1)[0])
    det.detect(blank_frames(1)[0])
    with pytest.raises(IndexError):
        det.detect(blank_frames(1)[0])


def test_track_save_load_roundtrip(tmp_path: Path) -> None:
    n = 10
    dense = np.random.default_rng(1).uniform(0, 100, (n, 478, 2)).astype(np.float32)
    lmk = moving_face(n)
    lmk[3] = np.nan
    track = detect_clip(blank_frames(n), GroundTruthDetector(lmk, dense=dense))
    assert track.lmk_dense is not None and track.lmk_dense.shape == (n, 478, 2)
    assert np.all(np.isfinite(track.lmk_dense))
    path = track.save(tmp_path / "landmarks.npz")
    loaded = LandmarkTrack.load(path)
    for name in ("lmk68", "confidence", "detected", "interpolated", "flagged", "lmk_dense"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(track, name))
    assert loaded.image_size == track.image_size and loaded.detector == "ground_truth"
    with np.load(path) as data:  # the shared layout's names and dtypes
        assert data["lmk68"].dtype == np.float32 and data["detected"].dtype == bool
        assert {"lmk68", "confidence", "detected", "interpolated", "flagged"} <= set(data.files)
