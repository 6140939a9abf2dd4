"""Render Dub against the REAL engine's ``dub`` job, end to end in Blender.

Skipped while the engine has no ``dub`` kind (or the stages it needs). When they exist: a tiny
synthetic actor is made and trained in a fresh workspace with the engine's own CLI jobs, the add-on
prepares a synthetic shot, and Render Dub runs through the same operator and poll function as with
the fake engine; the checks are on the real output (strip placement, frame count, report).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.blender, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PKG = "bl_ext.user_default.emodub"
NEEDED_KINDS = ("dub", "synth", "ingest", "train.actor", "shot.prepare", "actor.consent")


def missing_kinds() -> list[str]:
    from core.jobs.registry import get_kind

    return [name for name in NEEDED_KINDS if get_kind(name) is None]


def run_engine_job(kind: str, params: dict, workspace: Path | None, job_dir: Path,
                   timeout: float = 900) -> dict:
    """Run one job with the real engine through the add-on's own client; returns its outputs."""
    from addon import engine, protocol

    job = engine.EngineJob(protocol.JobSpec(kind=kind, params=params,
                                            workspace=str(workspace) if workspace else None),
                           engine.resolve_engine(sys.executable), job_dir,
                           env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    job.start()
    state = job.wait(timeout)
    assert state.status == "done", f"{kind}: {state.error_message}\n{job.log_tail(30)}"
    return state.outputs


def test_render_dub_with_the_real_engine(tmp_path: Path) -> None:
    missing = missing_kinds()
    if missing:
        pytest.skip(f"the engine has no job kind(s) {', '.join(missing)} yet")
    bpy = pytest.importorskip("bpy")
    from core.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    corpus = tmp_path / "corpus"
    # Params exactly as the shared contract of job kinds names them.
    run_engine_job("synth", {"out": str(corpus), "sentences": 2, "emotions": ["neutral", "happy"],
                             "intensities": [3], "size": 64, "seed": 0}, None, tmp_path / "jobs")
    videos = sorted(corpus.rglob("*.mp4"))
    assert len(videos) >= 2, "synth wrote fewer than two clips"
    for i, video in enumerate(videos[:-1]):
        run_engine_job("ingest", {"video": str(video), "actor": "synth", "clip": f"c{i}"}, ws.root,
                       tmp_path / "jobs")
        run_engine_job("track", {"actor": "synth", "clip": f"c{i}", "photometric": False, "iterations": 0.3,
                                 "overlay": False, "device": "cpu"}, ws.root, tmp_path / "jobs")
    # The corpus is the synthetic actor (no real person); its footage is ingested like anyone's, so it needs the
    # consent record every actor needs before a dub.
    run_engine_job("actor.consent", {"actor": "synth", "consented_by": "nobody: synthetic actor",
                                     "scope": "synthetic: the test corpus", "document": "synthetic:emodub synth"},
                   ws.root, tmp_path / "jobs")
    run_engine_job("train.actor", {"actor": "synth", "device": "cpu", "a2e_iterations": 20,
                                   "renderer_iterations": 6}, ws.root, tmp_path / "jobs")
    shot_video, dub_audio = videos[-1], next(corpus.rglob("*.wav"))

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
    prefs.workspace, prefs.device = str(ws.root), "cpu"

    scene = bpy.data.scenes.new(f"real-{uuid.uuid4().hex[:6]}")
    scene.render.fps, scene.render.fps_base = 25, 1.0
    editor = scene.sequence_editor_create()
    source = compat.top_strips(editor).new_movie(name="shot", filepath=str(shot_video), channel=1,
                                                 frame_start=1)
    scene.emodub.source_strip, scene.emodub.actor, scene.emodub.output_channel = "shot", "synth", 3
    scene.emodub.audio_file = str(dub_audio)
    scene.emodub.happy = 0.0
    scene.emodub.keyframe_insert("happy", frame=1)
    scene.emodub.happy = 1.0
    scene.emodub.keyframe_insert("happy", frame=1 + source.frame_final_duration // 2)

    def run_to_end(op: str, timeout: float) -> None:
        with bpy.context.temp_override(scene=scene):
            assert getattr(bpy.ops.emodub, op)() == {"FINISHED"}
        job = ops.JOBS.get(scene.emodub.job_id)
        deadline = time.monotonic() + timeout
        while ops.poll_jobs() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.state.status == "done", f"{job.state.error_message}\n{job.log_tail(30)}"

    run_to_end("prepare_shot", 900)
    run_to_end("render_dub", 900)
    new = [s for s in compat.all_strips(editor) if s.get("emodub_job") == scene.emodub.job_id]
    assert len(new) == 1 and new[0].channel == 3
    assert new[0].frame_final_start == source.frame_final_start
    assert new[0].frame_final_duration == source.frame_final_duration
    assert os.path.isfile(scene.emodub.last_report)
