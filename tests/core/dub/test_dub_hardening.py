"""Issue 19 on the dub: crafted checkpoints, user mistakes, Ctrl-C, kills and the leftovers they leave.

Each test reproduces a failure of the issue: a crafted a2e checkpoint ran its code during ``emodub dub``;
user mistakes came back as ``internal`` bugs with a traceback; Ctrl-C reached ffmpeg ("encoding ...
failed") and left ``renders/<name>/audio.wav`` behind; wrong numbers were accepted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.io.audio import write_wav
from core.jobs import protocol as P
from core.jobs.runner import run_job

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def cli_events(*args: str, timeout: float = 120) -> tuple[int, list[P.Event], str]:
    proc = cli(*args, "--json")
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, [P.decode_event(line) for line in out.splitlines() if line.strip()], err


def speech(path: Path, seconds: float, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    return write_wav(path, (0.3 * np.sin(2 * np.pi * 180 * t) * (t % 0.4 < 0.2)).astype(np.float32), sr)


def run(ws: Any, kind: str, params: dict[str, Any]) -> tuple[int, list[P.Event], float]:
    events: list[P.Event] = []
    t0 = time.monotonic()
    code = run_job(P.JobSpec(kind, params, str(ws.root)), events.append)
    return code, events, time.monotonic() - t0


def assert_user_error(events: list[P.Event], code: str) -> P.Error:
    error = events[-1]
    assert isinstance(error, P.Error), error
    assert error.code == code, (error.code, error.message)
    assert error.traceback == "" and error.hint and "bug" not in error.hint
    return error


def leftovers(ws: Any) -> list[str]:
    """Files of interrupted work anywhere in the workspace, whatever their age."""
    return [line for line in ws.leftovers(min_age_s=0).describe(ws.root)]


# -- item 1: crafted checkpoints -------------------------------------------------------------

@pytest.mark.parametrize("model", ["a2e", "neural_texture"])
def test_a_crafted_model_checkpoint_is_refused_and_never_runs(trained_actor: Any, crafted_pickle: Any,
                                                              tmp_path: Path, model: str) -> None:
    """The a2e's and the renderer's checkpoints, where the workspace keeps them."""
    ws = trained_actor
    checkpoint = ws.model_dir("a", model) / "checkpoint.pt"
    marker = crafted_pickle(checkpoint)
    code, events, err = cli_events("dub", "-w", str(ws.root), "--actor", "a", "--shot", "s",
                                   "--audio", str(speech(tmp_path / "a.wav", 0.5)), "--device", "cpu")
    error = assert_user_error(events, "unsafe_file")
    assert code == P.EXIT_ERROR and str(checkpoint) in error.message and "Traceback" not in err
    assert not marker.exists(), "the crafted checkpoint's code ran"
    if model == "neural_texture":  # the evaluation reads it too
        code, events, _ = cli_events("eval", "renderer", "-w", str(ws.root), "--actor", "a", "--device", "cpu")
        assert_user_error(events, "unsafe_file")
        assert not marker.exists()


# -- item 2: user mistakes get their own code -----------------------------------------------------

def _nan_wav(path: Path) -> Path:
    import soundfile as sf

    sf.write(str(path), np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    return path


def _empty_wav(path: Path) -> Path:
    import soundfile as sf

    sf.write(str(path), np.zeros(0, np.float32), 16000)
    return path


def _corrupt_wav(path: Path) -> Path:
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(64))
    return path


def _bad_curves(path: Path) -> Path:
    path.write_text('{"format": "emodub-emotion-curves", "version": 1, "fps": 25, "curves": {"happy": [}')
    return path


@pytest.mark.parametrize("audio, emotions, code", [
    (_nan_wav, None, "bad_input"),
    (_empty_wav, None, "bad_input"),
    (_corrupt_wav, None, "bad_input"),
    (speech, _bad_curves, "bad_input"),
    (speech, "happy:2", "bad_params"),
    (speech, "joyful:0.5", "bad_params"),
], ids=["nan-wav", "empty-wav", "corrupt-wav", "malformed-curves", "happy:2", "joyful:0.5"])
def test_dub_input_mistakes_are_reported_before_any_model_loads(shared_trained_actor: Any, tmp_path: Path,
                                                                 audio: Any, emotions: Any, code: str) -> None:
    wav = audio(tmp_path / "dub.wav", 1.0) if audio is speech else audio(tmp_path / "dub.wav")
    if callable(emotions):
        emotions = str(emotions(tmp_path / "curves.json"))
    exit_code, events, _ = run(shared_trained_actor, "dub", {"actor": "a", "shot": "s", "audio": str(wav),
                                                             "emotions": emotions, "device": "cpu"})
    assert exit_code == P.EXIT_ERROR
    assert_user_error(events, code)
    assert not [e for e in events if isinstance(e, P.Progress)], "the mistake was found after work had started"


def test_a_busy_stage_is_busy(shared_trained_actor: Any, tmp_path: Path) -> None:
    ws = shared_trained_actor
    with ws.lock("render/busy-take"):
        code, events, _ = run(ws, "dub", {"actor": "a", "shot": "s", "audio": str(speech(tmp_path / "a.wav", 0.5)),
                                          "name": "busy-take", "device": "cpu"})
    error = assert_user_error(events, "busy")
    assert code == P.EXIT_ERROR and "render/busy-take" in error.message and "workspace check" in error.hint


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable: permissions for a normal user, a read-only bind mount for root (who
    ignores permissions); skips when neither is possible."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in reversed(list(modes.items())):
                path.chmod(mode)
        return
    if shutil.which("mount") is None or subprocess.run(["mount", "--bind", folder, folder],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", folder], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", folder], capture_output=True)


def test_a_read_only_workspace_is_read_only(shared_trained_actor: Any, tmp_path: Path) -> None:
    ws = shared_trained_actor
    wav = speech(tmp_path / "a.wav", 0.5)
    with read_only(ws.root):
        code, events, _ = run(ws, "dub", {"actor": "a", "shot": "s", "audio": str(wav), "device": "cpu"})
    error = assert_user_error(events, "read_only")
    assert code == P.EXIT_ERROR and str(ws.root) in error.message


@pytest.mark.parametrize("params, fragment", [
    ({"audio_offset_s": "0.5"}, "'audio_offset_s'"),
    ({"device": 0}, "'device'"),
    ({"emotions": 3}, "'emotions'"),
    ({"audio_duration_s": -1.0}, "> 0"),   # item 5: dropped the last second
    ({"audio_offset_s": -0.5}, ">= 0"),    # item 5: was accepted
    ({"length": "forever"}, "one of audio, shot"),
])
def test_wrong_param_types_and_values_are_bad_params(shared_trained_actor: Any, tmp_path: Path,
                                                     params: dict[str, Any], fragment: str) -> None:
    wav = speech(tmp_path / "a.wav", 0.5)
    code, events, _ = run(shared_trained_actor, "dub", {"actor": "a", "shot": "s", "audio": str(wav), **params})
    error = assert_user_error(events, "bad_params")
    assert code == P.EXIT_ERROR and fragment in error.message
    assert [e.name for e in events] == ["error"]  # refused before the job started


def test_an_audio_offset_past_the_end_is_bad_params(shared_trained_actor: Any, tmp_path: Path) -> None:
    wav = speech(tmp_path / "a.wav", 0.5)
    code, events, _ = run(shared_trained_actor, "dub", {"actor": "a", "shot": "s", "audio": str(wav),
                                                        "audio_offset_s": 2.0})
    assert "past the end" in assert_user_error(events, "bad_params").message


def test_resuming_a_renderer_with_another_unet_base_is_an_incompatible_checkpoint(trained_actor: Any) -> None:
    code, events, _ = run(trained_actor, "train.renderer", {"actor": "a", "iterations": 6,
                                                            "options": {"unet_base": 16}, "device": "cpu"})
    error = assert_user_error(events, "incompatible_checkpoint")
    assert code == P.EXIT_ERROR and "unet_base 8 (checkpoint) vs 16 (now)" in error.message
    assert "--restart" in error.hint


def test_frame_rates_are_checked_on_the_command_line(shared_trained_actor: Any) -> None:
    video = shared_trained_actor.shot_dir("s") / "video.mp4"
    for fps, fragment in (("0", "between 1 and 240"), ("100000", "between 1 and 240"), ("nan", "finite")):
        code, events, err = cli_events("shot", "prepare", "-w", str(shared_trained_actor.root), str(video),
                                       "--shot", "x", "--fps", fps)
        error = assert_user_error(events, "bad_params")
        assert code == P.EXIT_ERROR and fragment in error.message and "Traceback" not in err
    assert "x" not in shared_trained_actor.read_manifest()["shots"]


# -- item 5: keyframes outside the shot -----------------------------------------------------------

@pytest.mark.parametrize("frames, where", [((-120, -60), "before"), ((500, 560), "after")])
def test_keys_all_outside_the_shot_earn_a_warning(shared_trained_actor: Any, tmp_path: Path,
                                                 frames: tuple[int, int], where: str) -> None:
    curves = {"format": "emodub-emotion-curves", "version": 1, "fps": 25, "frame_start": 0,
              "curves": {"happy": {"keyframes": [{"frame": frames[0], "value": 0.0},
                                                 {"frame": frames[1], "value": 0.9}]}}}
    wav = speech(tmp_path / "a.wav", 0.5)
    code, events, _ = run(shared_trained_actor, "dub", {"actor": "a", "shot": "s", "audio": str(wav),
                                                        "emotions": curves, "length": "shot", "device": "cpu",
                                                        "name": f"keys-{where}"})
    assert code == P.EXIT_OK, events[-1]
    warnings = [e.message for e in events if isinstance(e, P.Log) and e.level == "warning"]
    assert any(f"{frames[0]}-{frames[1]}" in w and f"all {where} the shot" in w and "0-23" in w for w in warnings)


# -- item 3: Ctrl-C, kill -9 and the leftovers ----------------------------------------------------

def _start_dub(ws: Any, wav: Path, name: str) -> subprocess.Popen[str]:
    # its own process group, as a terminal gives a foreground command: Ctrl-C signals the whole group
    return cli("dub", "-w", str(ws.root), "--actor", "a", "--shot", "s", "--audio", str(wav), "--name", name,
               "--device", "cpu", "--json", start_new_session=True)


def _events_until_rendering(proc: subprocess.Popen[str]) -> list[P.Event]:
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(P.decode_event(line))
        if isinstance(events[-1], P.Progress) and events[-1].stage == "render" and events[-1].done > 0:
            return events
        assert events[-1].name not in P.TERMINAL_EVENTS, events[-1]
    raise AssertionError("the dub ended before it rendered")


@pytest.mark.timeout(240)
def test_ctrl_c_during_a_dub_is_a_clean_cancel(trained_actor: Any, tmp_path: Path) -> None:
    ws = trained_actor
    proc = _start_dub(ws, speech(tmp_path / "long.wav", 40.0), "interrupted")
    events = _events_until_rendering(proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=120)
    events += [P.decode_event(line) for line in out.splitlines() if line.strip()]
    assert proc.returncode == P.EXIT_CANCELLED, (events[-1], err[-2000:])
    assert events[-1].name == "cancelled" and not any(isinstance(e, P.Error) for e in events)
    assert not (ws.root / "renders" / "interrupted").exists()  # its 40 s audio.wav went with it
    assert leftovers(ws) == [] and not list(ws.root.rglob(".tmp-*"))
    check = subprocess.run([sys.executable, "-m", "core.cli", "workspace", "check", str(ws.root)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "workspace OK" in check.stdout


@pytest.mark.timeout(300)
def test_a_killed_dub_leaves_leftovers_that_check_reports_and_the_next_job_removes(trained_actor: Any,
                                                                                    tmp_path: Path) -> None:
    ws = trained_actor
    proc = _start_dub(ws, speech(tmp_path / "long.wav", 40.0), "killed")
    _events_until_rendering(proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    time.sleep(1.0)  # the orphaned encoder ends when its pipe closes
    for tmp in ws.root.rglob(".tmp-*"):  # older than the grace a write in progress gets
        os.utime(tmp, (time.time() - 60, time.time() - 60))
    found = ws.leftovers()
    assert (ws.root / "renders" / "killed") in found.partial_renders
    assert found.temporaries and found.stale_locks  # the encoder's file, the dub's and the job's locks
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = subprocess.run([sys.executable, "-m", "core.cli", "workspace", "check", str(ws.root)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "partial render" in check.stdout and "stale lock" in check.stdout
    assert "emodub workspace clean" in check.stdout
    # The next job in the workspace removes them (a cheap one: it fails on its bad audio, after cleaning).
    code, events, _ = run(ws, "dub", {"actor": "a", "shot": "s", "audio": str(_empty_wav(tmp_path / "e.wav"))})
    assert any(isinstance(e, P.Log) and "leftover" in e.message for e in events)
    assert leftovers(ws) == [] and not (ws.root / "renders" / "killed").exists()


def test_workspace_clean_removes_leftovers_but_not_a_running_jobs_files(trained_actor: Any) -> None:
    ws = trained_actor
    partial = ws.root / "renders" / "half"
    partial.mkdir(parents=True)
    (partial / "audio.wav").write_bytes(b"x" * 1000)
    staging = ws.root / ".staging" / "take1-0123456789"
    staging.mkdir(parents=True)
    tmp = ws.clip_dir("a", "c0") / ".tmp-params.npz.abc.npz"
    tmp.write_bytes(b"half")
    os.utime(tmp, (time.time() - 60, time.time() - 60))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Another live process holds a lock: its files in progress look the same, so clean keeps them.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom core.workspace import Workspace\n"
                               f"ws = Workspace.open({str(ws.root)!r})\nwith ws.lock('dub/other'):\n"
                               "    print('held', flush=True); time.sleep(60)"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        out = subprocess.run([sys.executable, "-m", "core.cli", "workspace", "clean", str(ws.root)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "kept the files of running jobs" in out.stdout
        assert partial.exists() and staging.exists() and tmp.exists()
    finally:
        holder.kill()
        holder.wait()
    out = subprocess.run([sys.executable, "-m", "core.cli", "workspace", "clean", str(ws.root)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "removed 4 leftover(s)" in out.stdout  # the three and the killed holder's lock
    assert not partial.exists() and not staging.exists() and not tmp.exists()
    assert json.loads(ws.manifest_path.read_text())["renders"] == {}
