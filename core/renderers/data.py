"""One data layer for every renderer: tracked clips -> :class:`~core.renderers.base.RendererBatch`.

Training, evaluation and dubbing build batches with the same function (:func:`assemble_batch`), so a
renderer sees the same inputs in all three. What a batch holds beyond frames, parameters and camera
follows the renderer's :class:`~core.renderers.base.RendererNeeds`: audio features (computed here, from the
clip's audio or the dub's new audio) and temporal context frames.

Split: the last ``holdout`` fraction of every clip is never trained on; the evaluation uses exactly those
frames (``split.json`` in the model folder records the ranges). Frames without a face (flagged by the
landmark stage) are left out of both. Frame ids: training frames are numbered in clip order (a renderer's
per-frame latent codes use them); every other frame has id -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.expression.emotions import EMOTIONS
from core.morphable.data import FaceParams
from core.render.camera import PerspectiveCamera
from core.tracking.result import TrackedClip

from .base import AudioNeed, RendererBatch, RendererNeeds, TemporalContext


def context_rows(index: np.ndarray, window: int, n_frames: int) -> np.ndarray:
    """Indices of the W temporal neighbours of each frame (W even: W/2 before and after; odd: one more
    after), clamped at the clip's ends. (B,) -> (B, W)."""
    if window <= 0:
        return np.zeros((len(index), 0), np.int64)
    before = window // 2
    offsets = np.array([o for o in range(-before, window - before + 1) if o != 0][:window])
    return np.clip(np.asarray(index)[:, None] + offsets[None], 0, n_frames - 1)


def audio_features(wave: np.ndarray, sr: int, need: AudioNeed, fps: float, n_frames: int) -> np.ndarray:
    """(N, T_a, D_a) float32 feature windows of ``wave`` centred on each of ``n_frames`` video frames."""
    from core.audio.features import AudioFeatureConfig, make_extractor

    extractor = make_extractor(need.extractor, AudioFeatureConfig(**need.settings), need.model)
    return extractor.extract(wave, sr, fps, n_frames).astype(np.float32)


def audio_shape(need: AudioNeed) -> tuple[int, int]:
    """(T_a, D_a) of one window of ``need``'s features."""
    from core.audio.features import AudioFeatureConfig, make_extractor

    extractor = make_extractor(need.extractor, AudioFeatureConfig(**need.settings), need.model)
    return extractor.window, extractor.dim


def clip_audio_features(folder: Path, need: AudioNeed, fps: float, n_frames: int) -> np.ndarray:
    """:func:`audio_features` of ``folder/audio.wav`` (zeros when the clip has no sound)."""
    from core.audio.features import AudioFeatureConfig
    from core.audio.io import load_audio

    wav = folder / "audio.wav"
    if not wav.exists():
        return np.zeros((n_frames, *audio_shape(need)), np.float32)
    wave, sr = load_audio(wav, AudioFeatureConfig(**need.settings).sample_rate)
    return audio_features(wave, sr, need, fps, n_frames)


def frames_tensor(crops: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(B, S, S, 3) uint8 crops -> (B, 3, S, S) float in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float() / 255.0


def assemble_batch(crops: np.ndarray, params: FaceParams, plate_params: FaceParams, camera: PerspectiveCamera,
                   face_model: Any, audio: np.ndarray | torch.Tensor | None, emotion: np.ndarray,
                   frame_ids: np.ndarray, context: TemporalContext | None = None,
                   device: torch.device | str = "cpu", driven: bool = False,
                   features: dict[str, np.ndarray] | None = None) -> RendererBatch:
    """A :class:`RendererBatch` on ``device`` from host arrays (shapes as its docstring; ``camera`` may be a
    single camera, which is repeated)."""
    B = len(crops)
    cam = camera.expand(B) if camera.batch_size == 1 and B > 1 else camera
    return RendererBatch(
        frames=frames_tensor(crops, device),
        params=params.to(device), plate_params=plate_params.to(device), camera=cam.to(device),
        face_model=face_model,
        audio=None if audio is None else torch.as_tensor(np.asarray(audio), dtype=torch.float32).to(device),
        emotion=torch.as_tensor(np.asarray(emotion, np.float32)).reshape(B, len(EMOTIONS)).to(device),
        frame_ids=torch.as_tensor(np.asarray(frame_ids, np.int64)).to(device),
        context=None if context is None else TemporalContext(
            context.params.to(device), context.camera.to(device), context.rows.to(device),
            context.neighbours.to(device), {k: v.to(device) for k, v in context.features.items()}),
        driven=driven, features={k: _feature_tensor(v, device) for k, v in (features or {}).items()})


def _feature_tensor(rows: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rows, np.float32)).to(device)


@dataclass
class ClipFrames:
    """The frames of one tracked clip that a source exposes.

    Attributes:
        name: the clip's name (for reports).
        clip: the tracked clip.
        frames: (K,) frame indices exposed (e.g. the first 80% for training).
        audio: (N, T_a, D_a) audio windows of every frame of the clip, or ``None``.
        emotion: (N, 7) emotion intensities per frame (the clip's label).
        first_id: training id of ``frames[0]`` (ids follow ``frames``), or ``None``: not training frames.
        sentence: what the clip says (its manifest ``sentence``: takes of one sentence in different emotions
            pair up for JEAN's expression transformer), or ``None``.
        features: name -> (N, F) imported per-frame features of every frame of the clip
            (:mod:`core.renderers.frame_features`).
    """

    name: str
    clip: TrackedClip
    frames: np.ndarray
    audio: np.ndarray | None
    emotion: np.ndarray
    first_id: int | None
    sentence: str | None = None
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


class FrameSource:
    """Frames of several tracked clips as renderer batches (a training or evaluation set).

    Args:
        clips: the clips and which of their frames to expose.
        needs: what the renderer needs besides frames and parameters.

    All clips must share one face model and one crop size.
    """

    def __init__(self, clips: Sequence[ClipFrames], needs: RendererNeeds) -> None:
        self.clips = [c for c in clips if len(c)]
        self.needs = needs
        specs = {repr(c.clip.model_spec) for c in self.clips}
        if len(specs) > 1:
            raise ValueError("the clips were tracked with different face models; track them all with one model "
                             f"({' / '.join(sorted(specs))})")
        sizes = {c.clip.size for c in self.clips}
        if len(sizes) > 1:
            raise ValueError(f"the clips have different crop sizes {sorted(sizes)}; ingest them at one size")
        self.size = sizes.pop() if sizes else 0
        self.offsets = np.cumsum([0] + [len(c) for c in self.clips])
        self._crops: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def train_frames(self) -> int:
        """How many frames have a training id."""
        return sum(len(c) for c in self.clips if c.first_id is not None)

    @property
    def face_model_spec(self) -> dict[str, Any]:
        return self.clips[0].clip.model_spec if self.clips else {"model": "procedural"}

    def feature_widths(self) -> dict[str, int]:
        """name -> F of the imported features the source's renderer needs.

        Raises:
            ValueError: two clips' features of one name have different widths.
        """
        widths: dict[str, int] = {}
        for name in self.needs.frame_features:
            found = {int(c.features[name].shape[1]) for c in self.clips}
            if len(found) > 1:
                raise ValueError(f"the clips' {name!r} features have different widths {sorted(found)}: compute them "
                                 "all with one network")
            widths[name] = found.pop() if found else 0
        return widths

    def face_model(self, device: torch.device | str = "cpu") -> Any:
        return self.clips[0].clip.face_model(device)

    def locate(self, i: int) -> tuple[int, int, int]:
        """(clip number, frame index in that clip, position among the clip's exposed frames) of item ``i``."""
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        local = i - int(self.offsets[k])
        return k, int(self.clips[k].frames[local]), local

    def load_crops(self) -> None:
        """Make (or open) every clip's crop cache now: before other processes read it (distributed training)."""
        for k in range(len(self.clips)):
            self.crops_of(k)

    def crops_of(self, k: int) -> np.ndarray:
        if k not in self._crops:
            self._crops[k] = self.clips[k].clip.crops(self.size)
        return self._crops[k]

    def params(self, indices: Sequence[int]) -> FaceParams:
        """The tracked parameters of items ``indices`` (CPU), without reading frames or audio."""
        return FaceParams.cat([self.clips[k].clip.params[f] for k, f, _ in (self.locate(int(i)) for i in indices)])

    def audio_windows(self, indices: Sequence[int]) -> np.ndarray | None:
        """(n, T_a, D_a) the audio windows of items ``indices`` without reading frames (``None``: no audio)."""
        if self.needs.audio is None:
            return None
        return np.stack([self.clips[k].audio[f] for k, f, _ in (self.locate(int(i)) for i in indices)])  # type: ignore[index]

    def emotions(self, indices: Sequence[int]) -> np.ndarray:
        """(n, 7) the emotion labels of items ``indices``."""
        return np.stack([self.clips[k].emotion[f] for k, f, _ in (self.locate(int(i)) for i in indices)])

    def batch(self, indices: Sequence[int], device: torch.device | str = "cpu") -> RendererBatch:
        """The items ``indices`` as one batch."""
        located = [self.locate(int(i)) for i in indices]
        crops = np.stack([self.crops_of(k)[f] for k, f, _ in located])
        params = FaceParams.cat([self.clips[k].clip.params[f] for k, f, _ in located])
        camera = PerspectiveCamera.cat([self.clips[k].clip.camera for k, _, _ in located])
        audio = None
        if self.needs.audio is not None:
            audio = np.stack([self.clips[k].audio[f] for k, f, _ in located])  # type: ignore[index]
        emotion = np.stack([self.clips[k].emotion[f] for k, f, _ in located])
        ids = np.array([-1 if self.clips[k].first_id is None else self.clips[k].first_id + local
                        for k, _, local in located])
        context = self._context(located) if self.needs.context_frames else None
        return assemble_batch(crops, params, params, camera, self.face_model(device), audio, emotion, ids,
                              context, device, features=self._features(located))

    def _features(self, located: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int]]) -> dict[str, np.ndarray]:
        """name -> (n, F) the imported features of the (clip number, frame) pairs ``located``."""
        return {name: np.stack([self.clips[item[0]].features[name][item[1]] for item in located])
                for name in self.needs.frame_features}

    def _context(self, located: list[tuple[int, int, int]]) -> TemporalContext:
        W = self.needs.context_frames
        keys: dict[tuple[int, int], int] = {}
        rows, neighbours = [], []
        for k, f, _ in located:
            clip = self.clips[k].clip
            row = keys.setdefault((k, f), len(keys))
            rows.append(row)
            neighbours.append([keys.setdefault((k, int(n)), len(keys))
                               for n in context_rows(np.array([f]), W, clip.n_frames)[0]])
        order = sorted(keys, key=keys.get)  # type: ignore[arg-type]
        params = FaceParams.cat([self.clips[k].clip.params[f] for k, f in order])
        camera = PerspectiveCamera.cat([self.clips[k].clip.camera for k, _ in order])
        features = {name: _feature_tensor(values, "cpu") for name, values in self._features(order).items()}
        return TemporalContext(params, camera, torch.tensor(rows), torch.tensor(neighbours).reshape(len(rows), W),
                               features)


def clip_features(folder: Path, names: tuple[str, ...], n_frames: int) -> dict[str, np.ndarray]:
    """:func:`~core.renderers.frame_features.load_frame_features` with its errors as a job's.

    Raises:
        JobFailed: a clip lacks features the renderer needs (code ``no_data``) or they do not fit it.
    """
    if not names:
        return {}
    from core.jobs.context import JobFailed

    from .frame_features import FrameFeatureError, load_frame_features

    try:
        return load_frame_features(folder, names, n_frames)
    except FrameFeatureError as exc:
        raise JobFailed(str(exc), code="no_data", hint="every clip of the actor needs the features the renderer's "
                        "options name (`emodub features import`), or train without them") from None


def split_frames(n: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    """First (1 - holdout) of the frames for training, the rest held out (at least one each when n >= 2)."""
    cut = int(round(n * (1.0 - holdout)))
    cut = min(max(cut, 1), n - 1) if n >= 2 and holdout > 0 else n
    return np.arange(cut), np.arange(cut, n)


def tracked_folders(ws: Any, actor: str) -> list[tuple[str, Path, dict[str, Any]]]:
    """(clip name, folder, manifest record) of the actor's clips that have a tracking result."""
    clips = ws.read_manifest()["actors"].get(actor, {}).get("clips", {})
    return [(name, ws.clip_dir(actor, name), clips[name]) for name in sorted(clips)
            if (ws.clip_dir(actor, name) / "tracking" / "params.npz").exists()]


def clip_emotion(record: dict[str, Any], n_frames: int) -> np.ndarray:
    """(N, 7) the clip's emotion label (from its manifest record) on every frame."""
    from core.expression.emotions import emotion_vector

    label = {k: float(v) for k, v in (record.get("emotion") or {}).items()}
    return np.repeat(emotion_vector(label)[None], n_frames, 0).astype(np.float32)


def actor_sources(ws: Any, actor: str, needs: RendererNeeds, holdout: float
                  ) -> tuple[FrameSource, FrameSource, dict[str, Any]]:
    """The actor's training and held-out frames and the split record.

    Raises:
        JobFailed: the actor has no tracked clips (code ``no_data``).
    """
    folders = tracked_folders(ws, actor)
    if not folders:
        from core.jobs.context import JobFailed

        raise JobFailed(f"actor {actor!r} has no tracked clips", code="no_data",
                        hint="ingest footage (`emodub ingest`) and track it (`emodub track`) first")
    train, held, split = [], [], {}
    next_id = 0
    for name, folder, record in folders:
        clip = TrackedClip.load(folder)
        audio = (clip_audio_features(folder, needs.audio, clip.fps, clip.n_frames)
                 if needs.audio is not None else None)
        emotion = clip_emotion(record, clip.n_frames)
        train_idx, held_idx = split_frames(clip.n_frames, holdout)
        # Frames the landmark stage flagged (the face left the picture) are neither learned nor measured.
        train_idx, held_idx = train_idx[clip.face_present[train_idx]], held_idx[clip.face_present[held_idx]]
        sentence = record.get("sentence")
        features = clip_features(folder, needs.frame_features, clip.n_frames)
        train.append(ClipFrames(name, clip, train_idx, audio, emotion, next_id, sentence, features))
        next_id += len(train_idx)
        held.append(ClipFrames(name, clip, held_idx, audio, emotion, None, sentence, features))
        split[name] = {"train": [int(train_idx[0]), int(train_idx[-1]) + 1] if len(train_idx) else [0, 0],
                       "held_out": [int(held_idx[0]), int(held_idx[-1]) + 1] if len(held_idx) else [0, 0],
                       "size": clip.size, "train_frames": len(train_idx), "held_out_frames": len(held_idx)}
    return FrameSource(train, needs), FrameSource(held, needs), split
