"""Geometry helpers of the tracker: exact fast landmarks, similarity alignment, jaw opening, placement."""

from __future__ import annotations

import math

import pytest
import torch

from core.morphable.lbs import axis_angle_to_matrix
from core.tracking.geometry import (
    LandmarkModel,
    aligned_vertex_error,
    clip_camera,
    initial_placement,
    jaw_opening,
    umeyama,
)


def _random_params(model, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    p = model.zero_params(batch)
    for name, tensor in p.tensors().items():
        scale = {"shape": 1.0, "expression": 0.5, "translation": 0.02}.get(name, 0.15)
        tensor.copy_(torch.randn(tensor.shape, generator=g) * scale)
    return p


def test_landmark_model_equals_full_forward(small_model) -> None:
    params = _random_params(small_model, 6)
    fast = LandmarkModel(small_model)(params)
    full = small_model(params).landmarks
    assert torch.allclose(fast, full, atol=1e-5)


def test_landmark_model_gradients_match_full_forward(small_model) -> None:
    params = _random_params(small_model, 3, seed=1)
    grads = []
    for fn in (lambda p: LandmarkModel(small_model)(p), lambda p: small_model(p).landmarks):
        p = params.map(lambda t: t.clone().requires_grad_(True))
        (fn(p) ** 2).sum().backward()
        grads.append(torch.cat([t.grad.reshape(-1) for t in p.tensors().values()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-4)


def test_umeyama_recovers_a_similarity() -> None:
    g = torch.Generator().manual_seed(2)
    src = torch.randn(2, 50, 3, generator=g, dtype=torch.float64)
    R = axis_angle_to_matrix(torch.tensor([[0.3, -0.2, 0.5], [0.0, 1.0, 0.1]], dtype=torch.float64))
    scale = torch.tensor([1.7, 0.6], dtype=torch.float64)
    t = torch.tensor([[0.1, 0.2, -0.3], [1.0, 0.0, 2.0]], dtype=torch.float64)
    dst = scale[:, None, None] * src @ R.transpose(1, 2) + t[:, None]
    s_est, R_est, t_est = umeyama(src, dst)
    assert torch.allclose(s_est, scale) and torch.allclose(R_est, R, atol=1e-10)
    assert torch.allclose(t_est, t, atol=1e-10)
    assert float(aligned_vertex_error(src, dst).max()) < 1e-9
    noisy = dst + 0.01 * torch.randn(dst.shape, generator=g, dtype=torch.float64)
    assert 0.005 < float(aligned_vertex_error(src, noisy).mean()) < 0.02


def test_jaw_opening_measures_the_chin_rotation(small_model) -> None:
    p = small_model.zero_params(4)
    p.jaw_pose[1, 0] = 0.2
    p.expression[2, small_model.expression_index("mouth_open")] = 1.0
    p.jaw_pose[3, 0] = 0.2
    p.rotation[3] = torch.tensor([0.3, -0.4, 0.1])  # the head's own frame: global pose does not count
    p.translation[3] = torch.tensor([0.05, 0.0, -0.1])
    angle = jaw_opening(small_model, p)
    assert abs(float(angle[0])) < 1e-5
    assert float(angle[1]) == pytest.approx(0.2, abs=0.02)
    assert float(angle[2]) > 0.03  # the mouth_open blendshape turns the jaw too
    assert float(angle[3]) == pytest.approx(float(angle[1]), abs=1e-4)


def test_initial_placement_finds_depth_and_offset(small_model) -> None:
    p = small_model.zero_params(2)
    p.translation[0] = torch.tensor([0.01, -0.02, 0.0])
    p.translation[1] = torch.tensor([-0.015, 0.01, 0.0])
    camera = clip_camera(torch.tensor(math.log(400.0)), distance=0.6, size=256, batch=2)
    xy, _ = camera.project(small_model(p).landmarks)
    lmk0 = small_model(small_model.zero_params(1)).landmarks[0]
    distance, translation = initial_placement(lmk0, xy, torch.ones(2, 68), 400.0, 256)
    assert distance == pytest.approx(0.6, rel=0.05)
    assert torch.allclose(translation[:, :2], p.translation[:, :2], atol=3e-3)
