"""A tiny *tracked* clip rendered from known parameters (stands in for ingest + tracking).

Tests of the renderer and of dubbing, and the renderer bench, need a clip folder laid out as the
workspace contract says (``video.mp4``, ``audio.wav``, ``probe.json``, ``crop.json``,
``tracking/{params.npz, camera.json}``) whose "tracked" parameters are exactly the ground truth.
:func:`render_known_clip` writes one with the procedural head: its jaw opens with the loudness of a
220 Hz tone (so the audio tells the mouth state) and the head turns slowly.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

KNOWN_CLIP_FPS = 25


def known_clip_camera(size: int) -> Any:
    """The camera of a known clip (identity crop, the head filling about half the frame)."""
    from core.render import default_head_camera

    return default_head_camera(1, size, focal_mm_equiv=90.0)


@torch.no_grad()
def render_known_frames(model: Any, params: Any, size: int) -> torch.Tensor:
    """(B, S, S, 3) float frames of a known clip with ``params`` (its texture, light and background)."""
    from core.render import render_mesh, sh_directional

    camera = known_clip_camera(size)
    texture = model.albedo.permute(2, 0, 1)[None]
    sh = sh_directional((0.3, 0.4, 1.0), 0.7, ambient=0.5)
    background = torch.linspace(0.2, 0.5, size).view(1, size, 1, 1).expand(1, size, size, 3)
    out = []
    for start in range(0, params.batch_size, 8):
        p = params[start:start + 8]
        B = p.batch_size
        image, _ = render_mesh(model(p).vertices, model.faces, camera.expand(B), model.uvs, model.uv_faces, texture,
                               sh.expand(B, 9, 3), background.expand(B, size, size, 3).contiguous())
        out.append(image.clamp(0, 1))
    return torch.cat(out)


@torch.no_grad()
def known_clip_landmarks(folder: Path) -> np.ndarray:
    """(N, 68, 2) pixel landmarks of a known clip (its parameters projected by its camera; pixel centres at
    integers), e.g. for a :class:`~core.landmarks.detector.GroundTruthDetector` when the clip is ingested."""
    import json

    from core.morphable.data import FaceParams
    from core.morphable.registry import load_model

    model = load_model("procedural")
    params = FaceParams.load(folder / "tracking" / "params.npz")
    size = int(json.loads((folder / "crop.json").read_text())["out_size"])
    camera = known_clip_camera(size)
    xy, _ = camera.expand(params.batch_size).project(model(params).landmarks)
    return (xy - 0.5).cpu().numpy().astype(np.float32)


def render_known_clip(folder: Path, n_frames: int, size: int, seed: int = 0, with_audio: bool = True,
                      fps: int | Fraction = KNOWN_CLIP_FPS, expression: dict[str, np.ndarray] | None = None,
                      jaw: float = 0.3, turn: float = 0.1, timecode: str | None = None) -> None:
    """Write a tracked clip of ``n_frames`` square ``size`` px frames into ``folder``.

    Args:
        folder: the clip (or shot) folder; created if needed.
        n_frames: frames of video (and ``n_frames / fps`` seconds of 16 kHz audio).
        size: frame side in pixels; the crop is the whole frame (``crop.json`` is the identity).
        seed: phase of the jaw's 2 Hz opening cycle.
        with_audio: ``False`` removes ``audio.wav`` (a clip without sound).
        fps: frame rate written to the video and ``probe.json`` (exact: ``Fraction(30000, 1001)``).
        expression: optional per-frame values of named expression coefficients (e.g. ``{"smile_left": ...}``).
        jaw: the largest jaw opening (radians) of the 2 Hz cycle.
        turn: the amplitude (radians) of the slow head turn.
        timecode: the first frame's timecode (in the video and ``probe.json``).
    """
    from core.io.audio import write_wav
    from core.io.ffmpeg import fps_fraction, fps_record
    from core.io.video import VideoWriter
    from core.landmarks.crop import CropTransform
    from core.morphable.registry import load_model
    from core.render.camera_io import save_camera
    from core.workspace import atomic_write_json

    rng = np.random.default_rng(seed)
    model = load_model("procedural")
    params = model.zero_params(n_frames)
    rate = fps_fraction(fps)
    t = np.arange(n_frames) / float(rate)
    opening = (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6))).astype(np.float32)
    params.jaw_pose[:, 0] = torch.from_numpy(opening * jaw)
    params.rotation[:, 1] = torch.from_numpy((turn * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32))
    for name, values in (expression or {}).items():
        params.expression[:, model.expr_names.index(name)] = torch.as_tensor(np.asarray(values, np.float32))
    camera = known_clip_camera(size)
    folder.mkdir(parents=True, exist_ok=True)
    sr = 16000
    samples = np.arange(int(n_frames * sr / rate)) / sr
    envelope = np.interp(samples, t, opening)
    write_wav(folder / "audio.wav", (0.5 * envelope * np.sin(2 * np.pi * 220 * samples)).astype(np.float32), sr)
    with VideoWriter(folder / "video.mp4", rate, crf=12, timecode=timecode) as writer:
        for frame in render_known_frames(model, params, size).numpy():
            writer.write((frame * 255).round().astype(np.uint8))
    atomic_write_json(folder / "probe.json", {**fps_record(rate), "width": size, "height": size, "frames": n_frames,
                                              "timecode": timecode})
    CropTransform(0, 0, size, size, size, size).save(folder / "crop.json")
    params.save(folder / "tracking" / "params.npz")
    save_camera(folder / "tracking" / "camera.json", camera)
    if not with_audio:
        (folder / "audio.wav").unlink()


def known_clip_workspace(root: Path, n_frames: int = 20, size: int = 64, clips: int = 1, actor: str = "a",
                         fps: int = KNOWN_CLIP_FPS, expression: dict[str, np.ndarray] | None = None,
                         jaw: float = 0.3, turn: float = 0.1) -> object:
    """A new Workspace at ``root`` with ``actor`` and ``clips`` tracked clips ``c0``, ``c1``... (seeds 0, 1...;
    ``expression``, ``jaw`` and ``turn`` as :func:`render_known_clip`).

    Returns the :class:`core.workspace.Workspace`.
    """
    from core.consent import record_synthetic_consent
    from core.workspace import Workspace

    ws = Workspace.create(root)
    for k in range(clips):
        name = f"c{k}"
        folder = ws.clip_dir(actor, name)
        render_known_clip(folder, n_frames, size, seed=k, fps=fps, expression=expression, jaw=jaw, turn=turn)
        ws.set_clip(actor, name, {"video": ws.rel(folder / "video.mp4"), "audio": ws.rel(folder / "audio.wav"),
                                  "fps": fps, "frames": n_frames, "width": size, "height": size})
    record_synthetic_consent(ws, actor, "core.synthetic.known_clip")
    return ws
