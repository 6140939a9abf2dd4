"""The add-on inside Blender (the bpy module): install the built zip, dub a VSE scene end to end.

The engine here is the fake one (``fake_engine.py``, started as the ``emodub`` executable): it reads
the spec the add-on wrote, records it, speaks the real protocol and writes a real mp4 of the
requested frame count. Timers never fire in bpy-as-a-module, so the tests call the add-on's timer
function ``operators.poll_jobs`` themselves, exactly as the timer would.

Runs with bpy 5.0 (the project's venv) and, through ``test_blender_42.py``, with bpy 4.2 LTS. The
bpy 4.2 wheel is built without audio (no sound strips, no ``aud``): there the dub audio comes from the
"Audio file" setting and the mixdown test is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.blender
bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]
PKG = "bl_ext.user_default.emodub"
SRC_START, CLIP_FRAMES, FPS = 11, 40, 25


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def addon_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def addon() -> Iterator[SimpleNamespace]:
    spec = importlib.util.spec_from_file_location("emodub_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(build)
    zip_path = build.build_extension()
    result = bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(zip_path),
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    assert PKG in bpy.context.preferences.addons, "the extension did not enable"
    package = importlib.import_module(PKG)
    folder = Path(package.__file__).parent
    ns = SimpleNamespace(
        folder=folder, files_at_install=addon_files(folder), zip=zip_path,
        prefs=bpy.context.preferences.addons[PKG].preferences,
        ops=importlib.import_module(f"{PKG}.operators"), compat=importlib.import_module(f"{PKG}.compat"),
        jobspec=importlib.import_module(f"{PKG}.jobspec"), engine=importlib.import_module(f"{PKG}.engine"))
    yield ns


@pytest.fixture
def engine(addon: SimpleNamespace, fake_emodub: Path, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The fake engine as the configured engine, a workspace with actor 'anna', a record folder."""
    from core.workspace import Workspace

    record = tmp_path / "record"
    monkeypatch.setenv("EMODUB_FAKE_RECORD", str(record))
    monkeypatch.setenv("EMODUB_FAKE_MODE", "ok")
    ws = Workspace.create(tmp_path / "ws")
    ws.add_actor("anna")
    addon.prefs.engine_command = str(fake_emodub)
    addon.prefs.engine_env = ""
    addon.prefs.workspace = str(ws.root)
    addon.prefs.device = "cpu"

    def received(job_id: str) -> dict[str, Any]:
        return json.loads((record / f"{job_id}.json").read_text())

    def pid_of(job_id: str) -> int | None:
        path = record / f"{job_id}.pid"
        return int(path.read_text()) if path.is_file() else None

    yield SimpleNamespace(ws=ws, record=record, received=received, pid_of=pid_of,
                          set_mode=lambda mode: monkeypatch.setenv("EMODUB_FAKE_MODE", mode))
    for job in addon.ops.JOBS.running():  # never leave an engine behind, whatever failed
        job.kill()
        job.wait(timeout=10)
    addon.ops.stop_warm_engine()  # the next test's engine records elsewhere


@pytest.fixture
def scene(addon: SimpleNamespace, engine: SimpleNamespace, clip: Path, dub_wav: Path) -> Iterator[Any]:
    """A VSE scene: the synthetic clip at frame 11 (channel 1), the dub sound under it (channel 2)."""
    scene = bpy.data.scenes.new(f"dub-{uuid.uuid4().hex[:6]}")
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    editor = scene.sequence_editor_create()
    strips = addon.compat.top_strips(editor)
    source = strips.new_movie(name="take1", filepath=str(clip), channel=1, frame_start=SRC_START)
    assert source.frame_final_duration == CLIP_FRAMES
    settings = scene.emodub
    try:
        strips.new_sound(name="dub_fr", filepath=str(dub_wav), channel=2, frame_start=SRC_START)
        settings.sound_strip = "dub_fr"
    except RuntimeError as exc:  # bpy 4.2's wheel has no audio support
        assert "Audaspace" in str(exc)
        settings.audio_file = str(dub_wav)
    settings.source_strip = "take1"
    settings.actor = "anna"
    settings.output_channel = 3
    engine.ws.set_shot(addon.jobspec.shot_name_for(str(clip)), {"video": "shots/x/video.mp4"})
    yield scene
    bpy.data.scenes.remove(scene)


def run_op(scene: Any, name: str, **props: Any) -> set[str]:
    with bpy.context.temp_override(scene=scene):
        return getattr(bpy.ops.emodub, name)(**props)


def drive(addon: SimpleNamespace, until: Any = None, timeout: float = 60.0) -> None:
    """Call the timer function like Blender's timer would, until every job was handled (or ``until``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        interval = addon.ops.poll_jobs()
        if until is not None and until():
            return
        if until is None and interval is None:
            return
        time.sleep(0.05)
    pytest.fail("the job did not finish in time")


def strip_names(scene: Any, addon: SimpleNamespace) -> set[str]:
    return {s.name for s in addon.compat.all_strips(scene.sequence_editor)}


def last_job(addon: SimpleNamespace, scene: Any) -> Any:
    job = addon.ops.JOBS.get(scene.emodub.job_id)
    assert job is not None
    return job


# --------------------------------------------------------------------------------------------------

def test_zip_installs_enables_and_registers_the_ui(addon: SimpleNamespace) -> None:
    import zipfile

    with zipfile.ZipFile(addon.zip) as zf:
        assert addon_files(addon.folder) == set(zf.namelist())
    scene = bpy.context.scene
    for name in ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised"):
        prop = scene.emodub.bl_rna.properties[name]
        assert prop.is_animatable and (prop.hard_min, prop.hard_max) == (0.0, 1.0)
    for op in ("check_engine", "prepare_shot", "train_actor", "render_dub", "cancel_job", "emotion_preset"):
        assert hasattr(bpy.ops.emodub, op)
    assert bpy.types.EMODUB_PT_dubbing.bl_category == "Dubbing"
    assert bpy.types.EMODUB_PT_dubbing.bl_space_type == "SEQUENCE_EDITOR"


def test_render_dub_end_to_end(addon: SimpleNamespace, engine: SimpleNamespace, scene: Any,
                               clip: Path, dub_wav: Path) -> None:
    settings = scene.emodub
    settings.happy = 0.0
    settings.keyframe_insert("happy", frame=SRC_START)                     # 0 at the strip's start
    settings.happy = 1.0
    settings.keyframe_insert("happy", frame=SRC_START + CLIP_FRAMES // 2)  # 1 at its middle
    settings.surprised = 0.3                                                # not keyed: a constant
    source = addon.compat.find_strip(scene.sequence_editor, "take1")
    source.select = True
    scene.sequence_editor.active_strip = source
    assert run_op(scene, "emotion_preset", preset="PULSE", emotion="sad", peak=0.6) == {"FINISHED"}
    sad = addon.compat.find_fcurve(scene, "emodub.sad")
    keys = [tuple(p.co) for p in sad.keyframe_points]
    assert keys == [pytest.approx(k) for k in [(11.0, 0.0), (20.75, 0.6), (40.25, 0.6), (50.0, 0.0)]]
    before = strip_names(scene, addon)

    t0 = time.monotonic()
    assert run_op(scene, "render_dub") == {"FINISHED"}
    assert time.monotonic() - t0 < 5.0  # it started the engine and returned; it did not wait for it
    job = last_job(addon, scene)
    assert settings.job_running and job.state.kind == "dub"
    drive(addon)

    state = job.state
    assert state.status == "done", f"{state.error_message} / {job.log_tail()}"
    assert not settings.job_running and settings.last_error == "" and "added" in settings.status_text
    assert "warning: the dub audio runs 1.00 s past the end of the shot" in settings.status_text
    assert settings.last_report == state.outputs["report"] and os.path.isfile(settings.last_report)
    (new_name,) = strip_names(scene, addon) - before
    new = addon.compat.find_strip(scene.sequence_editor, new_name)
    assert new.type == "MOVIE" and new.channel == 3 and new["emodub_job"] == job.id
    assert os.path.samefile(bpy.path.abspath(new.filepath), state.outputs["video"])
    assert new.frame_final_start == source.frame_final_start == SRC_START
    assert new.frame_final_duration == source.frame_final_duration == CLIP_FRAMES
    if settings.sound_strip:
        assert addon.compat.find_strip(scene.sequence_editor, "dub_fr") is not None  # the dub sound stays

    params = engine.received(job.id)["params"]
    curves = params["emotions"]
    assert (curves["format"], curves["fps"]) == ("emodub-emotion-curves", 25.0)
    assert (curves["frame_start"], curves["frame_end"]) == (SRC_START, SRC_START + CLIP_FRAMES - 1)
    frames = range(SRC_START, SRC_START + CLIP_FRAMES)
    happy = addon.compat.find_fcurve(scene, "emodub.happy")
    assert curves["per_frame"]["happy"] == [happy.evaluate(f) for f in frames]  # exactly the F-curve
    assert curves["per_frame"]["sad"] == [sad.evaluate(f) for f in frames]
    assert curves["per_frame"]["happy"][0] == 0.0 and curves["per_frame"]["happy"][20] == 1.0
    assert curves["per_frame"]["surprised"] == [pytest.approx(0.3)] * CLIP_FRAMES
    assert curves["per_frame"]["angry"] == [0.0] * CLIP_FRAMES
    shot = addon.jobspec.shot_name_for(str(clip))
    assert {k: params[k] for k in ("actor", "shot", "length", "device")} == {
        "actor": "anna", "shot": shot, "length": "shot", "device": "cpu"}
    assert "renderer" not in params  # the actor's best: the engine decides
    assert os.path.samefile(params["audio"], dub_wav)
    assert params["audio_offset_s"] == 0.0
    assert params["audio_duration_s"] == (CLIP_FRAMES / FPS if settings.sound_strip else None)
    assert not pid_alive(job.pid)


def test_trimmed_source_strip_is_matched_frame_for_frame(addon: SimpleNamespace, engine: SimpleNamespace,
                                                         scene: Any) -> None:
    source = addon.compat.find_strip(scene.sequence_editor, "take1")
    addon.compat.set_content_trim(source, 3, 4)  # 3 file frames cut at the start, 4 at the end
    source.frame_offset_start, source.frame_offset_end = 2, 5  # and handles
    assert (source.frame_final_start, source.frame_final_duration) == (SRC_START + 2, CLIP_FRAMES - 14)
    before = strip_names(scene, addon)
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    assert job.state.status == "done", job.state.error_message
    (new_name,) = strip_names(scene, addon) - before
    new = addon.compat.find_strip(scene.sequence_editor, new_name)
    assert addon.compat.content_trim(new) == (3, 4)
    assert (new.frame_final_start, new.frame_final_end) == (source.frame_final_start, source.frame_final_end)
    curves = engine.received(job.id)["params"]["emotions"]
    # The whole file is the shot: its frame 0 sits 3 frames before the strip's content start.
    assert (curves["frame_start"], len(curves["per_frame"]["happy"])) == (SRC_START - 3, CLIP_FRAMES)


def test_prepare_and_train_with_emodub_found_on_path(addon: SimpleNamespace, engine: SimpleNamespace,
                                                     scene: Any, clip: Path, fake_emodub: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    addon.prefs.engine_command = ""  # unset: `emodub` on PATH
    monkeypatch.setenv("PATH", f"{fake_emodub.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert run_op(scene, "prepare_shot") == {"FINISHED"}
    prepare = last_job(addon, scene)
    drive(addon)
    assert prepare.state.status == "done" and "is prepared" in scene.emodub.status_text
    assert engine.received(prepare.id)["params"] == {
        "video": str(clip), "shot": addon.jobspec.shot_name_for(str(clip)), "device": "cpu"}
    assert engine.received(prepare.id)["workspace"] == str(engine.ws.root)
    assert run_op(scene, "train_actor") == {"FINISHED"}
    train = last_job(addon, scene)
    drive(addon)
    assert train.state.status == "done" and engine.received(train.id)["params"] == {"actor": "anna",
                                                                                    "device": "cpu"}


def test_dub_strip_is_frame_exact_at_23976(addon: SimpleNamespace, engine: SimpleNamespace, scene: Any,
                                          tmp_path: Path, dub_wav: Path) -> None:
    """At a 24000/1001 scene the dub strip starts and ends on the source strip's frames (trims and handles too),
    its file runs at the scene's rate, and the delivery choices reach the engine."""
    from fractions import Fraction

    import numpy as np

    from core.io.video import VideoWriter, probe

    scene.render.fps, scene.render.fps_base = 24, 1.001
    ntsc = tmp_path / "take_ntsc.mp4"
    with VideoWriter(ntsc, Fraction(24000, 1001), preset="ultrafast") as writer:
        for i in range(CLIP_FRAMES):
            writer.write(np.full((48, 64, 3), 5 * i, np.uint8))
    strips = addon.compat.top_strips(scene.sequence_editor)
    source = strips.new_movie(name="ntsc", filepath=str(ntsc), channel=4, frame_start=SRC_START + 1001)
    addon.compat.set_content_trim(source, 2, 3)
    source.frame_offset_start, source.frame_offset_end = 1, 4
    settings = scene.emodub
    settings.source_strip = "ntsc"
    settings.sound_strip, settings.audio_file = "", str(dub_wav)  # a file: it starts with the shot
    settings.output_channel = 0
    settings.delivery_format, settings.matte, settings.face_id = "prores4444", "alpha", 1
    engine.ws.set_shot(addon.jobspec.shot_name_for(str(ntsc)), {"video": "shots/x/video.mp4"})
    before = strip_names(scene, addon)
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    assert job.state.status == "done", job.state.error_message
    (new_name,) = strip_names(scene, addon) - before
    new = addon.compat.find_strip(scene.sequence_editor, new_name)
    assert (new.frame_final_start, new.frame_final_end) == (source.frame_final_start, source.frame_final_end)
    assert addon.compat.content_trim(new) == (2, 3)
    assert new.fps == pytest.approx(24000 / 1001, abs=1e-4) and new.fps == pytest.approx(source.fps)
    assert probe(job.state.outputs["video"]).rate == Fraction(24000, 1001)
    params = engine.received(job.id)["params"]
    assert (params["format"], params["matte"], params["face"]) == ("prores4444", "alpha", 1)
    assert params["emotions"]["fps"] == pytest.approx(24000 / 1001)
    assert len(params["emotions"]["per_frame"]["happy"]) == CLIP_FRAMES


def test_pick_face_turns_a_click_into_a_face_id(addon: SimpleNamespace, engine: SimpleNamespace,
                                               scene: Any, clip: Path) -> None:
    shot = addon.jobspec.shot_name_for(str(clip))
    faces = {"format": "emodub-faces", "version": 1, "frames": CLIP_FRAMES, "width": 64, "height": 48,
             "faces": [{"id": 0, "first": 0, "last": CLIP_FRAMES - 1, "detected": CLIP_FRAMES, "box": [0, 0, .5, 1]},
                       {"id": 1, "first": 0, "last": CLIP_FRAMES - 1, "detected": CLIP_FRAMES, "box": [.5, 0, 1, 1]}],
             "boxes": {"0": [[0.05, 0.1, 0.45, 0.9]] * CLIP_FRAMES, "1": [[0.55, 0.1, 0.95, 0.9]] * CLIP_FRAMES}}
    folder = engine.ws.shot_dir(shot)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faces.json").write_text(json.dumps(faces))
    scene.frame_current = SRC_START + 5
    assert run_op(scene, "pick_face", x=0.8, y=0.5) == {"FINISHED"}
    assert scene.emodub.face_id == 1 and "face 1" in scene.emodub.status_text
    assert run_op(scene, "pick_face", x=0.2, y=0.5) == {"FINISHED"} and scene.emodub.face_id == 0
    with pytest.raises(RuntimeError, match="no face at"):
        run_op(scene, "pick_face", x=0.5, y=0.02)
    assert scene.emodub.face_id == 0 and "face 1: right" in scene.emodub.last_hint


def test_missing_consent_is_shown_as_a_user_error(addon: SimpleNamespace, engine: SimpleNamespace,
                                                  scene: Any) -> None:
    engine.set_mode("no_consent")
    before = strip_names(scene, addon)
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    settings = scene.emodub
    assert job.state.error_code == "no_consent" and not job.state.is_bug
    assert "no consent record" in settings.last_error and "Record Actor Consent" in settings.last_hint
    assert "bug" not in settings.status_text and strip_names(scene, addon) == before


def test_no_engine_configured(addon: SimpleNamespace, engine: SimpleNamespace, scene: Any, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    addon.prefs.engine_command = ""
    monkeypatch.setenv("PATH", str(tmp_path))  # no emodub anywhere
    before, jobs = strip_names(scene, addon), len(addon.ops.JOBS.jobs())
    with pytest.raises(RuntimeError, match="no engine is configured"):
        run_op(scene, "render_dub")
    assert "no engine is configured" in scene.emodub.last_error
    assert "Engine command" in scene.emodub.last_hint
    assert strip_names(scene, addon) == before and len(addon.ops.JOBS.jobs()) == jobs


def test_engine_error_shows_message_and_hint_and_adds_nothing(addon: SimpleNamespace, engine: SimpleNamespace,
                                                              scene: Any) -> None:
    engine.set_mode("fail")
    before = strip_names(scene, addon)
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    settings = scene.emodub
    assert settings.last_error == "actor 'anna' has no trained renderer"
    assert settings.last_hint == "press Train Actor first" and "failed" in settings.status_text
    assert strip_names(scene, addon) == before and not settings.job_running
    assert job.state.exit_code == 1 and not pid_alive(job.pid)


def test_engine_crash_midway_shows_a_clear_message(addon: SimpleNamespace, engine: SimpleNamespace,
                                                   scene: Any) -> None:
    engine.set_mode("crash")
    before = strip_names(scene, addon)
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    settings = scene.emodub
    assert "engine stopped unexpectedly (exit code 70)" in settings.last_error
    assert "simulated crash" in settings.last_error and str(job.log_path) in settings.last_hint
    assert strip_names(scene, addon) == before and not pid_alive(job.pid)


def test_cancel_stops_the_engine_and_adds_nothing(addon: SimpleNamespace, engine: SimpleNamespace,
                                                  scene: Any) -> None:
    engine.set_mode("slow")  # 400 steps of 0.05 s
    before = strip_names(scene, addon)
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon, until=lambda: job.state.done >= 3)
    assert scene.emodub.job_running and 0 < scene.emodub.progress < 0.1
    assert scene.emodub.status_text.startswith("Render dub of take1: render 3/400")
    # A second job on the same shot is refused while this one runs.
    with pytest.raises(RuntimeError, match="still running on"):
        run_op(scene, "render_dub")
    assert run_op(scene, "cancel_job") == {"FINISHED"}
    drive(addon)
    assert job.state.status == "cancelled" and job.state.exit_code == 3
    assert scene.emodub.status_text.endswith("cancelled") and not scene.emodub.job_running
    assert strip_names(scene, addon) == before and not pid_alive(job.pid)


def test_shot_not_prepared_is_refused(addon: SimpleNamespace, engine: SimpleNamespace, scene: Any) -> None:
    scene.emodub.shot = "never-prepared"
    with pytest.raises(RuntimeError, match="not prepared"):
        run_op(scene, "render_dub")
    assert "Prepare Shot" in scene.emodub.last_hint


def test_late_sound_strip_is_mixed_down_with_leading_silence(addon: SimpleNamespace, engine: SimpleNamespace,
                                                             scene: Any, dub_wav: Path) -> None:
    if not scene.emodub.sound_strip:
        pytest.skip("this bpy build has no audio support")
    late = addon.compat.find_strip(scene.sequence_editor, "dub_fr")
    late.frame_start = SRC_START + 10  # 0.4 s after the shot starts
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    assert job.state.status == "done", job.state.error_message
    params = engine.received(job.id)["params"]
    mix = Path(params["audio"])
    assert mix.parent == job.job_dir and mix.name.endswith("-mixdown.wav")
    assert (params["audio_offset_s"], params["audio_duration_s"]) == (0.0, CLIP_FRAMES / FPS)
    import numpy as np

    with wave.open(str(mix)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels)
    assert (rate, channels) == (48000, 2)
    assert abs(len(samples) / rate - CLIP_FRAMES / FPS) < 0.05
    lead = int(0.4 * rate)
    assert np.abs(samples[: lead - 200]).max() < 50        # silence before the sound strip starts
    assert np.abs(samples[lead + 200: lead + 4000]).max() > 5000  # then the dub's tone


def test_check_engine_shows_the_doctor_report(addon: SimpleNamespace, engine: SimpleNamespace) -> None:
    addon.prefs.engine_devices = ""
    addon.prefs.device = "cuda"  # before a check every device is offered
    assert bpy.ops.emodub.check_engine() == {"FINISHED"}
    drive(addon, until=lambda: not addon.ops._DOCTOR)
    assert addon.prefs.engine_check_ok and "all required checks passed" in addon.prefs.engine_check_summary
    assert "ok: python" in addon.prefs.engine_check_details
    # the engine has no GPU: the device list offers what it has, and the choice falls back to Auto
    properties = importlib.import_module(f"{PKG}.properties")
    assert [item[0] for item in properties._device_items(addon.prefs, bpy.context)] == ["auto", "cpu"]
    assert addon.prefs.engine_devices == "auto,cpu" and addon.prefs.device == "auto"
    with pytest.raises(TypeError):
        addon.prefs.device = "cuda"
    addon.prefs.engine_command = "/nowhere/python3"
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.emodub.check_engine()
    assert not addon.prefs.engine_check_ok and "does not exist" in addon.prefs.engine_check_summary


def test_nothing_was_written_inside_the_addon_folder(addon: SimpleNamespace) -> None:
    assert addon_files(addon.folder) == addon.files_at_install
    jobs_dir = addon.ops.job_dir()
    assert addon.folder not in jobs_dir.parents and any(jobs_dir.glob("*.json"))


class RecordingLayout:
    """Stands in for ``UILayout`` when calling the panels' ``draw``: checks every property and operator
    they name against the real RNA (a typo would only show as a broken panel in Blender)."""

    def __init__(self, calls: list[tuple[str, str]]) -> None:
        self.__dict__["calls"] = calls

    def __setattr__(self, name: str, value: Any) -> None:
        assert name in {"use_property_split", "use_property_decorate", "alert", "enabled", "active"}, name
        self.__dict__[name] = value

    def _child(self, *_a: Any, **_k: Any) -> RecordingLayout:
        return RecordingLayout(self.calls)

    row = column = box = split = _child

    def prop(self, data: Any, name: str, **_kw: Any) -> None:
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.calls.append(("prop", name))

    def label(self, text: str = "", **_kw: Any) -> None:
        self.calls.append(("label", text))

    def progress(self, factor: float = 0.0, type: str = "BAR", text: str = "") -> None:
        assert 0.0 <= factor <= 1.0 and type in {"BAR", "RING"}
        self.calls.append(("progress", text))

    def operator(self, idname: str, **_kw: Any) -> Any:
        category, name = idname.split(".")
        props = getattr(getattr(bpy.ops, category), name).get_rna_type().properties
        self.calls.append(("operator", idname))

        class OperatorProps:
            def __setattr__(self, key: str, value: Any) -> None:
                assert key in props, f"{idname} has no property {key!r}"

        return OperatorProps()


def test_panels_and_preferences_draw(addon: SimpleNamespace, engine: SimpleNamespace, scene: Any) -> None:
    settings = scene.emodub
    context = SimpleNamespace(scene=scene, preferences=bpy.context.preferences)
    panels = [bpy.types.EMODUB_PT_dubbing, bpy.types.EMODUB_PT_emotions, bpy.types.EMODUB_PT_jobs]
    for running, error, report in [(False, "", ""), (True, "boom", "/r/report.json")]:
        settings.job_running, settings.last_error, settings.last_report = running, error, report
        settings.status_text = "render 3/40"
        calls: list[tuple[str, str]] = []
        for panel in panels:
            assert panel.poll(context)
            panel.draw(SimpleNamespace(layout=RecordingLayout(calls)), context)
        names = {name for _kind, name in calls}
        assert {"emodub.prepare_shot", "emodub.train_actor", "emodub.render_dub", "emodub.emotion_preset",
                "happy", "surprised", "actor", "source_strip", "sound_strip", "output_channel"} <= names
        assert ("emodub.cancel_job" in names) == running
        assert (("progress", "render 3/40") in calls) == running
        assert ("emodub.open_report" in names) == bool(report)
        assert (("label", "boom") in calls) == bool(error)
    settings.job_running, settings.last_error, settings.last_report = False, "", ""
    prefs_calls: list[tuple[str, str]] = []
    proxy = SimpleNamespace(layout=RecordingLayout(prefs_calls), bl_rna=addon.prefs.bl_rna,
                            engine_check_summary="emodub 0.1: all required checks passed",
                            engine_check_details="ok: python - 3.11", engine_check_ok=True)
    type(addon.prefs).draw(proxy, context)
    assert {"engine_command", "engine_env", "workspace", "device", "emodub.check_engine"} <= {
        name for _kind, name in prefs_calls}
    assert ("label", "ok: python - 3.11") in prefs_calls


def test_renderer_list_comes_from_the_engine_and_the_pick_reaches_the_dub(addon: SimpleNamespace,
                                                                          engine: SimpleNamespace,
                                                                          scene: Any) -> None:
    """The fake engine offers a variant the real one does not have (``fake_nerf``): the add-on lists it, marks
    what the actor has trained (from the workspace manifest), and sends the pick with the dub."""
    properties = importlib.import_module(f"{PKG}.properties")
    renderers = importlib.import_module(f"{PKG}.renderers")
    renderers.CACHE.clear()
    engine.ws.set_model("anna", "fake_nerf", {"kind": "renderer", "variant": "fake_nerf"})
    settings = scene.emodub
    with bpy.context.temp_override(scene=scene):
        items = properties._renderer_items(settings, bpy.context)
        again = properties._renderer_items(settings, bpy.context)
    assert again is items  # cached: Blender calls this on every redraw
    assert [i[0] for i in items] == [renderers.BEST, "neural_texture", "fake_nerf"]
    labels = {i[0]: i[1] for i in items}
    assert labels["fake_nerf"].endswith("(Trained)") and not labels["neural_texture"].endswith("(Trained)")
    settings.renderer = "fake_nerf"
    assert run_op(scene, "render_dub") == {"FINISHED"}
    job = addon.ops.JOBS.jobs()[-1]
    state = job.wait(timeout=60)
    assert state.status == "done", state
    assert engine.received(job.id)["params"]["renderer"] == "fake_nerf"
    settings.renderer = renderers.BEST


def test_dub_all_selected_strips_runs_one_batch_and_adds_a_strip_per_language(
        addon: SimpleNamespace, engine: SimpleNamespace, scene: Any, clip: Path, dub_wav: Path) -> None:
    editor = scene.sequence_editor
    strips = addon.compat.top_strips(editor)
    second = strips.new_movie(name="take2", filepath=str(clip), channel=1, frame_start=SRC_START + CLIP_FRAMES + 5)
    try:
        strips.new_sound(name="dub_de_1", filepath=str(dub_wav), channel=5, frame_start=SRC_START)
        strips.new_sound(name="dub_de_2", filepath=str(dub_wav), channel=5, frame_start=second.frame_final_start)
        strips.new_sound(name="dub_fr_2", filepath=str(dub_wav), channel=2, frame_start=second.frame_final_start)
    except RuntimeError:  # bpy 4.2's wheel has no audio support
        pytest.skip("this bpy has no audio support")
    for strip in addon.compat.all_strips(editor):
        strip.select = strip.type == "MOVIE"
    settings = scene.emodub
    settings.happy = 0.5
    with bpy.context.temp_override(scene=scene):
        settings.batch_languages = ""
        assert not bpy.ops.emodub.dub_selected.poll()  # no languages yet: greyed out, with a reason
        settings.batch_languages = "de:5, fr:2"
        assert bpy.ops.emodub.dub_selected.poll()
    before = strip_names(scene, addon)
    assert run_op(scene, "dub_selected") == {"FINISHED"}
    job = last_job(addon, scene)
    assert job.state.kind == "batch.dub"
    drive(addon)
    state = job.state
    assert state.status == "done", f"{state.error_message} / {job.log_tail()}"
    added = strip_names(scene, addon) - before
    assert added == {"take1.de.dub", "take1.fr.dub", "take2.de.dub", "take2.fr.dub"}
    for name in added:
        new = addon.compat.find_strip(editor, name)
        source = addon.compat.find_strip(editor, name.split(".")[0])
        assert new.frame_final_start == source.frame_final_start
        assert new.frame_final_duration == source.frame_final_duration
    assert settings.last_report.endswith("batch_report.md") and "added 4 dub strip(s)" in settings.status_text
    plan = json.loads(Path(engine.received(job.id)["params"]["plan"]).read_text())
    assert {i["id"] for i in plan["items"]} == {"take1-de", "take1-fr", "take2-de", "take2-fr"}
    assert all(i["options"]["length"] == "shot" for i in plan["items"])


def test_every_operator_polls_with_a_reason_and_labels_are_title_case(addon: SimpleNamespace, scene: Any) -> None:
    for cls in addon.ops.classes:
        assert "poll" in {name for klass in cls.__mro__ if klass is not bpy.types.Operator for name in vars(klass)}, \
            cls.__name__
        words = [w for w in cls.bl_label.split() if w not in ("a", "an", "the", "of", "to", "in", "All")]
        assert all(w[0].isupper() for w in words), cls.bl_label
        assert "\n" not in (cls.__doc__ or "") and "`" not in (cls.__doc__ or ""), cls.__name__
    for owner in (scene.emodub, addon.prefs):  # property tooltips: one clean line each
        for prop in owner.bl_rna.properties:
            assert "\n" not in prop.description and "`" not in prop.description, prop.identifier
    settings = scene.emodub
    settings.last_report = ""
    with bpy.context.temp_override(scene=scene):
        assert not bpy.ops.emodub.open_report.poll()  # nothing to open yet
        assert bpy.ops.emodub.render_dub.poll()  # the fixture chose actor, source and sound
        settings.actor = ""
        assert not bpy.ops.emodub.render_dub.poll() and not bpy.ops.emodub.train_actor.poll()
        settings.actor = "anna"
        settings.source_strip = "gone"
        assert not bpy.ops.emodub.render_dub.poll() and not bpy.ops.emodub.prepare_shot.poll()


def test_preview_frame_shows_the_dubs_frame_at_the_playhead(addon: SimpleNamespace, engine: SimpleNamespace,
                                                            scene: Any) -> None:
    scene.frame_current = SRC_START + 5
    assert run_op(scene, "preview_frame") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    assert job.state.status == "done", job.log_tail()
    params = engine.received(job.id)["params"]
    assert (params["frame"], params["count"], params["length"]) == (5, 1, "shot") and "name" not in params
    strip = addon.compat.find_strip(scene.sequence_editor, "take1.preview")
    assert strip is not None and strip.type == "IMAGE"
    assert (strip.frame_final_start, strip.frame_final_duration) == (SRC_START + 5, 1) and strip.channel >= 2
    scene.frame_current = SRC_START + 8  # a second preview replaces the first
    assert run_op(scene, "preview_frame") == {"FINISHED"}
    drive(addon)
    previews = [s for s in addon.compat.all_strips(scene.sequence_editor) if s.name.startswith("take1.preview")]
    assert len(previews) == 1 and previews[0].frame_final_start == SRC_START + 8
    second = last_job(addon, scene)
    pids = {engine.pid_of(j.id) for j in (job, second)}
    assert isinstance(job, addon.engine.WarmJob) and len(pids) == 1 and None not in pids  # one warm engine
    warm = addon.ops.WARM[0]
    assert warm.alive
    addon.ops.stop_warm_engine()  # what disabling the add-on does: the engine quits
    assert not warm.alive and not addon.ops.WARM
    scene.frame_current = SRC_START - 3  # before the strip
    with pytest.raises(RuntimeError, match="not over the source strip"):
        run_op(scene, "preview_frame")


def test_import_actor_footage_sends_each_selected_strip_as_a_labelled_clip(addon: SimpleNamespace,
                                                                            engine: SimpleNamespace, scene: Any,
                                                                            clip: Path) -> None:
    editor = scene.sequence_editor
    for strip in addon.compat.all_strips(editor):
        strip.select = strip.type == "MOVIE"
    settings = scene.emodub
    settings.footage_emotion, settings.footage_intensity = "happy", 0.6
    settings.footage_sentence = "s07"
    with bpy.context.temp_override(scene=scene):
        settings.actor = ""
        assert not bpy.ops.emodub.import_footage.poll()  # no actor named: greyed out
        settings.actor = "anna"
    assert run_op(scene, "import_footage") == {"FINISHED"}
    job = last_job(addon, scene)
    drive(addon)
    assert job.state.status == "done" and "Train Actor next" in settings.status_text
    params = engine.received(job.id)["params"]
    assert params == {"video": str(clip), "actor": "anna", "clip": clip.stem, "emotion": "happy:0.6",
                      "sentence": "s07"}
    from core.jobs.registry import get_kind

    assert get_kind("ingest").check_params(params) == []  # the engine takes them as they are
