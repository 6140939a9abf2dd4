"""The fast rasterizer against the reference one, its gradients, and interpolation."""

from __future__ import annotations

import pytest
import torch

from core.render.camera import PerspectiveCamera, default_head_camera
from core.render.meshes import uv_sphere
from core.render.raster import (
    Fragments,
    interpolate,
    interpolate_vertex_attrs,
    pytorch3d_available,
    rasterize,
    rasterize_reference,
)


def random_soup(batch: int, n_faces: int, H: int, W: int, seed: int, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random screen-space triangles of mixed sizes, partly off-image, at depths 1..3."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(batch, n_faces, 1, 2, generator=g) * torch.tensor([W * 1.2, H * 1.2]) - 0.1 * W
    scale = (0.1 + torch.rand(batch, n_faces, 1, 1, generator=g)) * min(H, W)
    xy = centres + (torch.rand(batch, n_faces, 3, 2, generator=g) - 0.5) * scale
    z = 1.0 + 2.0 * torch.rand(batch, n_faces, 3, 1, generator=g)
    verts = torch.cat([xy, z], -1).reshape(batch, n_faces * 3, 3).to(dtype)
    faces = torch.arange(n_faces * 3).view(n_faces, 3)
    return verts, faces


def near_edge_or_tie(verts: torch.Tensor, faces: torch.Tensor, H: int, W: int, margin: float = 1e-3
                     ) -> torch.Tensor:
    """(B, H, W) pixels whose centre is within ``margin`` (in barycentric units) of some triangle's edge,
    or where two covering triangles' depths are within ``margin`` relative: ambiguous by nature."""
    v = verts.double()
    py, px = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    px, py = px.double(), py.double()
    tri = v[:, faces]  # (B, F, 3, 3)
    x, y, z = (tri[..., k].unsqueeze(-1).unsqueeze(-1) for k in range(3))  # (B, F, 3, 1, 1)
    xn, yn, xp, yp = x.roll(-1, 2), y.roll(-1, 2), x.roll(-2, 2), y.roll(-2, 2)
    edge = (xp - xn) * (py - yn) - (yp - yn) * (px - xn)
    weights = edge / edge.sum(2, keepdim=True)  # (B, F, 3, H, W)
    covers = (weights >= -margin).all(2)
    ambiguous = (covers & (weights.abs() < margin).any(2)).any(1)
    depth = 1.0 / (weights / z).sum(2)
    depth = torch.where((weights >= 0).all(2), depth, torch.full_like(depth, float("inf")))
    top2 = depth.topk(2, dim=1, largest=False).values if depth.shape[1] > 1 else depth.expand(-1, 2, -1, -1)
    tie = torch.isfinite(top2[:, 1]) & ((top2[:, 1] - top2[:, 0]) < margin * top2[:, 0])
    return ambiguous | tie


@pytest.mark.parametrize(("dtype", "cull"),
                         [(torch.float32, False), (torch.float64, False), (torch.float32, True)])
def test_fast_matches_reference_on_random_soups(dtype: torch.dtype, cull: bool) -> None:
    H, W = 40, 56
    verts, faces = random_soup(2, 120, H, W, seed=3, dtype=dtype)
    fast = rasterize(verts, faces, (H, W), cull_backfaces=cull)
    ref = rasterize_reference(verts, faces, (H, W), cull_backfaces=cull)
    clear = ~near_edge_or_tie(verts, faces, H, W)
    covered = (fast.mask | ref.mask) & clear
    assert int(covered.sum()) > 1500  # the comparison is about something
    agree = (fast.pix_to_face == ref.pix_to_face)[covered].double().mean()
    assert agree >= 0.999
    both = covered & (fast.pix_to_face == ref.pix_to_face) & fast.mask
    assert torch.allclose(fast.bary[both].double(), ref.bary[both].double(), atol=1e-4)
    assert torch.allclose(fast.depth[both].double(), ref.depth[both].double(), rtol=1e-5)
    # Background is flagged consistently.
    assert torch.equal(fast.mask, fast.pix_to_face >= 0)
    assert bool((fast.bary[~fast.mask] == 0).all()) and bool((fast.depth[~fast.mask] == 0).all())


def test_fast_matches_reference_on_a_closed_mesh() -> None:
    verts, faces, _ = uv_sphere(12, 20, (0.08, 0.11, 0.1))
    cam = default_head_camera(1, (48, 40))
    screen = cam.to_screen(verts[None])
    fast = rasterize(screen, faces, cam.image_size)
    ref = rasterize_reference(screen, faces, cam.image_size)
    clear = ~near_edge_or_tie(screen, faces, 48, 40)
    assert int(ref.mask.sum()) > 200
    assert torch.equal(fast.mask[clear], ref.mask[clear])
    assert torch.equal(fast.pix_to_face[clear], ref.pix_to_face[clear])
    # A closed convex surface looks the same with back faces culled, and all visible faces face the camera.
    culled = rasterize(screen, faces, cam.image_size, cull_backfaces=True)
    assert torch.equal(culled.pix_to_face, fast.pix_to_face)


def test_chunking_does_not_change_the_result() -> None:
    verts, faces = random_soup(2, 80, 32, 32, seed=5)
    whole = rasterize(verts, faces, (32, 32))
    chunked = rasterize(verts, faces, (32, 32), max_candidates=97)
    assert torch.equal(whole.pix_to_face, chunked.pix_to_face)
    assert torch.equal(whole.bary, chunked.bary)


def test_ties_resolve_to_the_lower_face_and_winding_decides_culling() -> None:
    # Two coincident triangles at equal depth: face 0 wins everywhere; the reversed copy is back-facing.
    front = torch.tensor([[2.0, 2.0, 1.0], [2.0, 14.0, 1.0], [14.0, 2.0, 1.0]])  # clockwise on y-down
    verts = front[None]
    faces = torch.tensor([[0, 1, 2], [0, 2, 1]])
    frags = rasterize(verts, faces, (16, 16))
    assert int(frags.mask.sum()) > 50
    assert bool((frags.pix_to_face[frags.mask] == 0).all())
    culled = rasterize(verts, faces[[1]], (16, 16), cull_backfaces=True)
    assert not bool(culled.mask.any())
    kept = rasterize(verts, faces[[0]], (16, 16), cull_backfaces=True)
    assert torch.equal(kept.mask, frags.mask)


def test_nearest_triangle_wins_and_near_plane_culls() -> None:
    square = torch.tensor([[0.0, 0.0], [0.0, 8.0], [8.0, 0.0]])
    far = torch.cat([square, torch.full((3, 1), 3.0)], 1)
    near = torch.cat([square, torch.full((3, 1), 2.0)], 1)
    behind = torch.cat([square, torch.tensor([[2.0], [-1.0], [2.0]])], 1)
    verts = torch.cat([far, near, behind])[None]
    faces = torch.arange(9).view(3, 3)
    frags = rasterize(verts, faces, (8, 8))
    assert bool((frags.pix_to_face[frags.mask] == 1).all())
    assert torch.allclose(frags.depth[frags.mask], torch.tensor(2.0))


def test_offscreen_and_empty_inputs() -> None:
    verts = torch.tensor([[[-50.0, -50.0, 1.0], [-40.0, -50.0, 1.0], [-50.0, -40.0, 1.0]]])
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), (8, 8))
    assert not bool(frags.mask.any())
    empty = rasterize(verts, torch.zeros(0, 3, dtype=torch.long), (8, 8))
    assert empty.pix_to_face.shape == (1, 8, 8) and not bool(empty.mask.any())
    huge = torch.tensor([[[-1e6, -1e6, 1.0], [-1e6, 1e7, 1.0], [1e7, -1e6, 1.0]]])
    assert bool(rasterize(huge, torch.tensor([[0, 1, 2]]), (8, 8)).mask.all())


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match=r"\(B, V, 3\)"):
        rasterize(torch.zeros(4, 3), torch.zeros(1, 3, dtype=torch.long), (4, 4))
    with pytest.raises(ValueError, match="outside"):
        rasterize(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 3]]), (4, 4))
    with pytest.raises(ValueError, match="backend"):
        rasterize(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 2]]), (4, 4), backend="opengl")


def test_perspective_correct_interpolation_of_a_linear_attribute_is_exact() -> None:
    # World position is linear over each triangle, so perspective-correct interpolation must return the
    # surface point on each pixel's ray: it projects back to the pixel centre at the fragment's depth.
    torch.manual_seed(0)
    cam = default_head_camera(2, (24, 32)).to(dtype=torch.float64)
    verts = torch.tensor([[-0.2, -0.15, 0.25], [0.25, -0.1, -0.3], [-0.05, 0.2, 0.0]], dtype=torch.float64)
    verts = torch.stack([verts, verts * 0.7 + 0.01])
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize(cam.to_screen(verts), faces, cam.image_size)
    assert int(frags.mask.sum()) > 100
    world = interpolate_vertex_attrs(frags, faces, verts)  # (B, H, W, 3)
    b, row, col = frags.mask.nonzero(as_tuple=True)
    pts = world[b, row, col]
    for i in range(2):
        sel = b == i
        xy, depth = cam[i].project(pts[sel][None])
        centres = torch.stack([col[sel], row[sel]], -1).double() + 0.5
        assert torch.allclose(xy[0], centres, atol=1e-9)
        assert torch.allclose(depth[0], frags.depth[i][frags.mask[i]], atol=1e-12)
    # Screen-space (affine) weights would miss the ray: the triangle is strongly slanted in depth.
    depth_corners = cam.to_screen(verts)[..., 2][:, faces[0]]  # (B, 3)
    affine = frags.bary * depth_corners[:, None, None, :]
    affine = affine / affine.sum(-1, keepdim=True)
    wrong = (affine[b, row, col].unsqueeze(-1) * verts[b]).sum(1)
    xy_wrong, _ = cam[0].project(wrong[b == 0][None])
    centres = torch.stack([col[b == 0], row[b == 0]], -1).double() + 0.5
    assert (xy_wrong[0] - centres).abs().max() > 0.2


def test_interpolate_forms_agree_and_reach_attributes() -> None:
    verts, faces = random_soup(2, 30, 20, 20, seed=9)
    attrs = torch.randn(2, verts.shape[1], 4, requires_grad=True)
    frags = rasterize(verts, faces, (20, 20))
    a = interpolate_vertex_attrs(frags, faces, attrs)
    b = interpolate(frags, attrs[:, faces])
    assert torch.allclose(a, b, atol=1e-6)
    shared = interpolate_vertex_attrs(frags, faces, attrs[:1])
    assert torch.allclose(shared[0], a[0])
    a.sum().backward()
    grad = attrs.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    # Each visible pixel spreads weight 1 over its face's corners (barycentrics sum to one).
    assert torch.allclose(grad[..., 0].sum(1), frags.mask.flatten(1).sum(1).float(), rtol=1e-4)
    # Fragments built by hand (no cache) interpolate identically.
    manual = Fragments(frags.pix_to_face, frags.bary, frags.depth, frags.mask)
    assert torch.allclose(interpolate_vertex_attrs(manual, faces, attrs), a)


def test_gradients_match_finite_differences() -> None:
    # Two triangles, pixel centres well inside or outside (the visibility decision cannot flip under the
    # tiny perturbations gradcheck applies), float64 throughout.
    verts = torch.tensor([[[1.1, 0.9, 1.5], [1.3, 7.2, 2.5], [6.8, 1.2, 1.0],
                           [2.2, 2.3, 3.0], [7.7, 3.1, 1.4], [3.1, 7.6, 2.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    attrs = torch.randn(1, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    frags = rasterize(verts, faces, (8, 8))
    assert set(frags.pix_to_face.unique().tolist()) == {-1, 0, 1}
    weights = torch.randn(1, 8, 8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def loss(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        f = rasterize(v, faces, (8, 8))
        assert torch.equal(f.pix_to_face, frags.pix_to_face)
        image = interpolate_vertex_attrs(f, faces, a)
        return (image * weights[..., :2]).sum() + (f.depth * weights[..., 2]).sum()

    assert torch.autograd.gradcheck(loss, (verts.clone().requires_grad_(), attrs.clone().requires_grad_()),
                                    eps=1e-6, atol=1e-6)
    v = verts.clone().requires_grad_()
    loss(v, attrs).backward()
    assert v.grad is not None
    assert float(v.grad[..., :2].abs().sum()) > 0 and float(v.grad[..., 2].abs().sum()) > 0


@pytest.mark.skipif(not pytorch3d_available(), reason="pytorch3d is not installed")
def test_pytorch3d_backend_agrees() -> None:
    verts, faces = random_soup(2, 40, 32, 32, seed=11)
    ours = rasterize(verts, faces, (32, 32))
    theirs = rasterize(verts, faces, (32, 32), backend="pytorch3d")
    clear = ~near_edge_or_tie(verts, faces, 32, 32)
    assert (ours.pix_to_face == theirs.pix_to_face)[clear].float().mean() > 0.999


def test_pytorch3d_backend_explains_when_missing() -> None:
    if pytorch3d_available():
        pytest.skip("pytorch3d is installed")
    with pytest.raises(RuntimeError, match="pytorch3d"):
        rasterize(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 2]]), (4, 4), backend="pytorch3d")


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    verts, faces = random_soup(2, 60, 40, 40, seed=13)
    cpu = rasterize(verts, faces, (40, 40))
    gpu = rasterize(verts.cuda(), faces.cuda(), (40, 40))
    assert torch.equal(cpu.pix_to_face, gpu.pix_to_face.cpu())
    assert torch.allclose(cpu.bary, gpu.bary.cpu(), atol=1e-5)


def test_focal_length_gradient_through_the_rasterizer() -> None:
    # The tracker optimises the focal length: d(loss)/d(fx) must match a central difference (float64; the
    # perturbation is too small to change which face covers which pixel, checked below).
    verts, faces, _ = uv_sphere(8, 12, (0.08, 0.11, 0.1), dtype=torch.float64)
    base = default_head_camera(1, 24, dtype=torch.float64)
    attrs = verts[None] * torch.tensor([3.0, -2.0, 1.5], dtype=torch.float64)

    def loss(fx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cam = PerspectiveCamera(fx=fx, fy=fx, cx=base.cx, cy=base.cy, R=base.R, t=base.t,
                                image_size=base.image_size)
        frags = rasterize(cam.to_screen(verts[None]), faces, cam.image_size, cull_backfaces=True)
        value = interpolate_vertex_attrs(frags, faces, attrs).sum() + frags.depth.sum()
        return value, frags.pix_to_face

    fx = base.fx.clone().requires_grad_()
    value, reference = loss(fx)
    value.backward()
    eps = 1e-6
    plus, faces_plus = loss(base.fx + eps)
    minus, faces_minus = loss(base.fx - eps)
    assert torch.equal(faces_plus, reference) and torch.equal(faces_minus, reference)
    numeric = (plus - minus) / (2 * eps)
    assert fx.grad is not None and abs(float(numeric)) > 1e-3
    assert torch.allclose(fx.grad, numeric.detach().expand(1), rtol=1e-5)


@pytest.mark.parametrize("jitter", [0.0, 0.37])
def test_shared_edges_leave_no_cracks(jitter: float) -> None:
    # A triangulated grid over the whole image: with jitter 0 every pixel centre lies exactly on edges and
    # vertices (the hardest case for inside tests); every pixel must still be covered, by a face of the grid.
    n = 9
    g = torch.Generator().manual_seed(4)
    ys, xs = torch.meshgrid(torch.linspace(-0.5, 20.5, n), torch.linspace(-0.5, 24.5, n), indexing="ij")
    xy = torch.stack([xs, ys], -1)
    inner = torch.zeros(n, n, 1, dtype=torch.bool)
    inner[1:-1, 1:-1] = True
    xy = xy + jitter * torch.randn(n, n, 2, generator=g) * inner
    if jitter == 0.0:
        xy = torch.floor(xy * 2) / 2  # vertices on pixel centres and pixel corners
    z = 1.0 + torch.rand(n, n, 1, generator=g)
    verts = torch.cat([xy, z], -1).reshape(1, n * n, 3)
    idx = torch.arange(n * n).view(n, n)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = torch.cat([torch.stack([a, b, c], -1).reshape(-1, 3), torch.stack([b, d, c], -1).reshape(-1, 3)])
    frags = rasterize(verts, faces, (20, 24))
    assert bool(frags.mask.all())
    # The barycentrics of every pixel are valid (non-negative up to rounding, summing to one).
    assert float(frags.bary.min()) > -1e-5
    assert torch.allclose(frags.bary.sum(-1), torch.ones(1, 20, 24), atol=1e-5)
