"""Differentiable linear blend skinning for FLAME-style morphable models.

Everything is vectorised over a batch of B frames, works in float32 and float64, and is differentiable
with respect to every coefficient, pose and (if they require grad) the model arrays themselves.

Pipeline of :func:`lbs` (the FLAME / SMPL formulation):

1. ``shaped = template + shapedirs · β + exprdirs · ψ``
2. ``joints = joint_regressor · shaped`` (rest-pose joint positions follow identity and expression)
3. optional pose correctives: ``shaped += posedirs · vec(R_j - I)`` over the non-root joints
4. forward kinematics down the kinematic tree, then linear blend skinning
5. translation added last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Below this squared angle the rotation coefficients use their Taylor series: the closed forms divide
# by θ² and lose precision (and give NaN gradients) at zero. With terms up to θ⁴ the truncation error at
# the threshold is ~θ⁶/5040 ≈ 2e-16, below float64 resolution.
_SMALL_ANGLE_SQ = 1e-4


def skew(vectors: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices: (..., 3) -> (..., 3, 3) with ``skew(a) @ b == a × b``."""
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (
        torch.stack([zero, -z, y], -1),
        torch.stack([z, zero, -x], -1),
        torch.stack([-y, x, zero], -1),
    )
    return torch.stack(rows, -2)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors (..., 3) -> rotation matrices (..., 3, 3).

    Written as ``R = I + a(θ) K + b(θ) K²`` with the *unnormalised* cross matrix ``K = skew(r)``,
    ``a = sin θ / θ`` and ``b = (1 - cos θ) / θ² = 2 sin²(θ/2) / θ²`` (the half-angle form avoids the
    cancellation of ``1 - cos θ`` in float32). Near θ = 0 both use Taylor series, so the value and the
    gradient are exact and finite at zero (``dR/dr_i = skew(e_i)`` there).
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle vectors must end in 3 components, got shape {tuple(axis_angle.shape)}")
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    # Double-where: the closed form is evaluated on a safe dummy angle where it would be singular, so its
    # (discarded) gradient there is finite and cannot poison the selected branch with NaN.
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = torch.sqrt(safe_sq)
    half_sin = torch.sin(0.5 * theta)
    a_closed = torch.sin(theta) / theta
    b_closed = 2.0 * half_sin * half_sin / safe_sq
    a_series = 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0
    b_series = 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0
    a = torch.where(small, a_series, a_closed)[..., None, None]
    b = torch.where(small, b_series, b_closed)[..., None, None]
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`axis_angle_to_matrix` for angles in [0, π): (..., 3, 3) -> (..., 3).

    Used to convert fitted rotations back into pose parameters; not differentiated at θ = π.
    """
    trace = matrix[..., 0, 0] + matrix[..., 1, 1] + matrix[..., 2, 2]
    cos = ((trace - 1.0) * 0.5).clamp(-1.0, 1.0)
    vee = torch.stack([matrix[..., 2, 1] - matrix[..., 1, 2], matrix[..., 0, 2] - matrix[..., 2, 0],
                       matrix[..., 1, 0] - matrix[..., 0, 1]], -1)  # = 2 sin θ · axis
    sin = 0.5 * vee.norm(dim=-1)
    theta = torch.atan2(sin, cos)
    small = sin < 1e-6
    factor = torch.where(small, 0.5 + theta * theta / 12.0, theta / (2.0 * torch.where(small, 1.0, sin)))
    return vee * factor[..., None]


def _check_parents(parents: torch.Tensor | np.ndarray | list[int], n_joints: int) -> list[int]:
    order = [int(p) for p in (parents.tolist() if hasattr(parents, "tolist") else parents)]
    if len(order) != n_joints:
        raise ValueError(f"parents has {len(order)} entries for {n_joints} joints")
    if order[0] != -1:
        raise ValueError("parents[0] must be -1 (the root joint)")
    for j, p in enumerate(order[1:], start=1):
        if not 0 <= p < j:
            raise ValueError(f"joint {j} has parent {p}: parents must precede their children")
    return order


def batch_rigid_transform(rot_mats: torch.Tensor, joints: torch.Tensor,
                          parents: torch.Tensor | np.ndarray | list[int]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics down a kinematic tree.

    Args:
        rot_mats: (B, J, 3, 3) local rotation of each joint about its own rest position.
        joints: (B, J, 3) rest-pose joint positions.
        parents: (J,) parent index of each joint, ``parents[0] == -1``, parents before children.

    Returns:
        posed_joints: (B, J, 3) joint positions after posing.
        relative_transforms: (B, J, 4, 4) transforms that map a *rest-pose* point rigidly attached to
            joint j to its posed position (world transform composed with the inverse rest transform);
            these are what skinning blends.
    """
    batch, n_joints = joints.shape[:2]
    order = _check_parents(parents, n_joints)
    if rot_mats.shape != (batch, n_joints, 3, 3):
        raise ValueError(f"rot_mats must be {(batch, n_joints, 3, 3)}, got {tuple(rot_mats.shape)}")
    parent_index = torch.tensor([max(p, 0) for p in order], device=joints.device)
    rel_joints = joints - joints[:, parent_index] * (torch.arange(n_joints, device=joints.device) > 0)[
        None, :, None].to(joints.dtype)
    # Joint j's frame relative to its parent's: rotate about the joint, offset by the bone vector.
    bottom = torch.zeros(batch, n_joints, 1, 4, dtype=joints.dtype, device=joints.device)
    bottom[..., 0, 3] = 1.0
    local = torch.cat([torch.cat([rot_mats, rel_joints[..., None]], -1), bottom], -2)  # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, n_joints):  # J is tiny (5 for FLAME); the work per step is batched
        chain.append(chain[order[j]] @ local[:, j])
    world = torch.stack(chain, 1)  # (B, J, 4, 4)
    posed_joints = world[..., :3, 3]
    # relative = world · [I | -j_rest]: only the translation changes, t - R j_rest.
    offset = posed_joints - (world[..., :3, :3] @ joints[..., None])[..., 0]
    relative = torch.cat([torch.cat([world[..., :3, :3], offset[..., None]], -1), bottom], -2)
    return posed_joints, relative


def linear_blend_skinning(vertices: torch.Tensor, weights: torch.Tensor,
                          transforms: torch.Tensor) -> torch.Tensor:
    """Blend per-joint rigid transforms per vertex and apply them.

    Args:
        vertices: (B, V, 3) rest-pose vertices (after blendshapes and pose correctives).
        weights: (V, J) skinning weights (rows sum to 1) or (B, V, J).
        transforms: (B, J, 4, 4) relative joint transforms from :func:`batch_rigid_transform`.

    Returns:
        (B, V, 3) skinned vertices.
    """
    batch, n_joints = transforms.shape[:2]
    flat = transforms[..., :3, :].reshape(batch, n_joints, 12)
    if weights.dim() == 2:
        blended = torch.matmul(weights, flat)  # (B, V, 12)
    else:
        blended = torch.bmm(weights, flat)
    blended = blended.view(batch, -1, 3, 4)
    return (blended[..., :3] @ vertices[..., None])[..., 0] + blended[..., 3]


def blend_shapes(coeffs: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Linear blendshape offsets: (B, K) coefficients · (V, 3, K') directions -> (B, V, 3).

    Fewer coefficients than directions (K < K') use the first K directions, which equals zero-padding the
    coefficients; more coefficients than directions is an error.
    """
    k = coeffs.shape[-1]
    if k > dirs.shape[-1]:
        raise ValueError(f"{k} coefficients given but the basis has only {dirs.shape[-1]} directions")
    if k == 0:
        return torch.zeros(coeffs.shape[0], dirs.shape[0], 3, dtype=dirs.dtype, device=dirs.device)
    n_vertices = dirs.shape[0]
    basis = dirs[..., :k].reshape(n_vertices * 3, k)
    return (coeffs @ basis.T).view(coeffs.shape[0], n_vertices, 3)


def pose_feature(rot_mats: torch.Tensor) -> torch.Tensor:
    """FLAME pose-corrective feature: (B, J, 3, 3) -> (B, 9 (J - 1)), ``vec(R_j - I)`` of non-root joints."""
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


@dataclass
class LBSResult:
    """Output of :func:`lbs`.

    Attributes:
        vertices: (B, V, 3) posed vertices (translation included).
        joints: (B, J, 3) posed joint positions (translation included).
        relative_transforms: (B, J, 4, 4) skinning transforms (rest point -> posed point, no translation).
        world_transforms: (B, J, 4, 4) joint frames in world space: chained rotation, posed joint
            position plus translation (what an attached object such as an eyeball follows).
        rest_joints: (B, J, 3) joint positions of the shaped, unposed head.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    relative_transforms: torch.Tensor
    world_transforms: torch.Tensor
    rest_joints: torch.Tensor


def lbs(shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor, v_template: torch.Tensor,
        shapedirs: torch.Tensor, exprdirs: torch.Tensor, joint_regressor: torch.Tensor,
        parents: torch.Tensor | np.ndarray | list[int], lbs_weights: torch.Tensor,
        posedirs: torch.Tensor | None = None, translation: torch.Tensor | None = None) -> LBSResult:
    """The full FLAME-style pipeline (see the module docstring).

    Args:
        shape: (B, S') identity coefficients, S' <= S (missing ones count as zero); (1, S') broadcasts.
        expression: (B, E') expression coefficients, E' <= E; (1, E') broadcasts.
        pose: (B, J, 3) or (B, 3 J) axis-angles, in joint order (FLAME: global rotation as the root, neck,
            jaw, left eye, right eye).
        v_template: (V, 3) mean head.
        shapedirs: (V, 3, S) identity basis.
        exprdirs: (V, 3, E) expression basis.
        joint_regressor: (J, V).
        parents: (J,) kinematic tree.
        lbs_weights: (V, J).
        posedirs: optional (V, 3, 9 (J - 1)) pose correctives.
        translation: optional (B, 3), added after skinning.

    Returns:
        :class:`LBSResult`.
    """
    batch = pose.shape[0]
    n_joints = joint_regressor.shape[0]
    pose = pose.reshape(batch, n_joints, 3)
    if shape.shape[0] not in (1, batch) or expression.shape[0] not in (1, batch):
        raise ValueError(f"shape/expression batch sizes ({shape.shape[0]}, {expression.shape[0]}) "
                         f"must be 1 or the pose batch {batch}")
    offsets = blend_shapes(shape, shapedirs) + blend_shapes(expression, exprdirs)
    shaped = (v_template + offsets).expand(batch, -1, -1)
    rest_joints = torch.einsum("jv,bvc->bjc", joint_regressor, shaped)
    rot_mats = axis_angle_to_matrix(pose)  # (B, J, 3, 3)
    if posedirs is not None:
        feature = pose_feature(rot_mats)
        n_vertices = posedirs.shape[0]
        correctives = (feature @ posedirs.reshape(n_vertices * 3, -1).T).view(batch, n_vertices, 3)
        shaped = shaped + correctives
    posed_joints, relative = batch_rigid_transform(rot_mats, rest_joints, parents)
    vertices = linear_blend_skinning(shaped, lbs_weights, relative)
    if translation is not None:
        vertices = vertices + translation[:, None, :]
        posed_joints = posed_joints + translation[:, None, :]
    # World frame of joint j: its chained rotation, located at its posed position.
    frame = torch.cat([relative[..., :3, :3], posed_joints[..., None]], -1)
    world = torch.cat([frame, relative[..., 3:, :]], -2)
    return LBSResult(vertices, posed_joints, relative, world, rest_joints)
