"""Data contracts of the morphable-model package: the arrays a model is built from, its parameters,
and its output. Every model (procedural head, FLAME, ICT FaceKit) is a :class:`ModelData` turned into
buffers by :class:`core.morphable.model.MorphableModel`.

Conventions (all models): metres; the head faces +z, y is up, x is the head's left; joints in the order
of :data:`JOINT_NAMES` (FLAME's order); poses are axis-angle vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

JOINT_NAMES: tuple[str, ...] = ("global", "neck", "jaw", "eye_left", "eye_right")
REGION_NAMES: tuple[str, ...] = ("face", "lips", "mouth_interior", "eyes", "brows")

# The procedural head's expression basis, by name. Visemes and emotions are written in these names
# (the synthetic actor maps them onto whatever model it drives; names missing from a model are skipped).
PROCEDURAL_EXPRESSIONS: tuple[str, ...] = (
    # mouth / visemes
    "mouth_open", "mouth_wide", "mouth_round", "lips_pucker", "lips_funnel", "lips_press",
    "upper_lip_raise", "lower_lip_depress", "lips_stretch", "mouth_left", "mouth_right",
    "lower_lip_roll", "upper_lip_roll", "chin_raise", "jaw_forward",
    # mouth corners
    "smile_left", "smile_right", "frown_left", "frown_right", "dimple_left", "dimple_right",
    # brows
    "brow_up_left", "brow_up_right", "brow_down_left", "brow_down_right", "brow_inner_up",
    # eyes
    "squint_left", "squint_right", "blink_left", "blink_right", "eye_wide_left", "eye_wide_right",
    # cheeks / nose
    "cheek_puff", "cheek_raise_left", "cheek_raise_right", "sneer_left", "sneer_right",
)


@dataclass
class ModelData:
    """Everything that defines a linear morphable model with linear blend skinning.

    Shapes: V vertices, F triangles, S shape modes, E expression modes, J joints, T UV coordinates.

    Attributes:
        name: model name (``"procedural"``, ``"flame"``, ``"ict"``).
        v_template: (V, 3) neutral mean head.
        faces: (F, 3) int64 triangle vertex indices, counter-clockwise seen from outside.
        shapedirs: (V, 3, S) identity blendshapes (offsets per unit coefficient).
        exprdirs: (V, 3, E) expression blendshapes.
        expr_names: E names of the expression modes (``"jaw_open"``, ``"smile"``... or ``"expr_07"``).
        joint_regressor: (J, V) rows summing to 1; joints = joint_regressor @ shaped vertices.
        parents: (J,) int64 kinematic tree, ``parents[0] == -1``.
        lbs_weights: (V, J) skinning weights, rows summing to 1.
        uvs: (T, 2) texture coordinates in [0, 1], v up.
        uv_faces: (F, 3) int64 indices into ``uvs`` (differs from ``faces`` at seams).
        landmark_faces: (68,) int64 triangle of each iBUG-68 landmark.
        landmark_bary: (68, 3) barycentric coordinates of each landmark in its triangle.
        regions: name -> (V,) bool vertex masks; at least :data:`REGION_NAMES`.
        posedirs: optional (V, 3, 9 * (J - 1)) pose-corrective blendshapes (FLAME); ``None`` if absent.
        albedo: optional (H, W, 3) float32 texture in [0, 1] over the UV layout.
        shape_names: optional S names of the shape modes.
        expr_aliases: optional map from a name the model lacks (e.g. a :data:`PROCEDURAL_EXPRESSIONS`
            name) to the model's mode names that realise it (ICT: ``"lips_press"`` ->
            ``("mouthPress_L", "mouthPress_R")``); see ``MorphableModel.expression_indices``.
    """

    name: str
    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    expr_names: list[str]
    joint_regressor: np.ndarray
    parents: np.ndarray
    lbs_weights: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    landmark_faces: np.ndarray
    landmark_bary: np.ndarray
    regions: dict[str, np.ndarray]
    posedirs: np.ndarray | None = None
    albedo: np.ndarray | None = None
    shape_names: list[str] | None = None
    expr_aliases: dict[str, tuple[str, ...]] | None = None

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expr(self) -> int:
        return int(self.exprdirs.shape[2])

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent array."""
        V = self.n_vertices
        J = len(self.parents)
        checks = [
            (self.v_template.shape == (V, 3), "v_template must be (V, 3)"),
            (self.faces.ndim == 2 and self.faces.shape[1] == 3, "faces must be (F, 3)"),
            (int(self.faces.max()) < V and int(self.faces.min()) >= 0, "faces index out of range"),
            (self.shapedirs.shape[:2] == (V, 3), "shapedirs must be (V, 3, S)"),
            (self.exprdirs.shape[:2] == (V, 3), "exprdirs must be (V, 3, E)"),
            (len(self.expr_names) == self.n_expr, "expr_names must have E entries"),
            (self.joint_regressor.shape == (J, V), "joint_regressor must be (J, V)"),
            (self.lbs_weights.shape == (V, J), "lbs_weights must be (V, J)"),
            (np.allclose(self.lbs_weights.sum(1), 1.0, atol=1e-4), "lbs_weights rows must sum to 1"),
            (int(self.parents[0]) == -1, "parents[0] must be -1"),
            (self.uv_faces.shape == self.faces.shape, "uv_faces must match faces"),
            (self.landmark_faces.shape == (68,), "landmark_faces must be (68,)"),
            (self.landmark_bary.shape == (68, 3), "landmark_bary must be (68, 3)"),
            (all(r in self.regions for r in REGION_NAMES), f"regions must include {REGION_NAMES}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"model {self.name!r}: {message}")


def _batch(t: torch.Tensor) -> int:
    return int(t.shape[0])


@dataclass
class FaceParams:
    """Per-frame FLAME-style parameters, batched over B frames (all tensors share device and dtype).

    Attributes:
        shape: (B, S) identity coefficients (shared by a clip, repeated per frame).
        expression: (B, E) expression coefficients.
        jaw_pose: (B, 3) axis-angle of the jaw joint.
        neck_pose: (B, 3) axis-angle of the neck joint.
        eye_pose: (B, 6) axis-angles of the left then right eye.
        rotation: (B, 3) axis-angle of the whole head (root joint).
        translation: (B, 3) metres, added after skinning.
    """

    shape: torch.Tensor
    expression: torch.Tensor
    jaw_pose: torch.Tensor
    neck_pose: torch.Tensor
    eye_pose: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, n_shape: int, n_expr: int, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> FaceParams:
        def z(*s: int) -> torch.Tensor:
            return torch.zeros(*s, device=device, dtype=dtype)

        return cls(z(batch, n_shape), z(batch, n_expr), z(batch, 3), z(batch, 3), z(batch, 6),
                   z(batch, 3), z(batch, 3))

    @property
    def batch_size(self) -> int:
        return _batch(self.expression)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def map(self, fn: object) -> FaceParams:
        """A new FaceParams with ``fn`` applied to every tensor (e.g. ``lambda t: t.detach()``)."""
        return FaceParams(**{k: fn(v) for k, v in self.tensors().items()})  # type: ignore[operator]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> FaceParams:
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> FaceParams:
        return self.map(lambda t: t.detach())

    def __getitem__(self, index: int | slice | torch.Tensor) -> FaceParams:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return self.map(lambda t: t[index])

    @classmethod
    def cat(cls, items: list[FaceParams]) -> FaceParams:
        names = [f.name for f in fields(cls)]
        return cls(**{n: torch.cat([getattr(p, n) for p in items], 0) for n in names})

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.tensors().items()}

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray], device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> FaceParams:
        missing = [f.name for f in fields(cls) if f.name not in arrays]
        if missing:
            raise KeyError(f"face parameters lack {', '.join(missing)}")
        return cls(**{f.name: torch.as_tensor(np.asarray(arrays[f.name]), device=device, dtype=dtype)
                      for f in fields(cls)})

    def save(self, path: str | Path) -> Path:
        """Atomically write an ``.npz`` (readable by :meth:`load`)."""
        from core.workspace import atomic_save_npz

        return atomic_save_npz(path, **self.to_numpy())

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32) -> FaceParams:
        with np.load(path) as data:
            return cls.from_numpy({k: data[k] for k in data.files}, device, dtype)


@dataclass
class FaceOutput:
    """Result of a model's forward pass.

    Attributes:
        vertices: (B, V, 3) posed vertices in world space (metres).
        landmarks: (B, 68, 3) iBUG-68 landmarks on the posed surface.
        joints: (B, J, 3) posed joint positions.
        transforms: (B, J, 4, 4) world transforms of the joints (for attaching eyes, cameras...).
    """

    vertices: torch.Tensor
    landmarks: torch.Tensor
    joints: torch.Tensor
    transforms: torch.Tensor = field(repr=False)
