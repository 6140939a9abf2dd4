"""The landmarks stage of a clip or shot folder: ``landmarks.npz`` + ``crop.json`` from ``video.mp4``.

Used by the ``landmarks`` job kind (on an ingested clip) and by ingest (which feeds frames to a
:class:`~core.landmarks.track.TrackBuilder` while it encodes, then calls :func:`save_stage`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from .crop import CropConfig, CropTransform, stable_crop
from .detector import LandmarkDetector
from .track import LandmarkConfig, LandmarkTrack, TrackBuilder

LANDMARKS_FILE = "landmarks.npz"
CROP_FILE = "crop.json"


class Reporter(Protocol):
    """What long operations report to (a :class:`core.jobs.context.JobContext` is one)."""

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def check_cancelled(self) -> None: ...


class NullReporter:
    """Reports nowhere, never cancels."""

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass

    def check_cancelled(self) -> None:
        pass


class ThrottledProgress:
    """Per-frame progress that checks for cancellation every frame but emits at most ``rate`` events
    per second (plus the first and the last), so a fast decode does not flood the event stream."""

    def __init__(self, reporter: Reporter, stage: str, total: int, rate: float = 10.0) -> None:
        import time

        self._time = time.monotonic
        self.reporter, self.stage, self.total = reporter, stage, int(total)
        self._interval = 1.0 / rate
        self._last = -1e9
        self.done = 0

    def __call__(self, done: int, message: str = "") -> None:
        self.done = done
        now = self._time()
        if now - self._last >= self._interval:
            self._last = now
            self.reporter.progress(self.stage, done, max(self.total, done), message)
        else:
            self.reporter.check_cancelled()

    def finish(self, message: str = "") -> None:
        self.reporter.progress(self.stage, self.done, self.done, message)


def track_warnings(track: LandmarkTrack, fps: float | None = None) -> list[str]:
    """Sentences for a person about the frames without a usable face."""
    warnings: list[str] = []
    n = len(track)
    flagged = [g for g in track.gaps() if g[2] == "flagged"]
    if flagged:
        spans = ", ".join(f"{a}-{b}" + (f" ({a / fps:.2f}-{(b + 1) / fps:.2f} s)" if fps else "")
                          for a, b, _ in flagged[:8])
        more = f" and {len(flagged) - 8} more" if len(flagged) > 8 else ""
        warnings.append(f"no usable face in {int(track.flagged.sum())} of {n} frames (frames {spans}{more}): "
                        "they are flagged and will not be used for tracking or training")
    interpolated = int(track.interpolated.sum())
    if interpolated:
        warnings.append(f"{interpolated} frames in short detection gaps were interpolated")
    rate = float(track.detected.mean()) if n else 0.0
    if rate < 0.5:
        warnings.append(f"a face was detected in only {rate:.0%} of the frames; check the footage "
                        "(face visible, not too small, not turned away)")
    return warnings


def save_stage(folder: Path, track: LandmarkTrack, crop_config: CropConfig,
               landmark_config: LandmarkConfig | None = None) -> tuple[CropTransform, dict[str, Any]]:
    """Compute the stable crop of ``track`` and write ``landmarks.npz`` and ``crop.json`` (atomically).

    Returns:
        ``(crop, files)`` with ``files`` the written paths by role.
    """
    crop = stable_crop(track.lmk68, track.image_size, crop_config, usable=~track.flagged)
    track.save(folder / LANDMARKS_FILE)
    crop.save(folder / CROP_FILE, config=asdict(crop_config),
              frames_used=int((~track.flagged).sum()),
              landmark_config=asdict(landmark_config) if landmark_config else None)
    return crop, {"landmarks": folder / LANDMARKS_FILE, "crop": folder / CROP_FILE}


def run_stage(folder: Path, video: Path, detector: LandmarkDetector, *,
              landmark_config: LandmarkConfig | None = None, crop_config: CropConfig | None = None,
              reporter: Reporter | None = None, total: int = 0) -> tuple[LandmarkTrack, CropTransform]:
    """Detect landmarks on every frame of ``video`` and write the stage's files into ``folder``.

    Raises:
        NoFaceError: no frame has a face.
    """
    from core.io.video import iter_frames

    reporter = reporter or NullReporter()
    builder = TrackBuilder(detector, landmark_config)
    tick = ThrottledProgress(reporter, "landmarks", total)
    frames = iter_frames(video)
    try:
        for i, frame in enumerate(frames, 1):
            builder.add(frame)
            tick(i)
    finally:
        frames.close()  # stops ffmpeg at once when cancelled midway
    tick.finish()
    track = builder.finish()
    crop, _ = save_stage(folder, track, crop_config or CropConfig(), builder.config)
    return track, crop

