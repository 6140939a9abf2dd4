"""Emotions without footage: the generic FACS prior and how a dub's emotions are routed."""

from __future__ import annotations

import numpy as np
import pytest

from core.expression.emotion_prior import (
    EmotionPrior,
    actor_emotion_coverage,
    apply_prior,
    emotion_coverage,
    network_gate,
    route_emotions,
)
from core.expression.emotions import EMOTIONS
from core.morphable.data import PROCEDURAL_EXPRESSIONS

HAPPY, SAD = EMOTIONS.index("happy"), EMOTIONS.index("sad")


def test_coverage_is_the_highest_intensity_per_emotion() -> None:
    cover = emotion_coverage([{}, None, {"happy": 0.33}, {"happy": 1.0, "sad": 0.5}])
    assert cover[HAPPY] == 1.0 and cover[SAD] == 0.5 and cover.sum() == 1.5
    manifest = {"actors": {"a": {"clips": {"c0": {"emotion": {}}, "c1": {"emotion": {"sad": 0.66}}}}}}
    assert actor_emotion_coverage(manifest, "a")[SAD] == pytest.approx(0.66)
    assert not actor_emotion_coverage(manifest, "nobody").any()


def test_prior_maps_by_name_and_is_absent_for_pca_expressions() -> None:
    names = list(PROCEDURAL_EXPRESSIONS)[::-1]  # another order: mapping must follow the names
    prior = EmotionPrior.for_expressions(names)
    assert prior is not None and prior.expression.shape == (len(EMOTIONS), len(names))
    assert prior.expression[HAPPY, names.index("smile_left")] > 0.5
    assert prior.expression[HAPPY, names.index("brow_inner_up")] == 0
    assert prior.expression[SAD, names.index("brow_inner_up")] > 0.5
    assert EmotionPrior.for_expressions([f"expr_{i:03d}" for i in range(50)]) is None


def test_uncovered_emotions_go_to_the_prior_and_covered_ones_to_the_network() -> None:
    n = 10
    emotion = np.zeros((n, len(EMOTIONS)), np.float32)
    emotion[:, HAPPY] = np.linspace(0, 0.8, n)
    emotion[:, SAD] = 0.5
    coverage = emotion_coverage([{"sad": 1.0}])
    prior = EmotionPrior.for_expressions(PROCEDURAL_EXPRESSIONS)
    to_prior, sources = route_emotions(emotion, coverage, prior)
    net = emotion * network_gate(coverage, prior)[None]
    assert sources == {"happy": "prior", "sad": "footage"}
    assert np.all(net[:, HAPPY] == 0) and np.allclose(net[:, SAD], 0.5)
    assert np.allclose(to_prior[:, HAPPY], emotion[:, HAPPY]) and np.all(to_prior[:, SAD] == 0)
    none_to_prior, ignored = route_emotions(emotion, coverage, None)
    assert ignored["happy"] == "ignored" and not none_to_prior.any()
    assert np.array_equal(emotion * network_gate(coverage, None)[None], emotion)  # no prior: the network gets all


def test_applying_the_prior_follows_the_ramp_and_stays_in_range() -> None:
    names = list(PROCEDURAL_EXPRESSIONS)
    prior = EmotionPrior.for_expressions(names)
    assert prior is not None
    n = 20
    to_prior = np.zeros((n, len(EMOTIONS)), np.float32)
    to_prior[:, HAPPY] = np.linspace(0, 1, n)
    expression = np.full((n, len(names)), 0.5, np.float32)
    jaw = np.zeros((n, 3), np.float32)
    new_expr, new_jaw = apply_prior(expression, jaw, to_prior, prior)
    smile = new_expr[:, names.index("smile_left")]
    assert smile[0] == pytest.approx(0.5) and np.all(np.diff(smile) >= 0) and smile[-1] == 1.0  # clipped
    assert np.all(new_expr[:, names.index("brow_inner_up")] == 0.5)  # untouched by happy
    assert np.array_equal(new_jaw, jaw)  # happy does not open the jaw
    assert np.all(expression == 0.5)  # inputs are not modified
