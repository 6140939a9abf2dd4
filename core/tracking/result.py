"""A tracked clip or shot as everything downstream reads it: one loader, one face model, one crop cache.

A tracked folder holds ``video.mp4``, ``crop.json``, ``probe.json`` and ``tracking/{params.npz, camera.json,
config.json}``. :class:`TrackedClip` is the only reader of those files for the renderers, the dub and the
tracking evaluation:

* the per-frame :class:`~core.morphable.data.FaceParams` and the clip camera (crop space);
* the face model the folder was tracked with, rebuilt from ``tracking/config.json`` (name, user file path
  and procedural resolution), so a shot tracked with a custom model renders with that model's mesh;
* the square crops of the video at any size through :func:`core.tracking.data.crop_frames` (decoded once,
  memory-mapped, rebuilt when the video or the crop changed);
* which frames have a face (``landmarks.npz`` flags frames where the face left the picture).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.morphable.data import FaceParams
from core.render.camera import PerspectiveCamera

if TYPE_CHECKING:
    from core.morphable.model import MorphableModel
    from core.tracking.config import TrackerConfig

TRACKED_FILES = ("crop.json", "tracking/params.npz", "tracking/camera.json")


def load_tracking_model(config: TrackerConfig, device: torch.device | str = "cpu") -> MorphableModel:
    """The model a :class:`~core.tracking.config.TrackerConfig` names (name, user path, procedural resolution)."""
    from core.morphable.registry import load_model

    kwargs = {"resolution": config.model_resolution} if config.model == "procedural" else {}
    return load_model(config.model, config.model_path, device=device, **kwargs)


def tracker_config_of(folder: Path) -> TrackerConfig:
    """The :class:`TrackerConfig` a folder was tracked with (defaults when ``tracking/config.json`` is absent,
    e.g. a synthetic clip whose tracking is its ground truth)."""
    from core.tracking.config import TrackerConfig

    path = folder / "tracking" / "config.json"
    return TrackerConfig.from_json(json.loads(path.read_text())) if path.is_file() else TrackerConfig()


def face_model_spec(config: TrackerConfig) -> dict[str, Any]:
    """The plain-data identity of a tracking config's face model (what a renderer checkpoint records)."""
    return {"model": config.model, "model_path": config.model_path,
            "model_resolution": config.model_resolution if config.model == "procedural" else None}


@dataclass
class TrackedClip:
    """The tracked arrays of one clip or shot folder (N frames, frame-aligned).

    Attributes:
        folder: the clip or shot folder.
        params: N frames of tracked face parameters.
        camera: the clip camera (batch 1) in the crop space of ``crop.json``.
        fps: frame rate of the folder's video (float; :attr:`rate` is the exact rational).
        size: side of the square crop in pixels (``crop.json`` ``out_size``).
        tracker_config: the settings it was tracked with (they name the face model).
        face_present: (N,) bool: False where the landmark stage flagged the frame (no face in the picture).
    """

    folder: Path
    params: FaceParams
    camera: PerspectiveCamera
    fps: float
    size: int
    tracker_config: TrackerConfig
    face_present: np.ndarray
    rate: Fraction = Fraction(25)
    timecode: str | None = None
    _models: dict[str, MorphableModel] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, folder: Path) -> TrackedClip:
        """Read a tracked folder.

        Raises:
            FileNotFoundError: the folder is not tracked (the message names the missing files).
        """
        from core.render.camera_io import load_camera

        folder = Path(folder)
        missing = [p for p in TRACKED_FILES if not (folder / p).exists()]
        if missing:
            raise FileNotFoundError(f"{folder} is not tracked (missing {', '.join(missing)}); "
                                    "run `emodub track` on it first")
        camera = load_camera(folder / "tracking" / "camera.json")
        crop = json.loads((folder / "crop.json").read_text())
        from core.io.ffmpeg import fps_of
        from core.landmarks.faces import media_dir

        media = media_dir(folder)  # a face of a shot with several faces: the shot's video and probe
        probe = json.loads((media / "probe.json").read_text()) if (media / "probe.json").exists() else {}
        # ingest writes {"source": ..., "working": {...}}; a known clip writes the working values at the top
        working = probe.get("working") if isinstance(probe.get("working"), dict) else probe
        rate = fps_of(working)
        params = FaceParams.load(folder / "tracking" / "params.npz")
        present = np.ones(params.batch_size, bool)
        landmarks = folder / "landmarks.npz"
        if landmarks.is_file():
            with np.load(landmarks, allow_pickle=False) as data:
                if "flagged" in data.files and len(data["flagged"]) == params.batch_size:
                    present = ~np.asarray(data["flagged"], bool)
        return cls(folder, params, camera, float(rate), int(crop["out_size"]), tracker_config_of(folder), present,
                   rate=rate, timecode=working.get("timecode"))

    @property
    def n_frames(self) -> int:
        return self.params.batch_size

    @property
    def model_spec(self) -> dict[str, Any]:
        return face_model_spec(self.tracker_config)

    def face_model(self, device: torch.device | str = "cpu") -> MorphableModel:
        """The face model this folder was tracked with (built once per device)."""
        key = str(torch.device(device))
        if key not in self._models:
            self._models[key] = load_tracking_model(self.tracker_config, device)
        return self._models[key]

    def crops(self, size: int | None = None, reporter: Any = None) -> np.ndarray:
        """(N, S, S, 3) uint8 crops of the video at ``size`` (default the crop size), memory-mapped."""
        from core.landmarks.crop import CropTransform
        from core.landmarks.faces import media_dir
        from core.tracking.data import crop_frames

        return crop_frames(self.folder, CropTransform.load(self.folder / "crop.json"), size or self.size,
                           self.n_frames, reporter=reporter, video=media_dir(self.folder) / "video.mp4")
