"""PerspectiveCamera: conventions, projection round trips, rays, derived cameras, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from core.render.camera import PerspectiveCamera, default_head_camera, look_at


def random_camera(batch: int = 3, size: tuple[int, int] = (48, 64), seed: int = 0) -> PerspectiveCamera:
    g = torch.Generator().manual_seed(seed)
    eye = torch.randn(batch, 3, generator=g, dtype=torch.float64)
    eye = eye / eye.norm(dim=-1, keepdim=True) * 0.7
    target = torch.randn(batch, 3, generator=g, dtype=torch.float64) * 0.05
    fx = 50 + 40 * torch.rand(batch, generator=g, dtype=torch.float64)
    return PerspectiveCamera.from_look_at(eye, target, size, fx=fx, fy=fx * 1.1,
                                          cx=torch.full((batch,), 30.0, dtype=torch.float64),
                                          cy=torch.full((batch,), 22.5, dtype=torch.float64))


def test_default_head_camera_sees_the_face_upright() -> None:
    cam = default_head_camera(2, (120, 160))
    assert torch.allclose(cam.center, torch.tensor([[0.0, 0.0, 0.6]] * 2))
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.05, 0.0], [0.0, 0.0, 0.1]]])
    pts = pts.expand(2, -1, -1)
    xy, depth = cam.project(pts)
    assert torch.allclose(xy[:, 0], torch.tensor([80.0, 60.0]))  # the origin lands on the image centre
    assert torch.allclose(depth[:, 0], torch.tensor(0.6))
    assert bool((xy[:, 1, 0] > 80).all())  # the head's left (+x) appears on the image's right
    assert bool((xy[:, 2, 1] < 60).all())  # world up appears up (smaller row)
    assert torch.allclose(depth[:, 3], torch.tensor(0.5))  # the face (+z) is nearer than the centre
    # 50 mm equivalent: fx = 50 / 36 * W.
    assert torch.allclose(cam.fx, torch.tensor(50.0 / 36.0 * 160))
    assert torch.allclose(xy[:, 1, 0] - 80, cam.fx * 0.05 / 0.6)


def test_look_at_returns_a_rotation_that_points_at_the_target() -> None:
    eye = torch.tensor([[0.3, 0.2, 0.5], [-0.4, 0.1, -0.2]], dtype=torch.float64)
    target = torch.tensor([0.01, -0.02, 0.03], dtype=torch.float64)
    R, t = look_at(eye, target)
    identity = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), identity, atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(2, dtype=torch.float64))
    cam_target = (R @ target.view(1, 3, 1)).squeeze(-1) + t
    assert torch.allclose(cam_target[:, :2], torch.zeros(2, 2, dtype=torch.float64), atol=1e-12)
    assert bool((cam_target[:, 2] > 0).all())
    with pytest.raises(ValueError, match="parallel"):
        look_at(torch.tensor([[0.0, 1.0, 0.0]]), torch.zeros(3))


def test_project_unproject_round_trip() -> None:
    cam = random_camera()
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(3, 50, 3, generator=g, dtype=torch.float64) * 0.1
    xy, depth = cam.project(pts)
    assert bool((depth > 0).all())
    assert torch.allclose(cam.unproject(xy, depth), pts, atol=1e-12)
    screen = cam.to_screen(pts)
    assert torch.allclose(screen[..., :2], xy) and torch.allclose(screen[..., 2], depth)
    # Against the intrinsics matrix: K @ x_cam = z * (x_pix, y_pix, 1).
    x_cam = cam.world_to_camera(pts)
    homog = x_cam @ cam.intrinsics().transpose(1, 2)
    assert torch.allclose(homog[..., :2] / homog[..., 2:], xy, atol=1e-10)
    assert torch.allclose(cam.camera_to_world(x_cam), pts, atol=1e-12)


def test_rays_pass_through_projected_points() -> None:
    cam = random_camera(size=(12, 16))
    origins, dirs = cam.rays()
    assert origins.shape == dirs.shape == (3, 12, 16, 3)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(3, 12, 16, dtype=torch.float64))
    assert torch.allclose(origins, cam.center.view(3, 1, 1, 3).expand_as(origins))
    # A point along the ray of pixel (row 5, col 7) projects to that pixel's centre.
    depth_along = torch.tensor([0.3, 0.6, 1.1], dtype=torch.float64)
    pts = origins[:, 5, 7] + dirs[:, 5, 7] * depth_along.unsqueeze(-1)
    xy, _ = cam.project(pts.unsqueeze(1))
    assert torch.allclose(xy[:, 0], torch.tensor([7.5, 5.5], dtype=torch.float64).expand(3, 2), atol=1e-9)
    # Rays at another resolution are the rays of the rescaled camera.
    _, dirs_half = cam.rays(6, 8)
    _, dirs_scaled = cam.scaled(6, 8).rays()
    assert torch.allclose(dirs_half, dirs_scaled)


def test_scaled_and_crop_keep_points_on_the_same_content() -> None:
    cam = random_camera(size=(48, 64))
    pts = torch.randn(3, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.1
    xy, _ = cam.project(pts)
    half, _ = cam.scaled(24, 32).project(pts)
    assert torch.allclose(half, xy * 0.5)
    x0 = torch.tensor([3.0, 10.0, -4.0], dtype=torch.float64)
    cropped = cam.crop(x0, 7.5, 32)
    assert cropped.image_size == (32, 32)
    xy_crop, _ = cropped.project(pts)
    assert torch.allclose(xy_crop, xy - torch.stack([x0, torch.full_like(x0, 7.5)], -1).unsqueeze(1))


def test_focal_length_and_pose_receive_gradients() -> None:
    cam = default_head_camera(1, 64, dtype=torch.float64)
    fx = cam.fx.clone().requires_grad_()
    cam = PerspectiveCamera(fx=fx, fy=fx, cx=cam.cx, cy=cam.cy, R=cam.R, t=cam.t, image_size=cam.image_size)
    pts = torch.tensor([[[0.03, -0.02, 0.05]]], dtype=torch.float64)
    xy, depth = cam.project(pts)
    xy[..., 0].sum().backward()
    x_cam = cam.world_to_camera(pts)
    assert fx.grad is not None
    assert torch.allclose(fx.grad, x_cam[..., 0].squeeze(-1) / depth.squeeze(-1))


def test_batching_helpers() -> None:
    cam = default_head_camera(1, 32)
    many = cam.expand(4)
    assert many.batch_size == 4 and many[2].batch_size == 1
    assert PerspectiveCamera.cat([many, cam]).batch_size == 5
    assert many.to(dtype=torch.float64).dtype == torch.float64
    # A single camera broadcasts over a batch of point sets.
    pts = torch.randn(4, 5, 3) * 0.05
    assert torch.allclose(cam.project(pts)[0], many.project(pts)[0])
    with pytest.raises(ValueError, match="fx"):
        PerspectiveCamera(fx=torch.ones(2), fy=torch.ones(1), cx=torch.ones(1), cy=torch.ones(1),
                          R=torch.eye(3)[None], t=torch.zeros(1, 3), image_size=(4, 4))


def test_field_of_view_matches_focal_equivalent() -> None:
    # 36 mm equivalent at distance d sees exactly the horizontal extent W / fx * d = d.
    cam = default_head_camera(1, (100, 200), focal_mm_equiv=36.0, distance=1.0)
    edge = torch.tensor([[[0.5, 0.0, 0.0]]])  # half width at the target plane
    xy, _ = cam.project(edge)
    assert math.isclose(float(xy[0, 0, 0]), 200.0, rel_tol=1e-6)
