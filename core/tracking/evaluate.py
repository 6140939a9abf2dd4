"""Evaluation of a tracked clip: its quality record and, for a synthetic clip, the comparison with the
ground truth it was rendered from.

Ground-truth measures (synthetic clips, which have ``ground_truth/``):

* ``landmark_rmse_px`` — RMSE between the tracked model's projected landmarks and the exact ground-truth
  landmarks (the true parameters projected with ``ground_truth/camera.json``, mapped into the crop), in
  pixels of a 256-pixel crop (scaled when the crop has another ``out_size``), over all frames.
* ``jaw_corr`` — Pearson correlation over frames between the tracked and true jaw opening, each measured on
  its mesh by :func:`core.tracking.geometry.jaw_opening` (the chin's rotation about the jaw joint in the
  head's own frame): the procedural head opens the mouth with ``jaw_pose`` and with the ``mouth_open``
  blendshape (a baked-in jaw turn), so comparing ``jaw_pose`` alone would punish a fit that explains the
  same opening with the other. ``jaw_pose_corr`` (x rotation of ``jaw_pose`` only) is reported beside it.
* ``blink_corr`` — the same for the eyelid gap (:func:`eyelid_gap`), which blinks close.
* ``vertex_err_rel`` — per frame, the tracked mesh is aligned to the true one by a similarity transform
  (Umeyama: rotation, translation, scale), the mean distance over all vertices is divided by the head width
  (the template's x extent), and the frames are averaged. ``vertex_err_rel_face`` uses the face region only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel

EVAL_CROP = 256


def ground_truth_model(folder: Path, model: MorphableModel) -> MorphableModel:
    """The model a synthetic clip was rendered with: ``model`` unless ``ground_truth/actor.json`` names another
    procedural head resolution."""
    path = folder / "ground_truth" / "actor.json"
    if not path.is_file() or model.name != "procedural":
        return model
    info = json.loads(path.read_text(encoding="utf-8"))
    resolution = (info.get("config") or {}).get("resolution")
    if not resolution:
        return model
    from core.morphable.registry import load_model

    other = load_model("procedural", device=model.device, dtype=model.dtype, resolution=resolution)
    return model if other.n_vertices == model.n_vertices else other


def ground_truth_params(folder: Path, model: MorphableModel) -> FaceParams:
    """The clip's ``ground_truth/params.npz`` in ``model``'s coefficient layout (expressions matched by name)."""
    with np.load(folder / "ground_truth" / "params.npz", allow_pickle=False) as data:
        arrays = {k: np.asarray(data[k]) for k in data.files}
    n = len(arrays["expression"])
    names = [str(x) for x in arrays.get("expr_names", [])]
    expression = np.zeros((n, model.n_expr), np.float32)
    if names:
        for j, name in enumerate(names):
            for k in model.expression_indices(name):
                expression[:, k] += arrays["expression"][:, j]
    else:
        k = min(model.n_expr, arrays["expression"].shape[1])
        expression[:, :k] = arrays["expression"][:, :k]
    shape = np.zeros((n, model.n_shape), np.float32)
    given = np.asarray(arrays.get("shape", np.zeros((n, 0))), np.float32).reshape(n, -1)
    shape[:, : min(model.n_shape, given.shape[1])] = given[:, : model.n_shape]
    fields = {k: arrays[k] for k in ("jaw_pose", "neck_pose", "eye_pose", "rotation", "translation")}
    return FaceParams.from_numpy({**fields, "shape": shape, "expression": expression}, model.device, model.dtype)


@torch.no_grad()
def ground_truth_landmarks(folder: Path, model: MorphableModel, truth: FaceParams) -> np.ndarray | None:
    """(N, 68, 2) exact ground-truth landmarks in full-frame pixels, landmark convention (centres at integers).

    Projected from the true parameters with ``ground_truth/camera.json`` when it exists (exact, whatever pixel
    convention a renderer used for its stored 2D points); else ``ground_truth/landmarks.npz`` as stored."""
    from core.render.camera_io import load_camera
    from core.tracking.quality import projected_landmarks

    camera_path = folder / "ground_truth" / "camera.json"
    if camera_path.is_file():
        camera = load_camera(camera_path, device=model.device, dtype=model.dtype)
        return projected_landmarks(model, truth, camera) - 0.5
    path = folder / "ground_truth" / "landmarks.npz"
    if path.is_file():
        with np.load(path) as data:
            return np.asarray(data["lmk68"], np.float32)
    return None


@torch.no_grad()
def eyelid_gap(model: MorphableModel, params: FaceParams, batch_size: int = 256) -> np.ndarray:
    """(N,) mean 3D distance between the upper and lower lid landmarks of both eyes (metres), in the head's
    own frame: what a blink closes."""
    from core.eval.lipsync import pair_gaps
    from core.tracking.geometry import EYELID_PAIRS

    out = []
    for start in range(0, params.batch_size, batch_size):
        p = params[start:start + batch_size]
        own = FaceParams(**{**p.tensors(), "rotation": torch.zeros_like(p.rotation),
                            "translation": torch.zeros_like(p.translation)})
        lmk = model(own).landmarks
        out.append(pair_gaps(lmk.cpu().numpy(), EYELID_PAIRS))
    return np.concatenate(out)


@torch.no_grad()
def compare_with_ground_truth(folder: Path, model: MorphableModel, params: FaceParams, camera: Any,
                              batch_size: int = 64) -> dict[str, Any]:
    """The ground-truth measures of the module docstring for a tracked synthetic clip."""
    from core.eval.stats import pearson
    from core.landmarks.crop import CropTransform
    from core.tracking.geometry import aligned_vertex_error, jaw_opening
    from core.tracking.quality import projected_landmarks

    crop = CropTransform.load(folder / "crop.json")
    truth_model = ground_truth_model(folder, model)
    truth = ground_truth_params(folder, truth_model)
    n = min(truth.batch_size, params.batch_size)
    truth, tracked = truth[:n], params[:n].to(model.device, model.dtype)
    out: dict[str, Any] = {"ground_truth": True, "frames_compared": n}
    gt_lmk = ground_truth_landmarks(folder, truth_model, truth)
    if gt_lmk is not None:
        pred = projected_landmarks(model, tracked, camera) - 0.5
        rmse = float(np.sqrt(((pred - crop.to_crop(gt_lmk[:n])) ** 2).sum(-1).mean()))
        out["landmark_rmse_px"] = round(rmse * EVAL_CROP / crop.out_size, 4)
    jaw_tracked = jaw_opening(model, tracked).cpu().numpy()
    jaw_true = jaw_opening(truth_model, truth).cpu().numpy()
    corr = pearson(jaw_tracked, jaw_true)
    out["jaw_corr"] = None if corr is None else round(corr, 4)
    pose_corr = pearson(tracked.jaw_pose[:, 0].cpu().numpy(), truth.jaw_pose[:, 0].cpu().numpy())
    out["jaw_pose_corr"] = None if pose_corr is None else round(pose_corr, 4)
    gap_tracked, gap_true = eyelid_gap(model, tracked), eyelid_gap(truth_model, truth)
    blink = pearson(gap_tracked, gap_true)
    out["blink_corr"] = None if blink is None else round(blink, 4)
    out["jaw_opening_mae_deg"] = round(float(np.degrees(np.abs(jaw_tracked - jaw_true).mean())), 4)
    width = model.head_width()
    if truth_model.n_vertices != model.n_vertices:
        out["vertex_err_rel"] = out["vertex_err_rel_face"] = None
        out["note"] = (f"the clip was rendered with a {truth_model.n_vertices}-vertex head and tracked with a "
                       f"{model.n_vertices}-vertex one: vertex errors need the same mesh")
        return out
    face = model.regions["face"]
    errors, face_errors = [], []
    for start in range(0, n, batch_size):
        a = model(tracked[start:start + batch_size]).vertices
        b = truth_model(truth[start:start + batch_size]).vertices
        errors.append(aligned_vertex_error(a, b).cpu().numpy())
        face_errors.append(aligned_vertex_error(a[:, face], b[:, face]).cpu().numpy())
    out["vertex_err_rel"] = round(float(np.concatenate(errors).mean()) / width, 5)
    out["vertex_err_rel_face"] = round(float(np.concatenate(face_errors).mean()) / width, 5)
    out["head_width_m"] = round(width, 5)
    return out


def evaluate_tracking(folder: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Quality record + ground-truth comparison of a tracked clip/shot folder.

    Raises:
        FileNotFoundError: the folder is not tracked (the message says what to run).
    """
    from core.tracking.data import load_targets
    from core.tracking.quality import quality_record
    from core.tracking.result import TrackedClip

    track_dir = folder / "tracking"
    clip = TrackedClip.load(folder)
    config = clip.tracker_config
    model = clip.face_model(device)
    params = clip.params.to(model.device, model.dtype)
    camera = clip.camera.to(model.device, model.dtype)
    stored = json.loads((track_dir / "quality.json").read_text()) if (track_dir / "quality.json").is_file() else {}
    targets = load_targets(folder, config)
    quality = quality_record(model, params, camera, targets, config)
    result: dict[str, Any] = {
        "folder": str(folder),
        "frames": params.batch_size,
        "landmark_rmse_px_vs_targets": quality["landmark_rmse_px"],
        "landmark_rmse_px": quality["landmark_rmse_px"] * EVAL_CROP / targets.crop_size,
        "landmark_rmse_px_inner_vs_targets": quality["landmark_rmse_px_inner"],
        "crop_size": targets.crop_size,
        "photometric_l1": stored.get("photometric_l1"),
        "flagged_frames": quality["flagged_frames"],
        **{k: quality[k] for k in ("eyelid_gap_corr", "blink_frames", "blink_closure", "lip_gap_corr")},
        "detector": targets.detector,
        "ground_truth": False,
        "seconds_per_frame": stored.get("seconds_per_frame"),
    }
    if (folder / "ground_truth" / "params.npz").is_file():
        result.update(compare_with_ground_truth(folder, model, params, camera))
    return result
