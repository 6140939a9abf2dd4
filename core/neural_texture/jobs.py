"""Job kinds of the renderer: ``train.renderer`` and ``eval.renderer``."""

from __future__ import annotations

from typing import Any

from core.jobs.context import JobContext
from core.jobs.registry import Arg, job_kind


@job_kind("train.renderer", help="train the audio-conditioned neural-texture renderer on an actor's tracked clips",
          args=[Arg("--actor", required=True),
                Arg("--size", type=int, default=256, help="crop size the clips were tracked at (256 or 512)"),
                Arg("--iterations", type=int, default=3000),
                Arg("--batch-size", type=int, default=1, dest="batch_size"),
                Arg("--static", action="store_true", help="static-texture ablation (no audio conditioning)"),
                Arg("--name", default=None, help="model name (default renderer, or renderer_static)"),
                Arg("--holdout", type=float, default=0.2, help="fraction of each clip's last frames held out"),
                Arg("--temporal-window", type=int, default=2, dest="temporal_window"),
                Arg("--unet-base", type=int, default=16, dest="unet_base",
                    help="UNet width (16: >= 5 fps at 256 px on 2 CPU cores; 32: 3x the compute)"),
                Arg("--lr", type=float, default=1e-4, help="Adam learning rate (READ: 1e-4)"),
                Arg("--seed", type=int, default=0),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_train_renderer(ctx: JobContext) -> dict[str, Any]:
    from .model import NeuralTextureConfig
    from .pipeline import train_actor_renderer
    from .train import RendererTrainConfig

    p = ctx.params
    static = bool(p.get("static", False))
    model = NeuralTextureConfig(audio_dim=0 if static else 13, temporal_window=int(p.get("temporal_window", 2)),
                                unet_base=int(p.get("unet_base", 16)))
    iterations = int(p.get("iterations", 3000))
    config = RendererTrainConfig(iterations=iterations, batch_size=int(p.get("batch_size", 1)),
                                 lr=float(p.get("lr") or 1e-4),
                                 seed=int(p.get("seed", 0)), model=model,
                                 checkpoint_every=max(10, min(250, iterations // 4)),
                                 sample_every=max(10, min(250, iterations // 4)),
                                 gan_start=min(200, iterations // 4))
    name = p.get("name") or ("renderer_static" if static else "renderer")
    ws = ctx.workspace
    with ws.lock(f"train/{p['actor']}/{name}"):
        return train_actor_renderer(
            ws, p["actor"], config, name=name, holdout=float(p.get("holdout", 0.2)), device=ctx.device,
            progress=lambda done, total, msg: ctx.progress("train renderer", done, total, msg),
            artifact=lambda path, kind: ctx.artifact(path, kind))


@job_kind("eval.renderer", help="PSNR/SSIM of a trained renderer on held-out frames",
          args=[Arg("--actor", required=True), Arg("--name", default="renderer"),
                Arg("--max-frames", type=int, default=200, dest="max_frames"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_eval_renderer(ctx: JobContext) -> dict[str, Any]:
    from .pipeline import evaluate_renderer

    p = ctx.params
    ctx.progress("eval renderer", 0, 1)
    result = evaluate_renderer(ctx.workspace, p["actor"], p.get("name", "renderer"), ctx.device,
                               int(p.get("max_frames", 200)))
    ctx.progress("eval renderer", 1, 1)
    return result
