"""The add-on's operators and the timer that follows running engine jobs.

Every operator returns at once: it gathers plain values from the scene, builds the job spec (the pure
modules do the work), starts the engine subprocess and leaves. :func:`poll_jobs` runs on a Blender
timer (and is called directly by tests, because timers do not fire in bpy-as-a-module): it drains
each job's events, mirrors its progress into ``scene.emodub``, and when a job finishes acts on it
(Render Dub: adds the rendered movie strip aligned to the source strip).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import tempfile
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from . import compat, engine, faces, jobspec, mixdown, placement, protocol, readiness
from . import renderers as renderer_catalog
from . import workspace as workspace_info
from .emotions import EMOTIONS, emotion_curves_payload, preset_keyframes, sample_emotions
from .properties import EMOTION_ITEMS, engine_catalog, preferences, workspace_path

TIMER_INTERVAL_S = 0.25
JOBS = engine.JobRegistry()
_DOCTOR: list[engine.DoctorRun] = []  # the running "Check engine", at most one
# Errors the user can act on: each has .message and .hint.
USER_ERRORS = (jobspec.JobInputError, engine.EngineError, workspace_info.WorkspaceProblem)


class AddonError(jobspec.JobInputError):
    """A problem found by the add-on itself (same shape as the other user errors)."""


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def settings_of(context: bpy.types.Context) -> Any:
    return context.scene.emodub


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def _abspath(path: str) -> str:
    return os.path.normpath(bpy.path.abspath(path)) if path else ""


def job_dir() -> Path:
    """Where job specs, engine logs and mixdowns go: the add-on's user folder, never the add-on's own."""
    try:
        return Path(bpy.utils.extension_path_user(__package__, path="jobs", create=True))
    except (ValueError, AttributeError, KeyError):  # loaded as a legacy add-on: no extension folder
        path = Path(tempfile.gettempdir()) / "emodub-jobs"
        path.mkdir(parents=True, exist_ok=True)
        return path


def engine_setup(context: bpy.types.Context) -> tuple[engine.EngineCommand, dict[str, str], str]:
    """The engine command, its extra environment and the device from the preferences."""
    prefs = preferences(context)
    if prefs is None:
        raise AddonError("the emodub add-on is not enabled", hint="enable it in Preferences > Add-ons")
    setting = prefs.engine_command.strip()
    if setting.startswith("//"):  # a path relative to the .blend file
        setting = _abspath(setting)
    command = engine.resolve_engine(setting)
    return command, engine.parse_env_text(prefs.engine_env), prefs.device or "auto"


def fail(op: bpy.types.Operator, settings: Any, exc: BaseException | str, hint: str = "") -> set[str]:
    """Show a user error (status, panel, report) and cancel the operator."""
    message = getattr(exc, "message", None) or str(exc)
    hint = getattr(exc, "hint", "") or hint
    if settings is not None:
        settings.last_error = message
        settings.last_hint = hint
        settings.status_text = f"Error: {message}"
    op.report({"ERROR"}, message + (f". Hint: {hint}" if hint else ""))
    return {"CANCELLED"}


def resolve_source_strip(context: bpy.types.Context, settings: Any) -> tuple[Any, str]:
    """The source movie strip (the chosen one, else the active movie strip) and its file's path."""
    editor = context.scene.sequence_editor
    if editor is None:
        raise AddonError("this scene has no sequencer strips", hint="add the movie strip to dub")
    if settings.source_strip:
        strip = compat.find_strip(editor, settings.source_strip)
        if strip is None:
            raise AddonError(f"there is no strip named {settings.source_strip!r}",
                             hint="pick the source movie strip again")
    else:
        strip = editor.active_strip
        if strip is None:
            raise AddonError("no source strip is chosen",
                             hint="pick the movie strip to dub (or make it active)")
    if strip.type != "MOVIE":
        raise AddonError(f"the source strip {strip.name!r} is a {strip.type.lower()} strip, not a movie",
                         hint="pick a movie strip as the source")
    path = _abspath(strip.filepath)
    if not os.path.isfile(path):
        raise AddonError(f"the movie file of {strip.name!r} does not exist: {path}",
                         hint="relink the strip's file")
    return strip, path


def _workspace_actor(settings: Any, manifest: dict[str, Any], hint: str = "pick a trained actor") -> str:
    """The chosen actor's name, when the workspace has that actor."""
    actor = jobspec.check_name(settings.actor, "actor")
    if actor not in (manifest.get("actors") or {}):
        raise AddonError(f"actor {actor!r} is not in the workspace", hint=hint)
    return actor


class _EngineAndWorkspace(NamedTuple):
    command: engine.EngineCommand
    env: dict[str, str]
    device: str
    workspace: str
    manifest: dict[str, Any]


def engine_and_workspace(context: bpy.types.Context) -> _EngineAndWorkspace:
    """The engine and device from the preferences, and the workspace with its manifest, read now so that a missing
    engine or a broken workspace is said before anything starts."""
    command, env, device = engine_setup(context)
    workspace = workspace_path(context)
    return _EngineAndWorkspace(command, env, device, workspace, workspace_info.read_manifest(workspace))


def _sound_infos(strips: list[Any]) -> list[jobspec.SoundStripInfo]:
    infos = []
    for strip in strips:
        if compat.sound_is_packed(strip):
            raise AddonError(f"the sound of {strip.name!r} is packed into the .blend file",
                             hint="unpack it (File > External Data > Unpack Resources) so the engine "
                                  "can read it")
        info = compat.sound_strip_info(strip, bpy.path.abspath)
        if not os.path.isfile(info.filepath):
            raise AddonError(f"the sound file of {strip.name!r} does not exist: {info.filepath}",
                             hint="relink the sound strip's file")
        infos.append(info)
    return infos


def resolve_dub_audio(context: bpy.types.Context, settings: Any, span: placement.StripSpan, fps: float,
                      job_id: str) -> jobspec.AudioSpan:
    """The dub audio: the chosen sound strip's file window, else the audio file, else a mixdown of the
    selected sound strips (also used when the chosen strip starts after the shot)."""
    editor = context.scene.sequence_editor
    if settings.sound_strip:
        strip = compat.find_strip(editor, settings.sound_strip)
        if strip is None:
            raise AddonError(f"there is no strip named {settings.sound_strip!r}",
                             hint="pick the dub sound strip again")
        if strip.type != "SOUND":
            raise AddonError(f"the dub strip {strip.name!r} is not a sound strip", hint="pick a sound strip")
        infos = _sound_infos([strip])
    elif settings.audio_file:
        path = _abspath(settings.audio_file)
        if not os.path.isfile(path):
            raise AddonError(f"the audio file {path} does not exist", hint="pick an existing audio file")
        return jobspec.AudioSpan(path, 0.0, None)
    else:
        strips = compat.selected_strips(editor, "SOUND")
        if not strips:
            raise AddonError("no dub audio", hint="pick the dub sound strip, set an audio file, or "
                                                  "select the sound strips to mix")
        infos = _sound_infos(strips)
    if len(infos) == 1:
        direct = jobspec.direct_audio_span(infos[0], span.shot_start, span.shot_frames, fps)
        if direct is not None:
            return direct
    pieces = jobspec.mixdown_plan(infos, span.shot_start, span.shot_frames, fps)
    total = span.shot_frames / fps
    out = mixdown.write_mixdown(pieces, total, str(job_dir() / f"{job_id}-mixdown.wav"))
    return jobspec.AudioSpan(out, 0.0, round(total, 6))


def emotion_sources(scene: bpy.types.Scene, settings: Any) -> dict[str, Any]:
    """Each emotion's F-curve ``evaluate`` (when keyframed and not muted) or its slider value."""
    sources: dict[str, Any] = {}
    for name in EMOTIONS:
        fcurve = compat.find_fcurve(scene, f"emodub.{name}")
        keyed = fcurve is not None and not fcurve.mute
        sources[name] = fcurve.evaluate if keyed else float(getattr(settings, name))
    return sources


WARM: list[engine.WarmEngine] = []  # the engine kept warm for previews (at most one)


def warm_engine(command: engine.EngineCommand, env: dict[str, str]) -> engine.WarmEngine:
    """The warm engine of the current preferences (a new one when they changed: the old one is stopped)."""
    if WARM and not WARM[0].serves(command, env):
        WARM.pop().stop()
    if not WARM:
        WARM.append(engine.WarmEngine(command, job_dir(), env=env))
    return WARM[0]


def stop_warm_engine() -> None:
    while WARM:
        WARM.pop().stop()


def start_job(context: bpy.types.Context, *, kind: str, params: dict[str, Any], workspace: str,
              keys: frozenset[str], label: str, meta: dict[str, Any], command: engine.EngineCommand,
              env: dict[str, str], job_id: str | None = None,
              warm: bool = False) -> engine.EngineJob | engine.WarmJob:
    """Start ``kind`` in an engine subprocess (``warm``: in the warm engine) and follow it from the timer."""
    spec = protocol.JobSpec(kind=kind, params=params, workspace=workspace or None,
                            id=job_id or uuid.uuid4().hex[:12])
    scene = context.scene
    meta = {"scene": scene.name, "blend": bpy.data.filepath, **meta}
    JOBS.check_free(keys)
    job: engine.EngineJob | engine.WarmJob
    if warm:
        job = warm_engine(command, env).submit(spec, keys=keys, label=label, meta=meta)
    else:
        job = engine.EngineJob(spec, command, job_dir(), env=env, keys=keys, label=label, meta=meta)
        job.start()
    JOBS.add(job)
    settings = scene.emodub
    settings.job_id = job.id
    settings.job_running = True
    settings.progress = 0.0
    settings.status_text = f"{label}: {job.state.text}"
    settings.last_error = settings.last_hint = ""
    ensure_timer()
    return job


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(poll_jobs):
        bpy.app.timers.register(poll_jobs, first_interval=TIMER_INTERVAL_S, persistent=True)


# --------------------------------------------------------------------------------------------------
# Polling (the timer) and acting on finished jobs
# --------------------------------------------------------------------------------------------------

def _set(owner: Any, name: str, value: Any) -> None:
    if getattr(owner, name) != value:  # writing unchanged values would still trigger redraws/updates
        setattr(owner, name, value)


def _scene_busy(scene_name: str) -> bool:
    return any(not j.state.finished and j.meta.get("scene") == scene_name for j in JOBS.jobs())


def poll_jobs() -> float | None:
    """The timer function: poll every unfinished job once; returns the next interval, or ``None``
    (timer stops) when nothing is left to follow."""
    for job in JOBS.jobs():
        if job.handled:
            continue
        state = engine.poll_job(job)
        same_file = job.meta.get("blend") == bpy.data.filepath  # another .blend may have been opened
        scene = bpy.data.scenes.get(job.meta.get("scene", "")) if same_file else None
        settings = getattr(scene, "emodub", None) if scene is not None else None
        if settings is not None and settings.job_id == job.id and not state.finished:
            _set(settings, "status_text", f"{job.label}: {state.text}")
            _set(settings, "progress", float(state.fraction))
        if state.finished:
            job.handled = True
            try:
                finish_job(job, scene)
            except Exception as exc:  # noqa: BLE001 - the timer must survive any bug
                traceback.print_exc()
                if settings is not None:
                    settings.last_error = f"the add-on failed to finish {job.label}: {exc}"
                    settings.status_text = f"Error: {settings.last_error}"
            if settings is not None:
                _set(settings, "job_running", _scene_busy(scene.name))
    _poll_doctor()
    _status_bar()
    _tag_redraw()
    JOBS.prune()
    busy = any(not job.handled for job in JOBS.jobs()) or bool(_DOCTOR)
    return TIMER_INTERVAL_S if busy else None


_STATUS_BAR: list[bool] = []  # whether this add-on's progress is shown in the status bar


def _status_bar() -> None:
    """Blender's own progress indicator in the status bar while engine jobs run (the panel has the details)."""
    try:
        wm = bpy.context.window_manager
    except (AttributeError, ReferenceError):
        return
    if wm is None:
        return
    running = [job for job in JOBS.jobs() if not job.handled]
    if running:
        if not _STATUS_BAR:
            wm.progress_begin(0, 1000)
            _STATUS_BAR.append(True)
        # the least advanced job (never 100% while one still runs)
        wm.progress_update(int(min(job.state.fraction for job in running) * 999))
    elif _STATUS_BAR:
        wm.progress_end()
        _STATUS_BAR.clear()


def _tag_redraw() -> None:
    try:
        windows = bpy.context.window_manager.windows
    except (AttributeError, ReferenceError):
        return
    for window in windows:
        for area in window.screen.areas:
            if area.type in {"SEQUENCE_EDITOR", "PREFERENCES"}:
                area.tag_redraw()


def finish_job(job: engine.EngineJob, scene: bpy.types.Scene | None) -> None:
    """Act on a finished job: show its outcome; for a dub, add the rendered strip."""
    state = job.state
    if scene is None:
        video = state.outputs.get("video", "")
        print(f"emodub: {job.label} finished ({state.status}) but its scene or .blend file is no longer open"
              + (f"; the render is {video}" if video else ""), file=sys.stderr)
        return
    settings = scene.emodub
    if state.report:
        settings.last_report = state.report
    if state.status == "done":
        try:
            message = _DONE_HANDLERS.get(job.spec.kind, lambda _j, _s: "done")(job, scene)
        except (*USER_ERRORS, ValueError) as exc:
            settings.last_error = getattr(exc, "message", None) or str(exc)
            settings.last_hint = getattr(exc, "hint", "")
            settings.status_text = f"{job.label} failed: {settings.last_error}"
            print(f"emodub: {settings.status_text}", file=sys.stderr)
            return
        settings.progress = 1.0
        settings.status_text = f"{job.label}: {message}"
    elif state.status == "cancelled":
        settings.status_text = f"{job.label}: cancelled"
    else:
        settings.last_error = state.error_message or "the job failed"
        settings.last_hint = state.error_hint
        failed = "failed (a bug in emodub)" if state.is_bug else "failed"
        settings.status_text = f"{job.label} {failed}: {settings.last_error}"
        print(f"emodub: {settings.status_text}\n  hint: {state.error_hint}\n  engine log: {job.log_path}",
              file=sys.stderr)
        if state.traceback:
            print(state.traceback, file=sys.stderr)


def _preview_name(source: Any) -> str:
    return f"{source.name}.preview"


def _remove_preview(editor: Any, source: Any) -> None:
    """Remove the previewed-frame strip of ``source``, if any."""
    preview = compat.find_strip(editor, _preview_name(source))
    if preview is not None:
        compat.top_strips(editor).remove(preview)


def _place_dub(scene: bpy.types.Scene, source_name: str, video: Any, frames: Any, channel_wanted: int,
               job_id: str, name: str, log_path: Any) -> Any:
    """Add the rendered movie ``video`` as a strip aligned to the source strip ``source_name``."""
    if not isinstance(video, str) or not os.path.isfile(video):
        raise AddonError(f"the engine reported success but its video {video!r} does not exist",
                         hint=f"see the engine log {log_path}")
    editor = scene.sequence_editor
    source = compat.find_strip(editor, source_name)
    if source is None:
        raise AddonError(f"the source strip {source_name!r} was removed while the dub rendered; "
                         f"the render is {video}", hint="add it by hand with Add > Movie")
    _remove_preview(editor, source)  # the render supersedes the previewed frame (and takes its channel)
    span = compat.strip_span(source)
    expected = int(frames) if isinstance(frames, int) and frames > 0 else span.shot_frames
    plan = placement.plan_output_strip(span, expected, channel_wanted, compat.occupants(editor))
    strip = compat.new_movie(editor, name, video, plan.channel, int(plan.frame_start))
    try:
        rendered = int(strip.frame_duration)  # the file's real frame count
        if rendered != expected:
            plan = placement.plan_output_strip(span, rendered, channel_wanted,
                                               compat.occupants(editor, exclude_names=(strip.name,)))
        strip.frame_start = plan.frame_start
        compat.set_content_trim(strip, plan.trim_start, plan.trim_end)
        strip.frame_offset_start = plan.offset_start
        strip.frame_offset_end = plan.offset_end
        strip.channel = plan.channel
        strip["emodub_job"] = job_id
    except Exception:
        compat.top_strips(editor).remove(strip)  # add nothing rather than a misplaced strip
        raise
    return strip, plan


def _finish_dub(job: engine.EngineJob, scene: bpy.types.Scene) -> str:
    """Add the rendered movie as a strip aligned to the source strip in the output channel."""
    outputs = job.state.outputs
    video = outputs.get("video")
    source_name = job.meta["source_strip"]
    strip, plan = _place_dub(scene, source_name, video, outputs.get("frames"), int(job.meta.get("output_channel", 0)),
                             job.id, f"{source_name}.dub", job.log_path)
    scene.emodub.last_output = video
    message = f"added {strip.name!r} in channel {strip.channel}"
    # What the editor should know about this dub (looped or cut audio, an undertrained actor...), not only the log.
    warnings = [plan.warning] if plan.warning else []
    warnings += [str(w) for w in outputs.get("warnings") or [] if isinstance(w, str)]
    return message + "".join(f" (warning: {w})" for w in warnings)


def _finish_batch(job: engine.EngineJob, scene: bpy.types.Scene) -> str:
    """Add every dub the batch finished now, each aligned to its source strip (a channel per language)."""
    outputs = job.state.outputs
    batch_dir = Path(str(outputs.get("batch_dir", "")))
    added, problems = [], []
    for item_id, status in (outputs.get("items") or {}).items():
        where = (job.meta.get("items") or {}).get(item_id)
        if status != "done" or where is None:
            continue
        try:
            record = json.loads((batch_dir / "items" / f"{item_id}.json").read_text(encoding="utf-8"))
            out = record.get("outputs") or {}
            strip, _plan = _place_dub(scene, where["strip"], out.get("video"), out.get("frames"), 0, job.id,
                                      f"{where['strip']}.{where['language']}.dub", job.log_path)
            added.append(strip.name)
        except (OSError, ValueError, *USER_ERRORS) as exc:
            problems.append(f"{item_id}: {getattr(exc, 'message', None) or exc}")
    report = outputs.get("report")
    if isinstance(report, str):
        scene.emodub.last_report = report
    failed, skipped = int(outputs.get("failed", 0)), int(outputs.get("skipped", 0))
    message = f"added {len(added)} dub strip(s)"
    if skipped:
        message += f"; {skipped} finished earlier (already in the timeline)"
    if failed or problems:
        message += f"; {failed + len(problems)} failed: Open Report says why"
        if problems:
            print("emodub: " + "; ".join(problems), file=sys.stderr)
    return message


def _finish_preview(job: engine.EngineJob, scene: bpy.types.Scene) -> str:
    """Show the previewed frame as a one-frame image strip at its frame, above the source strip (replacing the
    source's earlier preview)."""
    frames = job.state.outputs.get("frames") or []
    if not frames or not os.path.isfile(frames[0]):
        raise AddonError("the engine reported a preview but its image does not exist",
                         hint=f"see the engine log {job.log_path}")
    editor = scene.sequence_editor
    source = compat.find_strip(editor, job.meta["source_strip"])
    if source is None:
        raise AddonError(f"the source strip {job.meta['source_strip']!r} was removed", hint="")
    _remove_preview(editor, source)  # a new preview replaces the source's earlier one
    name = _preview_name(source)
    frame = int(job.meta["scene_frame"])
    occupied = compat.occupants(editor)
    wanted = int(job.meta.get("output_channel", 0)) or source.channel + 1
    channel = placement.first_free_channel(wanted, frame, frame + 1, occupied)
    strip = compat.new_image(editor, name, frames[0], channel, frame)
    strip["emodub_job"] = job.id
    return f"previewed frame {frame} in channel {channel} (the {name!r} strip)"


def _finish_import(job: engine.EngineJob, _scene: bpy.types.Scene) -> str:
    return f"clip {job.meta.get('clip', '')!r} of {job.meta.get('actor', '')!r} is imported: Train Actor next"


def _finish_prepare(job: engine.EngineJob, _scene: bpy.types.Scene) -> str:
    return f"shot {job.meta.get('shot', '')!r} is prepared"


def _finish_train(job: engine.EngineJob, _scene: bpy.types.Scene) -> str:
    return f"actor {job.meta.get('actor', '')!r} is trained"


_DONE_HANDLERS = {"dub": _finish_dub, "preview": _finish_preview, "batch.dub": _finish_batch,
                  "ingest": _finish_import,
                  "shot.prepare": _finish_prepare,
                  "train.actor": _finish_train}


def _poll_doctor() -> None:
    if not _DOCTOR:
        return
    result = _DOCTOR[0].poll()
    if result is None:
        return
    _DOCTOR.clear()
    prefs = preferences()
    if prefs is not None:
        prefs.engine_check_ok = result.ok
        prefs.engine_check_summary = result.summary
        prefs.engine_check_details = "\n".join(result.lines)
        if result.devices:
            prefs.engine_devices = ",".join(result.devices)
            if prefs.device not in result.devices:  # e.g. cuda chosen, and the engine has no GPU
                prefs.device = "auto"


# --------------------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------------------

def scene_facts(context: bpy.types.Context) -> readiness.SceneFacts:
    """What the operators' polls look at (:mod:`.readiness`)."""
    scene = getattr(context, "scene", None)
    settings = getattr(scene, "emodub", None)
    editor = getattr(scene, "sequence_editor", None)
    if scene is None or settings is None:
        return readiness.SceneFacts(has_sequencer=False)
    active = editor.active_strip if editor is not None else None
    if editor is not None and settings.source_strip:
        named = compat.find_strip(editor, settings.source_strip)
        source_type = named.type if named is not None else "MISSING"
    else:
        source_type = active.type if active is not None else None
    selected_sounds = bool(editor is not None and compat.selected_strips(editor, "SOUND"))
    return readiness.SceneFacts(
        has_sequencer=editor is not None, source_type=source_type,
        active_type=active.type if active is not None else None, actor=settings.actor,
        has_dub_audio=bool(settings.sound_strip or settings.audio_file or selected_sounds),
        selected_movies=len(compat.selected_strips(editor, "MOVIE")) if editor is not None else 0,
        languages=settings.batch_languages,
        jobs_running=len(JOBS.running()),
        last_report=settings.last_report,
        consent_filled=all(str(value).strip() for value in (settings.consent_by, settings.consent_scope,
                                                            settings.consent_document)),
        workspace_set=bool(workspace_path(context)))


class _Ready:
    """``poll()`` from :mod:`.readiness`: the button is greyed out with the reason as its tooltip."""

    ready: ClassVar[Any] = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        check = cls.ready
        reason = check(scene_facts(context)) if check is not None else None
        if reason:
            cls.poll_message_set(reason)
            return False
        return True


class EMODUB_OT_check_engine(_Ready, bpy.types.Operator):
    """Ask the configured engine to check itself (Python, torch, ffmpeg, the workspace) and show what it finds"""

    bl_idname = "emodub.check_engine"
    bl_label = "Check Engine"
    ready = staticmethod(lambda _facts: None)  # always available: it is how a broken set-up is diagnosed

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = preferences(context)
        try:
            command, env, _device = engine_setup(context)
        except USER_ERRORS as exc:
            if prefs is not None:
                prefs.engine_check_ok = False
                prefs.engine_check_summary = exc.message
                prefs.engine_check_details = f"hint: {exc.hint}" if exc.hint else ""
            return fail(self, None, exc)
        renderer_catalog.CACHE.clear()  # the engine may have changed: ask it for its renderers again
        run = engine.DoctorRun(command, workspace=workspace_path(context) or None, env=env)
        run.start()
        _DOCTOR[:] = [run]
        if prefs is not None:
            prefs.engine_check_ok = False
            prefs.engine_check_summary = f"checking {command.describe()} ..."
            prefs.engine_check_details = ""
        ensure_timer()
        return {"FINISHED"}


class EMODUB_OT_prepare_shot(_Ready, bpy.types.Operator):
    """Ingest and track the source strip's movie file as a shot in the workspace"""

    bl_idname = "emodub.prepare_shot"
    bl_label = "Prepare Shot"
    ready = staticmethod(readiness.prepare_shot)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        try:
            command, env, device, workspace, _manifest = engine_and_workspace(context)
            strip, path = resolve_source_strip(context, settings)
            shot = settings.shot or jobspec.shot_name_for(path)
            params = jobspec.prepare_shot_params(path, shot, device, max_faces=settings.max_faces,
                                                 face=settings.face_id if settings.face_id >= 0 else None)
            start_job(context, kind="shot.prepare", params=params, workspace=workspace,
                      keys=jobspec.job_keys(shot=shot), label=f"Prepare shot {shot}",
                      meta={"shot": shot, "source_strip": strip.name}, command=command, env=env)
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        return {"FINISHED"}


class EMODUB_OT_import_footage(_Ready, bpy.types.Operator):
    """Bring the selected movie strips into the workspace as the actor's footage, labelled with their emotion"""

    bl_idname = "emodub.import_footage"
    bl_label = "Import Actor Footage"
    ready = staticmethod(readiness.import_footage)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        try:
            command, env, _device, workspace, _manifest = engine_and_workspace(context)
            strips = compat.selected_strips(context.scene.sequence_editor, "MOVIE")
            started = []
            for strip in strips:
                path = _abspath(strip.filepath)
                if not os.path.isfile(path):
                    raise AddonError(f"the movie file of {strip.name!r} does not exist: {path}",
                                     hint="relink the strip's file")
                params = jobspec.footage_params(path, settings.actor, settings.footage_emotion,
                                                settings.footage_intensity, settings.footage_sentence)
                # one key per clip: the strips import side by side (the manifest takes their writes in turn)
                start_job(context, kind="ingest", params=params, workspace=workspace,
                          keys=jobspec.job_keys(clip=f"{params['actor']}/{params['clip']}"),
                          label=f"Import {strip.name} as {settings.actor}'s footage",
                          meta={"actor": settings.actor, "clip": params["clip"]}, command=command, env=env)
                started.append(params["clip"])
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        self.report({"INFO"}, f"importing {len(started)} clip(s) of {settings.actor}: then press Train Actor")
        return {"FINISHED"}


class EMODUB_OT_record_consent(_Ready, bpy.types.Operator):
    """Record the actor's consent to be dubbed (who consented, to what, the signed document): needed before a dub"""

    bl_idname = "emodub.record_consent"
    bl_label = "Record Actor Consent"
    ready = staticmethod(readiness.record_consent)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        try:
            command, env, _device, workspace, _manifest = engine_and_workspace(context)
            params = jobspec.consent_params(settings.actor, settings.consent_by, settings.consent_scope,
                                            settings.consent_document)
            start_job(context, kind="actor.consent", params=params, workspace=workspace,
                      keys=jobspec.job_keys(consent=params["actor"]), label=f"Record consent of {params['actor']}",
                      meta={"actor": params["actor"]}, command=command, env=env)
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        return {"FINISHED"}


class EMODUB_OT_create_workspace(_Ready, bpy.types.Operator):
    """Create a new emodub workspace in the Workspace folder (a new or empty folder)"""

    bl_idname = "emodub.create_workspace"
    bl_label = "Create Workspace"
    ready = staticmethod(readiness.create_workspace)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = getattr(context.scene, "emodub", None)
        try:
            command, env, _device = engine_setup(context)
            path = workspace_path(context)
            start_job(context, kind="workspace.init", params={"path": path}, workspace="",
                      keys=jobspec.job_keys(workspace=path), label=f"Create workspace {path}", meta={},
                      command=command, env=env)
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        return {"FINISHED"}


class EMODUB_OT_train_actor(_Ready, bpy.types.Operator):
    """Train the actor's audio-to-expression model and renderer from their clips in the workspace"""

    bl_idname = "emodub.train_actor"
    bl_label = "Train Actor"
    ready = staticmethod(readiness.train_actor)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        try:
            command, env, device, workspace, manifest = engine_and_workspace(context)
            actor = _workspace_actor(settings, manifest,
                                     hint="select the actor's movie strips and press Import Actor Footage first")
            params = jobspec.train_actor_params(actor, device, settings.a2e_iterations, settings.renderer_iterations,
                                                settings.track_iterations)
            start_job(context, kind="train.actor", params=params,
                      workspace=workspace, keys=jobspec.job_keys(actor=actor), label=f"Train actor {actor}",
                      meta={"actor": actor}, command=command, env=env)
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        return {"FINISHED"}


@dataclass
class _DubRequest:
    """What Render Dub and Preview Frame send: the ``dub`` params of the source strip, and where it runs."""

    params: dict[str, Any]
    keys: frozenset[str]
    source: Any
    span: placement.StripSpan
    shot: str
    actor: str
    workspace: str
    command: engine.EngineCommand
    env: dict[str, str]
    job_id: str


def _dub_request(context: bpy.types.Context, settings: Any) -> _DubRequest:
    scene = context.scene
    command, env, device, workspace, manifest = engine_and_workspace(context)
    source, path = resolve_source_strip(context, settings)
    shot = settings.shot or jobspec.shot_name_for(path)
    actor = _workspace_actor(settings, manifest)
    if shot not in (manifest.get("shots") or {}):
        raise AddonError(f"shot {shot!r} is not prepared in the workspace",
                         hint="press Prepare Shot first (or pick the prepared shot)")
    keys = jobspec.job_keys(shot=shot, actor=actor)
    JOBS.check_free(keys)  # before any mixdown work
    span = compat.strip_span(source)
    fps = scene_fps(scene)
    per_frame = sample_emotions(emotion_sources(scene, settings), span.shot_start, span.shot_frames)
    emotions = emotion_curves_payload(per_frame, fps, span.shot_start)
    job_id = uuid.uuid4().hex[:12]
    audio = resolve_dub_audio(context, settings, span, fps, job_id)
    catalog = engine_catalog(context)
    chosen = settings.renderer if settings.renderer != renderer_catalog.BEST else None
    params = jobspec.dub_params(actor=actor, shot=shot, audio=audio, emotions=emotions, renderer=chosen,
                                renderers=catalog.names if not catalog.error else None, device=device,
                                length="shot", format=settings.delivery_format, matte=settings.matte,
                                face=settings.face_id if settings.face_id >= 0 else None,
                                emotion_source=settings.emotion_source)
    return _DubRequest(params, keys, source, span, shot, actor, workspace, command, env, job_id)


class EMODUB_OT_render_dub(_Ready, bpy.types.Operator):
    """Render the source shot with the dub audio and the keyed emotions, added as a strip over the source"""

    bl_idname = "emodub.render_dub"
    bl_label = "Render Dub"
    ready = staticmethod(readiness.render_dub)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        try:
            request = _dub_request(context, settings)
            start_job(context, kind="dub", params=request.params, workspace=request.workspace, keys=request.keys,
                      label=f"Render dub of {request.source.name}", job_id=request.job_id, command=request.command,
                      env=request.env, meta={"source_strip": request.source.name,
                                             "output_channel": settings.output_channel, "shot": request.shot,
                                             "actor": request.actor})
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        except ValueError as exc:  # bad curve values, an empty strip...
            return fail(self, settings, str(exc))
        return {"FINISHED"}


def _warm_previews(context: bpy.types.Context) -> bool:
    prefs = preferences(context)
    return bool(prefs is None or prefs.warm_preview)


class EMODUB_OT_preview_frame(_Ready, bpy.types.Operator):
    """Render the dub's frame at the playhead with the current curves and show it over the source strip"""

    bl_idname = "emodub.preview_frame"
    bl_label = "Preview Frame"
    ready = staticmethod(readiness.render_dub)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        scene = context.scene
        try:
            request = _dub_request(context, settings)
            frame = jobspec.preview_frame_index(request.span, scene.frame_current)
            params = jobspec.preview_params(request.params, frame)
            start_job(context, kind="preview", params=params, workspace=request.workspace, keys=request.keys,
                      label=f"Preview frame {scene.frame_current} of {request.source.name}", job_id=request.job_id,
                      command=request.command, env=request.env, warm=_warm_previews(context),
                      meta={"source_strip": request.source.name, "scene_frame": scene.frame_current,
                            "output_channel": settings.output_channel})
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        except ValueError as exc:
            return fail(self, settings, str(exc))
        return {"FINISHED"}


class EMODUB_OT_dub_selected(_Ready, bpy.types.Operator):
    """Dub every selected movie strip in every dub language in one batch, with the current emotion curves"""

    bl_idname = "emodub.dub_selected"
    bl_label = "Dub All Selected Strips"
    ready = staticmethod(readiness.dub_selected)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        scene = context.scene
        try:
            command, env, device, workspace, manifest = engine_and_workspace(context)
            actor = _workspace_actor(settings, manifest)
            languages = jobspec.parse_languages(settings.batch_languages)
            editor = scene.sequence_editor
            fps = scene_fps(scene)
            name = jobspec.sanitize_name(f"{scene.name}-{actor}", "batch")
            folder = Path(workspace) / "batches" / name
            sources = sorted(compat.selected_strips(editor, "MOVIE"), key=lambda s: (s.frame_final_start, s.channel))
            items, where, shots = [], {}, set()
            for source in sources:
                path = _abspath(source.filepath)
                shot = jobspec.shot_name_for(path)
                if shot not in (manifest.get("shots") or {}):
                    raise AddonError(f"the shot of {source.name!r} is not prepared",
                                     hint="select it alone and press Prepare Shot first")
                span = compat.strip_span(source)
                per_frame = sample_emotions(emotion_sources(scene, settings), span.shot_start, span.shot_frames)
                curves = folder / "curves" / f"{jobspec.sanitize_name(source.name, 'strip')}.json"
                curves.parent.mkdir(parents=True, exist_ok=True)
                curves.write_text(json.dumps(emotion_curves_payload(per_frame, fps, span.shot_start)),
                                  encoding="utf-8")
                for language, channel in languages:
                    heard = [s for s in compat.strips_of_type(editor, "SOUND") if s.channel == channel
                             and s.frame_final_end > span.shot_start
                             and s.frame_final_start < span.shot_start + span.shot_frames]
                    if not heard:
                        raise AddonError(f"no {language} sound strip (channel {channel}) plays under {source.name!r}",
                                         hint=f"put the {language} dub of that shot in channel {channel}")
                    infos = _sound_infos(heard)
                    audio = jobspec.direct_audio_span(infos[0], span.shot_start, span.shot_frames, fps) \
                        if len(infos) == 1 else None
                    if audio is None:
                        pieces = jobspec.mixdown_plan(infos, span.shot_start, span.shot_frames, fps)
                        total = span.shot_frames / fps
                        wav = folder / "audio" / f"{jobspec.sanitize_name(source.name, 'strip')}-{language}.wav"
                        wav.parent.mkdir(parents=True, exist_ok=True)
                        audio = jobspec.AudioSpan(mixdown.write_mixdown(pieces, total, str(wav)), 0.0, round(total, 6))
                    item = jobspec.BatchItem(source.name, shot, language, audio, str(curves))
                    items.append(item)
                    where[item.id] = {"strip": source.name, "language": language}
                    shots.add(shot)
            chosen = settings.renderer if settings.renderer != renderer_catalog.BEST else None
            plan = jobspec.batch_plan(name=name, actor=actor, items=items, renderer=chosen,
                                      format=settings.delivery_format, matte=settings.matte)
            plan_path = folder / "request.json"
            plan_path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
            keys = frozenset().union(*(jobspec.job_keys(shot=s) for s in shots), jobspec.job_keys(actor=actor))
            start_job(context, kind="batch.dub", params={"plan": str(plan_path), "device": device},
                      workspace=workspace, keys=keys,
                      label=f"Dub {len(sources)} strip(s) in {len(languages)} language(s)",
                      meta={"items": where, "actor": actor}, command=command, env=env)
        except USER_ERRORS as exc:
            return fail(self, settings, exc)
        except (ValueError, OSError) as exc:  # bad curve values, an unwritable workspace...
            return fail(self, settings, str(exc))
        return {"FINISHED"}


class EMODUB_OT_pick_face(_Ready, bpy.types.Operator):
    """Click a face in the sequencer preview to choose the face to dub in a shot with several faces"""

    bl_idname = "emodub.pick_face"
    bl_label = "Pick Face"
    bl_options = {"REGISTER", "UNDO"}
    ready = staticmethod(readiness.pick_face)

    x: FloatProperty(name="X", description="Point in the source picture, 0 (left) to 1 (right); -1: click it",
                     default=-1.0)  # type: ignore[valid-type]
    y: FloatProperty(name="Y", description="Point in the source picture, 0 (top) to 1 (bottom); -1: click it",
                     default=-1.0)  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        if self.x >= 0 and self.y >= 0:
            return self.execute(context)
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("Pick Face: click a face in the sequencer preview (Esc cancels)")
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: Any) -> set[str]:
        if event.type in {"ESC", "RIGHTMOUSE"}:
            context.workspace.status_text_set(None)
            return {"CANCELLED"}
        if event.type != "LEFTMOUSE" or event.value != "PRESS":
            return {"PASS_THROUGH"}
        context.workspace.status_text_set(None)
        region = next((r for area in context.screen.areas if area.type == "SEQUENCE_EDITOR"
                       for r in area.regions if r.type == "PREVIEW"
                       and r.x <= event.mouse_x < r.x + r.width and r.y <= event.mouse_y < r.y + r.height), None)
        if region is None:
            return fail(self, settings_of(context), "click inside the sequencer preview",
                        hint="show the preview (View > Sequencer & Preview) and click a face in it")
        view_x, view_y = region.view2d.region_to_view(event.mouse_x - region.x, event.mouse_y - region.y)
        try:
            source, _path = resolve_source_strip(context, settings_of(context))
        except USER_ERRORS as exc:
            return fail(self, settings_of(context), exc)
        render = context.scene.render
        scene_size = (render.resolution_x * render.resolution_percentage // 100,
                      render.resolution_y * render.resolution_percentage // 100)
        element = source.elements[0] if len(source.elements) else None
        image_size = (element.orig_width, element.orig_height) if element and element.orig_width else scene_size
        transform = source.transform  # Blender keeps the strip's fit in its transform's scale
        self.x, self.y = faces.preview_to_image(
            view_x, view_y, scene_size, image_size, "ORIGINAL", (transform.scale_x, transform.scale_y),
            (transform.offset_x, transform.offset_y))
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = settings_of(context)
        try:
            workspace = workspace_path(context)
            manifest = workspace_info.read_manifest(workspace)
            source, path = resolve_source_strip(context, settings)
            shot = settings.shot or jobspec.shot_name_for(path)
            doc = faces.read_faces(workspace, shot, manifest)
            face = faces.pick_face(doc, compat.strip_span(source), context.scene.frame_current, self.x, self.y)
        except (*USER_ERRORS, faces.FacePickError) as exc:
            return fail(self, settings, exc)
        settings.face_id = face
        settings.last_error = settings.last_hint = ""
        settings.status_text = f"face {face} of shot {shot!r} will be dubbed"
        self.report({"INFO"}, settings.status_text)
        return {"FINISHED"}


class EMODUB_OT_cancel_job(_Ready, bpy.types.Operator):
    """Ask the engine to stop the job (it saves what it has and exits)"""

    bl_idname = "emodub.cancel_job"
    bl_label = "Cancel"
    ready = staticmethod(readiness.cancel_job)

    job_id: StringProperty(name="Job", default="", options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        if self.job_id:
            jobs = [j for j in [JOBS.get(self.job_id)] if j is not None and not j.state.finished]
        else:
            jobs = [j for j in JOBS.running() if j.meta.get("scene") == scene.name]
        if not jobs:
            self.report({"WARNING"}, "no emodub job is running")
            return {"CANCELLED"}
        for job in jobs:
            job.cancel()
        scene.emodub.status_text = "cancelling..."
        ensure_timer()
        return {"FINISHED"}


PRESET_ITEMS = [("RAMP_IN", "Ramp In", "From 0 at the strip's start up to the peak at its end"),
                ("PULSE", "Pulse", "Up to the peak over the first quarter, hold, down to 0 over the last"),
                ("RAMP_OUT", "Ramp Out", "From the peak at the strip's start down to 0 at its end")]


class EMODUB_OT_emotion_preset(_Ready, bpy.types.Operator):
    """Keyframe an emotion over the selected strip's range (replacing its keys in that range)"""

    bl_idname = "emodub.emotion_preset"
    bl_label = "Emotion Preset"
    bl_options = {"REGISTER", "UNDO"}
    ready = staticmethod(readiness.emotion_preset)

    preset: EnumProperty(name="Preset", items=PRESET_ITEMS, default="RAMP_IN")  # type: ignore[valid-type]
    emotion: EnumProperty(name="Emotion", items=EMOTION_ITEMS, default="happy")  # type: ignore[valid-type]
    peak: FloatProperty(name="Peak", min=0.0, max=1.0, default=1.0, subtype="FACTOR")  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, _event: Any) -> set[str]:
        settings = settings_of(context)
        self.emotion, self.peak = settings.preset_emotion, settings.preset_peak
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        editor = scene.sequence_editor
        strip = editor.active_strip if editor is not None else None
        if strip is None or not strip.select:
            selected = compat.selected_strips(editor)
            strip = selected[0] if selected else None
        if strip is None:
            return fail(self, None, "no strip is selected",
                        hint="select the strip whose range the preset covers")
        start, end = float(strip.frame_final_start), float(strip.frame_final_end - 1)
        try:
            keys = preset_keyframes(self.preset, start, end, self.peak)
        except ValueError as exc:
            return fail(self, None, str(exc))
        data_path = f"emodub.{self.emotion}"
        fcurve = compat.find_fcurve(scene, data_path)
        if fcurve is not None:
            compat.remove_keyframes_between(fcurve, start, end)
        for frame, value in keys:
            setattr(scene.emodub, self.emotion, value)
            scene.keyframe_insert(data_path=data_path, frame=frame)
        self.report({"INFO"}, f"{self.emotion}: {len(keys)} keyframes over frames {start:g}-{end:g}")
        return {"FINISHED"}


class EMODUB_OT_pick_active_strip(_Ready, bpy.types.Operator):
    """Use the active strip as the source movie or the dub sound"""

    bl_idname = "emodub.pick_active_strip"
    bl_label = "Use Active Strip"
    bl_options = {"REGISTER", "UNDO"}
    ready = staticmethod(readiness.pick_active_strip)

    target: EnumProperty(items=[("SOURCE", "Source", ""), ("SOUND", "Sound", "")])  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        editor = context.scene.sequence_editor
        strip = editor.active_strip if editor is not None else None
        wanted = "MOVIE" if self.target == "SOURCE" else "SOUND"
        if strip is None or strip.type != wanted:
            return fail(self, None, f"the active strip is not a {wanted.lower()} strip")
        field = "source_strip" if self.target == "SOURCE" else "sound_strip"
        setattr(settings_of(context), field, strip.name)
        return {"FINISHED"}


class EMODUB_OT_open_report(_Ready, bpy.types.Operator):
    """Open the last job's report"""

    bl_idname = "emodub.open_report"
    bl_label = "Open Report"
    ready = staticmethod(readiness.open_report)

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = self.filepath or settings_of(context).last_report
        if not path or not os.path.exists(path):
            return fail(self, None, f"the report {path!r} does not exist")
        readable = os.path.splitext(path)[0] + ".md"
        if path.endswith(".json") and os.path.exists(readable):  # the page for people, not the data beside it
            path = readable
        # In Blender's Text Editor (where one is open), else in the system's viewer.
        wanted = os.path.normcase(os.path.realpath(path))
        text = next((t for t in bpy.data.texts
                     if t.filepath and os.path.normcase(os.path.realpath(_abspath(t.filepath))) == wanted), None)
        if text is None:
            text = bpy.data.texts.load(path)
        else:
            text.from_string(Path(path).read_text(encoding="utf-8"))
        editors = [area.spaces.active for window in context.window_manager.windows
                   for area in window.screen.areas if area.type == "TEXT_EDITOR"]
        for space in editors:
            space.text = text
        if not editors and not bpy.app.background:
            bpy.ops.wm.path_open(filepath=path)
        self.report({"INFO"}, f"report: {path} (text {text.name!r})")
        return {"FINISHED"}


classes = (EMODUB_OT_check_engine, EMODUB_OT_create_workspace, EMODUB_OT_prepare_shot, EMODUB_OT_import_footage,
           EMODUB_OT_record_consent, EMODUB_OT_train_actor,
           EMODUB_OT_render_dub, EMODUB_OT_preview_frame, EMODUB_OT_dub_selected, EMODUB_OT_pick_face,
           EMODUB_OT_cancel_job, EMODUB_OT_emotion_preset, EMODUB_OT_pick_active_strip, EMODUB_OT_open_report)


def _kill_all_at_exit() -> None:
    JOBS.kill_all()
    for warm in WARM:
        warm.kill()


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    atexit.register(_kill_all_at_exit)


def unregister() -> None:
    # Disabling the add-on must not leave engines running: stop them and reap them.
    JOBS.kill_all()
    for job in JOBS.jobs():
        job.wait(timeout=5.0)
    stop_warm_engine()
    atexit.unregister(_kill_all_at_exit)
    if bpy.app.timers.is_registered(poll_jobs):
        bpy.app.timers.unregister(poll_jobs)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
