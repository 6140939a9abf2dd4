"""Temporal smoothing of per-frame expression parameters (LipNeRF §III-E: a 1-D Savitzky-Golay filter,
window 5 frames, polynomial order 2, along time).

A Savitzky-Golay filter fits a polynomial of ``order`` to each ``window`` of frames by least squares and
keeps its centre value: it removes frame-to-frame jitter of a per-frame predictor but keeps polynomial
motion of degree ``<= order`` exactly, so lip closures and openings are not rounded off the way a moving
average rounds them. Ends are handled by fitting one polynomial to the first/last window (``mode="interp"``)
so the first and last frames are filtered too, without padding artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothingConfig:
    """Savitzky-Golay smoothing along time.

    Attributes:
        window: odd window length in frames (LipNeRF: 5). Sequences shorter than the window are filtered
            with the largest odd window that fits (and returned unchanged when none > ``order`` fits).
        order: polynomial order (LipNeRF: 2); must be < ``window``.
        enabled: ``False`` turns smoothing off (identity).
    """

    window: int = 5
    order: int = 2
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"Savitzky-Golay window must be a positive odd number of frames, "
                             f"got {self.window}")
        if not 0 <= self.order < self.window:
            raise ValueError(f"Savitzky-Golay order must satisfy 0 <= order < window, "
                             f"got order={self.order}, window={self.window}")


def savgol_smooth(x: np.ndarray, window: int = 5, order: int = 2, axis: int = 0) -> np.ndarray:
    """Savitzky-Golay filter ``x`` along ``axis`` (time).

    Args:
        x: (..., N, ...) array of per-frame values, N along ``axis``.
        window: odd window length in frames.
        order: polynomial order, ``< window``.

    Returns:
        Array of ``x``'s shape and float dtype (float32 stays float32).
    """
    from scipy.signal import savgol_filter

    SmoothingConfig(window, order)  # validates
    arr = np.asarray(x)
    out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
    n = arr.shape[axis]
    fit = min(window, n if n % 2 == 1 else n - 1)
    if fit <= order:
        return arr.astype(out_dtype, copy=True)  # too short to fit the polynomial: nothing to smooth
    return savgol_filter(arr.astype(np.float64), fit, order, axis=axis, mode="interp").astype(out_dtype)


def smooth_sequence(x: np.ndarray, config: SmoothingConfig | None = None, axis: int = 0) -> np.ndarray:
    """:func:`savgol_smooth` with a :class:`SmoothingConfig` (identity when disabled)."""
    config = config or SmoothingConfig()
    if not config.enabled:
        return np.array(x, copy=True)
    return savgol_smooth(x, config.window, config.order, axis)
