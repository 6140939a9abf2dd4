"""Emotion sampling, the per-frame payload (read back by the engine's own parser) and the presets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from addon import emotions
from core.expression import emotions as core_emotions


def test_emotion_names_match_the_engine() -> None:
    assert emotions.EMOTIONS == core_emotions.EMOTIONS
    assert emotions.CURVES_FORMAT == core_emotions.CURVES_FORMAT
    assert emotions.CURVES_FORMAT_VERSION == core_emotions.CURVES_FORMAT_VERSION


def test_sample_emotions_once_per_frame_from_curves_and_constants() -> None:
    calls: list[float] = []

    def happy(frame: float) -> float:
        calls.append(frame)
        return (frame - 10) / 20

    per_frame = emotions.sample_emotions({"happy": happy, "sad": 0.25}, frame_start=10, count=5)
    assert calls == [10.0, 11.0, 12.0, 13.0, 14.0]  # exactly once per frame, in order
    assert per_frame["happy"] == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert per_frame["sad"] == [0.25] * 5
    assert list(per_frame) == list(emotions.EMOTIONS) and per_frame["angry"] == [0.0] * 5


def test_sample_emotions_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown emotion"):
        emotions.sample_emotions({"joy": 1.0}, 0, 3)
    with pytest.raises(ValueError, match="empty"):
        emotions.sample_emotions({}, 0, 0)
    with pytest.raises(ValueError, match="finite"):
        emotions.sample_emotions({"fear": lambda f: math.nan}, 0, 2)


def test_payload_is_read_by_the_engine_and_gives_back_the_same_values() -> None:
    rng = np.random.default_rng(0)
    per_frame = emotions.sample_emotions(
        {"happy": lambda f: min(1.0, max(0.0, (f - 11) / 20)), "surprised": float(rng.uniform())}, 11, 40)
    payload = emotions.emotion_curves_payload(per_frame, fps=25.0, frame_start=11)
    assert payload["frame_start"] == 11 and payload["frame_end"] == 50 and payload["fps"] == 25.0
    curves = core_emotions.EmotionCurves.from_json(payload)  # the engine's validator accepts it
    assert curves.n_frames == 40
    sampled = curves.sample(40)  # video frame i = curve frame 11 + i
    expected = np.array([per_frame[name] for name in emotions.EMOTIONS], np.float32).T
    np.testing.assert_allclose(sampled, expected, atol=1e-6)


def test_payload_checks_lengths_and_fps() -> None:
    with pytest.raises(ValueError, match="same, non-zero"):
        emotions.emotion_curves_payload({"happy": [0.1, 0.2], "sad": [0.1]}, 25, 0)
    with pytest.raises(ValueError, match="fps"):
        emotions.emotion_curves_payload({"happy": [0.1]}, 0, 0)
    sub = emotions.emotion_curves_payload({"happy": [0.1, 0.2]}, 24, 3.5)
    assert sub["frame_start"] == 3.5 and sub["frame_end"] == 4.5


@pytest.mark.parametrize(("preset", "engine_preset"), [("RAMP_IN", core_emotions.ramp_in),
                                                      ("PULSE", core_emotions.pulse),
                                                      ("RAMP_OUT", core_emotions.ramp_out)])
def test_presets_have_the_engine_presets_keys(preset: str, engine_preset: object) -> None:
    keys = emotions.preset_keyframes(preset, 10, 50, peak=0.8)
    reference = engine_preset("happy", 10, 50, peak=0.8)  # type: ignore[operator]
    assert keys == [(k.frame, k.value) for k in reference.keyframes]


def test_preset_input_errors() -> None:
    with pytest.raises(ValueError, match="too short"):
        emotions.preset_keyframes("PULSE", 10, 10)
    with pytest.raises(ValueError, match="unknown preset"):
        emotions.preset_keyframes("WOBBLE", 0, 10)
    with pytest.raises(ValueError, match="peak"):
        emotions.preset_keyframes("RAMP_IN", 0, 10, peak=1.5)
