"""A speech encoder learned from many real voices: per-audio-frame features meant to hold what is said and little
of who says it.

The a2e learns its audio-to-mouth mapping from one actor's minute of footage. On MFCCs that mapping follows the
actor's own voice and weakly anyone else's. This encoder is a candidate speech prior: a small 1D CNN over the
utterance-normalised log-mel spectrogram, trained (``python build.py bench speech_encoder --save``) on LibriSpeech
read speech (CC BY 4.0, so its weights could ship; 248 readers, 52 minutes in ``../shared/data``). No mouth motion is
needed to learn it, and LibriSpeech has none:

* **Acoustic units.** k-means (``units`` clusters) over the standardised log-mel frames of every utterance, heard as
  recorded, gives each 10 ms frame a unit: a data-made stand-in for the phone (HuBERT's first-iteration targets).
* **Other vocal tracts.** The encoder reads each segment with the mel filterbank warped by a random factor (vocal-
  tract length perturbation, as the a2e's voice copies: formants 0.82-1.22 times the reader's) and with a random
  slow loudness contour, and must name the units of the *unwarped* frames (cross-entropy). Its ``dim``-wide
  bottleneck before the unit classifier is the feature.

The encoder sees 29 audio frames (290 ms) around each frame. ``make_extractor("speech")`` gives its features on
the same 10 ms grid as the MFCCs, so the a2e, its voice copies and its windows use it unchanged
(``emodub train a2e --feature speech``).

**Not shipped.** Measured on both long real clips (README, "A speech prior from LibriSpeech"), neither objective
tried beat the MFCCs on other real speakers, so no weights are in the package and ``--feature speech`` asks for them
to be built. A first objective, frame-level InfoNCE between two warps of one segment (each frame must find itself
among all frames of the batch), solved its task on unheard readers (99.98% top-1 across warps 0.82 and 1.22) and
hurt the a2e: telling instants of one utterance apart rewards what is unique to each instant (pitch movement,
timing) rather than the sound's category. The unit objective above helps the actor's own voice shifted in pitch and
formants on one clip and costs other speakers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .features import AudioFeatureConfig, FeatureNotAvailable, MelExtractor

SPEECH_ENCODER_FILE = Path(__file__).resolve().parent / "weights" / "speech_encoder.pt"
FORMAT = "emodub-speech-encoder"
TRAIN_WARPS: tuple[float, ...] = (0.82, 0.9, 1.0, 1.1, 1.22)
UNWARPED = TRAIN_WARPS.index(1.0)


@dataclass(frozen=True)
class SpeechEncoderConfig:
    """Shape of the encoder.

    Attributes:
        n_mels: log-mel bands in (the a2e's feature config analyses 40).
        hidden: channels of the convolutions.
        dim: feature size out (the bottleneck).
        kernel: temporal kernel of every convolution.
        dilations: one residual convolution per entry; the receptive field is ``1 + (kernel - 1) * (1 + sum)``.
        units: acoustic units the training names (the classifier after the bottleneck; not part of the feature).
    """

    n_mels: int = 40
    hidden: int = 128
    dim: int = 32
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4)
    units: int = 64

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel - 1) * (1 + sum(self.dilations))


class FrameNorm(nn.LayerNorm):
    """Layer norm over the channels of each frame of (B, C, T): local in time, unlike a group norm over T, so a
    minute of audio is encoded as its 1.28 s training segments were."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class SpeechEncoder(nn.Module):
    """(B, T, n_mels) normalised log-mel -> (B, T, dim) features (same length: "same" padding); :meth:`units` gives
    the unit logits (B, T, units) the training names."""

    def __init__(self, config: SpeechEncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.stem = nn.Conv1d(c.n_mels, c.hidden, c.kernel, padding=c.kernel // 2)
        self.blocks = nn.ModuleList(nn.Conv1d(c.hidden, c.hidden, c.kernel, padding=d * (c.kernel // 2), dilation=d)
                                    for d in c.dilations)
        self.norms = nn.ModuleList(FrameNorm(c.hidden) for _ in c.dilations)
        self.head = nn.Conv1d(c.hidden, c.dim, 1)
        self.classifier = nn.Linear(c.dim, c.units)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.gelu(self.stem(log_mel.transpose(1, 2)))
        for conv, norm in zip(self.blocks, self.norms, strict=True):
            x = x + torch.nn.functional.gelu(norm(conv(x)))
        return self.head(x).transpose(1, 2)

    def units(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.tanh(features))


def save_speech_encoder(encoder: SpeechEncoder, path: Path, report: dict[str, Any]) -> Path:
    """Write the encoder (tensors and plain data only) with what it was trained on."""
    from core.io.checkpoint import save_checkpoint

    config = asdict(encoder.config)
    config["dilations"] = list(config["dilations"])
    return save_checkpoint({"format": FORMAT, "config": config, "state": encoder.state_dict(),
                            "report": report}, path)


def load_speech_encoder(path: Path | None = None) -> tuple[SpeechEncoder, dict[str, Any]]:
    """The encoder in the package's weights file (or at ``path``), in eval mode, and its training report.

    Raises:
        FeatureNotAvailable: no such file, or a file that is not a speech encoder.
    """
    from core.io.checkpoint import load_checkpoint

    path = Path(path) if path is not None else SPEECH_ENCODER_FILE
    if not path.is_file():
        raise FeatureNotAvailable(f"the speech encoder's weights are missing ({path}): build them with `python "
                                  "build.py bench speech_encoder --save` (needs LibriSpeech in ../shared/data). MFCC "
                                  "features (--feature mfcc, the default) need nothing extra")
    state = load_checkpoint(path, what="speech encoder")
    if state.get("format") != FORMAT:
        raise FeatureNotAvailable(f"{path} is not an emodub speech encoder (format {state.get('format')!r})")
    raw = dict(state["config"])
    raw["dilations"] = tuple(raw["dilations"])
    encoder = SpeechEncoder(SpeechEncoderConfig(**raw))
    encoder.load_state_dict(state["state"])
    return encoder.eval().requires_grad_(False), dict(state.get("report") or {})


class SpeechEncoderFeatures(MelExtractor):
    """The speech encoder's features of each audio frame (module doc).

    The encoder's input is always standardised over the utterance's speech (as in its training); its output is
    used as it is, whatever ``config.utterance_norm`` says. ``config.warp`` warps the input's mel filterbank, so
    the a2e's voice copies work as with MFCCs.
    """

    name = "speech"

    def __init__(self, config: AudioFeatureConfig | None = None, weights: Path | None = None) -> None:
        super().__init__(config)
        self.encoder, self.report = load_speech_encoder(weights)
        if self.encoder.config.n_mels != self.config.n_mels:
            raise FeatureNotAvailable(f"the speech encoder reads {self.encoder.config.n_mels} mel bands, the feature "
                                      f"config has {self.config.n_mels}")

    @property
    def dim(self) -> int:
        return self.encoder.config.dim

    def encoder_input(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """(J, n_mels) log-mel standardised over the utterance's speech."""
        return MelExtractor.normalize_utterance(self, self.log_mel(wave, centres))

    def frame_features(self, wave: np.ndarray, centres: np.ndarray) -> np.ndarray:
        log_mel = self.encoder_input(wave, centres)
        if log_mel.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.no_grad():
            out = self.encoder(torch.from_numpy(log_mel)[None])[0]
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)

    def normalize_utterance(self, feats: np.ndarray) -> np.ndarray:
        return feats  # the input is standardised already (class doc)


# -- training -----------------------------------------------------------------------------------------------------
def utterance_views(waves: Sequence[np.ndarray], warps: Sequence[float] = TRAIN_WARPS,
                    config: AudioFeatureConfig | None = None) -> list[np.ndarray]:
    """(len(warps), J_i, n_mels) float32 standardised log-mel of each 16 kHz wave at every warp (10 ms hop)."""
    base = config or AudioFeatureConfig()
    extractors = [MelExtractor(replace(base, warp=w)) for w in warps]
    hop = base.sample_rate // 100
    views = []
    for wave in waves:
        centres = np.arange(0, wave.size, hop, dtype=np.float64)
        views.append(np.stack([e.normalize_utterance(e.log_mel(wave, centres)) for e in extractors]))
    return views


def kmeans(points: torch.Tensor, k: int, iterations: int = 25, seed: int = 0) -> torch.Tensor:
    """(k, D) centres of ``points`` (N, D) by Lloyd's algorithm from k-means++ seeds; an emptied centre takes the
    point furthest from its own."""
    g = torch.Generator().manual_seed(seed)
    centres = points[torch.randint(len(points), (1,), generator=g)]
    for _ in range(k - 1):  # k-means++
        d2 = torch.cdist(points, centres).min(1).values ** 2
        centres = torch.cat([centres, points[torch.multinomial(d2 / d2.sum(), 1, generator=g)]])
    for _ in range(iterations):
        distance, which = torch.cdist(points, centres).min(1)
        sums = torch.zeros_like(centres).index_add_(0, which, points)
        counts = torch.bincount(which, minlength=k).to(points.dtype)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            centres[empty] = points[distance.topk(int(empty.sum())).indices]
    return centres


def nearest_units(frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(J,) the index of the nearest of ``centres`` (K, D) to each of ``frames`` (J, D)."""
    return torch.cdist(frames, centres).argmin(1)


def unit_labels(views: Sequence[np.ndarray], units: int, seed: int = 0, max_points: int = 200_000
                ) -> tuple[list[np.ndarray], torch.Tensor]:
    """Each utterance's frames named by their nearest of ``units`` k-means centres of the unwarped log-mel frames
    (at most ``max_points`` of them fit the centres): ([(J_i,) int64], (units, n_mels) centres)."""
    frames = torch.from_numpy(np.concatenate([v[UNWARPED] for v in views]))
    g = torch.Generator().manual_seed(seed)
    fit = frames[torch.randperm(len(frames), generator=g)[:max_points]]
    centres = kmeans(fit, units, seed=seed)
    return [nearest_units(torch.from_numpy(v[UNWARPED]), centres).numpy() for v in views], centres


def smooth_gain(length: int, rng: np.random.Generator, depth: float = 0.5, knot_frames: int = 15) -> np.ndarray:
    """(length, 1) a random slow loudness contour, added to every band of a standardised log-mel (``depth`` 0.5 is
    about 3 dB): values in +-``depth`` at knots every ``knot_frames`` frames, linearly joined."""
    knots = rng.uniform(-depth, depth, length // knot_frames + 2)
    return np.interp(np.arange(length) / knot_frames, np.arange(knots.size), knots)[:, None].astype(np.float32)


def sample_segments(views: Sequence[np.ndarray], labels: Sequence[np.ndarray], batch: int, length: int,
                    rng: np.random.Generator, gain_depth: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random segments: (batch, length, n_mels) log-mel, each at a random warp with its own loudness
    contour, and (batch, length) the units of the same frames unwarped."""
    long_enough = [i for i, v in enumerate(views) if v.shape[1] >= length]
    if not long_enough:
        raise ValueError(f"no utterance has {length} frames ({length / 100:.2f} s)")
    inputs, targets = [], []
    for _ in range(batch):
        i = long_enough[rng.integers(len(long_enough))]
        start = rng.integers(views[i].shape[1] - length + 1)
        warp = rng.integers(views[i].shape[0])
        inputs.append(views[i][warp, start:start + length] + smooth_gain(length, rng, gain_depth))
        targets.append(labels[i][start:start + length])
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


def train_speech_encoder(views: Sequence[np.ndarray], steps: int, config: SpeechEncoderConfig | None = None,
                         batch: int = 32, length: int = 128, lr: float = 1e-3, seed: int = 0,
                         progress: Callable[[int, int, float], None] | None = None
                         ) -> tuple[SpeechEncoder, list[float], torch.Tensor]:
    """Train on :func:`utterance_views` of many speakers (module doc); returns the encoder (eval), its losses and the
    units' centres (units, n_mels)."""
    config = config or SpeechEncoderConfig()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels, centres = unit_labels(views, config.units, seed)
    encoder = SpeechEncoder(config)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    losses: list[float] = []
    encoder.train()
    for step in range(steps):
        x, units = sample_segments(views, labels, batch, length, rng)
        loss = torch.nn.functional.cross_entropy(encoder.units(encoder(x)).reshape(-1, config.units),
                                                 units.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    return encoder.eval().requires_grad_(False), losses, centres


@torch.no_grad()
def unit_accuracy(encoder: SpeechEncoder, views: Sequence[np.ndarray], centres: torch.Tensor, warp: int
                  ) -> tuple[float, float]:
    """How often the units of the unwarped frames (nearest of ``centres``) are named right from the frames heard at
    warp index ``warp``: by the encoder's classifier, and by the nearest centre of the warped log-mel itself (what a
    feature without the encoder would name). Chance: about 1 / units."""
    by_encoder, by_nearest, total = 0, 0, 0
    for v in views:
        truth = nearest_units(torch.from_numpy(v[UNWARPED]), centres)
        heard = torch.from_numpy(v[warp])
        by_encoder += int((encoder.units(encoder(heard[None]))[0].argmax(1) == truth).sum())
        by_nearest += int((nearest_units(heard, centres) == truth).sum())
        total += len(truth)
    return by_encoder / max(total, 1), by_nearest / max(total, 1)
