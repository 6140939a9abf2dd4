"""The synthetic actor's phoneme inventory and a random sentence generator.

Forty ARPAbet phonemes (the 39 of CMUdict plus ``sil``). Each carries what the formant synthesiser
(:mod:`core.synthetic.speech`) and the viseme model (:mod:`core.synthetic.visemes`) need: its class,
voicing, vocal-tract formant targets F1-F3 with bandwidths (for consonants: the loci that their
transitions head for), a diphthong's end target, a fricative's or burst's noise band, a nasal's
anti-resonance, and a typical duration.

Formant targets are averages of adult male speakers (Peterson & Barney 1952; Hillenbrand et al. 1995);
durations are typical read-speech values. They only need to be plausible and clearly different from
one phoneme to the next: the synthetic actor is ground truth for learning an audio -> mouth mapping,
not a text-to-speech system.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

PhonemeClass = Literal["vowel", "diphthong", "fricative", "plosive", "affricate", "nasal", "approximant",
                       "silence"]
Place = Literal["bilabial", "labiodental", "dental", "alveolar", "postalveolar", "palatal", "velar",
                "glottal", "vowel", "none"]


@dataclass(frozen=True)
class Phoneme:
    """Acoustic description of one phoneme.

    Attributes:
        symbol: lower-case ARPAbet symbol (``"aa"``, ``"sh"``, ``"sil"``).
        cls: phoneme class.
        voiced: vocal folds vibrate.
        formants: (F1, F2, F3) Hz target (consonants: locus of the transitions into/out of them).
        bandwidths: (B1, B2, B3) Hz.
        formants_end: diphthongs only: (F1, F2, F3) at the glide's end.
        noise_band: (low, high) Hz of frication noise (fricatives, affricates) or of the release burst
            (plosives); ``None`` when the phoneme has no noise source of its own.
        noise_level: linear amplitude of that noise relative to a vowel (fricatives: sibilants loud,
            f/th weak).
        antiformant: Hz of the nasal anti-resonance (nasals only).
        duration: typical duration in seconds (before prosody).
        place: place of articulation (drives bursts and visemes).
        aspirated: voiceless plosive with an aspiration phase after the burst.
    """

    symbol: str
    cls: PhonemeClass
    voiced: bool
    formants: tuple[float, float, float]
    bandwidths: tuple[float, float, float] = (80.0, 100.0, 150.0)
    formants_end: tuple[float, float, float] | None = None
    noise_band: tuple[float, float] | None = None
    noise_level: float = 0.0
    antiformant: float | None = None
    duration: float = 0.08
    place: Place = "none"
    aspirated: bool = False

    @property
    def is_vowel(self) -> bool:
        return self.cls in ("vowel", "diphthong")


def _v(symbol: str, f: tuple[float, float, float], duration: float,
       end: tuple[float, float, float] | None = None,
       bw: tuple[float, float, float] = (70.0, 90.0, 140.0)) -> Phoneme:
    return Phoneme(symbol, "diphthong" if end else "vowel", True, f, bw, formants_end=end, duration=duration,
                   place="vowel")


_INVENTORY: tuple[Phoneme, ...] = (
    # monophthongs (Hillenbrand 1995 male means, rounded)
    _v("iy", (270, 2290, 3010), 0.11),
    _v("ih", (390, 1990, 2550), 0.08),
    _v("eh", (530, 1840, 2480), 0.09),
    _v("ae", (660, 1720, 2410), 0.13),
    _v("ah", (620, 1220, 2550), 0.08),
    _v("aa", (750, 1090, 2440), 0.13),
    _v("ao", (590, 880, 2540), 0.13),
    _v("uh", (440, 1020, 2240), 0.08),
    _v("uw", (300, 870, 2240), 0.11),
    _v("er", (490, 1350, 1690), 0.11),
    # diphthongs: start -> end target
    _v("ay", (750, 1200, 2500), 0.16, end=(400, 2000, 2600)),
    _v("aw", (750, 1150, 2450), 0.17, end=(430, 900, 2300)),
    _v("ey", (500, 1900, 2500), 0.14, end=(320, 2200, 2900)),
    _v("ow", (550, 950, 2450), 0.14, end=(330, 800, 2300)),
    _v("oy", (550, 850, 2450), 0.17, end=(380, 1950, 2600)),
    # plosives: closure + burst (band = burst spectrum), loci for the transitions
    Phoneme("p", "plosive", False, (300, 900, 2200), noise_band=(300, 1600), noise_level=0.5, duration=0.085,
            place="bilabial", aspirated=True),
    Phoneme("b", "plosive", True, (250, 900, 2200), noise_band=(300, 1600), noise_level=0.35, duration=0.07,
            place="bilabial"),
    Phoneme("t", "plosive", False, (350, 1800, 2700), noise_band=(3000, 7000), noise_level=0.6, duration=0.08,
            place="alveolar", aspirated=True),
    Phoneme("d", "plosive", True, (300, 1700, 2600), noise_band=(3000, 7000), noise_level=0.4, duration=0.065,
            place="alveolar"),
    Phoneme("k", "plosive", False, (350, 1900, 2300), noise_band=(1500, 3200), noise_level=0.6,
            duration=0.085, place="velar", aspirated=True),
    Phoneme("g", "plosive", True, (300, 1900, 2300), noise_band=(1500, 3200), noise_level=0.4, duration=0.07,
            place="velar"),
    # affricates: closure + burst + postalveolar frication
    Phoneme("ch", "affricate", False, (350, 1900, 2600), noise_band=(2000, 5500), noise_level=0.7,
            duration=0.12, place="postalveolar"),
    Phoneme("jh", "affricate", True, (300, 1900, 2600), noise_band=(2000, 5500), noise_level=0.45,
            duration=0.1, place="postalveolar"),
    # fricatives (noise band = frication spectrum)
    Phoneme("f", "fricative", False, (350, 1000, 2300), noise_band=(1200, 7500), noise_level=0.18,
            duration=0.1, place="labiodental"),
    Phoneme("v", "fricative", True, (300, 1000, 2300), noise_band=(1200, 7500), noise_level=0.1,
            duration=0.07, place="labiodental"),
    Phoneme("th", "fricative", False, (350, 1500, 2600), noise_band=(1500, 7500), noise_level=0.15,
            duration=0.1, place="dental"),
    Phoneme("dh", "fricative", True, (300, 1500, 2600), noise_band=(1500, 7500), noise_level=0.08,
            duration=0.05, place="dental"),
    Phoneme("s", "fricative", False, (350, 1800, 2700), noise_band=(4000, 7800), noise_level=0.75,
            duration=0.11, place="alveolar"),
    Phoneme("z", "fricative", True, (300, 1800, 2700), noise_band=(4000, 7800), noise_level=0.45,
            duration=0.08, place="alveolar"),
    Phoneme("sh", "fricative", False, (350, 1900, 2600), noise_band=(2000, 5500), noise_level=0.8,
            duration=0.11, place="postalveolar"),
    Phoneme("zh", "fricative", True, (300, 1900, 2600), noise_band=(2000, 5500), noise_level=0.45,
            duration=0.08, place="postalveolar"),
    # /h/: aspiration noise through the next vowel's tract (formants filled in by the synthesiser)
    Phoneme("hh", "fricative", False, (500, 1500, 2500), noise_band=None, noise_level=0.0, duration=0.07,
            place="glottal"),
    # nasals: a low murmur formant, weak upper formants, an anti-resonance by place
    Phoneme("m", "nasal", True, (250, 1100, 2200), (60.0, 250.0, 300.0), antiformant=800.0, duration=0.07,
            place="bilabial"),
    Phoneme("n", "nasal", True, (250, 1500, 2500), (60.0, 250.0, 300.0), antiformant=1500.0, duration=0.06,
            place="alveolar"),
    Phoneme("ng", "nasal", True, (250, 1800, 2500), (60.0, 250.0, 300.0), antiformant=3000.0, duration=0.07,
            place="velar"),
    # approximants
    Phoneme("l", "approximant", True, (360, 1000, 2700), (80.0, 120.0, 200.0), duration=0.06,
            place="alveolar"),
    Phoneme("r", "approximant", True, (310, 1060, 1400), (80.0, 110.0, 150.0), duration=0.06,
            place="postalveolar"),
    Phoneme("w", "approximant", True, (290, 650, 2150), (70.0, 100.0, 150.0), duration=0.06,
            place="bilabial"),
    Phoneme("y", "approximant", True, (260, 2100, 3000), (70.0, 100.0, 150.0), duration=0.055,
            place="palatal"),
    # silence / pause
    Phoneme("sil", "silence", False, (500, 1500, 2500), duration=0.2, place="none"),
)

PHONEMES: dict[str, Phoneme] = {p.symbol: p for p in _INVENTORY}
# Stable order of the inventory: integer phoneme ids (frame labels, one-hot features) index this tuple.
PHONEME_SYMBOLS: tuple[str, ...] = tuple(p.symbol for p in _INVENTORY)
SILENCE: str = "sil"

VOWELS: tuple[str, ...] = tuple(p.symbol for p in _INVENTORY if p.is_vowel)
CONSONANTS: tuple[str, ...] = tuple(p.symbol for p in _INVENTORY if not p.is_vowel and p.cls != "silence")


def phoneme(symbol: str) -> Phoneme:
    """Look a phoneme up by ARPAbet symbol (case-insensitive, stress digits ignored: ``"AA1"``)."""
    key = symbol.strip().lower().rstrip("012")
    if key not in PHONEMES:
        raise ValueError(f"unknown phoneme {symbol!r}; known: {' '.join(PHONEME_SYMBOLS)}")
    return PHONEMES[key]


def phoneme_id(symbol: str) -> int:
    """Index of a phoneme in :data:`PHONEME_SYMBOLS`."""
    return PHONEME_SYMBOLS.index(phoneme(symbol).symbol)


@dataclass
class PhonemeTiming:
    """Phonemes laid out in time: what the synthesiser actually spoke (after prosody).

    Attributes:
        phonemes: P symbols.
        starts: (P,) float64 start times in seconds, ascending.
        ends: (P,) float64 end times; ``ends[i] == starts[i + 1]`` for a contiguous utterance.
    """

    phonemes: list[str]
    starts: np.ndarray
    ends: np.ndarray

    def __post_init__(self) -> None:
        self.phonemes = [phoneme(p).symbol for p in self.phonemes]
        self.starts = np.asarray(self.starts, dtype=np.float64).reshape(-1)
        self.ends = np.asarray(self.ends, dtype=np.float64).reshape(-1)
        if not (len(self.phonemes) == len(self.starts) == len(self.ends)):
            raise ValueError("phoneme timing needs as many starts and ends as phonemes")
        if np.any(self.ends <= self.starts) or np.any(np.diff(self.starts) < 0):
            raise ValueError("phoneme timing must have start < end and ascending starts")

    def __len__(self) -> int:
        return len(self.phonemes)

    def __iter__(self) -> Iterator[tuple[float, float, str]]:
        for start, end, symbol in zip(self.starts, self.ends, self.phonemes, strict=True):
            yield float(start), float(end), symbol

    @property
    def duration(self) -> float:
        """End of the last phoneme, seconds."""
        return float(self.ends[-1]) if len(self) else 0.0

    @property
    def ids(self) -> np.ndarray:
        """(P,) int64 indices into :data:`PHONEME_SYMBOLS`."""
        return np.array([PHONEME_SYMBOLS.index(p) for p in self.phonemes], dtype=np.int64)

    @classmethod
    def from_durations(cls, items: Sequence[tuple[str, float]], start: float = 0.0) -> PhonemeTiming:
        """Contiguous timing from ``[(phoneme, duration_s), ...]``."""
        durations = np.array([float(d) for _, d in items], dtype=np.float64)
        edges = start + np.concatenate([[0.0], np.cumsum(durations)])
        return cls([p for p, _ in items], edges[:-1], edges[1:])

    @classmethod
    def coerce(cls, timing: PhonemeTiming | Sequence[tuple[float, float, str]]) -> PhonemeTiming:
        """Accept a :class:`PhonemeTiming` or a sequence of ``(start_s, end_s, phoneme)``."""
        if isinstance(timing, PhonemeTiming):
            return timing
        rows = list(timing)
        return cls([r[2] for r in rows], np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))

    def frame_labels(self, fps: float, n_frames: int | None = None) -> np.ndarray:
        """Phoneme id at each video frame time ``n / fps`` ((N,) int64; silence outside the timing)."""
        if n_frames is None:
            n_frames = int(np.ceil(self.duration * fps - 1e-9))
        times = np.arange(n_frames) / fps
        index = np.searchsorted(self.starts, times, side="right") - 1
        inside = (index >= 0) & (times < self.ends[np.clip(index, 0, None)])
        ids = self.ids
        return np.where(inside, ids[np.clip(index, 0, None)], PHONEME_SYMBOLS.index(SILENCE)).astype(np.int64)

    def to_json(self) -> list[list[float | str]]:
        """``[[start_s, end_s, phoneme], ...]``."""
        return [[s, e, p] for s, e, p in self]

    @classmethod
    def from_json(cls, rows: Sequence[Sequence[float | str]]) -> PhonemeTiming:
        return cls.coerce([(float(r[0]), float(r[1]), str(r[2])) for r in rows])


# --------------------------------------------------------------------------------------------------
# Random sentences
# --------------------------------------------------------------------------------------------------

# Syllable templates and their frequencies in English-like speech (C = consonant, V = vowel nucleus).
_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("CV", 0.34), ("CVC", 0.30), ("V", 0.05), ("VC", 0.08), ("CCV", 0.08), ("CVCC", 0.07), ("CCVC", 0.08),
)
# Single onsets and codas, weighted roughly by frequency; /ng/ never starts and /hh/, /w/, /y/ never end.
_ONSETS: dict[str, float] = {
    "t": 7, "d": 5, "n": 5, "s": 6, "m": 5, "k": 5, "l": 5, "r": 5, "b": 4, "p": 4, "f": 4, "hh": 3,
    "w": 3, "dh": 3, "g": 2, "v": 2, "sh": 2, "y": 2, "ch": 1.5, "jh": 1.5, "th": 1.5, "z": 1, "zh": 0.3,
}
_CODAS: dict[str, float] = {
    "n": 8, "t": 7, "d": 5, "s": 5, "z": 4, "l": 5, "r": 4, "m": 4, "k": 4, "ng": 2, "v": 2, "p": 2,
    "f": 1.5, "th": 1, "b": 1, "g": 1, "sh": 1, "ch": 1, "jh": 1, "dh": 0.5,
}
# Two-consonant onsets (obstruent + liquid/glide, s + stop/nasal) and codas (nasal/liquid/stop + s/t/d).
_ONSET_CLUSTERS: tuple[tuple[str, str], ...] = (
    ("p", "l"), ("p", "r"), ("b", "l"), ("b", "r"), ("t", "r"), ("t", "w"), ("d", "r"), ("k", "l"),
    ("k", "r"), ("k", "w"), ("g", "l"), ("g", "r"), ("f", "l"), ("f", "r"), ("th", "r"), ("s", "t"),
    ("s", "p"), ("s", "k"), ("s", "m"), ("s", "n"), ("s", "l"), ("s", "w"), ("sh", "r"),
)
_CODA_CLUSTERS: tuple[tuple[str, str], ...] = (
    ("n", "t"), ("n", "d"), ("n", "s"), ("n", "z"), ("m", "p"), ("m", "z"), ("ng", "k"), ("ng", "z"),
    ("l", "d"), ("l", "t"), ("l", "s"), ("r", "t"), ("r", "d"), ("r", "s"), ("r", "n"), ("s", "t"),
    ("k", "s"), ("k", "t"), ("p", "s"), ("t", "s"), ("f", "t"), ("v", "z"),
)
_NUCLEI: dict[str, float] = {
    "ah": 9, "ih": 8, "iy": 5, "eh": 5, "ae": 5, "aa": 4, "er": 3, "ey": 3, "ay": 3, "ow": 3, "uw": 3,
    "ao": 2, "uh": 1, "aw": 1.5, "oy": 0.5,
}


@dataclass(frozen=True)
class SentenceConfig:
    """How :func:`random_sentence` builds utterances.

    Attributes:
        syllables_per_word: (min, max) syllables of a word, drawn uniformly.
        phrase_words: (min, max) words per phrase; phrases are separated by a long pause.
        word_pause_prob: chance of a short pause between two words inside a phrase.
        word_pause_s: (min, max) seconds of a short pause.
        phrase_pause_s: (min, max) seconds of a pause between phrases.
        edge_silence_s: (min, max) seconds of silence before and after the sentence.
        duration_jitter: log-normal sigma applied to every phoneme's typical duration.
        final_lengthening: duration factor of the last syllable of a phrase.
    """

    syllables_per_word: tuple[int, int] = (1, 3)
    phrase_words: tuple[int, int] = (3, 6)
    word_pause_prob: float = 0.25
    word_pause_s: tuple[float, float] = (0.04, 0.1)
    phrase_pause_s: tuple[float, float] = (0.18, 0.4)
    edge_silence_s: tuple[float, float] = (0.15, 0.3)
    duration_jitter: float = 0.15
    final_lengthening: float = 1.35


def _choice(rng: np.random.Generator, table: dict[str, float]) -> str:
    names = [n for n, w in table.items() if w > 0]
    weights = np.array([table[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def random_syllable(rng: np.random.Generator) -> list[str]:
    """One syllable as phoneme symbols, e.g. ``['s', 't', 'aa', 'r']``."""
    templates = [t for t, _ in _TEMPLATES]
    weights = np.array([w for _, w in _TEMPLATES])
    template = templates[int(rng.choice(len(templates), p=weights / weights.sum()))]
    nucleus_at = template.index("V")
    onset_len, coda_len = nucleus_at, len(template) - nucleus_at - 1
    onset: list[str] = []
    if onset_len == 1:
        onset = [_choice(rng, _ONSETS)]
    elif onset_len == 2:
        onset = list(_ONSET_CLUSTERS[int(rng.integers(len(_ONSET_CLUSTERS)))])
    coda: list[str] = []
    if coda_len == 1:
        coda = [_choice(rng, _CODAS)]
    elif coda_len == 2:
        coda = list(_CODA_CLUSTERS[int(rng.integers(len(_CODA_CLUSTERS)))])
    return [*onset, _choice(rng, _NUCLEI), *coda]


def random_sentence(rng: np.random.Generator, n_words: int,
                    config: SentenceConfig | None = None) -> list[tuple[str, float]]:
    """A random English-like utterance: ``[(phoneme, duration_s), ...]``, deterministic for a generator.

    Words of 1-3 syllables (CV, CVC, V, VC, CCV, CVCC, CCVC), grouped into phrases; silence ``sil``
    before, after, between phrases and sometimes between words. Durations are each phoneme's typical
    duration with log-normal jitter, lengthened on phrase-final syllables. Prosody (speaking rate) is
    applied later by the synthesiser.
    """
    if n_words < 1:
        raise ValueError(f"n_words must be >= 1, got {n_words}")
    cfg = config or SentenceConfig()

    def jitter() -> float:
        return float(np.exp(rng.normal(0.0, cfg.duration_jitter)))

    def pause(bounds: tuple[float, float]) -> tuple[str, float]:
        return (SILENCE, float(rng.uniform(*bounds)))

    out: list[tuple[str, float]] = [pause(cfg.edge_silence_s)]
    words_left_in_phrase = int(rng.integers(cfg.phrase_words[0], cfg.phrase_words[1] + 1))
    for word_index in range(n_words):
        n_syllables = int(rng.integers(cfg.syllables_per_word[0], cfg.syllables_per_word[1] + 1))
        words_left_in_phrase -= 1
        last_word = word_index == n_words - 1
        phrase_end = last_word or words_left_in_phrase == 0
        for s in range(n_syllables):
            syllable = random_syllable(rng)
            lengthen = cfg.final_lengthening if (phrase_end and s == n_syllables - 1) else 1.0
            out.extend((sym, PHONEMES[sym].duration * jitter() * lengthen) for sym in syllable)
        if last_word:
            break
        if phrase_end:
            out.append(pause(cfg.phrase_pause_s))
            words_left_in_phrase = int(rng.integers(cfg.phrase_words[0], cfg.phrase_words[1] + 1))
        elif rng.random() < cfg.word_pause_prob:
            out.append(pause(cfg.word_pause_s))
    out.append(pause(cfg.edge_silence_s))
    return out
