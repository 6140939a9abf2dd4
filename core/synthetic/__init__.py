"""The synthetic actor: speech, visemes, emotions, blinks and head motion with known ground truth.

Audio side (this package so far)::

    rng = np.random.default_rng(seed)
    sentence = random_sentence(rng, n_words=8)                      # [(phoneme, duration_s), ...]
    emotion = mead_emotion_vector("happy", 2)                       # (7,) intensities
    wave, timing = synthesize(sentence, emotion, sr=16000, rng=rng)  # float32 audio + PhonemeTiming
    n = int(np.ceil(timing.duration * fps))
    mouth, jaw = viseme_track(timing, fps, n)                       # (n, E) weights, (n,) radians
    expression = compose_expression(mouth, emotion_expression(emotion), blink_track(n, fps, rng))
    jaw = jaw + emotion_jaw_offset(emotion)
    rotation, translation = head_motion(n, fps, rng, frame_energy(wave, 16000, fps, n))

``E`` = ``len(core.morphable.data.PROCEDURAL_EXPRESSIONS)``; the names let a renderer map the weights
onto whichever model it drives. Modules: :mod:`.phonemes`, :mod:`.speech`, :mod:`.visemes`,
:mod:`.emotion_faces`.

Names are loaded on first use so that importing ``core.synthetic.jobs`` (every CLI start) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **{n: "core.synthetic.emotion_faces" for n in (
        "EMOTION_FACE", "BlinkConfig", "HeadMotionConfig", "blink_track", "compose_expression", "emotion_expression",
        "emotion_jaw_offset", "head_motion",
    )},
    **{n: "core.synthetic.phonemes" for n in (
        "PHONEME_SYMBOLS", "PHONEMES", "PhonemeTiming", "SentenceConfig", "random_sentence",
    )},
    **{n: "core.synthetic.speech" for n in (
        "EMOTION_PROSODY", "Prosody", "VoiceConfig", "frame_energy", "prosody_for_emotion", "synthesize",
    )},
    **{n: "core.synthetic.visemes" for n in ("VISEMES", "CoarticulationConfig", "viseme_track")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.synthetic' has no attribute {name!r}")
