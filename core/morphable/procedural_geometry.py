"""Meshes of the procedural head: the sculpted skin with its lip and eye openings, the mouth bag and
eye pouches stitched to those openings, and the separate eyeballs, teeth and tongue.

The skin is a grid of rings (rows, from the vertex of the skull down to the neck) by columns (azimuth
around the y axis, column 0 at the front, the UV seam at the back). A row passes exactly through the
eye fissures and another through the mouth line; along them the grid is cut (vertices duplicated) so
that the lids and lips can part. Everything is built with numpy index arithmetic, no per-vertex loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.morphable import procedural_anatomy as A
from core.morphable.procedural_anatomy import blob, clamp_eval, gauss, pchip, smooth_max, smoothstep

# part codes of :attr:`HeadMesh.part`
SKIN, MOUTH_BAG, EYE_POUCH, EYEBALL, TEETH_UPPER, TEETH_LOWER, TONGUE = range(7)
PART_NAMES = ("skin", "mouth_bag", "eye_pouch", "eyeball", "teeth_upper", "teeth_lower", "tongue")


@dataclass(frozen=True)
class GeometrySpec:
    """Resolution of the procedural meshes (see ``PROCEDURAL_RESOLUTIONS`` in ``procedural.py``).

    Attributes:
        n_columns: skin columns around the head (even).
        n_rows: skin rings from the top of the head to the bottom of the neck.
        eye_medial_column / mouth_corner_column / eye_lateral_column: the columns (counted from the
            front centre) of the inner eye corners, the mouth corners and the outer eye corners.
        dense_ears: spend more columns on the ears (smoother ear silhouettes; needs about 60 columns).
        eyeball_rings / eyeball_segments: latitude rings (odd, so one is the equator) and meridians
            of each eyeball.
        teeth_samples / teeth_section: samples along each dental arch and around its cross-section.
        tongue_rings / tongue_segments: resolution of the tongue.
    """

    n_columns: int = 80
    n_rows: int = 52
    eye_medial_column: int = 5
    mouth_corner_column: int = 7
    eye_lateral_column: int = 13
    dense_ears: bool = True
    eyeball_rings: int = 9
    eyeball_segments: int = 14
    teeth_samples: int = 18
    teeth_section: int = 8
    tongue_rings: int = 7
    tongue_segments: int = 12

    def __post_init__(self) -> None:
        if self.eyeball_rings % 2 == 0 or self.eyeball_rings < 3:
            raise ValueError(f"GeometrySpec.eyeball_rings must be odd and >= 3, got {self.eyeball_rings}")
        if self.n_rows < 16 or min(self.teeth_samples, self.teeth_section, self.tongue_rings,
                                   self.tongue_segments, self.eyeball_segments) < 3:
            raise ValueError(f"GeometrySpec is too coarse to build a head: {self}")


@dataclass
class HeadMesh:
    """The assembled meshes plus the bookkeeping the rig, blendshapes and texture need.

    Attributes:
        vertices: (V, 3) float64 rest positions.
        faces: (F, 3) int64, counter-clockwise seen from outside.
        uvs: (T, 2) float64; uv_faces: (F, 3) int64.
        part: (V,) int8 part code (``SKIN``...); face_part: (F,) int8.
        side: (V,) int8: +1 on the upper side of the lip/eye openings (and the upper half of the mouth
            bag and pouches), -1 on the lower side, 0 elsewhere or on the opening corners.
        eye: (V,) int8: +1 for vertices belonging to the left eye (eyeball, pouch, fissure), -1 right, 0.
        grid_row / grid_col: (V,) skin grid coordinates (-1 off the grid); theta: (V,) azimuth of skin
            vertices (nan elsewhere); head_share: (V,) how much the head section (vs. the neck) shapes
            a skin vertex.
        mouth_loop: (L,) skin vertices around the mouth opening (upper edge left to right, then lower
            edge right to left); bag_rings: (K, L) mouth bag rings (ring 0 is ``mouth_loop``);
            bag_pole: index of the bag's closing vertex.
        eye_loops / pouch_rings / pouch_poles: the same per eye (``"left"``, ``"right"``).
        eyeball: per eye the (N,) vertex indices of its eyeball; eyeball_equator: per eye the indices
            of the equator ring (their mean is the eye centre).
        rows_y / columns_theta: the skin grid's row heights and column angles.
        row_of: named skin rows (``"eye"``, ``"mouth"``, ``"neck_bottom"``).
        skin_vertex_grid: (rows, columns) vertex index of each skin grid node (the upper copy on a slit).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    part: np.ndarray
    face_part: np.ndarray
    side: np.ndarray
    eye: np.ndarray
    grid_row: np.ndarray
    grid_col: np.ndarray
    theta: np.ndarray
    head_share: np.ndarray
    mouth_loop: np.ndarray
    bag_rings: np.ndarray
    bag_pole: int
    eye_loops: dict[str, np.ndarray]
    pouch_rings: dict[str, np.ndarray]
    pouch_poles: dict[str, int]
    eyeball: dict[str, np.ndarray]
    eyeball_equator: dict[str, np.ndarray]
    rows_y: np.ndarray
    columns_theta: np.ndarray
    row_of: dict[str, int]
    skin_vertex_grid: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.int64))


# ---------------------------------------------------------------------------------------------------
# skin grid: rows and columns
# ---------------------------------------------------------------------------------------------------


def _solve_theta(x_target: float, y: float) -> float:
    """Azimuth at which the base surface at height ``y`` reaches ``|x| = x_target``."""
    theta = np.arcsin(x_target / 0.09)
    for _ in range(30):
        r, _h = A.base_radius(np.array([theta]), np.array([y]))
        theta = float(np.arcsin(np.clip(x_target / r[0], -1.0, 1.0)))
    return theta


def column_angles(spec: GeometrySpec) -> np.ndarray:
    """(n_columns,) azimuths, column 0 at the front, mirror-symmetric (``theta[-j] == -theta[j]``).

    A monotone cubic through anchors puts the eye and mouth corners exactly on columns and makes the
    columns dense on the face and sparse at the back of the head."""
    nc = spec.n_columns
    anchors = (spec.eye_medial_column, spec.mouth_corner_column, spec.eye_lateral_column)
    if nc % 2 or not 0 < anchors[0] < anchors[1] < anchors[2] < nc // 4:
        raise ValueError("GeometrySpec: need an even n_columns and 0 < eye_medial_column < "
                         f"mouth_corner_column < eye_lateral_column < n_columns / 4, got {nc} and {anchors}")
    step = 2.0 * np.pi / nc
    anchors_phi = [0.0, anchors[0] * step, anchors[1] * step, anchors[2] * step]
    anchors_theta = [0.0, _solve_theta(A.EYE_MEDIAL_X, A.Y_EYE), _solve_theta(A.MOUTH_HALF_WIDTH, A.Y_MOUTH),
                     _solve_theta(A.EYE_LATERAL_X, A.Y_EYE)]
    if spec.dense_ears:  # the ears (80 to 116 degrees) get denser columns than the cheeks and the back
        ear_front = max(round(0.275 * nc), anchors[2] + 2)
        ear_back = max(round(0.3875 * nc), ear_front + 2)
        anchors_phi += [ear_front * step, ear_back * step]
        anchors_theta += [np.radians(80.0), np.radians(116.0)]
    anchors_phi.append(np.pi)
    anchors_theta.append(np.pi)
    curve = pchip(anchors_phi, anchors_theta)
    half = curve(np.arange(nc // 2 + 1) * step)
    theta = np.concatenate([half, -half[1:-1][::-1]])
    theta[nc // 2] = np.pi
    return theta


def _face_band_density(y: np.ndarray) -> np.ndarray:
    """Relative row density: finer on the face (eyes to chin), where the detail is."""
    return 1.0 + 1.9 * smoothstep(-0.105, -0.085, y) * smoothstep(0.052, 0.036, y)


def row_heights(spec: GeometrySpec) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Ring heights (descending) spaced by density-weighted arc length, with rows exactly at the eye
    line and the mouth line.

    Returns (rows_y (n_rows,), rows_v (n_rows,) texture v of each row (top pole at 1), eye row, mouth row)."""
    y = np.linspace(A.Y_TOP, A.Y_NECK_BOTTOM, 6001)
    step = np.zeros_like(y)
    for th in (0.0, 0.5 * np.pi, np.pi):
        r, _ = A.base_radius(np.full_like(y, th), y)
        step[1:] += np.hypot(np.diff(y), np.diff(r)) / 3.0
    arc = np.cumsum(step * _face_band_density(y))
    s_eye, s_mouth, s_end = np.interp([A.Y_EYE, A.Y_MOUTH, A.Y_NECK_BOTTOM], y[::-1], arc[::-1])
    n = spec.n_rows
    n1 = max(2, int(round(n * s_eye / s_end)))
    n2 = max(2, int(round(n * (s_mouth - s_eye) / s_end)))
    n3 = n - n1 - n2
    if n3 < 3:
        raise ValueError(f"n_rows={n} is too small for the procedural head")
    s_rows = np.concatenate([s_eye * np.arange(1, n1 + 1) / n1,
                             s_eye + (s_mouth - s_eye) * np.arange(1, n2 + 1) / n2,
                             s_mouth + (s_end - s_mouth) * np.arange(1, n3 + 1) / n3])
    rows_y = np.interp(s_rows, arc, y)
    rows_y[n1 - 1], rows_y[n1 + n2 - 1], rows_y[-1] = A.Y_EYE, A.Y_MOUTH, A.Y_NECK_BOTTOM
    return rows_y, s_rows / s_end, n1 - 1, n1 + n2 - 1


# ---------------------------------------------------------------------------------------------------
# sculpting
# ---------------------------------------------------------------------------------------------------

_NOSE_PROFILE = pchip(  # protrusion of the nose ridge over the face, by height
    [0.036, 0.027, 0.017, 0.006, -0.006, -0.016, -0.0225, -0.0270, -0.0315, -0.0355, -0.039, -0.0425],
    [0.0, 0.0020, 0.0052, 0.0090, 0.0132, 0.0176, 0.0214, 0.0226, 0.0198, 0.0125, 0.0045, 0.0])
_NOSE_HALF_WIDTH = pchip([0.032, 0.016, 0.000, -0.014, -0.024, -0.032, -0.042],
                         [0.0088, 0.0068, 0.0072, 0.0086, 0.0098, 0.0104, 0.0110])


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def _line_distance(px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Distance of 2D points to segment a-b and the clamped position along it (0 at a, 1 at b)."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(px - ax - t * dx, py - ay - t * dy), t


def face_relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Forward (+z) relief of the face features over the base surface: nose, brows, lips, chin..."""
    ax = np.abs(x)
    h = np.zeros_like(x)
    # nose: a ridge whose height follows the profile, flat-topped across, with a wider soft base
    p = clamp_eval(_NOSE_PROFILE, y) * (y < 0.036) * (y > -0.0425)
    w = clamp_eval(_NOSE_HALF_WIDTH, y)
    wide = 0.22 * smoothstep(-0.036, -0.018, y)  # the side walls flare into the cheeks above the tip only
    ridge = np.exp(-0.69 * np.abs(x / w) ** 2.4)
    h += p * (ridge * (1.0 - wide) + wide * np.exp(-0.69 * np.abs(x / (2.3 * w)) ** 2))
    # rounded tip lobule
    h += 0.0018 * gauss((x / 0.0062) ** 2 + ((y - A.Y_NOSE_TIP - 0.0005) / 0.0052) ** 2)
    # alae (nostril wings) with the alar groove around them
    for sgn in (-1.0, 1.0):
        d2 = ((x - sgn * 0.0142) / 0.0052) ** 2 + ((y + 0.0332) / 0.0054) ** 2
        h += 0.0068 * np.exp(-0.5 * d2 ** 1.15)
        h -= 0.0012 * gauss(((np.sqrt(d2) - 1.75) / 0.35) ** 2) * smoothstep(-0.045, -0.036, y)
    # brow ridge and glabella
    brow_line = A.Y_BROW - 0.0045 + 0.0022 * gauss(((ax - 0.030) / 0.012) ** 2)
    along_brow = smoothstep(0.004, 0.016, ax) * smoothstep(0.060, 0.044, ax)
    h += 0.0042 * gauss(((y - brow_line) / 0.0062) ** 2) * along_brow
    h += 0.0022 * gauss((x / 0.011) ** 2 + ((y - A.Y_BROW + 0.003) / 0.008) ** 2)
    # muzzle: the dental arch pushes the mouth region forward
    h += 0.0085 * gauss((x / 0.023) ** 2 + ((y + 0.057) / 0.026) ** 2)
    # lips
    h += _lip_relief(x, y)
    # labiomental fold and chin
    h -= 0.0024 * gauss((x / 0.017) ** 2 + ((y - A.Y_MOUTH + 0.0175) / 0.0042) ** 2)
    h += 0.0068 * gauss((x / 0.0135) ** 2 + ((y + 0.0835) / 0.0095) ** 2)
    h += 0.0025 * gauss((x / 0.024) ** 2 + ((y + 0.080) / 0.014) ** 2)
    # nasolabial folds: a groove from the nose wing towards the mouth corner, fuller cheek beside it
    for sgn in (-1.0, 1.0):
        d, t = _line_distance(x, y, (sgn * 0.0215, -0.0345), (sgn * 0.0335, -0.066))
        fade = smoothstep(1.05, 0.7, t)
        h -= 0.0011 * gauss((d / 0.0024) ** 2) * fade
        side = np.clip(sgn * (x - sgn * 0.027) / 0.01, -1.0, 1.0)
        h += 0.0014 * gauss((d / 0.007) ** 2) * fade * smoothstep(-0.2, 0.6, side)
    # philtrum: two ridges and the groove between them
    philtrum = smoothstep(A.Y_SUBNASALE, A.Y_SUBNASALE - 0.003, y) * smoothstep(
        A.Y_MOUTH + 0.0070, A.Y_MOUTH + 0.0095, y)
    h += philtrum * (0.0007 * gauss(((ax - 0.0048) / 0.0018) ** 2) - 0.0005 * gauss((x / 0.0025) ** 2))
    return h


def _lip_relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Forward bulge of the upper and lower vermilion, creased where the lips meet."""
    hu = A.upper_vermilion_height(x)
    hl = A.lower_vermilion_height(x)
    inside = np.abs(x) < A.MOUTH_HALF_WIDTH
    gate = np.clip(1.0 - (x / A.MOUTH_HALF_WIDTH) ** 2, 0.0, 1.0)
    tu = np.where(inside, (y - A.Y_MOUTH) / np.maximum(hu, 1e-6), -1.0)
    tl = np.where(inside, (A.Y_MOUTH - y) / np.maximum(hl, 1e-6), -1.0)
    upper = np.where((tu >= 0) & (tu <= 1), np.sin(np.pi * np.clip(tu, 0, 1) ** 0.8) ** 0.55, 0.0)
    upper += 0.16 * gauss(((tu - 1.0) / 0.16) ** 2)  # the white roll along the vermilion border
    upper += np.where(tu > 1, 0.45 * gauss(((tu - 1.0) * np.maximum(hu, 1e-6) / 0.006) ** 2), 0.0)
    lower = np.where((tl >= 0) & (tl <= 1), np.sin(np.pi * np.clip(tl, 0, 1) ** 1.1) ** 0.6, 0.0)
    lower += np.where(tl > 1, 0.35 * gauss(((tl - 1.0) * np.maximum(hl, 1e-6) / 0.004) ** 2), 0.0)
    return gate ** 0.5 * (0.0040 * upper * (y >= A.Y_MOUTH) + 0.0050 * lower * (y < A.Y_MOUTH))


def side_relief(p: np.ndarray) -> np.ndarray:
    """Relief along the surface normal: cheekbones, temples, jaw angles, ears."""
    h = np.zeros(len(p))
    for sgn in (-1.0, 1.0):
        h += 0.0052 * blob(p, [sgn * 0.053, A.Y_EYE - 0.021, 0.055], [0.015, 0.0105, 0.03])
        h -= 0.0022 * blob(p, [sgn * 0.050, -0.045, 0.05], [0.013, 0.012, 0.03])
        h -= 0.0030 * blob(p, [sgn * 0.067, 0.040, 0.045], [0.012, 0.014, 0.02])
        h += 0.0030 * blob(p, [sgn * 0.056, -0.060, 0.0], [0.012, 0.012, 0.025])
        h += 0.0018 * blob(p, [sgn * 0.028, 0.070, 0.09], [0.018, 0.015, 0.03])
    h += _ear_relief(p)
    return h


def _ear_relief(p: np.ndarray) -> np.ndarray:
    """A stylised ear on each side: raised helix rim at the back, hollow concha in front, lobe below."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    h = np.zeros(len(p))
    for sgn in (-1.0, 1.0):
        on_side = smoothstep(0.03, 0.06, sgn * x)
        # ear frame: u backwards along the head side (from the tragus), v up; the ear leans back
        u = -(z - 0.004)
        v = y - 0.010
        lean = np.radians(12.0)
        u, v = u * np.cos(lean) - v * np.sin(lean), u * np.sin(lean) + v * np.cos(lean)
        # outline: an egg, wider at the top
        au = 0.0155 + 0.002 * np.tanh(v / 0.01)
        e = np.sqrt(((u - 0.011) / au) ** 2 + (v / 0.031) ** 2)
        rim = gauss(((e - 0.83) / 0.13) ** 2) * smoothstep(-0.012, 0.004, u)
        plate = smoothstep(1.0, 0.78, e) * smoothstep(-0.008, 0.006, u)
        concha = gauss(((u - 0.009) / 0.0055) ** 2 + ((v + 0.002) / 0.010) ** 2)
        h += on_side * (0.0090 * rim + 0.0062 * plate - 0.0045 * concha)
    return h


def _sculpt(base: np.ndarray, normals: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Face relief along z on the front, side relief along the normals."""
    front = smoothstep(np.radians(85.0), np.radians(55.0), np.abs(theta))
    out = base.copy()
    out[:, 2] += front * face_relief(base[:, 0], base[:, 1])
    out += side_relief(base)[:, None] * normals
    return out


# ---------------------------------------------------------------------------------------------------
# eyes: open the fissures and wrap the lids around the eyeballs
# ---------------------------------------------------------------------------------------------------


def eye_fraction(ax: np.ndarray) -> np.ndarray:
    """Position across the fissure from the inner (0) to the outer (1) corner for ``|x|``."""
    return (ax - A.EYE_MEDIAL_X) / (A.EYE_LATERAL_X - A.EYE_MEDIAL_X)


def lid_opening(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest opening of the upper and lower lid margins (metres above / below the fissure line)."""
    tc = np.clip(t, 0.0, 1.0)
    up = A.EYE_OPEN_UP * np.sin(np.pi * tc ** 0.82) ** 0.72
    down = A.EYE_OPEN_DOWN * np.sin(np.pi * tc ** 1.15) ** 0.85
    return up, down


def eye_centre(sgn: float) -> np.ndarray:
    return np.array([sgn * A.EYE_X, A.Y_EYE, A.EYE_Z])


def _open_eyes(v: np.ndarray, side: np.ndarray, on_fissure: np.ndarray) -> np.ndarray:
    """Move vertices vertically so the fissures open into almonds; then set the lids on the eyeballs.

    ``side`` says which lid a fissure vertex belongs to; ``on_fissure`` marks the margin vertices."""
    v = v.copy()
    x, y = v[:, 0], v[:, 1]
    ax = np.abs(x)
    t = eye_fraction(ax)
    up, down = lid_opening(t)
    above = np.where(on_fissure, side > 0, y > A.Y_EYE)
    dy = y - A.Y_EYE
    falloff = gauss((dy / 0.0105) ** 2)
    region = smoothstep(0.065, 0.050, ax) * smoothstep(0.004, 0.012, ax) * smoothstep(0.03, 0.05, v[:, 2])
    region = region * (np.abs(y - A.Y_EYE) < 0.045)  # exactly nothing below the nose (keeps the mouth row)
    shift = np.where(above, up, -down) * falloff * region
    tilt = A.EYE_CANTHAL_TILT * (np.clip(t, -0.3, 1.3) - 0.5) * gauss((dy / 0.016) ** 2) * region
    v[:, 1] += shift + tilt
    # lids: a socket carved into the face, never closer to the eye centre than the lid sphere; the lid
    # thickens away from its margin and the upper lid gets a crease
    tc = np.clip(t, 0.0, 1.0)
    dy_lid = v[:, 1] - A.Y_EYE - A.EYE_CANTHAL_TILT * (tc - 0.5)
    beyond = np.maximum(np.maximum(-t, t - 1.0), 0.0) * (A.EYE_LATERAL_X - A.EYE_MEDIAL_X)
    margin_v = np.where(above, np.maximum(dy_lid - up, 0.0), np.maximum(-dy_lid - down, 0.0))
    margin = np.hypot(margin_v, beyond)  # distance from the lid margin
    thick = 0.0012 * smoothstep(0.0, 0.0045, margin)
    crease = np.where(above, 0.0010 * gauss(((margin - 0.0068) / 0.0017) ** 2), 0.0)
    crease = crease * np.sqrt(np.clip(4.0 * tc * (1.0 - tc), 0.0, 1.0))
    radius = A.EYE_RADIUS + A.LID_GAP + thick
    for sgn in (-1.0, 1.0):
        c = eye_centre(sgn)
        mine = (sgn * x > 0.0) & (v[:, 2] > 0.03)
        dx = v[:, 0] - c[0]
        rho2 = dx ** 2 + (v[:, 1] - c[1]) ** 2
        cap = c[2] + np.sqrt(np.maximum(radius ** 2 - rho2, 0.0)) - crease
        z_sphere = np.where(rho2 < radius ** 2, cap, -1.0)  # -1: no lid sphere here, keep the socket
        rho = np.sqrt((dx / 0.0158) ** 2 + ((v[:, 1] - c[1]) / 0.0112) ** 2)
        z_socket = v[:, 2] - 0.016 * (1.0 - smoothstep(0.6, 1.65, rho)) ** 1.5
        z_new, _ = smooth_max(z_sphere, z_socket, 0.0032)
        z_new = np.where(on_fissure & (side != 0), z_sphere, z_new)  # margins exactly on the lid sphere
        v[:, 2] = np.where(mine & (rho < 2.2), z_new, v[:, 2])
    return v


# ---------------------------------------------------------------------------------------------------
# generic tube meshes (rings of vertex indices closed by poles)
# ---------------------------------------------------------------------------------------------------


def tube_faces(rings: np.ndarray, pole_start: int | None, pole_end: int | None) -> np.ndarray:
    """Faces of a closed tube: (K, M) ring vertex indices (each ring a closed loop), optional poles.

    Winding follows the stitched mouth bag convention (ring 0 edges run ``l+1 -> l``); callers fix
    the orientation of separate closed meshes afterwards (:func:`orient_outward`)."""
    k, m = rings.shape
    nxt = np.roll(np.arange(m), -1)
    out = []
    if pole_start is not None:
        out.append(np.stack([rings[0], rings[0, nxt], np.full(m, pole_start)], -1))
    for r in range(k - 1):
        a0, a1 = rings[r], rings[r, nxt]
        b0, b1 = rings[r + 1], rings[r + 1, nxt]
        out.append(np.stack([a1, a0, b0], -1))
        out.append(np.stack([a1, b0, b1], -1))
    if pole_end is not None:
        out.append(np.stack([rings[-1, nxt], rings[-1], np.full(m, pole_end)], -1))
    return np.concatenate(out).astype(np.int64)


def tube_uvs(k: int, m: int, has_start: bool, has_end: bool, rect: tuple[float, float, float, float]
             ) -> tuple[np.ndarray, np.ndarray]:
    """UVs for :func:`tube_faces` laid out in ``rect = (u0, v0, u1, v1)``: rings along v, the loop
    along u with a duplicated seam column, one pole copy per pole triangle.

    Returns (uvs (T, 2), uv_faces (F, 3)) with uv_faces indexing the returned uvs."""
    u0, v0, u1, v1 = rect
    rows = k + int(has_start) + int(has_end)
    vv = v1 - (v1 - v0) * (np.arange(rows) + 0.5) / rows
    uu = u0 + (u1 - u0) * np.arange(m + 1) / m
    grid = np.stack(np.meshgrid(uu, vv[int(has_start):int(has_start) + k], indexing="xy"), -1).reshape(-1, 2)
    uvs = [grid]
    gid = np.arange(k * (m + 1)).reshape(k, m + 1)
    base = len(grid)
    faces = []
    centres = u0 + (u1 - u0) * (np.arange(m) + 0.5) / m
    j = np.arange(m)
    if has_start:
        uvs.append(np.stack([centres, np.full(m, v1 - 0.02 * (v1 - v0) / rows)], -1))
        faces.append(np.stack([gid[0, j], gid[0, j + 1], base + j], -1))
        base += m
    for r in range(k - 1):
        a0, a1 = gid[r, j], gid[r, j + 1]
        b0, b1 = gid[r + 1, j], gid[r + 1, j + 1]
        faces.append(np.stack([a1, a0, b0], -1))
        faces.append(np.stack([a1, b0, b1], -1))
    if has_end:
        uvs.append(np.stack([centres, np.full(m, v0 + 0.02 * (v1 - v0) / rows)], -1))
        faces.append(np.stack([gid[-1, j + 1], gid[-1, j], base + j], -1))
    return np.concatenate(uvs), np.concatenate(faces).astype(np.int64)


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh (positive when its faces wind outward)."""
    tri = vertices[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip a closed component's winding if it encloses negative volume."""
    return faces if signed_volume(vertices, faces) > 0 else faces[:, ::-1].copy()


# ---------------------------------------------------------------------------------------------------
# the skin
# ---------------------------------------------------------------------------------------------------


@dataclass
class _Skin:
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    side: np.ndarray
    eye: np.ndarray
    grid_row: np.ndarray
    grid_col: np.ndarray
    theta: np.ndarray
    head_share: np.ndarray
    mouth_loop: np.ndarray
    mouth_loop_side: np.ndarray
    eye_loops: dict[str, np.ndarray]
    eye_loop_sides: dict[str, np.ndarray]
    rows_y: np.ndarray
    columns_theta: np.ndarray
    row_of: dict[str, int]
    vertex_grid: np.ndarray


SKIN_UV_RECT = (0.004, 0.262, 0.996, 0.996)


def build_skin(spec: GeometrySpec) -> _Skin:
    """The sculpted closed-up skin grid with its mouth and eye slits cut (lower copies appended)."""
    nc = spec.n_columns
    theta = column_angles(spec)
    rows_y, rows_v, eye_row, mouth_row = row_heights(spec)
    # close the neck with two flat rings and a pole
    cap_scale = np.array([0.62, 0.27])
    n_main = len(rows_y)
    all_y = np.concatenate([rows_y, np.full(len(cap_scale), A.Y_NECK_BOTTOM)])
    scale = np.concatenate([np.ones(n_main), cap_scale])
    dv = rows_v[-1] - rows_v[-2]
    all_v = np.concatenate([rows_v, rows_v[-1] + dv * np.arange(1, len(cap_scale) + 1)])
    nr = len(all_y)
    tt, yy = np.meshgrid(theta, all_y, indexing="xy")  # (nr, nc)
    r, head_share = A.base_radius(tt, yy)
    r = r * scale[:, None]
    grid = np.stack([r * np.sin(tt), yy, r * np.cos(tt)], -1).reshape(-1, 3)
    top = np.array([[0.0, A.Y_TOP, 0.0]])
    bottom = np.array([[0.0, A.Y_NECK_BOTTOM, 0.0]])  # the cap rings shrink onto the y axis
    base = np.concatenate([top, grid, bottom])
    vid = 1 + np.arange(nr * nc).reshape(nr, nc)
    pole_top, pole_bottom = 0, 1 + nr * nc

    # slits: (row, first column, last column) with the corner columns shared
    jm, je0, je1 = spec.mouth_corner_column, spec.eye_medial_column, spec.eye_lateral_column
    slits = {"mouth": (mouth_row, -jm, jm), "left": (eye_row, je0, je1), "right": (eye_row, -je1, -je0)}
    lower_id = vid.copy()
    n_base = len(base)
    dup_src: list[np.ndarray] = []
    loops: dict[str, np.ndarray] = {}
    loop_sides: dict[str, np.ndarray] = {}
    for name, (row, c0, c1) in slits.items():
        cols = np.arange(c0, c1 + 1) % nc
        inner = cols[1:-1]
        new = n_base + sum(len(d) for d in dup_src) + np.arange(len(inner))
        dup_src.append(vid[row, inner])
        lower_id[row, inner] = new
        loops[name] = np.concatenate([vid[row, cols], new[::-1]])
        ones = np.ones(len(inner), np.int64)
        loop_sides[name] = np.concatenate([[0], ones, [0], -ones])
    dup_src_all = np.concatenate(dup_src)

    # faces: top fan, quads (diagonals mirrored between the two halves), bottom fan
    j = np.arange(nc)
    jn = (j + 1) % nc
    left_half = j < nc // 2
    faces = [np.stack([np.full(nc, pole_top), vid[0, j], vid[0, jn]], -1)]
    uv_col = (j + nc // 2) % nc  # texture column of each grid column; the seam is at the back
    uvid = np.arange(nr * (nc + 1)).reshape(nr, nc + 1)
    n_uv_grid = nr * (nc + 1)
    uv_faces = [np.stack([n_uv_grid + uv_col, uvid[0, uv_col], uvid[0, uv_col + 1]], -1)]
    for i in range(nr - 1):
        a, b = lower_id[i, j], lower_id[i, jn]
        c, d = vid[i + 1, j], vid[i + 1, jn]
        ua, ub = uvid[i, uv_col], uvid[i, uv_col + 1]
        uc, ud = uvid[i + 1, uv_col], uvid[i + 1, uv_col + 1]
        t1 = np.where(left_half[:, None], np.stack([a, c, b], -1), np.stack([a, c, d], -1))
        t2 = np.where(left_half[:, None], np.stack([b, c, d], -1), np.stack([a, d, b], -1))
        u1 = np.where(left_half[:, None], np.stack([ua, uc, ub], -1), np.stack([ua, uc, ud], -1))
        u2 = np.where(left_half[:, None], np.stack([ub, uc, ud], -1), np.stack([ua, ud, ub], -1))
        faces += [t1, t2]
        uv_faces += [u1, u2]
    faces.append(np.stack([vid[-1, j], np.full(nc, pole_bottom), vid[-1, jn]], -1))
    uv_faces.append(np.stack([uvid[-1, uv_col], n_uv_grid + nc + uv_col, uvid[-1, uv_col + 1]], -1))
    faces_arr = np.concatenate(faces).astype(np.int64)
    uv_faces_arr = np.concatenate(uv_faces).astype(np.int64)

    # texture coordinates: u by column (dense columns get more texels), v by weighted arc length
    u0, v0, u1, v1 = SKIN_UV_RECT
    uu = u0 + (u1 - u0) * np.arange(nc + 1) / nc
    vv = v1 - (v1 - v0) * all_v / all_v[-1] * (1.0 - 0.5 / nr)
    uv_grid = np.stack(np.meshgrid(uu, vv, indexing="xy"), -1).reshape(-1, 2)
    centres = u0 + (u1 - u0) * (np.arange(nc) + 0.5) / nc
    uvs = np.concatenate([uv_grid, np.stack([centres, np.full(nc, v1)], -1),
                          np.stack([centres, np.full(nc, v0)], -1)])

    # sculpt on the unslit grid, then copy to the duplicates
    normals = _vertex_normals(base, _unslit(faces_arr, lower_id, vid))
    theta_v = np.concatenate([[0.0], tt.reshape(-1), [0.0]])
    sculpted = _sculpt(base, normals, theta_v)
    verts = np.concatenate([sculpted, sculpted[dup_src_all]])
    n_v = len(verts)
    side = np.zeros(n_v, np.int8)
    eye = np.zeros(n_v, np.int8)
    on_fissure = np.zeros(n_v, bool)
    for name in ("left", "right"):
        loop, sides = loops[name], loop_sides[name]
        side[loop] = sides
        on_fissure[loop] = True
        eye[loop] = 1 if name == "left" else -1
    side[loops["mouth"]] = loop_sides["mouth"]
    verts = _open_eyes(verts, side, on_fissure)

    grid_row = np.full(n_v, -1, np.int64)
    grid_col = np.full(n_v, -1, np.int64)
    rr, cc = np.meshgrid(np.arange(nr), np.arange(nc), indexing="ij")
    grid_row[vid.reshape(-1)] = rr.reshape(-1)
    grid_col[vid.reshape(-1)] = cc.reshape(-1)
    grid_row[n_base:] = grid_row[dup_src_all]
    grid_col[n_base:] = grid_col[dup_src_all]
    grid_row[pole_bottom] = nr
    theta_all = np.concatenate([theta_v, theta_v[dup_src_all]])
    hs = np.concatenate([[1.0], head_share.reshape(-1), [0.0]])
    head_share_all = np.concatenate([hs, hs[dup_src_all]])
    return _Skin(verts, faces_arr, uvs, uv_faces_arr, side, eye, grid_row, grid_col, theta_all,
                 head_share_all, loops["mouth"], loop_sides["mouth"],
                 {k: loops[k] for k in ("left", "right")}, {k: loop_sides[k] for k in ("left", "right")},
                 all_y, theta, {"eye": eye_row, "mouth": mouth_row, "neck_bottom": n_main - 1}, vid)


def _unslit(faces: np.ndarray, lower_id: np.ndarray, vid: np.ndarray) -> np.ndarray:
    """Faces with the slit duplicates mapped back to their originals (for smooth base normals)."""
    remap = np.arange(int(max(faces.max(), lower_id.max())) + 1)
    remap[lower_id.reshape(-1)] = vid.reshape(-1)
    return remap[faces]


# ---------------------------------------------------------------------------------------------------
# interior parts
# ---------------------------------------------------------------------------------------------------

# mouth bag rings behind the lips: depth behind the lip line, half-height, width factor, how much the
# ring forgets the lips' curvature (0: follows the lip surface, 1: flat at the centre's depth)
_BAG_DEPTH = np.array([0.0030, 0.0075, 0.0170, 0.0310, 0.0460])
_BAG_HALF_HEIGHT = np.array([0.0016, 0.0115, 0.0170, 0.0185, 0.0145])
_BAG_WIDTH = np.array([0.97, 0.93, 1.00, 1.04, 0.90])
_BAG_FLATTEN = np.array([0.0, 0.2, 0.5, 0.85, 1.0])
_BAG_POLE_DEPTH = 0.056
UV_RECTS = {
    "eyeball_left": (0.005, 0.010, 0.135, 0.250), "eyeball_right": (0.145, 0.010, 0.275, 0.250),
    "mouth_bag": (0.290, 0.010, 0.520, 0.250), "pouch_left": (0.530, 0.010, 0.600, 0.122),
    "pouch_right": (0.530, 0.138, 0.600, 0.250), "teeth_upper": (0.610, 0.138, 0.870, 0.250),
    "teeth_lower": (0.610, 0.010, 0.870, 0.122), "tongue": (0.880, 0.010, 0.995, 0.250),
}


def _bag_positions(loop_pos: np.ndarray, loop_side: np.ndarray, lip_z: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(K, L, 3) ring positions and the (3,) pole of the mouth bag hanging behind the lip loop."""
    q = np.clip(loop_pos[:, 0] / A.MOUTH_HALF_WIDTH, -1.0, 1.0)
    profile = np.sqrt(np.clip(1.0 - q * q, 0.0, 1.0)) ** 0.8
    rings = np.empty((len(_BAG_DEPTH), len(loop_pos), 3))
    rings[:, :, 0] = loop_pos[None, :, 0] * _BAG_WIDTH[:, None]
    rings[:, :, 1] = A.Y_MOUTH + loop_side[None, :] * _BAG_HALF_HEIGHT[:, None] * profile[None, :]
    follow = loop_pos[None, :, 2] - _BAG_DEPTH[:, None]
    flat = lip_z - _BAG_DEPTH[:, None]
    rings[:, :, 2] = follow + (flat - follow) * _BAG_FLATTEN[:, None]
    pole = np.array([0.0, A.Y_MOUTH - 0.002, lip_z - _BAG_POLE_DEPTH])
    return rings, pole


def _pouch_positions(loop_pos: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rings of an eye pouch: from the lid margin into the eyeball, where they stay hidden."""
    d = loop_pos - centre
    unit = d / np.linalg.norm(d, axis=1, keepdims=True)
    ring1 = centre + unit * (A.EYE_RADIUS - 0.0008)
    ring2 = centre + unit * A.EYE_RADIUS * 0.5 - np.array([0.0, 0.0, 0.002])
    return np.stack([ring1, ring2]), centre - np.array([0.0, 0.0, 0.35 * A.EYE_RADIUS])


def _eyeball(centre: np.ndarray, n_rings: int, n_segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An eyeball looking down +z with a slight corneal bulge.

    Returns (vertices (2 + n_rings * n_segments, 3) front pole first and back pole last, polar angle
    of each vertex from the front, rings (n_rings, n_segments) local indices)."""
    polar = np.pi * np.arange(1, n_rings + 1) / (n_rings + 1)
    psi = 2.0 * np.pi * np.arange(n_segments) / n_segments
    pp, ss = np.meshgrid(polar, psi, indexing="ij")
    bulge = 0.0009 * np.clip(1.0 - (pp / np.radians(38.0)) ** 2, 0.0, 1.0) ** 2
    r = A.EYE_RADIUS + bulge
    ring_pts = np.stack([r * np.sin(pp) * np.cos(ss), r * np.sin(pp) * np.sin(ss), r * np.cos(pp)], -1)
    verts = np.concatenate([[[0.0, 0.0, A.EYE_RADIUS + 0.0009]], ring_pts.reshape(-1, 3),
                            [[0.0, 0.0, -A.EYE_RADIUS]]]) + centre
    angles = np.concatenate([[0.0], pp.reshape(-1), [np.pi]])
    rings = 1 + np.arange(n_rings * n_segments).reshape(n_rings, n_segments)
    return verts, angles, rings


def eyeball_uv_radius(polar: np.ndarray) -> np.ndarray:
    """Radius in the eyeball's UV disc (1 at the rim) of a point at ``polar`` radians from the front:
    the front half gets most of the texels (the iris and pupil live there)."""
    return (np.asarray(polar) / np.pi) ** 0.62


def _disc_uvs(angles: np.ndarray, n_rings: int, n_segments: int, rect: tuple[float, float, float, float]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal UVs for :func:`_eyeball` in the disc inscribed in ``rect``; one back-pole UV per triangle."""
    u0, v0, u1, v1 = rect
    cu, cv, rad = (u0 + u1) / 2, (v0 + v1) / 2, 0.49 * min(u1 - u0, v1 - v0)
    psi = 2.0 * np.pi * np.arange(n_segments) / n_segments
    rho = rad * eyeball_uv_radius(angles[1:-1]).reshape(n_rings, n_segments)
    ring_uv = np.stack([cu + rho * np.cos(psi), cv + rho * np.sin(psi)], -1).reshape(-1, 2)
    mid = psi + np.pi / n_segments
    back = np.stack([cu + rad * np.cos(mid), cv + rad * np.sin(mid)], -1)
    uvs = np.concatenate([[[cu, cv]], ring_uv, back])
    rings = 1 + np.arange(n_rings * n_segments).reshape(n_rings, n_segments)
    faces = tube_faces(rings, 0, None)
    j = np.arange(n_segments)
    nxt = (j + 1) % n_segments
    back_faces = np.stack([rings[-1, nxt], rings[-1, j], 1 + n_rings * n_segments + j], -1)
    return uvs, np.concatenate([faces, back_faces])


def _arch_rings(n: int, m: int, front_z: float, half_width: float, depth: float, edge_y: float, height: float,
                thickness: float, upper: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dental arch: a tapered, rounded slab bent along an elliptic arc, closed at both ends.

    Returns (rings (n, m, 3), start pole, end pole)."""
    s = np.linspace(-1.0, 1.0, n)
    phi = np.radians(80.0) * s
    cx = half_width * np.sin(phi) / np.sin(np.radians(80.0))
    cz = front_z - depth * (1.0 - np.cos(phi)) / (1.0 - np.cos(np.radians(80.0)))
    tangent = np.stack([np.gradient(cx), np.gradient(cz)], -1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    outward = np.stack([tangent[:, 1], -tangent[:, 0]], -1)  # (x, z), points towards the lips
    # tooth edges along the arch: notches between teeth, slightly longer canines
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(cx), np.diff(cz)))])
    arc = np.abs(arc - arc[len(arc) // 2])
    bounds = np.array([0.0, 0.0085, 0.0150, 0.0225, 0.0295]) * (0.92 if not upper else 1.0)
    gap = np.exp(-0.5 * (np.min(np.abs(arc[:, None] - bounds[None, 1:]), axis=1) / 0.0011) ** 2)
    gap = np.maximum(gap, np.exp(-0.5 * (arc / 0.0009) ** 2))
    canine = np.exp(-0.5 * ((arc - 0.5 * (bounds[2] + bounds[3])) / 0.002) ** 2)
    w = 2.0 * np.pi * np.arange(m) / m
    cw, sw = np.cos(w), np.sin(w)
    sec_n = np.sign(cw) * np.abs(cw) ** 0.5  # rounded box section
    sec_y = np.sign(sw) * np.abs(sw) ** 0.5
    edge_dir = -1.0 if upper else 1.0  # the biting edge is at the bottom of the upper teeth
    # 0 at the biting edge, 1 at the gum
    from_edge = 0.5 * (1.0 - edge_dir * sec_y)
    tooth_height = height + 0.0008 * canine[:, None] - 0.0009 * gap[:, None] * (from_edge[None, :] < 0.5)
    y = edge_y - edge_dir * (from_edge[None, :] * tooth_height)
    half_t = 0.5 * thickness * (0.45 + 0.55 * from_edge[None, :] ** 0.7)
    offset = -0.5 * thickness + half_t * sec_n[None, :]  # front face of the section on the arch curve
    x = cx[:, None] + outward[:, None, 0] * offset
    z = cz[:, None] + outward[:, None, 1] * offset
    rings = np.stack([x, y, z], -1)
    # end caps bulge slightly beyond the last section
    start = rings[0].mean(0) - np.array([tangent[0, 0], 0.0, tangent[0, 1]]) * 0.0015
    end = rings[-1].mean(0) + np.array([tangent[-1, 0], 0.0, tangent[-1, 1]]) * 0.0015
    return rings, start, end


def _tongue(centre: np.ndarray, radii: np.ndarray, n_rings: int, n_segments: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """A flattened ellipsoid along z (tip at the front) with a flat-ish upper surface.

    Returns (vertices, rings (n_rings, n_segments) local indices); poles first (tip) and last."""
    polar = np.pi * np.arange(1, n_rings + 1) / (n_rings + 1)
    psi = 2.0 * np.pi * np.arange(n_segments) / n_segments
    pp, ss = np.meshgrid(polar, psi, indexing="ij")
    x = radii[0] * np.sin(pp) * np.cos(ss)
    y = radii[1] * np.sin(pp) * np.sin(ss)
    y = np.where(y > 0, y * 0.7, y)  # flatter on top
    z = radii[2] * np.cos(pp)
    ring_pts = np.stack([x, y, z], -1).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 0.0, radii[2]]], ring_pts, [[0.0, 0.0, -radii[2]]]]) + centre
    rings = 1 + np.arange(n_rings * n_segments).reshape(n_rings, n_segments)
    return verts, rings


def build_head_mesh(spec: GeometrySpec) -> HeadMesh:
    """Skin, mouth bag, eye pouches, eyeballs, teeth and tongue as one indexed mesh (:class:`HeadMesh`)."""
    skin = build_skin(spec)
    verts = [skin.vertices]
    faces = [skin.faces]
    uvs = [skin.uvs]
    uv_faces = [skin.uv_faces]
    part = [np.full(len(skin.vertices), SKIN, np.int8)]
    face_part = [np.full(len(skin.faces), SKIN, np.int8)]
    side = [skin.side]
    eye = [skin.eye]
    count = [len(skin.vertices)]
    uv_count = [len(skin.uvs)]

    def add(v: np.ndarray, f_local: np.ndarray, uv: np.ndarray, uvf_local: np.ndarray, code: int,
            vside: np.ndarray | None = None, veye: int = 0, f_global: np.ndarray | None = None) -> int:
        """Append a block; ``f_local`` indexes the block's vertices unless ``f_global`` is given."""
        first = count[0]
        verts.append(v)
        faces.append(f_global if f_global is not None else f_local + first)
        uvs.append(uv)
        uv_faces.append(uvf_local + uv_count[0])
        part.append(np.full(len(v), code, np.int8))
        face_part.append(np.full(len(uvf_local), code, np.int8))
        side.append(np.zeros(len(v), np.int8) if vside is None else vside.astype(np.int8))
        eye.append(np.full(len(v), veye, np.int8))
        count[0] += len(v)
        uv_count[0] += len(uv)
        return first

    # mouth bag stitched to the lip loop
    loop = skin.mouth_loop
    lip_z = float(skin.vertices[skin.vertex_grid[skin.row_of["mouth"], 0], 2])
    bag_pos, bag_pole_pos = _bag_positions(skin.vertices[loop], skin.mouth_loop_side.astype(np.float64),
                                           lip_z)
    k, n_loop = bag_pos.shape[:2]
    first = count[0]
    bag_rings = np.concatenate([loop[None], first + np.arange(k * n_loop).reshape(k, n_loop)])
    bag_pole = first + k * n_loop
    bag_faces = tube_faces(bag_rings, None, bag_pole)
    bag_uv, bag_uvf = tube_uvs(k + 1, n_loop, False, True, UV_RECTS["mouth_bag"])
    add(np.concatenate([bag_pos.reshape(-1, 3), bag_pole_pos[None]]), bag_faces, bag_uv, bag_uvf, MOUTH_BAG,
        np.concatenate([np.tile(skin.mouth_loop_side, k), [0]]), f_global=bag_faces)

    # eye pouches stitched to the lid margins
    pouch_rings: dict[str, np.ndarray] = {}
    pouch_poles: dict[str, int] = {}
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        eloop = skin.eye_loops[name]
        rings_pos, pole_pos = _pouch_positions(skin.vertices[eloop], eye_centre(sgn))
        first = count[0]
        n_e = len(eloop)
        rings = np.concatenate([eloop[None], first + np.arange(2 * n_e).reshape(2, n_e)])
        pole = first + 2 * n_e
        pf = tube_faces(rings, None, pole)
        puv, puvf = tube_uvs(3, n_e, False, True, UV_RECTS[f"pouch_{name}"])
        add(np.concatenate([rings_pos.reshape(-1, 3), pole_pos[None]]), pf, puv, puvf, EYE_POUCH,
            np.concatenate([np.tile(skin.eye_loop_sides[name], 2), [0]]), int(sgn), f_global=pf)
        pouch_rings[name], pouch_poles[name] = rings, pole

    # eyeballs
    eyeball: dict[str, np.ndarray] = {}
    equator: dict[str, np.ndarray] = {}
    nr_e, ns_e = spec.eyeball_rings, spec.eyeball_segments
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        ev, angles, rings = _eyeball(eye_centre(sgn), nr_e, ns_e)
        ef = tube_faces(rings, 0, len(ev) - 1)
        euv, euvf = _disc_uvs(angles, nr_e, ns_e, UV_RECTS[f"eyeball_{name}"])
        ef, euvf = _orient_pair(ev, ef, euvf)
        first = add(ev, ef, euv, euvf, EYEBALL, veye=int(sgn))
        eyeball[name] = first + np.arange(len(ev))
        equator[name] = first + rings[nr_e // 2]

    # teeth
    front_z = lip_z - 0.0095
    for name, code, args in (
            # upper incisors show a little below the upper lip; the lower ones sit behind them (overbite)
            ("teeth_upper", TEETH_UPPER, (front_z, 0.0235, 0.027, A.Y_MOUTH - 0.0020, 0.0115, 0.0068, True)),
            ("teeth_lower", TEETH_LOWER, (front_z - 0.0038, 0.0208, 0.024, A.Y_MOUTH + 0.0008, 0.0095, 0.0062,
                                          False))):
        rings_pos, start, end = _arch_rings(spec.teeth_samples, spec.teeth_section, *args)
        n, m = rings_pos.shape[:2]
        tv = np.concatenate([[start], rings_pos.reshape(-1, 3), [end]])
        rings = 1 + np.arange(n * m).reshape(n, m)
        tf = tube_faces(rings, 0, len(tv) - 1)
        tuv, tuvf = tube_uvs(n, m, True, True, UV_RECTS[name])
        tf, tuvf = _orient_pair(tv, tf, tuvf)
        add(tv, tf, tuv, tuvf, code, np.full(len(tv), 1 if code == TEETH_UPPER else -1))

    # tongue
    tv, rings = _tongue(np.array([0.0, A.Y_MOUTH - 0.0125, lip_z - 0.036]), np.array([0.0185, 0.0072, 0.026]),
                        spec.tongue_rings, spec.tongue_segments)
    tf = tube_faces(rings, 0, len(tv) - 1)
    tuv, tuvf = tube_uvs(spec.tongue_rings, spec.tongue_segments, True, True, UV_RECTS["tongue"])
    tf, tuvf = _orient_pair(tv, tf, tuvf)
    add(tv, tf, tuv, tuvf, TONGUE, np.full(len(tv), -1))

    n_v = count[0]
    grid_row = np.concatenate([skin.grid_row, np.full(n_v - len(skin.vertices), -1)])
    grid_col = np.concatenate([skin.grid_col, np.full(n_v - len(skin.vertices), -1)])
    theta = np.concatenate([skin.theta, np.full(n_v - len(skin.vertices), np.nan)])
    head_share = np.concatenate([skin.head_share, np.ones(n_v - len(skin.vertices))])
    return HeadMesh(
        vertices=np.concatenate(verts), faces=np.concatenate(faces).astype(np.int64),
        uvs=np.concatenate(uvs), uv_faces=np.concatenate(uv_faces).astype(np.int64),
        part=np.concatenate(part), face_part=np.concatenate(face_part), side=np.concatenate(side),
        eye=np.concatenate(eye), grid_row=grid_row, grid_col=grid_col, theta=theta, head_share=head_share,
        mouth_loop=loop, bag_rings=bag_rings, bag_pole=int(bag_pole), eye_loops=skin.eye_loops,
        pouch_rings=pouch_rings, pouch_poles=pouch_poles, eyeball=eyeball, eyeball_equator=equator,
        rows_y=skin.rows_y, columns_theta=skin.columns_theta, row_of=skin.row_of,
        skin_vertex_grid=skin.vertex_grid)


def _orient_pair(v: np.ndarray, f: np.ndarray, uvf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orient a closed component outward, flipping its UV faces the same way."""
    if signed_volume(v, f) > 0:
        return f, uvf
    return f[:, ::-1].copy(), uvf[:, ::-1].copy()
