"""Declarations of a tracking run: the stages (which variables, which energies with which weights, how many
iterations on which frames) and the :class:`TrackerConfig` that holds them with every other setting.

The default schedule (VHAP-style, READ Avatars §3.1 for what is shared and what is per frame):

1. ``rigid`` — head rotation, translation and the focal length from the 68 landmarks on a few keyframes
   (the neutral identity, no expression); the result is interpolated to every frame.
2. ``landmarks`` — identity shape (shared), expression, jaw and head pose (per frame) from the landmarks
   of every frame, with priors, eyelid distances for blinks and temporal smoothness; batched sweeps.
3. ``texture`` — lighting (9 x 3 spherical harmonics) and an albedo texture in UV space, both shared by the
   clip, from the photometric error on the keyframes (the geometry is held).
4. ``photometric`` — every frame again: expression, jaw and head pose refined against the image
   (the landmarks and eyelid distances at full weight: the image term does not see the eyes or the mouth's
   inside), lighting and albedo still learning.

Variables: shared ``shape``, ``focal`` (log focal length), ``sh``, ``albedo``; per frame ``expression``,
``jaw_pose``, ``neck_pose``, ``eye_pose``, ``rotation``, ``translation`` (the fields of
:class:`~core.morphable.data.FaceParams`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

SHARED_VARIABLES: tuple[str, ...] = ("shape", "focal", "sh", "albedo")
PER_FRAME_VARIABLES: tuple[str, ...] = ("expression", "jaw_pose", "neck_pose", "eye_pose", "rotation", "translation")
ENERGY_NAMES: tuple[str, ...] = (
    "landmarks", "eyelids", "photometric", "shape_prior", "expression_prior", "pose_prior", "focal_prior",
    "smooth_expression", "smooth_pose", "albedo_smooth",
)


@dataclass(frozen=True)
class StageSpec:
    """One declared optimisation stage.

    Attributes:
        name: shown in progress reports and stored in the checkpoint.
        variables: what is optimised (see the module docstring); everything else is held.
        energies: energy name -> weight of this stage (the energy's own base weight multiplies it).
        iterations: Adam steps per mini-batch per pass.
        lr: variable name -> learning rate (Adam steps are about this size, in the variable's units:
            radians, metres, coefficients, log focal, albedo/SH values).
        frames: ``"keyframes"`` (the clip's keyframes, see :attr:`TrackerConfig.keyframes`) or ``"all"``.
        passes: sweeps over the frames (each sweep starts from the previous one: warm start).
        batch_size: frames per mini-batch (consecutive frames for ``"all"``, so smoothness sees neighbours).
        photometric: this stage renders images (needs the clip's video).
    """

    name: str
    variables: tuple[str, ...]
    energies: dict[str, float]
    iterations: int
    lr: dict[str, float]
    frames: str = "all"
    passes: int = 1
    batch_size: int = 32
    photometric: bool = False

    def __post_init__(self) -> None:
        known = set(SHARED_VARIABLES) | set(PER_FRAME_VARIABLES)
        unknown = [v for v in self.variables if v not in known]
        if unknown:
            raise ValueError(f"stage {self.name!r}: unknown variables {unknown}; known: {sorted(known)}")
        missing_lr = [v for v in self.variables if v not in self.lr]
        if missing_lr:
            raise ValueError(f"stage {self.name!r}: no learning rate for {missing_lr}")
        bad = [e for e in self.energies if e not in ENERGY_NAMES]
        if bad:
            raise ValueError(f"stage {self.name!r}: unknown energies {bad}; known: {list(ENERGY_NAMES)}")
        if self.frames not in ("keyframes", "all"):
            raise ValueError(f"stage {self.name!r}: frames must be 'keyframes' or 'all', got {self.frames!r}")
        if self.iterations < 0 or self.passes < 1 or self.batch_size < 1:
            raise ValueError(f"stage {self.name!r}: iterations >= 0, passes >= 1, batch_size >= 1 needed")

    @property
    def shared_variables(self) -> tuple[str, ...]:
        return tuple(v for v in self.variables if v in SHARED_VARIABLES)

    @property
    def frame_variables(self) -> tuple[str, ...]:
        return tuple(v for v in self.variables if v in PER_FRAME_VARIABLES)


def default_stages() -> tuple[StageSpec, ...]:
    """The default four-stage schedule (see the module docstring); iteration counts are chosen for the
    speed targets of ``bench/tracking.py`` on a 2-core CPU."""
    pose_lr = {"rotation": 0.01, "translation": 0.002}
    face_lr = {"expression": 0.04, "jaw_pose": 0.01, **pose_lr}
    priors = {"shape_prior": 1e-2, "expression_prior": 0.5, "pose_prior": 1e-1}
    smooth = {"smooth_expression": 2.0, "smooth_pose": 10.0}
    return (
        StageSpec("rigid", ("rotation", "translation", "focal"),
                  {"landmarks": 1.0, "focal_prior": 1.0}, iterations=150,
                  lr={**pose_lr, "rotation": 0.02, "focal": 0.01}, frames="keyframes", batch_size=32),
        StageSpec("landmarks", ("shape", "expression", "jaw_pose", "rotation", "translation"),
                  {"landmarks": 1.0, "eyelids": 1.0, **priors, **smooth},
                  iterations=60, lr={**face_lr, "shape": 0.02}, frames="all", passes=3, batch_size=64),
        StageSpec("texture", ("sh", "albedo"), {"photometric": 1.0, "albedo_smooth": 0.1}, iterations=60,
                  lr={"sh": 0.02, "albedo": 0.02}, frames="keyframes", batch_size=16, photometric=True),
        # The photometric energy leaves the eyes and the mouth's inside out, so the landmarks are a blink's and
        # the inner lips' only evidence here: at a tenth of their weight the expression smoothness reopened
        # three-frame blinks half way and damped the lips (real clips: the tracked inner-lip opening followed
        # the detected one at r 0.82 / 0.91, 0.95 / 0.97 at full weight, with a lower photometric error too).
        StageSpec("photometric", ("expression", "jaw_pose", "rotation", "translation", "sh", "albedo"),
                  {"photometric": 1.0, "landmarks": 1.0, "eyelids": 1.0, **priors, "albedo_smooth": 0.1,
                   **smooth},
                  iterations=20, lr={**face_lr, "expression": 0.01, "jaw_pose": 0.003, "rotation": 0.002,
                                    "translation": 0.0003, "sh": 0.01, "albedo": 0.01},
                  frames="all", batch_size=16, photometric=True),
    )


@dataclass(frozen=True)
class LandmarkWeights:
    """Per-group weights of the 68 iBUG landmarks in the landmark energy.

    The jaw contour is a silhouette, not fixed points on the face: it slides as the head turns, and
    detectors (MediaPipe most of all) place it loosely, so it counts less. Eyes and lips carry blinks and
    speech and count more."""

    contour: float = 0.3
    brows: float = 0.6
    nose: float = 1.0
    eyes: float = 1.5
    mouth_outer: float = 1.5
    mouth_inner: float = 2.0

    def vector(self) -> list[float]:
        """The 68 weights in landmark order."""
        groups = ((0, 17, self.contour), (17, 27, self.brows), (27, 36, self.nose), (36, 48, self.eyes),
                  (48, 60, self.mouth_outer), (60, 68, self.mouth_inner))
        out = [0.0] * 68
        for start, stop, weight in groups:
            out[start:stop] = [weight] * (stop - start)
        return out


#: Landmark weights for MediaPipe detections on real footage: its mapped jaw contour is the noisiest group.
MEDIAPIPE_LANDMARK_WEIGHTS = LandmarkWeights(contour=0.1, brows=0.5)


@dataclass(frozen=True)
class TrackerConfig:
    """Everything a tracking run depends on (written next to its outputs as ``tracking/config.json``).

    Attributes:
        model: morphable model name for :func:`core.morphable.load_model` (``procedural``, ``flame``, ``ict``).
        model_path: the user's model file/folder for FLAME/ICT (``None``: default locations).
        model_resolution: procedural head resolution (``default`` or ``small`` for fast tests).
        n_shape: identity coefficients fitted (``None``: all the model has).
        n_expr: expression coefficients fitted (``None``: all).
        expression_range: ``"auto"`` (``[0, 1]`` for models whose expressions are one-sided blendshape
            weights: procedural, ICT; unbounded for FLAME), ``None`` or ``(low, high)``; coefficients are
            projected into it after every step.
        stages: the schedule (see :func:`default_stages`).
        iteration_scale: multiplies every stage's iteration count (0.25 for a quick look, tests use less).
        keyframes: frames used by keyframe stages, spread evenly over the usable frames.
        focal_mm: initial 35 mm-equivalent focal length of the full frame (50 mm: a normal lens); the
            rigid stage refines it.
        photometric_size: side of the renders compared with the frames in the photometric stages
            (the crop is resized to it; 128 keeps the stage within ~1.5 s per frame on a CPU).
        albedo_size: side of the learned albedo texture.
        landmark_weights: per-group landmark weights (``None``: :class:`LandmarkWeights` for clean
            landmarks, :data:`MEDIAPIPE_LANDMARK_WEIGHTS` for MediaPipe tracks).
        landmark_huber_px: residuals above this many crop pixels count linearly (robust to outliers).
        landmark_base_weight: base weight of the landmark energy (photometric stages balance against it).
        interpolated_weight: landmark weight of frames whose landmarks were interpolated over a short gap.
        translation_scale: translation differences are multiplied by this (1/m) in the smoothness energy,
            so a 1 mm step weighs like a 0.02 rad rotation step.
        jaw_prior_weights: weights of the jaw pose's (x = opening, y, z) components in the pose prior.
        flag_rmse_factor, flag_rmse_min_px: a frame is flagged when its landmark RMSE exceeds both this
            factor times the clip's median and this many crop pixels.
        checkpoint_every_s: write ``tracking/state.pt`` at least this often within long stages.
        overlay: write ``tracking/overlay.mp4``.
        overlay_scale: the overlay video is the crop enlarged by this factor (wireframes need pixels).
        keep_cache: keep the decoded crop frames (``tracking/cache/``) after a successful run.
        share_identity: reuse the shape, lighting and albedo of the actor's already-tracked clips (the
            shape is then held; READ: fixed per actor).
        cpu_threads: torch intra-op threads while tracking on the CPU (``None``: leave torch's setting). The
            tracker's tensors are small: on the 2-core development machine a second thread gained nothing
            when idle and made the stages 6-7x slower when another process held the other core (bench).
    """

    model: str = "procedural"
    model_path: str | None = None
    model_resolution: str = "default"
    n_shape: int | None = None
    n_expr: int | None = None
    expression_range: Any = "auto"
    stages: tuple[StageSpec, ...] = field(default_factory=default_stages)
    iteration_scale: float = 1.0
    keyframes: int = 16
    focal_mm: float = 50.0
    photometric_size: int = 128
    albedo_size: int = 128
    landmark_weights: LandmarkWeights | None = None
    landmark_huber_px: float = 4.0
    landmark_base_weight: float = 1.0
    interpolated_weight: float = 0.5
    translation_scale: float = 20.0
    jaw_prior_weights: tuple[float, float, float] = (0.2, 10.0, 10.0)
    flag_rmse_factor: float = 3.0
    flag_rmse_min_px: float = 4.0
    checkpoint_every_s: float = 30.0
    overlay: bool = True
    overlay_scale: int = 2
    keep_cache: bool = False
    share_identity: bool = True
    cpu_threads: int | None = 1

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        if self.iteration_scale < 0:
            raise ValueError("iteration_scale must be >= 0")
        if self.keyframes < 1:
            raise ValueError("keyframes must be >= 1")

    def scaled(self, iteration_scale: float) -> TrackerConfig:
        return replace(self, iteration_scale=iteration_scale)

    def iterations(self, stage: StageSpec) -> int:
        """A stage's iterations per batch after :attr:`iteration_scale` (at least 1 unless 0 was asked)."""
        if stage.iterations == 0 or self.iteration_scale == 0:
            return 0
        return max(1, round(stage.iterations * self.iteration_scale))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["stages"] = [asdict(s) for s in self.stages]
        return out

    def fingerprint(self) -> str:
        """A hash of the settings that change results (a checkpoint from other settings is not resumed)."""
        data = self.to_json()
        for key in ("checkpoint_every_s", "overlay", "overlay_scale", "keep_cache", "cpu_threads"):
            data.pop(key, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrackerConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "stages" in kwargs:
            kwargs["stages"] = tuple(StageSpec(**{**s, "variables": tuple(s["variables"])})
                                     for s in kwargs["stages"])
        if kwargs.get("landmark_weights") is not None:
            kwargs["landmark_weights"] = LandmarkWeights(**kwargs["landmark_weights"])
        if "jaw_prior_weights" in kwargs:
            kwargs["jaw_prior_weights"] = tuple(kwargs["jaw_prior_weights"])
        if isinstance(kwargs.get("expression_range"), list):
            kwargs["expression_range"] = tuple(kwargs["expression_range"])
        return cls(**kwargs)
