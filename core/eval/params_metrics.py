"""Errors of estimated face parameters against a synthetic clip's ground truth.

On a synthetic clip (``ground_truth/params.npz``) the tracker's or the audio-to-expression model's
per-frame parameters can be compared with the ones the clip was rendered from. :func:`param_errors`
reports

* ``expression_l1`` — mean |pred - gt| over all frames and expression dims (blendshape weight units);
* ``mouth_l1`` — the same over the mouth-related dims (:data:`MOUTH_EXPRESSIONS`: visemes, mouth
  corners, cheek puff) together with the jaw opening ``jaw_pose[:, 0]`` (radians; the jaw is the largest
  part of the mouth motion, so it is counted like one more dim);
* ``jaw_l1`` — mean |pred - gt| of the jaw opening alone, radians;
* ``jaw_corr`` — Pearson's r of the jaw opening over time (does the mouth open and close at the right
  moments, whatever the scale);
* ``upper_face_l1`` — over the brow and eye dims (:data:`UPPER_FACE_EXPRESSIONS`: the emotion-bearing
  part that the audio says little about).

The dims are found by name in the expression names of the model (``expr_names``; by default
:data:`core.morphable.data.PROCEDURAL_EXPRESSIONS` when the width matches: the synthetic actor's
model). Head pose is not compared: the tracker's pose lives in the crop camera, the ground truth's
in the full-frame camera, so their difference mixes camera and pose errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.eval.stats import pearson

MOUTH_EXPRESSIONS: tuple[str, ...] = (
    "mouth_open", "mouth_wide", "mouth_round", "lips_pucker", "lips_funnel", "lips_press",
    "upper_lip_raise", "lower_lip_depress", "lips_stretch", "mouth_left", "mouth_right",
    "lower_lip_roll", "upper_lip_roll", "chin_raise", "jaw_forward",
    "smile_left", "smile_right", "frown_left", "frown_right", "dimple_left", "dimple_right",
    "cheek_puff",
)
UPPER_FACE_EXPRESSIONS: tuple[str, ...] = (
    "brow_up_left", "brow_up_right", "brow_down_left", "brow_down_right", "brow_inner_up",
    "squint_left", "squint_right", "blink_left", "blink_right", "eye_wide_left", "eye_wide_right",
)


def _as_arrays(params: Any, what: str) -> dict[str, np.ndarray]:
    """FaceParams, a dict of arrays/tensors or a params.npz path -> dict of float64 arrays."""
    if isinstance(params, str | Path):
        with np.load(params) as data:
            return {k: np.asarray(data[k], np.float64) for k in data.files}
    if hasattr(params, "to_numpy"):
        params = params.to_numpy()
    if not isinstance(params, Mapping):
        raise TypeError(f"{what} must be FaceParams, a dict of arrays or a params.npz path, "
                        f"got {type(params).__name__}")
    out = {}
    for key, value in params.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[key] = np.asarray(value, np.float64)
    return out


def _indices(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    index = {n: i for i, n in enumerate(names)}
    return [index[n] for n in wanted if n in index]


def param_errors(pred: Any, gt: Any, expr_names: Sequence[str] | None = None,
                 mouth_dims: Sequence[int] | None = None,
                 upper_dims: Sequence[int] | None = None) -> dict[str, Any]:
    """Per-parameter-group errors of ``pred`` against ``gt`` (see the module docstring).

    Args:
        pred: estimated parameters: :class:`~core.morphable.data.FaceParams`, a dict with at least
            ``expression`` (N, E) and ``jaw_pose`` (N, 3) (numpy arrays or tensors), or a params.npz.
        gt: ground truth, same forms, (M, E) / (M, 3).
        expr_names: the E expression names; default: ``PROCEDURAL_EXPRESSIONS`` when E matches it.
        mouth_dims / upper_dims: explicit expression indices (override the names).

    Returns:
        ``{"expression_l1", "mouth_l1", "jaw_l1", "jaw_corr", "upper_face_l1", "frames",
        "frames_pred", "frames_gt", "truncated", "note"}``. Lengths that differ are truncated to the
        shorter (``truncated`` is True and ``note`` says so). A group with no named dims gives
        ``None``; ``jaw_corr`` is 0.0 when either jaw track is constant (``note`` says so).

    Raises:
        ValueError: missing fields, or expression widths that differ (different face models).
    """
    p = _as_arrays(pred, "pred")
    g = _as_arrays(gt, "gt")
    for name, arrays in (("pred", p), ("gt", g)):
        missing = [k for k in ("expression", "jaw_pose") if k not in arrays]
        if missing:
            raise ValueError(f"{name} parameters lack {', '.join(missing)}")
    pe, ge = np.atleast_2d(p["expression"]), np.atleast_2d(g["expression"])
    if pe.shape[1] != ge.shape[1]:
        raise ValueError(f"pred has {pe.shape[1]} expression dims but the ground truth has {ge.shape[1]}; "
                         "compare parameters of the same face model (track the synthetic clip with the "
                         "model it was rendered with)")
    notes: list[str] = []
    n_pred, n_gt = len(pe), len(ge)
    n = min(n_pred, n_gt)
    if n_pred != n_gt:
        notes.append(f"lengths differ (pred {n_pred} frames, ground truth {n_gt}); compared the first {n}")
    if n == 0:
        raise ValueError("no frames to compare")
    pe, ge = pe[:n], ge[:n]
    pj, gj = np.atleast_2d(p["jaw_pose"])[:n, 0], np.atleast_2d(g["jaw_pose"])[:n, 0]

    if expr_names is None:
        from core.morphable.data import PROCEDURAL_EXPRESSIONS

        if pe.shape[1] == len(PROCEDURAL_EXPRESSIONS):
            expr_names = PROCEDURAL_EXPRESSIONS
    elif len(expr_names) != pe.shape[1]:
        raise ValueError(f"expr_names has {len(expr_names)} names for {pe.shape[1]} expression dims")
    if mouth_dims is None:
        mouth_dims = _indices(expr_names, MOUTH_EXPRESSIONS) if expr_names is not None else []
    if upper_dims is None:
        upper_dims = _indices(expr_names, UPPER_FACE_EXPRESSIONS) if expr_names is not None else []
    if expr_names is None and not (mouth_dims and upper_dims):
        notes.append("expression names unknown: mouth errors use the jaw only; upper-face error not computed")

    abs_err = np.abs(pe - ge)
    jaw_err = np.abs(pj - gj)
    mouth = np.concatenate([abs_err[:, list(mouth_dims)], jaw_err[:, None]], axis=1)
    upper = abs_err[:, list(upper_dims)] if len(upper_dims) else None
    jaw_corr = pearson(pj, gj)
    if jaw_corr is None:
        notes.append("a jaw-opening track is constant: jaw_corr reported as 0")
        jaw_corr = 0.0
    return {
        "expression_l1": float(abs_err.mean()),
        "mouth_l1": float(mouth.mean()),
        "jaw_l1": float(jaw_err.mean()),
        "jaw_corr": float(jaw_corr),
        "upper_face_l1": float(upper.mean()) if upper is not None else None,
        "frames": int(n),
        "frames_pred": int(n_pred),
        "frames_gt": int(n_gt),
        "truncated": n_pred != n_gt,
        "note": "; ".join(notes) or None,
    }
