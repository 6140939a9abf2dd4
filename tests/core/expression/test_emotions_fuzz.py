"""Fuzzing the emotion-curves parser and the emotion-spec parser: any input gives a value or a
``ValueError`` that says what is wrong, never another exception (issue 19 found OverflowError on a
300-digit frame rate and RecursionError on deeply nested JSON), and what parses samples to finite values."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.expression.emotions import EMOTIONS, EmotionCurves, emotion_vector

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

huge = st.integers(min_value=10**300, max_value=10**400)
numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e9, 1e9), st.floats(0, 1), huge,
                    st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                           max_leaves=20)
names = st.sampled_from([*EMOTIONS, "neutral", "joyful", "Happy", "anger", ""])
keyframes = st.fixed_dictionaries(
    {"frame": numbers, "value": numbers},
    optional={"interpolation": st.one_of(st.sampled_from(["constant", "linear", "bezier"]), json_values),
              "handle_left": st.one_of(st.lists(numbers, min_size=2, max_size=2), json_values),
              "handle_right": st.one_of(st.lists(numbers, min_size=2, max_size=2), json_values),
              "colour": json_values})
curve_docs = st.fixed_dictionaries(
    {"format": st.just("emodub-emotion-curves"), "version": st.sampled_from([1, 1, 1, 2, "1"])},
    optional={"fps": st.one_of(numbers, json_values), "frame_start": st.one_of(numbers, json_values),
              "frame_end": st.one_of(numbers, json_values),
              "curves": st.one_of(json_values, st.dictionaries(names, st.one_of(
                  json_values, st.fixed_dictionaries({"keyframes": st.one_of(json_values, st.lists(keyframes,
                                                                                                    max_size=4))})),
                  max_size=3)),
              "per_frame": st.one_of(json_values, st.dictionaries(names, st.one_of(json_values, st.lists(numbers,
                                                                                                       max_size=5)),
                                                                  max_size=3))})


def _parse(data: Any) -> EmotionCurves | None:
    try:
        return EmotionCurves.from_json(data)
    except ValueError as exc:
        assert str(exc)  # says what is wrong
        return None


@FUZZ
@given(st.one_of(curve_docs, json_values))
def test_any_curves_object_parses_or_is_refused_clearly(data: Any) -> None:
    curves = _parse(data)
    if curves is None:
        return
    assert np.isfinite(curves.sample(5)).all() and np.isfinite(curves.sample(3, video_fps=30.0)).all()
    again = EmotionCurves.from_json(json.dumps(curves.to_json()))  # what it writes, it reads
    np.testing.assert_allclose(again.sample(5), curves.sample(5))


@FUZZ
@given(st.one_of(st.text(), st.builds(json.dumps, curve_docs),
                 st.builds(lambda n, tail: "[" * n + tail, st.integers(0, 20_000), st.text(max_size=4)),
                 st.builds(lambda n: '{"format": "emodub-emotion-curves", "curves": ' + '{"a": ' * n,
                           st.integers(0, 5000))))
def test_any_curves_text_parses_or_is_refused_clearly(text: str) -> None:
    _parse(text)


@FUZZ
@given(st.one_of(st.text(), json_values, st.dictionaries(names, numbers), st.lists(numbers, min_size=7, max_size=7)))
def test_any_emotion_spec_parses_or_is_refused_clearly(spec: Any) -> None:
    try:
        vec = emotion_vector(spec)
    except ValueError as exc:
        assert str(exc)
        return
    assert vec.shape == (7,) and np.isfinite(vec).all() and ((vec >= 0) & (vec <= 1)).all()
