"""The renderer contract: what goes in (:class:`RendererBatch`), what comes out (:class:`RenderOutput`), and
the :class:`Renderer` base every variant subclasses.

The shared data layer (:mod:`core.renderers.data`) builds batches for training, evaluation and dubbing the
same way; the shared trainer (:mod:`core.renderers.train`) calls :meth:`Renderer.forward`,
:meth:`Renderer.losses` and :meth:`Renderer.param_groups`; the dub pastes :attr:`RenderOutput.image` back
into the plate inside :attr:`RenderOutput.alpha`. A variant never sees where a batch came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from core.morphable.data import FaceParams
from core.render.camera import PerspectiveCamera

if TYPE_CHECKING:
    from core.morphable.model import MorphableModel


@dataclass
class TemporalContext:
    """Each frame's temporal neighbours as rows of one short parameter sequence, so a renderer evaluates every
    frame once however many batch frames share it.

    Attributes:
        params: M frames of parameters: the batch's frames and their neighbours, each once.
        camera: M cameras (frames of different clips may have different cameras).
        rows: (B,) int64 row of each batch frame in ``params``.
        neighbours: (B, W) int64 rows of each frame's W neighbours (clamped at the clip's ends).
        features: name -> (M, F) imported per-frame features of the M frames (:attr:`RendererNeeds.frame_features`).
    """

    params: FaceParams
    camera: PerspectiveCamera
    rows: torch.Tensor
    neighbours: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class RendererBatch:
    """B frames to render (or to learn from), all on one device.

    Attributes:
        frames: (B, 3, H, W) float in [0, 1], the plate's square crops. Training: the target. Dub: the
            background the face is rendered over (its own face is what gets replaced).
        params: B frames of face parameters to render (training: tracked; dub: the a2e's expression and
            jaw on the shot's pose).
        plate_params: B frames of the plate's own tracked face (training: the same as ``params``); the
            region the old face covered comes from it.
        camera: B cameras in crop space (H x W).
        face_model: the morphable model the parameters belong to.
        audio: (B, T_a, D_a) audio-feature windows centred on each frame, or ``None`` when the renderer
            needs no audio (see :attr:`RendererNeeds.audio`).
        emotion: (B, 7) emotion intensities per frame (:data:`core.expression.emotions.EMOTIONS`; zeros =
            neutral).
        frame_ids: (B,) int64 index of each frame among the renderer's training frames; -1 for a frame it
            never trained on (held-out frames, shots).
        context: each frame's W temporal neighbours (W = :attr:`RendererNeeds.context_frames`), or ``None``
            when W = 0.
        driven: True when ``params``, ``audio`` and ``emotion`` drive the face anew (a dub or a preview: new
            audio, keyframed emotion curves); False when they are the plate's own performance (training,
            held-out evaluation). A renderer whose expression input has no per-frame source in a dub (JEAN's
            expression features) takes it from ``emotion`` when driven.
        features: name -> (B, F) imported per-frame features (:attr:`RendererNeeds.frame_features`; empty
            when the renderer needs none, and in driven batches, whose frames have none).
    """

    frames: torch.Tensor
    params: FaceParams
    plate_params: FaceParams
    camera: PerspectiveCamera
    face_model: MorphableModel
    audio: torch.Tensor | None
    emotion: torch.Tensor
    frame_ids: torch.Tensor
    context: TemporalContext | None = None
    driven: bool = False
    features: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.frames.shape[0])

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def __getitem__(self, index: slice) -> RendererBatch:
        """Frames ``index`` (a slice) of the batch."""
        if not isinstance(index, slice):
            raise TypeError("index a RendererBatch with a slice")
        context = None
        if self.context is not None:
            context = TemporalContext(self.context.params, self.context.camera, self.context.rows[index],
                                      self.context.neighbours[index], self.context.features)
        return RendererBatch(self.frames[index], self.params[index], self.plate_params[index],
                             self.camera[index], self.face_model,
                             None if self.audio is None else self.audio[index], self.emotion[index],
                             self.frame_ids[index], context, self.driven,
                             {name: value[index] for name, value in self.features.items()})


@dataclass
class RenderOutput:
    """What a renderer returns.

    Attributes:
        image: (B, 3, H, W) in [0, 1]: the frame with the rendered face composited over the batch's
            ``frames``. ``None`` only from a training-mode forward that renders a subset of pixels (a NeRF's
            ray batch); evaluation and dubbing always get whole frames.
        alpha: (B, 1, H, W) in [0, 1]: where ``image`` may replace the plate (the dub intersects it with the
            face region and feathers it). ``None`` together with ``image``.
        extras: variant-specific tensors (raw decoder output, accumulated opacity, sampled rays...).
    """

    image: torch.Tensor | None
    alpha: torch.Tensor | None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainStep:
    """Where a training step is: ``iteration`` (1-based) of ``total``, and ``progress``: the fraction of the
    training budget spent (iterations, or wall time when the trainer has a time budget: then ``total`` is only
    an upper bound). ``None``: ``iteration / total``."""

    iteration: int
    total: int
    progress: float | None = None

    @property
    def fraction(self) -> float:
        """How far training is, in [0, 1] (what a schedule of stages should follow)."""
        value = self.progress if self.progress is not None else self.iteration / max(self.total, 1)
        return min(max(float(value), 0.0), 1.0)


@dataclass(frozen=True)
class AudioNeed:
    """The audio features a renderer conditions on: extractor name, its settings
    (:class:`core.audio.features.AudioFeatureConfig` fields) and, for ``wav2vec2``, the local checkpoint folder
    (``model``; :func:`core.audio.features.make_extractor`'s ``phoneme_model``)."""

    extractor: str = "mfcc"
    settings: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


@dataclass(frozen=True)
class RendererNeeds:
    """What the data layer must put into a batch for this renderer.

    Attributes:
        audio: audio features to compute (``None``: the renderer ignores audio).
        context_frames: W temporal neighbours whose parameters go into ``RendererBatch.context``.
        frame_features: names of imported per-frame features (:mod:`core.renderers.frame_features`) every
            training and held-out frame must have.
    """

    audio: AudioNeed | None = None
    context_frames: int = 0
    frame_features: tuple[str, ...] = ()


@dataclass
class RendererSetup:
    """Plain data a renderer is built from besides its options (saved in its checkpoint).

    Attributes:
        image_size: side of the square crops it renders (the training clips' crop size).
        face_model: the face model the training clips were tracked with (:func:`core.tracking.result.face_model_spec`).
        train_frames: number of training frames (per-frame latent codes are indexed by ``frame_ids``).
        fps: frame rate of the training clips.
        n_expression: expression coefficients of the face model (a field conditioned on them needs the count).
        frames_key: a fingerprint of the training frames (clips and ranges): a renderer with per-frame state
            resumes only on the same frames.
        frame_features: name -> width F of the imported per-frame features the renderer was trained with.
    """

    image_size: int
    face_model: dict[str, Any]
    train_frames: int = 0
    fps: float = 25.0
    n_expression: int = 0
    frames_key: str = ""
    frame_features: dict[str, int] = field(default_factory=dict)


class Renderer(nn.Module):
    """Base of every renderer variant.

    Subclasses set :attr:`variant` (through :func:`core.renderers.registry.register_renderer`) and
    implement :meth:`forward`, :meth:`losses` and, when they need more than one learning rate,
    :meth:`param_groups`. Training-only modules that carry their own parameters (a discriminator, a
    perceptual network) come from :meth:`criteria` and are kept out of the model's checkpoint weights.
    """

    variant: ClassVar[str] = ""
    frame_bound: ClassVar[bool] = False  # weights tied to the training frames (per-frame latent codes)

    def __init__(self, options: Any, setup: RendererSetup) -> None:
        super().__init__()
        self.options = options
        self.setup = setup
        # Set by the trainer on CUDA: the networks run under bf16 autocast, never the geometry (skinning,
        # projection, rays, rasterization stay float32, as at evaluation and dub time) nor the losses.
        self.amp_dtype: torch.dtype | None = None
        # Set by the trainer: where a long :meth:`prepare` (JEAN trains its encoders there) and
        # :meth:`attach_training_frames` report progress.
        self.log: Callable[[str], None] | None = None

    def prepare_report(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What :meth:`prepare` trained, for the training report: figures (JSON-ready) and pictures (name ->
        (H, W, 3) uint8 array). The trainer writes them to ``prepare.json`` and ``<name>.png`` (default: none)."""
        return {}, {}

    def stage_progress(self, stage: str) -> Callable[[int, int], None] | None:
        """A progress callback for a stage of :meth:`prepare` that logs ``<variant>: training the <stage>, step
        d/n`` at every quarter (``None`` without a log)."""
        log = self.log
        if log is None:
            return None

        def report(done: int, total: int) -> None:
            if done == total or done % max(total // 4, 1) == 0:
                log(f"{self.variant}: training the {stage}, step {done}/{total}")

        return report

    def network_autocast(self) -> Any:
        """A context for a variant's network calls: bf16 autocast while the trainer asks for it on CUDA."""
        return torch.autocast("cuda", dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None)

    # -- what the data layer must provide ----------------------------------------------------------
    @classmethod
    def needs_for(cls, options: Any) -> RendererNeeds:
        """What the data layer must put into batches for a renderer with ``options``."""
        return RendererNeeds()

    @property
    def needs(self) -> RendererNeeds:
        return self.needs_for(self.options)

    # -- the contract ------------------------------------------------------------------------------
    def forward(self, batch: RendererBatch) -> RenderOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def criteria(self) -> nn.ModuleDict:
        """Training-only loss modules with state (built once by the trainer, checkpointed beside the model)."""
        return nn.ModuleDict()

    def losses(self, batch: RendererBatch, output: RenderOutput, criteria: nn.ModuleDict,
               step: TrainStep) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        """Named, already weighted loss terms of one step; the trainer minimises their sum."""
        raise NotImplementedError

    def adversarial_pairs(self, batch: RendererBatch, output: RenderOutput, step: TrainStep
                          ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``criteria`` name -> (real, fake) images on which the trainer steps that criterion's discriminator
        this iteration (before the generator step); empty when no adversarial term is active."""
        return {}

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups (default: every parameter at ``lr``)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    # -- hooks of the shared trainer ---------------------------------------------------------------
    def before_step(self, step: TrainStep) -> None:
        """Called before every training forward (e.g. to switch a coarse-to-fine schedule's stage, which decides
        what the forward samples)."""

    def prepare(self, source: Any) -> None:
        """Called once before training starts (not on resume) with the training frame source: a variant
        may initialise state from the data (e.g. an occupancy grid from the tracked meshes)."""

    def after_step(self, step: TrainStep, batch: RendererBatch) -> None:
        """Called after every optimiser step (e.g. to refresh an occupancy grid)."""

    def attach_training_frames(self, source: Any) -> None:
        """Called when training starts and on every resume (after :meth:`prepare` or the checkpoint's weights), before
        the first step: training-only state derived from the frames and what :meth:`prepare` learned, rebuilt on
        every start and never saved (NeRF-AD's same-sentence neutral partners of emotional frames). Default none."""

    def frame_weights(self, source: Any) -> Any:
        """(N,) relative chance of each training frame being drawn for a step, or None for uniform. Called
        when training starts and on every resume (after :meth:`prepare` or the checkpoint's weights), so it
        may use what :meth:`prepare` learned. A variant oversamples rare frames its conditions must learn
        (the tri-plane NeRF: frames where the eyes are closing)."""
        return None
