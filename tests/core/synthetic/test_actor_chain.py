"""The chain a corpus builder runs: sentence -> speech -> visemes + emotion + blinks + head motion."""

from __future__ import annotations

import numpy as np

from core.expression.emotions import mead_emotion_vector
from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.synthetic import (
    blink_track,
    compose_expression,
    emotion_expression,
    emotion_jaw_offset,
    frame_energy,
    head_motion,
    random_sentence,
    synthesize,
    viseme_track,
)

SR, FPS = 16000, 25.0


def _performance(seed: int, emotion: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    wave, timing = synthesize(random_sentence(rng, 10), emotion, sr=SR, rng=rng)
    n = int(np.ceil(timing.duration * FPS))
    mouth, jaw = viseme_track(timing, FPS, n)
    expression = compose_expression(mouth, emotion_expression(emotion), blink_track(n, FPS, rng))
    energy = frame_energy(wave, SR, FPS, n)
    rotation, translation = head_motion(n, FPS, rng, energy)
    return {"wave": wave, "expression": expression, "jaw": jaw + emotion_jaw_offset(emotion),
            "rotation": rotation, "translation": translation, "energy": energy}


def test_chain_gives_aligned_per_frame_parameters() -> None:
    perf = _performance(0, mead_emotion_vector("happy", 3))
    n = len(perf["jaw"])
    assert abs(n - len(perf["wave"]) / SR * FPS) < 1
    assert perf["expression"].shape == (n, len(PROCEDURAL_EXPRESSIONS))
    for key in ("rotation", "translation"):
        assert perf[key].shape == (n, 3)
    assert all(np.all(np.isfinite(v)) for v in perf.values())
    smile = PROCEDURAL_EXPRESSIONS.index("smile_left")
    assert perf["expression"][:, smile].min() >= 0.7  # held through the whole clip at intensity 3


def test_audio_and_mouth_are_related() -> None:
    # The point of the synthetic actor: the mouth is predictable from the sound. Loud frames (vowels)
    # open the jaw; silent frames close it.
    perf = _performance(1, mead_emotion_vector("neutral", 1))
    corr = np.corrcoef(perf["energy"], perf["jaw"])[0, 1]
    assert corr > 0.5
    quiet = perf["energy"] < 0.02
    assert perf["jaw"][quiet].mean() < 0.5 * perf["jaw"][~quiet].mean()
