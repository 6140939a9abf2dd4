"""A synthetic actor's parameter corpus in a workspace: speech audio + exact per-frame parameters.

For each of ``n_sentences`` random sentences and each emotion x intensity, the synthetic actor speaks the
sentence (:func:`core.synthetic.speech.synthesize`, emotional prosody), and its ground-truth face follows
from the phoneme timing: visemes with coarticulation (:func:`~core.synthetic.visemes.viseme_track`) + the
emotion's expression offsets + blinks, jaw opening + the emotion's jaw offset as ``jaw_pose`` (rotation
about x), idle head motion with speech nods as ``rotation``/``translation``. Every rendition of a
sentence shares its phonemes; timing, pitch and voice quality change with the emotion. Each clip goes into
the workspace in the shared layout::

    actors/<actor>/clips/<clip>/audio.wav                 16 kHz mono PCM16
    actors/<actor>/clips/<clip>/ground_truth/params.npz   FaceParams (N rows) + expr_names
    actors/<actor>/clips/<clip>/ground_truth/phonemes.json  [[start_s, end_s, phoneme], ...]
    actors/<actor>/clips/<clip>/ground_truth/emotion.npy  (N, 7) float32 per-frame label

with a manifest record (``emotion`` label, ``synthetic: true``, ``frames``, ``fps``, ``video: null``,
``sentence``: the sentence id used to hold whole sentences out of training). No video is rendered here:
``render`` is a hook ``render(clip_dir, params, record) -> dict`` that a renderer plugs in to write
``video.mp4`` (+ ground-truth landmarks) and return the record fields to update (``video``, ``width``...).

Clip names: ``s003_neutral``, ``s003_happy_2`` (MEAD level 1/2/3 for intensity 0.33/0.66/1.0; other
intensities as ``happy_050``). Deterministic for a seed: clip ``(s, emotion, intensity)`` draws from its
own ``SeedSequence([seed, s, emotion, level])``, so adding emotions or sentences leaves the others as they
were.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.expression.emotions import EMOTIONS, MEAD_INTENSITIES, N_EMOTIONS, NEUTRAL, emotion_index
from core.morphable.data import PROCEDURAL_EXPRESSIONS

RenderHook = Callable[[Path, dict[str, np.ndarray], dict[str, Any]], dict[str, Any] | None]
DEFAULT_EMOTIONS: tuple[str, ...] = (NEUTRAL, "happy", "sad", "angry", "surprised")
DEFAULT_INTENSITIES: tuple[float, ...] = (0.33, 0.66, 1.0)


@dataclass(frozen=True)
class CorpusClip:
    """What :func:`build_param_corpus` wrote for one clip."""

    name: str
    sentence: str
    emotion: str
    intensity: float
    frames: int
    duration_s: float


def _level_tag(intensity: float) -> str:
    for level, value in MEAD_INTENSITIES.items():
        if abs(value - intensity) < 1e-6:
            return str(level)
    return f"{round(intensity * 100):03d}"


def clip_name(sentence_index: int, emotion: str, intensity: float) -> str:
    """``s003_neutral`` or ``s003_happy_2`` (MEAD level) / ``s003_happy_050``."""
    if emotion == NEUTRAL:
        return f"s{sentence_index:03d}_{NEUTRAL}"
    return f"s{sentence_index:03d}_{emotion}_{_level_tag(intensity)}"


def _renditions(emotions: Sequence[str], intensities: Sequence[float]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for name in emotions:
        key = name.strip().lower()
        if key == NEUTRAL:
            out.append((NEUTRAL, 0.0))
            continue
        key = EMOTIONS[emotion_index(key)]  # raises with the list of valid names
        for value in intensities:
            if not 0.0 < float(value) <= 1.0:
                raise ValueError(f"corpus intensities must lie in (0, 1], got {value!r}")
            out.append((key, float(value)))
    return out


def synthesize_clip(sentence: list[tuple[str, float]], emotion_vec: np.ndarray, fps: float,
                    rng: np.random.Generator, sr: int = 16000, voice: Any = None) -> dict[str, Any]:
    """Speak ``sentence`` with ``emotion_vec`` (in ``voice``, a :class:`core.synthetic.speech.VoiceConfig`;
    default the synthetic actor's) and derive the exact per-frame parameters.

    Returns:
        ``wave`` (S,) float32, ``timing`` (PhonemeTiming), ``n_frames``, and FaceParams arrays
        ``expression`` (N, E) (order of ``PROCEDURAL_EXPRESSIONS``), ``jaw_pose`` (N, 3), ``neck_pose``,
        ``eye_pose``, ``rotation``, ``translation``.
    """
    from core.synthetic.emotion_faces import (
        blink_track,
        compose_expression,
        emotion_expression,
        emotion_jaw_offset,
        head_motion,
    )
    from core.synthetic.speech import frame_energy, synthesize
    from core.synthetic.visemes import viseme_track

    wave, timing = synthesize(sentence, emotion_vec, sr=sr, rng=rng, voice=voice)
    n = int(np.ceil(timing.duration * fps - 1e-9))
    mouth, jaw = viseme_track(timing, fps, n)
    expression = compose_expression(mouth, emotion_expression(emotion_vec), blink_track(n, fps, rng))
    jaw = jaw + emotion_jaw_offset(emotion_vec)
    rotation, translation = head_motion(n, fps, rng, frame_energy(wave, sr, fps, n))
    jaw_pose = np.zeros((n, 3), np.float32)
    jaw_pose[:, 0] = jaw  # opening = rotation about the jaw joint's x axis
    return {"wave": wave, "timing": timing, "n_frames": n, "expression": expression.astype(np.float32),
            "jaw_pose": jaw_pose, "neck_pose": np.zeros((n, 3), np.float32),
            "eye_pose": np.zeros((n, 6), np.float32), "rotation": rotation, "translation": translation}


def build_param_corpus(workspace: Any, actor: str, n_sentences: int,
                       emotions: Sequence[str] = DEFAULT_EMOTIONS,
                       intensities: Sequence[float] = DEFAULT_INTENSITIES, seed: int = 0, fps: float = 25.0,
                       render: RenderHook | None = None, words: tuple[int, int] = (3, 7), n_shape: int = 0,
                       progress: Callable[[int, int], None] | None = None,
                       overwrite: bool = False, identity: np.ndarray | None = None) -> list[CorpusClip]:
    """Write a synthetic actor's clips (audio + ground-truth parameters) into a workspace.

    Args:
        workspace: a :class:`core.workspace.Workspace` (or its folder).
        actor: actor name (created when missing).
        n_sentences: distinct random sentences.
        emotions: emotion names; ``"neutral"`` gives one clip per sentence, every other emotion one per
            intensity.
        intensities: intensities in (0, 1] of the non-neutral emotions (MEAD: 0.33, 0.66, 1.0).
        seed: corpus seed (same seed, same clips, bit for bit).
        fps: video frame rate of the parameters.
        render: optional hook ``render(clip_dir, params, record) -> record updates`` that renders the
            video; ``None`` writes parameters and audio only (``video: null``).
        words: (min, max) words per sentence.
        n_shape: identity coefficients stored per frame (zeros: the model's mean identity).
        progress: ``progress(done, total)`` after each clip.
        overwrite: rewrite clips that already exist (default: keep them, so an interrupted build resumes).
        identity: optional (S,) identity coefficients of the actor, stored per frame as ``shape`` (replaces
            ``n_shape``'s zeros; the renderer of :mod:`core.synthetic.actor` passes its actor's identity).

    Returns:
        One :class:`CorpusClip` per clip, in build order.
    """
    import soundfile as sf

    from core.expression.emotions import emotion_vector
    from core.synthetic.phonemes import random_sentence
    from core.workspace import Workspace, atomic_path, atomic_save_npz, atomic_write_json

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if n_sentences < 1:
        raise ValueError(f"n_sentences must be >= 1, got {n_sentences}")
    if not (1 <= words[0] <= words[1]):
        raise ValueError(f"words must be (min, max) with 1 <= min <= max, got {words}")
    renditions = _renditions(emotions, intensities)
    sr = 16000
    existing = ws.read_manifest().get("actors", {}).get(actor, {}).get("clips", {})
    total = n_sentences * len(renditions)
    out: list[CorpusClip] = []
    done = 0
    for s in range(n_sentences):
        sentence_rng = np.random.default_rng(np.random.SeedSequence([seed, s, 999]))
        n_words = int(sentence_rng.integers(words[0], words[1] + 1))
        sentence = random_sentence(sentence_rng, n_words)
        for emotion, intensity in renditions:
            name = clip_name(s, emotion, intensity)
            clip_dir = ws.clip_dir(actor, name)
            label = {} if emotion == NEUTRAL else {emotion: intensity}
            if name in existing and not overwrite and (clip_dir / "ground_truth" / "params.npz").is_file():
                rec = existing[name]
                out.append(CorpusClip(name, f"s{s:03d}", emotion, intensity, int(rec.get("frames", 0)),
                                      float(rec.get("duration_s", 0.0))))
                done += 1
                if progress is not None:
                    progress(done, total)
                continue
            level = int(round(intensity * 100))
            rng = np.random.default_rng(np.random.SeedSequence(
                [seed, s, (EMOTIONS.index(emotion) + 1) if emotion != NEUTRAL else 0, level]))
            vec = emotion_vector(label)
            clip = synthesize_clip(sentence, vec, fps, rng, sr)
            n = clip["n_frames"]
            params = {k: clip[k] for k in ("expression", "jaw_pose", "neck_pose", "eye_pose", "rotation",
                                           "translation")}
            params["shape"] = (np.zeros((n, n_shape), np.float32) if identity is None else
                               np.repeat(np.asarray(identity, np.float32).reshape(1, -1), n, 0))
            gt = clip_dir / "ground_truth"
            gt.mkdir(parents=True, exist_ok=True)
            with atomic_path(clip_dir / "audio.wav") as tmp:
                sf.write(str(tmp), clip["wave"], sr, subtype="PCM_16", format="WAV")
            atomic_save_npz(gt / "params.npz", **params, expr_names=np.array(PROCEDURAL_EXPRESSIONS))
            atomic_write_json(gt / "phonemes.json", clip["timing"].to_json())
            with atomic_path(gt / "emotion.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.repeat(vec[None], n, 0).astype(np.float32))
            duration = float(len(clip["wave"]) / sr)
            record: dict[str, Any] = {
                "video": None, "audio": ws.rel(clip_dir / "audio.wav"), "fps": float(fps), "frames": int(n),
                "width": None, "height": None, "duration_s": duration, "emotion": label,
                "source": f"synthetic:seed={seed}", "synthetic": True, "sentence": f"s{s:03d}",
                "stages": {"ground_truth": True},
            }
            if render is not None:
                updates = render(clip_dir, params, dict(record))
                if updates:
                    record.update(updates)
            ws.set_clip(actor, name, record)
            out.append(CorpusClip(name, f"s{s:03d}", emotion, intensity, int(n), duration))
            done += 1
            if progress is not None:
                progress(done, total)
    return out


def read_phonemes(clip_dir: str | Path) -> list[list[Any]]:
    """The ground-truth phoneme timing of a synthetic clip: ``[[start_s, end_s, phoneme], ...]``."""
    return json.loads((Path(clip_dir) / "ground_truth" / "phonemes.json").read_text(encoding="utf-8"))


def corpus_emotion_matrix() -> np.ndarray:
    """(7, E) expression offsets of each emotion at intensity 1 (the ground-truth emotion directions)."""
    from core.synthetic.emotion_faces import emotion_expression

    return emotion_expression(np.eye(N_EMOTIONS, dtype=np.float32))
