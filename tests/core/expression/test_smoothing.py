"""Savitzky-Golay smoothing of parameter tracks (LipNeRF: window 5, order 2)."""

from __future__ import annotations

import numpy as np
import pytest

from core.expression.smoothing import SmoothingConfig, savgol_smooth, smooth_sequence


def test_keeps_quadratic_motion_exactly() -> None:
    t = np.arange(40, dtype=np.float64)
    track = np.stack([0.3 + 0.01 * t - 0.0004 * t**2, -0.2 * t], 1)      # (N, 2) polynomials of degree <= 2
    np.testing.assert_allclose(savgol_smooth(track), track, atol=1e-9)   # ends included (mode="interp")


def test_removes_frame_to_frame_jitter() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((20000, 3))
    smoothed = savgol_smooth(noise, 5, 2)
    # The centre coefficients of the 5-tap quadratic filter are (-3, 12, 17, 12, -3) / 35: the noise power
    # gain is their sum of squares, 17/35.
    np.testing.assert_allclose(smoothed[10:-10].var(0), 17 / 35, rtol=0.05)
    # A jittery closure keeps its depth better than a moving average of the same length.
    t = np.arange(60)
    closure = np.exp(-0.5 * ((t - 30) / 2.0) ** 2)
    box = np.convolve(closure, np.ones(5) / 5, mode="same")
    assert savgol_smooth(closure).max() > box.max() + 0.05


def test_shapes_dtypes_axes_and_short_sequences() -> None:
    x = np.random.default_rng(1).standard_normal((2, 30, 4)).astype(np.float32)
    y = savgol_smooth(x, axis=1)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y[1], savgol_smooth(x[1]), atol=1e-6)
    three = np.array([[0.0], [1.0], [0.0]])
    assert savgol_smooth(three).shape == (3, 1)                         # window shrinks to 3
    two = np.array([[0.0], [1.0]])
    np.testing.assert_array_equal(savgol_smooth(two), two)             # too short to fit: unchanged
    assert savgol_smooth(np.zeros((0, 5))).shape == (0, 5)
    np.testing.assert_array_equal(smooth_sequence(x[0], SmoothingConfig(enabled=False)), x[0])


@pytest.mark.parametrize(("window", "order"), [(4, 2), (0, 0), (5, 5), (5, -1)])
def test_invalid_settings_are_refused(window: int, order: int) -> None:
    with pytest.raises(ValueError, match="Savitzky-Golay"):
        SmoothingConfig(window, order)
