"""The one Pearson correlation the reports share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.eval.stats import pearson


def test_pearson_of_related_series() -> None:
    x = np.arange(10.0)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    noise = np.random.default_rng(0).normal(size=200)
    assert pearson(noise, noise + np.random.default_rng(1).normal(size=200)) == pytest.approx(0.7, abs=0.1)


def test_pearson_is_undefined_for_constant_or_too_short_series() -> None:
    assert pearson(np.ones(10), np.arange(10.0)) is None
    # constant up to float32 rounding: a large offset with a wobble of its last bits
    assert pearson(10.0 + 1e-6 * np.arange(10.0), np.arange(10.0)) is None
    assert pearson(np.arange(2.0), np.arange(2.0)) is None
    assert pearson(np.ones(10), np.arange(10.0), undefined=0.0) == 0.0
    assert math.isnan(pearson(np.ones(10), np.arange(10.0), undefined=float("nan")))
