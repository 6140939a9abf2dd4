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
"""

from core.synthetic.emotion_faces import (
    EMOTION_FACE,
    BlinkConfig,
    HeadMotionConfig,
    blink_track,
    compose_expression,
    emotion_expression,
    emotion_jaw_offset,
    head_motion,
)
from core.synthetic.phonemes import PHONEME_SYMBOLS, PHONEMES, PhonemeTiming, SentenceConfig, random_sentence
from core.synthetic.speech import (
    EMOTION_PROSODY,
    Prosody,
    VoiceConfig,
    frame_energy,
    prosody_for_emotion,
    synthesize,
)
from core.synthetic.visemes import VISEMES, CoarticulationConfig, viseme_track

__all__ = [
    "EMOTION_FACE", "EMOTION_PROSODY", "PHONEMES", "PHONEME_SYMBOLS", "VISEMES", "BlinkConfig",
    "CoarticulationConfig", "HeadMotionConfig", "PhonemeTiming", "Prosody", "SentenceConfig", "VoiceConfig",
    "blink_track", "compose_expression", "emotion_expression", "emotion_jaw_offset", "frame_energy",
    "head_motion", "prosody_for_emotion", "random_sentence", "synthesize", "viseme_track",
]
