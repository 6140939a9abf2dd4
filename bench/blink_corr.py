"""Do the rendered eyes follow the eye signal that drove them? MediaPipe's eye openness on tri-plane renders.

    python bench/blink_corr.py -w demo-out/workspace --actor synthetic --model triplane --frames 200

On up to ``--frames`` held-out frames of the model's split (spread evenly), every frame is rendered in eval mode
(the evaluation's path) and MediaPipe FaceMesh (:mod:`core.landmarks.detector`) finds the 68 landmarks on the
rendered crop; the measured openness is the mean eye aspect ratio of both eyes
(:func:`core.landmarks.mapping.eye_aspect_ratio`). The driving signal is the mean openness the renderer was
conditioned on (``RenderOutput.extras["eye_openness"]``). Two signals:

* ``own``: the frames' own tracked eyes (the synthetic actor's spontaneous blinks, few in a held-out tail);
* ``sweep``: the plate's blink coefficients replaced by a triangle wave 0 -> 1 -> 0 (period ``--period`` frames),
  so the eyes must close and open on command whatever the frame (needs a face model with ``blink_*``
  expressions; the renderer's default ``blinks = "shot"`` reads the plate's eyes).

Figures (JSON lines ``blink_corr``, one per signal): Pearson r between the driving and the measured openness over
the frames where MediaPipe found a face (goal >= 0.8), with the frame counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
import torch
from _common import emit


def triangle(n: int, period: int) -> np.ndarray:
    """(n,) 0 -> 1 -> 0 every ``period`` frames."""
    phase = (np.arange(n) % period) / period
    return (1.0 - np.abs(2.0 * phase - 1.0)).astype(np.float32)


def measure(renderer: Any, held: Any, picks: list[int], detector: Any, blink: np.ndarray | None,
            batch_size: int, device: str) -> dict[str, Any]:
    """Render ``picks`` (plate blinks overwritten by ``blink`` when given); driving and measured openness."""
    from core.landmarks.mapping import eye_aspect_ratio

    driving, measured = [], []
    for start in range(0, len(picks), batch_size):
        batch = held.batch(picks[start:start + batch_size], device)
        if blink is not None:
            names = list(batch.face_model.expr_names)
            plate = batch.plate_params.map(lambda x: x.clone())
            for side in ("blink_left", "blink_right"):
                plate.expression[:, names.index(side)] = torch.as_tensor(blink[start:start + batch.size],
                                                                         device=plate.expression.device)
            batch.plate_params = plate
        with torch.no_grad():
            out = renderer(batch)
        frames = (out.image.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        for k, frame in enumerate(frames):
            found = detector.detect(frame)
            driving.append(float(out.extras["eye_openness"][k].mean()))
            measured.append(float(eye_aspect_ratio(found.lmk68).mean()) if found.found else float("nan"))
    d, m = np.asarray(driving), np.asarray(measured)
    ok = np.isfinite(m)
    r = float(np.corrcoef(d[ok], m[ok])[0, 1]) if ok.sum() > 2 and np.ptp(d[ok]) > 0 else float("nan")
    return {"r": r, "frames": len(d), "detected": int(ok.sum()), "driving_range": [float(d.min()), float(d.max())],
            "driving": d.round(4).tolist(), "measured": np.where(ok, m, -1).round(4).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--model", default="triplane")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--signal", default="both", choices=["own", "sweep", "both"])
    parser.add_argument("--period", type=int, default=24, help="frames of one close-open cycle of the sweep")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=None, help="write summary.json (with the per-frame series)")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    from core.landmarks.detector import make_detector
    from core.renderers.data import actor_sources
    from core.renderers.registry import load
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    folder = ws.model_dir(args.actor, args.model)
    renderer = load(folder, device)
    split = json.loads((folder / "split.json").read_text())
    _, held, _ = actor_sources(ws, args.actor, renderer.needs, float(split["holdout"]))
    n = min(args.frames, len(held))
    picks = np.linspace(0, len(held) - 1, n).round().astype(int).tolist()
    detector = make_detector("mediapipe", static_image_mode=True)  # the frames are pictures, not a video
    signals = ["own", "sweep"] if args.signal == "both" else [args.signal]
    has_blinks = {"blink_left", "blink_right"} <= set(held.face_model().expr_names)
    config = {"model": args.model, "variant": renderer.variant, "blinks": getattr(renderer.options, "blinks", None),
              "device": device}
    summary: dict[str, Any] = {"config": config}
    for signal in signals:
        if signal == "sweep" and not has_blinks:
            emit("blink_corr", None, "", {**config, "signal": signal, "skipped": "no blink_* expressions"})
            continue
        result = measure(renderer, held, picks, detector, triangle(n, args.period) if signal == "sweep" else None,
                         args.batch, device)
        summary[signal] = result
        emit("blink_corr", None if np.isnan(result["r"]) else round(result["r"], 4), "",
             {**config, "signal": signal, **{k: result[k] for k in ("frames", "detected", "driving_range")}})
    detector.close()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
