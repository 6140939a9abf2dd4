"""Visemes: phonemes -> mouth shapes (expression weights + jaw opening) with coarticulation.

Each phoneme maps to a viseme class (the 15 classes used by common lip-sync rigs: sil, PP, FF, TH, DD,
kk, CH, SS, nn, RR, aa, E, I, O, U, plus ``hh``); each class has target weights over
:data:`core.morphable.data.PROCEDURAL_EXPRESSIONS` and a jaw opening in radians. Vowels refine the jaw
opening per phoneme (``aa`` 0.30 rad is the widest, ``iy`` 0.06 the narrowest); diphthongs move from a
start to an end shape.

=======  ==========================  =================================================  ==========
class    phonemes                    main weights                                        jaw (rad)
=======  ==========================  =================================================  ==========
sil      sil                         rest (all 0)                                        0.0
PP       p b m                       lips_press 0.9, chin_raise 0.25                     0.01
FF       f v                         lower_lip_roll 0.7, upper_lip_raise 0.45            0.05
TH       th dh                       mouth_open 0.2, lower_lip_depress 0.2               0.07
DD       t d                         mouth_open 0.2, mouth_wide 0.15                     0.07
kk       k g ng                      mouth_open 0.25, mouth_wide 0.1                     0.10
CH       ch jh sh zh                 lips_funnel 0.6, lips_pucker 0.35, mouth_open 0.15  0.06
SS       s z                         mouth_wide 0.45, lips_stretch 0.35                  0.04
nn       n l                         mouth_open 0.2, mouth_wide 0.1                      0.08
RR       r er                        lips_pucker 0.35, lips_funnel 0.3, mouth_round 0.2  0.08
aa       aa ae ah (ay, aw start)     mouth_open 0.8, lower_lip_depress 0.3               0.22-0.30
E        eh (ey start)               mouth_open 0.4, mouth_wide 0.5                      0.17
I        ih iy y (ay, ey, oy end)    mouth_wide 0.7, lips_stretch 0.3                    0.06-0.10
O        ao (ow, oy start)           mouth_round 0.7, lips_funnel 0.4, mouth_open 0.5    0.22
U        uw uh w (ow, aw end)        lips_pucker 0.8, mouth_round 0.6, lips_funnel 0.3   0.08
hh       hh                          mouth_open 0.3, almost no dominance (*)             0.12
=======  ==========================  =================================================  ==========

(*) the mouth already takes the next vowel's shape during ``hh``.

Coarticulation follows Cohen & Massaro (1993): every phoneme is a gesture with a target and a
*dominance* that is ``alpha`` inside the phoneme and decays as ``alpha * exp(-theta * distance)`` before
(anticipation, slower decay) and after it (carry-over). A parameter's value at time t is the
dominance-weighted mean of all targets. Dominance is split into a lip group and a jaw group
(``jaw``, ``mouth_open``, ``lower_lip_depress``): bilabials and labiodentals dominate the lips (the
closure of ``p`` is always reached), velars and alveolars barely do (their lips take the neighbouring
vowel's rounding), so ``k`` in "koo" is rounded and ``k`` in "key" spread. The continuous track is then
averaged over a short Gaussian window (``smoothing_s``: muscles and frame exposure), which bounds the
frame-to-frame change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.synthetic.phonemes import PhonemeTiming, phoneme

EXPRESSION_INDEX: dict[str, int] = {name: i for i, name in enumerate(PROCEDURAL_EXPRESSIONS)}
N_EXPRESSIONS: int = len(PROCEDURAL_EXPRESSIONS)
# Parameters that move with the jaw (their dominance is the jaw group's).
JAW_GROUP: tuple[str, ...] = ("mouth_open", "lower_lip_depress")
JAW_MAX_RAD: float = 0.35


@dataclass(frozen=True)
class Viseme:
    """A mouth shape.

    Attributes:
        name: class name (``"PP"``, ``"aa"``...).
        weights: expression name -> weight in [0, 1] (names of ``PROCEDURAL_EXPRESSIONS``).
        jaw: jaw opening in radians (rotation about the jaw joint's x axis).
        lip_dominance: coarticulation strength of the lip shape (higher wins over neighbours).
        jaw_dominance: coarticulation strength of the jaw opening.
        decay: factor on the dominance decay rates (> 1: a brief, local gesture such as a closure).
    """

    name: str
    weights: Mapping[str, float]
    jaw: float
    lip_dominance: float = 1.0
    jaw_dominance: float = 1.0
    decay: float = 1.0

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(PROCEDURAL_EXPRESSIONS)
        if unknown:
            raise ValueError(f"viseme {self.name!r} uses unknown expressions {sorted(unknown)}")

    def vector(self) -> np.ndarray:
        """(E,) float64 weights in the order of ``PROCEDURAL_EXPRESSIONS``."""
        out = np.zeros(N_EXPRESSIONS)
        for name, value in self.weights.items():
            out[EXPRESSION_INDEX[name]] = value
        return out


VISEMES: dict[str, Viseme] = {v.name: v for v in (
    Viseme("sil", {}, 0.0, lip_dominance=0.6, jaw_dominance=0.6),
    Viseme("PP", {"lips_press": 0.9, "chin_raise": 0.25}, 0.01, lip_dominance=4.0, jaw_dominance=2.0,
           decay=1.6),
    Viseme("FF", {"lower_lip_roll": 0.7, "upper_lip_raise": 0.45, "mouth_open": 0.1}, 0.05,
           lip_dominance=3.5, jaw_dominance=1.5, decay=1.5),
    Viseme("TH", {"mouth_open": 0.2, "lower_lip_depress": 0.2}, 0.07, lip_dominance=1.0, jaw_dominance=1.5),
    Viseme("DD", {"mouth_open": 0.2, "mouth_wide": 0.15}, 0.07, lip_dominance=0.3, jaw_dominance=1.0),
    Viseme("kk", {"mouth_open": 0.25, "mouth_wide": 0.1}, 0.10, lip_dominance=0.2, jaw_dominance=0.6),
    Viseme("CH", {"lips_funnel": 0.6, "lips_pucker": 0.35, "mouth_open": 0.15}, 0.06, lip_dominance=2.0,
           jaw_dominance=1.2),
    Viseme("SS", {"mouth_wide": 0.45, "lips_stretch": 0.35, "mouth_open": 0.1}, 0.04, lip_dominance=1.2,
           jaw_dominance=1.5),
    Viseme("nn", {"mouth_open": 0.2, "mouth_wide": 0.1}, 0.08, lip_dominance=0.3, jaw_dominance=0.8),
    Viseme("RR", {"lips_pucker": 0.35, "lips_funnel": 0.3, "mouth_round": 0.2, "mouth_open": 0.15}, 0.08,
           lip_dominance=1.5, jaw_dominance=1.0),
    Viseme("aa", {"mouth_open": 0.8, "lower_lip_depress": 0.3}, 0.28),
    Viseme("E", {"mouth_open": 0.4, "mouth_wide": 0.5}, 0.17),
    Viseme("I", {"mouth_wide": 0.7, "lips_stretch": 0.3, "mouth_open": 0.15}, 0.06),
    Viseme("O", {"mouth_round": 0.7, "lips_funnel": 0.4, "mouth_open": 0.5}, 0.22, lip_dominance=1.5),
    Viseme("U", {"lips_pucker": 0.8, "mouth_round": 0.6, "lips_funnel": 0.3, "mouth_open": 0.1}, 0.08,
           lip_dominance=2.0),
    Viseme("hh", {"mouth_open": 0.3}, 0.12, lip_dominance=0.05, jaw_dominance=0.05),
)}
VISEME_CLASSES: tuple[str, ...] = tuple(VISEMES)

# Phoneme -> viseme class, or (start class, end class) for diphthongs.
PHONEME_VISEMES: dict[str, str | tuple[str, str]] = {
    "sil": "sil", "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "th": "TH", "dh": "TH",
    "t": "DD", "d": "DD", "k": "kk", "g": "kk", "ng": "kk", "ch": "CH", "jh": "CH", "sh": "CH", "zh": "CH",
    "s": "SS", "z": "SS", "n": "nn", "l": "nn", "r": "RR", "er": "RR", "hh": "hh", "w": "U", "y": "I",
    "aa": "aa", "ae": "aa", "ah": "aa", "eh": "E", "ih": "I", "iy": "I", "ao": "O", "uh": "U", "uw": "U",
    "ay": ("aa", "I"), "aw": ("aa", "U"), "ey": ("E", "I"), "ow": ("O", "U"), "oy": ("O", "I"),
}
# Per-phoneme jaw opening (radians) and mouth_open where a vowel differs from its class.
_VOWEL_JAW: dict[str, float] = {"aa": 0.30, "ae": 0.27, "ah": 0.22, "ih": 0.10, "iy": 0.06, "uh": 0.12,
                                "uw": 0.07, "er": 0.12, "w": 0.05, "y": 0.05}
_VOWEL_EXTRA: dict[str, dict[str, float]] = {
    "ae": {"mouth_wide": 0.35, "mouth_open": 0.7}, "ah": {"mouth_open": 0.6},
    "ih": {"mouth_wide": 0.5, "mouth_open": 0.25}, "uh": {"lips_pucker": 0.45, "mouth_open": 0.25},
    "er": {"lips_pucker": 0.4, "mouth_open": 0.25},
}
_LABIAL_M = {"lips_press": 0.75}  # /m/ presses a little less than the stops


def viseme_of(symbol: str) -> tuple[str, ...]:
    """Viseme class name(s) of a phoneme (two for a diphthong)."""
    entry = PHONEME_VISEMES[phoneme(symbol).symbol]
    return entry if isinstance(entry, tuple) else (entry,)


def viseme_targets(symbol: str) -> list[tuple[np.ndarray, float, Viseme]]:
    """Targets of a phoneme's gesture(s): ``[(weights (E,), jaw_rad, viseme), ...]``.

    One entry, or two (start, end) for a diphthong; the viseme gives the dominance settings.
    """
    sym = phoneme(symbol).symbol
    out = []
    for k, cls in enumerate(viseme_of(sym)):
        vis = VISEMES[cls]
        weights = vis.vector()
        jaw = vis.jaw
        if k == 0 and sym in _VOWEL_JAW:
            jaw = _VOWEL_JAW[sym]
        extra = _VOWEL_EXTRA.get(sym, {}) if k == 0 else {}
        if sym == "m":
            extra = _LABIAL_M
        for name, value in extra.items():
            weights[EXPRESSION_INDEX[name]] = value
        out.append((weights, jaw, vis))
    return out


@dataclass(frozen=True)
class CoarticulationConfig:
    """Cohen-Massaro dominance blending.

    Attributes:
        anticipation_rate: dominance decay rate before a phoneme, 1/s (smaller = earlier anticipation).
        carryover_rate: decay rate after a phoneme, 1/s.
        smoothing_s: standard deviation of the Gaussian time window the track is averaged over, s.
        window_taps: samples of that window per frame (odd).
        chunk_frames: frames evaluated at once (bounds memory on long tracks).
    """

    anticipation_rate: float = 22.0
    carryover_rate: float = 32.0
    smoothing_s: float = 0.02
    window_taps: int = 7
    chunk_frames: int = 1024


def _gestures(timing: PhonemeTiming) -> tuple[np.ndarray, ...]:
    """Per gesture: start, end, targets (G, E+1), dominance (G, E+1), decay factor (G,); column E = jaw."""
    starts, ends, targets, dominance, decay = [], [], [], [], []
    jaw_cols = np.array([EXPRESSION_INDEX[n] for n in JAW_GROUP])
    for start, end, sym in timing:
        parts = viseme_targets(sym)
        bounds = np.linspace(start, end, len(parts) + 1)
        for k, (weights, jaw, vis) in enumerate(parts):
            starts.append(bounds[k])
            ends.append(bounds[k + 1])
            targets.append(np.append(weights, jaw))
            dom = np.full(N_EXPRESSIONS + 1, vis.lip_dominance)
            dom[jaw_cols] = vis.jaw_dominance
            dom[-1] = vis.jaw_dominance
            dominance.append(dom)
            decay.append(vis.decay)
    # Rest beyond both ends of the timing, so frames outside it return to the neutral mouth.
    rest = np.zeros(N_EXPRESSIONS + 1)
    rest_dom = np.full(N_EXPRESSIONS + 1, VISEMES["sil"].lip_dominance)
    first, last = (timing.starts[0], timing.ends[-1]) if len(timing) else (0.0, 0.0)
    starts = [first - 1e6, *starts, last]
    ends = [first, *ends, last + 1e6]
    targets = [rest, *targets, rest]
    dominance = [rest_dom, *dominance, rest_dom]
    decay = [1.0, *decay, 1.0]
    return np.array(starts), np.array(ends), np.array(targets), np.array(dominance), np.array(decay)


def viseme_track(timing: PhonemeTiming | Sequence[tuple[float, float, str]], fps: float = 25.0,
                 n_frames: int | None = None,
                 config: CoarticulationConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth parameters for a phoneme timing.

    Frame ``n`` is at time ``n / fps`` seconds (its presentation time).

    Args:
        timing: a :class:`PhonemeTiming` (e.g. from :func:`core.synthetic.speech.synthesize`) or
            ``[(start_s, end_s, phoneme), ...]``.
        fps: video frame rate.
        n_frames: number of frames (default: enough to cover the timing).
        config: coarticulation settings.

    Returns:
        ``(expression, jaw)``: (N, len(PROCEDURAL_EXPRESSIONS)) float32 weights in [0, 1] and (N,) float32
        jaw opening in radians in [0, JAW_MAX_RAD].
    """
    cfg = config or CoarticulationConfig()
    timing = PhonemeTiming.coerce(timing)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if n_frames is None:
        n_frames = int(np.ceil(timing.duration * fps - 1e-9))
    starts, ends, targets, dominance, decay = _gestures(timing)
    weighted_targets = dominance * targets  # (G, E+1)
    taps = max(int(cfg.window_taps) | 1, 1)
    offsets = np.linspace(-2.0, 2.0, taps) * cfg.smoothing_s if cfg.smoothing_s > 0 else np.zeros(1)
    tap_weights = np.exp(-0.5 * (offsets / max(cfg.smoothing_s, 1e-9)) ** 2)
    tap_weights /= tap_weights.sum()
    # Gestures further than this contribute < 1e-7 of an in-phoneme gesture's dominance: skip them.
    reach = 16.0 / (min(cfg.anticipation_rate, cfg.carryover_rate) * decay.min()) + 2.5 * cfg.smoothing_s

    out = np.zeros((n_frames, N_EXPRESSIONS + 1))
    for c0 in range(0, n_frames, cfg.chunk_frames):
        c1 = min(c0 + cfg.chunk_frames, n_frames)
        frame_times = np.arange(c0, c1) / fps
        near = (ends > frame_times[0] - reach) & (starts < frame_times[-1] + reach)
        t = (frame_times[:, None] + offsets[None, :]).reshape(-1)            # (M,) M = frames * taps
        before = np.maximum(starts[near][None, :] - t[:, None], 0.0)         # (M, G)
        after = np.maximum(t[:, None] - ends[near][None, :], 0.0)
        w = np.exp(-(cfg.anticipation_rate * before + cfg.carryover_rate * after) * decay[near][None, :])
        values = (w @ weighted_targets[near]) / (w @ dominance[near])        # (M, E+1)
        out[c0:c1] = np.tensordot(tap_weights, values.reshape(c1 - c0, taps, -1), axes=(0, 1))
    expression = np.clip(out[:, :N_EXPRESSIONS], 0.0, 1.0).astype(np.float32)
    jaw = np.clip(out[:, N_EXPRESSIONS], 0.0, JAW_MAX_RAD).astype(np.float32)
    return expression, jaw
