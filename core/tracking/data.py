"""The inputs of tracking, in crop space: target landmarks with their weights, and the frames.

Landmarks come from ``landmarks.npz`` (full-frame pixels, pixel centres at integers) and are mapped into
the square crop of ``crop.json``; the tracker's camera convention puts pixel centres at +0.5, so the
targets are shifted by half a pixel (the rendered crop then lines up with ``crop.crop_image``).

Frames are decoded once, cropped and resized, and kept in the folder's one crop cache
``cache/crops_<S>.npy`` (uint8, memory-mapped: bounded memory for long clips; :func:`crop_frames`), which
the tracker's photometric stages, the renderers and the dub all read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.landmarks.crop import CropTransform, resize_image
from core.landmarks.track import LandmarkTrack
from core.tracking.config import MEDIAPIPE_LANDMARK_WEIGHTS, LandmarkWeights, TrackerConfig


@dataclass
class ClipTargets:
    """Per-frame targets of one clip in crop space.

    Attributes:
        landmarks: (N, 68, 2) float32 crop pixels, camera convention (centres at +0.5).
        frame_weight: (N,) float32: 1 detected, ``interpolated_weight`` interpolated, 0 flagged.
        landmark_weights: (68,) float32 group weights.
        flagged: (N,) bool frames the landmark stage flagged.
        crop: the crop transform.
        image_size: (width, height) of the video frames.
        detector: which detector made the landmarks.
        frames: optional (N, S, S, 3) uint8 crop frames at the photometric size (memory-mapped).
    """

    landmarks: np.ndarray
    frame_weight: np.ndarray
    landmark_weights: np.ndarray
    flagged: np.ndarray
    crop: CropTransform
    image_size: tuple[int, int]
    detector: str = "unknown"
    frames: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def crop_size(self) -> int:
        return int(self.crop.out_size)

    @property
    def usable(self) -> np.ndarray:
        return self.frame_weight > 0

    def keyframes(self, count: int) -> np.ndarray:
        """``count`` frame indices spread evenly over the usable frames (all of them if fewer)."""
        usable = np.flatnonzero(self.usable)
        if len(usable) == 0:
            usable = np.arange(self.n_frames)
        if len(usable) <= count:
            return usable
        picks = np.round(np.linspace(0, len(usable) - 1, count)).astype(np.int64)
        return usable[np.unique(picks)]

    def landmark_tensors(self, index: np.ndarray, device: torch.device | str,
                         dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 68, 2) targets, (B, 68) landmark weights and (B,) frame weights of frames ``index``."""
        lmk = torch.as_tensor(self.landmarks[index], device=device, dtype=dtype)
        fw = torch.as_tensor(self.frame_weight[index], device=device, dtype=dtype)
        lw = torch.as_tensor(self.landmark_weights, device=device, dtype=dtype)
        return lmk, fw[:, None] * lw[None], fw

    def image_tensor(self, index: np.ndarray, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """(B, S, S, 3) float frames in [0, 1]."""
        if self.frames is None:
            raise ValueError("this clip has no frames loaded (no video, or frames were not requested)")
        array = np.asarray(self.frames[index])
        return torch.as_tensor(array, device=device).to(dtype) / 255.0


def landmark_weights_for(config: TrackerConfig, detector: str) -> LandmarkWeights:
    if config.landmark_weights is not None:
        return config.landmark_weights
    return MEDIAPIPE_LANDMARK_WEIGHTS if detector == "mediapipe" else LandmarkWeights()


def load_targets(folder: Path, config: TrackerConfig) -> ClipTargets:
    """Landmark targets of a clip/shot folder (``landmarks.npz`` + ``crop.json``).

    Raises:
        FileNotFoundError: a file is missing (the message says which stage makes it).
    """
    lmk_path, crop_path = folder / "landmarks.npz", folder / "crop.json"
    for path in (lmk_path, crop_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the landmarks stage first "
                                    f"(emodub landmarks, or ingest with landmarks on)")
    track = LandmarkTrack.load(lmk_path)
    crop = CropTransform.load(crop_path)
    return targets_from_track(track, crop, config)


def targets_from_track(track: LandmarkTrack, crop: CropTransform, config: TrackerConfig) -> ClipTargets:
    """:class:`ClipTargets` from a landmark track and its crop."""
    lmk = crop.to_crop(track.lmk68).astype(np.float32) + 0.5
    weight = np.where(track.interpolated, config.interpolated_weight, 1.0).astype(np.float32)
    weight[track.flagged] = 0.0
    weight[~np.all(np.isfinite(lmk), axis=(1, 2))] = 0.0
    lmk = np.nan_to_num(lmk, nan=crop.out_size / 2.0)
    weights = np.asarray(landmark_weights_for(config, track.detector).vector(), np.float32)
    return ClipTargets(landmarks=lmk, frame_weight=weight, landmark_weights=weights, flagged=track.flagged.copy(),
                       crop=crop, image_size=track.image_size, detector=track.detector)


CACHE_DIR = "cache"  # <folder>/cache/crops_<S>.npy (+ .json fingerprint): the folder's one crop cache


def _cache_fingerprint(video: Path, crop: CropTransform, size: int, n_frames: int) -> dict[str, Any]:
    """What the cached crops were made from: a changed video, crop or length makes the cache stale."""
    stat = video.stat()
    return {"video_bytes": stat.st_size, "video_mtime_ns": stat.st_mtime_ns, "crop": crop.to_json(),
            "size": int(size), "frames": int(n_frames)}


def crop_frames(folder: Path, crop: CropTransform, size: int, n_frames: int, reporter: Any = None,
                video: Path | None = None) -> np.ndarray:
    """(N, size, size, 3) uint8 square crops of ``folder/video.mp4``: the one crop cache of a clip or shot.

    Decoded once, streamed into ``<folder>/cache/crops_<size>.npy`` (bounded memory for any length), then
    memory-mapped. The cache records what it was made from (:func:`_cache_fingerprint`) and is rebuilt when
    the video, the crop or the frame count changed. Frames beyond the video's end repeat its last frame (the
    landmark track and the video can differ by a frame at the end).
    """
    import json

    from core.io.video import iter_frames
    from core.workspace import atomic_path, atomic_write_json

    video = video or folder / "video.mp4"
    cache_dir = folder / CACHE_DIR
    cache, stamp = cache_dir / f"crops_{size}.npy", cache_dir / f"crops_{size}.json"
    fingerprint = _cache_fingerprint(video, crop, size, n_frames)
    if cache.is_file() and stamp.is_file():
        try:
            fresh = json.loads(stamp.read_text()) == fingerprint
        except (OSError, ValueError):
            fresh = False
        if fresh:
            array = np.load(cache, mmap_mode="r")
            if array.shape == (n_frames, size, size, 3):
                return array
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)  # a crash while rebuilding must not leave a fingerprint of the old cache
    with atomic_path(cache) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n_frames, size, size, 3))
        count = 0
        frames = iter_frames(video)
        try:
            for i, frame in enumerate(frames):
                if i >= n_frames:
                    break
                img = crop.crop_image(frame)
                out[i] = img if img.shape[0] == size else resize_image(img, size, size)
                count = i + 1
                if reporter is not None and (i % 25 == 0 or i == n_frames - 1):
                    reporter.progress("decode", count, n_frames)
        finally:
            frames.close()
        if count == 0:
            raise ValueError(f"{video} has no frames")
        if count < n_frames:
            out[count:] = out[count - 1]
        out.flush()
        del out
    atomic_write_json(stamp, fingerprint)
    return np.load(cache, mmap_mode="r")
