"""Landmark distance (LMD) between two videos' iBUG-68 landmarks, and landmarks of a video file.

LMD (Chen et al. 2018, "Lip movements generation at a glance"; used by most dubbing papers) is the
mean Euclidean distance between corresponding landmarks of a generated and a reference video. Here:

    LMD = mean over valid frames f and points k of || p[f, k] - r[f, k] || / s[f]

with ``k`` over the mouth points 48-67 (``region="mouth"``, the lip-sync relevant part) or all 68
(``region="all"``). ``normalize`` picks ``s``:

* ``"none"`` — pixels (``s = 1``), as most papers report it (only comparable at the same resolution);
* ``"inter_ocular"`` — the reference frame's outer-eye-corner distance (points 36-45), so the value is
  a fraction of the face size and comparable across resolutions and shot sizes (0.01 ~ 1% of it).

No alignment (Procrustes) is applied: a dub is expected to keep the shot's framing, so a global shift
is a real error.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

REGIONS: dict[str, slice] = {"mouth": slice(48, 68), "all": slice(0, 68)}
EYE_OUTER_CORNERS: tuple[int, int] = (36, 45)


def _check_lmk(name: str, lmk: np.ndarray) -> np.ndarray:
    arr = np.asarray(lmk, np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (68, 2):
        raise ValueError(f"{name} must be (N, 68, 2) iBUG-68 landmarks, got {np.shape(lmk)}")
    return arr


def lmd_per_frame(pred_lmk: np.ndarray, ref_lmk: np.ndarray, region: str = "mouth",
                  normalize: str = "none") -> np.ndarray:
    """Per-frame LMD (see the module docstring).

    Args:
        pred_lmk: (N, 68, 2) landmarks of the generated video (pixels).
        ref_lmk: (N, 68, 2) landmarks of the reference video (pixels).
        region: ``"mouth"`` (points 48-67) or ``"all"``.
        normalize: ``"none"`` (pixels) or ``"inter_ocular"``.

    Returns:
        (N,) float64; NaN for frames where either input has NaN.
    """
    pred = _check_lmk("pred_lmk", pred_lmk)
    ref = _check_lmk("ref_lmk", ref_lmk)
    if pred.shape != ref.shape:
        raise ValueError(f"pred_lmk {pred.shape} and ref_lmk {ref.shape} differ; give the same frames "
                         "(truncate both to the shorter video)")
    if region not in REGIONS:
        raise ValueError(f"region must be one of {sorted(REGIONS)}, got {region!r}")
    sel = REGIONS[region]
    dist = np.linalg.norm(pred[:, sel] - ref[:, sel], axis=-1).mean(axis=1)
    if normalize == "none":
        return dist
    if normalize != "inter_ocular":
        raise ValueError(f"normalize must be 'none' or 'inter_ocular', got {normalize!r}")
    a, b = EYE_OUTER_CORNERS
    iod = np.linalg.norm(ref[:, a] - ref[:, b], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(iod > 1e-6, dist / np.where(iod > 1e-6, iod, 1.0), np.nan)


def lmd(pred_lmk: np.ndarray, ref_lmk: np.ndarray, region: str = "mouth", normalize: str = "none",
        valid: np.ndarray | None = None) -> float:
    """Mean LMD over the frames where both videos have landmarks (see :func:`lmd_per_frame`).

    Args:
        valid: optional (N,) bool, frames to use (e.g. ``detected`` of both tracks); frames with NaN are
            always skipped.

    Returns:
        The mean, or NaN when no frame is usable.
    """
    per_frame = lmd_per_frame(pred_lmk, ref_lmk, region, normalize)
    use = np.isfinite(per_frame)
    if valid is not None:
        valid = np.asarray(valid, bool).reshape(-1)
        if valid.shape != use.shape:
            raise ValueError(f"valid has {valid.size} entries for {use.size} frames")
        use &= valid
    return float(per_frame[use].mean()) if use.any() else float("nan")


def video_landmarks(path: str | Path, detector: Any = None, max_frames: int | None = None,
                    fps: float | None = None, min_confidence: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """iBUG-68 landmarks of every frame of a video, streamed (one frame in memory at a time).

    Args:
        path: the video.
        detector: a :class:`core.landmarks.detector.LandmarkDetector`; ``None`` makes a MediaPipe one
            (closed afterwards). A given detector is ``reset()`` first and left open.
        max_frames: stop after this many frames.
        fps: resample the video to this rate first (``None``: its own frames).
        min_confidence: detections below this confidence count as missing.

    Returns:
        ``(lmk68, valid)``: (N, 68, 2) float32 pixels (NaN where no face was found) and (N,) bool.
    """
    from core.io.video import iter_frames

    own = detector is None
    if own:
        from core.landmarks.detector import MediaPipeDetector

        detector = MediaPipeDetector()
    try:
        detector.reset()
        points, valid = detect_frames(iter_frames(path, fps=fps, max_frames=max_frames), detector, min_confidence)
    finally:
        if own:
            detector.close()
    return points, valid


def detect_frames(frames: Iterable[np.ndarray], detector: Any,
                  min_confidence: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Run ``detector`` over ``frames`` (consumed lazily; only landmarks are kept).

    Returns:
        ``(lmk68, valid)``: (N, 68, 2) float32 with NaN rows where no face reached ``min_confidence``,
        and (N,) bool.
    """
    rows: list[np.ndarray] = []
    valid: list[bool] = []
    nan = np.full((68, 2), np.nan, np.float32)
    for frame in frames:
        det = detector.detect(frame)
        ok = det.lmk68 is not None and det.confidence >= min_confidence
        rows.append(np.asarray(det.lmk68, np.float32) if ok else nan)
        valid.append(ok)
    if not rows:
        return np.zeros((0, 68, 2), np.float32), np.zeros(0, bool)
    return np.stack(rows), np.asarray(valid, bool)


def lmd_videos(pred_video: str | Path, ref_video: str | Path, detector: Any = None,
               max_frames: int | None = None, region: str = "mouth",
               normalize: str = "none") -> dict[str, Any]:
    """LMD between two videos' detected landmarks (frames compared up to the shorter video).

    Returns:
        ``{"lmd", "region", "normalize", "frames", "valid_frames", "frames_pred", "frames_ref"}``.
    """
    pred, pred_ok = video_landmarks(pred_video, detector, max_frames)
    ref, ref_ok = video_landmarks(ref_video, detector, max_frames)
    n = min(len(pred), len(ref))
    valid = pred_ok[:n] & ref_ok[:n]
    value = lmd(pred[:n], ref[:n], region, normalize, valid) if n else float("nan")
    return {"lmd": value, "region": region, "normalize": normalize, "frames": int(n),
            "valid_frames": int(valid.sum()), "frames_pred": int(len(pred)), "frames_ref": int(len(ref))}
