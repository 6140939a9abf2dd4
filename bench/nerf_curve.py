"""Held-out PSNR against training time: each NeRF variant trained for a fixed wall time on the same frames.

    python build.py bench nerf_curve --renderers lipnerf triplane --minutes 6 --size 512      # a lent GPU
    python build.py bench nerf_curve -w WS --actor actor --renderers lipnerf triplane --minutes 6
    python build.py bench nerf_curve -w WS --actor actor --renderers neural_texture --keep-size --preset gpu \
        --strip-dir strips --label gpu > curves.jsonl
    python build.py bench nerf_curve --plot-from curves.jsonl curves.png

Data: ``-w WS --actor A`` (an actor's tracked clips, e.g. the workspace ``bench/renderer_compare.py`` made of a
real clip), or by default a throw-away workspace with one ``--frames``-frame clip of ``--size`` px rendered from
known parameters (:mod:`core.synthetic.known_clip`). The last ``--holdout`` of every clip is held out.

Each variant (its ``--preset``, ``render_size = --size`` unless ``--keep-size``) trains with the shared trainer
for ``--minutes`` of wall time, the learning rate decaying over that time; the trainer keeps its weights
``--snapshots`` times during the run (``TrainConfig.snapshot_every_s``; writing them is part of the measured
time). Afterwards each snapshot is evaluated by the shared evaluation on up to ``--eval-frames`` held-out
frames (not timed). Whole-frame speed is ``bench nerf``'s. ``--set KEY=VALUE`` changes a renderer option (as
``emodub train renderer --set``); ``--lr``, ``--lr-final`` and ``--batch-size`` override the preset's training
settings. ``--strip-dir`` writes, for the last snapshot, ``--strip-frames`` held-out frames (rendered above,
filmed below) as one PNG per variant.

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
    from core.renderers.jobs import parse_settings
    from core.renderers.registry import build, make_options, read_checkpoint, renderer_class, renderer_from_state
    from core.renderers.spec import preset_train_settings, resolve_options
    from core.renderers.train import TrainConfig, train

    options = {} if args.keep_size else {"render_size": args.size}
    options.update(parse_settings(args.options or []))
    needs = renderer_class(variant).needs_for(make_options(variant, resolve_options(variant, args.preset, options)))
    source, held, _ = actor_sources(ws, actor, needs, args.holdout)
    setup = RendererSetup(source.size, source.face_model_spec, source.train_frames, fps=source.clips[0].clip.fps,
                          n_expression=source.face_model().n_expr)
    torch.manual_seed(args.seed)
    renderer = build(variant, setup, args.preset, options)
    budget = args.minutes * 60.0
    settings = {k: v for k, v in preset_train_settings(variant, args.preset).items()
                if k in ("lr", "lr_final", "betas", "batch_size")}
    settings.update({k: v for k, v in (("lr", args.lr), ("lr_final", args.lr_final), ("batch_size", args.batch_size))
                     if v is not None})
    config = TrainConfig(iterations=10**9, max_seconds=budget, checkpoint_every=10**9, sample_every=0,
                         seed=args.seed, snapshot_every_s=budget / args.snapshots, **settings)
    summary = train(renderer, source, root / variant, config, device=device)
    base = {"renderer": variant, "label": args.label, "preset": args.preset, "options": options,
            "train": settings, "size": getattr(renderer.options, "render_size", source.size), "device": device,
            "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "minutes": args.minutes, "train_frames": len(source), "held_out_frames": len(held),
            "threads": torch.get_num_threads(), "iterations_total": summary["iterations"]}
    snapshots = sorted((root / variant / "snapshots").glob("*.pt"))  # the trainer's timed snapshots
    for path in snapshots:
        state = read_checkpoint(path, device)
        trained = renderer_from_state(state, device, path)
        figures = evaluate(trained, held, device, max_frames=args.eval_frames)
        if args.strip_dir is not None and path == snapshots[-1]:
            write_strip(trained, held, args.strip_dir / f"{args.label or variant}_{variant}.png", device,
                        args.strip_frames)
        emit("psnr_vs_time", round(figures["face_psnr"], 3), "dB",
             {**base, "training_seconds": round(float(state["elapsed_s"]), 1), "iterations": int(state["iteration"]),
              "mouth_psnr": round(figures["mouth_psnr"], 3), "psnr": round(figures["psnr"], 3),
              "face_ssim": round(figures["face_ssim"], 4), "load_avg_after": load_average()})


@torch.no_grad()
def write_strip(renderer: Any, held: Any, path: Path, device: str, picks: int) -> Path:
    """``picks`` held-out frames spread over ``held``: rendered (top row) above filmed (bottom row), one PNG."""
    import imageio.v3 as iio
    import numpy as np

    from core.workspace import atomic_path

    indices = np.linspace(0, len(held) - 1, min(picks, len(held))).round().astype(int).tolist()
    batch = held.batch(indices, device)
    pred = renderer.eval()(batch).image
    assert pred is not None
    rows = [torch.cat(list(images.float().clamp(0, 1)), dim=-1) for images in (pred, batch.frames)]  # (3, H, n W)
    grid = (torch.cat(rows, dim=-2).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, grid, extension=".png")
    return path


def plot_curves(records: Path, out: Path) -> Path:
    """Held-out face PSNR against training seconds, one line per run (``label`` or renderer) of a JSON-lines
    file this bench printed; a PNG."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, list[tuple[float, float]]] = {}
    for line in records.read_text().splitlines():
        row = json.loads(line)
        if row.get("name") == "psnr_vs_time":
            config = row["config"]
            runs.setdefault(config.get("label") or config["renderer"], []).append(
                (float(config["training_seconds"]), float(row["value"])))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for label, points in sorted(runs.items()):
        seconds, psnr = zip(*sorted(points), strict=True)
        ax.plot(seconds, psnr, marker="o", label=label)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("held-out face PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


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
    parser.add_argument("--set", action="append", default=None, dest="options", metavar="KEY=VALUE",
                        help="a renderer option (repeatable), as `emodub train renderer --set`")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    parser.add_argument("--lr-final", type=float, default=None,
                        help="learning rate reached at the end of the time budget (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per step (default: the preset's)")
    parser.add_argument("--label", default=None, help="a name for this run in the figures and the strip's file")
    parser.add_argument("--strip-dir", type=Path, default=None, help="write the last snapshot's held-out strip here")
    parser.add_argument("--strip-frames", type=int, default=6)
    parser.add_argument("--plot-from", nargs=2, type=Path, default=None, metavar=("JSONL", "PNG"),
                        help="only plot the figures of an earlier run (its printed JSON lines) and exit")
    args = parser.parse_args()
    if args.plot_from is not None:
        print(plot_curves(*args.plot_from))
        return
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
