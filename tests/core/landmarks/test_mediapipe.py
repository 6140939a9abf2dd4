"""MediaPipe FaceMesh -> iBUG 68 on the real clips (skipped without ../shared/data or mediapipe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.landmarks.mapping import (
    IBUG68_GROUPS,
    IBUG68_MIRROR,
    MEDIAPIPE_TO_IBUG68,
    ibug68_segments,
    mediapipe_to_ibug68,
)

CLIPS = ["interview_woman_25fps.mp4", "studio_woman_30fps.mp4"]


def test_mapping_table_is_well_formed() -> None:
    assert len(MEDIAPIPE_TO_IBUG68) == 68
    flat = [i for entry in MEDIAPIPE_TO_IBUG68 for i in entry]
    assert all(0 <= i < 468 for i in flat)  # mesh vertices only: the table works without iris points
    assert all(1 <= len(entry) <= 2 for entry in MEDIAPIPE_TO_IBUG68)
    assert sorted(i for a, b in IBUG68_GROUPS.values() for i in range(a, b)) == list(range(68))
    assert sorted(IBUG68_MIRROR) == list(range(68))
    assert all(IBUG68_MIRROR[IBUG68_MIRROR[i]] == i for i in range(68))
    assert len(ibug68_segments()) == 68 - 9 + 4  # polylines + 4 closing edges
    dense = np.arange(478 * 3, dtype=np.float32).reshape(478, 3)
    mapped = mediapipe_to_ibug68(np.stack([dense, dense + 1]))
    assert mapped.shape == (2, 68, 3)
    np.testing.assert_allclose(mapped[0, 8], dense[152])  # chin tip
    np.testing.assert_allclose(mapped[0, 3], (dense[132] + dense[58]) / 2)  # averaged pair
    with pytest.raises(ValueError):
        mediapipe_to_ibug68(np.zeros((68, 2)))


def check_face_layout(lmk: np.ndarray) -> None:
    """Anatomical order of the 68 points on an upright, roughly frontal face (image coordinates)."""
    jaw = lmk[0:17]
    assert jaw[:5, 0].max() < jaw[8, 0] < jaw[12:, 0].min()  # image left, over the chin, to the right
    assert np.all(np.diff(jaw[:9, 1]) > -3) and np.all(np.diff(jaw[8:, 1]) < 3)  # down to the chin, up again
    assert lmk[8, 1] == pytest.approx(lmk[:, 1].max(), abs=2)  # chin tip is the lowest point
    right_eye, left_eye = lmk[36:42].mean(0), lmk[42:48].mean(0)
    assert right_eye[0] < left_eye[0]  # subject's right eye is on the image's left
    brows_y = lmk[17:27, 1].mean()
    eyes_y = lmk[36:48, 1].mean()
    nose_tip_y = lmk[30, 1]
    mouth_y = lmk[48:68, 1].mean()
    assert brows_y < eyes_y < nose_tip_y < mouth_y < lmk[8, 1]
    assert lmk[27, 1] < lmk[28, 1] < lmk[29, 1] < lmk[30, 1]  # nose bridge runs downwards
    assert lmk[31, 0] < lmk[33, 0] < lmk[35, 0]
    assert lmk[36, 0] < lmk[39, 0] < lmk[42, 0] < lmk[45, 0]  # eye corners in order
    assert lmk[48, 0] < lmk[51, 0] < lmk[54, 0] and lmk[51, 1] < lmk[57, 1]
    assert lmk[62, 1] <= lmk[66, 1] + 1  # inner lips: top above bottom (or touching)
    # left/right consistency: in the face's own frame (x along the eye line, from the nose bridge),
    # points of the subject's right are left of the midline, their mirrors right of it, at similar
    # heights; midline points stay near it (robust to head roll and a moderately turned head)
    iod = float(np.linalg.norm(left_eye - right_eye))
    ex = (left_eye - right_eye) / iod
    ey = np.array([-ex[1], ex[0]])
    rel = lmk - lmk[27]
    u, v = rel @ ex / iod, rel @ ey / iod
    mirror = np.array(IBUG68_MIRROR)
    paired = mirror != np.arange(68)
    assert np.all(u[paired] * u[mirror[paired]] < 0)
    assert np.all(np.abs(v[paired] - v[mirror[paired]]) < 0.35)
    assert np.all(np.abs(u[~paired]) < 0.35)

@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_mediapipe_finds_the_face_in_real_clips(shared_data: Path, name: str) -> None:
    pytest.importorskip("mediapipe")
    from core.io.video import iter_frames
    from core.landmarks.detector import MediaPipeDetector
    from core.landmarks.track import detect_clip

    frames = list(iter_frames(shared_data / "real" / "clips" / name, max_frames=40))
    with MediaPipeDetector() as detector:
        track = detect_clip(frames, detector)
    assert track.detected.mean() >= 0.95
    assert float(np.median(track.confidence)) > 0.8
    assert track.lmk_dense is not None and track.lmk_dense.shape == (40, 478, 2)
    height, width = frames[0].shape[:2]
    assert np.all((track.lmk68 >= 0) & (track.lmk68 < [width, height]))
    for i in (0, 20, 39):
        check_face_layout(track.lmk68[i])
    # temporal stability: landmarks move little between consecutive frames of a talking head
    iod = np.linalg.norm(track.lmk68[:, 36:42].mean(1) - track.lmk68[:, 42:48].mean(1), axis=1).mean()
    jitter = np.linalg.norm(np.diff(track.lmk68, axis=0), axis=2).mean()
    assert jitter < 0.1 * iod


@pytest.mark.slow
def test_confidence_is_high_on_a_face_and_zero_without_one(shared_data: Path) -> None:
    pytest.importorskip("mediapipe")
    from core.io.video import iter_frames
    from core.landmarks.detector import MediaPipeDetector

    frame = next(iter_frames(shared_data / "real" / "clips" / CLIPS[1]))
    with MediaPipeDetector() as detector:
        full = detector.detect(frame)
        detector.reset()
        blank = detector.detect(np.full_like(frame, 90))
    assert full.found and full.confidence > 0.9
    assert not blank.found and blank.confidence == 0.0
