"""The upper face and mouth corners of the synthetic actor: emotions, blinks and head motion.

Emotions act on brows, eyes, cheeks and mouth corners through :data:`EMOTION_FACE` (weights at
intensity 1, after the FACS prototypes of Ekman & Friesen: AU1 inner brow raiser -> ``brow_inner_up``,
AU2 -> ``brow_up_*``, AU4 -> ``brow_down_*``, AU5 -> ``eye_wide_*``, AU6 -> ``cheek_raise_*``,
AU7 -> ``squint_*``, AU9 -> ``sneer_*``, AU10 -> ``upper_lip_raise``, AU12 -> ``smile_*``,
AU14 -> ``dimple_*``, AU15 -> ``frown_*``, AU17 -> ``chin_raise``, AU20 -> ``lips_stretch``,
AU23/24 -> ``lips_press``, AU26 -> ``mouth_open``):

==========  ===============================================================================
emotion     expression weights at intensity 1 (both sides unless a side is named)
==========  ===============================================================================
angry       brow_down 0.8, squint 0.45, lips_press 0.45, sneer 0.2, chin_raise 0.2
contempt    smile_left 0.55, dimple_left 0.5, mouth_left 0.15, squint_left 0.15
disgusted   sneer 0.75, upper_lip_raise 0.55, brow_down 0.45, squint 0.3, frown 0.2
fear        brow_inner_up 0.8, brow_up 0.5, eye_wide 0.8, lips_stretch 0.55, mouth_open 0.1
happy       smile 0.8, cheek_raise 0.6, squint 0.25, dimple 0.2, mouth_wide 0.1
sad         brow_inner_up 0.8, frown 0.7, chin_raise 0.3, blink 0.15 (drooping lids), brow_down 0.1
surprised   brow_up 0.9, brow_inner_up 0.4, eye_wide 0.8, mouth_open 0.3
==========  ===============================================================================

The offsets are linear in each intensity (MEAD levels 1/2/3 = 0.33/0.66/1.0 give a third, two thirds and
all of a row) and mixtures add up. :func:`compose_expression` adds them to the viseme track and blinks
and clips to [0, 1]. Surprise and fear also drop the jaw a little (:data:`EMOTION_JAW`).

A corpus builder chains: ``random_sentence -> synthesize(emotion) -> viseme_track`` +
``emotion_expression`` + ``blink_track`` + ``head_motion`` -> per-frame parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.expression.emotions import EMOTIONS, N_EMOTIONS
from core.morphable.data import PROCEDURAL_EXPRESSIONS

_INDEX = {name: i for i, name in enumerate(PROCEDURAL_EXPRESSIONS)}


def _both(name: str, value: float) -> dict[str, float]:
    return {f"{name}_left": value, f"{name}_right": value}


EMOTION_FACE: dict[str, dict[str, float]] = {
    "angry": {**_both("brow_down", 0.8), **_both("squint", 0.45), "lips_press": 0.45, **_both("sneer", 0.2),
              "chin_raise": 0.2},
    "contempt": {"smile_left": 0.55, "dimple_left": 0.5, "mouth_left": 0.15, "squint_left": 0.15},
    "disgusted": {**_both("sneer", 0.75), "upper_lip_raise": 0.55, **_both("brow_down", 0.45),
                  **_both("squint", 0.3), **_both("frown", 0.2)},
    "fear": {"brow_inner_up": 0.8, **_both("brow_up", 0.5), **_both("eye_wide", 0.8), "lips_stretch": 0.55,
             "mouth_open": 0.1},
    "happy": {**_both("smile", 0.8), **_both("cheek_raise", 0.6), **_both("squint", 0.25),
              **_both("dimple", 0.2), "mouth_wide": 0.1},
    "sad": {"brow_inner_up": 0.8, **_both("frown", 0.7), "chin_raise": 0.3, **_both("blink", 0.15),
            **_both("brow_down", 0.1)},
    "surprised": {**_both("brow_up", 0.9), "brow_inner_up": 0.4, **_both("eye_wide", 0.8), "mouth_open": 0.3},
}
# Jaw opening (radians) added at intensity 1.
EMOTION_JAW: dict[str, float] = {"surprised": 0.06, "fear": 0.02}


def emotion_face_matrix() -> np.ndarray:
    """(7, E) float64: row ``i`` is the expression offset of ``EMOTIONS[i]`` at intensity 1."""
    out = np.zeros((N_EMOTIONS, len(PROCEDURAL_EXPRESSIONS)))
    for i, emotion in enumerate(EMOTIONS):
        for name, value in EMOTION_FACE[emotion].items():
            out[i, _INDEX[name]] = value
    return out


def _as_frames(emotion: np.ndarray | Sequence[float]) -> np.ndarray:
    vec = np.asarray(emotion, dtype=np.float64)
    if vec.ndim == 1:
        vec = vec[None]
    if vec.ndim != 2 or vec.shape[1] != N_EMOTIONS:
        raise ValueError(f"emotion must be ({N_EMOTIONS},) or (N, {N_EMOTIONS}) intensities in the order "
                         f"{EMOTIONS}, got shape {np.shape(emotion)}")
    if not np.all(np.isfinite(vec)) or vec.min() < 0 or vec.max() > 1:
        raise ValueError("emotion intensities must be finite and within [0, 1]")
    return vec


def emotion_expression(emotion: np.ndarray | Sequence[float]) -> np.ndarray:
    """Expression offsets of per-frame emotions.

    Args:
        emotion: (7,) or (N, 7) intensities in [0, 1] (order of ``EMOTIONS``).

    Returns:
        (N, len(PROCEDURAL_EXPRESSIONS)) float32 offsets (N = 1 for a single vector), not clipped.
    """
    return (_as_frames(emotion) @ emotion_face_matrix()).astype(np.float32)


def emotion_jaw_offset(emotion: np.ndarray | Sequence[float]) -> np.ndarray:
    """(N,) float32 jaw opening added by the emotions (radians)."""
    weights = np.array([EMOTION_JAW.get(name, 0.0) for name in EMOTIONS])
    return (_as_frames(emotion) @ weights).astype(np.float32)


def compose_expression(viseme_expression: np.ndarray, emotion_offsets: np.ndarray,
                       blink: np.ndarray | None = None) -> np.ndarray:
    """Per-frame expression weights of the actor: visemes + emotion offsets (+ blinks), clipped to [0, 1].

    Args:
        viseme_expression: (N, E) from :func:`core.synthetic.visemes.viseme_track`.
        emotion_offsets: (N, E) or (1, E) from :func:`emotion_expression`.
        blink: optional (N,) eyelid closure in [0, 1] from :func:`blink_track`; a blink closes the lids
            fully whatever the emotion (wide eyes are suppressed while the lids close).

    Returns:
        (N, E) float32 in [0, 1].
    """
    out = np.asarray(viseme_expression, dtype=np.float64) + np.asarray(emotion_offsets, dtype=np.float64)
    if blink is not None:
        b = np.asarray(blink, dtype=np.float64).reshape(-1, 1)
        for side in ("left", "right"):
            lid, wide = _INDEX[f"blink_{side}"], _INDEX[f"eye_wide_{side}"]
            out[:, lid] = out[:, lid] + b[:, 0] * (1.0 - out[:, lid])
            out[:, wide] = out[:, wide] * (1.0 - b[:, 0])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Blinks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlinkConfig:
    """Spontaneous blinks.

    Attributes:
        mean_interval_s: mean time between blink onsets (adults at rest: ~3-5 s).
        min_interval_s: shortest gap between two blinks.
        close_s: closing time (the lid falls fast).
        hold_s: time fully closed.
        open_s: reopening time (slower than closing).
        duration_jitter: relative random spread of the three durations.
    """

    mean_interval_s: float = 4.0
    min_interval_s: float = 1.2
    close_s: float = 0.05
    hold_s: float = 0.02
    open_s: float = 0.1
    duration_jitter: float = 0.2


def blink_track(n_frames: int, fps: float, rng: np.random.Generator | int | None = None,
                config: BlinkConfig | None = None) -> np.ndarray:
    """Eyelid closure per frame (0 open, 1 closed) with random spontaneous blinks.

    Intervals are ``min_interval_s`` plus an exponential (mean ``mean_interval_s`` overall); each blink
    closes with a quarter-cosine, holds, and reopens more slowly. Frame ``n`` is at ``n / fps``.

    Returns:
        (n_frames,) float32 in [0, 1] (drive ``blink_left`` and ``blink_right`` with it).
    """
    cfg = config or BlinkConfig()
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if n_frames <= 0:
        return np.zeros(0, np.float32)
    length_s = n_frames / fps
    spare = max(cfg.mean_interval_s - cfg.min_interval_s, 1e-3)
    n_blinks = int(length_s / cfg.min_interval_s) + 2
    intervals = cfg.min_interval_s + gen.exponential(spare, n_blinks)
    onsets = np.cumsum(intervals) - gen.uniform(0.0, cfg.mean_interval_s)  # random phase at frame 0
    scale = np.clip(1.0 + cfg.duration_jitter * gen.standard_normal((n_blinks, 3)), 0.5, 1.5)
    close = cfg.close_s * scale[:, 0]
    hold = cfg.hold_s * scale[:, 1]
    reopen = cfg.open_s * scale[:, 2]

    t = np.arange(n_frames) / fps
    k = np.searchsorted(onsets, t, side="right") - 1  # the blink that started last (blinks never overlap)
    valid = k >= 0
    kk = np.clip(k, 0, None)
    tau = t - onsets[kk]
    closing = np.sin(0.5 * np.pi * np.clip(tau / close[kk], 0.0, 1.0))
    opening = 0.5 * (1.0 + np.cos(np.pi * np.clip((tau - close[kk] - hold[kk]) / reopen[kk], 0.0, 1.0)))
    amount = np.where(tau < close[kk], closing, np.where(tau < close[kk] + hold[kk], 1.0, opening))
    amount = np.where(valid & (tau < close[kk] + hold[kk] + reopen[kk]), amount, 0.0)
    return amount.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Head motion
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadMotionConfig:
    """Small, smooth idle head motion: a sum of a few slow sinusoids per axis with random phases.

    Attributes:
        rotation_deg: (pitch about x, yaw about y, roll about z) standard deviation in degrees.
        translation_mm: (x, y, z) standard deviation in millimetres.
        frequency_hz: (low, high) range the component frequencies are drawn from.
        components: sinusoids per axis.
        speech_nod_deg: extra pitch (nodding) per unit of the optional speech energy envelope.
    """

    rotation_deg: tuple[float, float, float] = (2.0, 3.0, 1.0)
    translation_mm: tuple[float, float, float] = (2.5, 1.5, 2.5)
    frequency_hz: tuple[float, float] = (0.03, 0.4)
    components: int = 4
    speech_nod_deg: float = 1.5


def head_motion(n_frames: int, fps: float, rng: np.random.Generator | int | None = None,
                speech_energy: np.ndarray | None = None,
                config: HeadMotionConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Idle head rotation and translation per frame (smooth, a few degrees / millimetres).

    Args:
        n_frames: number of frames; frame ``n`` is at ``n / fps``.
        fps: frame rate.
        rng: numpy Generator or seed.
        speech_energy: optional (n_frames,) loudness envelope in [0, 1]; adds small nods while speaking.
        config: amplitudes and frequencies.

    Returns:
        ``(rotation, translation)``: (N, 3) float32 axis-angle radians (small angles: components are the
        pitch, yaw, roll) and (N, 3) float32 metres, each with zero mean over the clip.
    """
    cfg = config or HeadMotionConfig()
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    t = np.arange(n_frames) / fps
    lo, hi = cfg.frequency_hz
    # 6 axes x components; the frequencies are log-uniform so slow drifts dominate.
    freqs = np.exp(gen.uniform(np.log(lo), np.log(hi), (6, cfg.components)))
    phases = gen.uniform(0.0, 2 * np.pi, (6, cfg.components))
    amps = 1.0 / np.sqrt(freqs / lo)  # more amplitude in slower components (1/f-like)
    amps /= np.sqrt(0.5 * (amps**2).sum(1, keepdims=True))  # each axis: unit standard deviation
    waves = np.einsum("ak,akn->na", amps, np.sin(2 * np.pi * freqs[:, :, None] * t[None, None, :]
                                                  + phases[:, :, None]))  # (N, 6)
    rotation = waves[:, :3] * np.deg2rad(np.array(cfg.rotation_deg))
    translation = waves[:, 3:] * np.array(cfg.translation_mm) * 1e-3
    if speech_energy is not None:
        energy = np.asarray(speech_energy, dtype=np.float64).reshape(-1)
        if energy.shape != (n_frames,):
            raise ValueError(f"speech_energy must have shape ({n_frames},), got {energy.shape}")
        kernel = np.hanning(max(int(0.3 * fps), 3))
        nod = np.convolve(energy, kernel / kernel.sum(), mode="same")
        rotation[:, 0] += np.deg2rad(cfg.speech_nod_deg) * nod
    rotation -= rotation.mean(0, keepdims=True) if n_frames else 0.0
    translation -= translation.mean(0, keepdims=True) if n_frames else 0.0
    return rotation.astype(np.float32), translation.astype(np.float32)
