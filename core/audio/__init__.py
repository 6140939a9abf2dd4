"""Audio for the engine: loading (any rate, any channel layout) and features aligned to video frames
(MFCC, log-mel, optional Wav2Vec2 phoneme posteriors) behind one :class:`FeatureExtractor` interface."""

from .features import (
    FEATURES,
    AudioFeatureConfig,
    FeatureExtractor,
    FeatureNotAvailable,
    MelExtractor,
    MFCCExtractor,
    Wav2Vec2Phonemes,
    make_extractor,
)
from .io import AudioError, AudioStats, audio_stats, load_audio, n_video_frames, prepare_wave, resample

__all__ = [
    "FEATURES", "AudioError", "AudioFeatureConfig", "AudioStats", "FeatureExtractor", "FeatureNotAvailable",
    "MFCCExtractor", "MelExtractor", "Wav2Vec2Phonemes", "audio_stats", "load_audio", "make_extractor",
    "n_video_frames", "prepare_wave", "resample",
]
