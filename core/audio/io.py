"""Reading audio for the engine: any file soundfile can read, any sample rate, mono or multichannel.

:func:`load_audio` returns mono float32 at the requested rate; :func:`prepare_wave` does the same for
an array already in memory. Both refuse what cannot be used (a missing, unreadable or empty file,
non-finite samples) with an :class:`AudioError` that says what to do. Silence and clipping are *not*
errors here: :func:`audio_stats` measures them so that a caller can decide (``a2e predict`` refuses
a wholly silent file; clipping only earns a warning because clipped speech still carries its timing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io.audio import resample

DEFAULT_SAMPLE_RATE: int = 16000
# An RMS level (of the loudest 5% of 20 ms frames) under this many dBFS counts as silence.
SILENCE_DBFS: float = -60.0
# Samples with |x| at or above this are counted as clipped.
CLIP_LEVEL: float = 0.999


class AudioError(ValueError):
    """Audio that cannot be used; the message says what is wrong and what to do."""


def _to_mono(wave: np.ndarray, channels_last: bool = True) -> np.ndarray:
    """(S,) or (S, C) (``channels_last``) / (C, S) -> (S,) float64 by averaging channels.

    A 2-D array of at most 16 rows and more columns is taken as (C, S) whatever ``channels_last`` says.
    """
    arr = np.asarray(wave)
    if arr.ndim == 1:
        return arr.astype(np.float64, copy=False)
    if arr.ndim != 2:
        raise AudioError(f"audio must be 1-D (samples) or 2-D (samples x channels), got shape {arr.shape}")
    if channels_last and arr.shape[0] <= 16 < arr.shape[1]:
        channels_last = False  # (C, S) as librosa writes it: a few rows of many samples
    return arr.astype(np.float64, copy=False).mean(axis=1 if channels_last else 0)


def prepare_wave(wave: np.ndarray, sr: int, target_sr: int = DEFAULT_SAMPLE_RATE,
                 channels_last: bool = True, what: str = "audio") -> np.ndarray:
    """Mono float32 at ``target_sr`` from an in-memory array of any rate/channel layout.

    Integer PCM arrays are scaled to [-1, 1]. Raises :class:`AudioError` for an empty array, a bad
    sample rate or non-finite samples.
    """
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise AudioError(f"{what}: sample rate must be a positive integer, got {sr!r}")
    arr = np.asarray(wave)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
    mono = _to_mono(arr, channels_last)
    if mono.size == 0:
        raise AudioError(f"{what} has no samples (it is empty); export the audio again")
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{what} contains NaN or infinite samples; re-export it as PCM (WAV/FLAC)")
    return resample(mono, int(sr), int(target_sr))


def load_audio(path: str | Path, sr: int = DEFAULT_SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Read ``path`` as mono float32 at ``sr`` Hz (channels averaged, polyphase resampling).

    Returns:
        (wave (S,) float32, sr).

    Raises:
        AudioError: the file is missing, unreadable (not WAV/FLAC/OGG...), empty or holds non-finite
            samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file {path} does not exist")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as exc:
        raise AudioError(f"cannot read audio file {path}: {exc}. Use WAV, FLAC or OGG "
                         "(convert with: ffmpeg -i INPUT -ar 16000 -ac 1 out.wav)") from None
    if data.shape[0] == 0:
        raise AudioError(f"audio file {path} is empty (0 samples); export the audio again")
    return prepare_wave(data, int(file_sr), sr, channels_last=True, what=f"audio file {path}"), sr


@dataclass(frozen=True)
class AudioStats:
    """Level measurements of a mono wave.

    Attributes:
        duration_s: length in seconds.
        peak: max |sample|.
        active_rms_dbfs: RMS of the loudest 5% of 20 ms frames, dBFS (speech level, robust to pauses).
        clipped_fraction: fraction of samples at full scale (|x| >= 0.999).
        silent: ``active_rms_dbfs`` below :data:`SILENCE_DBFS`.
    """

    duration_s: float
    peak: float
    active_rms_dbfs: float
    clipped_fraction: float
    silent: bool


def active_rms(wave: np.ndarray, sr: int, frame_s: float = 0.02, percentile: float = 95.0) -> float:
    """RMS of the loud frames (``percentile`` of 20 ms frame RMS): the level of the speech itself."""
    n = max(1, int(round(frame_s * sr)))
    count = max(1, len(wave) // n)
    frames = np.zeros((count, n), np.float64)
    flat = np.asarray(wave[: count * n], np.float64)
    frames.reshape(-1)[: flat.size] = flat
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return float(np.percentile(rms, percentile))


def audio_stats(wave: np.ndarray, sr: int) -> AudioStats:
    """Duration, peak, speech level, clipping and silence of a mono wave."""
    wave = np.asarray(wave, np.float64).reshape(-1)
    level = active_rms(wave, sr) if wave.size else 0.0
    dbfs = 20.0 * math.log10(max(level, 1e-12))
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return AudioStats(duration_s=wave.size / float(sr), peak=peak, active_rms_dbfs=dbfs,
                      clipped_fraction=float(np.mean(np.abs(wave) >= CLIP_LEVEL)) if wave.size else 0.0,
                      silent=dbfs < SILENCE_DBFS)


def n_video_frames(n_samples: int, sr: int, fps: float) -> int:
    """Video frames covering ``n_samples`` of audio: ``ceil(duration * fps)``, at least 1.

    Frame ``i`` is the instant ``i / fps``; a trailing partial frame still shows the end of the audio.
    """
    return max(1, int(math.ceil(n_samples * float(fps) / float(sr) - 1e-6)))
