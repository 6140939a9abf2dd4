"""Audio I/O: extract a video's sound track to a 16 kHz mono wav, read and write wav files.

Every file is written atomically (temporary file beside the target, then renamed). Audio arrays are
float32 in ``[-1, 1]``; mono arrays have shape ``(n,)``, multichannel ``(n, channels)``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .ffmpeg import MediaError, check_readable, run_ffmpeg

__all__ = ["extract_audio", "load_wav", "resample", "write_wav"]

DEFAULT_SAMPLE_RATE = 16000


def extract_audio(video: str | Path, out_wav: str | Path, sr: int = DEFAULT_SAMPLE_RATE, *,
                  channels: int = 1, stream: int | None = None) -> Path:
    """Decode the first (or given) audio stream of ``video`` to a PCM16 wav at ``sr`` Hz.

    Channels are averaged down to ``channels`` (ffmpeg's downmix); resampling uses libsoxr. The wav
    starts at the file's time 0, like the video frames: sound that starts late (an offset audio track)
    is preceded by silence, so sample ``t * sr`` plays with the frame shown at ``t``.

    Args:
        video: any file ffmpeg reads (video or audio).
        out_wav: the wav to write (atomically).
        sr: output sample rate.
        channels: output channel count (1 = mono).
        stream: ffmpeg stream index of the audio stream (default: the first audio stream).

    Raises:
        MediaError: ``no_audio_stream`` when the file has no sound; ``not_media`` / ``ffmpeg_failed``.
    """
    from core.workspace import atomic_path

    src = check_readable(video, "video")
    if stream is None:
        from .video import probe

        try:
            has_audio = probe(src, count_frames=False).has_audio
        except MediaError as exc:
            if exc.code != "no_video_stream":
                raise
            has_audio = True  # an audio-only file
        if not has_audio:
            raise MediaError(f"{src} has no audio stream", hint="give a file with sound, or a separate wav",
                             code="no_audio_stream")
    mapping = f"0:{stream}" if stream is not None else "0:a:0"
    out = Path(out_wav)
    with atomic_path(out, suffix=".wav") as tmp:
        run_ffmpeg(["-v", "error", "-y", "-i", str(src), "-map", mapping, "-vn",
                    "-af", f"aresample=resampler=soxr:osr={int(sr)}:first_pts=0", "-ac", str(int(channels)),
                    "-c:a", "pcm_s16le", "-f", "wav", str(tmp)], what=f"extracting the audio of {src.name}")
    return out


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling along axis 0 (anti-aliased). Returns float32."""
    if sr_in == sr_out:
        return np.asarray(audio, np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(int(sr_out), int(sr_in))
    return resample_poly(np.asarray(audio, np.float64), ratio.numerator, ratio.denominator,
                         axis=0).astype(np.float32)


def load_wav(path: str | Path, sr: int | None = None, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file soundfile understands (wav, flac, ogg...).

    Args:
        path: the file.
        sr: resample to this rate (``None`` keeps the file's).
        mono: average the channels.

    Returns:
        ``(audio, sample_rate)``: float32 ``(n,)`` when mono else ``(n, channels)``.
    """
    import soundfile as sf

    p = check_readable(path, "audio")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except RuntimeError as exc:  # soundfile raises LibsndfileError, a RuntimeError
        raise MediaError(f"cannot read {p} as audio ({exc})",
                         hint="give a wav/flac file; extract a video's sound with extract_audio",
                         code="not_media") from None
    audio: np.ndarray = data.mean(axis=1) if mono else data
    if sr is not None and sr != rate:
        audio, rate = resample(audio, rate, sr), sr
    return np.ascontiguousarray(audio, np.float32), int(rate)


def write_wav(path: str | Path, audio: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> Path:
    """Write ``audio`` ((n,) or (n, channels), float in [-1, 1], clipped) atomically as a wav."""
    import soundfile as sf

    from core.workspace import atomic_path

    arr = np.asarray(audio, np.float32)
    if arr.ndim not in (1, 2):
        raise ValueError(f"audio must have shape (n,) or (n, channels), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("audio contains NaN or infinite samples")
    out = Path(path)
    with atomic_path(out, suffix=".wav") as tmp:
        sf.write(str(tmp), np.clip(arr, -1.0, 1.0), int(sr), subtype=subtype, format="WAV")
    return out
