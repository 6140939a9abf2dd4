"""Fixtures shared by engine tests: a tiny *tracked* clip rendered from known parameters.

It stands in for ingest + tracking (tested in their own packages) so the renderer and the dubbing
pipeline can be tested on exactly known geometry: the "tracked" parameters are the ground truth.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

FPS = 25


def render_known_clip(folder: Path, n_frames: int, size: int, seed: int = 0, with_audio: bool = True) -> None:
    """Write video.mp4, audio.wav, probe.json, crop.json and tracking/* for a clip whose jaw opens
    with a tone's loudness (so the audio tells the mouth state)."""
    from core.io.audio import write_wav
    from core.io.video import VideoWriter
    from core.landmarks.crop import CropTransform
    from core.morphable.registry import load_model
    from core.render import default_head_camera, render_mesh, sh_directional
    from core.render.camera_io import save_camera
    from core.workspace import atomic_write_json

    rng = np.random.default_rng(seed)
    model = load_model("procedural")
    params = model.zero_params(n_frames)
    t = np.arange(n_frames) / FPS
    opening = (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6))).astype(np.float32)
    params.jaw_pose[:, 0] = torch.from_numpy(opening * 0.3)
    params.rotation[:, 1] = torch.from_numpy(0.1 * np.sin(2 * np.pi * 0.5 * t).astype(np.float32))
    camera = default_head_camera(1, size, focal_mm_equiv=90.0)
    texture = model.albedo.permute(2, 0, 1)[None]
    sh = sh_directional((0.3, 0.4, 1.0), 0.7, ambient=0.5)
    folder.mkdir(parents=True, exist_ok=True)
    sr = 16000
    samples = np.arange(int(n_frames / FPS * sr)) / sr
    envelope = np.interp(samples, t, opening)
    write_wav(folder / "audio.wav", (0.5 * envelope * np.sin(2 * np.pi * 220 * samples)).astype(np.float32), sr)
    background = torch.linspace(0.2, 0.5, size).view(1, size, 1, 1).expand(1, size, size, 3)
    with torch.no_grad(), VideoWriter(folder / "video.mp4", FPS, crf=12) as writer:
        for start in range(0, n_frames, 8):
            p = params[start:start + 8]
            verts = model(p).vertices
            B = p.batch_size
            image, _ = render_mesh(verts, model.faces, camera.expand(B), model.uvs, model.uv_faces, texture,
                                   sh.expand(B, 9, 3), background.expand(B, size, size, 3).contiguous())
            for frame in image.clamp(0, 1).numpy():
                writer.write((frame * 255).round().astype(np.uint8))
    atomic_write_json(folder / "probe.json", {"fps": FPS, "width": size, "height": size, "frames": n_frames})
    CropTransform(0, 0, size, size, size, size).save(folder / "crop.json")
    params.save(folder / "tracking" / "params.npz")
    save_camera(folder / "tracking" / "camera.json", camera)
    if not with_audio:
        (folder / "audio.wav").unlink()


@pytest.fixture
def tracked_workspace(tmp_path: Path) -> Callable[..., object]:
    """``make(n_frames=20, size=64)`` -> a Workspace with actor ``a`` and one tracked clip ``c``."""
    from core.workspace import Workspace

    def make(n_frames: int = 20, size: int = 64, clips: int = 1):
        ws = Workspace.create(tmp_path / "ws")
        for k in range(clips):
            name = f"c{k}"
            folder = ws.clip_dir("a", name)
            render_known_clip(folder, n_frames, size, seed=k)
            ws.set_clip("a", name, {"video": ws.rel(folder / "video.mp4"), "audio": ws.rel(folder / "audio.wav"),
                                    "fps": FPS, "frames": n_frames, "width": size, "height": size})
        return ws

    return make
