"""The per-frame inputs JEAN's encoders learn from: pose-free landmarks and emotion features (two takes of one
sentence are aligned by :func:`core.audio.align.dtw_path`).

**Landmarks** (§3.1): the 68 landmarks of the face model posed with the frame's tracked identity, expression,
jaw and eyes but *without* the head's rotation, translation and neck (so head motion never reads as mouth
motion), seen from the front (x, y); the 17 contour points are dropped, leaving 51: 31 eye-nose points
(brows, nose, eyes) and 20 mouth points.

**Emotion features** (§3.2): the paper takes 2048-D features of a pretrained emotion-recognition network per
frame; no such network can be had offline. The substitute here is the tracked face itself: the expression
coefficients, the jaw pose and the 102 landmark coordinates above, per frame. This is close to the paper's
Table 2 variant (d) (its transformer on 3DMM expression parameters), which it found weaker; what we do about
that is in :mod:`core.renderers.jean.networks` (the expression half is pooled over its window).
"""

from __future__ import annotations

from typing import Any

import torch

from core.morphable.data import FaceParams
from core.renderers.nerf.rays import canonical_landmarks

N_CONTOUR = 17
EYE_NOSE = slice(0, 31)  # of the 51 kept points: brows 17-26, nose 27-35, eyes 36-47
MOUTH = slice(31, 51)  # lips 48-67
N_POINTS = 51

def jean_landmarks(face_model: Any, params: FaceParams) -> torch.Tensor:
    """(B, 51, 2) pose-free frontal landmarks without the contour (module docstring), in the model's units."""
    return canonical_landmarks(face_model, params.to(face_model.device))[:, N_CONTOUR:, :2]


def expression_part(params: FaceParams, n_expression: int) -> torch.Tensor:
    """(B, n_expression) expression coefficients, padded or cut to the count a network was built for."""
    e = params.expression
    if e.shape[1] != n_expression:
        e = torch.nn.functional.pad(e, (0, max(0, n_expression - e.shape[1])))[:, :n_expression]
    return e


def emotion_features(face_model: Any, params: FaceParams, n_expression: int) -> torch.Tensor:
    """(B, n_expression + 3 + 102) the substitute emotion features of the module docstring."""
    landmarks = jean_landmarks(face_model, params).flatten(1)
    return torch.cat([expression_part(params, n_expression).to(landmarks), params.jaw_pose.to(landmarks),
                      landmarks], 1)


def emotion_dim(n_expression: int) -> int:
    return n_expression + 3 + 2 * N_POINTS
