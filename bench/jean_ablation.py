"""JEAN's Table 2 ablation on an actor with ground truth (the synthetic demo actor): one table.

    python build.py bench jean_ablation -w demo-out/workspace --actor synthetic \\
        --models jean jean_no_audio_encoder jean_no_transformer

Train the models first on the same split, e.g. ``emodub train renderer -w demo-out/workspace --actor synthetic
--renderer jean --name jean_no_transformer --set expression_features=mlp --minutes 6 --holdout 0.2``. Per model:

* ``held_out``: the shared evaluation (``eval.json``: face-mask PSNR / SSIM, mouth PSNR), every frame rendered
  from its own audio and its own frames' expression (the paper's setting: expression source = the video);
* ``expression_lmd``: the expression error against ground truth. The held-out frames are rendered *driven*
  (as a dub does: their own audio, and expression features from the clip's emotion label only, no tracked
  expression), MediaPipe finds the 68 landmarks on the renders and on the real frames, and the error is their
  mean distance over the 51 inner points (no contour) in inter-ocular distances (0.01 = 1% of the face width),
  with ``driven_face_psnr`` beside it;
* ``lipsync``: the detector proxy (``core.eval.video_metrics.sync_report``: MediaPipe mouth opening against the
  speech envelope) of a dub of ``--shot`` with ``--seconds`` of synthetic speech no clip contains: peak r and
  its offset in frames.

Figures are JSON lines (``jean_ablation``, one per model) and a markdown table in ``--out``/table.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
from _common import emit, emodub, speech

INNER = slice(17, 68)


def driven_errors(ws: Any, actor: str, model: str, max_frames: int, device: str) -> dict[str, float]:
    """Expression error of driven renders of the held-out frames (module docstring)."""
    import torch

    from core.eval.image_metrics import psnr
    from core.landmarks.detector import make_detector
    from core.render.masks import face_mask
    from core.renderers.data import actor_sources
    from core.renderers.registry import load

    folder = ws.model_dir(actor, model)
    renderer = load(folder, device).eval()
    split = json.loads((folder / "split.json").read_text())
    _, held, _ = actor_sources(ws, actor, renderer.needs, float(split["holdout"]))
    picks = np.linspace(0, len(held) - 1, min(len(held), max_frames)).round().astype(int)
    detector = make_detector("mediapipe")
    errors, psnrs = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(picks), 4):
                batch = held.batch(picks[start:start + 4].tolist(), device)
                batch.driven = True
                image = renderer(batch).image.float().clamp(0, 1)
                mask = face_mask(batch.face_model, batch.plate_params, batch.camera)
                psnrs += psnr(image, batch.frames, mask).tolist()
                for pred, real in zip(image, batch.frames, strict=True):
                    to_u8 = lambda t: (t.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)  # noqa: E731
                    p, r = detector.detect(to_u8(pred)), detector.detect(to_u8(real))
                    if p.found and r.found:
                        iod = float(np.linalg.norm(r.lmk68[45] - r.lmk68[36]))
                        errors.append(float(np.linalg.norm(p.lmk68[INNER] - r.lmk68[INNER], axis=1).mean()) / iod)
    finally:
        detector.close()
    return {"expression_lmd": float(np.mean(errors)) if errors else float("nan"),
            "driven_face_psnr": float(np.mean(psnrs)), "frames": len(picks), "detected": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--models", nargs="+", default=["jean", "jean_no_audio_encoder", "jean_no_transformer"])
    parser.add_argument("--shot", default="demo_shot")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--max-frames", type=int, default=120)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from core.eval.video_metrics import sync_report
    from core.io.audio import write_wav
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    out = (args.out or args.workspace.parent / "jean-ablation").resolve()
    out.mkdir(parents=True, exist_ok=True)
    line = out / "unseen.wav"
    write_wav(line, speech(args.seconds, seed=5151), 16000)
    rows = []
    for model in args.models:
        held = json.loads((ws.model_dir(args.actor, model) / "eval.json").read_text())
        driven = driven_errors(ws, args.actor, model, args.max_frames, args.device)
        video = out / f"dub-{model}.mp4"
        emodub("dub", "-w", str(ws.root), "--actor", args.actor, "--shot", args.shot, "--audio", str(line),
               "--renderer-model", model, "--name", f"ablation-{model}", "--out", str(video),
               "--device", args.device, log=out / "commands.log")
        sync = sync_report(video, line)
        row = {"model": model, "face_psnr": held["face_psnr"], "face_ssim": held["face_ssim"],
               "mouth_psnr": held["mouth_psnr"], **driven, "lipsync_peak_r": sync["peak_corr"],
               "lipsync_offset_frames": sync["offset_frames"]}
        emit("jean_ablation", row, "", {"workspace": str(ws.root), "actor": args.actor, "seconds": args.seconds})
        rows.append(row)
    lines = ["| model | face PSNR / SSIM | mouth PSNR | expression LMD (driven) | driven face PSNR | "
             "lip-sync peak r (offset) |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['face_psnr']:.2f} / {r['face_ssim']:.3f} | {r['mouth_psnr']:.2f} | "
              f"{r['expression_lmd']:.4f} | {r['driven_face_psnr']:.2f} | {r['lipsync_peak_r']:.2f} "
              f"({r['lipsync_offset_frames']}) |" for r in rows]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
