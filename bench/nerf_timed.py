"""Held-out quality against training time: one fixed-length run, measured at regular snapshots (JSON lines).

    python build.py bench nerf_timed --renderer lipnerf --preset paper --minutes 6      # a lent GPU
    python build.py bench nerf_timed --renderer lipnerf --minutes 30 -w demo-out/workspace --actor synthetic

Trains ``--renderer`` for ``--minutes`` of wall time (the learning rate decays over it), keeping the weights every
``--snapshot-seconds``; then measures every snapshot on the same held-out frames with the shared evaluation
(not timed), and the trained renderer's whole-frame speed. Without ``-w`` a synthetic corpus is built first
(``--size`` px crops; tracked from its ground truth landmarks).

Figures: ``psnr_vs_time`` (one record per snapshot: ``value`` = held-out face PSNR, ``config.training_s``,
``config.iteration``, whole-crop PSNR, mouth PSNR), ``render_fps`` (``config.peak_memory_mb`` on CUDA).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
import torch
from _common import emit


def synthetic_workspace(root: Path, size: int, device: str) -> Path:
    """A small tracked synthetic corpus (2 sentences x neutral/happy/sad) in ``root``."""
    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    def run(kind: str, params: dict) -> None:
        events: list[P.Event] = []
        if run_job(P.JobSpec(kind, params, str(root) if kind != "synth" else None), events.append) != P.EXIT_OK:
            raise RuntimeError(f"{kind} failed: {events[-1]}")

    run("synth", {"out": str(root), "sentences": 2, "emotions": ["neutral", "happy", "sad"], "intensities": [3],
                  "size": size, "device": device})
    from core.workspace import Workspace

    ws = Workspace.open(root)
    for clip in sorted(ws.read_manifest()["actors"]["synthetic"]["clips"]):
        run("landmarks", {"actor": "synthetic", "clip": clip, "detector": "ground_truth", "crop_size": size})
        run("track", {"actor": "synthetic", "clip": clip, "photometric": False, "overlay": False, "device": device,
                      "iterations": 0.5})
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renderer", default="lipnerf")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--snapshot-seconds", type=float, default=30.0)
    parser.add_argument("--workspace", "-w", type=Path, default=None)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--size", type=int, default=256, help="crop size of the synthetic corpus (without -w)")
    parser.add_argument("--eval-frames", type=int, default=50)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    from core.renderers.base import RendererSetup
    from core.renderers.data import actor_sources
    from core.renderers.evaluate import evaluate
    from core.renderers.registry import build, make_options, read_checkpoint, renderer_class, renderer_from_state
    from core.renderers.spec import preset_train_settings, resolve_options
    from core.renderers.train import TrainConfig, train
    from core.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workspace or synthetic_workspace(Path(tmp) / "ws", args.size, device)
        ws = Workspace.open(root)
        options = make_options(args.renderer, resolve_options(args.renderer, args.preset))
        source, held, _ = actor_sources(ws, args.actor, renderer_class(args.renderer).needs_for(options), 0.1)
        setup = RendererSetup(source.size, source.face_model_spec, source.train_frames,
                              n_expression=source.face_model().n_expr)
        torch.manual_seed(0)
        fit = {"render_size": min(options.render_size, source.size)} if hasattr(options, "render_size") else {}
        renderer = build(args.renderer, setup, args.preset, fit)
        settings = {k: v for k, v in preset_train_settings(args.renderer, args.preset).items()
                    if k in TrainConfig.__dataclass_fields__ and k != "iterations"}
        config = TrainConfig(**{**settings, "iterations": 10**7, "max_seconds": args.minutes * 60,
                                "snapshot_every_s": args.snapshot_seconds, "checkpoint_every": 10**9,
                                "sample_every": 0})
        out = Path(tmp) / "model"
        summary = train(renderer, source, out, config, device=device)
        base = {"renderer": args.renderer, "preset": args.preset, "device": device, "size": source.size,
                "minutes": args.minutes, "iterations": summary["iterations"]}
        for path in sorted((out / "snapshots").glob("*.pt")):
            state = read_checkpoint(path, device)
            figures = evaluate(renderer_from_state(state, device, path), held, device, args.eval_frames)
            emit("psnr_vs_time", round(figures["face_psnr"], 3), "dB",
                 {**base, "training_s": round(float(state["elapsed_s"]), 1), "iteration": int(state["iteration"]),
                  "psnr": round(figures["psnr"], 3), "mouth_psnr": round(figures["mouth_psnr"], 3)})
        renderer.eval()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        with torch.no_grad():
            for i in range(6):
                batch = held.batch([i % len(held)], device)
                start = time.perf_counter()
                renderer(batch)
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        extra = {"peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)} if device == "cuda" else {}
        emit("render_fps", round(1.0 / float(np.median(times[1:])), 3), "frames/s", {**base, **extra})


if __name__ == "__main__":
    main()
