"""Emotion vocabulary, keyframed curves (constant / linear / Bezier), sampling and the JSON form."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.expression.emotions import (
    CURVES_FORMAT,
    EMOTIONS,
    EmotionCurve,
    EmotionCurves,
    Keyframe,
    SampledCurve,
    curves_from,
    emotion_vector,
    format_emotion,
    mead_emotion_vector,
    mead_intensity,
    pulse,
    ramp_in,
    ramp_out,
)

HAPPY = EMOTIONS.index("happy")
SAD = EMOTIONS.index("sad")


# ----------------------------------------------------------------------------------------- vocabulary

def test_vocabulary_order_is_the_label_layout() -> None:
    assert EMOTIONS == ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")


@pytest.mark.parametrize(("spec", "expected"), [
    ("neutral", {}),
    ("happy:0.66", {"happy": 0.66}),
    ("happy", {"happy": 1.0}),
    ("happy:0.5,sad:0.2", {"happy": 0.5, "sad": 0.2}),
    (" Happy = 0.5 , SURPRISED:1 ", {"happy": 0.5, "surprised": 1.0}),
    ("anger:0.3", {"angry": 0.3}),
    ("neutral:1,fear:0.25", {"fear": 0.25}),
    ({"disgusted": 0.4, "contempt": 0.1}, {"disgusted": 0.4, "contempt": 0.1}),
    ({}, {}),
    (None, {}),
    ([0, 0, 0, 0.5, 0, 0, 0], {"fear": 0.5}),
])
def test_emotion_vector_parses(spec: object, expected: dict[str, float]) -> None:
    vec = emotion_vector(spec)  # type: ignore[arg-type]
    assert vec.shape == (7,) and vec.dtype == np.float32
    want = np.zeros(7, np.float32)
    for name, value in expected.items():
        want[EMOTIONS.index(name)] = value
    np.testing.assert_allclose(vec, want, atol=1e-7)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown emotion 'joy'") as info:
        emotion_vector("joy:0.3")
    for name in ("neutral", *EMOTIONS):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="valid names"):
        emotion_vector({"bored": 0.2})


@pytest.mark.parametrize("spec", ["happy:1.3", "sad:-0.1", {"fear": 2.0}, "happy:nan",
                                  [0, 0, 0, 0, 1.5, 0, 0]])
def test_out_of_range_intensity_rejected(spec: object) -> None:
    with pytest.raises(ValueError, match="intensit"):
        emotion_vector(spec)  # type: ignore[arg-type]


def test_clamp_instead_of_reject() -> None:
    vec = emotion_vector("happy:1.3,sad:-0.2", clamp=True)
    assert vec[HAPPY] == 1.0 and vec[SAD] == 0.0


@pytest.mark.parametrize("spec", ["", "happy:0.5,happy:0.2", "happy:abc", "happy 0.5", [0.1, 0.2]])
def test_malformed_specs_rejected(spec: object) -> None:
    with pytest.raises(ValueError):
        emotion_vector(spec)  # type: ignore[arg-type]


def test_mead_levels() -> None:
    assert [mead_intensity(level) for level in (1, 2, 3)] == [0.33, 0.66, 1.0]
    for bad in (0, 4, 2.5, True):
        with pytest.raises(ValueError, match="1, 2 or 3"):
            mead_intensity(bad)  # type: ignore[arg-type]
    vec = mead_emotion_vector("surprised", 2)
    assert vec[EMOTIONS.index("surprised")] == pytest.approx(0.66) and vec.sum() == pytest.approx(0.66)
    assert not mead_emotion_vector("neutral", 3).any()


def test_format_round_trips() -> None:
    for spec in ("neutral", "happy:0.66", "angry:0.33,sad:0.5"):
        np.testing.assert_allclose(emotion_vector(format_emotion(emotion_vector(spec))), emotion_vector(spec))


# ------------------------------------------------------------------------------------ interpolation

def test_constant_interpolation_holds_left_value() -> None:
    curve = EmotionCurve("happy", [Keyframe(0, 0.2, "constant"), Keyframe(10, 0.8, "constant"),
                                   Keyframe(20, 0.5, "constant")])
    frames = np.array([-5, 0, 3.5, 9.999, 10, 15, 20, 100])
    np.testing.assert_allclose(curve.evaluate(frames), [0.2, 0.2, 0.2, 0.2, 0.8, 0.8, 0.5, 0.5])


def test_linear_interpolation_hand_values() -> None:
    curve = EmotionCurve("sad", [Keyframe(10, 0.0, "linear"), Keyframe(20, 1.0, "linear"),
                                 Keyframe(24, 0.5, "linear")])
    frames = np.array([0, 10, 12.5, 15, 20, 22, 24, 30])
    np.testing.assert_allclose(curve.evaluate(frames), [0, 0, 0.25, 0.5, 1.0, 0.75, 0.5, 0.5])


def test_segment_mode_comes_from_left_key() -> None:
    # Left key constant, right key bezier: the segment holds (Blender's rule); the next one is linear.
    curve = EmotionCurve("fear", [Keyframe(0, 0.1, "constant"), Keyframe(10, 0.9, "linear"),
                                  Keyframe(20, 0.3, "bezier")])
    np.testing.assert_allclose(curve.evaluate([5, 15]), [0.1, 0.6])


def test_bezier_hand_value_smoothstep() -> None:
    # Handles at 1/3 and 2/3 in time make x(t) = 10 t; flat handles make y(t) = 3t^2 - 2t^3.
    curve = EmotionCurve("happy", [Keyframe(0, 0.0, "bezier", handle_right=(10 / 3, 0.0)),
                                   Keyframe(10, 1.0, "bezier", handle_left=(-10 / 3, 0.0))])
    t = np.array([0.0, 0.25, 0.5, 0.8, 1.0])
    np.testing.assert_allclose(curve.evaluate(10 * t), 3 * t**2 - 2 * t**3, atol=1e-9)


def _cubic(p0: float, p1: float, p2: float, p3: float, t: np.ndarray) -> np.ndarray:
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


@pytest.mark.parametrize(("h_right", "h_left"), [((2.0, 0.5), (-6.0, 0.0)), ((7.0, -0.3), (-1.0, 0.4)),
                                                  ((0.5, 0.9), (-0.5, -0.9))])
def test_bezier_matches_reference_cubic(h_right: tuple[float, float], h_left: tuple[float, float]) -> None:
    k0 = Keyframe(3, 0.2, "bezier", handle_right=h_right)
    k1 = Keyframe(11, 0.7, "bezier", handle_left=h_left)
    curve = EmotionCurve("angry", [k0, k1])
    t = np.linspace(0, 1, 57)
    xs = _cubic(3, 3 + h_right[0], 11 + h_left[0], 11, t)
    ys = _cubic(0.2, 0.2 + h_right[1], 0.7 + h_left[1], 0.7, t)
    np.testing.assert_allclose(curve.evaluate(xs), ys, atol=1e-9)


def test_bezier_with_handles_on_the_line_is_linear() -> None:
    slope = (0.9 - 0.1) / 12
    curve = EmotionCurve("surprised", [Keyframe(0, 0.1, "bezier", handle_right=(4.0, 4.0 * slope)),
                                       Keyframe(12, 0.9, "bezier", handle_left=(-4.0, -4.0 * slope))])
    frames = np.linspace(0, 12, 31)
    np.testing.assert_allclose(curve.evaluate(frames), 0.1 + slope * frames, atol=1e-9)


def test_overlong_handles_are_scaled_to_keep_a_function() -> None:
    # Handles reaching past the other key: Blender scales them so x(t) is monotone.
    curve = EmotionCurve("happy", [Keyframe(0, 0.0, handle_right=(30.0, 0.0)),
                                   Keyframe(10, 1.0, handle_left=(-30.0, 0.0))])
    values = curve.evaluate(np.linspace(0, 10, 201))
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) >= -1e-12)
    assert values[0] == 0.0 and values[-1] == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.floats(0, 1)), min_size=2, max_size=8,
                unique_by=lambda kv: kv[0]))
def test_auto_clamped_bezier_never_overshoots_its_keys(keys: list[tuple[int, float]]) -> None:
    keys.sort()
    curve = EmotionCurve("sad", [Keyframe(f, v, "bezier") for f, v in keys])
    for (f0, v0), (f1, v1) in itertools.pairwise(keys):
        seg = curve.evaluate(np.linspace(f0, f1, 25))
        assert seg.min() >= min(v0, v1) - 1e-9 and seg.max() <= max(v0, v1) + 1e-9
        np.testing.assert_allclose(seg[[0, -1]], [v0, v1], atol=1e-9)


def test_auto_handles_are_flat_at_extrema_and_smooth_through_monotone_keys() -> None:
    curve = EmotionCurve("happy", [Keyframe(0, 0.0), Keyframe(10, 0.5), Keyframe(20, 1.0), Keyframe(30, 0.2)])
    eps = 1e-4
    # At the maximum (frame 20) the curve is flat; at frame 10 the left and right slopes agree (C1).
    slope_20 = (curve.evaluate(20 + eps) - curve.evaluate(20 - eps)) / (2 * eps)
    assert abs(slope_20) < 1e-3
    left = (curve.evaluate(10) - curve.evaluate(10 - eps)) / eps
    right = (curve.evaluate(10 + eps) - curve.evaluate(10)) / eps
    assert left == pytest.approx(right, rel=1e-2) and left > 0.04


def test_evaluate_keeps_shape_and_single_key_is_constant() -> None:
    curve = EmotionCurve("sad", [Keyframe(5, 0.4)])
    assert curve.evaluate(np.zeros((3, 4))).shape == (3, 4)
    np.testing.assert_allclose(curve.evaluate([-10, 5, 99]), 0.4)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"frame": 0, "value": 1.2}, "values must lie in"),
    ({"frame": 0, "value": 0.5, "interpolation": "cubic"}, "constant, linear, bezier"),
    ({"frame": 0, "value": 0.5, "handle_left": (1.0, 0.0)}, "back in time"),
    ({"frame": 0, "value": 0.5, "handle_right": (-1.0, 0.0)}, "forward in time"),
    ({"frame": 0, "value": 0.5, "handle_right": (1.0,)}, "pair"),
])
def test_bad_keyframes_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Keyframe(**kwargs)  # type: ignore[arg-type]


def test_bad_curves_rejected() -> None:
    with pytest.raises(ValueError, match="two keyframes at frame 3"):
        EmotionCurve("happy", [Keyframe(3, 0.1), Keyframe(3, 0.2)])
    with pytest.raises(ValueError, match="no keyframes"):
        EmotionCurve("happy", [])
    with pytest.raises(ValueError, match="zero vector"):
        EmotionCurve("neutral", [Keyframe(0, 0.1)])


# ------------------------------------------------------------------------------------------ sampling

def test_sample_shape_columns_offset_and_clip() -> None:
    overshoot = EmotionCurve("happy", [Keyframe(0, 0.9, handle_right=(3.0, 0.6)), Keyframe(10, 0.9)])
    linear = EmotionCurve("sad", [Keyframe(100, 0.0, "linear"), Keyframe(110, 1.0, "linear")])
    curves = EmotionCurves({"happy": overshoot, "sad": linear}, fps=25, frame_start=100)
    out = curves.sample(12)
    assert out.shape == (12, 7) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    # Video frame i is curve frame 100 + i: the sad ramp runs over video frames 0..10.
    np.testing.assert_allclose(out[:11, SAD], np.linspace(0, 1, 11), atol=1e-6)
    others = np.delete(np.arange(7), [HAPPY, SAD])
    assert not out[:, others].any()
    np.testing.assert_allclose(curves.sample(3, start_frame=4)[:, SAD], [0.4, 0.5, 0.6], atol=1e-6)
    # Video at 50 fps against 25 fps curves: two video frames per curve frame.
    np.testing.assert_allclose(curves.sample(5, video_fps=50)[:, SAD], [0, 0.05, 0.1, 0.15, 0.2], atol=1e-6)
    # The overshooting handle is clipped to 1 where the raw curve exceeds it.
    raw = overshoot.evaluate(np.arange(0, 10))
    assert raw.max() > 1.0


def test_constant_curves_from_spec() -> None:
    out = EmotionCurves.constant("happy:0.66,fear:0.2").sample(4)
    np.testing.assert_allclose(out, np.tile(emotion_vector("happy:0.66,fear:0.2"), (4, 1)))


def test_sampled_curve_interpolates_and_holds() -> None:
    curve = SampledCurve("fear", np.array([0.0, 1.0, 0.5]), start=10)
    np.testing.assert_allclose(curve.evaluate([0, 10, 10.5, 11, 12, 50]), [0, 0, 0.5, 1.0, 0.5, 0.5])


# -------------------------------------------------------------------------------------------- presets

def test_presets_shapes() -> None:
    frames = np.arange(-10, 60, 0.5)
    up = ramp_in("happy", 10, 30, peak=0.66).evaluate(frames)
    assert np.all(np.diff(up) >= -1e-12)
    assert np.all(up[frames <= 10] == 0) and np.allclose(up[frames >= 30], 0.66)
    down = ramp_out("happy", 10, 30, peak=0.66).evaluate(frames)
    np.testing.assert_allclose(up + down, 0.66, atol=1e-9)  # a mirrored ease
    p = pulse("sad", 0, 40, peak=0.8, attack=10, release=5).evaluate(frames)
    assert np.all(p[(frames <= 0) | (frames >= 40)] == 0)
    np.testing.assert_allclose(p[(frames >= 10) & (frames <= 35)], 0.8)
    rising, falling = (frames > 0) & (frames < 10), (frames > 35) & (frames < 40)
    assert np.all(np.diff(p[rising]) > 0) and np.all(np.diff(p[falling]) < 0)
    tri = pulse("sad", 0, 20, attack=10, release=10).evaluate(np.arange(21))
    assert tri.argmax() == 10 and tri.max() == pytest.approx(1.0)
    lin = ramp_in("fear", 0, 10, interpolation="linear").evaluate([5])
    np.testing.assert_allclose(lin, [0.5])
    with pytest.raises(ValueError, match="after start"):
        ramp_in("happy", 10, 10)
    with pytest.raises(ValueError, match="fit in the span"):
        pulse("happy", 0, 10, attack=6, release=6)


# ----------------------------------------------------------------------------------------------- JSON

def test_json_example_from_docstring() -> None:
    doc = {
        "format": "emodub-emotion-curves", "version": 1, "fps": 25, "frame_start": 0, "frame_end": 99,
        "curves": {"happy": {"keyframes": [
            {"frame": 0, "value": 0.0, "interpolation": "bezier", "handle_left": [-3.0, 0.0],
             "handle_right": [3.0, 0.0]},
            {"frame": 40, "value": 0.8, "interpolation": "linear"}]}},
        "per_frame": {"sad": [0.0, 0.1, 0.2]},
    }
    curves = EmotionCurves.from_json(json.dumps(doc))
    assert curves.n_frames == 100
    out = curves.sample(100)
    assert out[0, HAPPY] == 0
    assert out[40, HAPPY] == pytest.approx(0.8) and out[99, HAPPY] == pytest.approx(0.8)
    np.testing.assert_allclose(out[:4, SAD], [0, 0.1, 0.2, 0.2], atol=1e-6)
    again = EmotionCurves.from_json(json.loads(json.dumps(curves.to_json())))
    np.testing.assert_array_equal(again.sample(100), out)


keyframe_strategy = st.builds(
    lambda frame, value, mode, hl, hr: Keyframe(frame, value, mode, hl, hr),
    st.floats(-500, 500, allow_nan=False), st.floats(0, 1),
    st.sampled_from(["constant", "linear", "bezier"]),
    st.none() | st.tuples(st.floats(-20, 0), st.floats(-2, 2)),
    st.none() | st.tuples(st.floats(0, 20), st.floats(-2, 2)),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(EMOTIONS), st.lists(keyframe_strategy, min_size=1, max_size=6,
                                                         unique_by=lambda k: k.frame), max_size=7),
       st.floats(1, 120), st.integers(-100, 100), st.booleans())
def test_json_round_trip(keyed: dict[str, list[Keyframe]], fps: float, start: int,
                         with_per_frame: bool) -> None:
    curves: dict[str, EmotionCurve | SampledCurve] = {n: EmotionCurve(n, keys) for n, keys in keyed.items()}
    if with_per_frame:
        free = [n for n in EMOTIONS if n not in curves]
        if free:
            curves[free[0]] = SampledCurve(free[0], np.linspace(0, 1, 7) ** 2, start=start)
    original = EmotionCurves(curves, fps=fps, frame_start=start, frame_end=start + 30)
    text = json.dumps(original.to_json())
    restored = EmotionCurves.from_json(text)
    assert restored.to_json() == original.to_json()
    np.testing.assert_array_equal(restored.sample(31), original.sample(31))


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {"format": CURVES_FORMAT, "version": 1, "fps": 25,
                              "curves": {"happy": {"keyframes": [{"frame": 0, "value": 0.5}]}}}
    doc.update(changes)
    return doc


@pytest.mark.parametrize(("doc", "match"), [
    (_doc(format="something-else"), "format"),
    (_doc(version=2), "version 2 is not supported"),
    (_doc(fps=0), "fps must be a positive"),
    (_doc(fps="25"), "'fps' must be a finite number"),
    ({k: v for k, v in _doc().items() if k != "fps"}, "lack 'fps'"),
    (_doc(extra=1), "unknown fields"),
    (_doc(curves={"joy": {"keyframes": [{"frame": 0, "value": 0.5}]}}), "curves.joy: unknown emotion"),
    (_doc(curves={"neutral": {"keyframes": [{"frame": 0, "value": 0.5}]}}), "zero vector"),
    (_doc(curves={"happy": {"keyframes": []}}), "non-empty list"),
    (_doc(curves={"happy": {"keyframes": [{"frame": 0, "value": 1.5}]}}),
     r"curves.happy.keyframes\[0\].*values must lie in \[0, 1\]"),
    (_doc(curves={"happy": {"keyframes": [{"frame": 0, "value": 0.5, "interpolation": "spline"}]}}),
     "unknown"),
    (_doc(curves={"happy": {"keyframes": [{"frame": "a", "value": 0.5}]}}), "must be a number"),
    (_doc(curves={"happy": {"keyframes": [{"frame": 0, "value": 0.5}, {"frame": 0, "value": 0.1}]}}),
     "two keyframes"),
    (_doc(per_frame={"happy": [0.1, 0.2]}), "appears twice"),
    (_doc(per_frame={"sad": [0.1, "x"]}), "per_frame.sad must be a non-empty list of numbers"),
    (_doc(per_frame={"sad": []}), "non-empty"),
])
def test_json_validation_errors(doc: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EmotionCurves.from_json(doc)


def test_not_json_text_rejected() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        EmotionCurves.from_json("{nope")


def test_save_and_load(tmp_path) -> None:
    curves = curves_from([pulse("angry", 5, 25, 0.66), ramp_in("happy", 0, 10)], fps=30, frame_end=40)
    path = curves.save(tmp_path / "emotion.json")
    loaded = EmotionCurves.load(path)
    np.testing.assert_array_equal(loaded.sample(41), curves.sample(41))
    with pytest.raises(ValueError, match="does not exist"):
        EmotionCurves.load(tmp_path / "missing.json")
