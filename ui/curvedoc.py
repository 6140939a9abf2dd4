"""Editing emotion curves without Qt: a document over core's :class:`EmotionCurves` and reversible edits.

The maths (interpolation, presets, the JSON form) lives in :mod:`core.expression.emotions`; this module
only changes keyframe lists. Every edit is a :class:`CurveEdit` holding one emotion's keyframes before and
after, so undo/redo is exact (the Qt undo stack wraps these, see :mod:`ui.timeline`).

Rules the editor keeps:
* keyframe frames are snapped to whole frames (a dub is rendered per video frame);
* two keys of one curve never share a frame (core rejects it): a move onto another key's frame is
  refused (the key stays where it was), an add onto an existing key replaces its value;
* values are clamped into [0, 1];
* deleting a curve's last key removes the curve (that emotion is then 0 everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.expression.emotions import (
    EMOTIONS,
    INTERPOLATIONS,
    EmotionCurve,
    EmotionCurves,
    Keyframe,
    SampledCurve,
    pulse,
    ramp_in,
    ramp_out,
)

Keys = tuple[Keyframe, ...]
PRESETS: dict[str, Callable[..., EmotionCurve]] = {"ramp in": ramp_in, "pulse": pulse, "ramp out": ramp_out}
CURVES_FILE = "emotions.json"


def _clamp01(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


@dataclass(frozen=True)
class CurveEdit:
    """One reversible change of one emotion's keyframes (``()`` = no curve)."""

    emotion: str
    before: Keys
    after: Keys
    text: str

    def redo(self, doc: CurveDocument) -> None:
        doc.set_keys(self.emotion, self.after)

    def undo(self, doc: CurveDocument) -> None:
        doc.set_keys(self.emotion, self.before)


class CurveDocument:
    """The emotion curves of one shot, as edited.

    Args:
        curves: the starting curves; per-frame (sampled) curves are kept as they are but are not
            editable here (the add-on writes those; converting them to keys would lose detail).
    """

    def __init__(self, curves: EmotionCurves) -> None:
        self.fps = curves.fps
        self.frame_start = curves.frame_start
        self.frame_end = curves.frame_end
        self._keys: dict[str, Keys] = {}
        self._sampled: dict[str, SampledCurve] = {}
        for name, curve in curves.curves.items():
            if isinstance(curve, EmotionCurve):
                self._keys[name] = tuple(curve.keyframes)
            else:
                self._sampled[name] = curve
        self._listeners: list[Callable[[str], None]] = []

    @classmethod
    def empty(cls, fps: float, n_frames: int | None = None) -> CurveDocument:
        return cls(
            EmotionCurves(
                {},
                fps=fps,
                frame_start=0.0,
                frame_end=None if n_frames is None else float(max(n_frames - 1, 0)),
            )
        )

    # -- observation ---------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener(emotion)`` is called after each change of that emotion's curve."""
        self._listeners.append(listener)

    # -- access --------------------------------------------------------------------------------
    def keys(self, emotion: str) -> Keys:
        return self._keys.get(emotion, ())

    def is_sampled(self, emotion: str) -> bool:
        return emotion in self._sampled

    def set_keys(self, emotion: str, keys: Sequence[Keyframe]) -> None:
        if emotion not in EMOTIONS:
            raise ValueError(f"unknown emotion {emotion!r}")
        if keys:
            self._keys[emotion] = tuple(EmotionCurve(emotion, list(keys)).keyframes)  # validates + sorts
        else:
            self._keys.pop(emotion, None)
        for listener in list(self._listeners):
            listener(emotion)

    def curves(self) -> EmotionCurves:
        """The current state as core curves (what is saved and sent to the ``dub`` job)."""
        items: dict[str, EmotionCurve | SampledCurve] = dict(self._sampled)
        items.update({name: EmotionCurve(name, list(keys)) for name, keys in self._keys.items()})
        return EmotionCurves(items, fps=self.fps, frame_start=self.frame_start, frame_end=self.frame_end)

    def sample(self, emotion: str, frames: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Values of one emotion at curve frames, clipped to [0, 1] as the engine samples them
        (0 where the emotion has no curve). Shape of ``frames``, float64."""
        query = np.asarray(frames, dtype=np.float64)
        if emotion in self._keys:
            return np.clip(EmotionCurve(emotion, list(self._keys[emotion])).evaluate(query), 0.0, 1.0)
        if emotion in self._sampled:
            return np.clip(self._sampled[emotion].evaluate(query), 0.0, 1.0)
        return np.zeros(query.shape)

    def sample_all(self, n_frames: int) -> np.ndarray:
        """(n_frames, 7) labels exactly as the engine computes them (core's ``EmotionCurves.sample``)."""
        return self.curves().sample(n_frames)

    def find_key(self, emotion: str, frame: float, tolerance: float = 0.5) -> int | None:
        """Index of the key nearest ``frame`` within ``tolerance`` frames, else ``None``."""
        keys = self.keys(emotion)
        if not keys:
            return None
        distance = np.abs(np.array([k.frame for k in keys]) - frame)
        best = int(np.argmin(distance))
        return best if distance[best] <= tolerance else None

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        return self.curves().to_json()

    def save(self, path: str | Path) -> Path:
        """Atomically write the core JSON form (what the ``dub`` job reads)."""
        return self.curves().save(path)


# ------------------------------------------------------------------------------------------------
# Edit builders: each returns a CurveEdit (or None when nothing would change).
# ------------------------------------------------------------------------------------------------


def add_key(
    doc: CurveDocument, emotion: str, frame: float, value: float, interpolation: str = "bezier"
) -> CurveEdit | None:
    """Insert a key at the whole frame nearest ``frame``; replaces the value of a key already there."""
    if doc.is_sampled(emotion):
        raise ValueError(f"the {emotion} curve is per-frame data (from the add-on); clear it before keying")
    before = doc.keys(emotion)
    frame = float(round(frame))
    value = _clamp01(value)
    keys = list(before)
    at = next((i for i, k in enumerate(keys) if k.frame == frame), None)
    if at is not None:
        if keys[at].value == value:
            return None
        keys[at] = replace(keys[at], value=value)
    else:
        keys.append(Keyframe(frame, value, interpolation))  # type: ignore[arg-type]
    after = tuple(EmotionCurve(emotion, keys).keyframes)
    return CurveEdit(emotion, before, after, f"Add {emotion} key at frame {frame:g}")


def move_key(doc: CurveDocument, emotion: str, index: int, frame: float, value: float) -> CurveEdit | None:
    """Move key ``index`` to (whole frame nearest ``frame``, clamped ``value``). A move onto another
    key's frame keeps the old frame (the value still changes)."""
    before = doc.keys(emotion)
    if not 0 <= index < len(before):
        raise IndexError(f"{emotion} has no key #{index}")
    old = before[index]
    new_frame = float(round(frame))
    if any(k.frame == new_frame for i, k in enumerate(before) if i != index):
        new_frame = old.frame
    new_value = _clamp01(value)
    if new_frame == old.frame and new_value == old.value:
        return None
    keys = list(before)
    keys[index] = replace(old, frame=new_frame, value=new_value)
    after = tuple(EmotionCurve(emotion, keys).keyframes)
    return CurveEdit(emotion, before, after, f"Move {emotion} key")


def delete_key(doc: CurveDocument, emotion: str, index: int) -> CurveEdit:
    before = doc.keys(emotion)
    if not 0 <= index < len(before):
        raise IndexError(f"{emotion} has no key #{index}")
    after = before[:index] + before[index + 1 :]
    return CurveEdit(emotion, before, after, f"Delete {emotion} key at frame {before[index].frame:g}")


def set_interpolation(doc: CurveDocument, emotion: str, index: int, mode: str) -> CurveEdit | None:
    """Set how the segment after key ``index`` is interpolated (``constant``, ``linear``, ``bezier``)."""
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {mode!r}")
    before = doc.keys(emotion)
    if not 0 <= index < len(before):
        raise IndexError(f"{emotion} has no key #{index}")
    if before[index].interpolation == mode:
        return None
    keys = list(before)
    keys[index] = replace(keys[index], interpolation=mode)  # type: ignore[arg-type]
    return CurveEdit(emotion, before, tuple(keys), f"Set {emotion} key to {mode}")


def apply_preset(
    doc: CurveDocument, emotion: str, preset: str, start: float, end: float, peak: float = 1.0
) -> CurveEdit:
    """Put a core preset (``ramp in``, ``pulse``, ``ramp out``) over ``[start, end]``: keys inside that
    span are replaced by the preset's keys, keys outside it are kept."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if doc.is_sampled(emotion):
        raise ValueError(f"the {emotion} curve is per-frame data (from the add-on); clear it before keying")
    start, end = float(round(start)), float(round(end))
    if not math.isfinite(start) or not end > start:
        raise ValueError(f"a preset needs end > start (got {start:g}..{end:g})")
    made = PRESETS[preset](emotion, start, end, peak=_clamp01(peak))
    before = doc.keys(emotion)
    kept = [k for k in before if not start <= k.frame <= end]
    after = tuple(EmotionCurve(emotion, [*kept, *made.keyframes]).keyframes)
    return CurveEdit(emotion, before, after, f"{preset.capitalize()} on {emotion}")


def clear_curve(doc: CurveDocument, emotion: str) -> CurveEdit | None:
    before = doc.keys(emotion)
    if not before:
        return None
    return CurveEdit(emotion, before, (), f"Clear {emotion}")
