"""Job kinds of the main workflow: ``dub``, and the composite ``shot.prepare`` and ``train.actor``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import Arg, job_kind


def _emotions_param(value: Any) -> Any:
    """The ``emotions`` param: a curves JSON object, a path to one, a spec string, or None (neutral)."""
    if isinstance(value, str) and value.strip().endswith(".json"):
        path = Path(value)
        if not path.exists():
            raise JobFailed(f"emotion curves file {path} does not exist", code="bad_params",
                            hint="pass --emotions with a curves JSON file, or a spec such as happy:0.5")
        value = json.loads(path.read_text())
    if isinstance(value, dict) and value.get("format") == "emodub-emotion-curves":
        from core.expression.emotions import EmotionCurves

        try:
            return EmotionCurves.from_json(value)
        except ValueError as exc:
            raise JobFailed(f"invalid emotion curves: {exc}", code="bad_params",
                            hint="see core/expression/emotions.py for the JSON form") from None
    return value


@job_kind("dub", help="dub a tracked shot with new audio and keyframed emotions",
          args=[Arg("--actor", required=True), Arg("--shot", required=True),
                Arg("--audio", required=True, help="the new audio (wav/flac/ogg, any rate)"),
                Arg("--emotions", default=None,
                    help="emotion curves JSON file, or a constant spec such as happy:0.6 (default neutral)"),
                Arg("--out", default=None, help="output mp4 (default: renders/<name>/dubbed.mp4)"),
                Arg("--audio-offset", type=float, default=0.0, dest="audio_offset_s"),
                Arg("--audio-duration", type=float, default=None, dest="audio_duration_s"),
                Arg("--length", choices=["audio", "shot"], default="audio"),
                Arg("--end", choices=["loop", "hold"], default="loop",
                    help="when the audio outlasts the shot: loop its frames or hold the last"),
                Arg("--renderer", default=None,
                    help="renderer variant (default: the actor's best trained one; `emodub renderers` lists them)"),
                Arg("--name", default=None, help="render name in the workspace"),
                Arg("--renderer-model", default=None, dest="renderer_model",
                    help="the actor's trained renderer model to use by name (default: the best of --renderer)"),
                Arg("--a2e-model", default="a2e", dest="a2e_model", help="the actor's a2e model (default a2e)"),
                Arg("--paste-region", default="face", choices=["face", "head"], dest="paste_region",
                    help="replace only the face (default; hair, ears, neck stay the plate's) or the whole head"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_dub(ctx: JobContext) -> dict[str, Any]:
    from core.expression.emotions import EmotionCurves
    from core.renderers.jobs import choose_model
    from core.renderers.spec import UnknownRenderer, get_variant

    from .pipeline import DubConfig, dub

    p = ctx.params
    if p.get("renderer"):
        try:
            get_variant(str(p["renderer"]))
        except UnknownRenderer as exc:
            raise JobFailed(str(exc), code="bad_params", hint="`emodub renderers` lists the variants") from None
    renderer_model = p.get("renderer_model") or choose_model(ctx, p["actor"], p.get("renderer"))
    ctx.log(f"rendering with {renderer_model}")
    emotions = _emotions_param(p.get("emotions"))
    if isinstance(emotions, EmotionCurves) and emotions.frame_start:
        ctx.log(f"emotion curves start at frame {emotions.frame_start}: sampled from there")
    ws = ctx.workspace
    try:
        config = DubConfig(length=p.get("length", "audio"), end=p.get("end", "loop"),
                           renderer_name=renderer_model, a2e_name=p.get("a2e_model") or "a2e",
                           paste_region=p.get("paste_region") or "face")
    except ValueError as exc:
        raise JobFailed(str(exc), code="bad_params") from None
    with ws.lock(f"dub/{p['shot']}"):
        try:
            result = dub(ws, p["actor"], p["shot"], Path(p["audio"]), emotions, out=p.get("out"),
                         audio_offset_s=float(p.get("audio_offset_s") or 0.0),
                         audio_duration_s=p.get("audio_duration_s"), config=config, device=ctx.device,
                         progress=lambda stage, done, total, msg: ctx.progress(stage, done, total, msg),
                         render_name=p.get("name"))
        except FileNotFoundError as exc:
            raise JobFailed(str(exc), code="missing_input",
                            hint="prepare the shot (`emodub shot prepare`) and train the actor "
                                 "(`emodub train actor`) first") from None
    ctx.artifact(result["video"], "video")
    ctx.artifact(result["report"], "report")
    return result


@job_kind("shot.prepare", help="ingest and track a shot to be dubbed",
          args=[Arg("video", help="the shot's video file"), Arg("--shot", required=True),
                Arg("--fps", type=float, default=25.0)])
def run_prepare_shot(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    ingest = ctx.run_kind("ingest", {"video": p["video"], "shot": p["shot"], "fps": p.get("fps", 25.0)})
    track = ctx.run_kind("track", {"shot": p["shot"]})
    return {"ingest": ingest, "track": track}


@job_kind("train.actor", help="train an actor's a2e model, then its renderer",
          args=[Arg("--actor", required=True),
                Arg("--renderer", default=None, help="renderer variant to train (default neural_texture)"),
                Arg("--preset", default=None, help="the renderer variant's preset"),
                Arg("--a2e-iterations", type=int, default=None, dest="a2e_iterations"),
                Arg("--renderer-iterations", type=int, default=None, dest="renderer_iterations"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_train_actor(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    common = {"actor": p["actor"], "device": p.get("device", "auto")}
    a2e = ctx.run_kind("train.a2e", {**common, **({"iterations": p["a2e_iterations"]}
                                                  if p.get("a2e_iterations") else {})})
    renderer_params = {**common, **({"iterations": p["renderer_iterations"]} if p.get("renderer_iterations") else {})}
    for key in ("renderer", "preset"):
        if p.get(key):
            renderer_params[key] = p[key]
    renderer = ctx.run_kind("train.renderer", renderer_params)
    return {"a2e": a2e, "renderer": renderer}
