"""Training data of the audio-to-expression GAN: an actor's clips from the workspace.

Each usable clip has ``audio.wav`` and per-frame parameters: ``tracking/params.npz`` (tracked footage) or
``ground_truth/params.npz`` (synthetic clips), chosen by ``params_source``. Its emotion label is the
manifest's ``emotion`` ({} = neutral), repeated per frame. Audio features are extracted for exactly the
parameter rows, so audio and parameters stay frame-aligned. The validation split holds out whole clip
*groups*: a synthetic clip's ``sentence`` (every emotion/intensity rendition of a held-out sentence is held
out together, so no sentence is seen in training) or, for real footage, the clip itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.audio.features import FeatureExtractor
from core.audio.io import AudioError, load_audio
from core.expression.emotions import emotion_vector
from core.morphable.data import PROCEDURAL_EXPRESSIONS

PARAM_FIELDS: tuple[str, ...] = ("shape", "expression", "jaw_pose", "neck_pose", "eye_pose", "rotation",
                                 "translation")


class A2EDataError(ValueError):
    """The workspace holds no usable training data for the actor; the message says what is missing."""


@dataclass
class ClipData:
    """One clip ready for training/evaluation (all arrays have N rows).

    Attributes:
        name: clip name.
        group: split group (sentence id or clip name).
        features: (N, W, D) float32 audio feature windows.
        targets: (N, P) float32 raw parameters (expression, jaw pose[, neck pose]).
        emotion: (N, 7) float32 label.
        label: the manifest's emotion dict.
        synthetic: a synthetic-actor clip.
        params: every FaceParams array of the clip (for actor defaults and evaluation).
        params_file: which file the parameters came from.
        first_frame: the clip's frame its first row is (a held-out tail, :func:`cut_tails`, starts past 0).
    """

    name: str
    group: str
    features: np.ndarray
    targets: np.ndarray
    emotion: np.ndarray
    label: dict[str, float]
    synthetic: bool
    params: dict[str, np.ndarray] = field(repr=False)
    params_file: str = ""
    first_frame: int = 0

    @property
    def n_frames(self) -> int:
        return int(self.targets.shape[0])


def params_path(clip_dir: Path, source: str) -> tuple[Path | None, str]:
    """The parameter file of a clip for ``source`` (auto/tracking/ground_truth) and which one it is."""
    tracked = clip_dir / "tracking" / "params.npz"
    truth = clip_dir / "ground_truth" / "params.npz"
    if source == "tracking":
        return (tracked if tracked.is_file() else None), "tracking"
    if source == "ground_truth":
        return (truth if truth.is_file() else None), "ground_truth"
    if tracked.is_file():
        return tracked, "tracking"
    if truth.is_file():
        return truth, "ground_truth"
    return None, "none"


def read_params(path: Path) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """FaceParams arrays (N rows) and the expression names when the file records them."""
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("expression", "jaw_pose") if k not in data.files]
        if missing:
            raise A2EDataError(f"{path} lacks {', '.join(missing)} (not a FaceParams file)")
        arrays = {k: np.asarray(data[k], np.float32) for k in PARAM_FIELDS if k in data.files}
        names = [str(n) for n in data["expr_names"]] if "expr_names" in data.files else None
    return arrays, names


def default_expr_names(n_expr: int) -> list[str]:
    if n_expr == len(PROCEDURAL_EXPRESSIONS):
        return list(PROCEDURAL_EXPRESSIONS)
    return [f"expr_{i:02d}" for i in range(n_expr)]


def make_targets(params: dict[str, np.ndarray], include_neck: bool) -> np.ndarray:
    """(N, P) float32: expression, jaw pose[, neck pose]."""
    parts = [params["expression"], params["jaw_pose"]]
    if include_neck:
        parts.append(params.get("neck_pose", np.zeros_like(params["jaw_pose"])))
    return np.concatenate(parts, 1).astype(np.float32)


def load_actor_clips(ws: Any, actor: str, extractor: FeatureExtractor, params_source: str = "auto",
                     include_neck: bool = False, clips: Sequence[str] | None = None,
                     log: Callable[[str], None] | None = None,
                     progress: Callable[[int, int], None] | None = None
                     ) -> tuple[list[ClipData], list[str], str]:
    """Read an actor's clips from a workspace.

    Args:
        ws: the :class:`core.workspace.Workspace`.
        actor: actor name.
        extractor: audio feature extractor (features at each clip's fps).
        params_source: ``auto``, ``tracking`` or ``ground_truth``.
        include_neck: targets include neck pose.
        clips: only these clips (default: all of the actor's clips).
        log: receives one line per skipped clip.
        progress: called as ``progress(done, total)`` after each clip.

    Returns:
        (clips, expression names, source used: ``tracking``/``ground_truth``/``mixed``).

    Raises:
        A2EDataError: unknown actor, no usable clip, inconsistent expression sizes.
    """
    manifest = ws.read_manifest()
    actor_rec = manifest.get("actors", {}).get(actor)
    if actor_rec is None:
        known = ", ".join(sorted(manifest.get("actors", {}))) or "none"
        raise A2EDataError(f"no actor {actor!r} in {ws.root} (actors: {known})")
    records: dict[str, Any] = actor_rec.get("clips", {})
    names = sorted(records) if clips is None else list(clips)
    out: list[ClipData] = []
    expr_names: list[str] | None = None
    sources: set[str] = set()
    skipped: list[str] = []
    for i, name in enumerate(names):
        rec = records.get(name)
        if rec is None:
            raise A2EDataError(f"actor {actor!r} has no clip {name!r}")
        clip_dir = ws.clip_dir(actor, name)
        audio_rel = rec.get("audio")
        path, source = params_path(clip_dir, params_source)
        if not audio_rel or path is None:
            wanted = "tracking or ground-truth" if params_source == "auto" else params_source
            why = "no audio" if not audio_rel else f"no {wanted} params"
            skipped.append(f"{name} ({why})")
        else:
            try:
                wave, sr = load_audio(ws.root / audio_rel, extractor.config.sample_rate)
            except AudioError as exc:
                skipped.append(f"{name} ({exc})")
            else:
                params, names_in_file = read_params(path)
                n = int(params["expression"].shape[0])
                fps = float(rec.get("fps") or 25.0)
                feats = extractor.extract(wave, sr, fps, n_frames=n)
                this_names = names_in_file or default_expr_names(params["expression"].shape[1])
                if expr_names is None:
                    expr_names = this_names
                elif len(this_names) != len(expr_names):
                    raise A2EDataError(f"clip {name} has {len(this_names)} expression coefficients, earlier "
                                       f"clips {len(expr_names)}: track all clips with the same model")
                label = {k: float(v) for k, v in (rec.get("emotion") or {}).items()}
                emo = np.repeat(emotion_vector(label)[None], n, 0)
                group = str(rec.get("sentence") or rec.get("group") or name)
                sources.add(source)
                out.append(ClipData(name, group, feats, make_targets(params, include_neck), emo, label,
                                    bool(rec.get("synthetic", False)), params, source))
        if progress is not None:
            progress(i + 1, len(names))
    if skipped and log is not None:
        for line in skipped:
            log(f"skipping clip {line}")
    if not out:
        raise A2EDataError(
            f"actor {actor!r} has no clip with audio and {params_source} parameters"
            + (f" (skipped: {'; '.join(skipped[:5])})" if skipped else " (no clips)"))
    fps_set = {float(records[c.name].get("fps") or 25.0) for c in out}
    if len(fps_set) > 1:
        raise A2EDataError(f"actor {actor!r} has clips at several frame rates {sorted(fps_set)}; "
                           "ingest them at one rate (emodub ingest --fps)")
    used = sources.pop() if len(sources) == 1 else "mixed"
    return out, expr_names or [], used


SPEECH_PRIOR_PREFIX = "speech_prior/"


def speech_prior_clips(n_sentences: int, extractor: FeatureExtractor, include_neck: bool, fps: float,
                       expr_names: Sequence[str], seed: int = 0, voices: bool = False) -> list[ClipData]:
    """Neutral sentences of the embedded synthetic actor (speech + exact mouth motion), generated in memory.

    An actor filmed for a few seconds gives the network too little to learn how mouths follow speech it
    has not heard: on the 8 s real interview clip alone the a2e reproduced its training take (r = 0.98)
    and, on German audio, opened the mouth out of step with the sound. Mixed into training, these clips
    teach the general speech-to-mouth mapping (an a2e trained on synthetic speech alone follows real
    German, English and French speech: jaw vs loudness r = 0.5-0.85 at offset 0), the actor's own clips
    its style. Always in the training split; deterministic for ``seed``, so a resumed run finds them.
    ``voices``: each sentence in its own random voice (:func:`core.synthetic.speech.random_voice`).

    Raises:
        A2EDataError: the actor was tracked with another face model than the procedural head, whose
            expression coefficients the synthetic actor drives.
    """
    from core.expression.emotions import N_EMOTIONS
    from core.synthetic.corpus import synthesize_clip
    from core.synthetic.phonemes import random_sentence
    from core.synthetic.speech import random_voice

    if list(expr_names) != list(PROCEDURAL_EXPRESSIONS):
        raise A2EDataError("the speech prior drives the procedural head's expressions; this actor was tracked "
                           "with another face model (train without --speech-prior)")
    rng = np.random.default_rng(seed + 7_919)
    sentences = [random_sentence(rng, int(rng.integers(4, 9))) for _ in range(n_sentences)]
    sr = extractor.config.sample_rate
    out = []
    for i, sentence in enumerate(sentences):
        # Per-sentence streams: the same sentences and timing with or without other voices.
        voice = random_voice(np.random.default_rng([seed, 15_485, i])) if voices else None
        clip = synthesize_clip(sentence, np.zeros(N_EMOTIONS, np.float32), fps, np.random.default_rng([seed, 7_919, i]),
                               sr=sr, voice=voice)
        n = int(clip["n_frames"])
        # Only what the network predicts: the actor's pose/eye defaults (actor_defaults) stay the actor's.
        params = {k: np.asarray(clip[k], np.float32) for k in ("expression", "jaw_pose", "neck_pose")}
        name = f"{SPEECH_PRIOR_PREFIX}{i:03d}"
        out.append(ClipData(name, name, extractor.extract(clip["wave"], sr, fps, n_frames=n),
                            make_targets(params, include_neck), np.zeros((n, N_EMOTIONS), np.float32), {}, True,
                            params, "speech_prior"))
    return out


def match_target_statistics(prior: Sequence[ClipData], actor: Sequence[ClipData]) -> list[ClipData]:
    """The prior clips with each target dimension re-scaled to the actor's mean and spread.

    The synthetic head opens its mouth mostly with the jaw, a tracked person perhaps more with the
    ``mouth_open`` blendshape and by a tenth of the angle; left as they are, the prior's ranges would
    override the actor's (a dub whose mouth opens far wider than the actor ever does). Matched, the prior
    contributes *when* to open and close, the actor *how much*; a dimension the actor never moves
    (spread ~0) stays at the actor's value.
    """

    def stats(clips: Sequence[ClipData]) -> tuple[np.ndarray, np.ndarray]:
        t = np.concatenate([c.targets for c in clips], 0).astype(np.float64)
        return t.mean(0), t.std(0)

    prior_mean, prior_std = stats(prior)
    actor_mean, actor_std = stats(actor)
    scale = np.where(prior_std > 1e-8, actor_std / np.maximum(prior_std, 1e-8), 0.0)
    return [replace(c, targets=((c.targets - prior_mean) * scale + actor_mean).astype(np.float32)) for c in prior]


WARP_MARK = "~warp"  # name suffix of a training copy of a clip heard at another vocal-tract warp


def warped_copies(ws: Any, actor: str, clips: Sequence[ClipData], heads: Sequence[ClipData],
                  extractors: Mapping[float, FeatureExtractor]) -> list[ClipData]:
    """Training copies of ``heads`` (the training parts of ``clips``, :func:`cut_tails`) for each vocal-tract
    warp: their features come from each clip's whole audio analysed by ``extractors[warp]``, as
    :func:`load_actor_clips` analyses it, then cut alike; all copies at the first warp, then the next. Each clip's
    audio is read once for every warp. Targets, labels and groups stay the heads', so a copy is trained and held
    out with its clip."""
    whole = {c.name: c.n_frames for c in clips}
    by_warp: dict[float, list[ClipData]] = {warp: [] for warp in extractors}  # returned warp by warp
    for head in heads:
        if head.name not in whole:
            raise A2EDataError(f"clip {head.name}: no whole clip to take its warped features from")
        rec = ws.clip(actor, head.name)
        fps = float(rec.get("fps") or 25.0)
        waves: dict[int, tuple[np.ndarray, int]] = {}  # by sample rate
        for warp, extractor in extractors.items():
            rate = extractor.config.sample_rate
            if rate not in waves:
                waves[rate] = load_audio(ws.root / rec["audio"], rate)
            wave, sr = waves[rate]
            features = extractor.extract(wave, sr, fps, n_frames=whole[head.name])
            by_warp[warp].append(replace(head, name=f"{head.name}{WARP_MARK}{warp:g}",
                                         features=features[:head.n_frames]))
    return [copy for copies in by_warp.values() for copy in copies]


TAIL = "#tail"  # suffix of the held-out end of a clip (cut_tails)


def cut_tails(clips: Sequence[ClipData], fraction: float) -> tuple[list[ClipData], list[ClipData]]:
    """Each clip's first ``1 - fraction`` of frames (same name) and its last ``fraction`` (name and group +
    :data:`TAIL`); a clip too short to give both keeps every frame and gives no tail."""
    heads: list[ClipData] = []
    tails: list[ClipData] = []
    for clip in clips:
        n = clip.n_frames
        cut = n - int(round(n * fraction))
        if fraction <= 0 or not 0 < cut < n:
            heads.append(clip)
            continue

        def part(rows: slice, clip: ClipData = clip, n: int = n) -> dict[str, Any]:
            params = {k: (v[rows] if v.ndim and v.shape[0] == n else v) for k, v in clip.params.items()}
            return {"features": clip.features[rows], "targets": clip.targets[rows], "emotion": clip.emotion[rows],
                    "params": params}

        heads.append(replace(clip, **part(slice(0, cut))))
        tails.append(replace(clip, name=clip.name + TAIL, group=clip.group + TAIL, first_frame=clip.first_frame + cut,
                             **part(slice(cut, n))))
    return heads, tails


def split_groups(clips: Sequence[ClipData], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Clip names of the training and validation sets; whole groups are held out.

    At least one group is held out when there are two or more groups and ``val_fraction > 0``.
    """
    groups = sorted({c.group for c in clips})
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    n_val = 0 if val_fraction <= 0 or len(groups) < 2 else max(1, int(round(val_fraction * len(groups))))
    n_val = min(n_val, len(groups) - 1)
    val_groups = set(order[:n_val])
    train = [c.name for c in clips if c.group not in val_groups]
    val = [c.name for c in clips if c.group in val_groups]
    return train, val


class SequenceSampler:
    """Random fixed-length training sequences drawn from clips (uniform over valid start frames).

    Clips shorter than ``seq_len`` are used whole, padded, with a mask.
    """

    def __init__(self, clips: Sequence[ClipData], seq_len: int) -> None:
        self.clips = list(clips)
        self.seq_len = seq_len
        starts = [max(1, c.n_frames - seq_len + 1) for c in self.clips]
        self.cum = np.cumsum(starts)

    def sample(self, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        """A batch: features (B, T, W, D), emotion (B, T, 7), targets (B, T, P), mask (B, T) float32."""
        T = self.seq_len
        picks = rng.integers(0, int(self.cum[-1]), size=batch)
        clip_idx = np.searchsorted(self.cum, picks, side="right")
        offsets = picks - np.concatenate([[0], self.cum[:-1]])[clip_idx]
        c0 = self.clips[0]
        feats = np.zeros((batch, T, *c0.features.shape[1:]), np.float32)
        emo = np.zeros((batch, T, c0.emotion.shape[1]), np.float32)
        tgt = np.zeros((batch, T, c0.targets.shape[1]), np.float32)
        mask = np.zeros((batch, T), np.float32)
        for b, (ci, start) in enumerate(zip(clip_idx, offsets, strict=True)):  # B slices of whole arrays
            clip = self.clips[int(ci)]
            sl = slice(int(start), int(start) + T)
            n = min(T, clip.n_frames - int(start))
            feats[b, :n] = clip.features[sl]
            emo[b, :n] = clip.emotion[sl]
            tgt[b, :n] = clip.targets[sl]
            mask[b, :n] = 1.0
        return {"features": feats, "emotion": emo, "targets": tgt, "mask": mask}


def actor_defaults(clips: Sequence[ClipData]) -> dict[str, np.ndarray]:
    """Mean shape/eye pose/rotation/translation over the clips (held fixed in predicted parameters)."""
    out: dict[str, np.ndarray] = {}
    for key in ("shape", "eye_pose", "rotation", "translation"):
        rows = [c.params[key] for c in clips if key in c.params]
        if rows:
            out[key] = np.concatenate(rows, 0).mean(0).astype(np.float32)
    return out
