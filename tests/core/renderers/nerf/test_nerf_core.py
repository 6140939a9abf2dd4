"""The NeRF core against slow or analytic references, and a gradient check."""

from __future__ import annotations

import math

import pytest
import torch

from core.morphable.registry import load_model
from core.render.camera import default_head_camera
from core.renderers.nerf.composite import chin_gap_px, fill_holes
from core.renderers.nerf.encodings import (
    FrequencyEncoding,
    HashGridEncoding,
    TriPlaneEncoding,
    bilinear_reference,
)
from core.renderers.nerf.rays import canonical_rays, head_frames, ray_box, to_canonical
from core.renderers.nerf.sampling import OccupancyGrid, intervals, sample_pdf, stratified
from core.renderers.nerf.volume import render_weights, volume_render, volume_render_reference


def test_constant_medium_gives_the_analytic_opacity_and_colour() -> None:
    sigma, t0, t1, n = 7.0, 0.2, 0.5, 64
    t = stratified(torch.tensor([t0]), torch.tensor([t1]), n, jitter=False) - (t1 - t0) / (2 * n)  # bin starts
    deltas = intervals(t, torch.tensor([t1]))
    colour = torch.tensor([0.2, 0.5, 0.9])
    out = volume_render(torch.full((1, n), sigma), colour.expand(1, n, 3), t, deltas)
    expected = 1.0 - math.exp(-sigma * (t1 - t0))
    assert out["acc"].item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(out["rgb"][0], colour * expected, rtol=1e-5)
    # depth of an exponential medium: t0 + 1/sigma - L e^{-sigma L} / (1 - e^{-sigma L}) (analytic), within a bin
    L = t1 - t0
    analytic = t0 + 1 / sigma - L * math.exp(-sigma * L) / (1 - math.exp(-sigma * L))
    assert out["depth"].item() == pytest.approx(analytic, abs=(t1 - t0) / n)


def test_volume_rendering_matches_front_to_back_compositing() -> None:
    torch.manual_seed(0)
    sigma = torch.rand(5, 17, dtype=torch.float64) * 20
    rgb = torch.rand(5, 17, 3, dtype=torch.float64)
    deltas = torch.rand(5, 17, dtype=torch.float64) * 0.05
    t = deltas.cumsum(1)
    out = volume_render(sigma, rgb, t, deltas)
    ref_rgb, ref_acc = volume_render_reference(sigma, rgb, deltas)
    assert torch.allclose(out["rgb"], ref_rgb, atol=1e-10) and torch.allclose(out["acc"], ref_acc, atol=1e-10)
    weights, transmittance = render_weights(sigma, deltas)
    assert torch.allclose(transmittance[:, 0], torch.ones(5, dtype=torch.float64))
    assert (weights >= 0).all() and (out["acc"] <= 1 + 1e-12).all()


def test_volume_rendering_and_encodings_pass_a_gradient_check() -> None:
    torch.manual_seed(1)
    sigma = (torch.rand(3, 6, dtype=torch.float64) * 5).requires_grad_()
    rgb = torch.rand(3, 6, 3, dtype=torch.float64, requires_grad=True)
    deltas = torch.rand(3, 6, dtype=torch.float64) * 0.1
    t = deltas.cumsum(1)
    assert torch.autograd.gradcheck(lambda s, c: volume_render(s, c, t, deltas)["rgb"], (sigma, rgb))
    triplane = TriPlaneEncoding((4, 6), features=2).double()
    x = torch.rand(7, 3, dtype=torch.float64) * 0.9 + 0.05
    assert torch.autograd.gradcheck(lambda p: TriPlaneEncoding.forward(triplane, p), (x.requires_grad_(),))
    grid = HashGridEncoding(3, levels=3, features=2, log2_table=6, base=4, finest=16).double()
    y = torch.rand(5, 3, dtype=torch.float64) * 0.9 + 0.05
    assert torch.autograd.gradcheck(lambda p: grid(p), (y.requires_grad_(),))


@pytest.mark.parametrize("dims", [2, 3])
def test_hash_grid_matches_the_per_point_reference(dims: int) -> None:
    torch.manual_seed(dims)
    grid = HashGridEncoding(dims, levels=4, features=3, log2_table=8, base=4, finest=64)  # dense and hashed levels
    assert grid.dense.any() and not grid.dense.all()
    with torch.no_grad():
        grid.table.normal_()
    points = torch.rand(20, dims)
    points[0] = 1.0  # the far corner
    fast = grid(points)
    for i in range(len(points)):
        assert torch.allclose(fast[i], grid.reference(points[i]), atol=1e-5), i


def test_triplane_matches_bilinear_interpolation() -> None:
    torch.manual_seed(2)
    enc = TriPlaneEncoding((5, 9), features=2)
    x = torch.rand(6, 3)
    out = enc(x).view(6, 2, 3, 2)  # (points, levels, planes, features)
    for i in range(6):
        for level in range(2):
            for k, (a, b) in enumerate(((0, 1), (1, 2), (0, 2))):
                plane = enc.planes[level * 3 + k][0].detach()
                ref = bilinear_reference(plane, float(x[i, a]), float(x[i, b]))
                assert torch.allclose(out[i, level, k], ref, atol=1e-5)


def test_frequency_encoding_layout() -> None:
    enc = FrequencyEncoding(3, 4)
    x = torch.tensor([[0.25, -0.3, 0.1]])
    y = enc(x)
    assert y.shape == (1, enc.out_dim) == (1, 27)
    assert torch.allclose(y[0, :3], x[0])
    # sines then cosines, octave-major: sin(2^2 pi x_1) is entry 3 + 2 * 3 + 1
    assert y[0, 3 + 2 * 3 + 1].item() == pytest.approx(math.sin(4 * math.pi * -0.3), abs=1e-5)
    assert y[0, 15 + 1 * 3 + 2].item() == pytest.approx(math.cos(2 * math.pi * 0.1), abs=1e-5)


def test_rays_through_a_projected_head_point_pass_through_its_canonical_position() -> None:
    """Project a point of the posed head with the camera, cast the ray of that pixel into canonical space: the
    ray passes through the point's canonical coordinates."""
    model = load_model("procedural", resolution="small")
    params = model.zero_params(2)
    params.rotation[:, 1] = torch.tensor([0.3, -0.2])
    params.neck_pose[:, 0] = torch.tensor([0.1, 0.05])
    params.translation[:, 0] = torch.tensor([0.01, -0.02])
    camera = default_head_camera(2, 64, focal_mm_equiv=90.0)
    R, t, verts = head_frames(model, params)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5)
    points = verts[:, ::400]
    xy, depth = camera.project(points)
    origins, directions = canonical_rays(camera, xy, R, t)
    canonical = to_canonical(points, R, t)
    along = ((canonical - origins) * directions).sum(-1, keepdim=True)
    closest = origins + along * directions
    assert (closest - canonical).norm(dim=-1).max() < 1e-4
    # the canonical face is the same whatever the pose (the lower neck bends with the torso, not the head)
    face = model.regions["face"]
    canonical_all = to_canonical(verts, R, t)[:, face]
    assert torch.allclose(canonical_all[0], canonical_all[1], atol=1e-4)


def test_ray_box_and_occupancy_sampling() -> None:
    origins = torch.tensor([[0.0, 0.0, -1.0], [0.0, 2.0, -1.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    lo, hi = torch.full((3,), -0.5), torch.full((3,), 0.5)
    near, far, hit = ray_box(origins, directions, lo, hi)
    assert hit.tolist() == [True, False]
    assert near[0].item() == pytest.approx(0.5) and far[0].item() == pytest.approx(1.5)
    grid = OccupancyGrid(16)
    shell = torch.tensor([[0.0, 0.0, z] for z in torch.linspace(-0.05, 0.05, 11)])  # a slab around z = 0
    grid.fit_points(torch.cat([shell, lo[None] + 0.1, hi[None] - 0.1]), margin=0.1, dilate=0)
    t, t_far, any_hit = grid.sample(origins[:1], directions[:1], 8, depth=0.3, jitter=False)
    z = origins[0, 2] + t[0] * directions[0, 2]
    assert any_hit.item() and (z > -0.2).all() and (z < 0.2).all()  # samples around the occupied slab only
    assert (t[0, 1:] > t[0, :-1]).all() and t_far.item() >= t[0, -1].item()


def test_pdf_sampling_follows_the_weights() -> None:
    bins = torch.linspace(0, 1, 11)[None]
    weights = torch.zeros(1, 10)
    weights[0, 7] = 1.0
    t = sample_pdf(bins, weights, 50, jitter=False)
    assert ((t >= 0.69) & (t <= 0.81)).float().mean() > 0.9


def test_fill_holes_keeps_known_pixels_and_continues_them() -> None:
    image = torch.zeros(1, 3, 32, 32)
    image[:, 0] = torch.linspace(0, 1, 32).view(1, 32)  # a horizontal ramp
    known = torch.ones(1, 1, 32, 32)
    known[..., 10:20, 8:24] = 0
    filled = fill_holes(image * known + (1 - known) * 5.0, known)  # whatever was in the hole is gone
    assert torch.equal(filled[known.expand_as(filled) > 0], image[known.expand_as(image) > 0])
    hole = filled[0, 0, 10:20, 8:24]
    assert hole.min() >= 0 and hole.max() <= 1 and (hole[:, -1] > hole[:, 0]).all()  # the ramp goes on


def test_chin_gap_counts_uncovered_replaced_pixels_per_column() -> None:
    opacity = torch.ones(1, 1, 10, 10)
    opacity[..., 6:9, 4] = 0.0
    replaced = torch.ones(1, 1, 10, 10)
    assert chin_gap_px(opacity, replaced).tolist() == [3.0]


def test_the_deformation_starts_still_stays_bounded_and_moves_points_by_condition() -> None:
    from core.renderers.nerf.fields import ConditionedDeformation

    torch.manual_seed(0)
    deformation = ConditionedDeformation(condition_dim=2, width=16, scale=0.05)
    points = torch.rand(64, 3)
    condition = torch.cat([torch.zeros(32, 2), torch.ones(32, 2)])
    assert torch.equal(deformation(points, condition), points)  # the last layer starts at zero
    # Taught to move the points of condition (1, 1) by +0.03 in x and the others not at all, it learns both.
    target = points.clone()
    target[32:, 0] += 0.03
    optimiser = torch.optim.Adam(deformation.parameters(), lr=1e-2)
    for _ in range(200):
        loss = (deformation(points, condition) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        moved = deformation(points, condition) - points
    assert moved[32:, 0].mean() == pytest.approx(0.03, abs=0.01) and moved[:32].abs().mean() < 0.01
    assert moved.abs().max() <= 0.05 + 1e-6
