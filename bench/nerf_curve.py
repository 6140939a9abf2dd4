"""Held-out PSNR against training time: each NeRF variant trained for a fixed wall time on the same frames.

    python build.py bench nerf_curve --renderers lipnerf triplane --minutes 6 --size 512      # a lent GPU
    python build.py bench nerf_curve -w WS --actor actor --renderers lipnerf triplane --minutes 6

Data: ``-w WS --actor A`` (an actor's tracked clips, e.g. the workspace ``bench/renderer_compare.py`` made of a
real clip), or by default a throw-away workspace with one ``--frames``-frame clip of ``--size`` px rendered from
known parameters (:mod:`core.synthetic.known_clip`). The last ``--holdout`` of every clip is held out.

Each variant (its ``--preset``, ``render_size = --size`` unless ``--keep-size``) trains with the shared trainer
for ``--minutes`` of wall time, the learning rate decaying over that time; the trainer keeps its weights
``--snapshots`` times during the run (``TrainConfig.snapshot_every_s``; writing them is part of the measured
time). Afterwards each snapshot is evaluated by the shared evaluation on up to ``--eval-frames`` held-out
frames (not timed). Whole-frame speed is ``bench nerf``'s.

Figures (JSON lines ``psnr_vs_time``, one per variant and snapshot): ``face_psnr`` with ``mouth_psnr``,
``psnr``, the training seconds and iterations at the snapshot in ``config``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
import torch
from _common import emit, load_average


def run_variant(variant: str, args: argparse.Namespace, ws: Any, actor: str, device: str, root: Path) -> None:
    from core.renderers.base import RendererSetup
    from core.renderers.data import actor_sources
    from core.renderers.evaluate import evaluate
    from core.renderers.registry import build, make_options, read_checkpoint, renderer_class, renderer_from_state
    from core.renderers.spec import preset_train_settings, resolve_options
    from core.renderers.train import TrainConfig, train

    options = {} if args.keep_size else {"render_size": args.size}
    needs = renderer_class(variant).needs_for(make_options(variant, resolve_options(variant, args.preset, options)))
    source, held, _ = actor_sources(ws, actor, needs, args.holdout)
    setup = RendererSetup(source.size, source.face_model_spec, source.train_frames, fps=source.clips[0].clip.fps,
                          n_expression=source.face_model().n_expr)
    torch.manual_seed(args.seed)
    renderer = build(variant, setup, args.preset, options)
    budget = args.minutes * 60.0
    settings = {k: v for k, v in preset_train_settings(variant, args.preset).items()
                if k in ("lr", "lr_final", "betas", "batch_size")}
    config = TrainConfig(iterations=10**9, max_seconds=budget, checkpoint_every=10**9, sample_every=0,
                         seed=args.seed, snapshot_every_s=budget / args.snapshots, **settings)
    summary = train(renderer, source, root / variant, config, device=device)
    base = {"renderer": variant, "preset": args.preset, "size": renderer.options.render_size, "device": device,
            "minutes": args.minutes, "train_frames": len(source), "threads": torch.get_num_threads(),
            "iterations_total": summary["iterations"]}
    for path in sorted((root / variant / "snapshots").glob("*.pt")):  # the trainer's timed snapshots
        state = read_checkpoint(path, device)
        figures = evaluate(renderer_from_state(state, device, path), held, device, max_frames=args.eval_frames)
        emit("psnr_vs_time", round(figures["face_psnr"], 3), "dB",
             {**base, "training_seconds": round(float(state["elapsed_s"]), 1), "iterations": int(state["iteration"]),
              "mouth_psnr": round(figures["mouth_psnr"], 3), "psnr": round(figures["psnr"], 3),
              "face_ssim": round(figures["face_ssim"], 4), "load_avg_after": load_average()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, default=None)
    parser.add_argument("--actor", default="a")
    parser.add_argument("--renderers", nargs="+", default=["lipnerf", "triplane"])
    parser.add_argument("--preset", default=None, help="the variants' preset (default: each variant's own)")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--size", type=int, default=None, help="render size (default: 512 on a GPU, 256 on a CPU)")
    parser.add_argument("--keep-size", action="store_true", help="keep the preset's render size")
    parser.add_argument("--frames", type=int, default=250, help="frames of the known clip (without -w)")
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--eval-frames", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    args.size = args.size or (512 if device == "cuda" else 256)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.workspace is not None:
            from core.workspace import Workspace

            ws, actor = Workspace.open(args.workspace), args.actor
        else:
            from core.synthetic.known_clip import known_clip_workspace

            ws, actor = known_clip_workspace(root / "ws", n_frames=args.frames, size=args.size), "a"
        for variant in args.renderers:
            run_variant(variant, args, ws, actor, device, root / "models")


if __name__ == "__main__":
    main()
