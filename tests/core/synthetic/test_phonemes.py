"""Phoneme inventory, phoneme timings and the random sentence generator."""

from __future__ import annotations

import numpy as np
import pytest

from core.synthetic.phonemes import (
    CONSONANTS,
    PHONEME_SYMBOLS,
    PHONEMES,
    VOWELS,
    PhonemeTiming,
    SentenceConfig,
    phoneme,
    phoneme_id,
    random_sentence,
)


def test_inventory_is_about_forty_phonemes_of_every_class() -> None:
    assert 38 <= len(PHONEMES) <= 44
    classes = {p.cls for p in PHONEMES.values()}
    assert {"vowel", "diphthong", "fricative", "plosive", "nasal", "approximant", "silence"} <= classes
    assert len(VOWELS) == 15 and len(CONSONANTS) == len(PHONEMES) - 16


def test_acoustic_fields_are_plausible() -> None:
    for p in PHONEMES.values():
        f1, f2, f3 = p.formants
        assert 200 <= f1 < f2 < f3 <= 3500, p.symbol
        assert p.duration > 0
        if p.cls == "diphthong":
            assert p.formants_end is not None and p.formants_end != p.formants
        if p.cls in ("fricative", "affricate", "plosive") and p.symbol != "hh":
            lo, hi = p.noise_band  # type: ignore[misc]
            assert 0 < lo < hi <= 8000 and p.noise_level > 0, p.symbol
        if p.cls == "nasal":
            assert p.antiformant is not None and p.voiced
    # Sibilants are louder than the weak fricatives; /s/ sits higher than /sh/.
    assert PHONEMES["s"].noise_level > 3 * PHONEMES["f"].noise_level
    assert PHONEMES["s"].noise_band[0] > PHONEMES["sh"].noise_band[0]  # type: ignore[index]
    assert PHONEMES["aa"].formants[0] > PHONEMES["iy"].formants[0]


def test_lookup() -> None:
    assert phoneme("AA1").symbol == "aa"
    assert PHONEME_SYMBOLS[phoneme_id("sh")] == "sh"
    with pytest.raises(ValueError, match="unknown phoneme 'qq'"):
        phoneme("qq")


def test_random_sentence_is_deterministic_and_structured() -> None:
    a = random_sentence(np.random.default_rng(7), 12)
    b = random_sentence(np.random.default_rng(7), 12)
    c = random_sentence(np.random.default_rng(8), 12)
    assert a == b and a != c
    symbols = [s for s, _ in a]
    assert symbols[0] == "sil" and symbols[-1] == "sil"
    assert all(s in PHONEMES and d > 0 for s, d in a)
    # At least one pause inside (12 words span several phrases) and every stretch of speech has vowels.
    interior = symbols[1:-1]
    assert "sil" in interior
    runs = " ".join(symbols).split("sil")
    for run in runs:
        if run.strip():
            assert any(s in VOWELS for s in run.split())
    # No cluster longer than a two-consonant coda + two-consonant onset.
    longest = run_length = 0
    for s in symbols:
        run_length = run_length + 1 if s in CONSONANTS else 0
        longest = max(longest, run_length)
    assert longest <= 4


def test_random_sentence_config_and_errors() -> None:
    cfg = SentenceConfig(syllables_per_word=(1, 1), word_pause_prob=1.0, phrase_words=(100, 100))
    sentence = random_sentence(np.random.default_rng(0), 5, cfg)
    assert [s for s, _ in sentence].count("sil") == 2 + 4  # edges + between each word
    with pytest.raises(ValueError, match="n_words"):
        random_sentence(np.random.default_rng(0), 0)


def test_phoneme_timing() -> None:
    timing = PhonemeTiming.from_durations([("sil", 0.1), ("m", 0.06), ("aa", 0.2)], start=0.0)
    assert timing.duration == pytest.approx(0.36)
    np.testing.assert_allclose(timing.starts[1:], timing.ends[:-1])
    labels = timing.frame_labels(fps=20)  # frames at 0, 0.05, ... 0.35 s
    assert labels.shape == (8,)
    assert [PHONEME_SYMBOLS[i] for i in labels] == ["sil", "sil", "m", "m", "aa", "aa", "aa", "aa"]
    assert timing.frame_labels(fps=20, n_frames=9)[-1] == PHONEME_SYMBOLS.index("sil")
    again = PhonemeTiming.from_json(timing.to_json())
    assert again.phonemes == timing.phonemes and np.allclose(again.ends, timing.ends)
    assert list(PhonemeTiming.coerce(list(timing))) == list(timing)
    with pytest.raises(ValueError, match="start < end"):
        PhonemeTiming(["aa"], np.array([0.2]), np.array([0.1]))
