"""UV-space rasterisation and the painted albedo of the procedural head.

:func:`rasterize_uv` finds, for every texel centre, the UV triangle covering it (vectorised over
(triangle, texel) candidate pairs); the same routine checks that the layout has no overlaps. The
albedo is then painted per texel from the interpolated rest position on the surface, so features keep
crisp outlines (lip borders, brows, iris) regardless of how the UV layout stretches them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.morphable import procedural_anatomy as A
from core.morphable.procedural_anatomy import blob, gauss, smoothstep
from core.morphable.procedural_geometry import (
    EYE_POUCH,
    EYEBALL,
    MOUTH_BAG,
    SKIN,
    TEETH_LOWER,
    TEETH_UPPER,
    TONGUE,
    UV_RECTS,
    HeadMesh,
    eye_centre,
)
from core.morphable.procedural_rig import brow_line


def rasterize_uv(uvs: np.ndarray, uv_faces: np.ndarray, size: int, strict: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise UV triangles at the texel centres of a ``size`` x ``size`` texture (row 0 at v = 1).

    Args:
        uvs: (T, 2) coordinates in [0, 1], v up.
        uv_faces: (F, 3) indices into ``uvs``.
        size: texture height = width.
        strict: count a texel only when strictly inside a triangle (so texels on an edge shared by two
            triangles are not counted twice; use for overlap checks).

    Returns:
        face: (size, size) int64 index of a covering triangle (-1 where none).
        bary: (size, size, 3) barycentric coordinates of the texel centre in that triangle.
        count: (size, size) int64 number of triangles covering each texel centre.
    """
    tri = uvs[uv_faces] * size  # texel units; texel (i, j) centre at (j + 0.5, size - i - 0.5)
    tri[..., 1] = size - tri[..., 1]  # -> row coordinate grows downwards
    lo = np.ceil(tri.min(1) - 0.5).astype(np.int64)
    hi = np.floor(tri.max(1) - 0.5).astype(np.int64)
    lo = np.clip(lo, 0, size - 1)
    hi = np.clip(hi, -1, size - 1)
    nj = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0)
    ni = np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    counts = nj * ni
    total = int(counts.sum())
    face = np.full((size, size), -1, np.int64)
    bary = np.zeros((size, size, 3))
    count = np.zeros(size * size, np.int64)
    if total == 0:
        return face, bary, count.reshape(size, size)
    # per triangle, the affine map from a texel centre to its barycentric coordinates (l1, l2)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    valid = np.abs(den) > 1e-18
    inv = np.where(valid, 1.0 / np.where(valid, den, 1.0), 0.0)
    coef = np.stack([v1[:, 1] * inv, -v1[:, 0] * inv, -v0[:, 1] * inv, v0[:, 0] * inv], -1)
    offset = np.stack([-(a[:, 0] * coef[:, 0] + a[:, 1] * coef[:, 1]),
                       -(a[:, 0] * coef[:, 2] + a[:, 1] * coef[:, 3])], -1)
    table = np.concatenate([coef, offset, lo, nj[:, None]], -1)  # (F, 9)
    tid = np.repeat(np.arange(len(tri)), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    t = table[tid]  # one gather per candidate pair
    local = np.arange(total) - start
    di = local // t[:, 8].astype(np.int64)
    col = t[:, 6].astype(np.int64) + local - di * t[:, 8].astype(np.int64)
    row = t[:, 7].astype(np.int64) + di
    px, py = col + 0.5, row + 0.5
    l1 = t[:, 0] * px + t[:, 1] * py + t[:, 4]
    l2 = t[:, 2] * px + t[:, 3] * py + t[:, 5]
    l0 = 1.0 - l1 - l2
    eps = 1e-9
    if strict:
        inside = (l0 > eps) & (l1 > eps) & (l2 > eps)
    else:
        inside = (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
    inside &= valid[tid]
    lin = row[inside] * size + col[inside]
    count = np.bincount(lin, minlength=size * size)
    face.reshape(-1)[lin] = tid[inside]
    bary.reshape(-1, 3)[lin] = np.stack([l0[inside], l1[inside], l2[inside]], -1)
    return face, bary, count.reshape(size, size)


def uv_overlap_texels(uvs: np.ndarray, uv_faces: np.ndarray, size: int = 1024) -> int:
    """Number of texel centres strictly inside more than one UV triangle (0 for an overlap-free layout)."""
    _, _, count = rasterize_uv(uvs, uv_faces, size, strict=True)
    return int((count > 1).sum())


# ---------------------------------------------------------------------------------------------------
# albedo
# ---------------------------------------------------------------------------------------------------

SKIN_TONE = np.array([0.78, 0.575, 0.475])
LIP_TONE = np.array([0.70, 0.35, 0.34])
HAIR_TONE = np.array([0.19, 0.13, 0.095])
SCLERA_TONE = np.array([0.92, 0.90, 0.87])
IRIS_TONE = np.array([0.36, 0.25, 0.15])
TOOTH_TONE = np.array([0.93, 0.90, 0.82])
GUM_TONE = np.array([0.74, 0.40, 0.42])


def _noise(p: np.ndarray, rng: np.random.Generator, wavelength: float, octaves: int = 12) -> np.ndarray:
    """Smooth band-limited 3D noise in about [-1, 1] (sum of random plane waves; seamless on the surface)."""
    dirs = rng.normal(size=(octaves, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freq = 2.0 * np.pi / (wavelength * rng.uniform(0.6, 1.4, octaves))
    phase = rng.uniform(0.0, 2.0 * np.pi, octaves)
    waves = p.astype(np.float32) @ (dirs * freq[:, None]).T.astype(np.float32) + phase.astype(np.float32)
    return np.sin(waves).sum(1).astype(np.float64) / np.sqrt(octaves / 2.0)


def _skin_colour(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    col = np.tile(SKIN_TONE, (len(p), 1))
    blotch = _noise(p, rng, 0.025, 8)
    fine = _noise(p, rng, 0.004, 12)
    col *= (1.0 + 0.035 * blotch + 0.010 * fine)[:, None]
    # warmer cheeks, nose and ears; cooler, slightly darker under the eyes and on the jaw
    red = (0.55 * (blob(p, (0.042, -0.02, 0.08), (0.016, 0.016, 0.03)) + blob(p, (-0.042, -0.02, 0.08),
                                                                                (0.016, 0.016, 0.03)))
           + 0.5 * blob(p, (0.0, -0.024, 0.115), (0.008, 0.010, 0.02))
           + 0.6 * smoothstep(0.06, 0.075, ax) * gauss(((y - 0.01) / 0.03) ** 2) * smoothstep(0.03, -0.01, z))
    col += red[:, None] * np.array([0.06, -0.02, -0.02])
    under_eye = sum(blob(p, (s * A.EYE_X, A.Y_EYE - 0.011, 0.08), (0.011, 0.005, 0.03)) for s in (1.0, -1.0))
    col *= (1.0 - 0.07 * under_eye)[:, None]
    col += under_eye[:, None] * np.array([-0.01, -0.01, 0.015])
    upper_lid = sum(blob(p, (s * A.EYE_X, A.Y_EYE + 0.008, 0.085), (0.011, 0.004, 0.03)) for s in (1.0, -1.0))
    col += upper_lid[:, None] * np.array([0.0, -0.04, -0.03])
    # lips: vermilion inside the outlines, soft-edged
    dm = y - A.Y_MOUTH
    hu, hl = A.upper_vermilion_height(x), A.lower_vermilion_height(x)
    edge = 0.0007
    lip = np.where(dm >= 0, smoothstep(hu + edge, hu - edge, dm), smoothstep(hl + edge, hl - edge, -dm))
    lip *= smoothstep(A.MOUTH_HALF_WIDTH + 0.001, A.MOUTH_HALF_WIDTH - 0.002, ax) * smoothstep(0.05, 0.07, z)
    lip_col = LIP_TONE * (1.0 + 0.05 * fine)[:, None] * (1.0 - 0.12 * gauss((dm / 0.0012) ** 2))[:, None]
    col = col * (1.0 - lip[:, None]) + lip_col * lip[:, None]
    # nostrils
    nostril = sum(gauss(((x - s * 0.0068) / 0.0026) ** 2 + ((y + 0.0368) / 0.0015) ** 2) for s in (1.0, -1.0))
    col *= (1.0 - 0.42 * nostril * smoothstep(0.09, 0.1, z))[:, None]
    # eyebrows: strands along a tapering band
    dy = y - brow_line(ax)
    thickness = 0.0032 - 0.0016 * smoothstep(0.02, 0.05, ax)
    band = smoothstep(thickness, 0.6 * thickness, np.abs(dy + 0.0005))
    band *= smoothstep(0.0105, 0.0165, ax) * smoothstep(0.057, 0.049, ax) * smoothstep(0.05, 0.07, z)
    angle = np.radians(25.0) * np.sign(x)  # hairs slant outwards-up
    strands = 0.5 + 0.5 * np.sin((x * np.cos(angle) - dy * np.sin(angle) * 3.0) * 2600.0 + 3.0 * fine)
    brow = np.clip(band * (0.55 + 0.45 * strands), 0.0, 1.0) * 0.92
    col = col * (1.0 - brow[:, None]) + HAIR_TONE * brow[:, None]
    # short hair on the scalp above a hairline (temples recessed, down to the nape at the back)
    theta = np.degrees(np.abs(np.arctan2(x, z)))
    hairline = np.interp(theta, [0, 12, 28, 45, 62, 75, 88, 100, 115, 140, 180],
                         [0.077, 0.076, 0.071, 0.066, 0.052, 0.044, 0.047, 0.040, 0.010, -0.035, -0.048])
    hair = smoothstep(hairline - 0.002, hairline + 0.006, y + 0.0015 * _noise(p, rng, 0.006, 6))
    hair_col = HAIR_TONE * (1.0 + 0.25 * fine + 0.1 * blotch)[:, None]
    col = col * (1.0 - hair[:, None]) + hair_col * hair[:, None]
    return col


def _eyeball_colour(p: np.ndarray, polar: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sclera, iris with radial streaks and a dark limbal ring, pupil; ``polar`` from the front (rad)."""
    col = np.tile(SCLERA_TONE, (len(p), 1))
    col += smoothstep(0.9, 2.2, polar)[:, None] * np.array([0.0, -0.12, -0.12])  # pinker towards the back
    iris_edge = np.radians(31.0)
    pupil_edge = np.radians(12.0)
    psi = np.arctan2(p[:, 1], p[:, 0])
    streak = 0.5 + 0.5 * np.sin(psi * 37.0 + 4.0 * np.sin(psi * 5.0)) * np.sin(psi * 23.0 + 1.3)
    radial = (polar - pupil_edge) / (iris_edge - pupil_edge)
    iris = IRIS_TONE * (0.75 + 0.45 * streak)[:, None] * (1.25 - 0.5 * np.clip(radial, 0, 1))[:, None]
    iris = iris * (1.0 - 0.55 * smoothstep(0.75, 1.0, radial))[:, None]  # limbal ring
    in_iris = smoothstep(iris_edge + 0.03, iris_edge - 0.01, polar)
    col = col * (1.0 - in_iris[:, None]) + iris * in_iris[:, None]
    pupil = smoothstep(pupil_edge + 0.015, pupil_edge - 0.01, polar)
    col = col * (1.0 - pupil[:, None]) + 0.02 * pupil[:, None]
    del rng
    return col


def paint_albedo(mesh: HeadMesh, size: int = 512, seed: int = 0) -> np.ndarray:
    """(size, size, 3) float32 albedo over the layout of ``mesh`` (gaps filled by the nearest texel)."""
    rng = np.random.default_rng(seed)
    face, bary, _ = rasterize_uv(mesh.uvs, mesh.uv_faces, size)
    covered = face >= 0
    f = face[covered]
    w = bary[covered]
    p = (mesh.vertices[mesh.faces[f]] * w[:, :, None]).sum(1)
    part = mesh.face_part[f]
    col = np.zeros((len(f), 3))
    skin_rng = np.random.default_rng(rng.integers(1 << 31))
    eye_rng = np.random.default_rng(rng.integers(1 << 31))
    sel = part == SKIN
    col[sel] = _skin_colour(p[sel], skin_rng)
    # eyeballs: polar angle from the UV radius of the disc
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        u0, v0, u1, v1 = UV_RECTS[f"eyeball_{name}"]
        sel = (part == EYEBALL) & ((p[:, 0] > 0) == (sgn > 0))
        uv = (mesh.uvs[mesh.uv_faces[f[sel]]] * w[sel][:, :, None]).sum(1)
        rad = 0.49 * min(u1 - u0, v1 - v0)
        rho = np.hypot(uv[:, 0] - (u0 + u1) / 2, uv[:, 1] - (v0 + v1) / 2) / rad
        polar = np.pi * np.clip(rho, 0, 1) ** (1.0 / 0.62)
        col[sel] = _eyeball_colour(p[sel] - eye_centre(sgn), polar, eye_rng)
    lip_z = float(mesh.vertices[mesh.mouth_loop, 2].max())
    # mouth bag: inner lip near the opening, darkening into the throat
    sel = part == MOUTH_BAG
    depth = np.clip((lip_z - p[sel, 2]) / 0.05, 0.0, 1.0)
    inner = np.array([0.62, 0.30, 0.30]) * (1 - smoothstep(0.0, 0.35, depth))[:, None]
    deep = np.array([0.20, 0.05, 0.05]) * (1.0 - 0.85 * smoothstep(0.25, 0.9, depth))[:, None]
    col[sel] = inner + deep * smoothstep(0.0, 0.35, depth)[:, None]
    sel = part == EYE_POUCH
    col[sel] = np.array([0.72, 0.42, 0.42])
    for code, gum_up in ((TEETH_UPPER, True), (TEETH_LOWER, False)):
        sel = part == code
        q = p[sel]
        dy = (q[:, 1] - A.Y_MOUTH) * (1.0 if gum_up else -1.0)
        gum = smoothstep(0.0078, 0.0095, dy) if gum_up else smoothstep(0.0068, 0.0082, dy)
        arc = np.abs(q[:, 0]) * 1.05
        bounds = np.array([0.0, 0.0085, 0.0150, 0.0225, 0.0295]) * (1.0 if gum_up else 0.92)
        gap = np.exp(-0.5 * (np.min(np.abs(arc[:, None] - bounds[None]), axis=1) / 0.00045) ** 2)
        tooth = TOOTH_TONE * (1.0 - 0.25 * gap)[:, None] * (1.0 - 0.1 * smoothstep(0.004, 0.01, dy))[:, None]
        col[sel] = tooth * (1.0 - gum[:, None]) + GUM_TONE * gum[:, None]
    sel = part == TONGUE
    depth = np.clip((lip_z - 0.02 - p[sel, 2]) / 0.04, 0.0, 1.0)
    col[sel] = np.array([0.66, 0.33, 0.33]) * (1.0 - 0.6 * depth)[:, None]
    image = np.zeros((size, size, 3))
    image[covered] = np.clip(col, 0.0, 1.0)
    # fill the gaps between islands with the nearest painted texel so bilinear lookups never blend in black
    _, (ii, jj) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return image[ii, jj].astype(np.float32)
