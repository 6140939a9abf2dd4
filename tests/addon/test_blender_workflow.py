"""The whole job from Blender's buttons with the REAL engine, on a tiny synthetic actor.

Nothing here uses the command line: the test makes the "filmed" footage with the engine's synth job (the camera's
part), then presses, in order, Create Workspace, Import Actor Footage (each take with its emotion), Record Actor
Consent, Train Actor (tracking first, in one job with one bar), Prepare Shot, picks the dub audio, keys an emotion,
Preview Frame, Render Dub and Open Report, through the same operators and timer function as an editor's clicks.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.blender, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PKG = "bl_ext.user_default.emodub"


def run_engine_job(kind: str, params: dict, job_dir: Path, timeout: float = 600) -> dict:
    """Run one job with the real engine through the add-on's own client; returns its outputs."""
    from addon import engine, protocol

    job = engine.EngineJob(protocol.JobSpec(kind=kind, params=params), engine.resolve_engine(sys.executable), job_dir,
                           env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    job.start()
    state = job.wait(timeout)
    assert state.status == "done", f"{kind}: {state.error_message}\n{job.log_tail(30)}"
    return state.outputs


def test_an_editor_does_the_whole_job_from_blender(tmp_path: Path) -> None:
    bpy = pytest.importorskip("bpy")
    from core.synthetic.takes import synth_params, takes_from_corpus

    corpus = tmp_path / "corpus"
    run_engine_job("synth", synth_params(corpus, 64), tmp_path / "jobs")  # the camera's part, in the engine
    camera = takes_from_corpus(corpus, tmp_path / "footage")
    takes, shot_video, dub_audio = camera.takes, camera.shot_video, camera.dub_audio

    spec = importlib.util.spec_from_file_location("emodub_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(build)
    if PKG not in bpy.context.preferences.addons:
        zip_path = str(build.build_extension())
        assert bpy.ops.extensions.package_install_files(repo="user_default", filepath=zip_path,
                                                        enable_on_install=True) == {"FINISHED"}
    ops = importlib.import_module(f"{PKG}.operators")
    compat = importlib.import_module(f"{PKG}.compat")
    prefs = bpy.context.preferences.addons[PKG].preferences
    prefs.engine_command, prefs.engine_env = sys.executable, f"PYTHONPATH={ROOT};OMP_NUM_THREADS=1"
    workspace = tmp_path / "ws"
    prefs.workspace, prefs.device = str(workspace), "cpu"

    scene = bpy.data.scenes.new(f"workflow-{uuid.uuid4().hex[:6]}")
    scene.render.fps, scene.render.fps_base = 25, 1.0
    editor = scene.sequence_editor_create()
    settings = scene.emodub

    def press(op: str, timeout: float = 600) -> Any:
        """Click ``op`` and let the timer follow its job to the end; returns the job with the bars it showed."""
        with bpy.context.temp_override(scene=scene):
            assert getattr(bpy.ops.emodub, op).poll(), f"{op} is greyed out"
            assert getattr(bpy.ops.emodub, op)() == {"FINISHED"}
        job = ops.JOBS.get(settings.job_id)
        bars: list[tuple[str, float]] = []
        deadline = time.monotonic() + timeout
        while ops.poll_jobs() is not None and time.monotonic() < deadline:
            bars.append((job.state.status, job.state.fraction))
            time.sleep(0.2)
        assert job.state.status == "done", f"{op}: {job.state.error_message}\n{job.log_tail(30)}"
        job.bars = bars
        return job

    # 1. a workspace, from the preferences' button
    press("create_workspace")
    assert (workspace / "emodub.json").is_file()
    # 2. the actor's takes, each labelled with the emotion it plays
    settings.actor = "synth"
    footage = {emotion: [compat.top_strips(editor).new_movie(name=video.stem, filepath=str(video), channel=channel,
                                                             frame_start=1 + 100 * k) for k, video in enumerate(videos)]
               for channel, (emotion, videos) in enumerate(takes.items(), start=1)}
    for emotion, strips in footage.items():  # select an emotion's takes, label them, import them
        for strip in compat.all_strips(editor):
            strip.select = strip in strips
        settings.footage_emotion, settings.footage_intensity = emotion, 1.0
        before = {job.id for job in ops.JOBS.jobs()}
        press("import_footage")
        started = [job for job in ops.JOBS.jobs() if job.id not in before]
        assert len(started) == len(strips)
        for job in started:  # one job per take
            deadline = time.monotonic() + 300
            while ops.poll_jobs() is not None and not job.state.finished and time.monotonic() < deadline:
                time.sleep(0.2)
            assert job.state.status == "done", job.log_tail(30)
    # 3. consent, 4. training (tracking first: one job, one bar)
    settings.consent_by, settings.consent_scope = "nobody: a synthetic actor", "tests"
    settings.consent_document = "synthetic:emodub synth"
    press("record_consent")
    settings.a2e_iterations, settings.renderer_iterations, settings.track_iterations = 20, 6, 0.3
    train = press("train_actor", 900)
    running = [fraction for status, fraction in train.bars if status == "running"]
    assert running and running == sorted(running) and max(running) < 1.0, running  # one bar, never full early
    assert train.state.outputs["tracked_first"], "Train Actor did not track the imported takes"
    # 5. the shot to dub
    for strip in compat.all_strips(editor):
        strip.mute = True  # the takes are not part of the edit
    source = compat.top_strips(editor).new_movie(name="shot", filepath=str(shot_video), channel=4, frame_start=11)
    settings.source_strip, settings.output_channel = "shot", 6
    press("prepare_shot")
    # 6. dub audio and an emotion key
    settings.audio_file = str(dub_audio)
    settings.happy = 0.0
    settings.keyframe_insert("happy", frame=11)
    settings.happy = 1.0
    settings.keyframe_insert("happy", frame=11 + source.frame_final_duration // 2)
    # 7. preview the frame at the playhead
    scene.frame_current = 11 + source.frame_final_duration // 2
    preview = press("preview_frame")
    shown = compat.find_strip(editor, "shot.preview")
    assert shown is not None and shown.type == "IMAGE" and shown.frame_final_start == scene.frame_current
    assert Path(preview.state.outputs["frames"][0]).is_file()
    # 8. render the dub over the source strip
    press("render_dub")
    assert compat.find_strip(editor, "shot.preview") is None  # the render replaces the previewed frame
    new = [s for s in compat.all_strips(editor) if s.get("emodub_job") == settings.job_id]
    assert len(new) == 1 and new[0].channel == 6
    assert (new[0].frame_final_start, new[0].frame_final_duration) == (source.frame_final_start,
                                                                       source.frame_final_duration)
    # 9. the readable report, in Blender
    assert os.path.isfile(settings.last_report)
    with bpy.context.temp_override(scene=scene):
        assert bpy.ops.emodub.open_report() == {"FINISHED"}
    text = next(t for t in bpy.data.texts if t.filepath.endswith("report.md"))
    assert "emotion" in text.as_string().lower()
