"""Proportions of the procedural head and small vectorised helpers shared by its builder modules.

Every number here is a design choice in metres, in the model frame (head faces +z, y up, x is the
head's left; origin between the ear canals). The builders (:mod:`core.morphable.procedural_geometry`,
:mod:`core.morphable.procedural_blendshapes`, :mod:`core.morphable.procedural_texture`) read them so
that the sculpted surface, the rig, the blendshapes and the texture agree on where the features are.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

# ---- landmarks of the design (metres) ------------------------------------------------------------
Y_TOP = 0.125  # vertex of the skull
Y_NECK_BOTTOM = -0.165  # where the neck is capped
Y_EYE = 0.016  # eye centres and the rest line of the eye fissures
EYE_X = 0.032  # half the interpupillary distance
EYE_Z = 0.0705  # depth of the eyeball centres
EYE_RADIUS = 0.0120
LID_GAP = 0.0013  # lid margins rest this far outside the eyeball so a blink never cuts into it
EYE_MEDIAL_X = 0.0185  # |x| of the inner eye corners
EYE_LATERAL_X = 0.0445  # |x| of the outer eye corners
EYE_OPEN_UP = 0.0047  # rest opening of the upper lid margin above the fissure line (at its peak)
EYE_OPEN_DOWN = 0.0043  # rest opening of the lower lid margin below it
EYE_CANTHAL_TILT = 0.0020  # the outer corner sits this much higher than the inner one
Y_MOUTH = -0.052  # stomion: the line where the lips meet
MOUTH_HALF_WIDTH = 0.0245
Y_SUBNASALE = -0.040
Y_NOSE_TIP = -0.027
Y_CHIN = -0.097  # menton, the lowest point of the chin
Y_BROW = Y_EYE + 0.022  # centre line of the eyebrows
JAW_PIVOT = np.array([0.0, -0.008, 0.004])  # between the two temporomandibular joints
NECK_JOINT = np.array([0.0, -0.060, -0.014])
GLOBAL_JOINT = np.array([0.0, -0.120, -0.012])


def smoothstep(edge0: float | np.ndarray, edge1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cubic Hermite step: 0 below ``edge0``, 1 above ``edge1`` (either order), C1 in between."""
    t = np.clip((np.asarray(x, dtype=np.float64) - edge0) / (np.asarray(edge1) - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def smootherstep(edge0: float | np.ndarray, edge1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Quintic step (C2): smoother seams where a falloff would otherwise crease the shading."""
    t = np.clip((np.asarray(x, dtype=np.float64) - edge0) / (np.asarray(edge1) - edge0), 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def gauss(d2: np.ndarray) -> np.ndarray:
    """exp(-d2 / 2) for a squared normalised distance."""
    return np.exp(-0.5 * d2)


def blob(p: np.ndarray, centre: np.ndarray | list[float], sigma: np.ndarray | list[float]) -> np.ndarray:
    """Anisotropic Gaussian bump at ``centre`` with per-axis ``sigma``: (N, 3) points -> (N,)."""
    d = (p - np.asarray(centre, dtype=np.float64)) / np.asarray(sigma, dtype=np.float64)
    return gauss((d * d).sum(-1))


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial smooth maximum of ``a`` and ``b`` with blend width ``k``.

    Returns (value, h) where ``h`` in [0, 1] is how much ``a`` dominates (1: pure ``a``)."""
    h = np.clip(0.5 + 0.5 * (a - b) / k, 0.0, 1.0)
    return b + (a - b) * h + k * h * (1.0 - h) * 0.5, h


def pchip(xs: list[float], ys: list[float]) -> PchipInterpolator:
    """Shape-preserving cubic through control points (either order; see :func:`clamp_eval`)."""
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    order = np.argsort(x)
    return PchipInterpolator(x[order], y[order], extrapolate=True)


def clamp_eval(f: PchipInterpolator, x: np.ndarray) -> np.ndarray:
    """Evaluate a control-point curve, holding its end values outside the control range."""
    lo, hi = float(f.x[0]), float(f.x[-1])
    return f(np.clip(x, lo, hi))


# ---- the base surface: a smooth union of a cranium/face section and a neck section ---------------
# Horizontal cross-sections of the head are superellipses with separate front and back depths; their
# sizes follow these profiles over height y. Above CAP_Y0 all three shrink together into the dome.
_HEAD_HALF_WIDTH = pchip(
    [-0.110, -0.090, -0.070, -0.050, -0.030, -0.010, 0.010, 0.030, 0.050, 0.070],
    [0.041, 0.047, 0.054, 0.061, 0.067, 0.0715, 0.0745, 0.0765, 0.0775, 0.0775])
_HEAD_FRONT = pchip(
    [-0.110, -0.090, -0.070, -0.050, -0.030, -0.010, 0.010, 0.030, 0.045, 0.060, 0.080],
    [0.086, 0.0875, 0.0885, 0.090, 0.0915, 0.0925, 0.0935, 0.0955, 0.0970, 0.0950, 0.0895])
_HEAD_BACK = pchip(
    [-0.080, -0.060, -0.040, -0.020, 0.000, 0.020, 0.040, 0.060],
    [0.040, 0.055, 0.071, 0.084, 0.092, 0.097, 0.0985, 0.098])
# superellipse exponent: squarer cranium, rounder (more V-shaped) jaw
_HEAD_EXPONENT = pchip([-0.100, -0.060, -0.020, 0.030, 0.080], [1.85, 2.05, 2.35, 2.45, 2.3])
# lower border of the head section (jaw line at the front, skull base at the back), by |theta| in degrees
_JAW_BORDER = pchip([0.0, 15.0, 35.0, 55.0, 75.0, 90.0, 110.0, 140.0, 180.0],
                    [Y_CHIN, -0.0955, -0.088, -0.076, -0.062, -0.054, -0.060, -0.072, -0.078])
JAW_BORDER_SOFTNESS = 0.012
CAP_Y0 = 0.050
CAP_EXPONENT = 2.25
_NECK_HALF_WIDTH = pchip([-0.165, -0.120, -0.070, -0.030], [0.061, 0.0565, 0.0560, 0.058])
_NECK_FRONT = pchip([-0.165, -0.120, -0.060], [0.058, 0.053, 0.051])
_NECK_BACK = pchip([-0.165, -0.120, -0.060, -0.030], [0.060, 0.056, 0.056, 0.060])
_NECK_CENTRE_Z = pchip([-0.165, -0.100, -0.040], [-0.004, -0.012, -0.016])
NECK_TOP = 0.0  # the neck section fades out above here (it is inside the head by then)
UNION_SOFTNESS = 0.016


def dome_cap(y: np.ndarray) -> np.ndarray:
    """Scale of the cross-sections in the dome above :data:`CAP_Y0` (1 below, 0 at the vertex)."""
    t = np.clip((y - CAP_Y0) / (Y_TOP - CAP_Y0), 0.0, 1.0)
    return np.power(np.clip(1.0 - t ** CAP_EXPONENT, 0.0, 1.0), 1.0 / CAP_EXPONENT)


def jaw_border(theta: np.ndarray) -> np.ndarray:
    """Height of the lower border of the head section (jaw line, skull base) at azimuth ``theta``."""
    return clamp_eval(_JAW_BORDER, np.degrees(np.abs(theta)))


def head_section_radius(theta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Polar radius (about the y axis) of the cranium/face section at azimuth ``theta`` and height ``y``."""
    cap = dome_cap(y)
    a = np.maximum(clamp_eval(_HEAD_HALF_WIDTH, y) * cap, 1e-9)
    front = np.maximum(clamp_eval(_HEAD_FRONT, y) * cap, 1e-9)
    back = np.maximum(clamp_eval(_HEAD_BACK, y) * cap, 1e-9)
    n = clamp_eval(_HEAD_EXPONENT, y)
    s, c = np.sin(theta), np.cos(theta)
    depth = np.where(c >= 0.0, front, back)
    r = np.power(np.abs(s / a) ** n + np.abs(c / depth) ** n, -1.0 / n)
    border = jaw_border(theta)
    return r * smoothstep(border - 0.5 * JAW_BORDER_SOFTNESS, border + JAW_BORDER_SOFTNESS, y)


def neck_section_radius(theta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Polar radius of the neck: an off-centre ellipse (about the y axis) that fades out up in the head."""
    a = clamp_eval(_NECK_HALF_WIDTH, y)
    zc = clamp_eval(_NECK_CENTRE_Z, y)
    s, c = np.sin(theta), np.cos(theta)
    depth = np.where(c >= 0.0, clamp_eval(_NECK_FRONT, y), clamp_eval(_NECK_BACK, y))
    # |(t s / a, (t c - zc) / depth)| = 1 solved for the positive root t
    qa = (s / a) ** 2 + (c / depth) ** 2
    qb = -2.0 * c * zc / depth ** 2
    qc = (zc / depth) ** 2 - 1.0
    t = (-qb + np.sqrt(np.maximum(qb * qb - 4.0 * qa * qc, 0.0))) / (2.0 * qa)
    return t * smoothstep(NECK_TOP + 0.03, NECK_TOP, y)


def base_radius(theta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polar radius of the unsculpted head+neck surface and how much the head section dominates."""
    return smooth_max(head_section_radius(theta, y), neck_section_radius(theta, y), UNION_SOFTNESS)


def upper_vermilion_height(x: np.ndarray) -> np.ndarray:
    """Height of the upper lip's red part above the mouth line at ``x`` (cupid's bow; 0 at the corners)."""
    return clamp_eval(_UPPER_VERMILION, np.abs(x))


def lower_vermilion_height(x: np.ndarray) -> np.ndarray:
    """Height of the lower lip's red part below the mouth line at ``x`` (0 at the corners)."""
    return clamp_eval(_LOWER_VERMILION, np.abs(x))


_UPPER_VERMILION = pchip([0.0, 0.0035, 0.0062, 0.011, 0.016, 0.0205, MOUTH_HALF_WIDTH, 0.04],
                         [0.0072, 0.0079, 0.0085, 0.0076, 0.0058, 0.0032, 0.0, 0.0])
_LOWER_VERMILION = pchip([0.0, 0.007, 0.013, 0.018, 0.0215, MOUTH_HALF_WIDTH, 0.04],
                         [0.0102, 0.0098, 0.0086, 0.0064, 0.0036, 0.0, 0.0])
