"""Training of JEAN's encoders before its NeRF (§3.1, §3.2) and the audio-to-mouth retrieval that measures the
audio encoder.

All three train on :class:`Series`: one clip's frames as pose-free landmarks, audio windows and emotion
features. The renderer builds them from its training frames (:func:`series_of_source`); a multi-speaker audio
encoder (``bench/jean_retrieval.py``) builds them from several workspaces' actors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.audio.align import dtw_path

from .features import emotion_features, jean_landmarks
from .networks import AudioEncoder, ExpressionTransformer, LandmarkAutoencoder, info_nce

Progress = Callable[[int, int], None] | None
NEGATIVE_GAP = 25  # frames: a key closer than this in the same clip may show the same mouth: never a negative


@dataclass
class Series:
    """One clip's training frames as JEAN's encoders see them.

    Attributes:
        name: the clip (for messages).
        landmarks: (N, 51, 2) pose-free landmarks (:func:`~.features.jean_landmarks`).
        audio: (N, T, D) audio-feature windows centred on each frame, or ``None``.
        emotion: (N, F) emotion features (:func:`~.features.emotion_features`).
        label: (7,) the clip's emotion label.
        sentence: what the clip says (takes with the same sentence and different labels are the expression
            transformer's pairs), or ``None`` when unknown.
        frames: (N,) the frames' indices in the clip (time, for the negatives of the contrastive loss).
        speaker: who speaks in the clip (the contrastive loss takes its negatives from the same speaker only).
    """

    name: str
    landmarks: torch.Tensor
    audio: torch.Tensor | None
    emotion: torch.Tensor
    label: np.ndarray
    sentence: str | None
    frames: np.ndarray
    speaker: str = ""

    def __len__(self) -> int:
        return len(self.landmarks)


@torch.no_grad()
def series_of_source(source: Any, n_expression: int, chunk: int = 128, emotion_network: str = "",
                     speaker: str = "") -> list[Series]:
    """:class:`Series` of each clip of a :class:`~core.renderers.data.FrameSource` (its exposed frames).

    Args:
        emotion_network: the name of imported emotion-network features to use as the emotion features (empty:
            the tracked-face substitute).
        speaker: who speaks in the source's clips (one actor's footage: one speaker).
    """
    model = source.face_model("cpu")
    out = []
    for clip in source.clips:
        params = clip.clip.params
        frames = np.asarray(clip.frames)
        lmk, emo = [], []
        for start in range(0, len(frames), chunk):
            p = params[torch.as_tensor(frames[start:start + chunk])]
            lmk.append(jean_landmarks(model, p))
            emo.append(emotion_features(model, p, n_expression))
        audio = None if clip.audio is None else torch.from_numpy(np.asarray(clip.audio)[frames])
        emotion = (torch.from_numpy(np.asarray(clip.features[emotion_network], np.float32)[frames])
                   if emotion_network else torch.cat(emo))
        out.append(Series(clip.name, torch.cat(lmk), audio, emotion, np.asarray(clip.emotion[0]),
                          getattr(clip, "sentence", None), frames, speaker))
    return out


def optimise(model: torch.nn.Module, steps: int, lr: float, step_loss: Callable[[], torch.Tensor],
             progress: Progress = None) -> float:
    """``steps`` Adam steps on ``step_loss()`` (which draws its own batch); returns the last loss."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for step in range(steps):
        loss = step_loss()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress(step + 1, steps)
    return float(loss.detach())


@dataclass
class Pool:
    """Every frame of several :class:`Series` in flat tensors, so a training step gathers its batch with one
    index (no per-frame Python).

    Attributes:
        landmarks: (M, 51, 2); audio: (M, T, D) or ``None`` when a clip lacks audio; clip: (M,) clip number;
        time: (M,) frame index in the clip; offsets: (C + 1,) first row of each clip; speaker: (M,) speaker
        number.
    """

    landmarks: torch.Tensor
    audio: torch.Tensor | None
    clip: torch.Tensor
    time: torch.Tensor
    offsets: torch.Tensor
    speaker: torch.Tensor

    @classmethod
    def of(cls, series: Sequence[Series]) -> Pool:
        sizes = torch.tensor([len(s) for s in series])
        has_audio = all(s.audio is not None for s in series)
        speakers = {name: i for i, name in enumerate(dict.fromkeys(s.speaker for s in series))}
        return cls(torch.cat([s.landmarks for s in series]),
                   torch.cat([s.audio for s in series]) if has_audio else None,  # type: ignore[misc]
                   torch.repeat_interleave(torch.arange(len(series)), sizes),
                   torch.from_numpy(np.concatenate([s.frames for s in series])).long(),
                   torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sizes, 0)]),
                   torch.repeat_interleave(torch.tensor([speakers[s.speaker] for s in series]), sizes))

    def __len__(self) -> int:
        return len(self.clip)

    def draw(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """(count,) random rows, uniform over all frames."""
        return torch.randint(len(self), (count,), generator=generator)

    def draw_by_speaker(self, count: int, per_speaker: int, generator: torch.Generator) -> torch.Tensor:
        """(count,) rows in groups of ``per_speaker`` consecutive rows of one speaker each; the speakers are drawn
        uniformly (a speaker with little footage weighs as much as one with much), the rows uniformly within."""
        order = torch.argsort(self.speaker, stable=True)
        sizes = torch.bincount(self.speaker)
        starts = torch.cumsum(sizes, 0) - sizes
        groups = -(-count // per_speaker)
        who = torch.randint(len(sizes), (groups,), generator=generator).repeat_interleave(per_speaker)[:count]
        return order[starts[who] + (torch.rand(count, generator=generator) * sizes[who]).long()]

    def same_clip(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(count,) a random row of the same clip as each of ``rows``."""
        clip = self.clip[rows]
        lo, size = self.offsets[clip], self.offsets[clip + 1] - self.offsets[clip]
        return lo + (torch.rand(len(rows), generator=generator) * size).long()


def train_landmark_autoencoder(series: Sequence[Series], steps: int, batch: int = 256, lr: float = 1e-3,
                               swap_probability: float = 0.8, seed: int = 0, progress: Progress = None,
                               device: str = "cpu") -> tuple[LandmarkAutoencoder, float]:
    """Eq. 1 on pairs of frames of one clip; returns the autoencoder (eval mode) and its last loss."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    pool = Pool.of(series)
    model = LandmarkAutoencoder().to(device)
    model.norm.fit(pool.landmarks.flatten(1).to(device))

    def step_loss() -> torch.Tensor:
        first = pool.draw(batch, generator)
        second = pool.same_clip(first, generator)
        return model.swap_loss(pool.landmarks[first].to(device), pool.landmarks[second].to(device), swap_probability)

    loss = optimise(model, steps, lr, step_loss, progress)
    return model.eval(), loss


def negatives_mask(clip: torch.Tensor, time: torch.Tensor, gap: int = NEGATIVE_GAP,
                   speaker: torch.Tensor | None = None) -> torch.Tensor:
    """(B, B) True where key j may be a negative of query i: another clip, or the same clip ``gap`` frames away
    or more; with ``speaker`` (B,), only keys of the query's own speaker."""
    same = clip[:, None] == clip[None, :]
    valid = ~same | ((time[:, None] - time[None, :]).abs() >= gap)
    return valid if speaker is None else valid & (speaker[:, None] == speaker[None, :])


# Rows of one speaker per group of a batch of the audio encoder: 4 speakers in a batch of 256.
ROWS_PER_SPEAKER = 64


def train_audio_encoder(series: Sequence[Series], landmark_ae: LandmarkAutoencoder, steps: int, batch: int = 256,
                        lr: float = 1e-3, temperature: float = 0.1, seed: int = 0, progress: Progress = None,
                        device: str = "cpu", same_speaker_negatives: bool = True) -> tuple[AudioEncoder, float]:
    """Eq. 2: align the audio embedding of each frame with its (frozen) mouth embedding, the batch's other
    frames as negatives (:func:`negatives_mask`).

    With several speakers (``Series.speaker``) each batch is groups of :data:`ROWS_PER_SPEAKER` frames of one
    speaker, and a query's negatives are its own speaker's frames only (as the paper: another clip of the same
    speaker, or a distant part of the same clip). Another speaker's frame is told apart by the voice and the face
    shape alone, a shortcut that teaches nothing about the mouth (``same_speaker_negatives=False`` keeps it, for
    comparison)."""
    usable = [s for s in series if s.audio is not None and len(s)]
    if not usable:
        raise ValueError("no clip has audio: the audio encoder learns from footage with its sound")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    pool = Pool.of(usable)
    assert pool.audio is not None
    model = AudioEncoder(int(pool.audio.shape[-1])).to(device)
    model.norm.fit(pool.audio.flatten(0, 1).to(device))
    landmark_ae = landmark_ae.to(device).eval()
    with torch.no_grad():
        mouths = torch.cat([landmark_ae.encode(pool.landmarks[i:i + 4096].to(device))[1]
                            for i in range(0, len(pool), 4096)])
    audio = pool.audio

    by_speaker = same_speaker_negatives and int(pool.speaker.max()) > 0

    def step_loss() -> torch.Tensor:
        rows = pool.draw_by_speaker(batch, ROWS_PER_SPEAKER, generator) if by_speaker else pool.draw(batch, generator)
        speaker = pool.speaker[rows] if by_speaker else None
        valid = negatives_mask(pool.clip[rows], pool.time[rows], speaker=speaker).to(device)
        return info_nce(mouths[rows.to(device)], model(audio[rows].to(device)), valid, temperature)

    loss = optimise(model, steps, lr, step_loss, progress)
    return model.eval(), loss


@torch.no_grad()
def retrieval_accuracy(series: Series, landmark_ae: LandmarkAutoencoder, audio_encoder: AudioEncoder,
                       candidates: int = 32, span: int = 1, trials: int = 2000, seed: int = 0) -> float:
    """Top-1 accuracy of finding a window's mouth among ``candidates`` windows of the same clip from its audio.

    Each trial draws ``candidates`` distinct windows of ``span`` consecutive frames; the audio of the first is
    the query; a candidate's score is the summed cosine similarity of the query's audio embeddings and its mouth
    embeddings frame by frame. Chance is ``1 / candidates``.
    """
    if series.audio is None:
        raise ValueError(f"clip {series.name} has no audio")
    n = len(series) - span + 1
    if n < candidates:
        raise ValueError(f"clip {series.name} has {len(series)} frames: too few for {candidates} windows")
    mouths = torch.nn.functional.normalize(landmark_ae.encode(series.landmarks)[1], dim=1)
    audio = torch.nn.functional.normalize(audio_encoder(series.audio), dim=1)
    similarity = (audio @ mouths.T).numpy()  # (N, N): audio i against mouth j
    rng = np.random.default_rng(seed)
    starts = np.stack([rng.choice(n, candidates, replace=False) for _ in range(trials)])  # (trials, K)
    query = starts[:, :1]
    scores = sum(similarity[query + k, starts + k] for k in range(span))
    return float((np.argmax(scores, 1) == 0).mean())


def aligned_pairs(series: Sequence[Series], norm: Callable[[torch.Tensor], torch.Tensor]
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """DTW-aligned (N, F) emotion-feature sequences of every two takes of one sentence with different labels
    (Eq. 3; the cost is the L1 distance of standardised features)."""
    by_sentence: dict[str, list[Series]] = {}
    for s in series:
        if s.sentence:
            by_sentence.setdefault(s.sentence, []).append(s)
    pairs = []
    for takes in by_sentence.values():
        for a, b in itertools.combinations(takes, 2):
            if np.allclose(a.label, b.label):
                continue
            i, j = dtw_path(norm(a.emotion).numpy(), norm(b.emotion).numpy())
            pairs.append((a.emotion[torch.as_tensor(i)], b.emotion[torch.as_tensor(j)]))
    return pairs


def train_expression_transformer(series: Sequence[Series], steps: int, window: int = 8, batch: int = 32,
                                 lr: float = 5e-4, swap_probability: float = 0.8, seed: int = 0,
                                 progress: Progress = None, device: str = "cpu"
                                 ) -> tuple[ExpressionTransformer, dict[str, Any]]:
    """Eq. 4 on windows of DTW-aligned takes of one sentence in two emotions. Without any such pair (every clip
    a different sentence, or sentences unknown) each take is paired with itself: the transformer then only
    learns to reconstruct, and the report says so."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ExpressionTransformer(int(series[0].emotion.shape[1]), window).to(device)
    model.norm.fit(torch.cat([s.emotion for s in series]).to(device))
    norm_cpu = model.norm.cpu()
    pairs = aligned_pairs(series, norm_cpu)
    model.norm.to(device)
    report: dict[str, Any] = {"pairs": len(pairs)}
    if not pairs:
        pairs = [(s.emotion, s.emotion) for s in series]
        report["note"] = ("no two takes of one sentence in different emotions: the expression transformer "
                          "learned without pairs (ingest takes with --sentence to give it pairs)")
    pairs = [p for p in pairs if len(p[0]) >= window]
    if not pairs:
        raise ValueError(f"every take is shorter than the expression window ({window} frames)")
    # All aligned pairs end to end; a window may start wherever it stays inside its pair.
    first = torch.cat([a for a, _ in pairs])
    second = torch.cat([b for _, b in pairs])
    starts = torch.cat([torch.arange(len(a) - window + 1) + offset for (a, _), offset in
                        zip(pairs, np.cumsum([0] + [len(a) for a, _ in pairs[:-1]]), strict=True)])
    offsets = torch.arange(window)

    def step_loss() -> torch.Tensor:
        rows = starts[torch.randint(len(starts), (batch,), generator=generator)][:, None] + offsets
        return model.swap_loss(first[rows].to(device), second[rows].to(device), swap_probability)

    report["loss"] = optimise(model, steps, lr, step_loss, progress)
    return model.eval(), report
