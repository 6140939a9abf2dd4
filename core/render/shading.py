"""Normals, spherical-harmonics lighting, texture sampling, a one-call mesh renderer and numpy overlay
drawing.

Lighting model: Lambertian surfaces under distant light given by the first 9 real spherical harmonics of
the incident radiance (Ramamoorthi & Hanrahan 2001, "An efficient representation for irradiance
environment maps"). With radiance coefficients ``L_lm`` the irradiance is
``E(n) = sum_lm A_l L_lm Y_lm(n)`` with ``A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4``, and the shaded colour is
``albedo * E(n) / pi``, so a uniform white sky of radiance 1 leaves the albedo unchanged. Normals and
lighting live in world space (y up).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from core.render.camera import PerspectiveCamera
from core.render.raster import Fragments, interpolate_covered, rasterize, scatter_channels

Tensor = torch.Tensor

# Real SH normalisation constants for bands 0..2 (Y_00, Y_1m, Y_2{-2,-1,1}, Y_20, Y_22).
SH_C0 = 0.5 * math.sqrt(1.0 / math.pi)  # 0.282095
SH_C1 = math.sqrt(3.0 / (4.0 * math.pi))  # 0.488603
SH_C2 = 0.5 * math.sqrt(15.0 / math.pi)  # 1.092548
SH_C20 = 0.25 * math.sqrt(5.0 / math.pi)  # 0.315392
SH_C22 = 0.25 * math.sqrt(15.0 / math.pi)  # 0.546274
# Clamped-cosine convolution A_l divided by pi (so shading = albedo * sum(A_l / pi * L_lm * Y_lm)).
SH_BAND_OF = (0, 1, 1, 1, 2, 2, 2, 2, 2)
SH_LAMBERT = tuple((1.0, 2.0 / 3.0, 0.25)[band] for band in SH_BAND_OF)


# ------------------------------------------------------------------------------------------ normals
def face_normals(verts: Tensor, faces: Tensor, normalize: bool = True) -> Tensor:
    """(B, V, 3) vertices, (F, 3) counter-clockwise faces -> (B, F, 3) outward normals (unit, or with
    length = twice the triangle area when ``normalize`` is False)."""
    faces = torch.as_tensor(faces, device=verts.device).long()
    v0, v1, v2 = (verts.index_select(1, faces[:, k]) for k in range(3))
    n = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    return F.normalize(n, dim=-1, eps=1e-12) if normalize else n


def vertex_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """(B, V, 3) vertices, (F, 3) faces -> (B, V, 3) unit area-weighted vertex normals (differentiable).

    Each face adds its unnormalised normal (length = 2 * area) to its three vertices."""
    faces = torch.as_tensor(faces, device=verts.device).long()
    n_face = face_normals(verts, faces, normalize=False)  # (B, F, 3)
    B, V = verts.shape[:2]
    summed = verts.new_zeros(B, V, 3)
    for corner in range(3):  # three scatters of F rows, not a per-vertex loop
        summed.index_add_(1, faces[:, corner], n_face)
    return F.normalize(summed, dim=-1, eps=1e-12)


# ------------------------------------------------------------------------------------------ lighting
def sh_basis(normals: Tensor) -> Tensor:
    """(..., 3) unit directions -> (..., 9) real SH basis values, ordered
    ``Y_00, Y_1-1, Y_10, Y_11, Y_2-2, Y_2-1, Y_20, Y_21, Y_22`` (i.e. 1, y, z, x, xy, yz, 3z^2 - 1, xz,
    x^2 - y^2 times their constants)."""
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.full_like(x, SH_C0),
        SH_C1 * y, SH_C1 * z, SH_C1 * x,
        SH_C2 * x * y, SH_C2 * y * z, SH_C20 * (3.0 * z * z - 1.0), SH_C2 * x * z, SH_C22 * (x * x - y * y),
    ], dim=-1)


def sh_irradiance(normals: Tensor, sh: Tensor) -> Tensor:
    """Lambertian shading factor ``E(n) / pi`` for RGB SH radiance coefficients.

    Args:
        normals: (B, ..., 3) unit normals (e.g. (B, H, W, 3) or (B, V, 3)).
        sh: (B, 9, C) radiance coefficients per colour channel (C = 3 for RGB).

    Returns:
        (B, ..., C); not clamped, so an optimiser sees gradients everywhere (it can go below 0 for
        unphysical lights).
    """
    if sh.ndim != 3 or sh.shape[1] != 9:
        raise ValueError(f"sh must be (B, 9, C) coefficients, got {tuple(sh.shape)}")
    lambert = torch.tensor(SH_LAMBERT, device=sh.device, dtype=sh.dtype)
    coeffs = sh * lambert.view(1, 9, 1)
    basis = sh_basis(normals)  # (B, ..., 9)
    B = normals.shape[0]
    flat = basis.reshape(B, -1, 9) @ coeffs  # (B, P, C)
    return flat.reshape(*normals.shape[:-1], sh.shape[-1])


def sh_directional(direction: Tensor | tuple[float, float, float], intensity: float | Tensor = 1.0,
                   ambient: float | Tensor = 0.0, batch: int = 1, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """SH coefficients (B, 9, 3) of a uniform sky plus one distant light.

    The shading factor is then ``ambient + intensity * max(0, n . d)`` up to the 9-term approximation of
    the clamped cosine (``1/4 + c/2 + 5/32 (3c^2 - 1)`` times ``intensity``, for ``c = n . d``).

    Args:
        direction: (B, 3) or (3,) direction *towards* the light (normalised here).
        intensity, ambient: scalars or (3,) / (B, 3) RGB values.
        batch: B when ``direction`` is (3,).
    """
    d = torch.as_tensor(direction, device=device, dtype=dtype)
    d = F.normalize(d.reshape(-1, 3), dim=-1).expand(batch if d.ndim == 1 else d.shape[0], 3)
    B = d.shape[0]

    def rgb(value: float | Tensor) -> Tensor:  # scalar, (3,) or (B, 3) -> (B, 3)
        v = torch.as_tensor(value, device=device, dtype=dtype)
        return v.reshape(-1, 1 if v.numel() == 1 else 3).expand(B, 3)

    # A delta light of radiance pi * intensity gives E / pi ~ intensity * max(0, n . d).
    coeffs = math.pi * sh_basis(d).unsqueeze(-1) * rgb(intensity).unsqueeze(1)  # (B, 9, 3)
    # A uniform radiance `ambient` projects onto Y_00 only: L_00 = ambient / Y_00.
    sky = torch.zeros_like(coeffs)
    sky[:, 0, :] = rgb(ambient) / SH_C0
    return coeffs + sky


def shade(albedo: Tensor, normals: Tensor, sh: Tensor) -> Tensor:
    """Lambertian shading: (B, H, W, C) albedo, (B, H, W, 3) unit normals, (B, 9, C) SH -> (B, H, W, C)
    ``albedo * E(n) / pi``."""
    return albedo * sh_irradiance(normals, sh)


# ------------------------------------------------------------------------------------------ textures
def sample_texture(texture: Tensor, uv: Tensor, mode: str = "bilinear") -> Tensor:
    """Bilinear texture lookup.

    Args:
        texture: (B or 1, C, Ht, Wt); row 0 is the top of the image.
        uv: (B, H, W, 2) coordinates in [0, 1] with v up: (0, 0) is the texture's bottom-left corner,
            texel (row i, column j) is centred on ``((j + 0.5) / Wt, 1 - (i + 0.5) / Ht)``.
        mode: ``"bilinear"`` or ``"nearest"``; out-of-range coordinates clamp to the border.

    Returns:
        (B, H, W, C), differentiable w.r.t. both the texture and ``uv``.
    """
    if texture.ndim != 4:
        raise ValueError(f"texture must be (B or 1, C, Ht, Wt), got {tuple(texture.shape)}")
    if uv.ndim != 4 or uv.shape[-1] != 2:
        raise ValueError(f"uv must be (B, H, W, 2), got {tuple(uv.shape)}")
    B = uv.shape[0]
    if texture.shape[0] not in (1, B):
        raise ValueError(f"texture batch {texture.shape[0]} must be 1 or {B}")
    texture = texture.expand(B, -1, -1, -1)
    grid = torch.stack([uv[..., 0] * 2.0 - 1.0, 1.0 - uv[..., 1] * 2.0], dim=-1).to(texture.dtype)
    out = F.grid_sample(texture, grid, mode=mode, padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1)


# ------------------------------------------------------------------------------------------ renderer
def render_mesh(verts: Tensor, faces: Tensor, camera: PerspectiveCamera, uvs: Tensor, uv_faces: Tensor,
                texture: Tensor, sh: Tensor | None = None, background: Tensor | None = None, *,
                cull_backfaces: bool = True, fragments: Fragments | None = None) -> tuple[Tensor, Fragments]:
    """Render textured, SH-lit meshes.

    Args:
        verts: (B, V, 3) world-space vertices (metres, y up).
        faces: (F, 3) counter-clockwise vertex indices.
        camera: B cameras (or one, broadcast).
        uvs: (T, 2) or (B, T, 2) texture coordinates, v up.
        uv_faces: (F, 3) indices into ``uvs``.
        texture: (B or 1, C, Ht, Wt) albedo (or a C-channel neural texture with ``sh=None``).
        sh: optional (B or 1, 9, C) SH radiance coefficients (see :func:`sh_irradiance`); None = unlit.
        background: None (zeros), a (C,) colour, or a (B, H, W, C) image.
        cull_backfaces: skip triangles seen from behind (right for closed heads).
        fragments: reuse fragments already rasterized for these vertices and camera.

    Returns:
        image: (B, H, W, C), differentiable w.r.t. verts, camera, texture, uvs and sh (not through the
            silhouette).
        fragments: the :class:`Fragments` (``mask`` is the face/head coverage).
    """
    faces = torch.as_tensor(faces, device=verts.device).long()
    if fragments is None:
        fragments = rasterize(camera.to_screen(verts), faces, camera.image_size,
                              cull_backfaces=cull_backfaces)
    B, (H, W) = fragments.batch_size, fragments.image_size
    C = texture.shape[1]
    # Shade only the covered pixels (channel-major (C, N) rows), then scatter them over the background.
    covered = fragments.covered()
    uv = interpolate_covered(fragments, uv_faces, uvs, covered)  # (2, N)
    color = _sample_texture_covered(texture, uv, covered.batch, B)  # (C, N)
    if sh is not None:
        if sh.ndim != 3 or sh.shape[0] not in (1, B) or sh.shape[1:] != (9, C):
            raise ValueError(f"sh must be ({B} or 1, 9, {C}) for this batch and texture, got {tuple(sh.shape)}")
        sh = sh.expand(B, 9, C)
        normals = interpolate_covered(fragments, faces, vertex_normals(verts, faces), covered)  # (3, N)
        normals = normals * (normals * normals).sum(0).clamp_min(1e-24).rsqrt()
        color = color * _irradiance_covered(normals, sh, covered.batch)
    if background is None:
        base = None
    else:
        background = torch.as_tensor(background, device=color.device, dtype=color.dtype)
        if background.shape == (C,):
            base = background.view(C, 1).expand(C, B * H * W)
        elif background.shape == (B, H, W, C):
            base = background.permute(3, 0, 1, 2).reshape(C, -1)
        else:
            raise ValueError(f"background must be ({C},) or ({B}, {H}, {W}, {C}), "
                             f"got {tuple(background.shape)}")
    return scatter_channels(color, covered.pixel, (B, H, W), background=base).contiguous(), fragments


def _irradiance_covered(normals: Tensor, sh: Tensor, batch: Tensor) -> Tensor:
    """:func:`sh_irradiance` at covered pixels: (3, N) unit normals, (B, 9, C) SH, (N,) frame -> (C, N)."""
    B, _, C = sh.shape
    basis = sh_basis(normals.t()).t()  # (9, N)
    lambert = torch.tensor(SH_LAMBERT, device=sh.device, dtype=sh.dtype).view(1, 9, 1)
    coeffs = (sh * lambert).permute(0, 2, 1).reshape(B * C, 9)
    # Irradiance under every frame's light, then each pixel keeps its own frame's: one small matmul.
    all_frames = (coeffs @ basis.to(coeffs.dtype)).view(B, C, -1)  # (B, C, N)
    if B == 1:
        return all_frames[0]
    return all_frames.gather(0, batch.view(1, 1, -1).expand(1, C, -1))[0]


def _sample_texture_covered(texture: Tensor, uv: Tensor, batch: Tensor, B: int) -> Tensor:
    """:func:`sample_texture` at covered pixels: (Bt, C, Ht, Wt) texture, (2, N) uv, (N,) batch -> (C, N)."""
    if texture.ndim != 4 or texture.shape[0] not in (1, B):
        raise ValueError(f"texture must be (1 or {B}, C, Ht, Wt), got {tuple(texture.shape)}")
    grid = torch.stack([uv[0] * 2.0 - 1.0, 1.0 - uv[1] * 2.0], -1).to(texture.dtype)  # (N, 2)
    if texture.shape[0] == 1:
        out = F.grid_sample(texture, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="border",
                            align_corners=False)
        return out[0, :, 0]
    # Per-frame textures: pad each frame's pixels to a common length (pixels are sorted by frame).
    counts = torch.bincount(batch, minlength=B)
    first = (counts.cumsum(0) - counts).index_select(0, batch)
    position = torch.arange(batch.numel(), device=batch.device) - first
    longest = int(counts.max()) if batch.numel() else 0
    padded = grid.new_zeros(B, max(longest, 1), 2).index_put((batch, position), grid)
    out = F.grid_sample(texture, padded.unsqueeze(1), mode="bilinear", padding_mode="border",
                        align_corners=False)  # (B, C, 1, longest)
    return out[batch, :, 0, position].t()


# ------------------------------------------------------------------------------------------ overlays
def _color_array(color: tuple[float, ...] | np.ndarray, image: np.ndarray) -> np.ndarray:
    c = np.asarray(color, dtype=np.float64).reshape(-1)
    channels = image.shape[2] if image.ndim == 3 else 1
    if c.size == 1:
        c = np.repeat(c, channels)
    if c.size != channels:
        raise ValueError(f"color has {c.size} values, the image has {channels} channels")
    return c


def _stamp(image: np.ndarray, cols: np.ndarray, rows: np.ndarray, color: np.ndarray,
           alpha: float) -> np.ndarray:
    """Blend ``color`` into the pixels (rows, cols) that fall inside the image (returns a new image)."""
    out = image.copy()
    H, W = image.shape[:2]
    ok = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    # Unique pixels, so alpha blending does not stack where samples or disks overlap.
    flat = np.unique(rows[ok] * W + cols[ok])
    rows, cols = flat // W, flat % W
    value = color.reshape(-1) if out.ndim == 3 else color[0]
    blended = (1.0 - alpha) * out[rows, cols].astype(np.float64) + alpha * value
    if np.issubdtype(out.dtype, np.integer):
        info = np.iinfo(out.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    out[rows, cols] = blended.astype(out.dtype)
    return out


def _disk_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = max(int(math.ceil(radius)), 0)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx * dx + dy * dy <= radius * radius + 1e-9
    return dx[keep], dy[keep]


def draw_points(image: np.ndarray, points: np.ndarray, color: tuple[float, ...] = (255, 0, 0),
                radius: float = 2.0, alpha: float = 1.0) -> np.ndarray:
    """Draw filled disks at pixel coordinates.

    Args:
        image: (H, W, C) or (H, W) numpy image (uint8 or float); not modified.
        points: (N, 2) pixel coordinates (x right, y down, pixel centres at integer + 0.5); NaN skipped.
        color: one value per channel (or one value), in the image's range.
        radius: disk radius in pixels (0 = single pixels).
        alpha: opacity in [0, 1].

    Returns:
        A new image with the points drawn.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(1)]
    dx, dy = _disk_offsets(radius)
    cols = (np.floor(pts[:, 0])[:, None] + dx[None]).astype(np.int64).ravel()
    rows = (np.floor(pts[:, 1])[:, None] + dy[None]).astype(np.int64).ravel()
    return _stamp(image, cols, rows, _color_array(color, image), alpha)


def draw_wireframe(image: np.ndarray, points: np.ndarray, faces: np.ndarray | None = None,
                   edges: np.ndarray | None = None, color: tuple[float, ...] = (0, 255, 0),
                   thickness: float = 1.0, alpha: float = 1.0, visible: np.ndarray | None = None
                   ) -> np.ndarray:
    """Draw line segments (a mesh's edges) with vectorised DDA sampling.

    Args:
        image: (H, W, C) or (H, W) numpy image; not modified.
        points: (V, 2) projected vertices in pixel coordinates.
        faces: (F, 3) triangles whose edges are drawn (each shared edge once); or
        edges: (E, 2) vertex index pairs.
        color: one value per channel, in the image's range.
        thickness: line width in pixels.
        alpha: opacity in [0, 1].
        visible: optional (V,) bool; edges with an invisible end are skipped.

    Returns:
        A new image with the lines drawn.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if edges is None:
        if faces is None:
            raise ValueError("draw_wireframe needs faces or edges")
        f = np.asarray(faces, dtype=np.int64)
        pairs = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], 0)
        edges = np.unique(np.sort(pairs, axis=1), axis=0)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if visible is not None:
        vis = np.asarray(visible, dtype=bool)
        edges = edges[vis[edges[:, 0]] & vis[edges[:, 1]]]
    a, b = pts[edges[:, 0]], pts[edges[:, 1]]
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    a, b = a[ok], b[ok]
    # Skip segments far outside the image rather than sampling millions of off-screen points.
    H, W = image.shape[:2]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    margin = thickness + 1.0
    on = (hi[:, 0] >= -margin) & (lo[:, 0] <= W + margin) & (hi[:, 1] >= -margin) & (lo[:, 1] <= H + margin)
    a, b = a[on], b[on]
    steps = np.ceil(np.abs(b - a).max(1)).astype(np.int64) + 1  # one sample per pixel along the major axis
    seg = np.repeat(np.arange(len(a)), steps)
    k = np.arange(seg.size) - np.repeat(np.cumsum(steps) - steps, steps)
    t = k / np.maximum(steps[seg] - 1, 1)
    samples = a[seg] + (b[seg] - a[seg]) * t[:, None]
    dx, dy = _disk_offsets(max(thickness - 1.0, 0.0) / 2.0)
    cols = (np.floor(samples[:, 0])[:, None] + dx[None]).astype(np.int64).ravel()
    rows = (np.floor(samples[:, 1])[:, None] + dy[None]).astype(np.int64).ravel()
    return _stamp(image, cols, rows, _color_array(color, image), alpha)
