"""Emotion curves on the Blender side: sampling F-curves per frame, the protocol payload, presets.

Pure Python (no ``bpy``): the functions take plain callables and numbers, so they are unit-tested
without Blender. The operators pass ``fcurve.evaluate`` for each keyframed emotion slider.

The payload is the "per_frame" form of the engine's emotion-curves JSON
(``core/expression/emotions.py``): one sampled value per scene frame, starting at ``frame_start``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

# Same names and order as core.expression.emotions.EMOTIONS (a test checks that they agree).
EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
CURVES_FORMAT = "emodub-emotion-curves"
CURVES_FORMAT_VERSION = 1
PRESETS: tuple[str, ...] = ("RAMP_IN", "PULSE", "RAMP_OUT")

# A source of one emotion's values: an F-curve's ``evaluate(frame)`` or a constant slider value.
EmotionSource = Callable[[float], float] | float


def sample_source(source: EmotionSource, frames: Sequence[float]) -> list[float]:
    """Values of ``source`` at each frame (a constant is repeated); ``ValueError`` for non-finite values."""
    if callable(source):
        values = [float(source(float(frame))) for frame in frames]
    else:
        values = [float(source)] * len(frames)
    for frame, value in zip(frames, values, strict=True):
        if not math.isfinite(value):
            raise ValueError(f"emotion curve value at frame {frame} is {value!r}; values must be finite")
    return values


def sample_emotions(sources: Mapping[str, EmotionSource], frame_start: float,
                    count: int) -> dict[str, list[float]]:
    """Sample every emotion once per frame over ``frame_start .. frame_start + count - 1``.

    Args:
        sources: emotion name -> F-curve evaluate function or constant value. Emotions missing from
            the mapping are sampled as 0 (neutral).
        frame_start: first scene frame (the shot's frame 0).
        count: number of frames (>= 1).

    Returns:
        ``{emotion: [value per frame]}`` for all seven emotions, in :data:`EMOTIONS` order.
    """
    unknown = set(sources) - set(EMOTIONS)
    if unknown:
        raise ValueError(f"unknown emotion(s) {sorted(unknown)}; known: {', '.join(EMOTIONS)}")
    if count < 1:
        raise ValueError(f"the frame range is empty (count={count}); the source strip has no frames")
    frames = [float(frame_start + i) for i in range(count)]
    return {name: sample_source(sources.get(name, 0.0), frames) for name in EMOTIONS}


def _frame_number(frame: float) -> int | float:
    """Whole frames as ints (the usual case), sub-frame starts as floats."""
    return int(frame) if float(frame).is_integer() else float(frame)


def emotion_curves_payload(per_frame: Mapping[str, Sequence[float]], fps: float,
                           frame_start: float) -> dict[str, object]:
    """The engine's emotion-curves JSON object in its ``per_frame`` form.

    All lists must have the same length ``n``; ``frame_end`` is ``frame_start + n - 1``.
    """
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    lengths = {len(values) for values in per_frame.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError("every emotion needs the same, non-zero number of values; "
                         f"got lengths {sorted(lengths)}")
    (n,) = lengths
    return {"format": CURVES_FORMAT, "version": CURVES_FORMAT_VERSION, "fps": float(fps),
            "frame_start": _frame_number(frame_start), "frame_end": _frame_number(frame_start + n - 1),
            "per_frame": {name: [float(v) for v in per_frame[name]]
                          for name in EMOTIONS if name in per_frame}}


def preset_keyframes(preset: str, start: float, end: float, peak: float = 1.0) -> list[tuple[float, float]]:
    """Keyframes ``(frame, value)`` of a preset over ``[start, end]`` (the same shapes as the engine's
    ``ramp_in``/``pulse``/``ramp_out``).

    * ``RAMP_IN``: 0 at ``start`` rising to ``peak`` at ``end``.
    * ``PULSE``: 0 at ``start``, ``peak`` from a quarter to three quarters of the span, 0 at ``end``.
    * ``RAMP_OUT``: ``peak`` at ``start`` falling to 0 at ``end``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    if not end > start:
        raise ValueError(f"the strip range is too short for a preset (start {start}, end {end})")
    if not 0.0 <= peak <= 1.0:
        raise ValueError(f"peak intensity must lie in [0, 1], got {peak}")
    if preset == "RAMP_IN":
        return [(start, 0.0), (end, peak)]
    if preset == "RAMP_OUT":
        return [(start, peak), (end, 0.0)]
    quarter = (end - start) / 4.0
    return [(start, 0.0), (start + quarter, peak), (end - quarter, peak), (end, 0.0)]
