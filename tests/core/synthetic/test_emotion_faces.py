"""Emotion faces (upper face + mouth corners), blinks and head motion of the synthetic actor."""

from __future__ import annotations

import numpy as np
import pytest

from core.expression.emotions import EMOTIONS, emotion_vector, mead_emotion_vector
from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.synthetic.emotion_faces import (
    EMOTION_FACE,
    BlinkConfig,
    blink_track,
    compose_expression,
    emotion_expression,
    emotion_jaw_offset,
    head_motion,
)

IDX = {name: i for i, name in enumerate(PROCEDURAL_EXPRESSIONS)}
BOTH = ("_left", "_right")

# What each emotion must raise (at least 0.3 at full intensity), per the design table.
RAISES: dict[str, tuple[str, ...]] = {
    "happy": ("smile_left", "smile_right", "cheek_raise_left", "cheek_raise_right"),
    "sad": ("frown_left", "frown_right", "brow_inner_up"),
    "surprised": ("brow_up_left", "brow_up_right", "eye_wide_left", "eye_wide_right", "mouth_open"),
    "angry": ("brow_down_left", "brow_down_right", "lips_press", "squint_left", "squint_right"),
    "fear": ("brow_inner_up", "brow_up_left", "eye_wide_left", "eye_wide_right", "lips_stretch"),
    "disgusted": ("sneer_left", "sneer_right", "upper_lip_raise", "brow_down_left"),
    "contempt": ("smile_left", "dimple_left"),
}


def test_table_uses_model_names_and_covers_every_emotion() -> None:
    assert set(EMOTION_FACE) == set(EMOTIONS)
    for weights in EMOTION_FACE.values():
        assert set(weights) <= set(PROCEDURAL_EXPRESSIONS)
        assert all(0 < v <= 1 for v in weights.values())


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_each_emotion_moves_its_parameters_monotonically_in_intensity(emotion: str) -> None:
    levels = np.stack([mead_emotion_vector(emotion, level) for level in (1, 2, 3)])
    offsets = emotion_expression(np.concatenate([np.zeros((1, 7), np.float32), levels]))
    assert offsets.shape == (4, len(PROCEDURAL_EXPRESSIONS)) and offsets.dtype == np.float32
    assert not offsets[0].any()  # neutral
    for name in RAISES[emotion]:
        column = offsets[:, IDX[name]]
        assert column[-1] >= 0.3, (emotion, name)
        assert np.all(np.diff(column) > 0), (emotion, name)


def test_emotions_keep_to_their_regions() -> None:
    happy = emotion_expression(emotion_vector("happy"))[0]
    sad = emotion_expression(emotion_vector("sad"))[0]
    surprised = emotion_expression(emotion_vector("surprised"))[0]
    assert happy[IDX["frown_left"]] == 0 and happy[IDX["brow_inner_up"]] == 0
    assert sad[IDX["smile_left"]] == 0 and sad[IDX["eye_wide_left"]] == 0
    assert surprised[IDX["brow_down_left"]] == 0
    contempt = emotion_expression(emotion_vector("contempt"))[0]
    assert contempt[IDX["smile_left"]] > 0.4 and contempt[IDX["smile_right"]] == 0  # one-sided
    # Surprise drops the jaw a little; happiness does not.
    assert emotion_jaw_offset(emotion_vector("surprised"))[0] > 0.03
    assert emotion_jaw_offset(emotion_vector("happy"))[0] == 0


def test_mixtures_add_and_batches_work() -> None:
    mix = emotion_expression(emotion_vector("happy:0.5,sad:0.4"))
    parts = emotion_expression(emotion_vector("happy:0.5")) + emotion_expression(emotion_vector("sad:0.4"))
    np.testing.assert_allclose(mix, parts, atol=1e-6)
    batch = np.random.default_rng(0).uniform(0, 1, (9, 7))
    assert emotion_expression(batch).shape == (9, len(PROCEDURAL_EXPRESSIONS))
    with pytest.raises(ValueError, match="shape"):
        emotion_expression(np.zeros(6))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        emotion_expression(np.full(7, 1.5))


def test_compose_clips_and_blinks_close_the_lids() -> None:
    visemes = np.zeros((3, len(PROCEDURAL_EXPRESSIONS)), np.float32)
    visemes[:, IDX["mouth_open"]] = 0.9
    offsets = emotion_expression(emotion_vector("surprised"))  # (1, E): broadcast over frames
    face = compose_expression(visemes, offsets, blink=np.array([0.0, 0.5, 1.0]))
    assert face.shape == (3, len(PROCEDURAL_EXPRESSIONS)) and face.min() >= 0 and face.max() <= 1
    assert face[0, IDX["mouth_open"]] == 1.0  # 0.9 + 0.3 clipped
    for side in BOTH:
        assert face[0, IDX["blink" + side]] == 0 and face[2, IDX["blink" + side]] == 1.0
        assert face[0, IDX["eye_wide" + side]] > 0.7 and face[2, IDX["eye_wide" + side]] == 0


def test_blinks() -> None:
    fps = 100.0
    track = blink_track(int(120 * fps), fps, rng=3)
    assert track.dtype == np.float32 and track.min() >= 0 and track.max() <= 1
    np.testing.assert_array_equal(track, blink_track(int(120 * fps), fps, rng=3))
    closed = track > 0
    onsets = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    ends = np.flatnonzero(~closed[1:] & closed[:-1]) + 1
    n = min(len(onsets), len(ends))
    assert 15 <= len(onsets) <= 50  # one every ~4 s over two minutes
    intervals = np.diff(onsets) / fps
    assert intervals.min() >= BlinkConfig().min_interval_s - 0.02 and 2.5 < intervals.mean() < 6.0
    durations = (ends[:n] - onsets[:n]) / fps
    durations = durations[durations > 0]
    assert 0.1 < np.median(durations) < 0.25
    # Every blink closes the eye fully at 100 fps, and closing is faster than opening.
    for a, b in zip(onsets[:5], ends[:5], strict=False):
        blink = track[a:b]
        if len(blink) < 5:
            continue
        assert blink.max() > 0.95
        peak = int(np.argmax(blink))
        assert peak < len(blink) - peak
    assert blink_track(0, 25.0, 0).shape == (0,)


def test_head_motion_is_small_smooth_and_seeded() -> None:
    fps, n = 25.0, 25 * 60
    rotation, translation = head_motion(n, fps, rng=9)
    again = head_motion(n, fps, rng=9)
    np.testing.assert_array_equal(rotation, again[0])
    assert rotation.shape == translation.shape == (n, 3) and rotation.dtype == np.float32
    degrees = np.rad2deg(rotation)
    assert np.all((degrees.std(0) > 0.5) & (degrees.std(0) < 5)) and np.abs(degrees).max() < 12
    mm = translation * 1000
    assert np.all((mm.std(0) > 0.5) & (mm.std(0) < 6)) and np.abs(mm).max() < 15
    assert np.abs(np.diff(degrees, axis=0)).max() < 0.5  # < 0.5 degree per frame: smooth
    np.testing.assert_allclose(rotation.mean(0), 0, atol=1e-6)


def test_head_nods_follow_speech_energy() -> None:
    fps, n = 25.0, 500
    energy = np.zeros(n, np.float32)
    energy[100:150] = energy[300:350] = 1.0
    still, _ = head_motion(n, fps, rng=1)
    nodding, _ = head_motion(n, fps, rng=1, speech_energy=energy)
    extra = np.rad2deg(nodding[:, 0] - still[:, 0])
    assert np.corrcoef(extra, energy)[0, 1] > 0.8
    np.testing.assert_allclose(nodding[:, 1:], still[:, 1:])  # only pitch
    with pytest.raises(ValueError, match="speech_energy"):
        head_motion(n, fps, rng=1, speech_energy=energy[:10])
