"""Does a keyframed emotion reach the picture? The re-tracked expression of a dub against the keyframed curve.

A dub rendered with an emotion ramp (e.g. happy 0 -> 1) is tracked again like any footage; each frame's tracked
expression is projected on the emotion's direction in the face model's expression space (the FACS prototype of
:class:`core.expression.emotion_prior.EmotionPrior`, or an actor's own direction such as the mean of its happy
take minus the mean of its neutral one). The frames are grouped into ``bins`` equal intensity ranges; the
emotion reaches the picture monotonically when the mean projection rises with the intensity: the Spearman rank
correlation between bin intensity and mean projection (``rho``; 1 = strictly increasing).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def emotion_direction(expr_names: list[str], emotion: str) -> np.ndarray | None:
    """(E,) the face model's generic direction of ``emotion`` (``None`` for models without FACS names)."""
    from core.expression.emotion_prior import EmotionPrior
    from core.expression.emotions import emotion_index

    prior = EmotionPrior.for_expressions(expr_names)
    return None if prior is None else prior.expression[emotion_index(emotion)].astype(np.float64)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def binned_projection(expression: np.ndarray, intensity: np.ndarray, direction: np.ndarray, bins: int = 5,
                      reference: np.ndarray | None = None) -> dict[str, Any]:
    """Project each frame's expression on ``direction`` and summarise by intensity bins.

    Args:
        expression: (N, E) tracked expression per frame.
        intensity: (N,) the keyframed intensity per frame.
        direction: (E,) the emotion's direction.
        bins: equal-width intensity bins over ``[min, max]`` of ``intensity`` (empty bins are dropped).
        reference: (E,) expression the projection is measured from (default: the mean over frames whose
            intensity is in the lowest bin).

    Returns:
        ``rho`` (Spearman of bin centre vs mean projection), ``bin_intensity``, ``bin_projection``,
        ``bin_frames``, ``cosine`` (of the mean change from the lowest to the highest bin with ``direction``).
    """
    unit = direction / max(float(np.linalg.norm(direction)), 1e-12)
    edges = np.linspace(float(intensity.min()), float(intensity.max()) + 1e-9, bins + 1)
    which = np.clip(np.digitize(intensity, edges) - 1, 0, bins - 1)
    lowest = expression[which == which.min()].mean(0) if reference is None else reference
    projection = (expression - lowest) @ unit
    centres, means, counts, groups = [], [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            centres.append(float(intensity[mask].mean()))
            means.append(float(projection[mask].mean()))
            counts.append(int(mask.sum()))
            groups.append(expression[mask].mean(0))
    change = groups[-1] - groups[0]
    cosine = float(change @ unit / max(float(np.linalg.norm(change)), 1e-12))
    return {"rho": spearman(np.array(centres), np.array(means)), "bin_intensity": centres,
            "bin_projection": means, "bin_frames": counts, "cosine": cosine}
