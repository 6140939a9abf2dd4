"""Held-out face PSNR split by eye openness: does a renderer draw the lids where the footage blinks?

    python bench/blink_split.py -w /tmp/compare-french/workspace --actor actor --models nt_normal,nt_eye2k

For every model, on its own held-out split (``split.json``): each held-out frame is rendered in eval mode and its
face-mask PSNR measured (the shared evaluation's region). Frames are then split by the tracked eye openness
(:func:`core.renderers.triplane.eyes.source_eye_openness`, the more closed eye, 1 = the actor's open eye as
measured on the *training* frames): below ``--closed`` (a blink, a squint) and the rest. Blinks are a few percent of
a clip, so the whole-split mean hides them; this does not.

One JSON line ``blink_split`` per model: the mean of the per-frame PSNRs over all, closing and other frames, the
frame counts, and the training frames' share below the threshold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
import torch
from _common import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--models", required=True, help="comma-separated renderer model names")
    parser.add_argument("--closed", type=float, default=0.75, help="eye openness below which a frame is closing")
    args = parser.parse_args()

    from core.eval.image_metrics import psnr
    from core.render.masks import face_mask
    from core.renderers.data import actor_sources
    from core.renderers.evaluate import MIN_MASK_PIXELS
    from core.renderers.registry import load
    from core.renderers.triplane.eyes import (
        eye_openness,
        open_eye_ratio,
        source_canonical_landmarks,
        source_eye_openness,
    )
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    for name in [n.strip() for n in args.models.split(",") if n.strip()]:
        model_dir = ws.model_dir(args.actor, name)
        renderer = load(model_dir).eval()
        holdout = float(json.loads((model_dir / "split.json").read_text())["holdout"])
        train, held, _ = actor_sources(ws, args.actor, renderer.needs, holdout)
        train_landmarks = source_canonical_landmarks(train)
        open_ratio = open_eye_ratio(train_landmarks)
        train_level = eye_openness(train_landmarks, open_ratio).numpy().min(1)
        level = source_eye_openness(held, open_ratio).min(1)
        scores, has_face = [], []
        with torch.no_grad():  # the shared evaluation's face PSNR (core.renderers.evaluate), per frame
            for start in range(0, len(held), 4):
                batch = held.batch(list(range(start, min(start + 4, len(held)))))
                image = renderer(batch).image.float().clamp(0, 1)
                mask = face_mask(batch.face_model, batch.plate_params, batch.camera)
                scores += psnr(image, batch.frames, mask).tolist()
                has_face += (mask.flatten(1).sum(1) >= MIN_MASK_PIXELS).tolist()
        keep = np.asarray(has_face)
        values, level = np.asarray(scores)[keep], level[keep]
        closing = level < args.closed
        emit("blink_split", {
            "face_psnr_all": round(float(values.mean()), 3),
            "face_psnr_closing": round(float(values[closing].mean()), 3) if closing.any() else None,
            "face_psnr_other": round(float(values[~closing].mean()), 3) if (~closing).any() else None,
            "frames": int(len(values)), "closing_frames": int(closing.sum()),
            "train_closing_share": round(float(np.mean(train_level < args.closed)), 4),
        }, "dB", {"workspace": str(args.workspace), "actor": args.actor, "model": name, "holdout": holdout,
                  "closed_below": args.closed})


if __name__ == "__main__":
    main()
