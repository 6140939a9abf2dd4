"""Rays from the tracked camera into the canonical head space, and the head's bounds there.

Canonical head space is the frame of the face model's neck joint (the head's rigid frame: the global
rotation composed with the neck rotation, origin at the posed neck joint, translation included). A world
point ``x`` is ``R h + t`` for its canonical coordinates ``h``, with ``(R, t)`` from :func:`head_frames`; so a
camera ray ``o + s d`` is the canonical ray ``R^T (o - t) + s R^T d`` with the same parameter ``s`` (R is a
rotation). The head, in any pose, stays put in canonical space; only its expression moves it there.
"""

from __future__ import annotations

import torch

from core.morphable.data import FaceParams
from core.render.camera import PerspectiveCamera

NECK_JOINT = 1  # core.morphable.data.JOINT_NAMES: global, neck, jaw, eye_left, eye_right


def head_frames(model: torch.nn.Module, params: FaceParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The head's rigid frame per frame and its vertices.

    Returns:
        R: (B, 3, 3) canonical -> world rotation.
        t: (B, 3) canonical origin in world space (the posed neck joint).
        vertices: (B, V, 3) the posed mesh in world space.
    """
    out = model(params)
    frame = out.transforms[:, NECK_JOINT]
    return frame[:, :3, :3], frame[:, :3, 3], out.vertices


def to_canonical(points: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) world points -> canonical head coordinates ``R^T (x - t)``."""
    return (points - t[:, None]) @ R


def from_canonical(points: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) canonical head coordinates -> world points ``R h + t`` (the inverse of :func:`to_canonical`)."""
    return points @ R.transpose(1, 2) + t[:, None]


def canonical_landmarks(model: torch.nn.Module, params: FaceParams) -> torch.Tensor:
    """(B, 68, 3) the iBUG-68 landmarks of ``params`` in canonical head space: what the expression, jaw and eyes
    do to them, whatever the head pose."""
    out = model(params)
    frame = out.transforms[:, NECK_JOINT]
    return to_canonical(out.landmarks, frame[:, :3, :3], frame[:, :3, 3])


def canonical_rays(camera: PerspectiveCamera, xy: torch.Tensor, R: torch.Tensor, t: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`PerspectiveCamera.pixel_rays` in canonical head space: (B, N, 3) origins and unit directions."""
    origins, directions = camera.pixel_rays(xy)
    return to_canonical(origins, R, t), directions @ R


def ray_box(origins: torch.Tensor, directions: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where rays cross an axis-aligned box (slab method).

    Args:
        origins, directions: (..., 3).
        lo, hi: (3,) box corners.

    Returns:
        near, far (...) ray parameters (``near >= 0``) and ``hit`` (...) bool (``far > near``).
    """
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0 = (lo - origins) / safe
    t1 = (hi - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far, far > near
