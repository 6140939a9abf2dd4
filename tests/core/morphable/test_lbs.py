"""Rotations, forward kinematics and skinning: exact hand-computed cases, gradients, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.morphable.lbs import (
    axis_angle_to_matrix,
    batch_rigid_transform,
    blend_shapes,
    lbs,
    linear_blend_skinning,
    matrix_to_axis_angle,
    pose_feature,
    skew,
)

F64 = torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_axis_angle_matches_scipy(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(size=(50, 3)) * 1.5, rng.normal(size=(10, 3)) * 1e-3,
                              rng.normal(size=(10, 3)) * 1e-6, np.zeros((1, 3))])
    expected = Rotation.from_rotvec(vectors).as_matrix()
    got = axis_angle_to_matrix(torch.tensor(vectors, dtype=dtype)).double().numpy()
    tolerance = 1e-6 if dtype == torch.float32 else 1e-13
    np.testing.assert_allclose(got, expected, atol=tolerance)


def test_quarter_turn_about_z_maps_x_to_y() -> None:
    rotation = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=F64))
    x_axis = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    np.testing.assert_allclose(rotation @ x_axis, [0.0, 1.0, 0.0], atol=1e-15)


def test_rotation_is_continuous_across_the_series_threshold() -> None:
    # Just below and above θ² = 1e-4 (θ = 0.01) the two branches must agree with the exact value.
    axis = torch.tensor([0.3, -0.5, 0.8], dtype=F64)
    axis = axis / axis.norm()
    for theta in (0.01 * (1 - 1e-9), 0.01 * (1 + 1e-9)):
        got = axis_angle_to_matrix(theta * axis).numpy()
        np.testing.assert_allclose(got, Rotation.from_rotvec((theta * axis).numpy()).as_matrix(), atol=1e-16)


def test_gradient_at_zero_is_finite_and_exact() -> None:
    zero = torch.zeros(3, dtype=F64, requires_grad=True)
    jacobian = torch.autograd.functional.jacobian(axis_angle_to_matrix, zero)  # (3, 3, 3)
    assert torch.isfinite(jacobian).all()
    for i in range(3):
        np.testing.assert_allclose(jacobian[..., i], skew(torch.eye(3, dtype=F64)[i]), atol=1e-15)
    for dtype in (torch.float32, torch.float64):
        z = torch.zeros(4, 3, dtype=dtype, requires_grad=True)
        axis_angle_to_matrix(z).square().sum().backward()
        assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("scale", [0.0, 1e-4, 0.00999, 0.01001, 1.0, 3.0])
def test_axis_angle_gradcheck(scale: float) -> None:
    rng = np.random.default_rng(1)
    vector = torch.tensor(rng.normal(size=(2, 3)) / math.sqrt(3) * scale, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (vector,))


def test_matrix_to_axis_angle_round_trip() -> None:
    rng = np.random.default_rng(2)
    axes = rng.normal(size=(40, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0.0, 3.0, 36), [0.0, 1e-8, 1e-4, 2.9]])
    vectors = torch.tensor(axes * angles[:, None], dtype=F64)
    np.testing.assert_allclose(matrix_to_axis_angle(axis_angle_to_matrix(vectors)), vectors, atol=1e-9)


def _rz(angle: float) -> torch.Tensor:
    return axis_angle_to_matrix(torch.tensor([0.0, 0.0, angle], dtype=F64))


def test_two_joint_chain_by_hand() -> None:
    """Root at the origin, child at (1, 0, 0); both turn 90° about z.

    The child's world frame is a 180° turn located at R0 (1, 0, 0) = (0, 1, 0). A vertex at (2, 0, 0)
    on the child goes to (0, 1, 0) + Rz(180°) (1, 0, 0) = (-1, 1, 0); one at (0.5, 0, 0) on the root
    goes to (0, 0.5, 0); one split 50/50 is the average of its two rigid images: (0, 2, 0) and (-1, 1, 0).
    """
    rotations = torch.stack([_rz(math.pi / 2), _rz(math.pi / 2)])[None]
    joints = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=F64)
    posed, relative = batch_rigid_transform(rotations, joints, [-1, 0])
    np.testing.assert_allclose(posed[0], [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-15)
    vertices = torch.tensor([[[2.0, 0.0, 0.0], [0.5, 0.0, 0.0], [2.0, 0.0, 0.0]]], dtype=F64)
    weights = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], dtype=F64)
    skinned = linear_blend_skinning(vertices, weights, relative)
    np.testing.assert_allclose(skinned[0], [[-1.0, 1.0, 0.0], [0.0, 0.5, 0.0], [-0.5, 1.5, 0.0]], atol=1e-15)
    # Relative transforms leave a joint's own rest position at its posed position.
    rest_h = torch.cat([joints, torch.ones(1, 2, 1, dtype=F64)], -1)
    np.testing.assert_allclose((relative @ rest_h[..., None])[0, :, :3, 0], posed[0], atol=1e-15)


def test_identity_pose_skins_to_rest() -> None:
    rng = np.random.default_rng(3)
    joints = torch.tensor(rng.normal(size=(2, 5, 3)), dtype=F64)
    rotations = torch.eye(3, dtype=F64).expand(2, 5, 3, 3)
    posed, relative = batch_rigid_transform(rotations, joints, [-1, 0, 1, 1, 1])
    np.testing.assert_allclose(posed, joints, atol=1e-15)
    vertices = torch.tensor(rng.normal(size=(2, 7, 3)), dtype=F64)
    weights = torch.softmax(torch.tensor(rng.normal(size=(7, 5)), dtype=F64), 1)
    np.testing.assert_allclose(linear_blend_skinning(vertices, weights, relative), vertices, atol=1e-14)


def test_bad_parents_are_refused() -> None:
    rotations = torch.eye(3).expand(1, 3, 3, 3)
    joints = torch.zeros(1, 3, 3)
    with pytest.raises(ValueError, match="parents\\[0\\] must be -1"):
        batch_rigid_transform(rotations, joints, [0, 0, 1])
    with pytest.raises(ValueError, match="precede"):
        batch_rigid_transform(rotations, joints, [-1, 2, 0])
    with pytest.raises(ValueError, match="entries"):
        batch_rigid_transform(rotations, joints, [-1, 0])


def _tiny(dtype: torch.dtype = F64, seed: int = 4) -> dict[str, torch.Tensor]:
    """A 6-vertex, 5-joint model (FLAME's tree) with every array random."""
    rng = np.random.default_rng(seed)

    def t(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.tensor(rng.normal(size=shape) * scale, dtype=dtype)

    regressor = torch.softmax(t(5, 6), 1)
    return {
        "v_template": t(6, 3), "shapedirs": t(6, 3, 3, scale=0.1), "exprdirs": t(6, 3, 2, scale=0.1),
        "joint_regressor": regressor, "lbs_weights": torch.softmax(t(6, 5), 1),
        "posedirs": t(6, 3, 36, scale=0.05),
    }


def test_lbs_pipeline_matches_a_direct_computation() -> None:
    model = _tiny()
    rng = np.random.default_rng(5)
    shape = torch.tensor(rng.normal(size=(2, 3)), dtype=F64)
    expression = torch.tensor(rng.normal(size=(2, 2)), dtype=F64)
    pose = torch.tensor(rng.normal(size=(2, 5, 3)) * 0.4, dtype=F64)
    translation = torch.tensor(rng.normal(size=(2, 3)), dtype=F64)
    out = lbs(shape, expression, pose, parents=[-1, 0, 1, 1, 1], translation=translation, **model)
    # Direct, loop-based reference (numpy, per frame/joint/vertex).
    parents = [-1, 0, 1, 1, 1]
    for b in range(2):
        shaped = (model["v_template"] + (model["shapedirs"] * shape[b]).sum(-1)
                  + (model["exprdirs"] * expression[b]).sum(-1)).numpy()
        joints = model["joint_regressor"].numpy() @ shaped
        rots = [Rotation.from_rotvec(pose[b, j].numpy()).as_matrix() for j in range(5)]
        feature = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, 5)])
        shaped = shaped + model["posedirs"].numpy() @ feature
        world = []
        for j in range(5):
            local = np.eye(4)
            local[:3, :3] = rots[j]
            local[:3, 3] = joints[j] - (joints[parents[j]] if j else 0.0)
            world.append(local if j == 0 else world[parents[j]] @ local)
        expected = np.zeros((6, 3))
        for v in range(6):
            for j in range(5):
                point = world[j] @ np.append(shaped[v] - joints[j], 1.0)
                expected[v] += model["lbs_weights"][v, j].item() * point[:3]
        np.testing.assert_allclose(out.vertices[b], expected + translation[b].numpy(), atol=1e-12)
        expected_joints = np.stack([w[:3, 3] for w in world]) + translation[b].numpy()
        np.testing.assert_allclose(out.joints[b], expected_joints, atol=1e-12)
        np.testing.assert_allclose(out.world_transforms[b, :, :3, :3], np.stack([w[:3, :3] for w in world]),
                                   atol=1e-12)
    np.testing.assert_allclose(out.world_transforms[..., :3, 3], out.joints, atol=1e-15)


def test_zero_parameters_give_the_template_and_correctives_vanish() -> None:
    model = _tiny()
    zeros = torch.zeros(3, 5, 3, dtype=F64)
    out = lbs(torch.zeros(3, 3, dtype=F64), torch.zeros(3, 2, dtype=F64), zeros, parents=[-1, 0, 1, 1, 1],
              **model)
    np.testing.assert_allclose(out.vertices, model["v_template"].expand(3, -1, -1), atol=1e-15)
    assert pose_feature(axis_angle_to_matrix(zeros)).abs().max() == 0.0


def test_fewer_coefficients_equal_zero_padding_and_more_are_refused() -> None:
    dirs = _tiny()["shapedirs"]
    coeffs = torch.tensor([[0.3, -1.2]], dtype=F64)
    padded = torch.cat([coeffs, torch.zeros(1, 1, dtype=F64)], 1)
    np.testing.assert_allclose(blend_shapes(coeffs, dirs), blend_shapes(padded, dirs), atol=1e-15)
    assert blend_shapes(torch.zeros(1, 0, dtype=F64), dirs).shape == (1, 6, 3)
    with pytest.raises(ValueError, match="only 3 directions"):
        blend_shapes(torch.zeros(1, 4, dtype=F64), dirs)


def test_gradients_reach_every_input() -> None:
    """float64 gradcheck through the whole pipeline w.r.t. coefficients, poses, translation, and the
    model arrays (template, bases, skinning weights)."""
    model = _tiny()
    rng = np.random.default_rng(6)
    inputs = {
        "shape": torch.tensor(rng.normal(size=(2, 3)), dtype=F64),
        "expression": torch.tensor(rng.normal(size=(2, 2)), dtype=F64),
        "pose": torch.tensor(rng.normal(size=(2, 5, 3)) * 0.3, dtype=F64),
        "translation": torch.tensor(rng.normal(size=(2, 3)), dtype=F64),
        "v_template": model["v_template"], "shapedirs": model["shapedirs"],
        "lbs_weights": model["lbs_weights"], "posedirs": model["posedirs"],
    }
    names = list(inputs)
    tensors = tuple(inputs[n].clone().requires_grad_(True) for n in names)

    def run(*args: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(names, args, strict=True))
        out = lbs(kwargs["shape"], kwargs["expression"], kwargs["pose"], kwargs["v_template"],
                  kwargs["shapedirs"], model["exprdirs"], model["joint_regressor"], [-1, 0, 1, 1, 1],
                  kwargs["lbs_weights"], posedirs=kwargs["posedirs"], translation=kwargs["translation"])
        return torch.cat([out.vertices.reshape(-1), out.joints.reshape(-1)])

    # Exhaustive finite differences on the per-frame parameters; random projections (fast mode) on the
    # large model arrays keep the test quick.
    n_params = 4
    frozen = tensors[n_params:]
    assert torch.autograd.gradcheck(lambda *p: run(*p, *frozen), tensors[:n_params])
    assert torch.autograd.gradcheck(run, tensors, fast_mode=True)
    # Each input receives a non-zero gradient (the pose correctives and skinning are really used).
    run(*tensors).square().sum().backward()
    for name, tensor in zip(names, tensors, strict=True):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0, name


def test_float32_agrees_with_float64() -> None:
    m64 = _tiny(F64)
    m32 = {k: v.float() for k, v in m64.items()}
    rng = np.random.default_rng(7)
    pose = rng.normal(size=(3, 5, 3)) * 0.5
    shape = rng.normal(size=(3, 3))
    expr = rng.normal(size=(3, 2))
    out64 = lbs(torch.tensor(shape), torch.tensor(expr), torch.tensor(pose), parents=[-1, 0, 1, 1, 1], **m64)
    out32 = lbs(torch.tensor(shape, dtype=torch.float32), torch.tensor(expr, dtype=torch.float32),
                torch.tensor(pose, dtype=torch.float32), parents=[-1, 0, 1, 1, 1], **m32)
    assert out32.vertices.dtype == torch.float32
    np.testing.assert_allclose(out32.vertices.double(), out64.vertices, atol=1e-5)


def test_shape_batch_of_one_broadcasts() -> None:
    model = _tiny()
    shape = torch.tensor([[0.5, -0.2, 0.1]], dtype=F64)
    pose = torch.zeros(4, 15, dtype=F64)
    out = lbs(shape, torch.zeros(4, 2, dtype=F64), pose, parents=[-1, 0, 1, 1, 1], **model)
    full = lbs(shape.expand(4, -1), torch.zeros(4, 2, dtype=F64), pose, parents=[-1, 0, 1, 1, 1], **model)
    assert out.vertices.shape == (4, 6, 3)
    np.testing.assert_allclose(out.vertices, full.vertices, atol=1e-15)
