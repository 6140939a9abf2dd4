"""Correlation of two measured series, the one definition every report uses."""

from __future__ import annotations

import math

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray, undefined: float | None = None) -> float | None:
    """Pearson correlation of two 1-D series, or ``undefined`` when it means nothing: fewer than 3 values, or
    either series constant up to float32 rounding (0.1 % of its size; e.g. the eyelid gap of a clip without
    blinks, whose correlation would only measure rounding noise).

    Reports that must hold a number pass ``undefined=0.0`` (training curves) or ``float("nan")`` (tables)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()

    def flat(x: np.ndarray) -> bool:
        return bool(x.std() <= 1e-9 + 1e-3 * np.abs(x).mean())

    if len(a) < 3 or flat(a) or flat(b):
        return undefined
    value = float(np.corrcoef(a, b)[0, 1])
    return value if math.isfinite(value) else undefined
