"""Morphable head models (procedural, FLAME, ICT FaceKit) behind one FLAME-style interface.

``load_model(name, path)`` returns a :class:`MorphableModel` (a torch module); its ``forward`` maps
:class:`FaceParams` to :class:`FaceOutput` (vertices, 68 landmarks, joints). Data contracts are in
:mod:`core.morphable.data`, skinning in :mod:`core.morphable.lbs`.
"""

from core.morphable.data import (
    JOINT_NAMES,
    PROCEDURAL_EXPRESSIONS,
    REGION_NAMES,
    FaceOutput,
    FaceParams,
    ModelData,
)
from core.morphable.lbs import axis_angle_to_matrix, batch_rigid_transform, lbs, linear_blend_skinning
from core.morphable.model import MorphableModel
from core.morphable.registry import MODEL_NAMES, available_models, load_model, load_model_data

__all__ = [
    "JOINT_NAMES", "MODEL_NAMES", "PROCEDURAL_EXPRESSIONS", "REGION_NAMES", "FaceOutput", "FaceParams",
    "ModelData", "MorphableModel", "available_models", "axis_angle_to_matrix", "batch_rigid_transform",
    "lbs", "linear_blend_skinning", "load_model", "load_model_data",
]
