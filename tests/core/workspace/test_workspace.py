from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.workspace import (
    SCHEMA_VERSION,
    LockBusy,
    Workspace,
    WorkspaceError,
    atomic_write_json,
    atomic_write_text,
)
from core.workspace.manifest import MANIFEST_NAME

ROOT = Path(__file__).resolve().parents[3]


def test_create_open_and_records(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    ws.set_clip("anna", "take1", {"video": "actors/anna/clips/take1/video.mp4", "fps": 25, "frames": 10})
    ws.set_clip_emotion("anna", "take1", {"happy": 0.66})
    ws.set_shot("s1", {"video": "shots/s1/video.mp4"})
    again = Workspace.open(tmp_path / "w")
    assert again.actors() == ["anna"]
    assert again.clip("anna", "take1")["emotion"] == {"happy": 0.66}
    assert again.shot("s1")["video"].endswith("video.mp4")
    assert again.validate() == ["clip anna/take1: video file actors/anna/clips/take1/video.mp4 is missing"]
    with pytest.raises(WorkspaceError, match="no clip 'nope'"):
        again.clip("anna", "nope")


def test_bad_names_and_emotions_are_refused(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    with pytest.raises(WorkspaceError, match="invalid clip name"):
        ws.set_clip("anna", "../escape", {})
    ws.set_clip("anna", "t", {})
    with pytest.raises(WorkspaceError, match="unknown emotion 'joyful'"):
        ws.set_clip_emotion("anna", "t", {"joyful": 0.5})
    with pytest.raises(WorkspaceError, match=r"must be in \[0, 1\]"):
        ws.set_clip_emotion("anna", "t", {"happy": 1.5})
    assert Workspace.open(ws.root).clip("anna", "t")["emotion"] == {}  # nothing bad reached the disk


def test_manifest_validation_messages(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not an emodub workspace"):
        Workspace.open(tmp_path)
    ws = Workspace.create(tmp_path / "w")
    manifest = json.loads(ws.manifest_path.read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    ws.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(WorkspaceError, match="newer emodub") as info:
        Workspace.open(ws.root)
    assert "update emodub" in info.value.hint
    manifest["schema_version"] = SCHEMA_VERSION
    del manifest["shots"]
    ws.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(WorkspaceError, match="section 'shots' is missing"):
        Workspace.open(ws.root)
    ws.manifest_path.write_text("{broken")
    with pytest.raises(WorkspaceError, match="not valid JSON"):
        Workspace.open(ws.root)
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.create(ws.root.parent)


def test_create_in_read_only_folder(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(WorkspaceError, match="cannot write"):
            Workspace.create(folder / "w")
    finally:
        folder.chmod(0o700)


def test_interrupted_atomic_write_leaves_old_file(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    target = ws.root / "artifact.json"
    atomic_write_json(target, {"generation": 1})
    # A child process writes the temporary file, then dies (os._exit) before the rename.
    script = textwrap.dedent(f"""
        import os, core.workspace.atomic as A
        def die(tmp, target):
            os._exit(9)
        A._rename = die
        A.atomic_write_json({str(target)!r}, {{"generation": 2}})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=60)
    assert proc.returncode == 9
    assert json.loads(target.read_text()) == {"generation": 1}
    leftovers = [p for p in ws.root.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the interrupted write should have left its temporary file"
    assert ws.leftovers().temporaries == []  # too young: it could be a write in progress
    assert ws.cleanup(min_age_s=0).temporaries == leftovers
    assert not [p for p in ws.root.iterdir() if p.name.startswith(".tmp-")]


def test_exception_during_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    from core.workspace import atomic_write

    def boom(fh: object) -> None:
        fh.write(b"half")  # type: ignore[attr-defined]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_stage_lock_blocks_second_writer_and_recovers_stale(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    with ws.lock("track/anna/take1"):
        with pytest.raises(LockBusy, match="track/anna/take1 is being written"):
            with ws.lock("track/anna/take1"):
                pass
        with ws.lock("track/anna/take2"):  # another stage is free
            pass
    with ws.lock("track/anna/take1"):  # released
        pass
    # A lock left by a dead process is taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    lock_file = ws.root / ".locks" / "train__anna.lock"
    lock_file.write_text(json.dumps({"pid": int(dead), "host": socket.gethostname()}))
    with ws.lock("train/anna"):
        pass
    assert not lock_file.exists()


def test_manifest_is_relative_and_movable(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    ws.set_clip("a", "c", {"video": ws.rel(ws.clip_dir("a", "c") / "video.mp4")})
    (tmp_path / "w").rename(tmp_path / "moved")
    moved = Workspace.open(tmp_path / "moved")
    assert moved.clip("a", "c")["video"] == "actors/a/clips/c/video.mp4"
    assert (moved.root / MANIFEST_NAME).exists()


def test_leftovers_of_interrupted_jobs_are_found_and_removed(tmp_path: Path) -> None:
    import time

    ws = Workspace.create(tmp_path / "w")
    ws.set_render("done", {"video": "renders/done/dubbed.mp4"})
    (ws.render_dir("done")).mkdir(parents=True)
    partial = ws.render_dir("half")
    partial.mkdir(parents=True)
    (partial / "audio.wav").write_bytes(b"\0" * 100)
    staging = ws.root / ".staging" / "take1-abc"
    staging.mkdir(parents=True)
    (staging / ".tmp-video.mp4.x.mp4").write_bytes(b"x")  # goes with its staging folder
    old_tmp = ws.root / "shots" / ".tmp-emotions.json.y.json"
    old_tmp.write_text("{")
    os.utime(old_tmp, (time.time() - 60, time.time() - 60))
    young_tmp = ws.root / ".tmp-emodub.json.z.json"  # a write in progress (the app saving)
    young_tmp.write_text("{")
    unreadable = ws.root / ".locks" / "dub__s.lock"  # its writer died between create and write
    unreadable.parent.mkdir(exist_ok=True)
    unreadable.write_text("")
    os.utime(unreadable, (time.time() - 60, time.time() - 60))
    found = ws.leftovers()
    assert found.partial_renders == [partial] and found.staging == [staging]
    assert found.temporaries == [old_tmp] and found.stale_locks == [unreadable]
    assert len(found.describe(ws.root)) == 4
    removed = ws.cleanup()
    assert removed.paths() == found.paths() and not ws.leftovers()
    assert young_tmp.exists() and ws.render_dir("done").exists()


def test_atomic_writes_get_the_umask_mode_or_keep_the_old_files(tmp_path: Path) -> None:
    """mkstemp's private 0600 must not leak into renders others on a shared drive have to read."""
    old = os.umask(0o027)
    try:
        fresh = atomic_write_text(tmp_path / "fresh.txt", "a")
        assert fresh.stat().st_mode & 0o777 == 0o640
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o604)
        atomic_write_text(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o604 and kept.read_text() == "new"
    finally:
        os.umask(old)


def test_workspace_init_job_creates_a_workspace_and_says_why_it_cannot(tmp_path: Path) -> None:
    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    def init(path: Path) -> list[P.Event]:
        events: list[P.Event] = []
        run_job(P.JobSpec("workspace.init", {"path": str(path)}), events.append)
        return events

    assert isinstance(init(tmp_path / "ws")[-1], P.Done) and (tmp_path / "ws" / "emodub.json").is_file()
    again = init(tmp_path / "ws")[-1]
    assert isinstance(again, P.Error) and again.code == "exists"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    taken = init(tmp_path / "busy")[-1]
    assert isinstance(taken, P.Error) and taken.code == "bad_workspace" and "not empty" in taken.message
