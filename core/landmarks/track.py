"""Landmarks of a whole clip: run a detector over the frames, fill the frames without a face.

Gap filling (:func:`fill_gaps`) keeps the arrays dense (every frame has 68 points) and says how each
frame got its points:

* ``detected`` — the detector found a face with confidence >= ``min_confidence``;
* ``interpolated`` — a gap of at most ``max_gap`` frames between two detected frames, filled by linear
  interpolation; a short gap at the start or end of the clip (nothing on one side) holds the
  nearest detected frame and also counts as interpolated;
* ``flagged`` — a longer gap (the face left the picture, a long occlusion): the nearest detected
  frame is held so arrays stay dense, but later stages must not trust these frames (tracking gives
  them no landmark weight; training skips them).

A clip where no frame has a face raises :class:`NoFaceError` with a clear message.

On disk (``landmarks.npz`` in a clip folder; see the workspace layout): ``lmk68`` (N, 68, 2) float32
pixels in ``video.mp4``'s frame, pixel centres at integer coordinates; ``confidence`` (N,) float32 (the
detector's, 0 where nothing was found); ``detected``, ``interpolated``, ``flagged`` (N,) bool;
``image_size`` (2,) int (width, height); ``detector`` (a string); optionally ``lmk_dense`` (N, K, 2)
float32 (MediaPipe's 478 points, gap-filled like ``lmk68``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .detector import LandmarkDetector


class NoFaceError(ValueError):
    """No usable face in any frame of a clip."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class LandmarkConfig:
    """Settings of :func:`detect_clip`.

    Attributes:
        max_gap: longest run of frames without a usable face that is interpolated (5 frames = 0.2 s
            at 25 fps: a blink of the detector, not the face leaving); longer runs are flagged.
        min_confidence: detections below this confidence count as missing.
        save_dense: keep the detector's dense points (MediaPipe: 478 per frame, 3.8 kB/frame).
    """

    max_gap: int = 5
    min_confidence: float = 0.3
    save_dense: bool = True


@dataclass
class LandmarkTrack:
    """Per-frame landmarks of one clip (arrays of length N = frames); see the module docstring."""

    lmk68: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    interpolated: np.ndarray
    flagged: np.ndarray
    image_size: tuple[int, int]
    detector: str = "unknown"
    lmk_dense: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.lmk68)
        self.lmk68 = np.asarray(self.lmk68, np.float32)
        if self.lmk68.shape != (n, 68, 2):
            raise ValueError(f"lmk68 must be (N, 68, 2), got {self.lmk68.shape}")
        self.confidence = np.asarray(self.confidence, np.float32)
        self.detected = np.asarray(self.detected, bool)
        self.interpolated = np.asarray(self.interpolated, bool)
        self.flagged = np.asarray(self.flagged, bool)
        for name in ("confidence", "detected", "interpolated", "flagged"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")
        if self.lmk_dense is not None:
            self.lmk_dense = np.asarray(self.lmk_dense, np.float32)
            if self.lmk_dense.ndim != 3 or self.lmk_dense.shape[0] != n or self.lmk_dense.shape[2] != 2:
                raise ValueError(f"lmk_dense must be (N, K, 2), got {self.lmk_dense.shape}")
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    def __len__(self) -> int:
        return int(self.lmk68.shape[0])

    @property
    def usable(self) -> np.ndarray:
        """(N,) bool: detected or interpolated (not flagged)."""
        return ~self.flagged

    def gaps(self) -> list[tuple[int, int, str]]:
        """Runs of frames that were not detected: ``(first, last, "interpolated" | "flagged")``."""
        runs: list[tuple[int, int, str]] = []
        missing = ~self.detected
        if not missing.any():
            return runs
        edges = np.flatnonzero(np.diff(np.r_[0, missing.astype(np.int8), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            runs.append((int(start), int(stop - 1), "flagged" if self.flagged[start] else "interpolated"))
        return runs

    def summary(self, fps: float | None = None, max_gaps: int = 20) -> dict[str, Any]:
        """Plain-JSON statistics (for the manifest, logs and reports)."""
        n = len(self)
        conf = self.confidence[self.detected]
        gaps = self.gaps()

        def span(first: int, last: int) -> str:
            if fps:
                return f"{first}-{last} ({first / fps:.2f}-{(last + 1) / fps:.2f} s)"
            return f"{first}-{last}"

        return {"frames": n, "detected": int(self.detected.sum()),
                "detection_rate": round(float(self.detected.mean()) if n else 0.0, 4),
                "interpolated": int(self.interpolated.sum()), "flagged": int(self.flagged.sum()),
                "mean_confidence": round(float(conf.mean()), 4) if conf.size else 0.0,
                "min_confidence": round(float(conf.min()), 4) if conf.size else 0.0,
                "gaps": [{"frames": span(a, b), "kind": kind} for a, b, kind in gaps[:max_gaps]],
                "gaps_total": len(gaps), "detector": self.detector}

    # -- storage -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``landmarks.npz`` atomically."""
        from core.workspace import atomic_save_npz

        arrays: dict[str, np.ndarray] = {
            "lmk68": self.lmk68, "confidence": self.confidence, "detected": self.detected,
            "interpolated": self.interpolated, "flagged": self.flagged,
            "image_size": np.array(self.image_size, np.int64), "detector": np.array(self.detector)}
        if self.lmk_dense is not None:
            arrays["lmk_dense"] = self.lmk_dense
        return atomic_save_npz(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> LandmarkTrack:
        with np.load(Path(path), allow_pickle=False) as data:
            size = data["image_size"] if "image_size" in data.files else np.array([0, 0])
            return cls(lmk68=data["lmk68"], confidence=data["confidence"], detected=data["detected"],
                       interpolated=data["interpolated"], flagged=data["flagged"],
                       image_size=(int(size[0]), int(size[1])),
                       detector=str(data["detector"]) if "detector" in data.files else "unknown",
                       lmk_dense=data["lmk_dense"] if "lmk_dense" in data.files else None)


def fill_gaps(values: np.ndarray, valid: np.ndarray,
              max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill the rows of ``values`` where ``valid`` is False (vectorised over frames).

    Args:
        values: (N, ...) array; rows where ``valid`` is False are ignored (may hold NaN).
        valid: (N,) bool, at least one True.
        max_gap: longest gap that is interpolated.

    Returns:
        ``(filled, interpolated, flagged)``: (N, ...) float32 without NaN in invalid rows, and two (N,)
        bool masks (see the module docstring).
    """
    values = np.asarray(values, np.float32)
    valid = np.asarray(valid, bool)
    n = len(valid)
    if not valid.any():
        raise ValueError("no valid frame to fill from")
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(valid, idx, -1))
    nxt = np.minimum.accumulate(np.where(valid, idx, n)[::-1])[::-1]
    missing = ~valid
    gap_len = nxt - prev - 1  # length of the run each missing frame belongs to (sentinels make edges work)
    interior = (prev >= 0) & (nxt < n)
    short = missing & (gap_len <= max_gap)
    # nearest valid neighbour (ties go to the earlier frame); edges have only one side
    use_prev = (prev >= 0) & ((nxt >= n) | (idx - prev <= nxt - idx))
    nearest = np.where(use_prev, prev, nxt)
    filled = values.copy()
    hold = missing & ~(short & interior)
    filled[hold] = values[nearest[hold]]
    lerp = missing & short & interior
    if lerp.any():
        p, q = prev[lerp], nxt[lerp]
        t = ((idx[lerp] - p) / (q - p)).astype(np.float32).reshape(-1, *([1] * (values.ndim - 1)))
        filled[lerp] = (1.0 - t) * values[p] + t * values[q]
    return filled, short, missing & ~short


def detect_clip(frames: Iterable[np.ndarray], detector: LandmarkDetector,
                config: LandmarkConfig | None = None, *, progress: Callable[[int], None] | None = None,
                reset: bool = True) -> LandmarkTrack:
    """Detect landmarks on every frame of a clip and fill the gaps.

    Args:
        frames: the clip's frames in order ((H, W, 3) uint8), e.g. :func:`core.io.video.iter_frames`;
            consumed lazily (only the landmarks are kept).
        detector: a :class:`~core.landmarks.detector.LandmarkDetector`.
        config: gap and confidence settings.
        progress: called with the number of frames done after each frame (may raise to cancel).
        reset: call ``detector.reset()`` first (a new clip).

    Raises:
        NoFaceError: no frame has a face with confidence >= ``min_confidence``.
        ValueError: no frames.
    """
    config = config or LandmarkConfig()
    builder = TrackBuilder(detector, config, reset=reset)
    for i, frame in enumerate(frames, 1):
        builder.add(frame)
        if progress is not None:
            progress(i)
    return builder.finish()


class TrackBuilder:
    """Incremental :func:`detect_clip`: :meth:`add` frames as they stream past, then :meth:`finish`.

    Lets ingest decode a video once and feed each frame to both the encoder and the detector.
    """

    def __init__(self, detector: LandmarkDetector, config: LandmarkConfig | None = None, *,
                 reset: bool = True) -> None:
        self.detector = detector
        self.config = config or LandmarkConfig()
        if reset:
            detector.reset()
        self._lmk: list[np.ndarray] = []
        self._dense: list[np.ndarray | None] = []
        self._conf: list[float] = []
        self.image_size: tuple[int, int] | None = None

    def add(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        if self.image_size is None:
            self.image_size = (width, height)
        elif self.image_size != (width, height):
            raise ValueError(f"frame {len(self._lmk)} is {width}x{height}, earlier frames were "
                             f"{self.image_size[0]}x{self.image_size[1]}")
        det = self.detector.detect(frame)
        if det.lmk68 is None:
            self._lmk.append(np.full((68, 2), np.nan, np.float32))
            self._conf.append(0.0)
        else:
            self._lmk.append(np.asarray(det.lmk68, np.float32))
            self._conf.append(float(det.confidence))
        self._dense.append(det.lmk_dense if self.config.save_dense else None)

    def __len__(self) -> int:
        return len(self._lmk)

    def finish(self) -> LandmarkTrack:
        return build_track(self._lmk, self._conf, self._dense, self.image_size or (0, 0), self.config,
                           getattr(self.detector, "name", type(self.detector).__name__))


def build_track(lmk_rows: list[np.ndarray], conf_rows: list[float], dense_rows: list[np.ndarray | None],
                image_size: tuple[int, int], config: LandmarkConfig, detector: str) -> LandmarkTrack:
    """A gap-filled :class:`LandmarkTrack` from per-frame rows (NaN landmarks where no face was found).

    Raises:
        NoFaceError: no row has a face with confidence >= ``config.min_confidence``.
    """
    n = len(lmk_rows)
    if n == 0:
        raise ValueError("the clip has no frames")
    lmk = np.stack(lmk_rows)
    conf = np.asarray(conf_rows, np.float32)
    found = np.all(np.isfinite(lmk), axis=(1, 2))
    detected = found & (conf >= config.min_confidence)
    if not detected.any():
        if found.any():
            raise NoFaceError(
                f"a face was found in {int(found.sum())} of {n} frames, but never with confidence >= "
                f"{config.min_confidence} (best {conf.max():.2f})",
                hint="the face may be mostly outside the picture, very small or turned away; use footage "
                     "with the face fully visible")
        raise NoFaceError(f"no face found in any of the {n} frames",
                          hint="check that the video shows a face (frontal to three-quarter view, not "
                               "tiny); for a wide shot, crop the video around the face first")
    filled, interpolated, flagged = fill_gaps(lmk, detected, config.max_gap)
    dense = None
    sizes = {d.shape for d in dense_rows if d is not None}
    if config.save_dense and len(sizes) == 1:
        shape = sizes.pop()
        missing = np.full(shape, np.nan, np.float32)
        stack = np.stack([d if d is not None else missing for d in dense_rows])
        dense_ok = detected & np.all(np.isfinite(stack), axis=(1, 2))
        if dense_ok.any():
            dense = fill_gaps(stack, dense_ok, config.max_gap)[0]
    return LandmarkTrack(lmk68=filled, confidence=conf, detected=detected, interpolated=interpolated,
                         flagged=flagged, image_size=image_size, detector=detector, lmk_dense=dense)
