"""Normals, spherical-harmonics lighting, texture sampling, render_mesh and overlay drawing."""

from __future__ import annotations

import math

import numpy as np
import torch

from core.render.camera import default_head_camera
from core.render.meshes import uv_sphere
from core.render.raster import interpolate_vertex_attrs
from core.render.shading import (
    SH_C0,
    draw_points,
    draw_wireframe,
    face_normals,
    render_mesh,
    sample_texture,
    sh_basis,
    sh_directional,
    sh_irradiance,
    shade,
    vertex_normals,
)


def unit_vectors(n: int, seed: int = 0) -> torch.Tensor:
    v = torch.randn(1, n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return v / v.norm(dim=-1, keepdim=True)


def test_sphere_normals_point_outward() -> None:
    verts, faces, _ = uv_sphere(24, 32)
    normals = vertex_normals(verts[None], faces)
    cosines = (normals[0] * verts).sum(-1)  # unit sphere: normal = position, up to the faceting
    assert float(cosines.min()) > 0.998
    fn = face_normals(verts[None], faces)
    centroids = verts[faces].mean(1)
    assert bool(((fn[0] * centroids).sum(-1) > 0.9).all())


def test_vertex_normals_are_area_weighted() -> None:
    # Vertex 0 is shared by a big triangle in the z = 0 plane and a small one in the x = 0 plane.
    verts = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0],
                           [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 3, 4]])
    n = vertex_normals(verts, faces)[0, 0]
    expected = torch.tensor([-0.5, 0.0, 2.0], dtype=torch.float64)  # areas 2 (along +z) and 0.5 (along -x)
    assert torch.allclose(n, expected / expected.norm())


def test_constant_sh_gives_uniform_shading() -> None:
    normals = unit_vectors(500)
    sh = torch.zeros(1, 9, 3, dtype=torch.float64)
    sh[0, 0] = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64) / SH_C0
    shading = sh_irradiance(normals, sh)
    assert torch.allclose(shading, torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).expand(1, 500, 3))
    ambient = sh_directional((0.0, 0.0, 1.0), intensity=0.0, ambient=0.7, dtype=torch.float64)
    assert torch.allclose(sh_irradiance(normals, ambient), torch.full((1, 500, 3), 0.7, dtype=torch.float64))


def test_sh_basis_is_orthonormal() -> None:
    # Monte-Carlo-free check on a fine sphere quadrature: integral of Y_i Y_j = delta_ij.
    n_theta, n_phi = 200, 400
    theta = (torch.arange(n_theta, dtype=torch.float64) + 0.5) / n_theta * math.pi
    phi = (torch.arange(n_phi, dtype=torch.float64) + 0.5) / n_phi * 2 * math.pi
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    dirs = torch.stack([torch.sin(t) * torch.cos(p), torch.sin(t) * torch.sin(p), torch.cos(t)], -1)
    weights = torch.sin(t) * (math.pi / n_theta) * (2 * math.pi / n_phi)
    Y = sh_basis(dirs)  # (T, P, 9)
    gram = torch.einsum("tpi,tpj,tp->ij", Y, Y, weights)
    assert torch.allclose(gram, torch.eye(9, dtype=torch.float64), atol=1e-4)


def test_directional_light_matches_the_analytic_clamped_cosine_expansion() -> None:
    direction = torch.tensor([0.3, 0.8, 0.52], dtype=torch.float64)
    normals = unit_vectors(300, seed=4)
    sh = sh_directional(direction, intensity=torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64),
                        dtype=torch.float64)
    c = (normals[0] @ (direction / direction.norm())).unsqueeze(-1)
    # Projection of max(0, cos) onto bands 0..2: 1/4 + cos / 2 + 5/16 * P2(cos).
    expected = (0.25 + 0.5 * c + 5.0 / 16.0 * 0.5 * (3 * c * c - 1)) * torch.tensor([1.0, 0.5, 2.0])
    assert torch.allclose(sh_irradiance(normals, sh)[0], expected.double(), atol=1e-12)
    # Band 1 alone is exactly cos / 2 (A_1 = 2 pi / 3 with Y_1 normalisation 3 / (4 pi)).
    band1 = torch.zeros_like(sh)
    band1[:, 1:4] = sh[:, 1:4]
    assert torch.allclose(sh_irradiance(normals, band1)[0, :, :1], 0.5 * c, atol=1e-12)
    # It approximates the true clamped cosine to within the known 9-term error (about 0.07).
    assert float((sh_irradiance(normals, sh)[0, :, :1] - c.clamp_min(0)).abs().max()) < 0.1


def test_shade_multiplies_albedo() -> None:
    albedo = torch.rand(2, 4, 5, 3)
    normals = torch.nn.functional.normalize(torch.randn(2, 4, 5, 3), dim=-1)
    sh = sh_directional((0.0, 1.0, 0.0), intensity=0.6, ambient=0.3, batch=2)
    out = shade(albedo, normals, sh)
    assert torch.allclose(out, albedo * sh_irradiance(normals, sh))


def test_sample_texture_uses_v_up_and_texel_centres() -> None:
    # 2x2 texture: row 0 (top) = [1, 2], row 1 (bottom) = [3, 4].
    texture = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    uv = torch.tensor([[[[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25], [0.5, 0.5]]]])
    values = sample_texture(texture, uv)[0, 0, :, 0]
    assert torch.allclose(values, torch.tensor([1.0, 2.0, 3.0, 4.0, 2.5]))
    batched = sample_texture(texture.expand(2, 1, 2, 2), uv.expand(2, -1, -1, -1))
    assert batched.shape == (2, 1, 5, 1)


def test_render_mesh_lights_textures_and_propagates_gradients() -> None:
    verts, faces, uvs = uv_sphere(16, 24, (0.08, 0.11, 0.1))
    verts = verts[None].expand(2, -1, -1).clone().requires_grad_()
    cam = default_head_camera(2, 48)
    texture = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    sh = sh_directional((0.0, 0.0, 1.0), intensity=0.0, ambient=1.0, batch=2).requires_grad_()
    background = torch.tensor([0.0, 1.0, 0.0])
    image, frags = render_mesh(verts, faces, cam, uvs, faces, texture, sh, background)
    assert image.shape == (2, 48, 48, 3)
    assert 0.1 < float(frags.mask.float().mean()) < 0.6
    assert torch.allclose(image[frags.mask], torch.tensor(0.5), atol=1e-5)  # ambient 1 keeps the albedo
    assert torch.allclose(image[~frags.mask], background)
    # Frontal light: the centre of the face is brighter than the rim.
    front = sh_directional((0.0, 0.0, 1.0), intensity=1.0, ambient=0.0, batch=2)
    lit, _ = render_mesh(verts, faces, cam, uvs, faces, texture, front, fragments=frags)
    lit_values = lit.detach()
    assert float(lit_values[0, 24, 24, 0]) > float(lit_values[0, 24, 14, 0]) + 0.05
    (image.sum() + lit.sum()).backward()
    for grad in (verts.grad, texture.grad, sh.grad):
        assert grad is not None and float(grad.abs().sum()) > 0


def test_render_mesh_matches_whole_image_shading() -> None:
    # render_mesh shades only covered pixels; compose the same image from the whole-image primitives.
    g = torch.Generator().manual_seed(5)
    verts, faces, uvs = uv_sphere(10, 16, (0.08, 0.11, 0.1))
    verts = torch.stack([verts, verts * 0.9 + 0.01])
    cam = default_head_camera(2, (36, 28))
    texture = torch.rand(2, 3, 16, 16, generator=g)
    sh = torch.randn(2, 9, 3, generator=g) * 0.3 + sh_directional((0.0, 0.0, 1.0), ambient=0.5, batch=2)
    background = torch.rand(2, 36, 28, 3, generator=g)
    image, frags = render_mesh(verts, faces, cam, uvs, faces, texture, sh, background)
    uv = interpolate_vertex_attrs(frags, faces, uvs)
    normals = interpolate_vertex_attrs(frags, faces, vertex_normals(verts, faces))
    normals = torch.nn.functional.normalize(normals, dim=-1)
    expected = shade(sample_texture(texture, uv), normals, sh)
    expected = torch.where(frags.mask.unsqueeze(-1), expected, background)
    assert torch.allclose(image, expected, atol=1e-5)
    # One shared texture and a background colour.
    colour = torch.tensor([0.2, 0.3, 0.4])
    image, _ = render_mesh(verts, faces, cam, uvs, faces, texture[:1], None, colour)
    expected = torch.where(frags.mask.unsqueeze(-1), sample_texture(texture[:1], uv), colour)
    assert torch.allclose(image, expected, atol=1e-6)


def test_draw_points_and_wireframe() -> None:
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    points = np.array([[5.5, 4.5], [np.nan, 1.0], [100.0, 100.0]])
    dots = draw_points(image, points, color=(255, 0, 0), radius=1)
    assert image.sum() == 0  # the input is not modified
    assert dots[4, 5, 0] == 255 and dots[3, 5, 0] == 255 and dots[4, 6, 0] == 255
    assert dots[3, 4, 0] == 0 and int((dots[..., 0] > 0).sum()) == 5  # a radius-1 disk is a plus sign
    points = np.array([[2.5, 2.5], [27.5, 2.5], [2.5, 17.5]])
    wire = draw_wireframe(image, points, faces=np.array([[0, 1, 2]]), color=(0, 255, 0))
    assert bool((wire[2, 2:28, 1] == 255).all())  # the horizontal edge, end to end
    assert bool((wire[2:18, 2, 1] == 255).all())  # the vertical edge
    assert wire[10, 15, 1] == 0  # inside the triangle stays empty
    diag = np.argwhere(wire[..., 1] == 255)
    on_hypotenuse = diag[(diag[:, 0] > 2) & (diag[:, 1] > 2)]
    assert len(on_hypotenuse) > 10
    assert np.abs(on_hypotenuse[:, 0] + 0.6 * on_hypotenuse[:, 1] - 18.5).max() < 1.5
    faint = draw_wireframe(image.astype(np.float32), points, edges=np.array([[0, 1]]), color=1.0, alpha=0.5)
    assert faint[2, 10, 0] == 0.5 and faint.max() == 0.5
