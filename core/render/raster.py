"""A differentiable triangle rasterizer in pure, vectorised PyTorch (one nearest face per pixel).

Input vertices are in *screen space*: ``(x_pix, y_pix, z_cam)`` as produced by
:meth:`core.render.camera.PerspectiveCamera.to_screen` (x right, y down, pixel centres at
integer + 0.5, z = camera depth > 0). A pixel is covered by a triangle when its centre lies inside or on
the triangle's edges; the nearest covering triangle wins (ties at equal float32 depth go to the lower
face index, so results are deterministic).

How the fast path works (:func:`rasterize`), all of it batched tensor code without per-pixel loops:

1. per triangle: cull (behind the near plane, degenerate, outside the image, optionally back-facing),
   clamp its bounding box to the image, and precompute in float64 the lines bounding it on each pixel row
   and its inverse-depth plane;
2. scanlines: one item per (triangle, box row) computes the exact run of pixel centres the triangle
   covers on that row, then one entry per covered pixel gets the key ``(float32 depth bits << 32) | face``,
   and one ``scatter_reduce(amin)`` makes the z-buffer (triangles are processed in chunks of at most
   ``max_candidates`` bounding-box pixels to bound memory);
3. for the winning face of each covered pixel, barycentrics and depth are recomputed *with autograd*
   from the input vertices, so gradients reach vertex positions (the visibility decision itself is
   piecewise constant, as in every non-soft rasterizer).

Barycentrics are perspective-correct: screen-space weights ``l_i`` become ``(l_i / z_i) / sum_j(l_j / z_j)``
and depth is ``1 / sum_j(l_j / z_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

Tensor = torch.Tensor

# Default bound on the bounding-box pixels of the triangles processed at once: ~1M keep the temporaries of
# one chunk under about 100 MB (speed hardly depends on it).
DEFAULT_MAX_CANDIDATES = 1 << 20
_SENTINEL = torch.iinfo(torch.int64).max
_FACE_BITS = 32


@dataclass
class Fragments:
    """Per-pixel output of the rasterizer (one face per pixel).

    Attributes:
        pix_to_face: (B, H, W) int64 index into ``faces`` of the visible triangle, -1 for background.
        bary: (B, H, W, 3) perspective-correct barycentric coordinates of the pixel centre in that
            triangle (0 for background); differentiable w.r.t. the screen vertices. From
            :func:`rasterize` it is a channels-last view of channel-major storage (use ``reshape``, not
            ``view``, to flatten it).
        depth: (B, H, W) camera-space depth of the surface at the pixel centre (0 for background);
            differentiable.
        mask: (B, H, W) bool, True where a triangle is visible.
        covered_pixels: optional (N,) int64 flat indices into B*H*W of the covered pixels (ascending),
            a cache filled by :func:`rasterize`; recomputed from ``mask`` when None.
    """

    pix_to_face: Tensor
    bary: Tensor
    depth: Tensor
    mask: Tensor
    covered_pixels: Tensor | None = field(default=None, repr=False)

    @property
    def batch_size(self) -> int:
        return int(self.pix_to_face.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.pix_to_face.shape[1]), int(self.pix_to_face.shape[2])

    def covered(self) -> CoveredPixels:
        """The covered pixels as flat lists (for work done on covered pixels only)."""
        pixel = self.covered_pixels
        if pixel is None:
            pixel = self.mask.reshape(-1).nonzero().squeeze(1)
        H, W = self.image_size
        return CoveredPixels(pixel=pixel, batch=torch.div(pixel, H * W, rounding_mode="floor"),
                             face=self.pix_to_face.reshape(-1).index_select(0, pixel),
                             bary=self.bary_planes().index_select(1, pixel))

    def bary_planes(self) -> Tensor:
        """(3, B*H*W) barycentrics, channel-major (a view when ``bary`` came from :func:`rasterize`)."""
        return self.bary.permute(3, 0, 1, 2).reshape(3, -1)


@dataclass
class CoveredPixels:
    """The N covered pixels of :class:`Fragments` as flat lists.

    Attributes:
        pixel: (N,) int64 flat indices into B*H*W, ascending (so grouped by frame).
        batch: (N,) int64 frame of each pixel.
        face: (N,) int64 visible face.
        bary: (3, N) perspective-correct barycentrics (differentiable).
    """

    pixel: Tensor
    batch: Tensor
    face: Tensor
    bary: Tensor


def scatter_channels(values: Tensor, pixel: Tensor, shape: tuple[int, int, int],
                     background: Tensor | None = None) -> Tensor:
    """Place per-pixel values into images (differentiable w.r.t. ``values`` and ``background``).

    Args:
        values: (C, N) values of the covered pixels.
        pixel: (N,) flat indices into B*H*W.
        shape: (B, H, W).
        background: optional (C, B*H*W) image filling the other pixels (zeros when None).

    Returns:
        (B, H, W, C), a channels-last view of channel-major storage (call ``.contiguous()`` if needed).
    """
    C = values.shape[0]
    B, H, W = shape
    index = pixel.unsqueeze(0).expand(C, -1)
    if background is None:  # a fresh buffer may be written in place (autograd records it all the same)
        out = values.new_zeros(C, B * H * W).scatter_(1, index, values)
    else:
        out = background.scatter(1, index, values)
    return out.view(C, B, H, W).permute(1, 2, 3, 0)


# ------------------------------------------------------------------------------------------ helpers
def _check_inputs(screen_verts: Tensor, faces: Tensor, image_size: tuple[int, int]
                  ) -> tuple[Tensor, int, int]:
    if screen_verts.ndim != 3 or screen_verts.shape[-1] != 3:
        raise ValueError("screen_verts must be (B, V, 3) = (x_pix, y_pix, z_cam), "
                         f"got {tuple(screen_verts.shape)}")
    if not screen_verts.is_floating_point():
        raise ValueError("screen_verts must be a floating-point tensor")
    faces = torch.as_tensor(faces, device=screen_verts.device)
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3) vertex indices, got {tuple(faces.shape)}")
    faces = faces.long()
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= screen_verts.shape[1]):
        raise ValueError(f"faces index vertices outside [0, {screen_verts.shape[1]})")
    if faces.shape[0] >= 1 << 31:
        raise ValueError("at most 2^31 - 1 faces are supported")
    H, W = (int(s) for s in image_size)
    if H <= 0 or W <= 0:
        raise ValueError(f"image_size must be positive (H, W), got {image_size}")
    return faces, H, W


def _gather_corners(values: Tensor, faces: Tensor, face: Tensor, batch: Tensor | None) -> Tensor:
    """Per-corner values of the listed faces, corner-major for cheap column arithmetic.

    Args:
        values: (B, V, C) per-vertex values (B may be 1 when ``batch`` is None).
        faces: (F, 3) vertex indices; face: (N,) face per item; batch: (N,) batch per item or None (b = 0).

    Returns:
        (C, 3, N): ``out[c, k, n]`` = channel c of corner k of item n (differentiable w.r.t. ``values``).
    """
    B, V, C = values.shape
    faces_t = faces.t().contiguous()
    # 1-D gathers per corner: much faster than one index_select along dim 1 of a (3, F) table.
    vid = torch.cat([faces_t[k].index_select(0, face) for k in range(3)])  # (3N,) corner-major
    if batch is not None:
        vid = vid + (batch * V).repeat(3)
    flat = values.reshape(B * V, C).t().contiguous()  # (C, B*V): a cheap copy of the (small) vertex table
    return flat.index_select(1, vid).view(C, 3, -1)


def _triangle_setup(screen_verts: Tensor, faces: Tensor, H: int, W: int, cull_backfaces: bool, znear: float
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cull triangles and precompute their scanline and depth planes (no autograd).

    Returns, for the K surviving triangles (batch-major order):
        tri_id: (K,) int64 flat index b * F + f.
        corner: (K,) int64 flat pixel index (into B*H*W) of the top-left pixel of the clamped bounding box.
        box: (K, 2) int64 bounding box (width, height) in pixels (both >= 1).
        params: (K, 15) float64, in coordinates (u, v) relative to the box's top-left corner:
            ``[sL_0..2, iL_0..2, sU_0..2, iU_0..2, P, Q, S]``. On the row through pixel centres at height v,
            the triangle spans ``max_k(sL_k v + iL_k) <= u <= min_k(sU_k v + iU_k)`` (one entry per edge,
            neutral (0, -inf) / (0, inf) where an edge does not bound that side), and its inverse depth is
            ``P u + Q v + S``.
    """
    B, V, _ = screen_verts.shape
    F = faces.shape[0]
    device = screen_verts.device
    # (3 coords, 3 corners, B*F): column arithmetic on contiguous rows is far cheaper than reductions
    # over a trailing dimension of size 3.
    faces_b = faces.unsqueeze(0) + (torch.arange(B, device=device) * V).view(B, 1, 1)  # (B, F, 3)
    corners = screen_verts.reshape(B * V, 3).t().index_select(1, faces_b.permute(2, 0, 1).reshape(-1))
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = corners.view(3, 3, B * F)
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)  # signed doubled area (< 0: front-facing)
    valid = torch.isfinite(area + z0 + z1 + z2) & (torch.minimum(torch.minimum(z0, z1), z2) > znear)
    valid &= area.abs() > 1e-12
    if cull_backfaces:
        valid &= area < 0  # counter-clockwise from outside = clockwise on a y-down screen
    # Bounding box of the pixel centres (integer j with j + 0.5 in [min, max]), clamped to the image;
    # the float clamp first keeps far-away coordinates from overflowing the integer conversion.
    big = float(max(H, W) + 2)

    def first_centre(lo: Tensor) -> Tensor:  # smallest j with j + 0.5 >= lo
        return lo.clamp(-2.0, big).sub_(0.5).ceil_().long().clamp_min_(0)

    def last_centre(hi: Tensor, size: int) -> Tensor:  # largest j with j + 0.5 <= hi
        return hi.clamp(-2.0, big).sub_(0.5).floor_().long().clamp_max_(size - 1)

    xmin = first_centre(torch.minimum(torch.minimum(x0, x1), x2))
    xmax = last_centre(torch.maximum(torch.maximum(x0, x1), x2), W)
    ymin = first_centre(torch.minimum(torch.minimum(y0, y1), y2))
    ymax = last_centre(torch.maximum(torch.maximum(y0, y1), y2), H)
    box_w, box_h = xmax - xmin + 1, ymax - ymin + 1
    valid &= (box_w > 0) & (box_h > 0)
    tri_id = valid.nonzero().squeeze(1)

    # Edge and depth planes in float64 relative to the box corner.
    ox, oy, box_w, box_h = torch.stack([xmin, ymin, box_w, box_h], 0).index_select(1, tri_id)
    X0, X1, X2, Y0, Y1, Y2, Z0, Z1, Z2 = corners.view(9, B * F).index_select(1, tri_id).double()
    X = torch.stack([X0, X1, X2]) - ox
    Y = torch.stack([Y0, Y1, Y2]) - oy
    Xn, Yn, Xp, Yp = X.roll(-1, 0), Y.roll(-1, 0), X.roll(-2, 0), Y.roll(-2, 0)  # vertices k+1, k+2
    # edge_k(u, v) = a_k u + b_k v + c_k: the doubled signed area of (v_{k+1}, v_{k+2}, p), divided by the
    # triangle's, so a pixel is inside when all three are >= 0 whatever the winding.
    c = Xn * Yp - Xp * Yn
    inv_area = 1.0 / (c[0] + c[1] + c[2])
    a = (Yn - Yp) * inv_area
    b = (Xp - Xn) * inv_area
    c = c * inv_area
    inv_z = torch.stack([1.0 / Z0, 1.0 / Z1, 1.0 / Z2])
    depth_plane = torch.stack([(a * inv_z).sum(0), (b * inv_z).sum(0), (c * inv_z).sum(0)])
    # a_k u + b_k v + c_k >= 0 bounds u from below where a_k > 0 and from above where a_k < 0; a
    # horizontal edge bounds only v, which the box rows already do.
    horizontal = (Yn - Yp).abs() < 1e-9
    safe_a = torch.where(horizontal, torch.ones_like(a), a)
    slope, intercept = -b / safe_a, -c / safe_a
    lower = (a > 0) & ~horizontal
    upper = (a < 0) & ~horizontal
    zero = torch.zeros_like(slope)
    inf = torch.full_like(slope, float("inf"))
    params = torch.cat([torch.where(lower, slope, zero), torch.where(lower, intercept, -inf),
                        torch.where(upper, slope, zero), torch.where(upper, intercept, inf), depth_plane], 0)
    batch = torch.div(tri_id, F, rounding_mode="floor")
    corner_pixel = batch * (H * W) + oy * W + ox
    return tri_id, corner_pixel, torch.stack([box_w, box_h], 1), params.t().contiguous()


# Pixel centres this close (in pixels) outside an edge still count as inside, so that rounding can never
# open a crack between two triangles sharing an edge (the z-buffer picks one of them).
_SPAN_SLACK = 1e-7


def _zbuffer(tri_id: Tensor, corner: Tensor, box: Tensor, params: Tensor, B: int, F: int, H: int, W: int,
             max_candidates: int) -> Tensor:
    """(B*H*W,) int64 z-buffer of packed ``(float32 depth bits << 32) | face`` keys; ``_SENTINEL`` = empty.

    Scanline rasterization, vectorised: one item per (triangle, box row) computes the exact span of covered
    pixel centres on that row, then one entry per covered pixel gets its depth key. Positive float32 values
    order like their bit patterns read as integers, so ``amin`` over the keys picks the nearest depth and,
    among equal depths, the lowest face index.
    """
    device = tri_id.device
    zbuf = torch.full((B * H * W,), _SENTINEL, dtype=torch.long, device=device)
    K = tri_id.numel()
    if K == 0:
        return zbuf
    box_w, box_h = box[:, 0], box[:, 1]
    # Chunks of triangles whose boxes hold at most max_candidates pixels bound rows and pixels alike.
    box_ends = (box_w * box_h).cumsum(0)
    face = tri_id % F
    start, done = 0, 0
    while start < K:
        stop = max(int(torch.searchsorted(box_ends, done + max_candidates, right=True)), start + 1)
        done = int(box_ends[stop - 1])
        rows = box_h[start:stop]
        row_ends = rows.cumsum(0)
        n_rows = int(row_ends[-1])
        tri = torch.repeat_interleave(torch.arange(start, stop, device=device), rows, output_size=n_rows)
        v = torch.arange(n_rows, device=device) - (row_ends - rows).index_select(0, tri - start)
        vc = v.double() + 0.5
        p = params.index_select(0, tri)  # (R, 15)
        bound = torch.addcmul(p[:, 3:6], p[:, 0:3], vc.unsqueeze(1))  # lower bounds from the three edges
        lo = torch.maximum(torch.maximum(bound[:, 0], bound[:, 1]), bound[:, 2])
        bound = torch.addcmul(p[:, 9:12], p[:, 6:9], vc.unsqueeze(1))  # upper bounds
        hi = torch.minimum(torch.minimum(bound[:, 0], bound[:, 1]), bound[:, 2])
        width = box_w.index_select(0, tri)
        limit = float(W + 1)  # keeps +-inf bounds of the float -> int conversion
        # First and last pixel j (centre j + 0.5) within [lo, hi], clipped to the box.
        j_lo = (lo - 0.5 - _SPAN_SLACK).clamp(-1.0, limit).ceil().long().clamp_min(0)
        j_hi = torch.minimum((hi - 0.5 + _SPAN_SLACK).clamp(-1.0, limit).floor().long(), width - 1)
        count = (j_hi - j_lo + 1).clamp_min(0)
        count_ends = count.cumsum(0)
        total = int(count_ends[-1])
        if total == 0:
            start = stop
            continue
        first = count_ends - count  # index of the row's first pixel among this chunk's pixels
        # Per pixel i of row r: pixel index = i + shift_r, inverse depth = P i + offset_r (float64 is exact
        # enough for i up to max_candidates).
        shift = corner.index_select(0, tri) + v * W + j_lo - first
        offset = p[:, 12] * (j_lo - first).double() + p[:, 12] * 0.5 + p[:, 13] * vc + p[:, 14]
        row_of = torch.repeat_interleave(torch.arange(n_rows, device=device), count, output_size=total)
        i = torch.arange(total, device=device)
        pixel = i + shift.index_select(0, row_of)
        inv_depth = p[:, 12].index_select(0, row_of) * i.double() + offset.index_select(0, row_of)
        # The clamp keeps keys positive even for a centre just outside a sliver (within the slack).
        depth = inv_depth.clamp_min_(1e-30).reciprocal_().float()
        row_face = face.index_select(0, tri)
        key = (depth.view(torch.int32).long() << _FACE_BITS) | row_face.index_select(0, row_of)
        zbuf.scatter_reduce_(0, pixel, key, reduce="amin")
        start = stop
    return zbuf


# ------------------------------------------------------------------------------------------ public
def rasterize(screen_verts: Tensor, faces: Tensor, image_size: tuple[int, int], *,
              cull_backfaces: bool = False, znear: float = 1e-4, backend: str = "torch",
              max_candidates: int = DEFAULT_MAX_CANDIDATES) -> Fragments:
    """Rasterize B meshes sharing one triangle list; the nearest triangle per pixel wins.

    Args:
        screen_verts: (B, V, 3) ``(x_pix, y_pix, z_cam)`` per vertex (see
            :meth:`~core.render.camera.PerspectiveCamera.to_screen`); float32 or float64.
        faces: (F, 3) int vertex indices (counter-clockwise seen from outside the mesh).
        image_size: (H, W) in pixels.
        cull_backfaces: drop triangles seen from behind (counter-clockwise on the y-down screen).
        znear: triangles with a vertex at camera depth <= znear are dropped (no near-plane clipping).
        backend: ``"torch"`` (built in) or ``"pytorch3d"`` (only when ``import pytorch3d`` works).
        max_candidates: bound on the bounding-box pixels of the triangles processed at once (peak memory
            is about 60 bytes per covered pixel of a chunk plus 150 bytes per triangle row).

    Returns:
        :class:`Fragments`; ``bary`` and ``depth`` carry gradients to ``screen_verts``.
    """
    faces, H, W = _check_inputs(screen_verts, faces, image_size)
    if backend == "pytorch3d":
        return _rasterize_pytorch3d(screen_verts, faces, (H, W), cull_backfaces=cull_backfaces, znear=znear)
    if backend != "torch":
        raise ValueError(f"unknown rasterizer backend {backend!r}; use 'torch' or 'pytorch3d'")
    B, F = screen_verts.shape[0], faces.shape[0]
    with torch.no_grad():
        setup = _triangle_setup(screen_verts.detach(), faces, H, W, cull_backfaces, znear)
        zbuf = _zbuffer(*setup, B=B, F=F, H=H, W=W, max_candidates=max_candidates)
        mask = zbuf != _SENTINEL
        pixel = mask.nonzero().squeeze(1)
        face = zbuf.index_select(0, pixel) & ((1 << _FACE_BITS) - 1)
        pix_to_face = torch.full_like(zbuf, -1).scatter_(0, pixel, face)
        batch = torch.div(pixel, H * W, rounding_mode="floor")
        within = pixel - batch * (H * W)
        row = torch.div(within, W, rounding_mode="floor")
        col = within - row * W
    bary, depth = _winner_weights(screen_verts, faces, batch, face, row, col)
    return Fragments(pix_to_face=pix_to_face.view(B, H, W), bary=scatter_channels(bary, pixel, (B, H, W)),
                     depth=scatter_channels(depth.unsqueeze(0), pixel, (B, H, W))[..., 0],
                     mask=mask.view(B, H, W), covered_pixels=pixel)


def _winner_weights(screen_verts: Tensor, faces: Tensor, batch: Tensor, face: Tensor, row: Tensor, col: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """Differentiable perspective-correct barycentrics (3, N) and depth (N,) of the winning faces."""
    dtype = screen_verts.dtype
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = _gather_corners(screen_verts, faces, face, batch)
    px, py = col.to(dtype) + 0.5, row.to(dtype) + 0.5
    # Screen-space edge functions; the 1 / area of the affine barycentrics cancels in the
    # perspective-correct ones: bary_k = (e_k / z_k) / sum_j (e_j / z_j), depth = area / sum_j (e_j / z_j).
    e0 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
    e1 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
    e2 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
    q0, q1, q2 = e0 / z0, e1 / z1, e2 / z2
    inv_sum = 1.0 / (q0 + q1 + q2)
    return torch.stack([q0, q1, q2]) * inv_sum, (e0 + e1 + e2) * inv_sum


def rasterize_reference(screen_verts: Tensor, faces: Tensor, image_size: tuple[int, int], *,
                        cull_backfaces: bool = False, znear: float = 1e-4) -> Fragments:
    """Slow, obviously correct rasterizer for tests: for each face in order, evaluate its edge functions
    at every pixel centre in float64 and keep it where it is strictly nearer than what is stored.
    Same inputs, conventions and outputs as :func:`rasterize` (no gradients)."""
    faces, H, W = _check_inputs(screen_verts, faces, image_size)
    verts = screen_verts.detach().double()
    B = verts.shape[0]
    py, px = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5,
                            torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
    px, py = px.to(verts.device), py.to(verts.device)
    zbuf = torch.full((B, H, W), float("inf"), dtype=torch.float64, device=verts.device)
    pix_to_face = torch.full((B, H, W), -1, dtype=torch.long, device=verts.device)
    bary = torch.zeros(B, H, W, 3, dtype=torch.float64, device=verts.device)
    for f in range(faces.shape[0]):
        for b in range(B):
            (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = verts[b, faces[f]].tolist()
            area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
            if min(z0, z1, z2) <= znear or abs(area) <= 1e-9 or (cull_backfaces and area >= 0):
                continue
            e0 = ((x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)) / area
            e1 = ((x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)) / area
            e2 = ((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)) / area
            inside = (e0 >= 0) & (e1 >= 0) & (e2 >= 0)
            inv_depth = e0 / z0 + e1 / z1 + e2 / z2
            depth = 1.0 / inv_depth
            nearer = inside & (depth < zbuf[b])
            zbuf[b] = torch.where(nearer, depth, zbuf[b])
            pix_to_face[b][nearer] = f
            persp = torch.stack([e0 / z0, e1 / z1, e2 / z2], -1) / inv_depth.unsqueeze(-1)
            bary[b][nearer] = persp[nearer]
    mask = pix_to_face >= 0
    depth_img = torch.where(mask, zbuf, torch.zeros_like(zbuf))
    return Fragments(pix_to_face=pix_to_face, bary=bary.to(screen_verts.dtype),
                     depth=depth_img.to(screen_verts.dtype), mask=mask)


def pytorch3d_available() -> bool:
    """Whether the optional pytorch3d backend can be used."""
    try:
        import pytorch3d.renderer.mesh.rasterize_meshes  # noqa: F401
    except ImportError:
        return False
    return True


def _rasterize_pytorch3d(screen_verts: Tensor, faces: Tensor, image_size: tuple[int, int], *,
                         cull_backfaces: bool, znear: float) -> Fragments:
    """The same contract through pytorch3d's CUDA/C++ rasterizer (optional dependency).

    pytorch3d's NDC has +x left, +y up and the shorter image side spanning [-1, 1]; pixel centres land
    on ``1 - (2j + 1) / S``. Flipping both axes keeps the triangles' winding, so culling agrees.
    """
    if not pytorch3d_available():
        raise RuntimeError("backend='pytorch3d' needs the pytorch3d package (not on PyPI: build it from "
                           "source for your torch/CUDA), or use backend='torch'")
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    H, W = image_size
    B = screen_verts.shape[0]
    s = float(min(H, W))
    x = -(2.0 * screen_verts[..., 0] - W) / s
    y = -(2.0 * screen_verts[..., 1] - H) / s
    z = screen_verts[..., 2]
    # Triangles touching the near plane are dropped like the torch backend does, by hiding them behind.
    keep = (screen_verts[:, faces, 2] > znear).all(-1)  # (B, F)
    ndc = torch.stack([x, y, z], -1)
    meshes = Meshes(verts=list(ndc), faces=[faces[keep[b]] for b in range(B)])
    face_map = [keep[b].nonzero().squeeze(1) for b in range(B)]
    pix_to_face, zbuf, bary, _ = rasterize_meshes(meshes, image_size=(H, W), blur_radius=0.0,
                                                  faces_per_pixel=1, perspective_correct=True,
                                                  cull_backfaces=cull_backfaces)
    pix_to_face, zbuf, bary = pix_to_face[..., 0], zbuf[..., 0], bary[..., 0, :]
    mask = pix_to_face >= 0
    # Packed face indices -> per-mesh indices into the original ``faces``.
    first = meshes.mesh_to_faces_packed_first_idx()
    local = pix_to_face - first.view(B, 1, 1)
    out = torch.full_like(pix_to_face, -1)
    for b in range(B):  # per mesh, not per pixel: maps kept-face indices back
        out[b][mask[b]] = face_map[b][local[b][mask[b]]]
    return Fragments(pix_to_face=out, bary=torch.where(mask.unsqueeze(-1), bary, torch.zeros_like(bary)),
                     depth=torch.where(mask, zbuf, torch.zeros_like(zbuf)), mask=mask)


def interpolate(fragments: Fragments, face_attrs: Tensor) -> Tensor:
    """Interpolate per-face-corner attributes with the fragments' barycentrics.

    Args:
        fragments: from :func:`rasterize`.
        face_attrs: (B or 1, F, 3, C) attribute of each corner of each face (e.g. ``uvs[uv_faces]``).

    Returns:
        (B, H, W, C); zero on background. Differentiable w.r.t. ``face_attrs`` and the barycentrics.
    """
    if face_attrs.ndim != 4 or face_attrs.shape[2] != 3:
        raise ValueError(f"face_attrs must be (B or 1, F, 3, C), got {tuple(face_attrs.shape)}")
    B, (H, W) = fragments.batch_size, fragments.image_size
    if face_attrs.shape[0] not in (1, B):
        raise ValueError(f"face_attrs batch {face_attrs.shape[0]} must be 1 or {B}")
    covered = fragments.covered()
    F, C = face_attrs.shape[1], face_attrs.shape[3]
    index = covered.face if face_attrs.shape[0] == 1 else covered.face + covered.batch * F
    corners = face_attrs.reshape(-1, 3 * C).index_select(0, index).view(-1, 3, C).permute(2, 1, 0)
    return scatter_channels(_blend(covered.bary, corners), covered.pixel, (B, H, W)).contiguous()


def interpolate_vertex_attrs(fragments: Fragments, faces: Tensor, vert_attrs: Tensor) -> Tensor:
    """Interpolate per-vertex attributes (without building the (B, F, 3, C) corner tensor).

    Args:
        fragments: from :func:`rasterize` (``pix_to_face`` indexes ``faces``).
        faces: (F, 3) vertex (or UV-coordinate) indices, e.g. ``uv_faces`` with ``vert_attrs = uvs``.
        vert_attrs: (B or 1, V, C) or (V, C) attributes.

    Returns:
        (B, H, W, C); zero on background.
    """
    covered = fragments.covered()
    values = interpolate_covered(fragments, faces, vert_attrs, covered)
    B, (H, W) = fragments.batch_size, fragments.image_size
    return scatter_channels(values, covered.pixel, (B, H, W)).contiguous()


def interpolate_covered(fragments: Fragments, faces: Tensor, vert_attrs: Tensor,
                        covered: CoveredPixels | None = None) -> Tensor:
    """Per-vertex attributes interpolated at the covered pixels only (cheaper than whole images when the
    mesh covers part of the frame; :func:`scatter_channels` turns the result into images).

    Args:
        fragments: from :func:`rasterize`.
        faces: (F, 3) indices into ``vert_attrs``.
        vert_attrs: (B or 1, V, C) or (V, C).
        covered: ``fragments.covered()``, to share it between several attributes.

    Returns:
        (C, N) interpolated attributes (channel-major) at ``covered.pixel``.
    """
    if vert_attrs.ndim == 2:
        vert_attrs = vert_attrs.unsqueeze(0)
    if vert_attrs.ndim != 3:
        raise ValueError(f"vert_attrs must be (B or 1, V, C) or (V, C), got {tuple(vert_attrs.shape)}")
    B = fragments.batch_size
    if vert_attrs.shape[0] not in (1, B):
        raise ValueError(f"vert_attrs batch {vert_attrs.shape[0]} must be 1 or {B}")
    faces = torch.as_tensor(faces, device=vert_attrs.device).long()
    covered = fragments.covered() if covered is None else covered
    batch = None if vert_attrs.shape[0] == 1 else covered.batch
    corners = _gather_corners(vert_attrs, faces, covered.face, batch)
    return _blend(covered.bary, corners)


def _blend(bary: Tensor, corners: Tensor) -> Tensor:
    """(3, N) barycentrics and (C, 3, N) corner values of the covered pixels -> (C, N) interpolated values."""
    b0, b1, b2 = bary.to(corners.dtype)
    c0, c1, c2 = corners.unbind(1)  # unbind's backward stacks; indexing's would zero-fill (C, 3, N) thrice
    return c0 * b0 + c1 * b1 + c2 * b2
