"""Small synthetic clips with exact ground truth for testing and benchmarking the tracker.

:func:`synthetic_params` draws a speaking performance of the procedural head (the synthetic actor's chain:
sentence -> speech -> visemes + blinks + head motion, :func:`core.synthetic.corpus.synthesize_clip`);
:func:`write_synthetic_clip` renders it (albedo texture, SH light) into a clip folder in the workspace
layout: ``video.mp4``, ``landmarks.npz`` (the exact projected landmarks, optionally with noise),
``crop.json``, and ``ground_truth/{params.npz, landmarks.npz, camera.json}``.

The full synthetic actor (``core.synthetic.actor``) renders corpus clips the same way; this module keeps the
tracker's tests and benchmark self-contained and fast (any size, any number of frames).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.morphable.data import PROCEDURAL_EXPRESSIONS, FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera, default_head_camera


def synthetic_params(n_frames: int, seed: int, fps: float = 25.0, emotion: dict[str, float] | None = None,
                     n_shape: int = 0) -> dict[str, np.ndarray]:
    """Ground-truth FaceParams arrays of ``n_frames`` frames of the procedural head speaking.

    Speech is generated sentence after sentence until ``n_frames`` are covered (a seed gives the same
    performance). ``n_shape`` > 0 draws a random identity (normal, std 0.5) shared by all frames.
    """
    from core.expression.emotions import emotion_vector
    from core.synthetic.corpus import synthesize_clip
    from core.synthetic.phonemes import random_sentence

    rng = np.random.default_rng(seed)
    vec = emotion_vector(emotion or {})
    parts: list[dict[str, np.ndarray]] = []
    have = 0
    while have < n_frames:
        sentence = random_sentence(rng, int(rng.integers(4, 8)))
        clip = synthesize_clip(sentence, vec, fps, rng)
        parts.append({k: clip[k] for k in ("expression", "jaw_pose", "neck_pose", "eye_pose", "rotation",
                                            "translation")})
        have += clip["n_frames"]
    out = {k: np.concatenate([p[k] for p in parts])[:n_frames].astype(np.float32) for k in parts[0]}
    shape = rng.normal(0.0, 0.5, n_shape).astype(np.float32) if n_shape else np.zeros(0, np.float32)
    out["shape"] = np.repeat(shape[None], n_frames, 0)
    return out


def synthetic_camera(size: int, distance: float = 0.5, focal_mm: float = 50.0) -> PerspectiveCamera:
    """The camera the synthetic clips are filmed with: on +z, ``distance`` metres from the head."""
    return default_head_camera(1, size, focal_mm_equiv=focal_mm, distance=distance)


def render_frames(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera,
                  background: float = 0.35, light: tuple[float, float, float] = (0.3, 0.4, 1.0),
                  batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Render every frame (textured, lit by one soft key light) and project the landmarks.

    Returns:
        frames (N, H, W, 3) uint8 and landmarks (N, 68, 2) float32 in the landmark convention (pixel
        centres at integers).
    """
    from core.render.shading import render_mesh, sh_directional

    if model.albedo is None:
        raise ValueError(f"model {model.name!r} has no albedo texture to render with")
    texture = model.albedo.permute(2, 0, 1)[None]
    frames, landmarks = [], []
    with torch.no_grad():
        for start in range(0, params.batch_size, batch_size):
            p = params[start:start + batch_size]
            B = p.batch_size
            out = model(p)
            cam = camera.expand(B) if camera.batch_size == 1 else camera[start:start + B]
            sh = sh_directional(light, intensity=0.75, ambient=0.45, batch=B, device=model.device,
                                dtype=model.dtype)
            bg = torch.full((3,), background, device=model.device, dtype=model.dtype)
            img, _ = render_mesh(out.vertices, model.faces, cam, model.uvs, model.uv_faces, texture, sh, bg)
            frames.append((img.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy())
            xy, _ = cam.project(out.landmarks)
            landmarks.append((xy - 0.5).cpu().numpy().astype(np.float32))
    return np.concatenate(frames), np.concatenate(landmarks)


def write_synthetic_clip(folder: Path, model: MorphableModel, params: dict[str, np.ndarray], *, size: int = 256,
                         fps: float = 25.0, crop_size: int = 256, distance: float = 0.5, noise_px: float = 0.0,
                         seed: int = 0) -> dict[str, Any]:
    """Render ``params`` into ``folder`` in the clip layout (see the module docstring).

    Args:
        folder: the clip folder (created).
        model: the procedural head (any model with an albedo).
        params: FaceParams arrays (N rows) from :func:`synthetic_params`.
        size: frame side in pixels (square frames).
        fps: frame rate.
        crop_size: ``out_size`` of the stable crop.
        distance: camera distance in metres.
        noise_px: Gaussian noise (pixels) added to the landmarks the tracker sees (the ground-truth
            landmarks stay exact).
        seed: noise seed.

    Returns:
        the fields of a manifest clip record (relative paths are left to the caller).
    """
    from core.io.video import write_video
    from core.landmarks.crop import CropConfig, stable_crop
    from core.landmarks.track import LandmarkTrack
    from core.render.camera_io import save_camera
    from core.workspace import atomic_save_npz

    folder = Path(folder)
    gt = folder / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    n = len(params["expression"])
    fp = FaceParams.from_numpy(_pad_shape(params, model), device=model.device, dtype=model.dtype)
    camera = synthetic_camera(size, distance).to(model.device, model.dtype)
    frames, lmk = render_frames(model, fp, camera)
    write_video(folder / "video.mp4", frames, fps, crf=12)
    atomic_save_npz(gt / "params.npz", **params, expr_names=np.array(PROCEDURAL_EXPRESSIONS))
    atomic_save_npz(gt / "landmarks.npz", lmk68=lmk)
    save_camera(gt / "camera.json", camera)
    seen = lmk + (np.random.default_rng(seed).normal(0.0, noise_px, lmk.shape).astype(np.float32)
                  if noise_px > 0 else 0.0)
    ones = np.ones(n, bool)
    track = LandmarkTrack(lmk68=seen, confidence=ones.astype(np.float32), detected=ones, interpolated=~ones,
                          flagged=~ones, image_size=(size, size), detector="ground_truth")
    track.save(folder / "landmarks.npz")
    crop = stable_crop(track.lmk68, (size, size), CropConfig(out_size=crop_size))
    crop.save(folder / "crop.json")
    return {"fps": float(fps), "frames": int(n), "width": size, "height": size, "duration_s": n / fps,
            "synthetic": True, "emotion": {}, "stages": {"ground_truth": True, "landmarks": True}}


def synthetic_targets(model: MorphableModel, params: dict[str, np.ndarray], config: Any, *, size: int = 256,
                      crop_size: int = 256, distance: float = 0.5, noise_px: float = 0.0, seed: int = 0,
                      frames: bool = True) -> Any:
    """In-memory :class:`~core.tracking.data.ClipTargets` of a rendered performance (no files, no video
    codec): the exact landmarks (plus ``noise_px`` noise) in the stable crop and, with ``frames``, the crop
    frames at ``config.photometric_size``. For benchmarks and tests on machines without ffmpeg."""
    from core.landmarks.crop import CropConfig, resize_image, stable_crop
    from core.landmarks.track import LandmarkTrack
    from core.tracking.data import targets_from_track

    n = len(params["expression"])
    fp = FaceParams.from_numpy(_pad_shape(params, model), device=model.device, dtype=model.dtype)
    camera = synthetic_camera(size, distance).to(model.device, model.dtype)
    images, lmk = render_frames(model, fp, camera)
    if noise_px > 0:
        lmk = lmk + np.random.default_rng(seed).normal(0.0, noise_px, lmk.shape).astype(np.float32)
    ones = np.ones(n, bool)
    track = LandmarkTrack(lmk68=lmk, confidence=ones.astype(np.float32), detected=ones, interpolated=~ones,
                          flagged=~ones, image_size=(size, size), detector="ground_truth")
    crop = stable_crop(track.lmk68, (size, size), CropConfig(out_size=crop_size))
    targets = targets_from_track(track, crop, config)
    if frames:
        ps = config.photometric_size
        targets.frames = np.stack([resize_image(crop.crop_image(f), ps, ps) for f in images])
    return targets


def _pad_shape(params: dict[str, np.ndarray], model: MorphableModel) -> dict[str, np.ndarray]:
    """Shape coefficients as the model wants them (an empty identity means the mean head)."""
    out = dict(params)
    shape = np.asarray(out["shape"], np.float32)
    if shape.ndim == 2 and shape.shape[1] == 0:
        out["shape"] = np.zeros((shape.shape[0], 1), np.float32)
    return out


def add_synthetic_clip(ws: Any, actor: str, clip: str, model: MorphableModel, params: dict[str, np.ndarray],
                       **kwargs: Any) -> Path:
    """:func:`write_synthetic_clip` into ``ws.clip_dir(actor, clip)`` and record the clip in the manifest."""
    folder = ws.clip_dir(actor, clip)
    record = write_synthetic_clip(folder, model, params, **kwargs)
    record.update({"video": ws.rel(folder / "video.mp4"), "audio": None, "source": "synthetic:tracking-test",
                   "landmarks": ws.rel(folder / "landmarks.npz"), "crop": ws.rel(folder / "crop.json")})
    ws.set_clip(actor, clip, record)
    return folder
