"""Renderer training and evaluation on an actor's tracked clips in a workspace.

Split: the last ``holdout`` fraction of every clip is never trained on; ``eval.renderer`` reports
PSNR/SSIM on exactly those frames (``split.json`` in the model folder records the ranges).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.workspace import Workspace, atomic_write_json

from .data import ClipFrames, ConcatSource, TrackedClip
from .model import NeuralTextureConfig
from .train import RendererTrainConfig, load_renderer, train_renderer


def tracked_folders(ws: Workspace, actor: str) -> list[tuple[str, Path]]:
    """(clip name, folder) of the actor's clips that have a tracking result."""
    clips = ws.read_manifest()["actors"].get(actor, {}).get("clips", {})
    return [(name, ws.clip_dir(actor, name)) for name in sorted(clips)
            if (ws.clip_dir(actor, name) / "tracking" / "params.npz").exists()]


def face_model_for(folder: Path) -> Any:
    """The morphable model a clip was tracked with (``tracking/config.json`` "model", default procedural)."""
    from core.morphable.registry import load_model

    config = folder / "tracking" / "config.json"
    name = json.loads(config.read_text()).get("model", "procedural") if config.exists() else "procedural"
    return load_model(name if isinstance(name, str) else "procedural")


def audio_windows(folder: Path, n_frames: int, fps: float, config: NeuralTextureConfig) -> np.ndarray | None:
    """(N, T_a, D_a) MFCC windows of ``folder/audio.wav`` (zeros when the clip has no audio)."""
    if not config.audio_conditioned:
        return None
    from core.audio.features import AudioFeatureConfig, make_extractor

    extractor = make_extractor("mfcc", renderer_audio_config(config))
    wav = folder / "audio.wav"
    if not wav.exists():
        return np.zeros((n_frames, config.audio_window, config.audio_dim), np.float32)
    from core.audio.io import load_audio

    wave, sr = load_audio(wav, AudioFeatureConfig().sample_rate)
    return extractor.extract(wave, sr, fps, n_frames)


def renderer_audio_config(config: NeuralTextureConfig) -> Any:
    """MFCC settings whose window length and dimension match the renderer's audio input."""
    from core.audio.features import AudioFeatureConfig

    base = AudioFeatureConfig()
    if config.audio_window % base.frames_per_video_frame:
        raise ValueError(f"audio_window must be a multiple of {base.frames_per_video_frame}")
    return AudioFeatureConfig(n_mfcc=config.audio_dim,
                              window_video_frames=config.audio_window // base.frames_per_video_frame)


def split_frames(n: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    """First (1 - holdout) of the frames for training, the rest held out (at least one each when n >= 2)."""
    cut = int(round(n * (1.0 - holdout)))
    cut = min(max(cut, 1), n - 1) if n >= 2 and holdout > 0 else n
    return np.arange(cut), np.arange(cut, n)


def build_sources(ws: Workspace, actor: str, config: NeuralTextureConfig, holdout: float
                  ) -> tuple[ConcatSource, ConcatSource, dict[str, Any]]:
    folders = tracked_folders(ws, actor)
    if not folders:
        from core.jobs.context import JobFailed

        raise JobFailed(f"actor {actor!r} has no tracked clips", code="no_data",
                        hint="ingest footage (`emodub ingest`) and track it (`emodub track`) first")
    train, held, split = [], [], {}
    for name, folder in folders:
        clip = TrackedClip.load(folder)
        model = face_model_for(folder)
        audio = audio_windows(folder, clip.n_frames, clip.fps, config)
        train_idx, held_idx = split_frames(clip.n_frames, holdout)
        train.append(ClipFrames(clip, model, audio, config.temporal_window, train_idx))
        held.append(ClipFrames(clip, model, audio, config.temporal_window, held_idx))
        split[name] = {"train": [int(train_idx[0]), int(train_idx[-1]) + 1] if len(train_idx) else [0, 0],
                       "held_out": [int(held_idx[0]), int(held_idx[-1]) + 1] if len(held_idx) else [0, 0],
                       "size": clip.size}
    return ConcatSource(train), ConcatSource(held), split


def train_actor_renderer(ws: Workspace, actor: str, config: RendererTrainConfig, name: str = "renderer",
                         holdout: float = 0.2, device: str = "cpu", progress: Any = None,
                         artifact: Any = None) -> dict[str, Any]:
    out = ws.model_dir(actor, name)
    train, held, split = build_sources(ws, actor, config.model, holdout)
    atomic_write_json(out / "split.json", {"holdout": holdout, "clips": split})
    summary = train_renderer(train, out, config, device=device, progress=progress, artifact=artifact)
    ws.set_model(actor, name, {"kind": "renderer", "path": ws.rel(out), "iterations": summary["iterations"],
                               "audio_conditioned": config.model.audio_conditioned,
                               "size": next(iter(split.values()))["size"]})
    return {**summary, "model_dir": str(out), "train_frames": len(train), "held_out_frames": len(held)}


def region_mask(model: Any, params: Any, camera: Any, include: tuple[str, ...] = (),
                exclude: tuple[str, ...] = ()) -> torch.Tensor:
    """(B, 1, H, W) pixels covered by mesh triangles whose vertices all lie in the ``include`` regions
    (any vertex when empty) and none in the ``exclude`` regions (``model.regions`` names)."""
    from .data import rasterize_uv_and_region, region_faces

    return rasterize_uv_and_region(model, params, camera, region_faces(model, include, exclude))[2]


def mouth_mask(model: Any, params: Any, camera: Any) -> torch.Tensor:
    """(B, 1, H, W) pixels covered by the lips and the mouth interior."""
    return region_mask(model, params, camera, include=("lips", "mouth_interior"))


@torch.no_grad()
def evaluate_renderer(ws: Workspace, actor: str, name: str = "renderer", device: str = "cpu",
                      max_frames: int = 200, batch: int = 4) -> dict[str, Any]:
    """PSNR / SSIM (whole crop and mouth region) on the held-out frames of every tracked clip."""
    from core.eval.image_metrics import psnr, ssim

    out = ws.model_dir(actor, name)
    renderer = load_renderer(out, device)
    split = json.loads((out / "split.json").read_text())
    _, held, _ = build_sources(ws, actor, renderer.config, split["holdout"])
    n = min(len(held), max_frames)
    if n == 0:
        from core.jobs.context import JobFailed

        raise JobFailed("no held-out frames to evaluate on", code="no_data",
                        hint="train with --holdout > 0 on clips of at least two frames")
    indices = np.linspace(0, len(held) - 1, n).round().astype(int)
    scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "mouth_psnr": []}
    for start in range(0, n, batch):
        items = [held[int(i)] for i in indices[start:start + batch]]
        b = {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}
        pred = renderer(b["uv"], b["alpha"], b["frame"], b.get("uv_window"), b.get("audio"))["image"].clamp(0, 1)
        scores["psnr"] += psnr(pred, b["frame"]).tolist()
        scores["ssim"] += ssim(pred, b["frame"]).tolist()
        # The mouth mask comes from the same tracked geometry the renderer was driven by.
        mouth = []
        for i in indices[start:start + batch]:
            k = int(np.searchsorted(held.offsets, int(i), side="right") - 1)
            src = held.sources[k]
            frame_index = int(src.frames[int(i) - int(held.offsets[k])])
            mouth.append(mouth_mask(src.model, src.clip.params[frame_index], src.clip.camera))
        mask = torch.cat(mouth).to(device)
        scores["mouth_psnr"] += psnr(pred, b["frame"], mask).tolist()
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    result.update({"frames": n, "model": name, "audio_conditioned": renderer.config.audio_conditioned,
                   "config": asdict(renderer.config)})
    return result

