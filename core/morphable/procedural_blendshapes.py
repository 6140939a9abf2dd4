"""Identity (shape) and expression blendshapes of the procedural head.

Every mode is a smooth displacement field written in closed form over the rest positions. Fields that
must tear along the lip or lid openings (one lip moves, the other not) use the per-vertex side labels
of :class:`~core.morphable.procedural_geometry.HeadMesh`, gated so they agree again at the corners.
Eyeballs only ever translate rigidly (identity) or not at all (expressions); the eye joints turn them.
"""

from __future__ import annotations

import numpy as np

from core.morphable import procedural_anatomy as A
from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.morphable.procedural_anatomy import blob, gauss, smootherstep, smoothstep
from core.morphable.procedural_geometry import (
    EYE_POUCH,
    EYEBALL,
    MOUTH_BAG,
    SKIN,
    TEETH_LOWER,
    TEETH_UPPER,
    TONGUE,
    HeadMesh,
    eye_centre,
)
from core.morphable.procedural_rig import brow_line, jaw_weight, lip_side, slit_edges

# ---------------------------------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------------------------------


class _Fields:
    """Per-vertex quantities the closed-form fields are written in.

    ``points`` overrides the positions the fields are evaluated at (identity modes evaluate each
    eyeball at its centre so that it only translates)."""

    def __init__(self, mesh: HeadMesh, points: np.ndarray | None = None) -> None:
        self.mesh = mesh
        self.p = mesh.vertices if points is None else points
        self.x, self.y, self.z = self.p[:, 0], self.p[:, 1], self.p[:, 2]
        self.n = len(self.p)
        self.soft = np.isin(mesh.part, (SKIN, MOUTH_BAG, EYE_POUCH))  # tissue that expressions deform
        self.head_share = mesh.head_share
        self.lip_side = lip_side(mesh).astype(np.float64)
        self.jaw = jaw_weight(mesh)
        self.front = smoothstep(0.02, 0.06, self.z)

    def vec(self, w: np.ndarray, d: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """(V, 3) field ``w[:, None] * d``."""
        return np.asarray(w, dtype=np.float64)[:, None] * np.asarray(d, dtype=np.float64)[None, :]

    def mirrored(self, centre: tuple[float, float, float], sigma: tuple[float, float, float],
                 d: tuple[float, float, float]) -> np.ndarray:
        """The same bump on both sides, its x displacement mirrored (a symmetric identity change)."""
        cx, cy, cz = centre
        out = self.vec(blob(self.p, (cx, cy, cz), sigma), d)
        out += self.vec(blob(self.p, (-cx, cy, cz), sigma), (-d[0], d[1], d[2]))
        return out


def _shape_fields(f: _Fields) -> list[tuple[str, np.ndarray, float]]:
    """(name, raw field, target largest displacement in metres at coefficient 1) per identity mode."""
    x, y, z, hs = f.x, f.y, f.z, f.head_share
    zeros = np.zeros_like(x)
    lower_face = smoothstep(-0.015, -0.060, y) * np.clip(hs, 0, 1)
    chin = blob(f.p, (0.0, -0.087, 0.09), (0.018, 0.014, 0.03))
    nose = blob(f.p, (0.0, -0.018, 0.11), (0.011, 0.016, 0.025))
    lips = blob(f.p, (0.0, A.Y_MOUTH, 0.095), (0.019, 0.010, 0.025))
    # the eye regions move as a block (lids with their eyeball), fading out by the brow and the cheek
    eye_l = smootherstep(0.033, 0.019, np.linalg.norm(f.p - eye_centre(1.0), axis=1))
    eye_r = smootherstep(0.033, 0.019, np.linalg.norm(f.p - eye_centre(-1.0), axis=1))
    brow = gauss(((y - brow_line(np.abs(x)) + 0.002) / 0.008) ** 2)
    brow = brow * smoothstep(0.062, 0.045, np.abs(x)) * f.front
    neck = smoothstep(-0.07, -0.115, y) * (1.0 - np.clip(hs, 0, 1))
    neck_z = -0.012
    above_eyes = smoothstep(A.Y_EYE - 0.02, A.Y_EYE + 0.05, y)
    cranium = smoothstep(-0.08, -0.03, y)
    mouth_region = blob(f.p, (0.0, A.Y_MOUTH, 0.09), (0.03, 0.012, 0.03))
    philtrum_down = smoothstep(A.Y_SUBNASALE + 0.002, A.Y_MOUTH, y) * smoothstep(-0.108, -0.085, y)
    return [
        ("head_width", np.stack([x, zeros, zeros], -1), 0.0055),
        ("head_height", np.stack([zeros, (y - A.Y_EYE) * above_eyes, zeros], -1), 0.0055),
        ("head_depth", np.stack([zeros, zeros, z * smoothstep(0.0, -0.05, z) * cranium], -1), 0.0055),
        ("face_length", np.stack([zeros, -np.clip(A.Y_SUBNASALE - y, 0.0, 0.065) * smoothstep(-0.03, 0.02, z),
                                  zeros], -1), 0.0045),
        ("jaw_width", np.stack([x * lower_face, zeros, zeros], -1), 0.0040),
        ("chin_length", f.vec(chin, (0, -1, 0)), 0.0035),
        ("chin_protrusion", f.vec(chin, (0, 0, 1)), 0.0035),
        ("nose_length", f.vec(nose, (0, -0.8, 0.6)), 0.0030),
        ("nose_width", np.stack([x * blob(f.p, (0.0, -0.032, 0.10), (0.02, 0.010, 0.025)), zeros, zeros], -1),
         0.0022),
        ("nose_bridge", f.vec(blob(f.p, (0.0, 0.006, 0.10), (0.008, 0.014, 0.02)), (0, 0, 1)), 0.0028),
        ("nose_tip", f.vec(blob(f.p, (0.0, -0.027, 0.118), (0.010, 0.008, 0.015)), (0, 0, 1)), 0.0030),
        ("lip_thickness", np.stack([zeros, (y - A.Y_MOUTH) * lips * 3.0, 0.012 * lips], -1), 0.0022),
        ("mouth_width", np.stack([x * mouth_region, zeros, zeros], -1), 0.0030),
        ("eye_spacing", f.vec(eye_l - eye_r, (1, 0, 0)), 0.0025),
        ("eye_height", f.vec(eye_l + eye_r, (0, 1, 0)), 0.0025),
        ("eye_depth", f.vec(eye_l + eye_r, (0, 0, -1)), 0.0025),
        ("brow_ridge", f.vec(brow, (0, 0.2, 1)), 0.0025),
        ("cheekbones", f.mirrored((0.052, A.Y_EYE - 0.022, 0.06), (0.015, 0.013, 0.03), (0.7, 0.0, 0.7)),
         0.0035),
        ("forehead_slope", np.stack([zeros, zeros, -np.clip(y - 0.045, 0.0, None) * f.front], -1), 0.0050),
        ("cheek_fullness", f.mirrored((0.046, -0.045, 0.06), (0.015, 0.016, 0.03), (0.8, 0.0, 0.6)), 0.0035),
        ("neck_width", np.stack([x * neck, zeros, (z - neck_z) * neck], -1), 0.0050),
        ("ear_protrusion", f.mirrored((0.076, 0.012, 0.0), (0.014, 0.028, 0.02), (1.0, 0.0, 0.0)), 0.0040),
        ("midface_projection", f.vec(blob(f.p, (0.0, -0.012, 0.10), (0.035, 0.035, 0.03)), (0, 0, 1)),
         0.0035),
        ("jaw_angle", f.mirrored((0.057, -0.060, 0.0), (0.015, 0.015, 0.02), (0.8, -0.6, 0.0)), 0.0035),
        ("upper_lip_length", f.vec(philtrum_down * gauss((x / 0.035) ** 2) * f.front, (0, -1, 0)), 0.0025),
        ("temple_width", f.mirrored((0.068, 0.040, 0.03), (0.015, 0.018, 0.03), (1.0, 0.0, 0.0)), 0.0035),
        ("skull_top_width", np.stack([x * smoothstep(0.03, 0.11, y), zeros, zeros], -1), 0.0040),
        ("chin_width", np.stack([x * chin, zeros, zeros], -1), 0.0025),
    ]


def shape_basis(mesh: HeadMesh) -> tuple[np.ndarray, list[str]]:
    """(V, 3, S) identity modes, each scaled to its target largest displacement at coefficient 1.

    The modes stay the semantic fields themselves (``nose_length`` only lengthens the nose); they are
    designed to overlap little, so the basis is well conditioned (condition number about 5 after
    normalising each mode) without an orthogonalisation that would smear their meaning."""
    points = mesh.vertices.copy()
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        points[mesh.eyeball[name]] = eye_centre(sgn)  # eyeballs translate with the field at their centre
    raw = _shape_fields(_Fields(mesh, points))
    names = [name for name, _, _ in raw]
    modes = np.stack([field for _, field, _ in raw], -1)
    peak = np.linalg.norm(modes, axis=1).max(0)
    targets = np.array([t for _, _, t in raw])
    return modes * (targets / peak)[None, None, :], names


# ---------------------------------------------------------------------------------------------------
# expressions
# ---------------------------------------------------------------------------------------------------


def _rotation_x_offsets(p: np.ndarray, centre: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Offsets that rotate points about the x axis through ``centre`` by per-point ``angle`` (radians,
    positive turns +y towards +z, i.e. moves points in front of the centre downwards)."""
    d = p - centre
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros_like(p)
    out[:, 1] = d[:, 1] * c - d[:, 2] * s - d[:, 1]
    out[:, 2] = d[:, 1] * s + d[:, 2] * c - d[:, 2]
    return out


class _Lids:
    """Angles of the lid margins about each eye centre, to close and open the lids by rotation."""

    def __init__(self, mesh: HeadMesh, fields: _Fields) -> None:
        self.mesh = mesh
        self.f = fields
        self.upper_margin: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.lower_margin: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, sgn in (("left", 1.0), ("right", -1.0)):
            upper, lower = slit_edges(mesh.eye_loops[name])
            c = eye_centre(sgn)
            for store, ids in ((self.upper_margin, upper), (self.lower_margin, lower)):
                q = mesh.vertices[ids] - c
                order = np.argsort(q[:, 0])
                store[name] = (q[order, 0], np.arctan2(q[order, 1], q[order, 2]))

    def weights(self, name: str, sgn: float, upper: bool, reach: float = 0.65
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For one lid: (per-vertex share 0..1 falling off away from the margin, margin angle at each
        vertex's x, the other margin's angle at that x)."""
        c = eye_centre(sgn)
        q = self.f.p - c
        beta = np.arctan2(q[:, 1], q[:, 2])
        xu, bu = self.upper_margin[name]
        xl, bl = self.lower_margin[name]
        b_up = np.interp(q[:, 0], xu, bu)
        b_lo = np.interp(q[:, 0], xl, bl)
        mid = 0.5 * (b_up + b_lo)
        side = self.mesh.side.astype(np.float64)
        on_eye = self.mesh.eye == int(sgn)
        is_upper = np.where(on_eye & (side != 0), side > 0, beta > mid)
        # only the lids turn: skin hugging the eyeball, not the brow or cheek beyond the socket
        lid_radius = A.EYE_RADIUS + A.LID_GAP
        near = smoothstep(lid_radius + 0.0075, lid_radius + 0.0025, np.linalg.norm(q, axis=1))
        near = near * (q[:, 2] > -0.004) * self.f.soft
        if upper:
            share = smoothstep(b_up + reach, b_up, beta) * is_upper
            return share * near, b_up, b_lo
        share = smoothstep(b_lo - reach, b_lo, beta) * ~is_upper
        return share * near, b_lo, b_up

    def turn(self, name: str, sgn: float, upper: bool, fraction: float, reach: float = 0.65) -> np.ndarray:
        """Offsets turning one lid ``fraction`` of the way to the other margin (negative: opening)."""
        share, own, other = self.weights(name, sgn, upper, reach)
        angle = (own - other) * fraction * share  # positive rotation lowers a point
        return _rotation_x_offsets(self.f.p, eye_centre(sgn), angle)


def _expression_fields(mesh: HeadMesh) -> dict[str, np.ndarray]:
    """Raw (V, 3) offsets of each procedural expression at coefficient 1."""
    f = _Fields(mesh)
    p, x, y = f.p, f.x, f.y
    soft = f.soft.astype(np.float64)
    ls = f.lip_side
    dm = y - A.Y_MOUTH
    gate = np.clip(1.0 - (x / A.MOUTH_HALF_WIDTH) ** 2, 0.0, 1.0) ** 2
    front = f.front
    mouth = gauss((x / 0.026) ** 2 + (dm / 0.02) ** 2) * front
    lips_band = np.sqrt(gate) * gauss((dm / 0.010) ** 2) * front
    upper_lip = (ls > 0) * gate * gauss((dm / 0.012) ** 2) * front
    lower_lip = (ls < 0) * gate * gauss((dm / 0.014) ** 2) * front
    upper_edge = (ls > 0) * gate * gauss((dm / 0.006) ** 2) * front
    lower_edge = (ls < 0) * gate * gauss((dm / 0.007) ** 2) * front

    def corner(sgn: float, sigma: float = 0.011) -> np.ndarray:
        return gauss(((x - sgn * A.MOUTH_HALF_WIDTH) / sigma) ** 2 + (dm / sigma) ** 2) * front

    cl, cr = corner(1.0), corner(-1.0)
    chin = blob(p, (0.0, -0.082, 0.095), (0.017, 0.013, 0.03))
    pivot = A.JAW_PIVOT
    jaw = f.jaw

    def jaw_turn(angle: float) -> np.ndarray:
        """Linearised jaw rotation about the pivot (positive opens), weighted by the jaw share."""
        r = p - pivot
        return np.stack([np.zeros_like(x), -jaw * angle * r[:, 2], jaw * angle * r[:, 1]], -1)

    def lr(d: tuple[float, float, float], w_left: np.ndarray, w_right: np.ndarray) -> np.ndarray:
        return f.vec(w_left, d) + f.vec(w_right, (-d[0], d[1], d[2]))

    lids = _Lids(mesh, f)
    out: dict[str, np.ndarray] = {}
    # ---- mouth / visemes
    out["mouth_open"] = jaw_turn(0.075) + f.vec(upper_lip, (0, 0.0025, 0.0005))
    out["mouth_wide"] = lr((0.006, 0.0005, -0.0025), cl, cr) + f.vec(upper_edge, (0, 0.0015, 0)) + f.vec(
        lower_edge, (0, -0.002, 0)) + jaw_turn(0.01)
    out["mouth_round"] = (lr((-0.0065, 0, 0.001), cl, cr) + f.vec(mouth, (0, 0, 0.0035))
                          + f.vec(upper_edge, (0, 0.003, 0.001)) + f.vec(lower_edge, (0, -0.0035, 0.001))
                          + jaw_turn(0.025))
    out["lips_pucker"] = (lr((-0.0085, 0, 0.001), cl, cr)
                          + f.vec(mouth * gauss((dm / 0.012) ** 2), (0, 0, 0.0075))
                          + f.vec(upper_edge, (0, 0.0007, 0)) + f.vec(lower_edge, (0, -0.0007, 0)))
    out["lips_funnel"] = (lr((-0.005, 0, 0.001), cl, cr) + f.vec(mouth, (0, 0, 0.0045))
                          + f.vec(upper_lip, (0, 0.003, 0.002)) + f.vec(lower_lip, (0, -0.0035, 0.002))
                          + jaw_turn(0.02))
    out["lips_press"] = np.stack([np.zeros_like(x), -0.35 * dm * lips_band, -0.002 * lips_band], -1)
    raise_w = (ls > 0) * gate ** 0.7 * gauss((dm / 0.011) ** 2) * front
    depress_w = (ls < 0) * gate ** 0.7 * gauss((dm / 0.013) ** 2) * front
    out["upper_lip_raise"] = f.vec(raise_w, (0, 0.005, 0.001))
    out["lower_lip_depress"] = f.vec(depress_w, (0, -0.005, 0.001))
    out["lips_stretch"] = (lr((0.006, -0.002, -0.002), cl, cr)
                           + np.stack([np.zeros_like(x), -0.15 * dm * lips_band, np.zeros_like(x)], -1))
    wide_mouth = gauss((x / 0.03) ** 2 + (dm / 0.02) ** 2) * front
    out["mouth_left"] = f.vec(wide_mouth, (0.006, 0, -0.0005))
    out["mouth_right"] = f.vec(wide_mouth, (-0.006, 0, -0.0005))
    out["lower_lip_roll"] = f.vec(lower_edge, (0, 0.0012, -0.004))
    out["upper_lip_roll"] = f.vec(upper_edge, (0, -0.0008, -0.0035))
    lower_mouth = gauss((x / 0.022) ** 2 + ((y - A.Y_MOUTH + 0.012) / 0.014) ** 2) * front
    out["chin_raise"] = f.vec(chin, (0, 0.004, 0.001)) + f.vec(lower_mouth, (0, 0.0018, 0.0018))
    out["jaw_forward"] = f.vec(jaw, (0, 0, 0.005))
    # ---- mouth corners
    cheek_l = blob(p, (0.040, -0.022, 0.08), (0.016, 0.016, 0.03))
    cheek_r = blob(p, (-0.040, -0.022, 0.08), (0.016, 0.016, 0.03))
    out["smile_left"] = f.vec(cl, (0.0045, 0.0085, -0.003)) + f.vec(cheek_l, (0.0005, 0.0025, 0.001))
    out["smile_right"] = f.vec(cr, (-0.0045, 0.0085, -0.003)) + f.vec(cheek_r, (-0.0005, 0.0025, 0.001))
    out["frown_left"] = f.vec(cl, (0.001, -0.0065, -0.001))
    out["frown_right"] = f.vec(cr, (-0.001, -0.0065, -0.001))
    out["dimple_left"] = f.vec(corner(1.0, 0.009), (0.002, 0.0005, -0.0045))
    out["dimple_right"] = f.vec(corner(-1.0, 0.009), (-0.002, 0.0005, -0.0045))

    # ---- brows: a band along each brow, reaching further up the forehead than down to the lid
    def brow(sgn: float, cx: float, sx: float) -> np.ndarray:
        along = gauss(((sgn * x - cx) / sx) ** 2)
        dy = y - brow_line(np.abs(x))
        across = np.where(dy > 0, gauss((dy / 0.022) ** 2), gauss((dy / 0.0085) ** 2))
        return along * across * front * (sgn * x > -0.004)

    for name, sgn in (("left", 1.0), ("right", -1.0)):
        out[f"brow_up_{name}"] = f.vec(brow(sgn, 0.036, 0.017), (0, 0.008, 0.0005))
        out[f"brow_down_{name}"] = f.vec(brow(sgn, 0.028, 0.016), (-sgn * 0.002, -0.005, 0.001))
    out["brow_inner_up"] = f.vec(brow(1.0, 0.014, 0.010) + brow(-1.0, 0.014, 0.010), (0, 0.0065, 0.0005))
    # ---- eyes
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        cheek_under = blob(p, (sgn * 0.036, A.Y_EYE - 0.022, 0.08), (0.014, 0.009, 0.03))
        out[f"squint_{name}"] = (lids.turn(name, sgn, True, 0.18) + lids.turn(name, sgn, False, 0.35, 0.5)
                                 + f.vec(cheek_under, (0, 0.002, 0.0008)))
        out[f"blink_{name}"] = lids.turn(name, sgn, True, 1.0)
        out[f"eye_wide_{name}"] = (lids.turn(name, sgn, True, -0.30, 0.9)
                                   + lids.turn(name, sgn, False, -0.10, 0.5))
    # ---- cheeks / nose
    puff = lr((0.0055, 0.0, 0.0045), blob(p, (0.043, -0.047, 0.07), (0.016, 0.016, 0.03)),
              blob(p, (-0.043, -0.047, 0.07), (0.016, 0.016, 0.03)))
    out["cheek_puff"] = puff + f.vec(mouth, (0, 0, 0.0015))
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        cheek_w = blob(p, (sgn * 0.040, -0.006, 0.08), (0.016, 0.013, 0.03))
        out[f"cheek_raise_{name}"] = (f.vec(cheek_w, (0, 0.004, 0.0015))
                                      + lids.turn(name, sgn, False, 0.15, 0.5))
        ala = blob(p, (sgn * 0.016, -0.031, 0.1), (0.009, 0.010, 0.03))
        lip_side_w = (ls > 0) * gauss(((x - sgn * 0.012) / 0.008) ** 2 + (dm / 0.01) ** 2) * front * gate
        out[f"sneer_{name}"] = (f.vec(ala, (sgn * 0.0006, 0.0038, 0.001))
                                + f.vec(lip_side_w, (0, 0.002, 0.0005)))
    # soft tissue only; the jaw-driven parts (lower teeth, tongue) follow the jaw terms above
    rigid_follow = {"mouth_open": 0.075, "mouth_wide": 0.01, "mouth_round": 0.025, "lips_funnel": 0.02}
    inner = np.isin(mesh.part, (TEETH_LOWER, TONGUE))
    for name, field in out.items():
        field *= soft[:, None]
        if name in rigid_follow:
            field[inner] = jaw_turn(rigid_follow[name])[inner]
        if name == "jaw_forward":
            field[inner] = f.vec(jaw, (0, 0, 0.005))[inner]
        field[np.isin(mesh.part, (TEETH_UPPER, EYEBALL))] = 0.0
    return out


def expression_basis(mesh: HeadMesh) -> tuple[np.ndarray, list[str]]:
    """(V, 3, E) expression modes in the order of :data:`PROCEDURAL_EXPRESSIONS`."""
    fields = _expression_fields(mesh)
    missing = [n for n in PROCEDURAL_EXPRESSIONS if n not in fields]
    if missing:
        raise RuntimeError(f"procedural expressions lack fields for {missing}")
    return np.stack([fields[n] for n in PROCEDURAL_EXPRESSIONS], -1), list(PROCEDURAL_EXPRESSIONS)
