"""Where NeRF-AD's attention lands, how well its AU classifier reads held-out frames, and how our tracked action
units compare with the synthetic actor's ground truth.

    python build.py bench nerf_ad_attention -w demo-out/workspace --actor synthetic --holdout 0.2 \\
        [--model nerf_ad] [--steps 800] [--set KEY=VALUE ...] [--device auto] [--out /tmp/nerf-ad-attention]

With ``--model`` the attention of a trained ``nerf_ad`` model is measured; without, the AU-attention module
alone is trained on the actor's training frames (``--steps``, on ``--device``: a GPU when there is one) and measured
(minutes, not a whole renderer; the measuring runs on the CPU).
On up to ``--frames`` held-out frames:

* ``attention``: the share of the speech weight 1 - A (summed over the crop) inside the mesh's mouth and jaw
  regions (lips, mouth interior, teeth, tongue, chin and the jaw: the lower face from under the nose to the
  menton; goal >= 70%), on the eyes (eyes, eyelids; goal <= 5%), and inside the face mask; ``mouth_chin_share``
  is the tighter reading without the jaw region (lips, mouth interior, chin); ``sheet.png`` shows frames, their
  speech weight in red, the identity face and the audio face;
* ``au_classifier``: C's AU intensities (0-5) against the labels it learned from (tracked AUs) and, where the
  clip has ground truth, against the true AUs (the named mapping of the true parameters);
* ``au_tracking``: on ground-truth clips, the AUs of our tracking (the estimator the renderer uses, named or
  landmark) against the true ones, per AU (MAE, Pearson r), and the landmark regressor's on the same frames.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
from _common import emit

MOUTH_JAW = ("lips", "mouth_interior", "teeth", "tongue", "chin", "jaw")
MOUTH_CHIN = ("lips", "mouth_interior", "teeth", "tongue", "chin")  # the tight reading, reported beside it
EYES = ("eyes", "eyelids_upper", "eyelids_lower")


def true_units(held: Any, picks: list[int]) -> np.ndarray | None:
    """(n, 10) ground-truth AUs of held-out items (``None`` unless every clip has ``ground_truth/params.npz``)."""
    import torch

    from core.expression.action_units import named_action_units
    from core.tracking.evaluate import ground_truth_model, ground_truth_params

    rows = []
    for i in picks:
        k, f, _ = held.locate(int(i))
        clip = held.clips[k].clip
        if not (clip.folder / "ground_truth" / "params.npz").exists():
            return None
        model = ground_truth_model(clip.folder, clip.face_model("cpu"))
        truth = ground_truth_params(clip.folder, model)
        rows.append(named_action_units(model, truth[torch.tensor([f])]))
    return torch.cat(rows).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--model", default=None, help="a trained nerf_ad model (default: train the attention only)")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("/tmp/nerf-ad-attention"))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where the attention module trains (auto: CUDA when present)")
    parser.add_argument("--set", action="append", default=None, dest="options", metavar="KEY=VALUE",
                        help="a nerf_ad option for the attention trained here (e.g. lambda_mask=5)")
    args = parser.parse_args()

    import imageio.v3 as iio
    import torch

    from core.expression.action_units import (
        AU_MAX,
        MOUTH_AUS,
        action_units,
        au_report,
        landmark_action_units,
    )
    from core.render.masks import face_mask, region_mask
    from core.renderers.data import actor_sources
    from core.renderers.nerf_ad.config import NeRFADConfig
    from core.renderers.nerf_ad.model import NeRFAD, region_shares
    from core.renderers.nerf_ad.networks import resize
    from core.renderers.nerf_ad.pretrain import MOUTH, classifier_units, face_set, speech_weights, train_attention
    from core.workspace import Workspace

    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    ws = Workspace.open(args.workspace)
    config: dict[str, Any] = {"actor": args.actor, "holdout": args.holdout}
    started = time.time()
    if args.model:
        from core.renderers.registry import load

        renderer = load(ws.model_dir(args.actor, args.model)).eval()
        assert isinstance(renderer, NeRFAD), f"{args.model} is not a nerf_ad model"
        options = renderer.options
        generator, classifier = renderer.generator, renderer.classifier
        unit_low, unit_span = renderer.au_low, renderer.au_span
        config["model"] = args.model
    else:
        from core.jobs.context import resolve_device
        from core.renderers.jobs import parse_settings
        from core.renderers.spec import resolve_options

        settings = {**parse_settings(args.options), "attention_steps": args.steps}
        options = NeRFADConfig(**resolve_options("nerf_ad", None, settings))
        config["options"] = {k: v for k, v in settings.items() if k != "attention_steps"}
        train_src, _, _ = actor_sources(ws, args.actor, NeRFAD.needs_for(options), args.holdout)
        device = resolve_device(args.device)
        faces = face_set(train_src, options.face_size, options.action_units, options.au_scale)
        unit_low, unit_span = faces.unit_low, faces.unit_span
        generator, classifier, info = train_attention(
            faces, args.steps, lambda_code=options.lambda_code, lambda_cycle=options.lambda_cycle,
            lambda_gp=options.lambda_gp, lambda_mask=options.lambda_mask, lambda_tv=options.lambda_tv,
            mask_outside_weight=options.mask_outside_weight, device=device)
        generator, classifier = generator.cpu(), classifier.cpu()
        config.update({"steps": args.steps, "device": device, "training_frames": len(faces),
                       "train_seconds": time.time() - started,
                       **{f"final_{k}": v for k, v in info.items()}})
    _, held, _ = actor_sources(ws, args.actor, NeRFAD.needs_for(options), args.holdout)
    picks = np.unique(np.linspace(0, len(held) - 1, min(len(held), args.frames)).round().astype(int)).tolist()
    speech_all, regions = [], {"mouth_jaw": [], "mouth_chin": [], "eyes": [], "face": []}
    crops_small, labels = [], []
    with torch.no_grad():
        for start in range(0, len(picks), 16):
            batch = held.batch(picks[start:start + 16])
            small = resize(batch.frames, options.face_size)
            speech = speech_weights(generator, small)
            speech_all.append(torch.nn.functional.interpolate(speech, size=batch.frames.shape[-2:], mode="bilinear",
                                                              align_corners=False))
            model, params, camera = batch.face_model, batch.params, batch.camera
            regions["mouth_jaw"].append(region_mask(model, params, camera, include=MOUTH_JAW))
            regions["mouth_chin"].append(region_mask(model, params, camera, include=MOUTH_CHIN))
            regions["eyes"].append(region_mask(model, params, camera, include=EYES))
            regions["face"].append(face_mask(model, params, camera))
            crops_small.append(small)
            labels.append(action_units(model, params) / AU_MAX)
        speech = torch.cat(speech_all)
        shares = region_shares(speech, {k: torch.cat(v) for k, v in regions.items()})
        small = torch.cat(crops_small)
        predicted = classifier_units(classifier, small, unit_low, unit_span).numpy()
    tracked = torch.cat(labels).numpy() * AU_MAX
    emit("nerf_ad_attention", {"mouth_jaw_share": shares["mouth_jaw"], "mouth_chin_share": shares["mouth_chin"],
                               "eyes_share": shares["eyes"],
                               "face_share": shares["face"], "mean_speech_weight": float(speech.mean()),
                               "frames": len(picks)}, "share", config)
    classifier_vs_tracked = au_report(predicted, tracked[:, MOUTH], MOUTH_AUS)  # C reads the mouth AUs only
    record: dict[str, Any] = {"classifier_vs_tracked_mae": float(np.mean([v["mae"] for v in
                                                                          classifier_vs_tracked.values()]))}
    truth = true_units(held, picks)
    if truth is not None:
        classifier_vs_truth = au_report(predicted, truth[:, MOUTH], MOUTH_AUS)
        record["classifier_vs_truth_mae"] = float(np.mean([v["mae"] for v in classifier_vs_truth.values()]))
        record["per_au_vs_truth"] = classifier_vs_truth
        tracking = au_report(tracked, truth)
        with torch.no_grad():
            landmark = np.concatenate([landmark_action_units(held.face_model(), held.params(picks[i:i + 64])).numpy()
                                       for i in range(0, len(picks), 64)])
        emit("nerf_ad_au_tracking", {"tracked_vs_truth": tracking, "landmark_vs_truth": au_report(landmark, truth)},
             "mae_r", config)
    emit("nerf_ad_au_classifier", record, "mae", config)
    # The sheet: frame | speech weight in red | identity face | audio face, 6 rows.
    rows = []
    with torch.no_grad():
        for j in np.linspace(0, len(picks) - 1, min(6, len(picks))).round().astype(int).tolist():
            frame = held.batch([picks[j]]).frames[0]
            weight = speech[j]
            overlay = frame * (1 - 0.6 * weight) + 0.6 * weight * torch.tensor([1.0, 0.0, 0.0])[:, None, None]
            rows.append(torch.cat([frame, overlay, frame * (1 - weight), frame * weight], -1))
    sheet = (torch.cat(rows, -2).permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    iio.imwrite(args.out / "sheet.png", sheet)
    (args.out / "attention.json").write_text(json.dumps({"shares": shares, **record, "config": config}, indent=1))
    print(f"sheet: {args.out / 'sheet.png'}")


if __name__ == "__main__":
    main()
