"""The per-frame inputs JEAN's encoders learn from: pose-free landmarks and emotion features, and the
dynamic time warping that aligns two takes of one sentence.

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

import numpy as np
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


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping of two feature sequences (L1 cost): index pairs (i_k, j_k), k = 1..N, of the
    cheapest monotone alignment from (0, 0) to (m1 - 1, m2 - 1).

    The cumulative cost is filled one anti-diagonal at a time (every cell of a diagonal depends only on the
    two before it), so the loop runs m1 + m2 times over vectorised diagonals.

    Args:
        a: (m1, D) features; b: (m2, D) features.
    """
    m1, m2 = len(a), len(b)
    cost = np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
    acc = np.full((m1 + 1, m2 + 1), np.inf)
    acc[0, 0] = 0.0
    for d in range(2, m1 + m2 + 1):  # d = i + j over 1-based cells
        i = np.arange(max(1, d - m2), min(m1, d - 1) + 1)
        j = d - i
        best = np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    # Walk back from the end: the predecessor with the smallest cumulative cost.
    i, j = m1, m2
    path = [(i - 1, j - 1)]
    while i > 1 or j > 1:
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        i, j = min(steps, key=lambda s: acc[s])
        path.append((i - 1, j - 1))
    pairs = np.array(path[::-1])
    return pairs[:, 0], pairs[:, 1]
