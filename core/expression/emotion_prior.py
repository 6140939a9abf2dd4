"""Emotions the actor was never filmed with: a generic FACS prior instead of an untrained input.

The a2e network learns an actor's own way of being happy or sad from labelled footage (MEAD-style
clips). A studio often films only a neutral take; the network's emotion inputs then never moved during
training, and feeding them a keyframed "happy 0.8" gives an arbitrary, untrained offset. For such
emotions the dub instead adds the face model's generic expression of the emotion (the FACS prototypes
of :mod:`core.synthetic.emotion_faces`: happy = smile + cheek raise + ..., defined on the procedural
head's named blendshapes) scaled by the keyframed intensity, and gives the network a zero for it.

Coverage is read from the actor's clip labels in the workspace manifest (``emotion``: {} = neutral).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.expression.emotions import EMOTIONS, N_EMOTIONS, emotion_vector


def emotion_coverage(labels: Iterable[Mapping[str, float] | None]) -> np.ndarray:
    """(7,) the highest intensity of each emotion among clip labels (0: never filmed)."""
    cover = np.zeros(N_EMOTIONS, np.float32)
    for label in labels:
        cover = np.maximum(cover, emotion_vector(dict(label or {})))
    return cover


def actor_emotion_coverage(manifest: Mapping[str, object], actor: str) -> np.ndarray:
    """Coverage of ``actor``'s clips in a workspace manifest (all zeros for an unknown actor)."""
    actors = manifest.get("actors", {})
    clips = actors.get(actor, {}).get("clips", {}) if isinstance(actors, Mapping) else {}
    return emotion_coverage(rec.get("emotion") for rec in clips.values())


@dataclass(frozen=True)
class EmotionPrior:
    """Generic per-emotion offsets in one face model's parameter order.

    Attributes:
        expression: (7, E) expression offset of each emotion at intensity 1.
        jaw: (7,) jaw opening (radians) of each emotion at intensity 1.
    """

    expression: np.ndarray
    jaw: np.ndarray

    @classmethod
    def for_expressions(cls, expr_names: Sequence[str]) -> EmotionPrior | None:
        """The prior mapped onto a model's expression names by name; ``None`` when the model has none of
        the FACS blendshapes the prior is written in (FLAME's PCA expressions, for instance)."""
        from core.morphable.data import PROCEDURAL_EXPRESSIONS
        from core.synthetic.emotion_faces import EMOTION_JAW, emotion_face_matrix

        table = emotion_face_matrix()
        column = {name: j for j, name in enumerate(PROCEDURAL_EXPRESSIONS)}
        matched = [(i, column[name]) for i, name in enumerate(expr_names) if name in column]
        if not matched:
            return None
        expression = np.zeros((N_EMOTIONS, len(expr_names)), np.float32)
        rows, cols = zip(*matched, strict=True)
        expression[:, list(rows)] = table[:, list(cols)]
        jaw = np.array([EMOTION_JAW.get(name, 0.0) for name in EMOTIONS], np.float32)
        return cls(expression, jaw)

    @property
    def touched(self) -> np.ndarray:
        """(E,) bool: expression coefficients any emotion moves."""
        return np.abs(self.expression).sum(0) > 0


def network_gate(coverage: np.ndarray, prior: EmotionPrior | None) -> np.ndarray:
    """(7,) float32 factor on each emotion the network sees: 0 for emotions the prior renders instead
    (never filmed, and the model has a prior), 1 otherwise."""
    if prior is None:
        return np.ones(N_EMOTIONS, np.float32)
    return (coverage > 0).astype(np.float32)


# Where a dub takes its emotions from (DubConfig.emotion_source): "auto", each from the actor's labelled footage
# where filmed, else this prior; "prior", every one from this prior.
EMOTION_SOURCES = ("auto", "prior")


def route_emotions(emotion: np.ndarray, coverage: np.ndarray, prior: EmotionPrior | None
                   ) -> tuple[np.ndarray, dict[str, str]]:
    """What the prior renders of per-frame emotions (the network gets ``emotion * network_gate``).

    Args:
        emotion: (N, 7) keyframed intensities.
        coverage: (7,) from :func:`emotion_coverage`.
        prior: the model's prior, or ``None``.

    Returns:
        ``to_prior`` (N, 7) and, for every emotion the curves use, where it went (``"footage"``,
        ``"prior"`` or ``"ignored"``: no footage and no prior for this face model).
    """
    gate = network_gate(coverage, prior)
    to_prior = (emotion * (1.0 - gate)[None]).astype(np.float32)
    covered = coverage > 0
    used = emotion.max(0) > 0
    source = {EMOTIONS[i]: "footage" if covered[i] else ("prior" if prior is not None else "ignored")
              for i in range(N_EMOTIONS) if used[i]}
    return to_prior, source


def apply_prior(expression: np.ndarray, jaw_pose: np.ndarray, to_prior: np.ndarray, prior: EmotionPrior
                ) -> tuple[np.ndarray, np.ndarray]:
    """Add the prior's offsets: (N, E), (N, 3), (N, 7) -> new (expression, jaw_pose).

    The prior's blendshapes are weights in [0, 1]; the coefficients it moves are kept in that range.
    """
    expression = expression + to_prior @ prior.expression
    touched = prior.touched & (to_prior.max() > 0)
    expression[:, touched] = np.clip(expression[:, touched], 0.0, 1.0)
    jaw_pose = jaw_pose.copy()
    jaw_pose[:, 0] += to_prior @ prior.jaw
    return expression.astype(np.float32), jaw_pose.astype(np.float32)
