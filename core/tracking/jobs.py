"""Job kinds of face tracking: ``track`` and ``eval.tracking``.

CLI::

    emodub track --workspace W --actor A [--clip C]     # one clip, or every clip of the actor in turn
    emodub track --workspace W --shot S [--actor A]     # a shot to dub (reusing A's identity if given)
    emodub eval tracking --workspace W --actor A --clip C [--json]

Tracking is resumable: a cancelled or killed run continues where it stopped when started again (the same
settings); ``--restart`` starts over. Top-level imports stay light (torch is imported inside the functions).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import NON_NEGATIVE, Arg, job_kind

_DEVICE = Arg("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device")
_TARGET = [Arg("--actor", default=None, help="actor of the clip(s)"),
           Arg("--clip", default=None, help="clip name (default with --actor alone: every clip of the actor)"),
           Arg("--shot", default=None, help="or: a shot to be dubbed"),
           Arg("--face", type=int, default=None, bounds=NON_NEGATIVE,
               help="a shot with several faces: the id of the face to track (the error without it lists them)")]


class _Labelled:
    """Forwards a job context's reporting with the clip's name in every progress message."""

    def __init__(self, ctx: JobContext, label: str) -> None:
        self.ctx, self.label = ctx, label

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        self.ctx.progress(stage, done, total, f"{self.label}: {message}" if message else self.label)

    def log(self, message: str, level: str = "info") -> None:
        self.ctx.log(f"{self.label}: {message}", level)

    def check_cancelled(self) -> None:
        self.ctx.check_cancelled()


def _targets(ctx: JobContext) -> list[tuple[str, Path, dict[str, Any], str | None, str | None, str | None]]:
    """(label, folder, record, actor, clip, shot) of each folder to process."""
    from core.workspace import WorkspaceError

    p = ctx.params
    ws = ctx.workspace
    actor, clip, shot = p.get("actor"), p.get("clip"), p.get("shot")
    try:
        if shot:
            from core.landmarks.faces import FaceChoiceError, face_folder

            if clip:
                raise JobFailed("give --clip (with --actor) or --shot, not both", code="bad_params")
            record = ws.shot(shot)
            try:
                folder = face_folder(ws.shot_dir(shot), p.get("face"))
            except FaceChoiceError as exc:
                raise JobFailed(exc.message, hint=exc.hint, code=exc.code) from None
            label = f"shot {shot}" + (f" face {p['face']}" if folder != ws.shot_dir(shot) else "")
            return [(label, folder, record, actor, None, shot)]
        if p.get("face") is not None:
            raise JobFailed("--face chooses a face of a shot (--shot)", code="bad_params")
        if not actor:
            raise JobFailed("give --actor [--clip], or --shot", code="bad_params")
        if clip:
            return [(f"clip {actor}/{clip}", ws.clip_dir(actor, clip), ws.clip(actor, clip), actor, clip, None)]
        clips = ws.read_manifest()["actors"].get(actor, {}).get("clips", {})
    except WorkspaceError as exc:
        raise JobFailed(str(exc), hint=exc.hint, code="not_found") from None
    if not clips:
        raise JobFailed(f"actor {actor!r} has no clips", hint="ingest footage first: emodub ingest VIDEO --actor A",
                        code="not_found")
    out = []
    for name in sorted(clips):
        folder = ws.clip_dir(actor, name)
        if (folder / "landmarks.npz").is_file():
            out.append((f"clip {actor}/{name}", folder, clips[name], actor, name, None))
        else:
            ctx.log(f"clip {actor}/{name} has no landmarks (no video?); skipped", "warning")
    if not out:
        raise JobFailed(f"none of actor {actor!r}'s clips has landmarks to track",
                        hint="ingest the footage (landmarks are detected during ingest)", code="no_landmarks")
    return out


def _identity(ws: Any, actor: str | None, exclude: Path) -> dict[str, Any] | None:
    """Shared values of the first other tracked clip of ``actor`` (sorted by name), if any."""
    from core.tracking.pipeline import read_identity

    if not actor:
        return None
    clips = ws.read_manifest()["actors"].get(actor, {}).get("clips", {})
    for name in sorted(clips):
        folder = ws.clip_dir(actor, name)
        if folder.resolve() == exclude.resolve():
            continue
        identity = read_identity(folder)
        if identity is not None:
            return identity
    return None


@job_kind("track", help="fit the face model to ingested clips or a shot (landmark + photometric tracking)",
          args=[*_TARGET,
                Arg("--model", default="procedural", help="morphable model: procedural (default), flame, ict"),
                Arg("--model-path", dest="model_path", default=None, help="FLAME file / ICT folder"),
                Arg("--model-resolution", dest="model_resolution", default="default", choices=["default", "small"],
                    help="procedural head resolution (small: ~1,700 vertices, for quick runs)"),
                Arg("--iterations", type=float, default=1.0,
                    help="scale of every stage's iteration count (default 1; 0.25 for a quick look)"),
                Arg("--photometric", action=argparse.BooleanOptionalAction, default=True,
                    help="run the photometric stages (default on; off = landmark stages only)"),
                Arg("--overlay", action=argparse.BooleanOptionalAction, default=True,
                    help="write tracking/overlay.mp4 (default on)"),
                Arg("--share-identity", dest="share_identity", action=argparse.BooleanOptionalAction,
                    default=True, help="reuse the shape/lighting/albedo of the actor's tracked clips"),
                Arg("--restart", action="store_true", help="ignore a checkpoint and start over"),
                _DEVICE])
def run_track(ctx: JobContext) -> dict[str, Any]:
    from dataclasses import replace

    from core.tracking.config import TrackerConfig
    from core.tracking.pipeline import track_folder
    from core.workspace import LockBusy

    p = ctx.params
    ws = ctx.workspace
    try:
        scale = float(p.get("iterations") if p.get("iterations") is not None else 1.0)
    except (TypeError, ValueError):
        raise JobFailed(f"--iterations must be a number, got {p.get('iterations')!r}", code="bad_params") from None
    if scale < 0:
        raise JobFailed("--iterations must be >= 0", code="bad_params")
    config = TrackerConfig(model=str(p.get("model") or "procedural"), model_path=p.get("model_path"),
                           model_resolution=str(p.get("model_resolution") or "default"),
                           iteration_scale=scale, overlay=bool(p.get("overlay", True)),
                           share_identity=bool(p.get("share_identity", True)))
    if not p.get("photometric", True):
        config = replace(config, stages=tuple(s for s in config.stages if not s.photometric))
    results = []
    targets = _targets(ctx)
    if len(targets) == 1:
        ctx.plan(tracking_plan(config, int(targets[0][2].get("frames") or 250)))
    for label, folder, record, actor, clip, shot in targets:
        identity = _identity(ws, actor, folder) if config.share_identity else None
        lock = f"track/shot/{shot}" if shot else f"track/{actor}/{clip}"
        try:
            with ws.lock(lock):
                try:
                    outputs = track_folder(folder, config, device=ctx.device, reporter=_Labelled(ctx, label),
                                           identity=identity, fps=float(record.get("fps") or 25.0),
                                           restart=bool(p.get("restart", False)))
                except FileNotFoundError as exc:
                    where = f"--shot {shot}" if shot else f"--actor {actor} --clip {clip}"
                    raise JobFailed(f"{label}: {exc}", hint=f"emodub landmarks --workspace {ws.root} {where}",
                                    code="no_landmarks") from None
                except ImportError as exc:
                    raise JobFailed(f"{label}: {exc}", code="no_model") from None
                rel = folder.relative_to(ws.root).as_posix() + "/tracking"
                tracking = {"params": f"{rel}/params.npz", "camera": f"{rel}/camera.json",
                            "quality": f"{rel}/quality.json",
                            "overlay": f"{rel}/overlay.mp4" if outputs.overlay else None,
                            "landmark_rmse_px": outputs.quality["landmark_rmse_px"],
                            "flagged_frames": len(outputs.quality["flagged_frames"])}
                fields = {"stages": {**record.get("stages", {}), "tracking": True}, "tracking": tracking}
                if shot and folder != ws.shot_dir(shot):  # one face of a shot with several
                    faces = {**(ws.shot(shot).get("face_tracking") or {}), str(p["face"]): tracking}
                    fields = {"stages": fields["stages"], "face_tracking": faces}
                if shot:
                    ws.update_shot(shot, **fields)
                else:
                    ws.update_clip(actor, clip, **fields)
        except LockBusy as exc:
            raise JobFailed(str(exc), hint="wait for the other job to finish", code="busy") from None
        for path, kind in ((outputs.params, "params"), (outputs.camera, "camera"), (outputs.quality_path, "report"),
                           (outputs.overlay, "video")):
            if path is not None:
                ctx.artifact(path, kind)
        q = outputs.quality
        ctx.log(f"{label}: landmark RMSE {q['landmark_rmse_px']:.2f} px (crop {q['crop_size']}), "
                f"{len(q['flagged_frames'])} frames flagged")
        results.append({"label": label, "folder": str(folder), "params": str(outputs.params),
                        "quality": str(outputs.quality_path),
                        "overlay": str(outputs.overlay) if outputs.overlay else None,
                        "landmark_rmse_px": q["landmark_rmse_px"], "photometric_l1": q["photometric_l1"],
                        "flagged_frames": len(q["flagged_frames"]), "seconds_per_frame": q["seconds_per_frame"]})
    summary: dict[str, Any] = {"tracked": results}
    if len(results) == 1:
        summary.update({k: v for k, v in results[0].items() if k != "label"})
    return summary


# Seconds per (Adam step x frame) of a landmark stage on a 2-core CPU, and how much dearer a photometric step is;
# decoding and the overlay per frame. Measured on a 35-frame synthetic clip: they share the job's bar, no more.
_STEP_FRAME_S = 9e-5
_PHOTOMETRIC_FACTOR = 40.0
_DECODE_FRAME_S, _OVERLAY_FRAME_S = 0.003, 0.025


def tracking_plan(config: Any, frames: int) -> list[tuple[str, float]]:
    """The steps of tracking one clip of ``frames`` frames with their rough costs (seconds), for its bar."""
    steps = [("decode", _DECODE_FRAME_S * frames)]
    for stage in config.stages:
        used = min(config.keyframes, frames) if stage.frames == "keyframes" else frames
        cost = stage.iterations * config.iteration_scale * stage.passes * used * _STEP_FRAME_S
        steps.append((stage.name, cost * (_PHOTOMETRIC_FACTOR if stage.photometric else 1.0)))
    if config.overlay:
        steps.append(("overlay", _OVERLAY_FRAME_S * frames))
    return steps


@job_kind("eval.tracking", help="tracking quality of a clip; on a synthetic clip also the error against ground "
                                "truth (landmark_rmse_px, jaw_corr, vertex_err_rel)",
          args=[*_TARGET, Arg("--out", default=None, help="report JSON (default: <clip>/tracking/eval.json)"),
                _DEVICE])
def run_eval_tracking(ctx: JobContext) -> dict[str, Any]:
    from core.tracking.evaluate import evaluate_tracking
    from core.workspace import atomic_write_json

    p = ctx.params
    if not p.get("shot") and not (p.get("actor") and p.get("clip")):
        raise JobFailed("give --actor and --clip, or --shot", code="bad_params")
    label, folder, _, actor, clip, shot = _targets(ctx)[0]
    ctx.progress("eval", 0, 1, label)
    try:
        result = evaluate_tracking(folder, device=ctx.device)
    except FileNotFoundError as exc:
        where = f"--shot {shot}" if shot else f"--actor {actor} --clip {clip}"
        raise JobFailed(str(exc), hint=f"track it first: emodub track --workspace {ctx.workspace.root} {where}",
                        code="not_tracked") from None
    ctx.progress("eval", 1, 1, label)
    out = Path(p.get("out") or folder / "tracking" / "eval.json")
    atomic_write_json(out, result)
    ctx.artifact(out, "report")
    return {**result, "report": str(out)}
