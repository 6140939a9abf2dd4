"""LMD on hand-made landmarks, and landmarks of a video file (ground-truth replay and MediaPipe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.eval.landmark_metrics import lmd, lmd_per_frame, lmd_videos, video_landmarks


def face(n: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lmk = rng.uniform(100, 300, size=(n, 68, 2))
    lmk[:, 36] = [150, 150]
    lmk[:, 45] = [250, 150]  # inter-ocular distance 100 px
    return lmk


def test_mouth_shift_gives_its_length() -> None:
    ref = face()
    pred = ref.copy()
    pred[:, 48:68] += [3.0, 4.0]  # every mouth point moved 5 px
    assert lmd(pred, ref) == pytest.approx(5.0)
    assert lmd(pred, ref, region="all") == pytest.approx(5.0 * 20 / 68)
    assert lmd(pred, ref, normalize="inter_ocular") == pytest.approx(0.05)
    assert lmd(ref, ref) == 0.0


def test_only_the_mouth_counts_for_the_mouth_region() -> None:
    ref = face()
    pred = ref.copy()
    pred[:, :48] += 10.0
    assert lmd(pred, ref, region="mouth") == 0.0
    assert lmd(pred, ref, region="all") > 0


def test_per_frame_values_nan_frames_and_valid_mask() -> None:
    ref = face(3)
    pred = ref.copy()
    pred[0, 48:68, 0] += 2.0
    pred[1, 48:68, 1] += 6.0
    pred[2] = np.nan
    per_frame = lmd_per_frame(pred, ref)
    np.testing.assert_allclose(per_frame[:2], [2.0, 6.0])
    assert np.isnan(per_frame[2])
    assert lmd(pred, ref) == pytest.approx(4.0)  # the NaN frame is skipped
    assert lmd(pred, ref, valid=np.array([False, True, True])) == pytest.approx(6.0)
    assert np.isnan(lmd(pred, ref, valid=np.zeros(3, bool)))


def test_inter_ocular_normalisation_uses_the_reference_per_frame() -> None:
    ref = face(2)
    ref[1] *= 2.0  # the second frame is a twice-larger face (inter-ocular 200 px)
    pred = ref.copy()
    pred[:, 48:68, 0] += 10.0
    np.testing.assert_allclose(lmd_per_frame(pred, ref, normalize="inter_ocular"), [0.1, 0.05])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        lmd(face(3), face(4))
    with pytest.raises(ValueError, match="68"):
        lmd(np.zeros((2, 20, 2)), np.zeros((2, 20, 2)))
    with pytest.raises(ValueError, match="region"):
        lmd(face(), face(), region="eyes")
    with pytest.raises(ValueError, match="normalize"):
        lmd(face(), face(), normalize="bbox")


def write_clip(path: Path, n: int, size: int = 32) -> Path:
    from core.io.video import write_video

    frames = np.random.default_rng(0).integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)
    return write_video(path, frames, fps=25)


def test_video_landmarks_streams_a_detector(tmp_path: Path) -> None:
    from core.landmarks.detector import GroundTruthDetector

    truth = face(6).astype(np.float32)
    truth[2] = np.nan  # no face in frame 2
    video = write_clip(tmp_path / "v.mp4", 6)
    points, valid = video_landmarks(video, GroundTruthDetector(truth))
    assert points.shape == (6, 68, 2) and valid.tolist() == [True, True, False, True, True, True]
    np.testing.assert_allclose(points[valid], truth[valid])
    assert np.isnan(points[2]).all()
    points, valid = video_landmarks(video, GroundTruthDetector(truth), max_frames=3)
    assert len(points) == 3
    # the detector is reset per video, so two replays of the same truth score exactly 0
    result = lmd_videos(video, video, GroundTruthDetector(truth))
    assert result["lmd"] == 0.0 and result["frames"] == 6 and result["valid_frames"] == 5
    noisy, _ = video_landmarks(video, GroundTruthDetector(truth, noise_px=1.0, seed=3))
    clean, ok = video_landmarks(video, GroundTruthDetector(truth))
    # isotropic 1 px Gaussian noise: mean point distance = sqrt(pi / 2) px (Rayleigh mean), 100 samples
    assert lmd(noisy, clean, valid=ok) == pytest.approx(np.sqrt(np.pi / 2), abs=0.2)


@pytest.mark.slow
def test_mediapipe_landmarks_of_a_real_clip_match_themselves(shared_data: Path) -> None:
    pytest.importorskip("mediapipe")
    clip = shared_data / "real" / "clips" / "interview_woman_25fps.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} is not present")
    points, valid = video_landmarks(clip, max_frames=8)
    assert points.shape == (8, 68, 2) and valid.all()
    # the face fills a good part of the 512 px frame and the mouth is below the eyes
    assert 60 < np.linalg.norm(points[:, 36] - points[:, 45], axis=-1).mean() < 400
    assert points[:, 48:68, 1].mean() > points[:, 36:48, 1].mean()
    result = lmd_videos(clip, clip, max_frames=8)  # detection is deterministic: the same video scores 0
    assert result["lmd"] == 0.0 and result["valid_frames"] == 8
    assert lmd(points, points, region="all") == 0.0
