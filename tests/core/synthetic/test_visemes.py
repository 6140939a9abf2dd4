"""Visemes: phoneme -> mouth targets, and the coarticulated per-frame track."""

from __future__ import annotations

import numpy as np
import pytest

from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.synthetic.phonemes import PHONEMES, PhonemeTiming, random_sentence
from core.synthetic.speech import synthesize
from core.synthetic.visemes import (
    JAW_MAX_RAD,
    PHONEME_VISEMES,
    VISEMES,
    CoarticulationConfig,
    viseme_of,
    viseme_targets,
    viseme_track,
)

IDX = {name: i for i, name in enumerate(PROCEDURAL_EXPRESSIONS)}
FPS = 25.0


def _track(items: list[tuple[str, float]], fps: float = FPS, **kwargs: object):  # type: ignore[no-untyped-def]
    timing = PhonemeTiming.from_durations(items)
    expr, jaw = viseme_track(timing, fps, **kwargs)  # type: ignore[arg-type]
    return timing, expr, jaw


def _frames_in(timing: PhonemeTiming, index: int, fps: float = FPS, margin: float = 0.0) -> np.ndarray:
    t = np.arange(int(np.ceil(timing.duration * fps))) / fps
    return np.flatnonzero((t >= timing.starts[index] + margin) & (t < timing.ends[index] - margin))


def test_every_phoneme_has_targets_in_range() -> None:
    assert set(PHONEME_VISEMES) == set(PHONEMES)
    for symbol in PHONEMES:
        parts = viseme_targets(symbol)
        assert len(parts) == (2 if PHONEMES[symbol].cls == "diphthong" else 1)
        for weights, jaw, _ in parts:
            assert weights.shape == (len(PROCEDURAL_EXPRESSIONS),)
            assert weights.min() >= 0 and weights.max() <= 1
            assert 0 <= jaw <= JAW_MAX_RAD
    assert viseme_of("ay") == ("aa", "I") and viseme_of("m") == ("PP",)
    assert not VISEMES["sil"].weights and VISEMES["sil"].jaw == 0


def test_target_table_matches_articulation() -> None:
    (p, p_jaw, _), = viseme_targets("p")
    (aa, aa_jaw, _), = viseme_targets("aa")
    (f, _, _), = viseme_targets("f")
    (uw, _, _), = viseme_targets("uw")
    (iy, iy_jaw, _), = viseme_targets("iy")
    assert p[IDX["lips_press"]] >= 0.8 and p_jaw < 0.02
    assert aa_jaw >= 0.28 and aa[IDX["mouth_open"]] >= 0.7
    assert f[IDX["lower_lip_roll"]] >= 0.5 and f[IDX["upper_lip_raise"]] > 0.3
    assert uw[IDX["lips_pucker"]] >= 0.7 and uw[IDX["mouth_round"]] >= 0.5
    assert iy[IDX["mouth_wide"]] >= 0.6 and iy_jaw < aa_jaw / 3


def test_jaw_opens_for_aa_and_closes_for_m() -> None:
    timing, expr, jaw = _track([("sil", 0.3), ("aa", 0.2), ("m", 0.1), ("aa", 0.2), ("sil", 0.3)])
    assert expr.shape == (len(jaw), len(PROCEDURAL_EXPRESSIONS)) and expr.dtype == jaw.dtype == np.float32
    aa_frames = np.concatenate([_frames_in(timing, 1), _frames_in(timing, 3)])
    m_frames = _frames_in(timing, 2)
    assert jaw[aa_frames].max() > 0.25
    assert jaw[aa_frames].mean() > 2.5 * jaw[m_frames].mean()
    assert expr[m_frames, IDX["lips_press"]].max() > 0.5 > expr[aa_frames, IDX["lips_press"]].min()


def test_bilabial_closure_is_reached_even_when_short() -> None:
    timing, expr, _ = _track([("sil", 0.2), ("ae", 0.15), ("p", 0.08), ("ae", 0.15), ("sil", 0.2)])
    p_frames = _frames_in(timing, 2)
    assert expr[p_frames, IDX["lips_press"]].max() > 0.65
    # ... at 100 fps too, where the peak sits inside the closure.
    timing, expr, _ = _track([("sil", 0.2), ("ae", 0.15), ("p", 0.08), ("ae", 0.15), ("sil", 0.2)], fps=100)
    peak = int(np.argmax(expr[:, IDX["lips_press"]])) / 100
    assert timing.starts[2] <= peak <= timing.ends[2]


def test_labiodental_rounded_and_spread_shapes() -> None:
    items = [("sil", 0.2), ("f", 0.12), ("uw", 0.2), ("sil", 0.1), ("iy", 0.2), ("sil", 0.2)]
    timing, expr, _ = _track(items, fps=100)
    f, uw, iy = (_frames_in(timing, i, 100, 0.02) for i in (1, 2, 4))
    assert expr[f, IDX["lower_lip_roll"]].max() > 0.5
    assert expr[uw, IDX["lips_pucker"]].mean() > 0.6 and expr[uw, IDX["mouth_wide"]].max() < 0.1
    assert expr[iy, IDX["mouth_wide"]].mean() > 0.55 and expr[iy, IDX["lips_pucker"]].max() < 0.1


def test_silence_is_rest() -> None:
    timing, expr, jaw = _track([("sil", 0.5), ("aa", 0.2), ("sil", 0.8)])
    rest = np.concatenate([_frames_in(timing, 0, margin=0.25), _frames_in(timing, 2, margin=0.3)])
    assert np.abs(expr[rest]).max() < 0.01 and jaw[rest].max() < 0.005
    # Frames past the end of the timing go back to rest too.
    _, jaw_long = viseme_track(PhonemeTiming.from_durations([("aa", 0.3)]), FPS, n_frames=40)
    assert jaw_long[-1] < 0.001 and jaw_long[3] > 0.2


def test_anticipatory_coarticulation() -> None:
    # /t/ barely controls the lips: it is rounded before /uw/ and spread before /iy/.
    timing_u, expr_u, _ = _track([("sil", 0.2), ("t", 0.1), ("uw", 0.25), ("sil", 0.2)], fps=100)
    timing_i, expr_i, _ = _track([("sil", 0.2), ("t", 0.1), ("iy", 0.25), ("sil", 0.2)], fps=100)
    t_u, t_i = _frames_in(timing_u, 1, 100), _frames_in(timing_i, 1, 100)
    assert expr_u[t_u, IDX["lips_pucker"]].mean() > 0.3 > expr_i[t_i, IDX["lips_pucker"]].mean() + 0.25
    assert expr_i[t_i, IDX["mouth_wide"]].mean() > expr_u[t_u, IDX["mouth_wide"]].mean() + 0.2
    # And the rounding starts before /uw/ begins (anticipation), not only after.
    before = int(timing_u.starts[2] * 100) - 3
    assert expr_u[before, IDX["lips_pucker"]] > 0.3


def test_track_is_smooth() -> None:
    rng = np.random.default_rng(4)
    _, timing = synthesize(random_sentence(rng, 15), rng=rng)
    expr, jaw = viseme_track(timing, FPS)
    step = np.abs(np.diff(expr, axis=0)).max()
    # Without coarticulation (each frame takes its phoneme's target) the mouth jumps between shapes.
    labels = [timing.phonemes[i] for i in np.searchsorted(timing.starts, np.arange(len(jaw)) / FPS,
                                                          side="right") - 1]
    naive = np.stack([viseme_targets(p)[0][0] for p in labels])
    naive_step = np.abs(np.diff(naive, axis=0)).max()
    assert naive_step >= 0.8
    assert step < 0.45 and np.abs(np.diff(jaw)).max() < 0.12
    assert expr.min() >= 0 and expr.max() <= 1 and jaw.min() >= 0 and jaw.max() <= JAW_MAX_RAD


def test_chunking_and_input_forms_do_not_change_the_result() -> None:
    rng = np.random.default_rng(1)
    timing = PhonemeTiming.from_durations(random_sentence(rng, 8))
    whole = viseme_track(timing, 30.0)
    chunked = viseme_track(list(timing), 30.0, config=CoarticulationConfig(chunk_frames=7))
    np.testing.assert_allclose(whole[0], chunked[0], atol=1e-6)
    np.testing.assert_allclose(whole[1], chunked[1], atol=1e-6)
    assert len(whole[1]) == int(np.ceil(timing.duration * 30.0 - 1e-9))
    with pytest.raises(ValueError, match="fps"):
        viseme_track(timing, 0.0)
