"""Job kinds of the audio-to-expression model: ``train.a2e``, ``a2e.predict``, ``eval.a2e``.

CLI::

    emodub train a2e --workspace W --actor A [--name a2e] [--iterations 3000] [--no-gan --name a2e_l1]
    emodub a2e predict --workspace W --actor A --audio X.wav [--emotions curves.json | --emotion happy:0.66]
                       --out params.npz
    emodub eval a2e --workspace W --actor A [--json]

Top-level imports stay light (torch is imported inside the functions) so ``emodub --help`` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.audio.features import FEATURES, FeatureNotAvailable
from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import FRAME_RATE, Arg, job_kind

_EMOTION_HINT = ("emotion names: angry, contempt, disgusted, fear, happy, sad, surprised (neutral = none); "
                 "intensities in [0, 1] (--clamp clips them)")
_DEVICE = Arg("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device")
_ACTOR = Arg("--actor", required=True, help="actor name in the workspace")


def _int(ctx: JobContext, key: str, default: int | None, minimum: int = 1) -> int | None:
    value = ctx.params.get(key, default)
    if value is None:
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise JobFailed(f"{key} must be an integer, got {value!r}", code="bad_params") from None
    if value < minimum:
        raise JobFailed(f"{key} must be >= {minimum}, got {value}", code="bad_params")
    return value


# Below this much real footage the speech prior is added unless --speech-prior says. Measured: with 50-54 s of
# one take (the long real clips) the synthetic prior lowered the held-out mouth-opening r (0.51 -> 0.40 and
# 0.39 -> 0.18); with 8 s alone the a2e reproduced its take and opened the mouth out of step on new speech.
SHORT_FOOTAGE_S = 20.0
AUTO_PRIOR_SENTENCES = 40


def _auto_speech_prior(ctx: JobContext, actor: str) -> int:
    """Sentences of speech prior for an actor with little real footage tracked with the procedural head."""
    import json

    clips = ctx.workspace.read_manifest().get("actors", {}).get(actor, {}).get("clips", {})
    real = {name: rec for name, rec in clips.items() if not rec.get("synthetic")}
    seconds = sum(float(rec.get("duration_s") or 0.0) for rec in real.values())
    if not real or seconds <= 0 or seconds >= SHORT_FOOTAGE_S:  # no duration recorded: not ingested footage
        return 0
    for name in real:
        config = ctx.workspace.clip_dir(actor, name) / "tracking" / "config.json"
        model = json.loads(config.read_text()).get("model", "procedural") if config.exists() else "procedural"
        if model != "procedural":
            return 0
    ctx.log(f"{actor} has {seconds:.0f} s of footage: adding the speech prior ({AUTO_PRIOR_SENTENCES} synthetic "
            "sentences, scaled to the actor's ranges); --speech-prior 0 turns it off")
    return AUTO_PRIOR_SENTENCES


@job_kind("train.a2e", help="train the audio-to-expression GAN of an actor on its tracked/synthetic clips",
          args=[_ACTOR,
                Arg("--name", default="a2e", help="model name (default a2e; a2e_l1 for the ablation)"),
                Arg("--iterations", type=int, default=None, help="generator updates (default 3000)"),
                Arg("--batch-size", dest="batch_size", type=int, default=None, help="sequences per batch (32)"),
                Arg("--seq-len", dest="seq_len", type=int, default=None, help="frames per sequence (32)"),
                Arg("--lr", type=float, default=None, help="Adam learning rate (READ: 1e-4)"),
                Arg("--lambda-gan", dest="lambda_gan", type=float, default=None, help="LSGAN weight (0.02)"),
                Arg("--lambda-vel", dest="lambda_vel", type=float, default=None, help="velocity weight (100)"),
                Arg("--no-gan", dest="no_gan", action="store_true", help="L1+velocity only (the ablation)"),
                Arg("--seed", type=int, default=None, help="seed of init, split and batches (0)"),
                Arg("--val-fraction", dest="val_fraction", type=float, default=None,
                    help="fraction of sentences/clips held out (0.15)"),
                Arg("--holdout", dest="tail_holdout", type=float, default=None,
                    help="hold out the last fraction of every clip instead of whole clips (an actor filmed in "
                         "one or a few long takes); `emodub eval a2e` measures those ends"),
                Arg("--params-source", dest="params_source", default=None,
                    choices=["auto", "tracking", "ground_truth"],
                    help="tracking/params.npz, ground_truth/params.npz or auto (tracking when present)"),
                Arg("--feature", default=None, choices=list(FEATURES),
                    help="audio feature (speech: a speech encoder learned from LibriSpeech voices, once its weights "
                         "are built; see the README)"),
                Arg("--phoneme-model", dest="phoneme_model", default=None,
                    help="local Wav2Vec2-CTC checkpoint folder (for --feature wav2vec2)"),
                Arg("--include-neck", dest="include_neck", action="store_true", help="also predict neck pose"),
                Arg("--speech-prior", dest="speech_prior", type=int, default=None,
                    help="add N neutral sentences of the embedded synthetic actor to the training data: how "
                         "mouths follow speech, for actors with little footage (procedural face model; default: "
                         "40 when the actor has under 20 s of real footage, else 0)"),
                Arg("--dropout", type=float, default=None,
                    help="dropout rate in the generator (0; see the README before raising it)"),
                Arg("--prior-voices", dest="speech_prior_voices", action="store_true",
                    help="speak each speech-prior sentence in another random voice"),
                Arg("--voice-warps", dest="voice_warps", default=None,
                    help="comma-separated vocal-tract warps: extra training copies of the footage heard as voices "
                         "with formants that many times as high (default 0.85,0.92,1.08,1.18; none: no copies)"),
                Arg("--no-utterance-norm", dest="no_utterance_norm", action="store_true",
                    help="do not standardise the audio features over each recording's speech (the speaker and "
                         "channel normalisation new models use without a speech prior)"),
                Arg("--checkpoint-every", dest="checkpoint_every", type=int, default=None),
                Arg("--restart", action="store_true", help="ignore an existing checkpoint and start over"),
                _DEVICE])
def run_train(ctx: JobContext) -> dict[str, Any]:
    from dataclasses import replace

    from core.expression.a2e import A2EConfig, a2e_feature_config
    from core.expression.a2e_data import A2EDataError
    from core.expression.a2e_train import train_a2e
    from core.workspace import LockBusy

    p = ctx.params
    overrides: dict[str, Any] = {}
    for key in ("iterations", "batch_size", "seq_len", "seed", "checkpoint_every", "speech_prior"):
        value = _int(ctx, key, None, minimum=0 if key in ("seed", "speech_prior") else 1)
        if value is not None:
            overrides[key] = value
    for key in ("lr", "lambda_gan", "lambda_vel", "val_fraction", "tail_holdout", "dropout"):
        if p.get(key) is not None:
            overrides[key] = float(p[key])
    for key in ("params_source", "feature", "phoneme_model"):
        if p.get(key):
            overrides[key] = p[key]
    if p.get("speech_prior") is None:
        auto = _auto_speech_prior(ctx, str(p["actor"]))
        if auto:
            overrides["speech_prior"] = auto
    if p.get("no_gan"):
        overrides["use_gan"] = False
    if p.get("include_neck"):
        overrides["include_neck"] = True
    if p.get("speech_prior_voices"):
        overrides["speech_prior_voices"] = True
    try:
        if p.get("voice_warps") is not None:
            text = str(p["voice_warps"]).strip().lower()
            overrides["voice_warps"] = [] if text in ("", "none") else [float(w) for w in text.split(",") if w.strip()]
        config = A2EConfig(**overrides)
        feature_config = a2e_feature_config(config.speech_prior)
        if p.get("no_utterance_norm"):
            feature_config = replace(feature_config, utterance_norm=False)
    except (TypeError, ValueError) as exc:
        raise JobFailed(f"bad a2e settings: {exc}", code="bad_params") from None
    name = str(p.get("name") or "a2e")
    ctx.plan([("load clips", 1.0), (f"train {name}", 9.0)])  # its bar's shares, roughly by time
    try:
        return train_a2e(ctx.workspace, str(p["actor"]), config, model_name=name, reporter=ctx,
                         restart=bool(p.get("restart")), device=ctx.device, feature_config=feature_config)
    except A2EDataError as exc:
        raise JobFailed(str(exc), hint="ingest and track the actor's clips first, or build a synthetic "
                        "corpus (core.synthetic.corpus.build_param_corpus)", code="no_data") from None
    except FeatureNotAvailable as exc:  # e.g. --feature speech before its weights were built
        raise JobFailed(str(exc), code="feature_not_available",
                        hint="train with --feature mfcc (the default), or provide what the message asks for") from None
    except FileNotFoundError as exc:
        raise JobFailed(str(exc), code="missing_file") from None
    except LockBusy as exc:
        raise JobFailed(str(exc), hint="wait for the other training of this model to finish or cancel it",
                        code="busy") from None


def _load_emotions(ctx: JobContext) -> Any:
    """The emotion input of a predict job: a curves file/object, a spec string, or neutral."""
    from core.expression.emotions import EmotionCurves

    curves = ctx.params.get("emotions")
    spec = ctx.params.get("emotion")
    if curves is not None and spec:
        raise JobFailed("give either --emotions (curves JSON) or --emotion (one spec), not both",
                        code="bad_params")
    try:
        if isinstance(curves, dict):
            return EmotionCurves.from_json(curves)
        if isinstance(curves, str) and curves:
            return EmotionCurves.load(curves)
    except ValueError as exc:
        raise JobFailed(f"bad emotion curves: {exc}", hint="see the JSON form in core/expression/emotions.py",
                        code="bad_emotions") from None
    return spec or None


@job_kind("a2e.predict", help="predict per-frame expressions and jaw pose from audio with an actor's a2e model",
          args=[_ACTOR,
                Arg("--audio", required=True, help="audio file (WAV/FLAC/OGG, any rate, mono or stereo)"),
                Arg("--out", required=True, help="output .npz (FaceParams arrays + emotion, fps, expr_names)"),
                Arg("--emotions", default=None, spec_types=(str, dict),
                    help="emotion curves JSON file (keyframes or per_frame)"),
                Arg("--emotion", default=None, help="one emotion for the whole clip, e.g. happy:0.66"),
                Arg("--clamp", action="store_true",
                    help="clip emotion intensities outside [0, 1] instead of refusing them"),
                Arg("--name", default="a2e", help="model name (default a2e)"),
                Arg("--frames", type=int, default=None, help="number of output frames (default: audio length)"),
                Arg("--fps", type=float, default=None, bounds=FRAME_RATE,
                    help="output frame rate (default: the model's)"),
                Arg("--no-smooth", dest="no_smooth", action="store_true",
                    help="skip Savitzky-Golay smoothing (window 5, order 2)"),
                Arg("--allow-silence", dest="allow_silence", action="store_true",
                    help="accept an audio file that is silent throughout (predicts a closed mouth)"),
                _DEVICE])
def run_predict(ctx: JobContext) -> dict[str, Any]:
    import numpy as np

    from core.audio.io import AudioError, audio_stats, load_audio
    from core.expression.a2e import A2EModel, emotion_frames

    p = ctx.params
    ws = ctx.workspace
    actor, name = str(p["actor"]), str(p.get("name") or "a2e")
    model_dir = ws.model_dir(actor, name)
    try:
        model = A2EModel.load(model_dir, ctx.device)
    except FileNotFoundError:
        raise JobFailed(f"actor {actor!r} has no trained a2e model {name!r}",
                        hint=f"train it: emodub train a2e --workspace {ws.root} --actor {actor}",
                        code="no_model") from None
    try:
        wave, sr = load_audio(p["audio"], model.feature_config.sample_rate)
    except AudioError as exc:
        raise JobFailed(str(exc), code="bad_audio") from None
    stats = audio_stats(wave, sr)
    if stats.silent and not p.get("allow_silence"):
        raise JobFailed(f"audio file {p['audio']} is silent (speech level {stats.active_rms_dbfs:.0f} dBFS): "
                        "there is nothing to lip-sync",
                        hint="check the file/track; pass --allow-silence to predict a closed mouth anyway",
                        code="silent_audio")
    if stats.clipped_fraction > 0.01:
        ctx.log(f"{stats.clipped_fraction:.1%} of the samples are clipped; the prediction may be less "
                "accurate (re-record or lower the gain)", "warning")
    frames = _int(ctx, "frames", None)
    emotions = _load_emotions(ctx)
    try:  # refuse a bad emotion spec before any audio work
        emotion_frames(emotions, 1, model.fps, clamp=bool(p.get("clamp")))
    except ValueError as exc:
        raise JobFailed(str(exc), hint=_EMOTION_HINT, code="bad_input") from None
    ctx.progress("a2e predict", 0, 1, f"{stats.duration_s:.2f} s of audio")
    try:
        pred = model.predict(wave, sr, emotions, n_frames=frames, fps=p.get("fps"),
                             smooth=not p.get("no_smooth"), clamp=bool(p.get("clamp")))
    except FeatureNotAvailable as exc:
        raise JobFailed(str(exc), code="feature_not_available") from None
    except ValueError as exc:
        raise JobFailed(str(exc), hint=_EMOTION_HINT, code="bad_input") from None
    out = pred.save(Path(p["out"]).expanduser(), model.defaults)
    ctx.artifact(out, "params")
    ctx.progress("a2e predict", 1, 1, f"{pred.n_frames} frames")
    jaw = pred.jaw_pose[:, 0]
    return {"params": str(out), "frames": pred.n_frames, "fps": pred.fps, "duration_s": stats.duration_s,
            "model": name, "smoothed": not p.get("no_smooth"),
            "jaw_open_mean_rad": float(np.mean(jaw)), "jaw_open_max_rad": float(np.max(jaw))}


@job_kind("eval.a2e", help="evaluate an actor's a2e model on its held-out clips (jaw correlation, mouth "
                           "error, emotion control, GAN ablation)",
          args=[_ACTOR,
                Arg("--name", default="a2e", help="model to evaluate (default a2e)"),
                Arg("--ablation-name", dest="ablation_name", default="a2e_l1",
                    help="L1-only model compared in the ablation when it exists (default a2e_l1)"),
                Arg("--out", default=None, help="report JSON (default: <model dir>/eval.json)"),
                _DEVICE])
def run_eval(ctx: JobContext) -> dict[str, Any]:
    from core.expression.a2e_data import A2EDataError
    from core.expression.a2e_eval import evaluate_a2e
    from core.workspace import atomic_write_json

    p = ctx.params
    ws = ctx.workspace
    actor, name = str(p["actor"]), str(p.get("name") or "a2e")
    try:
        result = evaluate_a2e(ws, actor, name, p.get("ablation_name"), device=ctx.device, reporter=ctx)
    except FileNotFoundError:
        raise JobFailed(f"actor {actor!r} has no trained a2e model {name!r}",
                        hint=f"train it: emodub train a2e --workspace {ws.root} --actor {actor}",
                        code="no_model") from None
    except (A2EDataError, ValueError) as exc:
        raise JobFailed(str(exc), code="no_data") from None
    out = Path(p.get("out") or ws.model_dir(actor, name) / "eval.json")
    atomic_write_json(out, result)
    ctx.artifact(out, "report")
    return {**result, "report": str(out)}
