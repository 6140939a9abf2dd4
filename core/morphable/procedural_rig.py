"""Rig of the procedural head: skinning weights, joint regressor, iBUG-68 landmark embedding and region
masks, all computed from the :class:`~core.morphable.procedural_geometry.HeadMesh` bookkeeping."""

from __future__ import annotations

import numpy as np

from core.morphable import procedural_anatomy as A
from core.morphable.data import JOINT_NAMES
from core.morphable.procedural_anatomy import blob, pchip, smoothstep
from core.morphable.procedural_geometry import (
    EYE_POUCH,
    EYEBALL,
    MOUTH_BAG,
    SKIN,
    TEETH_LOWER,
    TEETH_UPPER,
    TONGUE,
    HeadMesh,
)

J_GLOBAL, J_NECK, J_JAW, J_EYE_LEFT, J_EYE_RIGHT = (JOINT_NAMES.index(n) for n in JOINT_NAMES)
PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)

# where the jaw stops pulling on the skin: from the mouth corners up to the temporomandibular joints
_JAW_BOUNDARY = pchip([0.0, 16.0, 35.0, 55.0, 72.0, 85.0],
                      [A.Y_MOUTH, A.Y_MOUTH, -0.044, -0.030, -0.016, -0.010])


def lip_side(mesh: HeadMesh) -> np.ndarray:
    """(V,) +1 above the mouth line (or on the upper side of the bag), -1 below, 0 on the corners.

    Slit vertices keep the side of their copy; other skin vertices are classified by height."""
    y = mesh.vertices[:, 1]
    by_height = np.sign(y - A.Y_MOUTH).astype(np.int8)
    side = np.where(mesh.side != 0, mesh.side, by_height).astype(np.int8)
    on_mouth = np.zeros(len(y), bool)
    on_mouth[mesh.mouth_loop] = True
    on_mouth[mesh.bag_rings.reshape(-1)] = True
    # eye slits and pouches carry eye sides, which say nothing about the lips
    eye_related = (mesh.eye != 0) & ~on_mouth
    return np.where(eye_related, by_height, side).astype(np.int8)


def jaw_weight(mesh: HeadMesh) -> np.ndarray:
    """(V,) share of the jaw joint: 1 on the chin, lower lip, lower teeth and tongue, falling off
    smoothly through the cheeks towards the ears; the lips part exactly along the mouth line."""
    v = mesh.vertices
    x, y = v[:, 0], v[:, 1]
    theta = np.where(np.isnan(mesh.theta), np.arctan2(x, v[:, 2]), mesh.theta)
    deg = np.degrees(np.abs(theta))
    side = lip_side(mesh).astype(np.float64)
    gate = np.clip(1.0 - (x / A.MOUTH_HALF_WIDTH) ** 2, 0.0, 1.0)
    # inside the mouth the upper and lower lips are pushed apart so the split is sharp
    s_eff = np.interp(deg, _JAW_BOUNDARY.x, _JAW_BOUNDARY(_JAW_BOUNDARY.x)) - y - side * 0.004 * gate
    corner_deg = float(np.degrees(np.arctan2(A.MOUTH_HALF_WIDTH, 0.09)))
    width = 0.0016 + 0.017 * smoothstep(corner_deg - 2.0, corner_deg + 40.0, deg)
    line = smoothstep(-width, width, s_eff)
    behind = smoothstep(98.0, 78.0, deg)
    neck_fade = np.clip(mesh.head_share, 0.0, 1.0) ** 0.7
    w = line * behind * neck_fade
    # interior parts
    part = mesh.part
    w = np.where((part == TEETH_LOWER) | (part == TONGUE), 1.0, w)
    w = np.where((part == TEETH_UPPER) | (part == EYE_POUCH) | (part == EYEBALL), 0.0, w)
    bag = part == MOUTH_BAG
    q = np.clip(np.abs(x) / A.MOUTH_HALF_WIDTH, 0.0, 1.0)
    bag_w = 0.5 - 0.5 * side * smoothstep(1.0, 0.55, q)
    w = np.where(bag, bag_w, w)
    w[mesh.bag_pole] = 0.5
    return w


def skinning_weights(mesh: HeadMesh) -> np.ndarray:
    """(V, 5) LBS weights over :data:`JOINT_NAMES` (rows sum to 1)."""
    n = len(mesh.vertices)
    w = np.zeros((n, len(JOINT_NAMES)))
    jaw = jaw_weight(mesh)
    y = mesh.vertices[:, 1]
    lower_neck = smoothstep(-0.088, -0.150, y) * (mesh.part == SKIN)
    w[:, J_JAW] = jaw
    w[:, J_GLOBAL] = (1.0 - jaw) * lower_neck
    eyeball = mesh.part == EYEBALL
    w[eyeball] = 0.0
    w[eyeball & (mesh.eye > 0), J_EYE_LEFT] = 1.0
    w[eyeball & (mesh.eye < 0), J_EYE_RIGHT] = 1.0
    w[:, J_NECK] = 1.0 - w.sum(1)
    return w


def joint_regressor(mesh: HeadMesh) -> np.ndarray:
    """(5, V) rows summing to 1: the joints as averages of vertices around them.

    global: the sides of the lower neck; neck: the sides of the upper neck; jaw: the skin in front of
    both ears (the temporomandibular joints); eyes: the eyeball equators (their centres)."""
    v = mesh.vertices
    skin = mesh.part == SKIN
    reg = np.zeros((len(JOINT_NAMES), len(v)))
    for joint, centre, sigma in ((J_GLOBAL, A.GLOBAL_JOINT, 0.012), (J_NECK, A.NECK_JOINT, 0.010),
                                 (J_JAW, A.JAW_PIVOT, 0.009)):
        weights = np.zeros(len(v))
        for sgn in (-1.0, 1.0):
            # the skin point level with the joint on each side of the head
            candidates = skin & (np.abs(v[:, 1] - centre[1]) < 0.02) & (np.abs(v[:, 2] - centre[2]) < 0.02)
            side_x = np.max(sgn * v[candidates, 0])
            target = np.array([sgn * side_x, centre[1], centre[2]])
            weights += skin * blob(v, target, [sigma, sigma, sigma])
        reg[joint] = weights / weights.sum()
    for joint, name in ((J_EYE_LEFT, "left"), (J_EYE_RIGHT, "right")):
        ids = mesh.eyeball_equator[name].reshape(-1)
        reg[joint, ids] = 1.0 / len(ids)
    return reg


# ---------------------------------------------------------------------------------------------------
# landmarks
# ---------------------------------------------------------------------------------------------------


def _project_hits(coords: np.ndarray, depth: np.ndarray, faces: np.ndarray, face_ids: np.ndarray,
                  targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each 2D target, the candidate triangle containing it (in ``coords``, a 2D projection of the
    vertices) with the largest interpolated ``depth``; returns (face index (N,), barycentric (N, 3))."""
    tri = coords[faces[face_ids]]  # (F, 3, 2)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    good = np.abs(den) > 1e-14
    d = targets[:, None, :] - a[None]  # (N, F, 2)
    l1 = (d[..., 0] * v1[None, :, 1] - v1[None, :, 0] * d[..., 1]) / np.where(good, den, 1.0)
    l2 = (v0[None, :, 0] * d[..., 1] - d[..., 0] * v0[None, :, 1]) / np.where(good, den, 1.0)
    l0 = 1.0 - l1 - l2
    inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9) & good[None]
    dep = depth[faces[face_ids]]  # (F, 3)
    hit_depth = l0 * dep[None, :, 0] + l1 * dep[None, :, 1] + l2 * dep[None, :, 2]
    hit_depth = np.where(inside, hit_depth, -np.inf)
    best = np.argmax(hit_depth, axis=1)
    if not np.isfinite(hit_depth[np.arange(len(targets)), best]).all():
        missing = np.flatnonzero(~np.isfinite(hit_depth[np.arange(len(targets)), best]))
        raise RuntimeError(f"procedural landmarks {missing.tolist()} missed the surface")
    rows = np.arange(len(targets))
    bary = np.stack([l0[rows, best], l1[rows, best], l2[rows, best]], -1)
    return face_ids[best], np.clip(bary, 0.0, 1.0) / np.clip(bary, 0.0, 1.0).sum(1, keepdims=True)


def _edge_point(mesh: HeadMesh, polyline: np.ndarray, x: float, upper: bool) -> tuple[int, np.ndarray]:
    """The point at height-independent position ``x`` on a slit edge (vertex ids ordered along +x), on a
    triangle of the upper (``upper=True``) or lower side; returns (face, barycentric).

    Upper and lower lid (or lip) vertices of a column share their x, so points picked by x on the two
    edges correspond: a blink lands one exactly on the other."""
    xs = mesh.vertices[polyline, 0]
    k = int(np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2))
    t = float(np.clip((x - xs[k]) / (xs[k + 1] - xs[k]), 0.0, 1.0))
    a, b = int(polyline[k]), int(polyline[k + 1])
    faces = mesh.faces
    cand = np.flatnonzero((faces == a).any(1) & (faces == b).any(1) & (mesh.face_part == SKIN))
    # the triangle whose third vertex lies on the requested side of the edge
    third = faces[cand][(faces[cand] != a) & (faces[cand] != b)]
    mid_y = 0.5 * (mesh.vertices[a, 1] + mesh.vertices[b, 1])
    f = int(cand[(mesh.vertices[third, 1] > mid_y) == upper][0])
    bary = np.zeros(3)
    bary[np.flatnonzero(faces[f] == a)[0]] = 1.0 - t
    bary[np.flatnonzero(faces[f] == b)[0]] = t
    return f, bary


def slit_edges(loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower edges of a slit loop, each ordered along +x and sharing the two corners."""
    n_inner = (len(loop) - 2) // 2
    upper = loop[:n_inner + 2]
    lower = np.concatenate([[loop[0]], loop[n_inner + 2:][::-1], [loop[n_inner + 1]]])
    return upper, lower


def brow_line(ax: np.ndarray) -> np.ndarray:
    """Height of the eyebrow centre line at ``|x|`` (arched, highest two thirds of the way out)."""
    ax = np.asarray(ax, dtype=np.float64)
    return A.Y_BROW + 0.0048 * np.exp(-0.5 * ((ax - 0.034) / 0.011) ** 2) - 0.0015


def landmark_embedding(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray]:
    """(68,) triangles and (68, 3) barycentric coordinates of the iBUG-68 landmarks.

    iBUG order and handedness: point 0 is on the subject's right (-x, image left facing the camera).
    Lid and inner-lip points lie exactly on the opening edges; the rest are surface points hit by rays
    along +z (front features) or outwards from the y axis (the jaw contour)."""
    v = mesh.vertices
    skin_faces = np.flatnonzero(mesh.face_part == SKIN)
    faces = mesh.faces
    tri_z = v[faces[skin_faces], 2].min(1)
    front_faces = skin_faces[tri_z > 0.02]
    out_f = np.zeros(68, np.int64)
    out_b = np.zeros((68, 3))

    # jaw contour by rays from the vertical axis: angle (deg, subject's right negative) and height
    jaw_deg = np.array([-77.0, -76.0, -74.5, -71.5, -66.0, -57.0, -45.0, -27.0])
    jaw_y = np.array([A.Y_EYE - 0.008, -0.007, -0.021, -0.035])
    jd = np.concatenate([jaw_deg, [0.0], -jaw_deg[::-1]])
    border = np.interp(np.abs(jd), [0, 15, 35, 55, 75], [A.Y_CHIN, -0.0955, -0.088, -0.076, -0.062])
    upper_path = np.concatenate([jaw_y, np.full(9, -1.0), jaw_y[::-1]])
    jy = np.maximum(upper_path, border + 0.0085)
    theta_v = np.arctan2(v[:, 0], v[:, 2])
    cyl = np.stack([theta_v, v[:, 1]], -1)
    radius = np.hypot(v[:, 0], v[:, 2])
    side_faces = skin_faces[np.abs(theta_v[faces[skin_faces]]).max(1) < np.radians(120.0)]
    out_f[:17], out_b[:17] = _project_hits(cyl, radius, faces, side_faces, np.stack([np.radians(jd), jy], -1))

    # brows (17-21 subject's right, outer to inner; 22-26 left, inner to outer), nose, outer lips
    bx = np.array([0.052, 0.0435, 0.035, 0.0265, 0.0175])
    brows = np.concatenate([np.stack([-bx, brow_line(bx)], -1),
                            np.stack([bx[::-1], brow_line(bx[::-1])], -1)])
    tip = int(np.flatnonzero(mesh.part == SKIN)[np.argmax(v[mesh.part == SKIN, 2])])
    tip_y = v[tip, 1]
    top_y = A.Y_EYE + 0.006
    bridge = np.stack([np.zeros(3), top_y + (tip_y - top_y) * np.array([0.0, 1 / 3, 2 / 3])], -1)
    base_x = np.array([-0.0118, -0.0062, 0.0, 0.0062, 0.0118])
    base = np.stack([base_x, np.array([-0.0372, -0.0392, A.Y_SUBNASALE, -0.0392, -0.0372])], -1)
    ox = np.array([A.MOUTH_HALF_WIDTH + 0.0012, 0.0155, 0.0062, 0.0])
    up_y = A.Y_MOUTH + A.upper_vermilion_height(ox)
    upper = np.stack([np.concatenate([-ox, ox[:-1][::-1]]), np.concatenate([up_y, up_y[:-1][::-1]])], -1)
    upper[[0, -1], 1] = A.Y_MOUTH
    lx = np.array([0.0155, 0.0068, 0.0, -0.0068, -0.0155])
    lower = np.stack([lx, A.Y_MOUTH - A.lower_vermilion_height(lx)], -1)
    front_targets = np.concatenate([brows, bridge, base, upper, lower])  # 17-29, 31-35, 48-59
    ids = np.concatenate([np.arange(17, 30), np.arange(31, 36), np.arange(48, 60)])
    out_f[ids], out_b[ids] = _project_hits(v[:, :2], v[:, 2], faces, front_faces, front_targets)
    # 30: the nose tip, exactly the most forward vertex
    f30 = int(np.flatnonzero((faces == tip).any(1) & (mesh.face_part == SKIN))[0])
    out_f[30] = f30
    out_b[30] = (faces[f30] == tip).astype(np.float64)

    # eyes on the lid margins: 36-41 right eye (outer corner first), 42-47 left eye (inner corner first);
    # the lid points sit at a third and two thirds of the way across, the same x on both lids
    for name, first in (("right", 36), ("left", 42)):
        upper_edge, lower_edge = slit_edges(mesh.eye_loops[name])
        x0, x1 = v[upper_edge[0], 0], v[upper_edge[-1], 0]
        xs = x0 + (x1 - x0) * np.array([1 / 3, 2 / 3])
        points = [(upper_edge, x0, True), (upper_edge, xs[0], True), (upper_edge, xs[1], True),
                  (upper_edge, x1, True), (lower_edge, xs[1], False), (lower_edge, xs[0], False)]
        for k, (edge, px, is_upper) in enumerate(points):
            out_f[first + k], out_b[first + k] = _edge_point(mesh, edge, px, is_upper)
    # inner lips: 60 right corner, 61-63 upper (right to left), 64 left corner, 65-67 lower (left to right)
    upper_edge, lower_edge = slit_edges(mesh.mouth_loop)
    x0, x1 = v[upper_edge[0], 0], v[upper_edge[-1], 0]
    inner_x = np.array([-0.0115, 0.0, 0.0115])
    specs = [(upper_edge, x0, True), *[(upper_edge, px, True) for px in inner_x], (upper_edge, x1, True),
             *[(lower_edge, px, False) for px in inner_x[::-1]]]
    for k, (edge, px, is_upper) in enumerate(specs):
        out_f[60 + k], out_b[60 + k] = _edge_point(mesh, edge, px, is_upper)
    return out_f, out_b


def landmark_positions(vertices: np.ndarray, faces: np.ndarray, lm_faces: np.ndarray, lm_bary: np.ndarray
                       ) -> np.ndarray:
    """(68, 3) landmark points of an embedding on a vertex array."""
    return (vertices[faces[lm_faces]] * lm_bary[:, :, None]).sum(1)
