"""Track one clip or shot folder and write its ``tracking/`` outputs.

Outputs (``<folder>/tracking/``, every file written atomically):

* ``params.npz`` — per-frame :class:`~core.morphable.data.FaceParams` (N rows, shape repeated), plus
  ``expr_names`` and ``model``;
* ``camera.json`` — the clip camera in the crop space of ``crop.json`` (see :mod:`core.tracking.geometry`);
* ``quality.json`` — :mod:`core.tracking.quality`'s record plus timings per stage;
* ``overlay.mp4`` — wireframe and landmarks over the crop, to check by eye;
* ``albedo.png`` — the learned albedo texture; ``shared.npz`` — shape, lighting, albedo and focal length
  (what the actor's other clips reuse);
* ``config.json`` — the resolved :class:`~core.tracking.config.TrackerConfig` (it names the face model);
* ``state.pt`` — the resumable checkpoint.

The photometric stages read the folder's crop cache (:func:`core.tracking.data.crop_frames`); crops at a
size other than the crop's own are removed after success unless ``keep_cache``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.tracking.config import TrackerConfig
from core.tracking.tracker import Reporter, TrackingResult

TRACKING_DIR = "tracking"


@dataclass
class TrackOutputs:
    """Paths and records of one tracked folder."""

    folder: Path
    params: Path
    camera: Path
    quality_path: Path
    albedo: Path
    overlay: Path | None
    quality: dict[str, Any]
    result: TrackingResult


def read_identity(folder: Path) -> dict[str, Any] | None:
    """The shared values of a tracked folder (``tracking/shared.npz``) or ``None``."""
    path = folder / TRACKING_DIR / "shared.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: (data[k].item() if data[k].ndim == 0 else np.asarray(data[k])) for k in data.files}


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    from core.workspace import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def track_folder(folder: Path, config: TrackerConfig | None = None, *, device: torch.device | str = "cpu",
                 reporter: Reporter | None = None, identity: dict[str, Any] | None = None, fps: float = 25.0,
                 restart: bool = False) -> TrackOutputs:
    """Track the clip/shot in ``folder`` (needs ``landmarks.npz`` and ``crop.json``; ``video.mp4`` for the
    photometric stages and the overlay) and write the outputs listed in the module docstring.

    Args:
        folder: the clip or shot folder.
        config: tracker settings.
        device: torch device.
        reporter: progress/log/cancel sink (a JobContext).
        identity: shared values of the actor's other clips (see :func:`read_identity`).
        fps: frame rate of the overlay video.
        restart: ignore an existing checkpoint.
    """
    from core.tracking.tracker import _Silent

    config = config or TrackerConfig()
    threads = torch.get_num_threads()
    if config.cpu_threads and torch.device(device).type == "cpu":
        torch.set_num_threads(config.cpu_threads)
    try:
        return _track_folder(folder, config, device, reporter or _Silent(), identity, fps, restart)
    finally:
        torch.set_num_threads(threads)


def _track_folder(folder: Path, config: TrackerConfig, device: torch.device | str, reporter: Reporter,
                  identity: dict[str, Any] | None, fps: float, restart: bool) -> TrackOutputs:
    from core.render.camera_io import save_camera
    from core.tracking.data import CACHE_DIR, crop_frames, load_targets
    from core.tracking.overlay import write_overlay_video
    from core.tracking.quality import quality_record
    from core.tracking.result import load_tracking_model
    from core.tracking.tracker import Tracker
    from core.workspace import atomic_save_npz, atomic_write_json

    out = folder / TRACKING_DIR
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "state.pt"
    if restart and checkpoint.exists():
        checkpoint.unlink()
    targets = load_targets(folder, config)
    model = load_tracking_model(config, device)
    if identity is not None and (identity.get("model") != model.name
                                 or np.asarray(identity.get("shape", [])).size > model.n_shape):
        reporter.log("the actor's other clips were tracked with another model; not reusing their identity",
                     "warning")
        identity = None
    from core.landmarks.faces import media_dir

    video = media_dir(folder) / "video.mp4"  # a face folder of a shot with several faces: the shot's video
    has_video = video.is_file()
    if any(s.photometric for s in config.stages) and has_video:
        targets.frames = crop_frames(folder, targets.crop, config.photometric_size, targets.n_frames, reporter,
                                     video=video)
    atomic_write_json(out / "config.json", config.to_json())
    tracker = Tracker(model, targets, config, reporter=reporter, checkpoint=checkpoint, identity=identity)
    result = tracker.run()

    quality = quality_record(model, result.params, result.camera, targets, config, result.shared)
    n = targets.n_frames
    quality.update({
        "model": model.name,
        "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()},
        "seconds_per_frame": {k: round(v / max(n, 1), 4) for k, v in result.stage_seconds.items()},
        "stage_frames": result.stage_frames,
        "skipped_stages": result.skipped,
        "resumed": result.resumed,
        "focal_px": round(result.shared["focal_px"], 3),
        "identity_reused": identity is not None,
    })
    params_path = atomic_save_npz(out / "params.npz", **result.params.to_numpy(),
                                  expr_names=np.array(model.expr_names[: result.params.expression.shape[1]]),
                                  model=np.array(model.name))
    camera_path = save_camera(out / "camera.json", result.camera)
    albedo = result.shared["albedo"].clamp(0, 1).permute(1, 2, 0).numpy()
    albedo_path = out / "albedo.png"
    _write_png(albedo_path, (albedo * 255.0).round().astype(np.uint8))
    crop = targets.crop
    atomic_save_npz(out / "shared.npz", shape=result.shared["shape"].numpy(), sh=result.shared["sh"].numpy(),
                    albedo=result.shared["albedo"].numpy(),
                    focal_frame_px=np.float64(result.shared["focal_px"] / crop.scale),
                    image_size=np.array(targets.image_size), model=np.array(model.name))
    overlay_path = None
    if config.overlay and has_video:
        overlay_path = write_overlay_video(out / "overlay.mp4", video, model, result.params, result.camera, targets,
                                           quality, fps, scale=config.overlay_scale, reporter=reporter)
    quality_path = atomic_write_json(out / "quality.json", quality)
    # The crops at the crop's own size are what the renderers and the dub read next: keep those.
    stale = folder / CACHE_DIR / f"crops_{config.photometric_size}"
    if not config.keep_cache and config.photometric_size != crop.out_size:
        for suffix in (".npy", ".json"):
            stale.with_suffix(suffix).unlink(missing_ok=True)
    return TrackOutputs(folder=folder, params=params_path, camera=camera_path, quality_path=quality_path,
                        albedo=albedo_path, overlay=overlay_path, quality=quality, result=result)
