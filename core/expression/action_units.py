"""Speech-related facial action units (FACS) from our tracking, without OpenFace.

NeRF-AD (Bi et al. 2024) supervises its attention and its audio-face fusion with OpenFace's AU intensities. We
estimate the same AUs from the tracked face model instead, on OpenFace's 0-5 intensity scale:

===== ======================= ==================================================================
AU    name                    from
===== ======================= ==================================================================
AU10  upper lip raiser        expression mode ``upper_lip_raise``
AU12  lip corner puller       mean of ``smile_left``, ``smile_right``
AU14  dimpler                 mean of ``dimple_left``, ``dimple_right``
AU15  lip corner depressor    mean of ``frown_left``, ``frown_right``
AU17  chin raiser             ``chin_raise``
AU20  lip stretcher           ``lips_stretch``
AU23  lip tightener           ``lips_press`` (our models have no separate tightener; pressing is closest)
AU25  lips part               the inner-lip gap (landmarks 62-66) beyond the actor's neutral gap
AU26  jaw drop                the jaw's opening angle (0.35 rad = 5), plus ``mouth_open``
AU45  blink                   mean of ``blink_left``, ``blink_right``
===== ======================= ==================================================================

**Two estimators.** *Named* (:func:`named_action_units`): for a model whose expression modes carry those names
(the procedural head; ICT through its aliases), an AU is 5 x the mode coefficient, clipped to [0, 5]: the
definition, and on the synthetic actor's ground-truth parameters the ground truth. *Landmark*
(:func:`landmark_action_units`): for any model (FLAME's modes are unnamed), a linear map from the 51 inner
landmarks' 3D displacement (the frame's expression against the same actor with no expression, in head space,
divided by the eye-corner distance) to the eight expression AUs, fitted once by ridge regression on random
combinations of the procedural head's named modes (:func:`landmark_regressor`); AU25 and AU26 are geometric in
both. :func:`action_units` picks the named estimator where the model has every mode, the landmark one otherwise.
OpenFace's own CSVs can be imported instead (``emodub features import ... --columns "AU*_r"``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from core.eval.stats import pearson
from core.morphable.data import FaceParams

SPEECH_AUS: tuple[str, ...] = ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45")
MOUTH_AUS: tuple[str, ...] = SPEECH_AUS[:-1]  # all but the blink: what moves with speech
AU_MAX = 5.0  # OpenFace's intensity scale
JAW_FULL = 0.35  # radians of jaw opening that count as AU26 = 5
GAP_FULL = 0.4  # inner-lip gap in eye-corner distances that counts as AU25 = 5 (the gap at JAW_FULL)
NAMED: dict[str, tuple[str, ...]] = {
    "AU10": ("upper_lip_raise",), "AU12": ("smile_left", "smile_right"), "AU14": ("dimple_left", "dimple_right"),
    "AU15": ("frown_left", "frown_right"), "AU17": ("chin_raise",), "AU20": ("lips_stretch",),
    "AU23": ("lips_press",), "AU45": ("blink_left", "blink_right")}
EXPRESSION_AUS: tuple[str, ...] = tuple(NAMED)  # the eight the landmark regressor predicts
INNER = slice(17, 68)


def _neutral(params: FaceParams) -> FaceParams:
    """The same actor and pose with no expression, jaw or eye rotation."""
    return FaceParams(params.shape, torch.zeros_like(params.expression), torch.zeros_like(params.jaw_pose),
                      params.neck_pose, torch.zeros_like(params.eye_pose), params.rotation, params.translation)


def _without_jaw(params: FaceParams) -> FaceParams:
    return FaceParams(params.shape, params.expression, torch.zeros_like(params.jaw_pose), params.neck_pose,
                      torch.zeros_like(params.eye_pose), params.rotation, params.translation)


def _landmarks(model: Any, params: FaceParams) -> torch.Tensor:
    from core.renderers.nerf.rays import canonical_landmarks

    return canonical_landmarks(model, params.to(model.device))


def _eye_distance(landmarks: torch.Tensor) -> torch.Tensor:
    return (landmarks[:, 45] - landmarks[:, 36]).norm(dim=-1).clamp_min(1e-6)


@torch.no_grad()
def geometric_units(model: Any, params: FaceParams) -> torch.Tensor:
    """(B, 2) AU25 and AU26 (module docstring), for any model."""
    posed = _landmarks(model, params)
    neutral = _landmarks(model, _neutral(params))
    scale = _eye_distance(neutral)
    gap = ((posed[:, 62] - posed[:, 66]).norm(dim=-1) - (neutral[:, 62] - neutral[:, 66]).norm(dim=-1)) / scale
    au25 = AU_MAX * (gap / GAP_FULL).clamp(0, 1)
    opening = params.jaw_pose[:, 0].to(posed) / JAW_FULL
    index = model.expression_index("mouth_open") if hasattr(model, "expression_index") else None
    if index is not None and index < params.expression.shape[1]:
        opening = opening + params.expression[:, index].to(posed)
    return torch.stack([au25, AU_MAX * opening.clamp(0, 1)], 1)


def has_named_modes(model: Any) -> bool:
    """Whether the model has a mode (or alias) for every name the named estimator reads."""
    return all(model.expression_indices(name) for names in NAMED.values() for name in names)


@torch.no_grad()
def named_action_units(model: Any, params: FaceParams) -> torch.Tensor:
    """(B, 10) :data:`SPEECH_AUS` from named expression modes (module docstring).

    Raises:
        ValueError: the model lacks a mode the mapping needs.
    """
    expression = params.expression.float()
    columns = []
    for au, names in NAMED.items():
        indices = [i for name in names for i in model.expression_indices(name)]
        if not indices:
            raise ValueError(f"model {model.name!r} has no expression mode for {au} ({', '.join(names)})")
        columns.append(expression[:, indices].mean(1))
    named = (AU_MAX * torch.stack(columns, 1)).clamp(0, AU_MAX)
    return _in_order(named, geometric_units(model, params).to(named))


def _in_order(expression: torch.Tensor, geometric: torch.Tensor) -> torch.Tensor:
    """(B, 8) :data:`EXPRESSION_AUS` and (B, 2) AU25, AU26 -> (B, 10) in :data:`SPEECH_AUS` order."""
    by_name = {**dict(zip(EXPRESSION_AUS, expression.unbind(1), strict=True)),
               "AU25": geometric[:, 0], "AU26": geometric[:, 1]}
    return torch.stack([by_name[au] for au in SPEECH_AUS], 1)


def displacement_features(model: Any, params: FaceParams) -> torch.Tensor:
    """(B, 153) the 51 inner landmarks' head-space displacement from the actor's neutral face (jaw excluded), in
    eye-corner distances."""
    neutral = _landmarks(model, _neutral(params))
    moved = _landmarks(model, _without_jaw(params))
    return ((moved - neutral)[:, INNER] / _eye_distance(neutral)[:, None, None]).flatten(1)


@functools.lru_cache(maxsize=1)
def landmark_regressor(samples: int = 2000, ridge: float = 1e-4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(153, 8) weights and (8,) bias mapping :func:`displacement_features` to the eight expression AUs, fitted on
    the procedural head: random sparse combinations of all its modes (each active with probability 0.25,
    coefficient uniform in [0, 1]) and random identities; targets from :func:`named_action_units`."""
    from core.morphable.registry import load_model

    model = load_model("procedural")
    generator = torch.Generator().manual_seed(seed)
    params = FaceParams.zeros(samples, model.n_shape, model.n_expr)
    active = torch.rand(samples, model.n_expr, generator=generator) < 0.25
    params.expression = torch.rand(samples, model.n_expr, generator=generator) * active
    params.shape = 0.8 * torch.randn(samples, model.n_shape, generator=generator)
    features = torch.cat([displacement_features(model, params[i:i + 500]) for i in range(0, samples, 500)])
    targets = named_action_units(model, params)[:, [SPEECH_AUS.index(au) for au in EXPRESSION_AUS]]
    design = torch.cat([features, torch.ones(samples, 1)], 1).double()
    gram = design.T @ design + ridge * samples * torch.eye(design.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(gram, design.T @ targets.double()).float()
    return solution[:-1], solution[-1]


@torch.no_grad()
def landmark_action_units(model: Any, params: FaceParams) -> torch.Tensor:
    """(B, 10) :data:`SPEECH_AUS` from landmarks and the jaw, for any model (module docstring)."""
    weights, bias = landmark_regressor()
    features = displacement_features(model, params)
    expression = (features @ weights.to(features) + bias.to(features)).clamp(0, AU_MAX)
    return _in_order(expression, geometric_units(model, params).to(expression))


def action_units(model: Any, params: FaceParams, chunk: int = 256) -> torch.Tensor:
    """(B, 10) :data:`SPEECH_AUS` on the 0-5 scale: named where the model has the modes, else from landmarks."""
    estimate = named_action_units if has_named_modes(model) else landmark_action_units
    return torch.cat([estimate(model, params[i:i + chunk]) for i in range(0, params.batch_size, chunk)]
                     ) if params.batch_size else torch.zeros(0, len(SPEECH_AUS))


def openface_columns(names: list[str]) -> list[int]:
    """Positions of :data:`SPEECH_AUS` among an imported OpenFace CSV's columns (``AU10_r`` ..., ``AU45_r``).

    Raises:
        ValueError: a speech-related AU's intensity column is missing.
    """
    stripped = [n.strip() for n in names]
    missing = [au for au in SPEECH_AUS if f"{au}_r" not in stripped]
    if missing:
        raise ValueError(f"the imported OpenFace features lack {', '.join(m + '_r' for m in missing)}; import them "
                         "with --columns 'AU*_r'")
    return [stripped.index(f"{au}_r") for au in SPEECH_AUS]


def au_report(estimated: np.ndarray, truth: np.ndarray, names: tuple[str, ...] = SPEECH_AUS
              ) -> dict[str, dict[str, float]]:
    """Per AU (columns named ``names``): mean absolute error (0-5 scale) and Pearson r (NaN where either side
    never moves)."""
    out = {}
    for k, au in enumerate(names):
        e, t = estimated[:, k], truth[:, k]
        r = pearson(e, t, undefined=float("nan"))
        out[au] = {"mae": float(np.abs(e - t).mean()), "r": r, "truth_mean": float(t.mean())}
    return out
