"""One evaluation for every renderer variant, on the held-out frames of the split it was trained with.

Figures (means over the evaluated frames; every frame is rendered from its tracked parameters):

* ``face_psnr`` / ``face_ssim`` — inside the tracked face mask (the mesh without scalp, ears and neck,
  rasterized from the frame's tracked parameters), over the frames where that mask has at least
  ``MIN_MASK_PIXELS`` pixels (``face_frames``). The figure renderers are compared on: the neural-texture
  renderer copies the real background into the crop, so whole-crop figures flatter it.
* ``mouth_psnr`` — inside the lips and the mouth interior.
* ``psnr`` / ``ssim`` — the whole crop (kept for continuity with earlier reports).
* ``lpips`` — LPIPS (VGG) on the whole crop, when the user has its weights (:mod:`core.eval.pretrained`).

The best of an actor's trained renderers (what ``emodub dub`` uses by default) is the one with the
highest held-out ``face_psnr``; :func:`evaluate_model` records the figures in the workspace manifest.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from core.render.masks import face_mask, mouth_mask

from .base import Renderer
from .data import FrameSource

METRICS = ("face_psnr", "face_ssim", "mouth_psnr", "psnr", "ssim")
MIN_MASK_PIXELS = 16


@torch.no_grad()
def evaluate(renderer: Renderer, held: FrameSource, device: str = "cpu", max_frames: int = 200,
             batch: int = 4, progress: Any = None) -> dict[str, Any]:
    """The figures of the module docstring on up to ``max_frames`` frames spread evenly over ``held``."""
    from core.eval.image_metrics import psnr, ssim
    from core.eval.pretrained import load_lpips, lpips_unavailable

    n = min(len(held), max_frames)
    if n == 0:
        from core.jobs.context import JobFailed

        raise JobFailed("no held-out frames to evaluate on", code="no_data",
                        hint="train with --holdout > 0 on clips of at least two frames")
    renderer = renderer.to(device).eval()
    lpips = load_lpips(device)
    indices = np.linspace(0, len(held) - 1, n).round().astype(int)
    scores: dict[str, list[float]] = {k: [] for k in (*METRICS, "lpips")}
    for start in range(0, n, batch):
        b = held.batch(indices[start:start + batch].tolist(), device)
        pred = renderer(b).image
        assert pred is not None
        pred = pred.float().clamp(0, 1)
        target = b.frames
        face = face_mask(b.face_model, b.plate_params, b.camera)
        mouth = mouth_mask(b.face_model, b.plate_params, b.camera)
        scores["psnr"] += psnr(pred, target).tolist()
        scores["ssim"] += ssim(pred, target).tolist()
        # A frame whose mask is (nearly) empty says nothing about the face: it is left out of the mean
        # (its PSNR would be the 100 dB of a zero error).
        has_face = (face.flatten(1).sum(1) >= MIN_MASK_PIXELS).tolist()
        has_mouth = (mouth.flatten(1).sum(1) >= MIN_MASK_PIXELS).tolist()
        scores["face_psnr"] += [v for v, ok in zip(psnr(pred, target, face).tolist(), has_face, strict=True) if ok]
        scores["face_ssim"] += [v for v, ok in zip(ssim(pred, target, face).tolist(), has_face, strict=True) if ok]
        scores["mouth_psnr"] += [v for v, ok in zip(psnr(pred, target, mouth).tolist(), has_mouth, strict=True)
                                 if ok]
        if lpips is not None:
            scores["lpips"] += lpips(pred, target).tolist()
        if progress is not None:
            progress(min(start + batch, n), n)
    result: dict[str, Any] = {k: float(np.mean(v)) if v else float("nan") for k, v in scores.items()
                              if v or k != "lpips"}
    result["face_frames"] = len(scores["face_psnr"])
    if lpips is None:
        result["lpips"] = lpips_unavailable()
    result.update({"frames": int(n), "variant": renderer.variant})
    return result


def evaluate_model(ws: Any, actor: str, name: str, device: str = "cpu", max_frames: int = 200,
                   progress: Any = None) -> dict[str, Any]:
    """Evaluate the actor's trained renderer ``name`` on its held-out frames, write ``eval.json`` beside it and
    record the figures in the manifest (they decide which renderer is the actor's best)."""
    from core.workspace import atomic_write_json

    from .data import actor_sources
    from .registry import load

    out = ws.model_dir(actor, name)
    renderer = load(out, device)
    split = json.loads((out / "split.json").read_text())
    _, held, _ = actor_sources(ws, actor, renderer.needs, float(split["holdout"]))
    result = evaluate(renderer, held, device, max_frames, progress=progress)
    result["model"] = name
    atomic_write_json(out / "eval.json", result)
    record = ws.read_manifest()["actors"].get(actor, {}).get("models", {}).get(name)
    if record is not None:
        ws.set_model(actor, name, {**record, "held_out": {k: round(result[k], 4) for k in METRICS},
                                   "held_out_frames": result["frames"]})
    return result
