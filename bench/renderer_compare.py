"""Renderer variants side by side on one real clip: the same frames, the same held-out split, one table.

    python build.py bench renderer_compare --clip ../shared/data/real/clips/long/office_man_256_25fps_60s.mp4 \\
        --renderers neural_texture lipnerf --minutes 30 --holdout 0.1 --out /tmp/compare-office

The clip is ingested as an actor's footage and tracked (both kept in ``--out``/workspace and reused by a
rerun); each variant trains on the first ``1 - holdout`` of the clip for ``--minutes`` of wall time (or
``--iterations``), then the shared evaluation (:mod:`core.renderers.evaluate`) measures it on the held-out tail.
``--set KEY=VALUE`` passes a renderer option to every variant trained. ``--keep-trained`` measures a variant an
earlier run trained instead of training it again from scratch (which discards that run's checkpoint).
``heldout.png`` shows held-out frames: the real frame, then each variant's rendering, one row per frame.

Figures: ``held_out`` per variant (face-mask PSNR / SSIM, mouth PSNR, whole-crop PSNR / SSIM, iterations and
training seconds), printed as JSON lines and as a markdown table in ``table.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit, emodub


def heldout_sheet(ws_root: Path, models: list[str], out: Path, rows: int = 4) -> Path:
    """Held-out frames (real | each model) as one PNG."""
    import imageio.v3 as iio
    import torch

    from core.renderers.data import actor_sources
    from core.renderers.registry import load
    from core.workspace import Workspace

    ws = Workspace.open(ws_root)
    renderers = [load(ws.model_dir("actor", m)) for m in models]
    split = json.loads((ws.model_dir("actor", models[0]) / "split.json").read_text())
    _, held, _ = actor_sources(ws, "actor", renderers[0].needs, float(split["holdout"]))
    picks = np.linspace(0, len(held) - 1, rows).round().astype(int).tolist()
    lines = []
    with torch.no_grad():
        for i in picks:
            cells = [held.batch([i]).frames[0]]
            for renderer in renderers:
                _, held_r, _ = actor_sources(ws, "actor", renderer.needs, float(split["holdout"]))
                cells.append(renderer(held_r.batch([i])).image[0].clamp(0, 1))
            lines.append(torch.cat(cells, -1))
    sheet = (torch.cat(lines, -2).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    iio.imwrite(out, sheet)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--renderers", nargs="+", default=["neural_texture", "lipnerf"])
    parser.add_argument("--minutes", type=float, default=30.0, help="training wall time per variant")
    parser.add_argument("--iterations", type=int, default=None, help="or a fixed number of steps")
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("compare-out"))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--set", action="append", default=[], dest="options", metavar="KEY=VALUE",
                        help="a renderer option for every variant trained here (repeatable), e.g. expression_code=16")
    parser.add_argument("--keep-trained", action="store_true",
                        help="a variant already trained in the workspace (an earlier run) is measured, not retrained")
    args = parser.parse_args()
    if not args.clip.exists():
        sys.exit(f"{args.clip} does not exist (the shared data is not beside the project?)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ws, log, dev = out / "workspace", out / "commands.log", ["--device", args.device]
    if not (ws / "emodub.json").exists():
        from core.workspace import Workspace

        Workspace.create(ws)
    clip_dir = ws / "actors" / "actor" / "clips" / "take"
    stages: dict[str, float] = {}
    if not (clip_dir / "video.mp4").exists():
        t = time.perf_counter()
        emodub("ingest", "-w", str(ws), str(args.clip), "--actor", "actor", "--clip", "take", "--emotion",
               "neutral", log=log)
        stages["ingest"] = round(time.perf_counter() - t, 1)
    if not (clip_dir / "tracking" / "params.npz").exists():
        t = time.perf_counter()
        emodub("track", "-w", str(ws), "--actor", "actor", "--clip", "take", *dev, log=log)
        stages["track"] = round(time.perf_counter() - t, 1)
    budget = ["--iterations", str(args.iterations)] if args.iterations else ["--minutes", str(args.minutes)]
    results: dict[str, Any] = {}
    config = {"clip": args.clip.name, "holdout": args.holdout, "minutes": args.minutes, "iterations": args.iterations,
              **({"options": args.options} if args.options else {})}
    settings = [arg for option in args.options for arg in ("--set", option)]
    for variant in args.renderers:
        t = time.perf_counter()
        summary = ws / "actors" / "actor" / "models" / variant / "summary.json"
        if args.keep_trained and summary.exists():
            trained = json.loads(summary.read_text())
            if float(json.loads(summary.with_name("split.json").read_text())["holdout"]) != args.holdout:
                sys.exit(f"{variant} in {ws} was trained with another --holdout; drop --keep-trained")
        else:
            trained = emodub("train", "renderer", "-w", str(ws), "--actor", "actor", "--renderer", variant,
                             "--holdout", str(args.holdout), *budget, *settings, "--restart", "--no-eval", *dev,
                             log=log)
            stages[f"train_{variant}"] = round(time.perf_counter() - t, 1)
        held = emodub("eval", "renderer", "-w", str(ws), "--actor", "actor", "--name", variant, *dev, log=log)
        results[variant] = {**{k: round(held[k], 4) for k in ("face_psnr", "face_ssim", "mouth_psnr", "psnr", "ssim")},
                            "frames": held["frames"], "iterations": trained["iterations"],
                            "training_seconds": round(trained.get("training_seconds", trained["seconds"]), 1),
                            "iterations_per_s": round(trained["iterations_per_s"], 2)}
        emit("held_out", results[variant], "", {**config, "renderer": variant})
    sheet = heldout_sheet(ws, list(args.renderers), out / "heldout.png")
    lines = [f"Held-out last {args.holdout:.0%} of `{args.clip.name}` (trained on the rest; each row's training "
             "budget in its last two columns)", "",
             "| renderer | face PSNR dB | face SSIM | mouth PSNR dB | whole-crop PSNR dB | whole-crop SSIM | frames "
             "| iterations | training s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {v} | {r['face_psnr']:.2f} | {r['face_ssim']:.3f} | {r['mouth_psnr']:.2f} | {r['psnr']:.2f} | "
              f"{r['ssim']:.3f} | {r['frames']} | {r['iterations']} | {r['training_seconds']:.0f} |"
              for v, r in results.items()]
    (out / "table.md").write_text("\n".join(lines) + f"\n\n![held-out frames]({sheet.name})\n")
    (out / "summary.json").write_text(json.dumps({"config": config, "held_out": results, "stages_s": stages},
                                                 indent=2))
    emit("summary", {"held_out": results, "stages_s": stages}, "", config)


if __name__ == "__main__":
    main()
