"""The quality record of a tracked clip (``tracking/quality.json``).

* ``landmark_rmse_px`` — root mean square distance, in crop pixels (at ``crop_size``), between the tracked
  model's projected 68 landmarks and the target landmarks, over the usable (not flagged) frames; also per
  frame (``landmark_rmse_px_per_frame``, every frame, flagged ones included). ``landmark_rmse_px_inner`` leaves
  out the 17 jaw-contour points (the usual "inner 51" measure: the contour is a silhouette that detectors
  place loosely, and that the tracker down-weights).
* ``photometric_l1`` — mean absolute RGB error ([0, 1] scale) of the rendered face against the frame over
  the face pixels of the photometric energy, mean over usable frames; per frame too.
* ``eyelid_gap_corr``, ``blink_frames``, ``blink_closure``, ``lip_gap_corr`` — how the tracked lids and inner
  lips follow the targets' (see :func:`lid_and_lip_following`): a blink lasts a few frames, and temporal smoothing
  can keep the mesh's lids half open through it, or damp the lips, while the overall RMSE stays good.
* ``flagged_frames`` — frames not to trust: flagged by the landmark stage (no usable face) or tracked badly
  (landmark RMSE above ``flag_rmse_factor`` x the clip's median and above ``flag_rmse_min_px``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.eval.stats import pearson
from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera
from core.tracking.config import TrackerConfig
from core.tracking.data import ClipTargets
from core.tracking.geometry import EYELID_PAIRS, LandmarkModel

#: A frame is a blink frame when its target lid gap is under this share of the clip's median gap.
BLINK_GAP_SHARE = 0.75


def lid_and_lip_following(predicted: np.ndarray, targets: np.ndarray, usable: np.ndarray) -> dict[str, Any]:
    """How far the tracked lids and lips follow the target ones, over the usable frames.

    Args:
        predicted: (N, 68, 2) the tracked model's projected landmarks.
        targets: (N, 68, 2) the landmarks it was fitted to.
        usable: (N,) bool, the frames to count.

    Returns:
        ``eyelid_gap_corr``: Pearson r of the two per-frame lid gaps (``None`` when either is constant);
        ``blink_frames``: frames whose target gap is under :data:`BLINK_GAP_SHARE` of its clip median;
        ``blink_closure``: on those frames, how far the tracked gap closes below its own median as a share
        of how far the target gap closes below its median (1: as far, 0.5: half way; ``None`` without
        blink frames); ``lip_gap_corr``: Pearson r of the inner-lip openings (what the a2e learns).
    """
    from core.eval.lipsync import mouth_opening_from_landmarks, pair_gaps

    predicted, targets = predicted[usable], targets[usable]
    if len(targets) == 0:
        return {"eyelid_gap_corr": None, "blink_frames": 0, "blink_closure": None, "lip_gap_corr": None}
    tracked, target = pair_gaps(predicted, EYELID_PAIRS), pair_gaps(targets, EYELID_PAIRS)
    corr = pearson(tracked, target)
    lips = pearson(mouth_opening_from_landmarks(predicted, normalize="none"),
                   mouth_opening_from_landmarks(targets, normalize="none"))
    target_median = np.median(target)
    blink = target < BLINK_GAP_SHARE * target_median
    closure = None
    if blink.any():
        closed_target = float((target_median - target[blink]).mean())
        closed_tracked = float((np.median(tracked) - tracked[blink]).mean())
        closure = round(closed_tracked / closed_target, 4)
    return {"eyelid_gap_corr": None if corr is None else round(corr, 4), "blink_frames": int(blink.sum()),
            "blink_closure": closure, "lip_gap_corr": None if lips is None else round(lips, 4)}


@torch.no_grad()
def projected_landmarks(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera,
                        batch_size: int = 256) -> np.ndarray:
    """(N, 68, 2) crop-pixel landmarks of the tracked model in the camera convention (centres at +0.5)."""
    landmark_model = LandmarkModel(model)
    out = []
    for start in range(0, params.batch_size, batch_size):
        p = params[start:start + batch_size].to(model.device, model.dtype)
        cam = camera.to(model.device, model.dtype).expand(p.batch_size)
        xy, _ = cam.project(landmark_model(p))
        out.append(xy.cpu().numpy())
    return np.concatenate(out).astype(np.float32)


@torch.no_grad()
def photometric_errors(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera,
                       shared: dict[str, Any], targets: ClipTargets, photometric_size: int,
                       batch_size: int = 16) -> np.ndarray:
    """(N,) mean absolute RGB error per frame over the photometric mask (NaN where the mask is empty)."""
    from core.tracking.problem import FitView, FrameBatch, TrackingProblem

    problem = TrackingProblem(model, targets.crop_size, float(shared["distance"]), photometric_size)
    log_focal = torch.log(camera.fx[0]).to(model.device, model.dtype)
    out = []
    for start in range(0, params.batch_size, batch_size):
        index = np.arange(start, min(start + batch_size, params.batch_size))
        p = params[start:start + len(index)].to(model.device, model.dtype)
        values = {**p.tensors(), "shape": p.shape[0], "focal": log_focal,
                  "sh": torch.as_tensor(shared["sh"]).to(model.device, model.dtype),
                  "albedo": torch.as_tensor(shared["albedo"]).to(model.device, model.dtype)}
        lmk, lw, fw = targets.landmark_tensors(index, model.device, model.dtype)
        batch = FrameBatch(index=torch.as_tensor(index), contiguous=False, landmarks=lmk, landmark_weight=lw,
                           frame_weight=fw, images=targets.image_tensor(index, model.device, model.dtype))
        rgb, mask = FitView(problem, values, batch).render
        diff = (rgb - batch.images).abs().mean(-1)
        area = mask.sum((1, 2))
        err = (diff * mask).sum((1, 2)) / area.clamp_min(1.0)
        out.append(torch.where(area > 0, err, torch.full_like(err, float("nan"))).cpu().numpy())
    return np.concatenate(out)


def quality_record(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera, targets: ClipTargets,
                   config: TrackerConfig, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """The quality record (see the module docstring) as plain JSON values."""
    predicted = projected_landmarks(model, params, camera)
    per_frame_sq = ((predicted - targets.landmarks) ** 2).sum(-1).mean(1)  # (N,) mean squared px
    per_frame = np.sqrt(per_frame_sq)
    usable = targets.usable
    use = usable if usable.any() else np.ones_like(usable)
    rmse = float(np.sqrt(per_frame_sq[use].mean()))
    inner_sq = ((predicted[:, 17:] - targets.landmarks[:, 17:]) ** 2).sum(-1).mean(1)
    inner = float(np.sqrt(inner_sq[use].mean()))
    median = float(np.median(per_frame[use]))
    bad = (per_frame > config.flag_rmse_factor * median) & (per_frame > config.flag_rmse_min_px)
    flagged = np.flatnonzero(targets.flagged | bad)
    record: dict[str, Any] = {
        "landmark_rmse_px": round(rmse, 4),
        "landmark_rmse_px_per_frame": [round(float(v), 4) for v in per_frame],
        "landmark_rmse_px_median": round(median, 4),
        "landmark_rmse_px_inner": round(inner, 4),
        "crop_size": targets.crop_size,
        "frames": targets.n_frames,
        "flagged_frames": [int(i) for i in flagged],
        "flagged_by_landmarks": int(targets.flagged.sum()),
        "flagged_by_tracking": int((bad & ~targets.flagged).sum()),
        "detector": targets.detector,
        "photometric_l1": None,
        "photometric_l1_per_frame": None,
        **lid_and_lip_following(predicted, targets.landmarks, use),
    }
    if shared is not None and targets.frames is not None:
        errors = photometric_errors(model, params, camera, shared, targets, config.photometric_size)
        valid = use & np.isfinite(errors)
        record["photometric_l1"] = round(float(errors[valid].mean()), 5) if valid.any() else None
        record["photometric_l1_per_frame"] = [None if not np.isfinite(e) else round(float(e), 5) for e in errors]
        record["photometric_size"] = config.photometric_size
    return record
