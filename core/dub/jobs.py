"""Job kinds of the main workflow: ``dub``, and the composite ``shot.prepare`` and ``train.actor``.

``dub`` checks what the user gave before it loads any model: the emotion spec or curves, the render
name, the shot, and the audio (readable, not empty, finite, long enough for the offset), so that a
mistake is reported at once with its own error code rather than after seconds of loading.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from core.delivery.formats import FORMATS, MATTES
from core.expression.emotion_prior import EMOTION_SOURCES
from core.jobs import protocol as P
from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import FRAME_RATE, NON_NEGATIVE, POSITIVE, Arg, Bounds, job_kind

# Rough costs on a 2-core CPU (seconds; `python build.py bench progress` measures them), only to share a composite
# job's bar among its steps: the bar and its ETA hold as long as the ratios do (the ETA scales with the pace so far).
SECONDS_PER_FRAME = {"ingest": 0.1, "landmarks": 0.05, "track": 0.5}
SECONDS_PER_ITERATION = {"a2e": 0.05, "renderer": 0.45}

_CURVES_HINT = "see the JSON form in core/expression/emotions.py, or give a spec such as happy:0.5,sad:0.2"
_AUDIO_HINT = "give a WAV, FLAC or OGG file with sound (convert with: ffmpeg -i INPUT -ar 48000 out.wav)"


def _emotions_param(value: Any) -> Any:
    """The ``emotions`` param: a curves JSON object, a path to one, a spec string such as
    ``happy:0.5,sad:0.2`` (or a mapping / 7 numbers), or None (neutral). Curves come back as
    :class:`~core.expression.emotions.EmotionCurves`, a spec as it was given once it is known valid.

    Raises:
        JobFailed: ``bad_params`` for a missing curves file or an invalid spec or curves object,
            ``bad_input`` for a curves file that cannot be read or is not valid curves JSON.
    """
    from core.expression.emotions import EMOTION_SPEC_HINT, EmotionCurves, emotion_vector

    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower().endswith(".json"):
        path = Path(value.strip()).expanduser()
        if not path.is_file():
            raise JobFailed(f"emotion curves file {path} does not exist", code=P.BAD_PARAMS,
                            hint="pass --emotions with a curves JSON file, or a spec such as happy:0.5")
        try:
            return EmotionCurves.load(path)
        except (ValueError, OSError) as exc:
            raise JobFailed(f"cannot use the emotion curves file: {exc}", code=P.BAD_INPUT,
                            hint=_CURVES_HINT) from None
    if isinstance(value, dict) and "format" in value:
        try:
            return EmotionCurves.from_json(value)
        except ValueError as exc:
            raise JobFailed(f"invalid emotion curves: {exc}", code=P.BAD_PARAMS, hint=_CURVES_HINT) from None
    try:
        emotion_vector(value)
    except ValueError as exc:
        raise JobFailed(f"invalid emotion spec: {exc}", code=P.BAD_PARAMS, hint=EMOTION_SPEC_HINT) from None
    return value


def _audio_seconds(path: str, offset_s: float, duration_s: float | None) -> float:
    """Seconds of the dub audio after ``offset_s`` (and at most ``duration_s``).

    Raises:
        JobFailed: ``bad_input`` for a file that is missing, unreadable, empty or holds NaN samples;
            ``bad_params`` for an offset at or past its end.
    """
    from core.audio.io import AudioError, load_audio

    try:
        wave, sr = load_audio(path)
    except AudioError as exc:
        raise JobFailed(f"cannot use the dub audio: {exc}", code=P.BAD_INPUT, hint=_AUDIO_HINT) from None
    seconds = wave.shape[0] / sr
    if offset_s >= seconds:
        raise JobFailed(f"the audio offset ({offset_s:g} s) is at or past the end of the dub audio "
                        f"({seconds:.2f} s)", code=P.BAD_PARAMS,
                        hint="lower --audio-offset (it is where the dub starts in the audio file)")
    return min(seconds - offset_s, duration_s if duration_s is not None else math.inf)


# What a dub is made of: shared by ``dub`` and ``preview`` (a preview is the same dub, a few frames of it).
_DUB_INPUT_ARGS = (
    Arg("--actor", required=True), Arg("--shot", required=True),
    Arg("--audio", required=True, help="the new audio (wav/flac/ogg, any rate)"),
    Arg("--emotions", default=None, spec_types=(str, dict, list),
        help="emotion curves JSON file, or a constant spec such as happy:0.6 (default neutral)"),
    Arg("--format", default="h264", choices=list(FORMATS), dest="format",
        help="h264: the review file (default); prores422hq / prores4444: ProRes MOV with PCM audio; "
             "png16 / exr: 16-bit PNG or OpenEXR image sequence, every plate pixel outside the matte "
             "bit-exact. The H.264 review file is always written too"),
    Arg("--matte", default="none", choices=list(MATTES),
        help="write the paste matte (the feathered face region per frame): as a 16-bit PNG sequence "
             "(sequence), or as the alpha channel of a prores4444 / png16 / exr output (alpha)"),
    Arg("--face", type=int, default=None, bounds=NON_NEGATIVE,
        help="a shot with several faces: the id of the face to dub (the error without it lists them)"),
    Arg("--audio-offset", type=float, default=0.0, dest="audio_offset_s", bounds=NON_NEGATIVE,
        help="seconds of the audio file skipped before the dub starts"),
    Arg("--audio-duration", type=float, default=None, dest="audio_duration_s", bounds=POSITIVE,
        help="seconds of audio used (default: to the end of the file)"),
    Arg("--length", choices=["audio", "shot"], default="audio"),
    Arg("--end", choices=["loop", "hold"], default="loop",
        help="when the audio outlasts the shot: loop its frames or hold the last"),
    Arg("--renderer", default=None,
        help="renderer variant (default: the actor's best trained one; `emodub renderers` lists them)"),
    Arg("--renderer-model", default=None, dest="renderer_model",
        help="the actor's trained renderer model to use by name (default: the best of --renderer)"),
    Arg("--a2e-model", default="a2e", dest="a2e_model", help="the actor's a2e model (default a2e)"),
    Arg("--emotion-source", default="auto", choices=list(EMOTION_SOURCES), dest="emotion_source",
        help="auto: each emotion from the actor's labelled takes where filmed, else the face model's generic "
             "expression; prior: the generic expression for every emotion"),
    Arg("--paste-region", default="face", choices=["face", "head"], dest="paste_region",
        help="replace only the face (default; hair, ears, neck stay the plate's) or the whole head"),
    Arg("--device", default="auto", choices=["auto", "cpu", "cuda"]))


def _dub_inputs(ctx: JobContext) -> tuple[Any, Any]:
    """Check what a ``dub`` or ``preview`` job was given, before any model loads; ``(config, emotions)``."""
    from core.consent import ConsentError, require_consent
    from core.delivery.formats import check_matte, get_format
    from core.expression.emotions import EmotionCurves
    from core.landmarks.faces import FaceChoiceError, face_folder
    from core.renderers.jobs import choose_model
    from core.renderers.spec import UnknownRenderer, get_variant
    from core.workspace import validate_name

    from .pipeline import DubConfig

    p = ctx.params
    if p["actor"] not in ctx.workspace.read_manifest().get("actors", {}):
        raise JobFailed(f"no actor {p['actor']!r} in {ctx.workspace.root}", code="missing_input",
                        hint="check the name (`emodub workspace check` lists the actors), or ingest and train the "
                             "actor first")
    # Consent first: no model of a person dubs without a record of their consent.
    try:
        consent = require_consent(ctx.workspace, p["actor"])
    except ConsentError as exc:
        raise JobFailed(exc.message, code=exc.code, hint=exc.hint) from None
    ctx.log(f"actor {p['actor']!r}: consent {consent['id']} ({consent['consented_by']}, {consent['date']}, "
            f"scope: {consent['scope']})")
    fmt = get_format(p.get("format") or "h264")
    try:
        check_matte(fmt, p.get("matte") or "none")
    except ValueError as exc:
        raise JobFailed(str(exc), code=P.BAD_PARAMS) from None
    if ctx.spec.kind == "dub" and p.get("out") and not fmt.sequence and Path(p["out"]).suffix.lower() not in (
            (".mp4", ".mov", ".mkv", ".m4v") if fmt.name == "h264" else (".mov",)):
        raise JobFailed(f"--out {p['out']} does not suit --format {fmt.name}", code=P.BAD_PARAMS,
                        hint="give an .mp4 for h264, a .mov for ProRes, a folder for an image sequence")
    if p.get("renderer"):
        try:
            get_variant(str(p["renderer"]))
        except UnknownRenderer as exc:
            raise JobFailed(str(exc), code="bad_params", hint="`emodub renderers` lists the variants") from None
    if p.get("name"):
        validate_name(p["name"], "render name")
    renderer_model = p.get("renderer_model") or choose_model(ctx, p["actor"], p.get("renderer"))
    ctx.log(f"rendering with {renderer_model}")
    emotions = _emotions_param(p.get("emotions"))
    if isinstance(emotions, EmotionCurves) and emotions.frame_start:
        ctx.log(f"emotion curves start at frame {emotions.frame_start}: sampled from there")
    ws = ctx.workspace
    shot = ws.shot(p["shot"])
    try:
        face_folder(ws.shot_dir(p["shot"]), p.get("face"))
    except FaceChoiceError as exc:
        raise JobFailed(exc.message, code=exc.code, hint=exc.hint) from None
    audio_offset_s = float(p.get("audio_offset_s") or 0.0)
    audio_s = _audio_seconds(p["audio"], audio_offset_s, p.get("audio_duration_s"))
    if isinstance(emotions, EmotionCurves) and shot.get("frames") and shot.get("fps"):
        from core.io.ffmpeg import fps_of

        fps = float(fps_of(shot))
        n_out = int(shot["frames"]) if p.get("length") == "shot" else max(1, math.ceil(audio_s * fps - 1e-6))
        warning = emotions.outside_warning(n_out, fps)
        if warning:
            ctx.log(warning, "warning")
    try:
        config = DubConfig(length=p.get("length", "audio"), end=p.get("end", "loop"),
                           renderer_name=renderer_model, a2e_name=p.get("a2e_model") or "a2e",
                           paste_region=p.get("paste_region") or "face", format=fmt.name,
                           emotion_source=p.get("emotion_source") or "auto",
                           matte=p.get("matte") or "none")
    except ValueError as exc:
        raise JobFailed(str(exc), code="bad_params") from None
    return config, emotions


@job_kind("dub", help="dub a tracked shot with new audio and keyframed emotions",
          args=[*_DUB_INPUT_ARGS,
                Arg("--out", default=None,
                    help="the output: an .mp4 (h264), a .mov (ProRes) or a folder (image sequences); default "
                         "renders/<name>/dubbed.mp4, dubbed.mov or delivery/"),
                Arg("--name", default=None, help="render name in the workspace")])
def run_dub(ctx: JobContext) -> dict[str, Any]:
    from core.consent import ConsentError
    from core.delivery.formats import get_format
    from core.landmarks.faces import FaceChoiceError

    from .pipeline import check_render_name, dub, unique_render_name

    p = ctx.params
    config, emotions = _dub_inputs(ctx)
    fmt = get_format(config.format)
    ws = ctx.workspace
    audio_offset_s = float(p.get("audio_offset_s") or 0.0)
    render_name = p.get("name") or unique_render_name(ws, p["shot"])
    check_render_name(ws, render_name, p["shot"])
    # One dub writes one render folder: dubs of the same shot (its languages, its emotion passes) run side by side.
    ctx.plan([("predict", 1.0), ("render", 4.0)])  # loading the models and predicting, then rendering + encoding
    with ws.lock(f"render/{render_name}"):
        try:
            result = dub(ws, p["actor"], p["shot"], Path(p["audio"]), emotions, out=p.get("out"),
                         audio_offset_s=audio_offset_s,
                         audio_duration_s=p.get("audio_duration_s"), config=config, device=ctx.device,
                         progress=lambda stage, done, total, msg: ctx.progress(stage, done, total, msg),
                         render_name=render_name, face=p.get("face"))
        except ConsentError as exc:
            raise JobFailed(exc.message, code=exc.code, hint=exc.hint) from None
        except FaceChoiceError as exc:
            raise JobFailed(exc.message, code=exc.code, hint=exc.hint) from None
        except FileNotFoundError as exc:
            hint = ("prepare the shot (`emodub shot prepare`) and train the actor (`emodub train actor`) first"
                    if p.get("face") is None else
                    f"track that face first: emodub track -w {ws.root} --shot {p['shot']} --face {p['face']}")
            raise JobFailed(str(exc), code="missing_input", hint=hint) from None
    for warning in result.get("warnings", []):
        ctx.log(warning, "warning")
    ctx.artifact(result["video"], "video")
    if result["delivery"] != result["video"]:
        ctx.artifact(result["delivery"], "sequence" if fmt.sequence else "video")
    if result.get("matte"):
        ctx.artifact(result["matte"], "sequence")
    ctx.artifact(result["report"], "report")
    return result


@job_kind("preview", help="render a few frames of a dub as the dub renders them (no encoding, no render recorded); "
                            "fast in a warm engine (`emodub worker --serve`)",
          args=[*_DUB_INPUT_ARGS,
                Arg("--frame", type=int, default=0, bounds=NON_NEGATIVE, help="the first output frame to preview"),
                Arg("--count", type=int, default=1, bounds=Bounds(1, 250), help="frames from --frame on"),
                Arg("--out", default=None, help="folder for the PNGs (default: previews/<shot>/ in the workspace)")])
def run_preview(ctx: JobContext) -> dict[str, Any]:
    import time

    from core.workspace import atomic_path

    from .preview import preview_frames

    p = ctx.params
    t0 = time.perf_counter()
    config, emotions = _dub_inputs(ctx)
    ws = ctx.workspace
    first, count = int(p.get("frame") or 0), int(p.get("count") or 1)
    try:
        result = preview_frames(ws, p["actor"], p["shot"], Path(p["audio"]), emotions, range(first, first + count),
                                config, ctx.device, float(p.get("audio_offset_s") or 0.0), p.get("audio_duration_s"),
                                p.get("face"), lambda stage, done, total, msg: ctx.progress(stage, done, total, msg))
    except ValueError as exc:
        raise JobFailed(str(exc), code=P.BAD_PARAMS, hint="preview a frame within the dub (--frame)") from None
    import imageio.v3 as iio

    folder = Path(p["out"]).expanduser() if p.get("out") else ws.root / "previews" / p["shot"]
    paths = []
    for index, frame in zip(result.indices, result.frames, strict=True):
        path = folder / f"frame_{index:06d}.png"
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, frame, extension=".png")
        paths.append(str(path))
        ctx.artifact(path, "image")
    return {"frames": paths, "indices": result.indices, "dub_frames": result.n_out, "warm": result.warm,
            "seconds": time.perf_counter() - t0, "emotion_sources": result.emotion_sources}


@job_kind("shot.prepare", help="ingest and track a shot to be dubbed",
          args=[Arg("video", help="the shot's video file"),
                Arg("--shot", default=None, help="the shot's name (default: the file's stem and a hash of its path, "
                                                 "the name the app and the Blender add-on give it)"),
                Arg("--fps", type=float, default=None, bounds=FRAME_RATE,
                    help="resample the working copy to this rate (default: the shot keeps its own rate and frames, "
                         "so the dub lines up frame for frame with the edit)"),
                Arg("--max-faces", type=int, default=1, dest="max_faces", bounds=Bounds(1, 8),
                    help="faces to look for (default 1); above 1 each face gets an id, --face picks the one to track"),
                Arg("--face", type=int, default=None, bounds=NON_NEGATIVE,
                    help="the face to track in a shot with several (a shot already ingested is not ingested again)"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"], help="tracking device")])
def run_prepare_shot(ctx: JobContext) -> dict[str, Any]:
    from core.workspace import shot_name_for

    p = ctx.params
    p["shot"] = p.get("shot") or shot_name_for(p["video"])
    existing = ctx.workspace.read_manifest().get("shots", {}).get(p["shot"])
    same_source = existing is not None and existing.get("source") == str(Path(p["video"]).expanduser().resolve())
    if p.get("face") is not None and same_source:  # choosing the face of a shot already ingested
        ctx.log(f"shot {p['shot']!r} is already ingested from {p['video']}; tracking face {p['face']}")
        ingest: dict[str, Any] = {"shot": p["shot"], "skipped": True}
    else:
        ingest_params: dict[str, Any] = {"video": p["video"], "shot": p["shot"]}
        if p.get("fps") is not None:
            ingest_params["fps"] = p["fps"]
        if (p.get("max_faces") or 1) > 1:
            ingest_params["max_faces"] = int(p["max_faces"])
        ctx.plan([("ingest", SECONDS_PER_FRAME["ingest"]), ("track", SECONDS_PER_FRAME["track"])])
        ingest = ctx.run_kind("ingest", ingest_params)
    track_params: dict[str, Any] = {"shot": p["shot"], "device": p.get("device") or "auto"}
    if p.get("face") is not None:
        track_params["face"] = int(p["face"])
    track = ctx.run_kind("track", track_params)
    return {"ingest": ingest, "track": track}


@job_kind("train.actor", help="train an actor's a2e model, then its renderer (tracking the clips that need it first)",
          args=[Arg("--actor", required=True),
                Arg("--renderer", default=None, help="renderer variant to train (default: `emodub renderers` says)"),
                Arg("--preset", default=None, help="the renderer variant's preset"),
                Arg("--a2e-iterations", type=int, default=None, dest="a2e_iterations"),
                Arg("--renderer-iterations", type=int, default=None, dest="renderer_iterations"),
                Arg("--track-iterations", type=float, default=None, dest="track_iterations", bounds=NON_NEGATIVE,
                    help="scale of the tracking iterations of clips not tracked yet (default 1; less: faster, "
                         "coarser)"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_train_actor(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    common = {"actor": p["actor"], "device": p.get("device", "auto")}
    record = ctx.workspace.read_manifest().get("actors", {}).get(p["actor"])
    if record is None:
        raise JobFailed(f"no actor {p['actor']!r} in {ctx.workspace.root}", code="missing_input",
                        hint="import the actor's footage first")
    clips = record.get("clips") or {}
    if not clips:
        raise JobFailed(f"actor {p['actor']!r} has no footage yet", code="missing_input",
                        hint="import the actor's footage (a clip with their face and voice) first")
    # Footage that was only imported is made ready here: one job (one bar) from import to trained models.
    untracked = {clip: clip_record for clip, clip_record in sorted(clips.items())
                 if not (ctx.workspace.clip_dir(p["actor"], clip) / "tracking" / "params.npz").is_file()}
    needs_landmarks = [clip for clip, clip_record in untracked.items()
                       if not (clip_record.get("stages") or {}).get("landmarks")]
    track_scale = float(p["track_iterations"]) if p.get("track_iterations") is not None else 1.0
    steps: list[tuple[str, float]] = []
    for clip, clip_record in untracked.items():
        frames = float(clip_record.get("frames") or 250)
        if clip in needs_landmarks:
            steps.append((f"landmarks {clip}", frames * SECONDS_PER_FRAME["landmarks"]))
        steps.append((f"track {clip}", frames * SECONDS_PER_FRAME["track"] * max(track_scale, 0.05)))
    from core.expression.a2e import A2EConfig
    from core.renderers.train import TrainConfig

    a2e_iterations, renderer_iterations = p.get("a2e_iterations"), p.get("renderer_iterations")
    steps += [("train.a2e", (a2e_iterations or A2EConfig.iterations) * SECONDS_PER_ITERATION["a2e"]),
              ("train.renderer", (renderer_iterations or TrainConfig.iterations) * SECONDS_PER_ITERATION["renderer"])]
    ctx.plan(steps)
    for clip in untracked:
        if clip in needs_landmarks:
            ctx.run_kind("landmarks", {"actor": p["actor"], "clip": clip}, step=f"landmarks {clip}")
        track_params = {"actor": p["actor"], "clip": clip, "device": p.get("device", "auto")}
        if p.get("track_iterations") is not None:
            track_params["iterations"] = track_scale
        ctx.run_kind("track", track_params, step=f"track {clip}")
    tracked = list(untracked)
    if tracked:
        ctx.log(f"tracked {len(tracked)} clip(s) first: {', '.join(tracked)}")
    a2e = ctx.run_kind("train.a2e", {**common, **({"iterations": a2e_iterations} if a2e_iterations else {})})
    renderer_params = {**common, **({"iterations": renderer_iterations} if renderer_iterations else {})}
    for key in ("renderer", "preset"):
        if p.get(key):
            renderer_params[key] = p[key]
    renderer = ctx.run_kind("train.renderer", renderer_params)
    return {"a2e": a2e, "renderer": renderer, "tracked_first": tracked}
