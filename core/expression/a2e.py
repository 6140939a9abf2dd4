"""Audio-to-expression: READ Avatars' conditional GAN (§3.2) with a continuous emotion label.

The generator maps a window of MFCCs around each video frame plus that frame's emotion vector (7
intensities in [0, 1], neutral = zeros) to the frame's expression coefficients and jaw pose (optionally
neck pose). Both networks are *encoder-temporal-decoder* models: a fully connected encoder projects each
frame's input into a latent space, an LSTM runs along time, a fully connected decoder maps to the output.
The discriminator has the same form; it sees parameters + audio + emotion and scores every frame real
(1) or generated (0), Pix2Pix-style. The generator minimises

    L = L1 + lambda_gan * LSGAN + lambda_vel * L1(velocities)        (READ eq. 1: 0.02 and 100)

on per-dimension standardised parameters (statistics stored in the checkpoint). Training lives in
:mod:`core.expression.a2e_train`, data in :mod:`core.expression.a2e_data`, metrics in
:mod:`core.expression.a2e_eval`.

Inference (:func:`predict`) runs the whole sequence at once: it is cut into overlapping chunks of
``seq_len`` frames (the length the LSTM was trained on) that run as one batch and are cross-faded back
together, then Savitzky-Golay smoothed (LipNeRF: window 5, order 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.audio.features import AudioFeatureConfig, FeatureExtractor, make_extractor
from core.expression.emotions import N_EMOTIONS, EmotionCurves, emotion_vector
from core.expression.smoothing import SmoothingConfig, smooth_sequence

CHECKPOINT_FORMAT = "emodub-a2e"
CHECKPOINT_VERSION = 1
PARAMS_SOURCES: tuple[str, ...] = ("auto", "tracking", "ground_truth")


# Vocal-tract warps of the training copies (A2EConfig.voice_warps): formants 15% lower to 18% higher, about the
# spread between adult speakers (a woman's tract is ~15% shorter than a man's).
VOICE_WARPS: tuple[float, ...] = (0.85, 0.92, 1.08, 1.18)


def a2e_feature_config(speech_prior: int = 0) -> AudioFeatureConfig:
    """The audio features a new a2e learns from: MFCC windows standardised over each recording's speech
    (``utterance_norm``), so the channel and the speaker's average spectrum do not reach the network.

    Not with a synthetic speech prior (``speech_prior`` > 0 sentences): standardised, the synthetic voice and the
    real one met worse. Measured: on the office clip with the prior, mouth-opening r 0.27 normalised against 0.40;
    on CREMA-D actor 1001 (13 s and the prior), the lip-sync proxy of six voices 0.42 against 0.53.
    """
    return AudioFeatureConfig(utterance_norm=speech_prior <= 0)


# What models saved before these settings existed were trained with.
BEFORE_VOICE_ROBUSTNESS: dict[str, Any] = {"dropout": 0.0, "voice_warps": [], "speech_prior_voices": False,
                                           "articulation": False}


@dataclass
class A2EConfig:
    """Architecture, losses and training schedule of the audio-to-expression GAN.

    The default sizes train on one CPU core at ~17 iterations/s (GAN) and were as accurate on the
    synthetic actor as 2x wider, 2-layer networks (see ``bench/a2e.py``); raise them for real footage.

    Attributes:
        feature: audio feature (``"mfcc"``; ``"mel"``; ``"wav2vec2"`` needs ``phoneme_model``).
        phoneme_model: local Wav2Vec2-CTC checkpoint folder for ``feature="wav2vec2"``.
        encoder_hidden: width of the per-frame fully connected encoder (2 layers).
        lstm_hidden: LSTM state size (per direction).
        lstm_layers: stacked LSTM layers.
        bidirectional: LSTM reads the future too (dubbing is offline; coarticulation anticipates sounds).
        decoder_hidden: width of the fully connected decoder (2 layers).
        emotion_to_decoder: also feed the emotion vector to the decoder, so an emotion's (mostly
            audio-independent) offset of brows and mouth corners does not have to survive the LSTM.
        emotion_offset: add a linear map of the emotion vector to the output (initialised at 0). Its
            weights change every frame of a constant-emotion sequence alike, so the velocity loss (weight
            100, which dominates every other weight's gradient) gives them no gradient and Adam moves
            them at the full rate from the L1 loss: the emotion's offset is learned within a few hundred
            iterations instead of being averaged away. Interactions of emotion and speech (wider
            angry articulation...) still go through the encoder and decoder inputs.
        dropout: dropout rate in the generator (after its encoder and its LSTM) while training. On the long
            office clip 0.3 raised the held-out mouth-opening r with the actor's own voice (0.51 -> 0.60) but
            lowered the lip-sync proxy on six other real voices (README), so it is off by default.
        articulation: after training, fit a gain on each parameter's fast motion so the prediction on the
            training footage moves as much as the footage (:func:`articulation`).
        disc_hidden: encoder/LSTM width of the discriminator.
        disc_lstm_layers: LSTM layers of the discriminator.
        include_neck: also predict neck pose (3 more outputs).
        seq_len: frames per training sequence; also the inference chunk length.
        batch_size: sequences per batch (READ: 32).
        iterations: generator updates.
        lr: Adam learning rate of both networks (READ: 1e-4).
        beta1: Adam beta1 (0.5 as in Pix2Pix: steadier adversarial training).
        lambda_l1: weight of the L1 loss.
        lambda_gan: weight of the LSGAN generator loss (READ: 0.02).
        lambda_vel: weight of the velocity L1 loss (READ: 100).
        use_gan: ``False`` trains the L1(+velocity)-only ablation (no discriminator).
        val_fraction: fraction of clip groups (sentences) held out for validation.
        tail_holdout: instead, hold out the last fraction of every clip of the actor (its ``#tail`` part,
            :func:`core.expression.a2e_data.cut_tails`); the rest trains. For an actor filmed in one or a few
            long takes, where holding out whole clips leaves nothing to train on or nothing to measure.
        seed: seeds initialisation, the split and batch sampling.
        params_source: ``"auto"`` (a clip's ``tracking/params.npz`` when present, else its
            ``ground_truth/params.npz``), ``"tracking"`` or ``"ground_truth"``.
        speech_prior: neutral sentences of the embedded synthetic actor added to the training data
            (:func:`core.expression.a2e_data.speech_prior_clips`); 0: none.
        speech_prior_voices: speak each prior sentence in another random voice (pitch, tract length,
            breathiness; :func:`core.synthetic.speech.random_voice`) instead of the synthetic actor's one voice.
        voice_warps: extra training copies of the actor's footage analysed at these vocal-tract warps
            (:attr:`core.audio.features.AudioFeatureConfig.warp`; 1.1: formants 10% higher, as a
            shorter tract): the same mouth motion heard from other voices, so a dub voiced by another
            speaker moves the mouth like the actor's own voice does. Empty: none.
        checkpoint_every: iterations between checkpoints (also written on cancel and at the end).
        val_every: iterations between validation passes.
        log_every: iterations averaged into one loss-history entry.
        smoothing: Savitzky-Golay smoothing applied at inference (``enabled=False`` to skip).
    """

    feature: str = "mfcc"
    phoneme_model: str | None = None
    encoder_hidden: int = 128
    lstm_hidden: int = 128
    lstm_layers: int = 1
    bidirectional: bool = True
    decoder_hidden: int = 128
    emotion_to_decoder: bool = True
    emotion_offset: bool = True
    dropout: float = 0.0
    articulation: bool = True
    disc_hidden: int = 64
    disc_lstm_layers: int = 1
    include_neck: bool = False
    seq_len: int = 32
    batch_size: int = 32
    iterations: int = 3000
    lr: float = 1e-4
    beta1: float = 0.5
    lambda_l1: float = 1.0
    lambda_gan: float = 0.02
    lambda_vel: float = 100.0
    use_gan: bool = True
    val_fraction: float = 0.15
    tail_holdout: float = 0.0
    seed: int = 0
    params_source: str = "auto"
    speech_prior: int = 0
    speech_prior_voices: bool = False
    voice_warps: list[float] = field(default_factory=lambda: list(VOICE_WARPS))
    checkpoint_every: int = 250
    val_every: int = 250
    log_every: int = 10
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)

    def __post_init__(self) -> None:
        if isinstance(self.smoothing, Mapping):
            self.smoothing = SmoothingConfig(**self.smoothing)
        if self.params_source not in PARAMS_SOURCES:
            raise ValueError(f"params_source must be one of {', '.join(PARAMS_SOURCES)}, "
                             f"got {self.params_source!r}")
        for name in ("encoder_hidden", "lstm_hidden", "lstm_layers", "decoder_hidden", "disc_hidden",
                     "disc_lstm_layers", "batch_size", "iterations", "checkpoint_every", "val_every",
                     "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.seq_len < 4:
            raise ValueError(f"seq_len must be >= 4 frames, got {self.seq_len}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.tail_holdout < 1.0:
            raise ValueError(f"tail_holdout must lie in [0, 1), got {self.tail_holdout}")
        self.voice_warps = [float(w) for w in self.voice_warps]
        bad = [w for w in self.voice_warps if not 0.7 <= w <= 1.4]
        if bad:
            raise ValueError(f"voice_warps must lie in [0.7, 1.4] (formants 30% lower to 40% higher), got {bad}")
        if not (self.lr > 0 and 0 <= self.beta1 < 1):
            raise ValueError("need lr > 0 and 0 <= beta1 < 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> A2EConfig:
        """The config of a saved dict; settings it predates take the values it was trained with, not today's
        defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{**BEFORE_VOICE_ROBUSTNESS, **{k: v for k, v in data.items() if k in known}})


# ------------------------------------------------------------------------------------------------
# Networks
# ------------------------------------------------------------------------------------------------

def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_out))


class EncoderTemporalDecoder(nn.Module):
    """Fully connected encoder -> LSTM -> fully connected decoder, applied to (B, T, F) sequences.

    Args:
        n_in: per-frame input features.
        n_out: per-frame outputs.
        hidden: encoder and decoder width.
        lstm_hidden: LSTM state per direction.
        lstm_layers: stacked LSTM layers.
        bidirectional: bidirectional LSTM.
        n_skip: trailing input features also concatenated to the decoder input (the emotion vector).
        dropout: dropout rate on the encoder's and the LSTM's outputs while training.
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, lstm_hidden: int, lstm_layers: int,
                 bidirectional: bool, n_skip: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_skip = n_skip
        self.dropout = dropout
        self.encoder = nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2),
                                     nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.lstm = nn.LSTM(hidden, lstm_hidden, lstm_layers, batch_first=True, bidirectional=bidirectional)
        n_lstm = lstm_hidden * (2 if bidirectional else 1)
        self.decoder = _mlp(n_lstm + n_skip, hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_in) -> (B, T, n_out)."""
        p = self.dropout if self.training else 0.0  # functional: no layer, so checkpoints keep their keys
        h, _ = self.lstm(nn.functional.dropout(self.encoder(x), p))
        h = nn.functional.dropout(h, p)
        if self.n_skip:
            h = torch.cat([h, x[..., -self.n_skip:]], -1)
        return self.decoder(h)


class A2EGenerator(nn.Module):
    """Audio windows + emotion -> standardised parameters.

    Args:
        audio_dim: flattened window size ``W * D``.
        n_params: P outputs per frame.
    """

    def __init__(self, audio_dim: int, n_params: int, config: A2EConfig) -> None:
        super().__init__()
        self.net = EncoderTemporalDecoder(audio_dim + N_EMOTIONS, n_params, config.encoder_hidden,
                                          config.lstm_hidden, config.lstm_layers, config.bidirectional,
                                          n_skip=N_EMOTIONS if config.emotion_to_decoder else 0,
                                          dropout=config.dropout)
        self.emotion_offset: nn.Linear | None = None
        if config.emotion_offset:
            self.emotion_offset = nn.Linear(N_EMOTIONS, n_params, bias=False)
            nn.init.zeros_(self.emotion_offset.weight)

    def forward(self, audio: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """audio (B, T, W*D) standardised features, emotion (B, T, 7) -> (B, T, P) standardised."""
        out = self.net(torch.cat([audio, emotion], -1))
        if self.emotion_offset is not None:
            out = out + self.emotion_offset(emotion)
        return out


class A2EDiscriminator(nn.Module):
    """Conditional discriminator: parameters + audio + emotion -> a realness score per frame (LSGAN)."""

    def __init__(self, audio_dim: int, n_params: int, config: A2EConfig) -> None:
        super().__init__()
        self.net = EncoderTemporalDecoder(n_params + audio_dim + N_EMOTIONS, 1, config.disc_hidden,
                                          config.disc_hidden, config.disc_lstm_layers, True)

    def forward(self, params: torch.Tensor, audio: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """params (B, T, P), audio (B, T, W*D), emotion (B, T, 7) -> (B, T) scores."""
        return self.net(torch.cat([params, audio, emotion], -1))[..., 0]


# ------------------------------------------------------------------------------------------------
# Normalisation statistics and the inference model
# ------------------------------------------------------------------------------------------------

@dataclass
class A2EStats:
    """Per-dimension standardisation of inputs and targets (computed on the training clips).

    Attributes:
        feat_mean, feat_std: (D,) per audio-feature dimension.
        target_mean, target_std: (P,) per parameter (std 1 where a parameter never moves).
        articulation_gain: (P,) gain on each parameter's motion faster than about a second
            (:func:`articulation`), calibrated on the training footage after training; ``None``: none.
    """

    feat_mean: np.ndarray
    feat_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray
    articulation_gain: np.ndarray | None = None

    def to_dict(self) -> dict[str, list[float]]:
        return {k: np.asarray(v, np.float64).tolist() for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> A2EStats:
        return cls(**{f.name: np.asarray(data[f.name], np.float32) for f in fields(cls) if f.name in data})


ARTICULATION_MAX_GAIN = 3.0
ARTICULATION_MIN_CORRELATION = 0.3  # a parameter's fast motion gets a gain only where the prediction follows it


def slow_part(raw: np.ndarray, fps: float, axis: int = -2) -> np.ndarray:
    """The part of (..., N, P) parameter tracks slower than about a second (a 1 s moving average along ``axis``):
    emotion offsets and ramps, head-level drift; the rest is articulation."""
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(raw, size=max(1, int(round(fps))), axis=axis, mode="nearest")


def articulation(raw: np.ndarray, gain: np.ndarray | None, fps: float, axis: int = -2) -> np.ndarray:
    """(..., N, P) tracks with their articulation (what is faster than :func:`slow_part`) times ``gain`` (P,).

    An a2e trained with L1 on a minute of footage under-articulates: on the long office clip the held-out lip
    variance was 15% of the tracked one with the mouth opening at the right times (r 0.60). The gain, fitted on
    the training footage, restores the amplitude of speech motion without touching an emotion's offset or a
    keyframed ramp (both slower than a second).
    """
    if gain is None:
        return raw
    slow = slow_part(raw, fps, axis)
    return (slow + (raw - slow) * gain).astype(raw.dtype)


def target_names(expr_names: Sequence[str], include_neck: bool) -> list[str]:
    """Names of the P predicted dimensions: expression names, then ``jaw_x/y/z`` (and ``neck_x/y/z``)."""
    names = [*expr_names, "jaw_x", "jaw_y", "jaw_z"]
    if include_neck:
        names += ["neck_x", "neck_y", "neck_z"]
    return names


def emotion_frames(emotions: Any, n_frames: int, fps: float, clamp: bool = False) -> np.ndarray:
    """Per-frame emotion labels (n_frames, 7) float32 from any accepted form.

    Args:
        emotions: ``None`` (neutral); a spec string/mapping for :func:`emotion_vector` (held for the
            whole clip); an :class:`EmotionCurves` (sampled at the video rate); a (7,) vector; an
            (n_frames, 7) array.
        clamp: clip intensities outside [0, 1] into it instead of raising.

    Raises:
        ValueError: unknown emotion name, intensity outside [0, 1] (without ``clamp``), non-finite
            values, wrong shape.
    """
    if emotions is None or isinstance(emotions, str | Mapping):
        return np.repeat(emotion_vector(emotions, clamp=clamp)[None], n_frames, 0)
    if isinstance(emotions, EmotionCurves):
        return emotions.sample(n_frames, video_fps=fps)
    arr = np.asarray(emotions, np.float32)
    if arr.shape == (N_EMOTIONS,):
        return np.repeat(emotion_vector(arr, clamp=clamp)[None], n_frames, 0)
    if arr.ndim != 2 or arr.shape[1] != N_EMOTIONS:
        raise ValueError(f"per-frame emotions must have shape (n_frames, {N_EMOTIONS}), got {arr.shape}")
    if arr.shape[0] != n_frames:
        raise ValueError(f"per-frame emotions have {arr.shape[0]} rows but the audio gives {n_frames} frames")
    if not np.all(np.isfinite(arr)):
        raise ValueError("per-frame emotions contain NaN or infinite values")
    if clamp:
        return np.clip(arr, 0.0, 1.0)
    if arr.min() < 0.0 or arr.max() > 1.0:
        bad = np.argwhere((arr < 0) | (arr > 1))[0]
        raise ValueError(f"emotion intensity {arr[bad[0], bad[1]]:g} at frame {bad[0]} is outside [0, 1]; "
                         "intensities must lie in [0, 1] (pass clamp=True / --clamp to clip them)")
    return arr


@dataclass
class A2EPrediction:
    """Predicted per-frame parameters.

    Attributes:
        expression: (N, E) expression coefficients.
        jaw_pose: (N, 3) axis-angle of the jaw.
        neck_pose: (N, 3) axis-angle of the neck (zeros when the model does not predict it).
        emotion: (N, 7) the emotion labels used.
        fps: frame rate of the rows.
        expr_names: E names of the expression coefficients.
    """

    expression: np.ndarray
    jaw_pose: np.ndarray
    neck_pose: np.ndarray
    emotion: np.ndarray
    fps: float
    expr_names: list[str]

    @property
    def n_frames(self) -> int:
        return int(self.expression.shape[0])

    def face_params_arrays(self, defaults: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Arrays for :meth:`core.morphable.data.FaceParams.from_numpy` (N rows each): the predicted
        expression/jaw/neck; shape, eye pose, rotation and translation held at ``defaults`` (the actor's
        mean over its training clips; the dub stage replaces the pose with the shot's own)."""
        n = self.n_frames
        defaults = defaults or {}

        def held(name: str, width: int) -> np.ndarray:
            row = np.asarray(defaults.get(name, np.zeros(width)), np.float32).reshape(-1)
            return np.repeat(row[None], n, 0)

        return {"shape": held("shape", int(np.asarray(defaults.get("shape", np.zeros(0))).size)),
                "expression": self.expression.astype(np.float32),
                "jaw_pose": self.jaw_pose.astype(np.float32), "neck_pose": self.neck_pose.astype(np.float32),
                "eye_pose": held("eye_pose", 6), "rotation": held("rotation", 3),
                "translation": held("translation", 3)}

    def save(self, path: str | Path, defaults: Mapping[str, np.ndarray] | None = None) -> Path:
        """Atomically write a FaceParams ``.npz`` (``FaceParams.load`` reads it) plus ``emotion``,
        ``fps`` and ``expr_names``."""
        from core.workspace import atomic_save_npz

        return atomic_save_npz(path, **self.face_params_arrays(defaults),
                               emotion=self.emotion.astype(np.float32), fps=np.float32(self.fps),
                               expr_names=np.array(self.expr_names))


class A2EModel:
    """A trained generator with everything inference needs (feature extractor, statistics, names).

    Build with :meth:`load` (a model folder or ``checkpoint.pt``) or :meth:`from_state`.
    """

    def __init__(self, config: A2EConfig, feature_config: AudioFeatureConfig, stats: A2EStats,
                 expr_names: Sequence[str], fps: float, generator: A2EGenerator,
                 defaults: Mapping[str, np.ndarray] | None = None, device: str = "cpu",
                 info: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self.feature_config = feature_config
        self.stats = stats
        self.expr_names = list(expr_names)
        self.fps = float(fps)
        self.device = device
        self.generator = generator.to(device).eval()
        self.defaults = {k: np.asarray(v, np.float32) for k, v in (defaults or {}).items()}
        self.info = dict(info or {})
        self._extractor: FeatureExtractor | None = None
        self._feat_mean = torch.as_tensor(stats.feat_mean, device=device)
        self._feat_std = torch.as_tensor(stats.feat_std, device=device)

    @property
    def n_expr(self) -> int:
        return len(self.expr_names)

    @property
    def target_names(self) -> list[str]:
        return target_names(self.expr_names, self.config.include_neck)

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = make_extractor(self.config.feature, self.feature_config,
                                             self.config.phoneme_model, self.device)
        return self._extractor

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: str = "cpu") -> A2EModel:
        """From a checkpoint dict (see :mod:`core.expression.a2e_train`)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an emodub a2e checkpoint (format field missing or different)")
        if int(state.get("version", 0)) > CHECKPOINT_VERSION:
            raise ValueError(f"a2e checkpoint version {state['version']} is newer than this emodub reads "
                             f"({CHECKPOINT_VERSION}); update emodub")
        config = A2EConfig.from_dict(state["config"])
        feature_config = AudioFeatureConfig.from_dict(state["feature_config"])
        stats = A2EStats.from_dict(state["stats"])
        expr_names = list(state["expr_names"])
        n_params = len(target_names(expr_names, config.include_neck))
        generator = A2EGenerator(int(state["audio_dim"]), n_params, config)
        generator.load_state_dict(state["generator"])
        defaults = {k: np.asarray(v, np.float32) for k, v in state.get("defaults", {}).items()}
        info = {"iteration": state.get("iteration"), "params_source": state.get("params_source"),
                "split": state.get("split", {}), "actor": state.get("actor")}
        return cls(config, feature_config, stats, expr_names, float(state["fps"]), generator, defaults,
                   device, info)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> A2EModel:
        """Load ``checkpoint.pt`` (or the model folder holding it)."""
        path = Path(path)
        ckpt = path / "checkpoint.pt" if path.is_dir() else path
        if not ckpt.is_file():
            raise FileNotFoundError(f"no a2e checkpoint at {ckpt}; train one with `emodub train a2e`")
        from core.io.checkpoint import incompatible, is_state_dict_mismatch, load_checkpoint

        state = load_checkpoint(ckpt, what="a2e checkpoint")
        try:
            return cls.from_state(state, device)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not is_state_dict_mismatch(exc):
                raise
            raise incompatible(ckpt, "a2e checkpoint", exc) from None

    # -- inference -------------------------------------------------------------------------
    def features(self, wave: np.ndarray, sr: int, n_frames: int | None = None) -> np.ndarray:
        """(N, W, D) feature windows at the model's frame rate."""
        return self.extractor.extract(wave, sr, self.fps, n_frames)

    @torch.no_grad()
    def predict_features(self, features: np.ndarray | torch.Tensor, emotion: np.ndarray | torch.Tensor,
                         smooth: bool = True) -> np.ndarray:
        """Raw (de-standardised) parameters from feature windows.

        Args:
            features: (N, W, D) feature windows (or (S, N, W, D) for S sequences at once).
            emotion: (N, 7) labels (or (S, N, 7)).
            smooth: Savitzky-Golay smoothing along time (``config.smoothing``).

        Returns:
            (N, P) float32 (or (S, N, P)) in the order of :attr:`target_names`.
        """
        feats = torch.as_tensor(np.asarray(features, np.float32), device=self.device)
        emo = torch.as_tensor(np.asarray(emotion, np.float32), device=self.device)
        squeeze = feats.ndim == 3
        if squeeze:
            feats, emo = feats[None], emo[None]
        S, N = feats.shape[:2]
        audio = ((feats - self._feat_mean) / self._feat_std).reshape(S, N, -1)
        out = chunked_forward(self.generator, audio, emo, self.config.seq_len)        # (S, N, P)
        raw = out.cpu().numpy() * self.stats.target_std + self.stats.target_mean
        raw = articulation(raw, self.stats.articulation_gain, self.fps, axis=1)
        if smooth and self.config.smoothing.enabled:
            raw = smooth_sequence(raw, self.config.smoothing, axis=1)
        raw = raw.astype(np.float32)
        return raw[0] if squeeze else raw

    def split_params(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, P) -> expression (N, E), jaw_pose (N, 3), neck_pose (N, 3) (zeros without neck)."""
        E = self.n_expr
        neck = raw[:, E + 3: E + 6] if self.config.include_neck else np.zeros((raw.shape[0], 3), np.float32)
        return raw[:, :E], raw[:, E: E + 3], neck

    def predict(self, wave: np.ndarray, sr: int, emotions: Any = None, n_frames: int | None = None,
                fps: float | None = None, smooth: bool = True, clamp: bool = False,
                emotion_gate: np.ndarray | None = None) -> A2EPrediction:
        """Expressions for an audio track (see :func:`predict`).

        ``emotion_gate`` (7,) scales each emotion before the network sees it (0: the network gets none of
        it; :mod:`core.expression.emotion_prior` renders such emotions instead). ``A2EPrediction.emotion``
        keeps the ungated labels.
        """
        out_fps = self.fps if fps is None else float(fps)
        if n_frames is not None and fps is not None and out_fps != self.fps:
            model_frames = max(1, int(math.ceil(n_frames * self.fps / out_fps)))
        else:
            model_frames = n_frames
        feats = self.features(wave, sr, model_frames)
        N = feats.shape[0]
        emo = emotion_frames(emotions, N, self.fps, clamp=clamp)
        gated = emo if emotion_gate is None else emo * np.asarray(emotion_gate, np.float32)[None]
        raw = self.predict_features(feats, gated, smooth=smooth)
        if out_fps != self.fps:  # the model runs at its training rate; resample the result
            n_out = n_frames or max(1, int(math.ceil(N * out_fps / self.fps - 1e-6)))
            t_out = np.arange(n_out) / out_fps * self.fps
            grid = np.arange(N, dtype=np.float64)
            raw = np.stack([np.interp(t_out, grid, raw[:, j]) for j in range(raw.shape[1])], 1)
            raw = raw.astype(np.float32)
            emo = emotion_frames(emotions, n_out, out_fps, clamp=clamp)
        expression, jaw, neck = self.split_params(raw)
        return A2EPrediction(expression, jaw, neck, emo, out_fps, self.expr_names)


def chunked_forward(generator: A2EGenerator, audio: torch.Tensor, emotion: torch.Tensor,
                    chunk: int) -> torch.Tensor:
    """Run ``generator`` over long sequences as one batch of overlapping ``chunk``-frame pieces.

    The LSTM was trained on ``chunk``-frame sequences, so it sees the same lengths here; pieces overlap
    by half and are blended with a Hann cross-fade (weights never 0, so every frame is covered).

    Args:
        audio: (S, N, F) standardised flattened windows; emotion: (S, N, 7).

    Returns:
        (S, N, P) standardised parameters.
    """
    S, N, _ = audio.shape
    if N <= chunk:
        return generator(audio, emotion)
    hop = max(1, chunk // 2)
    n_chunks = int(math.ceil((N - chunk) / hop)) + 1
    starts = torch.clamp(torch.arange(n_chunks, device=audio.device) * hop, max=N - chunk)  # last flush
    idx = starts[:, None] + torch.arange(chunk, device=audio.device)                       # (C, L)
    x_a = audio[:, idx].reshape(S * n_chunks, chunk, -1)
    x_e = emotion[:, idx].reshape(S * n_chunks, chunk, -1)
    y = generator(x_a, x_e).reshape(S, n_chunks, chunk, -1)                                 # (S, C, L, P)
    w = torch.as_tensor(np.hanning(chunk + 2)[1:-1], dtype=y.dtype, device=y.device)         # (L,)
    flat = idx.reshape(-1)
    out = torch.zeros(S, N, y.shape[-1], dtype=y.dtype, device=y.device)
    out.index_add_(1, flat, (y * w[None, None, :, None]).reshape(S, -1, y.shape[-1]))
    norm = torch.zeros(N, dtype=y.dtype, device=y.device).index_add_(0, flat, w.repeat(n_chunks))
    return out / norm[None, :, None]


def predict(model: A2EModel, wave: np.ndarray, sr: int, emotions: Any = None, smooth: bool = True,
            n_frames: int | None = None, fps: float | None = None, clamp: bool = False) -> A2EPrediction:
    """Per-frame expression and jaw pose for an audio track.

    Args:
        model: a trained :class:`A2EModel`.
        wave: (S,) or (S, C) audio, any rate ``sr``.
        emotions: ``None`` (neutral), a spec (``"happy:0.66"``, ``{"sad": 0.5}``), an
            :class:`EmotionCurves`, a (7,) vector or an (N, 7) per-frame array.
        smooth: Savitzky-Golay (window 5, order 2) along time.
        n_frames: force the number of output frames (e.g. the shot's length); default
            ``ceil(duration * fps)``.
        fps: output frame rate (default: the model's); the model runs at its training rate and the
            result is resampled.
        clamp: clip emotion intensities outside [0, 1] instead of raising ``ValueError``.

    Returns:
        :class:`A2EPrediction` with expression (N, E), jaw_pose (N, 3), neck_pose (N, 3), emotion (N, 7).
    """
    return model.predict(wave, sr, emotions, n_frames=n_frames, fps=fps, smooth=smooth, clamp=clamp)


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` written next to a trained model."""
    return json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
