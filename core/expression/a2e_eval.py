"""Evaluation of a trained a2e model on its held-out clips (the validation split stored in the checkpoint).

Metrics (all on smoothed predictions, as inference delivers them):

- ``jaw_corr``: Pearson correlation of predicted and true jaw opening (``jaw_pose[:, 0]``) over every
  held-out frame.
- ``mouth_l1``: mean absolute error over the mouth-region parameters (the mouth/viseme and mouth-corner
  expression coefficients, and the jaw opening in radians); ``mouth_l1_mean_baseline`` is the error of
  always predicting the training mean, for scale.
- ``mouth_open_corr`` (tracked footage): Pearson r of the mouth opening the prediction poses against the
  tracked one; ``mouth_open_corr_voices``: the same with the held-out audio played faster or slower
  (pitch and formants shifted: a voice the model never heard, ground truth kept by time-scaling it).
  ``mouth_open_corr_detected``: the prediction's opening (``predicted``) and the tracked one (``tracked``)
  against the opening of the landmarks detected on the held-out frames (MediaPipe's inner lips): a ground
  truth that does not depend on the tracker, so a change of tracking cannot move it by moving the target.
- Emotion control: for the same held-out audio, each swept emotion at intensities 0, 0.33, 0.66, 1.0.
  The predicted change of the brow and mouth-corner parameters (mean over frames, relative to intensity
  0) is projected onto the ground-truth direction of that emotion: for synthetic actors the generator's
  :func:`core.synthetic.emotion_faces.emotion_expression`, for real footage the mean of the clips
  labelled with that emotion minus the mean of the neutral clips. ``emotion_direction_ok[e]``: at
  intensity 1 every affected group (brows, corners) moved along its ground-truth direction (positive
  projection) and the whole change has cosine >= 0.5 with the ground truth. ``emotion_monotonic[e]``:
  each affected group's projection strictly increases over the four intensities. ``emotion_mixed``: a
  50/50 mix of two emotions lands between the two pure emotions, parameter by parameter.
- Ablation (READ): the ratio of predicted to ground-truth variance of the upper-face (brows, eyes,
  cheeks, nose) and lip (mouth, corners, jaw) parameters, pooled over held-out frames and within clips
  (over time), for this model and, when it exists, the L1-only model (``a2e_l1``). Over-smoothing shows as
  ratios well below 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.eval.stats import pearson
from core.expression.a2e import A2EModel
from core.expression.a2e_data import TAIL, ClipData, cut_tails, load_actor_clips
from core.expression.a2e_train import NullReporter, Reporter
from core.expression.emotions import EMOTIONS, N_EMOTIONS
from core.morphable.data import PROCEDURAL_EXPRESSIONS

# Parameter groups by name (models whose names differ fall back to index groups of the procedural layout).
MOUTH_EXPRESSIONS: tuple[str, ...] = PROCEDURAL_EXPRESSIONS[:21]     # mouth/visemes + mouth corners
BROWS: tuple[str, ...] = ("brow_up_left", "brow_up_right", "brow_down_left", "brow_down_right",
                          "brow_inner_up")
CORNERS: tuple[str, ...] = ("smile_left", "smile_right", "frown_left", "frown_right", "dimple_left",
                            "dimple_right")
UPPER_FACE: tuple[str, ...] = PROCEDURAL_EXPRESSIONS[21:]            # brows, eyes, cheeks, nose
SWEEP_EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "surprised")
SWEEP_LEVELS: tuple[float, ...] = (0.0, 0.33, 0.66, 1.0)
MIX_PAIRS: tuple[tuple[str, str], ...] = (("happy", "surprised"), ("sad", "angry"))
JAW_CORR_TARGET = 0.8


def _idx(names: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    pos = {n: i for i, n in enumerate(names)}
    return np.array([pos[n] for n in wanted if n in pos], dtype=np.int64)


def _emotion(name: str, level: float) -> np.ndarray:
    vec = np.zeros(N_EMOTIONS, np.float32)
    vec[EMOTIONS.index(name)] = level
    return vec


def gt_emotion_directions(clips: Sequence[ClipData], n_expr: int, all_clips: Sequence[ClipData] | None,
                          expr_names: Sequence[str]) -> tuple[dict[str, np.ndarray], str]:
    """(E,) ground-truth expression change of each emotion at intensity 1, and where it came from."""
    synthetic = all(c.synthetic for c in clips) and list(expr_names) == list(PROCEDURAL_EXPRESSIONS)
    if synthetic:
        from core.synthetic.emotion_faces import emotion_expression

        base = emotion_expression(np.zeros(N_EMOTIONS))[0]
        return {e: emotion_expression(_emotion(e, 1.0))[0] - base for e in EMOTIONS}, "synthetic_generator"
    pool = list(all_clips or clips)
    neutral = [c.targets[:, :n_expr] for c in pool if not c.label]
    out: dict[str, np.ndarray] = {}
    if neutral:
        base = np.concatenate(neutral).mean(0)
        for e in EMOTIONS:
            labelled = [c for c in pool if len(c.label) == 1 and c.label.get(e, 0.0) > 0]
            if labelled:
                # Each clip's mean offset from neutral scaled to intensity 1 (offsets are ~linear in the
                # intensity), weighted by intensity so strong clips count more than faint ones.
                offsets = np.stack([(c.targets[:, :n_expr].mean(0) - base) / c.label[e] for c in labelled])
                out[e] = np.average(offsets, axis=0, weights=[c.label[e] for c in labelled])
    return out, "labelled_clips"


def _mean_prediction(model: A2EModel, clips: Sequence[ClipData], vec: np.ndarray) -> np.ndarray:
    """(P,) mean over all frames of the given clips' audio predicted with a constant emotion ``vec``."""
    rows = [model.predict_features(c.features, np.repeat(vec[None], c.n_frames, 0)) for c in clips]
    return np.concatenate(rows).mean(0)


def emotion_sweep(model: A2EModel, clips: Sequence[ClipData], directions: dict[str, np.ndarray],
                  emotions: Sequence[str] = SWEEP_EMOTIONS,
                  levels: Sequence[float] = SWEEP_LEVELS) -> dict[str, Any]:
    """Move each emotion through ``levels`` on the same audio and compare with the ground truth."""
    names = model.expr_names
    groups = {"brows": _idx(names, BROWS), "corners": _idx(names, CORNERS)}
    both = np.concatenate(list(groups.values()))
    results: dict[str, Any] = {}
    for e in emotions:
        if e not in directions:
            results[e] = {"available": False, "reason": "no ground-truth direction (no labelled clips)"}
            continue
        g = directions[e]
        means = np.stack([_mean_prediction(model, clips, _emotion(e, lv)) for lv in levels])  # (L, P)
        delta = means - means[0]
        per_group: dict[str, Any] = {}
        direction_ok, monotonic = True, True
        for gname, idx in groups.items():
            g_grp = g[idx]
            norm = float(np.linalg.norm(g_grp))
            if norm < 1e-3:
                per_group[gname] = {"affected": False}
                continue
            proj = (delta[:, idx] @ g_grp / norm).tolist()
            group_ok = proj[-1] > 0
            group_mono = bool(np.all(np.diff(proj) > 0))
            direction_ok &= group_ok
            monotonic &= group_mono
            per_group[gname] = {"affected": True, "projection": proj,
                                "gt_projection": [lv * norm for lv in levels], "direction_ok": group_ok,
                                "monotonic": group_mono}
        cos = float(delta[-1, both] @ g[both] / (np.linalg.norm(delta[-1, both]) * np.linalg.norm(g[both])
                                                 + 1e-12))
        direction_ok &= cos >= 0.5
        results[e] = {"available": True, "direction_ok": bool(direction_ok), "monotonic": bool(monotonic),
                      "cosine": cos, "groups": per_group, "levels": list(levels),
                      "gain": float(np.linalg.norm(delta[-1, both]) / (np.linalg.norm(g[both]) + 1e-12))}
    return results


def mixed_check(model: A2EModel, clips: Sequence[ClipData], pairs: Sequence[tuple[str, str]] = MIX_PAIRS,
                tolerance: float = 0.1) -> dict[str, Any]:
    """A 50/50 mix of two emotions must predict, for each brow/corner parameter, a value between the two
    pure emotions' values (within ``tolerance`` x their difference + 0.01)."""
    idx = np.concatenate([_idx(model.expr_names, BROWS), _idx(model.expr_names, CORNERS)])
    out: dict[str, Any] = {}
    for a, b in pairs:
        m_a = _mean_prediction(model, clips, _emotion(a, 1.0))[idx]
        m_b = _mean_prediction(model, clips, _emotion(b, 1.0))[idx]
        m_mix = _mean_prediction(model, clips, _emotion(a, 0.5) + _emotion(b, 0.5))[idx]
        lo, hi = np.minimum(m_a, m_b), np.maximum(m_a, m_b)
        tol = tolerance * (hi - lo) + 0.01
        inside = (m_mix >= lo - tol) & (m_mix <= hi + tol)
        out[f"{a}+{b}"] = {"between_fraction": float(inside.mean()), "ok": bool(inside.mean() >= 0.9),
                           "max_outside": float(np.max(np.maximum(lo - m_mix, m_mix - hi).clip(0)))}
    return out


def variance_ratios(model: A2EModel, clips: Sequence[ClipData]) -> dict[str, float]:
    """Predicted / ground-truth variance of upper-face and lip parameters (pooled and within clips)."""
    names = model.expr_names
    E = model.n_expr
    lips = np.concatenate([_idx(names, MOUTH_EXPRESSIONS), [E]])  # + jaw opening
    upper = _idx(names, UPPER_FACE)
    preds = [model.predict_features(c.features, c.emotion) for c in clips]
    truth = [c.targets for c in clips]
    out: dict[str, float] = {}
    for gname, idx in (("upper_face", upper), ("lip", lips)):
        if idx.size == 0:
            continue
        p_all = np.concatenate([p[:, idx] for p in preds])
        t_all = np.concatenate([t[:, idx] for t in truth])
        out[f"{gname}_var_ratio"] = float(p_all.var(0).sum() / max(t_all.var(0).sum(), 1e-12))
        p_in = np.mean([p[:, idx].var(0).sum() for p in preds])
        t_in = np.mean([t[:, idx].var(0).sum() for t in truth])
        out[f"{gname}_temporal_var_ratio"] = float(p_in / max(t_in, 1e-12))
    return out


def accuracy(model: A2EModel, clips: Sequence[ClipData]) -> dict[str, float]:
    """jaw_corr, mouth_l1 (+ parts and a mean-prediction baseline) on clips with their own labels."""
    E = model.n_expr
    mouth = _idx(model.expr_names, MOUTH_EXPRESSIONS)
    preds = np.concatenate([model.predict_features(c.features, c.emotion) for c in clips])
    truth = np.concatenate([c.targets for c in clips])
    cols = np.concatenate([mouth, [E]])
    err = np.abs(preds - truth)
    base = np.abs(model.stats.target_mean[None] - truth)
    return {"jaw_corr": pearson(preds[:, E], truth[:, E]),
            "mouth_l1": float(err[:, cols].mean()),
            "mouth_expr_l1": float(err[:, mouth].mean()),
            "jaw_l1_rad": float(err[:, E].mean()),
            "mouth_l1_mean_baseline": float(base[:, cols].mean()),
            "all_l1": float(err.mean()),
            "frames": int(truth.shape[0])}


def held_out_clips(ws: Any, actor: str, model: A2EModel, source: str, names: Sequence[str]) -> list[ClipData]:
    """The clips ``names`` of the actor; a name ending in :data:`TAIL` is that clip's held-out end, cut as the
    model's ``tail_holdout`` cut it in training."""
    bases = list(dict.fromkeys(n.removesuffix(TAIL) for n in names))
    clips, _, _ = load_actor_clips(ws, actor, model.extractor, source, model.config.include_neck, clips=bases)
    if any(n.endswith(TAIL) for n in names):
        heads, tails = cut_tails(clips, model.config.tail_holdout)
        clips = heads + tails
    by_name = {c.name: c for c in clips}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"held-out clips {missing} cannot be rebuilt (too short for the model's tail_holdout?)")
    return [by_name[n] for n in names]


def tracked_face_model(ws: Any, actor: str, clips: Sequence[ClipData]) -> Any:
    """The face model the first clip was tracked with, or None (ground-truth parameters, or untracked)."""
    from core.tracking.result import TrackedClip

    for clip in clips:
        if clip.params_file == "tracking":
            try:
                return TrackedClip.load(ws.clip_dir(actor, clip.name.removesuffix(TAIL))).face_model()
            except FileNotFoundError:
                return None
    return None


def posed_mouth_opening(face_model: Any, params: Any) -> np.ndarray:
    """(N,) inner-lip opening (iBUG 62-66, 61-67, 63-65 over the eye-corner distance) of ``face_model`` posed with
    ``params`` (a :class:`~core.morphable.data.FaceParams` of N frames)."""
    import torch

    from core.eval.lipsync import mouth_opening_from_landmarks

    with torch.no_grad():
        return mouth_opening_from_landmarks(face_model(params).landmarks[..., :2].numpy(), normalize="inter_ocular")


def with_prediction(params: Any, expression: np.ndarray, jaw: np.ndarray) -> Any:
    """``params`` (FaceParams) with a prediction's expression and jaw in place of its own (pose and shape kept)."""
    import torch

    from core.morphable.data import FaceParams

    return FaceParams(**{**params.tensors(), "expression": torch.as_tensor(expression, dtype=torch.float32),
                         "jaw_pose": torch.as_tensor(jaw, dtype=torch.float32)})


def _mouth_openings(model: A2EModel, features: np.ndarray, emotion: np.ndarray, params: dict[str, np.ndarray],
                    face_model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N,) inner-lip openings of the face model posed with the prediction for ``features`` and with the
    tracked ``params`` (N frames; pose and shape shared)."""
    from core.morphable.data import FaceParams

    expression, jaw, _ = model.split_params(model.predict_features(features, emotion))
    tracked = FaceParams.from_numpy(params)
    return (posed_mouth_opening(face_model, with_prediction(tracked, expression, jaw)),
            posed_mouth_opening(face_model, tracked))


def held_out_openings(model: A2EModel, clips: Sequence[ClipData],
                      face_model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip, the inner-lip openings posed with the prediction for its own audio and with its tracked
    parameters (:func:`_mouth_openings`): what :func:`mouth_open_corr` and :func:`mouth_open_corr_detected` read."""
    return [_mouth_openings(model, c.features, c.emotion, c.params, face_model) for c in clips]


def mouth_open_corr(model: A2EModel, clips: Sequence[ClipData], face_model: Any,
                    openings: list[tuple[np.ndarray, np.ndarray]] | None = None) -> float:
    """Pearson r of the inner-lip opening (iBUG 62-66, 61-67, 63-65 over the eye-corner distance) of the face
    model posed with the predicted expression and jaw against the same with the clips' own parameters (pose
    and shape shared): whether the mouth opens when the tracked mouth does, whatever mix of jaw and mouth
    blendshapes opens it. ``openings``: :func:`held_out_openings` of these clips when already computed."""
    pairs = openings if openings is not None else held_out_openings(model, clips, face_model)
    return pearson(np.concatenate([p for p, _ in pairs]), np.concatenate([o for _, o in pairs]))


def detected_mouth_opening(ws: Any, actor: str, clip: ClipData) -> np.ndarray | None:
    """(N,) inner-lip opening over the eye-corner distance of the landmarks detected on the clip's frames (NaN
    where no face was detected or the frame is flagged), or None when the clip has no landmarks."""
    from core.eval.lipsync import mouth_opening_from_landmarks
    from core.landmarks.track import LandmarkTrack

    path = ws.clip_dir(actor, clip.name.removesuffix(TAIL)) / "landmarks.npz"
    if not path.is_file():
        return None
    rows = slice(clip.first_frame, clip.first_frame + clip.n_frames)
    track = LandmarkTrack.load(path)
    landmarks = track.lmk68[rows]
    seen = track.detected[rows] & ~track.flagged[rows]
    if len(landmarks) != clip.n_frames:
        return None
    opening = mouth_opening_from_landmarks(landmarks, normalize="inter_ocular")
    opening[~seen] = np.nan
    return opening


def mouth_open_corr_detected(ws: Any, actor: str, clips: Sequence[ClipData],
                             openings: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float] | None:
    """Pearson r against the detected landmarks' inner-lip opening, over the held-out frames with a detection:
    ``predicted`` for the opening posed with the prediction, ``tracked`` for the tracked one (how closely the
    tracking, the training target, follows the detections). ``openings``: :func:`held_out_openings` of
    ``clips``. None when a clip has no landmarks."""
    detected = [detected_mouth_opening(ws, actor, clip) for clip in clips]
    if any(seen is None for seen in detected):
        return None
    a, t = np.concatenate([p for p, _ in openings]), np.concatenate([o for _, o in openings])
    b = np.concatenate(detected)
    keep = np.isfinite(b)
    return {"predicted": pearson(a[keep], b[keep]), "tracked": pearson(t[keep], b[keep])}


VOICE_SPEEDS: tuple[float, ...] = (0.85, 1.18)


def voice_shift_corr(ws: Any, actor: str, model: A2EModel, clips: Sequence[ClipData], face_model: Any,
                     speeds: Sequence[float] = VOICE_SPEEDS) -> dict[str, float]:
    """:func:`mouth_open_corr` with each clip's own audio played ``speed`` times as fast, per speed (keyed
    ``f"{speed:g}"``): a voice the model never heard with ground truth kept. Pitch and formants move by ``speed``
    (1.18: about a man's voice heard as a woman's formants; 0.85: a deeper voice) and the tracked motion is
    time-scaled alike (frame ``j`` of the faster audio shows the clip's frame ``j * speed``). Each clip's audio
    is read once for all speeds."""
    from core.audio.io import load_audio

    sr = model.feature_config.sample_rate
    pairs: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in speeds}
    for clip in clips:
        rec = ws.clip(actor, clip.name.removesuffix(TAIL))
        fps = float(rec.get("fps") or 25.0)
        start = clip.first_frame
        wave, _ = load_audio(ws.root / rec["audio"], sr)
        segment = wave[int(round(start / fps * sr)):int(round((start + clip.n_frames) / fps * sr))]
        for nominal in speeds:
            played = int(round(sr * nominal))
            speed = played / sr
            n = int((clip.n_frames - 1) / speed) + 1
            rows = np.minimum(np.round(np.arange(n) * speed).astype(int), clip.n_frames - 1)
            features = model.extractor.extract(segment, played, fps, n_frames=n)
            pairs[nominal].append(_mouth_openings(model, features, clip.emotion[rows],
                                                  {k: v[rows] for k, v in clip.params.items()}, face_model))
    return {f"{s:g}": pearson(np.concatenate([p for p, _ in pairs[s]]), np.concatenate([o for _, o in pairs[s]]))
            for s in speeds}


def evaluate_a2e(ws: Any, actor: str, model_name: str = "a2e", ablation_name: str | None = "a2e_l1",
                 clips: Sequence[str] | None = None, device: str = "cpu",
                 reporter: Reporter | None = None) -> dict[str, Any]:
    """Evaluate an actor's a2e model on its held-out clips (or ``clips``); see the module docstring.

    Raises:
        FileNotFoundError: the model is not trained. ValueError: no held-out clips.
    """
    reporter = reporter or NullReporter()
    model = A2EModel.load(ws.model_dir(actor, model_name), device)
    names = list(clips) if clips is not None else list(model.info.get("split", {}).get("val", []))
    if not names:
        raise ValueError(f"model {model_name!r} has no held-out clips (trained with val_fraction 0); "
                         "pass the clips to evaluate")
    source = model.info.get("params_source") or model.config.params_source
    source = model.config.params_source if source == "mixed" else source
    reporter.progress("eval a2e", 0, 4, "loading held-out clips")
    held_out = held_out_clips(ws, actor, model, source, names)
    result: dict[str, Any] = {"model": model_name, "actor": actor, "clips": [c.name for c in held_out],
                              "n_clips": len(held_out), "params_source": source,
                              "iteration": model.info.get("iteration")}
    result.update(accuracy(model, held_out))
    face_model = tracked_face_model(ws, actor, held_out)
    openings = held_out_openings(model, held_out, face_model) if face_model is not None else None
    result["mouth_open_corr"] = mouth_open_corr(model, held_out, face_model, openings) if openings is not None else None
    if openings is not None and not all(c.synthetic for c in held_out):
        result["mouth_open_corr_voices"] = voice_shift_corr(ws, actor, model, held_out, face_model)
        result["mouth_open_corr_detected"] = mouth_open_corr_detected(ws, actor, held_out, openings)
    reporter.progress("eval a2e", 1, 4, f"jaw r {result['jaw_corr']:.3f}, mouth L1 {result['mouth_l1']:.4f}")

    all_clips = None
    if not all(c.synthetic for c in held_out):  # real footage: directions from every labelled clip
        all_clips, _, _ = load_actor_clips(ws, actor, model.extractor, source, model.config.include_neck)
    directions, dir_source = gt_emotion_directions(held_out, model.n_expr, all_clips, model.expr_names)
    sweep_clips = [c for c in held_out if not c.label] or list(held_out)
    sweep = emotion_sweep(model, sweep_clips, directions)
    result["emotion_sweep"] = sweep
    result["emotion_direction_source"] = dir_source
    result["emotion_direction_ok"] = {e: r["direction_ok"] for e, r in sweep.items() if r.get("available")}
    result["emotion_monotonic"] = {e: r["monotonic"] for e, r in sweep.items() if r.get("available")}
    result["emotion_mixed"] = mixed_check(model, sweep_clips)
    reporter.progress("eval a2e", 2, 4, "emotion sweep done")

    ablation: dict[str, Any] = {model_name: {**variance_ratios(model, held_out),
                                             "use_gan": model.config.use_gan, "jaw_corr": result["jaw_corr"],
                                             "mouth_l1": result["mouth_l1"]}}
    other_ckpt = ws.model_dir(actor, ablation_name) / "checkpoint.pt" if ablation_name else None
    if ablation_name and ablation_name != model_name and other_ckpt is not None and other_ckpt.is_file():
        other = A2EModel.load(ws.model_dir(actor, ablation_name), device)
        acc = accuracy(other, held_out)
        ablation[ablation_name] = {**variance_ratios(other, held_out), "use_gan": other.config.use_gan,
                                   "jaw_corr": acc["jaw_corr"], "mouth_l1": acc["mouth_l1"]}
    result["ablation"] = ablation
    reporter.progress("eval a2e", 3, 4, "variance ratios done")
    result["checks"] = {
        "jaw_corr_ge_0.8": result["jaw_corr"] >= JAW_CORR_TARGET,
        "emotion_direction_ok": bool(result["emotion_direction_ok"])
        and all(result["emotion_direction_ok"].values()),
        "emotion_monotonic": bool(result["emotion_monotonic"]) and all(result["emotion_monotonic"].values()),
        "emotion_mixed": all(v["ok"] for v in result["emotion_mixed"].values()),
    }
    reporter.progress("eval a2e", 4, 4, "done")
    return result
