"""The emotion vocabulary and keyframed per-frame emotion curves.

Vocabulary
----------
Neutral is the zero vector. The seven other MEAD emotions are intensity dimensions in ``[0, 1]``, in the
order of :data:`EMOTIONS`; mixtures are allowed (``happy:0.5,surprised:0.3``). MEAD's intensity levels
1, 2, 3 map to 0.33, 0.66 and 1.0 (:func:`mead_intensity`). A textual spec is parsed by
:func:`emotion_vector`: ``"neutral"``, ``"happy"`` (= 1.0), ``"happy:0.66"``, ``"happy:0.5, sad:0.2"``;
a mapping ``{"happy": 0.5}`` or a length-7 sequence works too.

Curves
------
An :class:`EmotionCurve` is one emotion's intensity over time, given by :class:`Keyframe` s exactly like a
Blender F-curve: the interpolation of the segment between two keys is the *left* key's mode
(``constant``, ``linear`` or ``bezier``); before the first key and after the last one the value is held
(constant extrapolation). Bezier handles are ``(dframe, dvalue)`` offsets from their key (Blender stores
absolute handle positions: subtract the key's ``co``); missing handles are *auto-clamped* (flat at the
first/last key and at local extrema, otherwise along the neighbours' secant, shortened so the segment
never overshoots its keys). As in Blender, handles that reach past the neighbouring key in time are scaled
down so the curve stays a function of time. :class:`EmotionCurves` holds one curve per emotion (emotions
without a curve are 0) and samples them per video frame into an ``(n_frames, 7)`` array clipped to
``[0, 1]``.

JSON form (job protocol)
------------------------
The Blender add-on and the desktop app send exactly this object (``EmotionCurves.to_json`` writes it,
``EmotionCurves.from_json`` validates and reads it)::

    {
      "format": "emodub-emotion-curves",   # required, exactly this string
      "version": 1,                         # required, CURVES_FORMAT_VERSION
      "fps": 25,                            # required, > 0: frame rate of the frame numbers below
      "frame_start": 0,                     # optional (0): curve frame shown at video frame 0
      "frame_end": 249,                     # optional: last curve frame of the shot (inclusive)
      "curves": {                           # optional: keyframed curves, by emotion name
        "happy": {"keyframes": [
          {"frame": 0, "value": 0.0, "interpolation": "bezier",
           "handle_left": [-3.0, 0.0], "handle_right": [3.0, 0.0]},   # handles optional (auto-clamped)
          {"frame": 40, "value": 0.8, "interpolation": "linear"}
        ]}
      },
      "per_frame": {                        # optional: already-sampled curves, by emotion name
        "sad": [0.0, 0.02, 0.05, ...]       # value i is at curve frame frame_start + i
      }
    }

A keyframe needs ``frame`` and ``value``; ``interpolation`` defaults to ``"bezier"`` (Blender's
default) and missing handles are auto-clamped. ``curves`` is what an editor keyframes; ``per_frame``
is what the add-on sends after sampling its F-curves itself (one value per frame of the strip,
starting at ``frame_start``; held before the first and after the last value, linearly interpolated at
fractional frames). An emotion may appear in only one of the two. Emotions without an entry stay 0;
``"neutral"`` is not a dimension and is rejected. Keyframe values must lie in ``[0, 1]``; per-frame
values only need to be finite (they may overshoot a little where a Bezier curve was sampled) because
every sampled value is clipped to ``[0, 1]``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

# Order matters: it is the layout of every per-frame emotion vector (MEAD's set minus neutral).
EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
N_EMOTIONS: int = len(EMOTIONS)
NEUTRAL: str = "neutral"
# MEAD's eight labels (neutral first, as MEAD lists its folders alphabetically after it).
MEAD_EMOTIONS: tuple[str, ...] = (NEUTRAL, *EMOTIONS)
# MEAD intensity level -> intensity of the emotion dimension.
MEAD_INTENSITIES: dict[int, float] = {1: 0.33, 2: 0.66, 3: 1.0}
# Common spellings accepted by the parser (MEAD itself uses the canonical names).
EMOTION_ALIASES: dict[str, str] = {
    "anger": "angry", "disgust": "disgusted", "fearful": "fear", "afraid": "fear", "happiness": "happy",
    "sadness": "sad", "surprise": "surprised",
}

CURVES_FORMAT: str = "emodub-emotion-curves"
CURVES_FORMAT_VERSION: int = 1
INTERPOLATIONS: tuple[str, ...] = ("constant", "linear", "bezier")
EMOTION_SPEC_HINT = ("write name:intensity terms such as happy:0.5,sad:0.2 with names among angry, contempt, "
                     "disgusted, fear, happy, sad, surprised (neutral = none) and intensities in [0, 1]")
Interpolation = Literal["constant", "linear", "bezier"]


# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

def _valid_names_text() -> str:
    return ", ".join(MEAD_EMOTIONS)


def _float(value: Any, what: str) -> float:
    """``float(value)``, raising ``ValueError`` (never ``TypeError`` or ``OverflowError``) for a bool, a
    non-number or an integer too large for a float, so that every parser here fails with ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        text = repr(value)
        raise ValueError(f"{what} must be a number, got {text if len(text) <= 40 else text[:37] + '...'}") from None


def emotion_index(name: str) -> int:
    """Index of an emotion name (or alias) in :data:`EMOTIONS`; ``ValueError`` for neutral/unknown names."""
    key = name.strip().lower()
    key = EMOTION_ALIASES.get(key, key)
    if key == NEUTRAL:
        raise ValueError("'neutral' is the zero vector, not a dimension; leave it out (all others at 0)")
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; valid names are: {_valid_names_text()}")
    return EMOTIONS.index(key)


def _check_intensity(name: str, value: float, clamp: bool) -> float:
    if not math.isfinite(value):
        raise ValueError(f"intensity of {name!r} must be a finite number, got {value!r}")
    if clamp:
        return min(max(value, 0.0), 1.0)
    if value < 0.0 or value > 1.0:
        hint = " (MEAD levels 1..3 are intensities 0.33/0.66/1.0: see mead_intensity)" if value > 1 else ""
        raise ValueError(f"intensity of {name!r} is {value:g}; intensities must lie in [0, 1]{hint}")
    return value


def mead_intensity(level: int) -> float:
    """MEAD intensity level 1, 2 or 3 -> intensity 0.33, 0.66 or 1.0."""
    if isinstance(level, bool) or int(level) != level or int(level) not in MEAD_INTENSITIES:
        raise ValueError(f"MEAD intensity level must be 1, 2 or 3, got {level!r}")
    return MEAD_INTENSITIES[int(level)]


def mead_emotion_vector(emotion: str, level: int) -> np.ndarray:
    """The (7,) float32 label of a MEAD clip: ``emotion`` at ``level`` 1..3 (neutral -> zeros)."""
    vec = np.zeros(N_EMOTIONS, np.float32)
    intensity = mead_intensity(level)
    if emotion.strip().lower() != NEUTRAL:
        vec[emotion_index(emotion)] = intensity
    return vec


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_TERM = re.compile(rf"^\s*([A-Za-z_]+)\s*(?:[:=]\s*({_NUMBER}))?\s*$", re.IGNORECASE)


def emotion_vector(spec: str | Mapping[str, float] | Sequence[float] | np.ndarray | None,
                   clamp: bool = False) -> np.ndarray:
    """Parse an emotion spec into a (7,) float32 intensity vector in the order of :data:`EMOTIONS`.

    Args:
        spec: ``"neutral"``, ``"happy"`` (intensity 1), ``"happy:0.66"``, ``"happy:0.5,sad:0.2"``
            (``=`` works as well as ``:``); a mapping name -> intensity; a length-7 sequence/array;
            ``None`` or ``{}`` mean neutral.
        clamp: clip intensities into [0, 1] instead of rejecting them.

    Raises:
        ValueError: unknown name (the message lists the valid ones), repeated name, malformed term,
            intensity outside [0, 1] (unless ``clamp``) or not finite.
    """
    vec = np.zeros(N_EMOTIONS, np.float64)
    if spec is None:
        return vec.astype(np.float32)
    if isinstance(spec, str):
        if not spec.strip():
            raise ValueError("empty emotion spec; write 'neutral' or e.g. 'happy:0.66'")
        items: list[tuple[str, float]] = []
        for term in spec.split(","):
            match = _TERM.match(term)
            if match is None:
                raise ValueError(f"cannot parse emotion term {term.strip()!r} in {spec!r}; "
                                 "write name or name:intensity, e.g. 'happy:0.5,sad:0.2'")
            items.append((match.group(1), _float(match.group(2), f"intensity of {match.group(1)!r}")
                          if match.group(2) is not None else 1.0))
    elif isinstance(spec, Mapping):
        items = []
        for name, value in spec.items():
            if not isinstance(name, str):
                raise ValueError(f"emotion names must be strings, got {name!r}")
            items.append((name, _float(value, f"intensity of {name!r}")))
    else:
        try:
            arr = np.asarray(spec, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"an emotion spec must be a name:intensity string, a mapping or {N_EMOTIONS} numbers "
                             f"in the order {EMOTIONS}; got {str(spec)[:60]}") from None
        if arr.shape != (N_EMOTIONS,):
            raise ValueError(f"an emotion vector must have shape ({N_EMOTIONS},) in the order {EMOTIONS}, "
                             f"got shape {arr.shape}")
        for name, value in zip(EMOTIONS, arr, strict=True):
            vec[EMOTIONS.index(name)] = _check_intensity(name, float(value), clamp)
        return vec.astype(np.float32)

    seen: set[str] = set()
    for name, value in items:
        key = EMOTION_ALIASES.get(name.strip().lower(), name.strip().lower())
        if key in seen:
            raise ValueError(f"emotion {key!r} is given twice in {spec!r}")
        seen.add(key)
        value = _check_intensity(key, value, clamp)
        if key == NEUTRAL:
            continue  # neutral contributes nothing: it is the absence of the other emotions
        vec[emotion_index(key)] = value
    return vec.astype(np.float32)


def format_emotion(vec: Sequence[float] | np.ndarray, digits: int = 2) -> str:
    """Inverse of :func:`emotion_vector` for display: ``"happy:0.66,sad:0.2"`` or ``"neutral"``."""
    arr = np.asarray(vec, dtype=np.float64).reshape(-1)
    if arr.shape != (N_EMOTIONS,):
        raise ValueError(f"an emotion vector must have shape ({N_EMOTIONS},), got {arr.shape}")
    terms = [f"{name}:{round(float(v), digits):g}" for name, v in zip(EMOTIONS, arr, strict=True)
             if round(float(v), digits) != 0.0]
    return ",".join(terms) if terms else NEUTRAL


# --------------------------------------------------------------------------------------------------
# Keyframes and curves
# --------------------------------------------------------------------------------------------------

def _pair(value: Any, what: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"{what} must be a pair [dframe, dvalue] of numbers, got {value!r}")
    pair = list(itertools.islice(value, 3))
    if len(pair) != 2:
        raise ValueError(f"{what} must be a pair [dframe, dvalue] of numbers, got {value!r}")
    dframe, dvalue = (_float(v, what) for v in pair)
    if not (math.isfinite(dframe) and math.isfinite(dvalue)):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return dframe, dvalue


@dataclass(frozen=True)
class Keyframe:
    """One key of an emotion curve.

    Attributes:
        frame: time of the key in curve frames (may be fractional).
        value: intensity at the key, in [0, 1].
        interpolation: how the segment *after* this key is interpolated (Blender's rule).
        handle_left: ``(dframe, dvalue)`` of the incoming Bezier handle relative to the key
            (``dframe <= 0``); ``None`` = auto-clamped.
        handle_right: ``(dframe, dvalue)`` of the outgoing handle (``dframe >= 0``); ``None`` = auto.
    """

    frame: float
    value: float
    interpolation: Interpolation = "bezier"
    handle_left: tuple[float, float] | None = None
    handle_right: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        frame, value = _float(self.frame, "keyframe frame"), _float(self.value, "keyframe value")
        if not math.isfinite(frame):
            raise ValueError(f"keyframe frame must be a finite number, got {self.frame!r}")
        if not math.isfinite(value) or value < 0.0 or value > 1.0:
            raise ValueError(f"keyframe value at frame {frame:g} is {self.value!r}; "
                             "values must lie in [0, 1]")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"keyframe interpolation {self.interpolation!r} at frame {frame:g} is unknown; "
                             f"use one of {', '.join(INTERPOLATIONS)}")
        left = _pair(self.handle_left, f"handle_left of the keyframe at frame {frame:g}")
        right = _pair(self.handle_right, f"handle_right of the keyframe at frame {frame:g}")
        if left is not None and left[0] > 0:
            raise ValueError(f"handle_left of the keyframe at frame {frame:g} must point back in time "
                             f"(dframe <= 0), got {left}")
        if right is not None and right[0] < 0:
            raise ValueError(f"handle_right of the keyframe at frame {frame:g} must point forward in time "
                             f"(dframe >= 0), got {right}")
        object.__setattr__(self, "frame", frame)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "handle_left", left)
        object.__setattr__(self, "handle_right", right)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frame": self.frame, "value": self.value, "interpolation": self.interpolation}
        if self.handle_left is not None:
            out["handle_left"] = list(self.handle_left)
        if self.handle_right is not None:
            out["handle_right"] = list(self.handle_right)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "keyframe") -> Keyframe:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be an object with frame, value, interpolation; got {data!r}")
        unknown = set(data) - {"frame", "value", "interpolation", "handle_left", "handle_right"}
        if unknown:
            raise ValueError(f"{where} has unknown fields {sorted(unknown)}")
        for key in ("frame", "value"):
            if key not in data:
                raise ValueError(f"{where} lacks {key!r}")
            if isinstance(data[key], bool) or not isinstance(data[key], int | float):
                raise ValueError(f"{where}.{key} must be a number, got {data[key]!r}")
        try:
            return cls(frame=data["frame"], value=data["value"],
                       interpolation=data.get("interpolation", "bezier"),
                       handle_left=data.get("handle_left"), handle_right=data.get("handle_right"))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


def _auto_clamped_slopes(frames: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Slope (dvalue/dframe) of auto-clamped handles at each key: 0 at the ends and at local extrema,
    else the neighbours' secant, limited to 3x the smaller adjacent secant so no segment overshoots
    (the Fritsch-Carlson bound for cubic Hermite/Bezier segments with 1/3-length handles)."""
    k = len(frames)
    slopes = np.zeros(k)
    if k < 3:
        return slopes
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # keys a hair apart
        secant = np.diff(values) / np.diff(frames)                  # (k-1,)
        left, right = secant[:-1], secant[1:]                       # around interior keys
        centred = (values[2:] - values[:-2]) / (frames[2:] - frames[:-2])
        monotone = np.sign(left) * np.sign(right) > 0
        limit = 3.0 * np.minimum(np.abs(left), np.abs(right))
        slopes[1:-1] = np.where(monotone, np.sign(centred) * np.minimum(np.abs(centred), limit), 0.0)
    return np.where(np.isfinite(slopes), slopes, 0.0)


def _solve_bezier_t(x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, x: np.ndarray,
                    iterations: int = 60) -> np.ndarray:
    """Parameter t in [0, 1] with bezier_x(t) = x, for monotone x control polygons (vectorised).

    Safeguarded Newton: a Newton step when it stays inside the bracket, bisection otherwise.
    """
    lo = np.zeros_like(x)
    hi = np.ones_like(x)
    span = np.maximum(x3 - x0, 1e-300)
    t = np.clip((x - x0) / span, 0.0, 1.0)
    tol = 1e-12 * np.maximum(span, 1.0)
    for _ in range(iterations):
        u = 1.0 - t
        fx = u * u * u * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t * t * t * x3 - x
        if np.all(np.abs(fx) <= tol):
            break
        dx = 3 * (u * u * (x1 - x0) + 2 * u * t * (x2 - x1) + t * t * (x3 - x2))
        lo = np.where(fx < 0, t, lo)
        hi = np.where(fx > 0, t, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = t - fx / dx
        ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
        t = np.where(np.abs(fx) <= tol, t, np.where(ok, newton, 0.5 * (lo + hi)))
    return t


@dataclass
class EmotionCurve:
    """One emotion's intensity over (curve) frames, from keyframes.

    Attributes:
        emotion: a name in :data:`EMOTIONS`.
        keyframes: at least one key; stored sorted by frame; two keys may not share a frame.
    """

    emotion: str
    keyframes: list[Keyframe]

    def __post_init__(self) -> None:
        self.emotion = EMOTIONS[emotion_index(self.emotion)]
        keys = [k if isinstance(k, Keyframe) else Keyframe(**k) for k in self.keyframes]
        if not keys:
            raise ValueError(f"curve {self.emotion!r} has no keyframes; give at least one")
        keys.sort(key=lambda k: k.frame)
        frames = [k.frame for k in keys]
        for a, b in itertools.pairwise(frames):
            if a == b:
                raise ValueError(f"curve {self.emotion!r} has two keyframes at frame {a:g}")
        self.keyframes = keys

    # Resolved Bezier control points per segment, (K-1,) each: x0..x3 (frames), y0..y3 (values).
    def _control_points(self) -> tuple[np.ndarray, ...]:
        frames = np.array([k.frame for k in self.keyframes])
        values = np.array([k.value for k in self.keyframes])
        slopes = _auto_clamped_slopes(frames, values)
        gaps = np.diff(frames)
        k = len(frames)
        # Auto handles reach 1/3 of the way to the neighbour; ends reuse their only neighbour's gap.
        gap_before = np.concatenate([gaps[:1], gaps]) if k > 1 else np.ones(1)
        gap_after = np.concatenate([gaps, gaps[-1:]]) if k > 1 else np.ones(1)
        left = np.stack([-gap_before / 3, -gap_before / 3 * slopes], 1)
        right = np.stack([gap_after / 3, gap_after / 3 * slopes], 1)
        for i, key in enumerate(self.keyframes):
            if key.handle_left is not None:
                left[i] = key.handle_left
            if key.handle_right is not None:
                right[i] = key.handle_right
        h1 = right[:-1].copy()       # outgoing handle of each segment's left key
        h2 = left[1:].copy()         # incoming handle of each segment's right key
        # Blender's correction: handles reaching past the other key in time are scaled down together,
        # which keeps x(t) monotone so every frame has exactly one value.
        reach = h1[:, 0] - h2[:, 0]
        scale = np.where(reach > gaps, gaps / np.maximum(reach, 1e-300), 1.0)[:, None]
        h1 *= scale
        h2 *= scale
        x0, y0 = frames[:-1], values[:-1]
        x3, y3 = frames[1:], values[1:]
        return x0, x0 + h1[:, 0], x3 + h2[:, 0], x3, y0, y0 + h1[:, 1], y3 + h2[:, 1], y3

    def evaluate(self, frames: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Curve value at (fractional) curve frames; same shape as ``frames``, float64, not clipped."""
        query = np.asarray(frames, dtype=np.float64)
        flat = query.reshape(-1)
        key_frames = np.array([k.frame for k in self.keyframes])
        key_values = np.array([k.value for k in self.keyframes])
        if len(key_frames) == 1:
            return np.full(query.shape, key_values[0])
        out = np.empty_like(flat)
        before = flat <= key_frames[0]
        after = flat >= key_frames[-1]
        out[before] = key_values[0]
        out[after] = key_values[-1]
        inside = ~(before | after)
        f = flat[inside]
        seg = np.clip(np.searchsorted(key_frames, f, side="right") - 1, 0, len(key_frames) - 2)
        modes = np.array([INTERPOLATIONS.index(k.interpolation) for k in self.keyframes[:-1]])[seg]
        x0, x1, x2, x3, y0, y1, y2, y3 = (a[seg] for a in self._control_points())
        value = np.empty_like(f)
        const = modes == 0
        value[const] = y0[const]
        lin = modes == 1
        value[lin] = y0[lin] + (y3[lin] - y0[lin]) * (f[lin] - x0[lin]) / (x3[lin] - x0[lin])
        bez = modes == 2
        if np.any(bez):
            t = _solve_bezier_t(x0[bez], x1[bez], x2[bez], x3[bez], f[bez])
            u = 1.0 - t
            value[bez] = u**3 * y0[bez] + 3 * u * u * t * y1[bez] + 3 * u * t * t * y2[bez] + t**3 * y3[bez]
        out[inside] = value
        return out.reshape(query.shape)

    def to_json(self) -> dict[str, Any]:
        return {"keyframes": [k.to_json() for k in self.keyframes]}

    @classmethod
    def from_json(cls, emotion: str, data: Any, where: str = "curve") -> EmotionCurve:
        if not isinstance(data, Mapping) or "keyframes" not in data:
            raise ValueError(f"{where} must be an object with a 'keyframes' list")
        if set(data) - {"keyframes"}:
            raise ValueError(f"{where} has unknown fields {sorted(set(data) - {'keyframes'})}")
        keys = data["keyframes"]
        if not isinstance(keys, list) or not keys:
            raise ValueError(f"{where}.keyframes must be a non-empty list")
        parsed = [Keyframe.from_json(k, f"{where}.keyframes[{i}]") for i, k in enumerate(keys)]
        try:
            return cls(emotion, parsed)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


@dataclass
class SampledCurve:
    """One emotion already sampled once per curve frame (the add-on's ``per_frame`` form).

    Attributes:
        emotion: a name in :data:`EMOTIONS`.
        values: (T,) value at curve frames ``start, start + 1, ...``; finite (clipped when sampled).
        start: curve frame of ``values[0]``.
    """

    emotion: str
    values: np.ndarray
    start: float = 0.0

    def __post_init__(self) -> None:
        self.emotion = EMOTIONS[emotion_index(self.emotion)]
        values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"per-frame curve {self.emotion!r} is empty")
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(f"per-frame curve {self.emotion!r} has a non-finite value at index {bad}")
        self.values = values
        self.start = float(self.start)

    def evaluate(self, frames: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Linear interpolation between samples, held beyond the ends; shape of ``frames``, float64."""
        query = np.asarray(frames, dtype=np.float64)
        grid = self.start + np.arange(len(self.values))
        return np.interp(query.reshape(-1), grid, self.values).reshape(query.shape)

    def to_json(self) -> list[float]:
        return [float(v) for v in self.values]


@dataclass
class EmotionCurves:
    """Per-emotion curves of a shot, sampled per video frame.

    Attributes:
        curves: emotion name -> :class:`EmotionCurve` (keyframes) or :class:`SampledCurve` (per-frame).
        fps: frame rate of the curves' frame numbers.
        frame_start: curve frame that is shown at video frame 0 (a strip's start frame in Blender).
        frame_end: optional last curve frame of the shot (inclusive); gives :attr:`n_frames`.
    """

    curves: dict[str, EmotionCurve | SampledCurve] = field(default_factory=dict)
    fps: float = 25.0
    frame_start: float = 0.0
    frame_end: float | None = None

    def __post_init__(self) -> None:
        self.fps = _float(self.fps, "fps")
        self.frame_start = _float(self.frame_start, "frame_start")
        self.frame_end = None if self.frame_end is None else _float(self.frame_end, "frame_end")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if not math.isfinite(self.frame_start):
            raise ValueError(f"frame_start must be finite, got {self.frame_start!r}")
        if self.frame_end is not None and not self.frame_end >= self.frame_start:
            raise ValueError(f"frame_end ({self.frame_end}) must be >= frame_start ({self.frame_start})")
        normalised: dict[str, EmotionCurve | SampledCurve] = {}
        for name, curve in self.curves.items():
            key = EMOTIONS[emotion_index(name)]
            if curve.emotion != key:
                raise ValueError(f"curve stored under {name!r} is for {curve.emotion!r}")
            if key in normalised:
                raise ValueError(f"emotion {key!r} has two curves")
            if isinstance(curve, SampledCurve) and curve.start != self.frame_start:
                # The JSON form has one origin for all per-frame lists: frame_start.
                raise ValueError(f"per-frame curve {key!r} starts at frame {curve.start:g} but the curves "
                                 f"start at frame_start={self.frame_start:g}; make them equal")
            normalised[key] = curve
        self.curves = {name: normalised[name] for name in EMOTIONS if name in normalised}

    def keyed_span(self) -> tuple[float, float] | None:
        """First and last curve frame that a key or a per-frame sample sits on; ``None`` without curves."""
        ends: list[float] = []
        for curve in self.curves.values():
            if isinstance(curve, EmotionCurve):
                ends += [curve.keyframes[0].frame, curve.keyframes[-1].frame]
            else:
                ends += [curve.start, curve.start + len(curve.values) - 1]
        return (min(ends), max(ends)) if ends else None

    def outside_warning(self, n_frames: int, video_fps: float | None = None) -> str | None:
        """A sentence when every key lies before the first or after the last of ``n_frames`` video frames
        (sampled as in :meth:`sample`): each curve then holds one value over the whole shot, which is
        rarely what the editor meant (a wrong ``frame_start``, keys on another strip). ``None`` otherwise."""
        span = self.keyed_span()
        if span is None or n_frames <= 0:
            return None
        ratio = 1.0 if video_fps is None else self.fps / float(video_fps)
        first, last = self.frame_start, self.frame_start + (n_frames - 1) * ratio
        if span[1] >= first and span[0] <= last:
            return None
        where = "before" if span[1] < first else "after"
        return (f"the emotion keys lie at curve frames {span[0]:g}-{span[1]:g}, all {where} the shot (curve frames "
                f"{first:g}-{last:g}, frame_start {self.frame_start:g}): each emotion holds one value over the "
                "whole shot; check frame_start or move the keys onto the shot")

    @property
    def n_frames(self) -> int | None:
        """Number of video frames of the shot when ``frame_end`` is known."""
        if self.frame_end is None:
            return None
        return int(math.floor(float(self.frame_end) - float(self.frame_start) + 1e-9)) + 1

    @classmethod
    def constant(cls, spec: str | Mapping[str, float] | Sequence[float] | np.ndarray | None,
                 fps: float = 25.0) -> EmotionCurves:
        """Curves holding one emotion vector (a spec for :func:`emotion_vector`) for the whole shot."""
        vec = emotion_vector(spec)
        curves: dict[str, EmotionCurve | SampledCurve] = {
            name: EmotionCurve(name, [Keyframe(0.0, float(v), "constant")])
            for name, v in zip(EMOTIONS, vec, strict=True) if v > 0}
        return cls(curves, fps=fps)

    def sample(self, n_frames: int, start_frame: int = 0, video_fps: float | None = None) -> np.ndarray:
        """Emotion labels of ``n_frames`` video frames from ``start_frame`` on.

        Video frame ``i`` is at curve frame ``frame_start + i * fps / video_fps`` (``video_fps``
        defaults to ``fps``, i.e. one curve frame per video frame).

        Returns:
            (n_frames, 7) float32 in [0, 1], columns in the order of :data:`EMOTIONS`.
        """
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        ratio = 1.0 if video_fps is None else self.fps / float(video_fps)
        if video_fps is not None and not (math.isfinite(video_fps) and video_fps > 0):
            raise ValueError(f"video_fps must be a positive number, got {video_fps!r}")
        frames = float(self.frame_start) + (start_frame + np.arange(n_frames, dtype=np.float64)) * ratio
        out = np.zeros((n_frames, N_EMOTIONS), np.float32)
        for name, curve in self.curves.items():
            out[:, EMOTIONS.index(name)] = np.clip(curve.evaluate(frames), 0.0, 1.0)
        return out

    def to_json(self) -> dict[str, Any]:
        """The protocol object (see the module docstring); plain JSON types only."""
        out: dict[str, Any] = {"format": CURVES_FORMAT, "version": CURVES_FORMAT_VERSION,
                               "fps": self.fps, "frame_start": self.frame_start}
        if self.frame_end is not None:
            out["frame_end"] = self.frame_end
        keyed = {n: c.to_json() for n, c in self.curves.items() if isinstance(c, EmotionCurve)}
        sampled = {n: c.to_json() for n, c in self.curves.items() if isinstance(c, SampledCurve)}
        if keyed:
            out["curves"] = keyed
        if sampled:
            out["per_frame"] = sampled
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> EmotionCurves:
        """Validate and read the protocol object (a dict or its JSON text).

        Raises:
            ValueError: naming the offending field (``curves.happy.keyframes[2].value``...) and the fix.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
                raise ValueError(f"emotion curves are not valid JSON: {str(exc) or type(exc).__name__}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"emotion curves must be a JSON object, got {type(data).__name__}")
        if data.get("format") != CURVES_FORMAT:
            raise ValueError(f"emotion curves need \"format\": {CURVES_FORMAT!r}, got {data.get('format')!r}")
        version = data.get("version")
        if version != CURVES_FORMAT_VERSION:
            raise ValueError(f"emotion curves version {version!r} is not supported; this engine reads "
                             f"version {CURVES_FORMAT_VERSION} (update the add-on/app or the engine)")
        allowed = {"format", "version", "fps", "frame_start", "frame_end", "curves", "per_frame"}
        if set(data) - allowed:
            raise ValueError(f"emotion curves have unknown fields {sorted(set(data) - allowed)}; "
                             f"allowed: {sorted(allowed)}")
        numbers: dict[str, float | None] = {}
        for key, default in (("fps", None), ("frame_start", 0.0), ("frame_end", None)):
            value = data.get(key, default)
            if key == "fps" and value is None:
                raise ValueError("emotion curves lack 'fps' (frame rate of the frame numbers)")
            if value is not None:
                if not isinstance(value, int | float) or not math.isfinite(_float(value, key)):
                    raise ValueError(f"emotion curves field {key!r} must be a finite number, got {value!r}")
                value = float(value)
            numbers[key] = value
        curves: dict[str, EmotionCurve | SampledCurve] = {}
        keyed = data.get("curves", {})
        sampled = data.get("per_frame", {})
        for section, content in (("curves", keyed), ("per_frame", sampled)):
            if not isinstance(content, Mapping):
                raise ValueError(f"emotion curves field {section!r} must be an object keyed by emotion name")
            for name in content:
                try:
                    key = EMOTIONS[emotion_index(name)]
                except ValueError as exc:
                    raise ValueError(f"{section}.{name}: {exc}") from None
                if key in curves:
                    raise ValueError(f"emotion {key!r} appears twice (in 'curves' and 'per_frame' or "
                                     "under two spellings); give it once")
                if section == "curves":
                    curves[key] = EmotionCurve.from_json(key, content[name], f"curves.{name}")
                else:
                    values = content[name]
                    if not isinstance(values, list) or not values or not all(
                            isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                        raise ValueError(f"per_frame.{name} must be a non-empty list of numbers")
                    try:
                        curves[key] = SampledCurve(key, np.array([_float(v, f"per_frame.{name}") for v in values],
                                                                 np.float64),
                                                   start=float(numbers["frame_start"] or 0.0))
                    except ValueError as exc:
                        raise ValueError(f"per_frame.{name}: {exc}") from None
        return cls(curves, fps=float(numbers["fps"]), frame_start=float(numbers["frame_start"] or 0.0),
                   frame_end=None if numbers["frame_end"] is None else float(numbers["frame_end"]))

    def save(self, path: str | Path) -> Path:
        """Atomically write the JSON form."""
        from core.workspace import atomic_write_json

        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> EmotionCurves:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"emotion curves file {path} does not exist") from None
        try:
            return cls.from_json(text)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------

def _check_span(start: float, end: float, peak: float) -> None:
    if not end > start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if not 0.0 <= peak <= 1.0:
        raise ValueError(f"peak intensity must lie in [0, 1], got {peak}")


def ramp_in(emotion: str, start: float, end: float, peak: float = 1.0,
            interpolation: Interpolation = "bezier") -> EmotionCurve:
    """0 until ``start``, easing up to ``peak`` at ``end``, then held."""
    _check_span(start, end, peak)
    return EmotionCurve(emotion, [Keyframe(start, 0.0, interpolation), Keyframe(end, peak, interpolation)])


def ramp_out(emotion: str, start: float, end: float, peak: float = 1.0,
             interpolation: Interpolation = "bezier") -> EmotionCurve:
    """``peak`` until ``start``, easing down to 0 at ``end``, then 0."""
    _check_span(start, end, peak)
    return EmotionCurve(emotion, [Keyframe(start, peak, interpolation), Keyframe(end, 0.0, interpolation)])


def pulse(emotion: str, start: float, end: float, peak: float = 1.0, attack: float | None = None,
          release: float | None = None, interpolation: Interpolation = "bezier") -> EmotionCurve:
    """0 outside ``[start, end]``: rises to ``peak`` over ``attack`` frames, holds, falls over ``release``.

    ``attack``/``release`` default to a quarter of the span each; when they fill the whole span the pulse
    is a single peak at ``start + attack``.
    """
    _check_span(start, end, peak)
    span = end - start
    attack = span / 4 if attack is None else float(attack)
    release = span / 4 if release is None else float(release)
    if attack <= 0 or release <= 0 or attack + release > span + 1e-9:
        raise ValueError(f"attack ({attack}) and release ({release}) must be > 0 and fit in the span "
                         f"({span})")
    keys = [Keyframe(start, 0.0, interpolation), Keyframe(start + attack, peak, interpolation)]
    if end - release > start + attack + 1e-9:
        keys.append(Keyframe(end - release, peak, interpolation))
    keys.append(Keyframe(end, 0.0, interpolation))
    return EmotionCurve(emotion, keys)


def curves_from(items: Iterable[EmotionCurve | SampledCurve], fps: float = 25.0, frame_start: float = 0.0,
                frame_end: float | None = None) -> EmotionCurves:
    """Bundle curves (e.g. presets) into :class:`EmotionCurves`."""
    curves: dict[str, EmotionCurve | SampledCurve] = {}
    for curve in items:
        if curve.emotion in curves:
            raise ValueError(f"emotion {curve.emotion!r} has two curves")
        curves[curve.emotion] = curve
    return EmotionCurves(curves, fps=fps, frame_start=frame_start, frame_end=frame_end)
