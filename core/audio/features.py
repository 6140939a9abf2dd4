"""Audio features aligned to video frames: one interface, several features (MFCC, log-mel, phoneme
posteriors from a user-supplied Wav2Vec2 checkpoint).

Alignment
---------
Video frame ``i`` shows the instant ``t_i = i / fps`` (its presentation timestamp). Each video frame
gets a window of ``W = k * window_video_frames`` audio frames (READ §3.2: the MFCC window is a multiple
of the video frame rate) whose centres are spaced by one hop ``h = sample_rate / (fps * k)`` and sit
symmetrically around ``t_i``: centre ``m`` of frame ``i``'s window is ``t_i + (m - (W - 1) / 2) * h``.
The windows of consecutive video frames are offsets of ``k`` audio frames on one global grid, so the
audio frames are analysed once and windows are strided views of them. At 16 kHz / 25 fps / k = 4 the hop
is 160 samples (10 ms) and the default window spans 16 audio frames = 4 video frames = 160 ms. When
``fps * k`` does not divide the sample rate (29.97 fps...) the hop is fractional and each analysis
frame is centred on the nearest sample (error <= half a sample), so the audio never drifts from the
video however long the clip. Audio before 0 and after its end is silence (zero padding); the number of
video frames defaults to ``ceil(duration * fps)`` and can be forced (``n_frames``) to match a video.

Robustness: any input rate (polyphase resampling to ``sample_rate``), multichannel (averaged), integer
PCM, silence (log floor, no NaN), clipping (analysed as is), very short audio (zero padded: a 0.1 s clip
gives 3 frames at 25 fps). Loudness is normalised (the level of the loudest 5% of 20 ms frames is set to
``target_level_dbfs``, at most ``max_gain_db`` of gain, silence left alone) so a dub recorded quieter than
the training footage gives the same features.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft

from .io import SILENCE_DBFS, active_rms, prepare_wave

# Analysis frames processed at once: bounds memory for long audio (4096 x 512 float64 = 16 MB).
_CHUNK_FRAMES = 4096


class FeatureNotAvailable(RuntimeError):
    """A feature whose dependency or weights are missing; the message says what to install/provide."""


@dataclass
class AudioFeatureConfig:
    """How audio becomes per-video-frame feature windows.

    Attributes:
        sample_rate: audio is resampled to this rate (Hz) before analysis.
        frames_per_video_frame: ``k`` audio frames per video frame; the hop is
            ``sample_rate / (fps * k)`` (160 samples = 10 ms at 16 kHz, 25 fps, k = 4).
        window_video_frames: length of the window centred on each video frame, in video frames; the
            window holds ``k * window_video_frames`` audio frames (a multiple of the frame rate, READ).
        win_length_s: analysis (Hann) window of one audio frame, seconds (25 ms, the usual for MFCC).
        n_mels: mel bands.
        n_mfcc: cepstral coefficients kept (including c0, the log energy).
        fmin: lowest mel band edge, Hz.
        fmax: highest mel band edge, Hz (``None``: Nyquist).
        log_floor: added to mel power before the log, so digital silence stays finite (-80 dB).
        normalize_gain: scale each input to ``target_level_dbfs`` (speech level) before analysis.
        target_level_dbfs: speech level after normalisation (RMS of the loudest 5% of 20 ms frames).
        max_gain_db: largest gain applied (a near-silent file is not blown up into noise).
        utterance_norm: standardise each feature dimension over the utterance's speech frames (those within
            ``utterance_norm_range_db`` of its loudest; mel and MFCC only). Removes what is constant over a
            recording: the channel (microphone, room), the speaker's average spectrum and level, so a dub
            voiced by another speaker or recorded elsewhere is analysed like the training footage.
        utterance_norm_range_db: frames quieter than the loudest 5% by more than this are pauses and do not
            count in the utterance's statistics.
        warp: vocal-tract length warp of the mel filterbank (VTLP, Jaitly & Hinton 2013): the features are
            those of a voice whose formants lie ``warp`` times as high (a shorter tract for ``warp > 1``).
            1 analyses the audio as it is; training copies of the footage at other warps teach the a2e
            other speakers' formants (``A2EConfig.voice_warps``).
    """

    sample_rate: int = 16000
    frames_per_video_frame: int = 4
    window_video_frames: int = 4
    win_length_s: float = 0.025
    n_mels: int = 40
    n_mfcc: int = 13
    fmin: float = 20.0
    fmax: float | None = 7600.0
    log_floor: float = 1e-8
    normalize_gain: bool = True
    target_level_dbfs: float = -20.0
    max_gain_db: float = 30.0
    utterance_norm: bool = False
    utterance_norm_range_db: float = 35.0
    warp: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def window(self) -> int:
        """Audio frames per window (``W``)."""
        return self.frames_per_video_frame * self.window_video_frames

    @property
    def win_length(self) -> int:
        return max(16, int(round(self.win_length_s * self.sample_rate)))

    @property
    def n_fft(self) -> int:
        return 1 << (self.win_length - 1).bit_length()

    def hop_samples(self, fps: float) -> float:
        """Hop between audio frames in samples (fractional when ``fps * k`` does not divide the rate)."""
        return self.sample_rate / (float(fps) * self.frames_per_video_frame)

    def validate(self) -> None:
        if int(self.sample_rate) != self.sample_rate or self.sample_rate < 4000:
            raise ValueError(f"sample_rate must be an integer >= 4000 Hz, got {self.sample_rate!r}")
        if self.frames_per_video_frame < 1 or self.window_video_frames < 1:
            raise ValueError("frames_per_video_frame and window_video_frames must be >= 1")
        if self.n_mfcc < 1 or self.n_mels < self.n_mfcc:
            raise ValueError(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={self.n_mfcc}, n_mels={self.n_mels}")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and not (self.fmin < self.fmax <= nyquist):
            raise ValueError(f"need fmin < fmax <= {nyquist:g} Hz, got fmin={self.fmin}, fmax={self.fmax}")
        if not (math.isfinite(self.warp) and 0.5 <= self.warp <= 2.0):
            raise ValueError(f"warp must lie in [0.5, 2] (a formant shift of at most an octave), got {self.warp!r}")
        if not self.utterance_norm_range_db > 0:
            raise ValueError(f"utterance_norm_range_db must be > 0, got {self.utterance_norm_range_db!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioFeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def check_fps(fps: float) -> float:
    fps = float(fps)
    if not (math.isfinite(fps) and 1.0 <= fps <= 240.0):
        raise ValueError(f"video frame rate must be between 1 and 240 fps, got {fps!r}")
    return fps


def normalize_level(wave: np.ndarray, sr: int, config: AudioFeatureConfig) -> np.ndarray:
    """Scale ``wave`` so its speech level is ``config.target_level_dbfs`` (silence is left alone)."""
    level = active_rms(wave, sr)
    level_db = 20.0 * math.log10(max(level, 1e-12))
    if level_db < SILENCE_DBFS:
        return wave
    gain_db = min(config.target_level_dbfs - level_db, config.max_gain_db)
    return (wave * (10.0 ** (gain_db / 20.0))).astype(np.float32)


UTTERANCE_MIN_STD = 1.0  # dB: the least spread normalize_utterance divides by


class FeatureExtractor(ABC):
    """Per-video-frame audio feature windows. Subclasses give :attr:`name`, :attr:`dim` and
    :meth:`frame_features` (features of audio frames at given centre times)."""

    name: str = "abstract"

    def __init__(self, config: AudioFeatureConfig | None = None) -> None:
        self.config = config or AudioFeatureConfig()

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature size of one audio frame."""

    @property
    def window(self) -> int:
        """Audio frames per video frame's window (``W``)."""
        return self.config.window

    @abstractmethod
    def frame_features(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """Features of the audio frames centred at sample positions ``centres``.

        Args:
            wave: (S,) float32 mono at ``config.sample_rate``, level-normalised.
            centres: (J,) float64 centre positions in samples (may be negative or past the end).

        Returns:
            (J, dim) float32, finite.
        """

    def frame_centres(self, n_frames: int, fps: float) -> np.ndarray:
        """(J,) centre sample positions of the global audio-frame grid, ``J = (n_frames - 1) * k + W``.

        Window of video frame ``i`` = grid frames ``i * k ... i * k + W - 1``, centred on ``i / fps``.
        """
        k, W = self.config.frames_per_video_frame, self.window
        hop = self.config.hop_samples(fps)
        j = np.arange((n_frames - 1) * k + W, dtype=np.float64)
        return (j - (W - 1) / 2.0) * hop

    def prepare(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """Mono, resampled, level-normalised float32 wave at ``config.sample_rate``."""
        mono = prepare_wave(wave, sr, self.config.sample_rate)
        if self.config.normalize_gain:
            mono = normalize_level(mono, self.config.sample_rate, self.config)
        return mono

    def extract(self, wave: np.ndarray, sr: int, fps: float, n_frames: int | None = None) -> np.ndarray:
        """Feature windows centred on each video frame.

        Args:
            wave: (S,) mono or (S, C) multichannel audio, float in [-1, 1] or integer PCM, any rate.
            sr: its sample rate (Hz).
            fps: video frame rate.
            n_frames: number of video frames (default ``ceil(duration * fps)``); audio missing at the
                end is silence, audio past the last frame is ignored.

        Returns:
            (N, W, dim) float32: ``out[i, m]`` is the audio frame centred at
            ``i / fps + (m - (W - 1) / 2) * hop``.
        """
        from .io import n_video_frames

        fps = check_fps(fps)
        mono = self.prepare(wave, sr)
        if n_frames is None:
            n_frames = n_video_frames(mono.size, self.config.sample_rate, fps)
        if int(n_frames) < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        n_frames = int(n_frames)
        feats = self.frame_features(mono, self.frame_centres(n_frames, fps))   # (J, D)
        if self.config.utterance_norm:
            feats = self.normalize_utterance(feats)
        k, W = self.config.frames_per_video_frame, self.window
        windows = np.lib.stride_tricks.sliding_window_view(feats, W, axis=0)[::k]  # (N, D, W)
        return np.ascontiguousarray(windows.transpose(0, 2, 1)[:n_frames], dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "window": self.window, "config": self.config.to_dict()}

    def loudness_db(self, feats: np.ndarray) -> np.ndarray:
        """(J,) a loudness in dB of each audio frame of :meth:`frame_features`, for utterance normalisation."""
        raise ValueError(f"utterance_norm is not available for the {self.name!r} feature (mel and mfcc only)")

    def normalize_utterance(self, feats: np.ndarray) -> np.ndarray:
        """(J, D) features standardised per dimension over the utterance's speech frames.

        Pauses are left out of the statistics (a take with long silences would otherwise be normalised
        towards silence). Too little speech to measure (under 25 frames, 0.25 s at a 10 ms hop) uses every
        frame. A dimension is divided by its spread but never by less than :data:`UTTERANCE_MIN_STD` (1 dB): one that
        barely moves (a hum, a steady tone, digital silence) is not stretched into unit-size noise, and speech,
        whose MFCCs spread 5 dB or more per dimension on every real recording measured, is not affected.
        """
        loud = self.loudness_db(feats)
        if loud.size == 0:
            return feats
        speech = loud >= np.percentile(loud, 95) - self.config.utterance_norm_range_db
        ref = feats[speech] if speech.sum() >= 25 else feats
        mean = ref.mean(0, dtype=np.float64)
        std = np.maximum(ref.std(0, dtype=np.float64), UTTERANCE_MIN_STD)
        return ((feats - mean) / std).astype(np.float32)


def _frame_indices(centres: np.ndarray, win: int) -> tuple[np.ndarray, int]:
    """Start sample of each analysis window (centred on the nearest sample) and the left padding."""
    starts = np.rint(centres).astype(np.int64) - win // 2
    pad_left = max(0, -int(starts.min())) if starts.size else 0
    return starts + pad_left, pad_left


def power_frames(wave: np.ndarray, centres: np.ndarray, win: int, n_fft: int) -> Iterator[np.ndarray]:
    """Hann-windowed power spectra of frames centred at ``centres``, in chunks of (<= 4096, n_fft//2+1)."""
    starts, pad_left = _frame_indices(centres, win)
    need = int(starts.max()) + win if starts.size else 0
    padded = np.zeros(max(need, pad_left + wave.size), np.float32)
    padded[pad_left: pad_left + wave.size] = wave
    window = np.hanning(win + 2)[1:-1].astype(np.float32)  # periodic-style Hann without zero ends
    offsets = np.arange(win)
    for lo in range(0, starts.size, _CHUNK_FRAMES):
        frames = padded[starts[lo: lo + _CHUNK_FRAMES, None] + offsets] * window  # (c, win) gather
        spec = scipy.fft.rfft(frames, n=n_fft, axis=1)  # float32 in, complex64 out
        yield (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)


def warp_filterbank(basis: np.ndarray, warp: float) -> np.ndarray:
    """A filterbank that reads a spectrum as if its frequencies were ``warp`` times higher.

    Args:
        basis: (M, F) filter weights over F linear frequency bins from 0 to Nyquist.
        warp: frequency factor; filter ``m`` at bin ``f`` takes the weight the original had at ``warp * f``
            (past Nyquist: 0), so it is centred ``warp`` times lower and a formant at ``F`` lands in the band
            of ``warp * F``: the audio is analysed as a voice with formants ``warp`` times as high.

    Returns:
        (M, F) warped weights, each filter rescaled to the original's area (a band's energy does not
        change with its width).
    """
    bins = np.arange(basis.shape[1], dtype=np.float64)
    src = bins * warp
    lo = np.clip(np.floor(src).astype(int), 0, basis.shape[1] - 1)
    hi = np.clip(lo + 1, 0, basis.shape[1] - 1)
    frac = src - np.floor(src)
    warped = basis[:, lo] * (1.0 - frac) + basis[:, hi] * frac
    warped[:, src > basis.shape[1] - 1] = 0.0
    area = basis.sum(1, keepdims=True)
    return warped * np.where(warped.sum(1, keepdims=True) > 0, area / np.maximum(warped.sum(1, keepdims=True),
                                                                                   1e-12), 0.0)


_SLANEY_LOG_STEP = math.log(6.4) / 27.0  # log(Hz) per mel above 1 kHz (15 mels)


def slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Hz -> mel on the Slaney (Auditory Toolbox) scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / _SLANEY_LOG_STEP,
                    hz * 3.0 / 200.0)


def slaney_hz(mel: np.ndarray) -> np.ndarray:
    """The inverse of :func:`slaney_mel`."""
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp(_SLANEY_LOG_STEP * (mel - 15.0)), mel * 200.0 / 3.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, Slaney scale and area normalisation (librosa.filters.mel's defaults, which
    the shipped a2e and renderer checkpoints were trained with; a test checks the two agree).

    Returns:
        (n_mels, n_fft // 2 + 1) float32 weights over the rfft bins from 0 to Nyquist.
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = slaney_hz(np.linspace(slaney_mel(fmin), slaney_mel(fmax), n_mels + 2))   # (n_mels + 2,)
    widths = np.diff(edges)
    to_bin = edges[:, None] - bins_hz[None, :]                                        # (n_mels + 2, F)
    rising = -to_bin[:-2] / widths[:-1, None]
    falling = to_bin[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class MelExtractor(FeatureExtractor):
    """Log-mel spectrogram (dB), ``n_mels`` bands per audio frame."""

    name = "mel"

    def __init__(self, config: AudioFeatureConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        basis = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)
        if c.warp != 1.0:
            basis = warp_filterbank(basis, c.warp)
        self._mel_basis = basis.astype(np.float32)  # (n_mels, n_fft//2+1)

    @property
    def dim(self) -> int:
        return self.config.n_mels

    def log_mel(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """(J, n_mels) float32 log-mel power in dB."""
        c = self.config
        chunks = [10.0 * np.log10(power @ self._mel_basis.T + c.log_floor)
                  for power in power_frames(wave, centres, c.win_length, c.n_fft)]
        return np.concatenate(chunks, 0).astype(np.float32) if chunks else np.zeros((0, c.n_mels), np.float32)

    def frame_features(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        return self.log_mel(wave, centres)

    def loudness_db(self, feats: np.ndarray) -> np.ndarray:
        return feats.mean(1)


class MFCCExtractor(MelExtractor):
    """MFCC (a Slaney mel filterbank and the DCT-II of the log-mel spectrogram), ``n_mfcc``
    coefficients per audio frame — the READ a2e input."""

    name = "mfcc"

    @property
    def dim(self) -> int:
        return self.config.n_mfcc

    def frame_features(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        log_mel = self.log_mel(wave, centres)   # (J, n_mels)
        # Exactly librosa.feature.mfcc(S=log_mel.T, n_mfcc) (orthonormal DCT-II over the mel axis, no
        # lifter; a test checks it), called through scipy directly: librosa.feature costs ~3 s of
        # first-call overhead, which a one-off `a2e predict` would pay every time.
        mfcc = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=1)[:, : self.config.n_mfcc]
        return np.ascontiguousarray(mfcc, dtype=np.float32)

    def loudness_db(self, feats: np.ndarray) -> np.ndarray:
        # c0 of the orthonormal DCT-II is sqrt(n_mels) times the mean log-mel.
        return feats[:, 0] / math.sqrt(self.config.n_mels)


WAV2VEC2_HINT = ("install transformers (pip install transformers) and point --phoneme-model at a local "
                 "wav2vec2 CTC checkpoint folder (config.json, preprocessor_config.json, model weights), "
                 "e.g. a download of facebook/wav2vec2-lv-60-espeak-cv-ft; emodub never downloads weights")


class Wav2Vec2Phonemes(FeatureExtractor):
    """Phoneme (CTC token) posteriors of a local Wav2Vec2-CTC checkpoint, resampled onto the audio-frame
    grid. Needs ``transformers`` and a checkpoint folder the user provides; otherwise construction
    raises :class:`FeatureNotAvailable` (use the MFCC path instead).

    Wav2Vec2 emits one frame per ``stride`` samples (320 at 16 kHz = 20 ms) with a receptive field of
    ``rf`` samples (400); output frame ``t`` is centred at sample ``t * stride + rf / 2``. Posteriors are
    linearly interpolated to the audio-frame centres. Long audio runs in 20 s chunks with 1 s of context
    on each side, so memory stays bounded.
    """

    name = "wav2vec2"
    chunk_s: float = 20.0
    context_s: float = 1.0

    def __init__(self, model_dir: str | Path | None, config: AudioFeatureConfig | None = None,
                 device: str = "cpu") -> None:
        super().__init__(config)
        if model_dir is None:
            raise FeatureNotAvailable("phoneme posteriors are not available: no Wav2Vec2 checkpoint given; "
                                      + WAV2VEC2_HINT + ". Using MFCC features needs nothing extra.")
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FeatureNotAvailable(f"phoneme posteriors are not available: {model_dir} is not a Wav2Vec2 "
                                      f"checkpoint folder (no config.json); " + WAV2VEC2_HINT)
        try:
            import transformers
        except ImportError:
            raise FeatureNotAvailable("phoneme posteriors are not available: the transformers package is "
                                      "not installed; " + WAV2VEC2_HINT) from None
        import torch

        self.device = device
        try:
            self.model = transformers.Wav2Vec2ForCTC.from_pretrained(str(model_dir), local_files_only=True)
            self.processor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(
                str(model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise FeatureNotAvailable(f"cannot load the Wav2Vec2 checkpoint in {model_dir}: {exc}") from None
        self.model.eval().to(device)
        model_sr = int(getattr(self.processor, "sampling_rate", 16000))
        if model_sr != self.config.sample_rate:
            raise FeatureNotAvailable(f"the checkpoint expects {model_sr} Hz audio; set the feature "
                                      f"sample_rate to {model_sr}")
        strides = list(getattr(self.model.config, "conv_stride", [5, 2, 2, 2, 2, 2, 2]))
        kernels = list(getattr(self.model.config, "conv_kernel", [10, 3, 3, 3, 3, 2, 2]))
        self.stride = int(np.prod(strides))
        rf, jump = 1, 1
        for kern, s in zip(kernels, strides, strict=True):  # receptive field of the conv feature encoder
            rf += (kern - 1) * jump
            jump *= s
        self.receptive_field = rf
        self._dim = int(self.model.config.vocab_size)
        self._torch = torch

    @property
    def dim(self) -> int:
        return self._dim

    def posteriors(self, wave: np.ndarray) -> np.ndarray:
        """(T, vocab) float32 CTC posteriors of the whole wave, computed in overlapping chunks."""
        torch = self._torch
        sr = self.config.sample_rate
        chunk, ctx = int(self.chunk_s * sr), int(self.context_s * sr)
        chunk -= chunk % self.stride
        ctx -= ctx % self.stride
        out: list[np.ndarray] = []
        for lo in range(0, max(wave.size, 1), chunk):
            a, b = max(0, lo - ctx), min(wave.size, lo + chunk + ctx)
            piece = wave[a:b]
            if piece.size < self.receptive_field:
                piece = np.pad(piece, (0, self.receptive_field - piece.size))
            inputs = self.processor(piece, sampling_rate=sr, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(inputs.input_values.to(self.device)).logits[0]
            probs = torch.softmax(logits.float(), -1).cpu().numpy()
            skip = (lo - a) // self.stride
            keep = int(math.ceil(min(chunk, wave.size - lo) / self.stride))
            out.append(probs[skip: skip + keep])
        return np.concatenate(out, 0).astype(np.float32)

    def frame_features(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        post = self.posteriors(wave)                                             # (T, V)
        times = np.arange(post.shape[0]) * self.stride + self.receptive_field / 2.0
        pos = np.clip(np.interp(centres, times, np.arange(post.shape[0], dtype=np.float64)), 0,
                      post.shape[0] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, post.shape[0] - 1)
        w = (pos - lo)[:, None].astype(np.float32)
        return (post[lo] * (1 - w) + post[hi] * w).astype(np.float32)


FEATURES: tuple[str, ...] = ("mfcc", "mel", "speech", "wav2vec2")


def make_extractor(name: str = "mfcc", config: AudioFeatureConfig | None = None,
                   phoneme_model: str | Path | None = None, device: str = "cpu") -> FeatureExtractor:
    """The feature extractor called ``name`` (one of :data:`FEATURES`).

    Raises:
        ValueError: unknown name.
        FeatureNotAvailable: ``wav2vec2`` without transformers or without a local checkpoint; ``speech`` before
            the speech encoder's weights were built (:mod:`core.audio.speech_encoder`).
    """
    key = name.strip().lower()
    if key == "mfcc":
        return MFCCExtractor(config)
    if key == "mel":
        return MelExtractor(config)
    if key == "speech":
        from .speech_encoder import SpeechEncoderFeatures

        return SpeechEncoderFeatures(config)
    if key in ("wav2vec2", "phonemes"):
        return Wav2Vec2Phonemes(phoneme_model, config, device)
    raise ValueError(f"unknown audio feature {name!r}; choose one of {', '.join(FEATURES)}")
