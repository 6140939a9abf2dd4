"""Preview: a previewed frame is the dub's frame before encoding; a warm engine answers previews from memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.io.audio import write_wav
from core.jobs import protocol as P
from core.jobs.runner import run_job

ROOT = Path(__file__).resolve().parents[3]


def speech(path: Path, seconds: float, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    return write_wav(path, (0.3 * np.sin(2 * np.pi * 170 * t) * (t % 0.3 < 0.15)).astype(np.float32), sr)


def job(ws: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    events: list[P.Event] = []
    assert run_job(P.JobSpec(kind, params, str(ws.root)), events.append) == P.EXIT_OK, events[-1]
    return events[-1].outputs  # type: ignore[attr-defined]


@pytest.mark.parametrize("delivery", ["h264", "png16"])
def test_a_previewed_frame_is_the_dubs_frame_before_encoding(shared_trained_actor: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, delivery: str) -> None:
    ws = shared_trained_actor
    audio = speech(tmp_path / "dub.wav", 1.2)  # 30 frames over a 24-frame shot: the last ones loop
    base = {"actor": "a", "shot": "s", "audio": str(audio), "emotions": "happy:0.7", "device": "cpu",
            "format": delivery}
    written: list[np.ndarray] = []
    if delivery == "h264":  # the review file alone: catch its frames before the encoder gets them
        from core.io.video import VideoWriter

        original = VideoWriter.write
        monkeypatch.setattr(VideoWriter, "write", lambda self, frame: (written.append(np.array(frame)),
                                                                       original(self, frame))[1])
    dub = job(ws, "dub", {**base, "name": f"full-{delivery}", **({"out": str(tmp_path / "seq")}
                                                              if delivery == "png16" else {})})
    monkeypatch.undo()
    if delivery == "png16":  # lossless: the delivered frames are the frames before encoding
        import imageio.v3 as iio

        written = [iio.imread(f) for f in sorted(Path(dub["delivery"]).glob("*.png"))]
    assert len(written) == dub["frames"] == 30
    shown = job(ws, "preview", {**base, "frame": 3, "count": 2, "out": str(tmp_path / "p")})
    last = job(ws, "preview", {**base, "frame": 28, "count": 5, "out": str(tmp_path / "p")})  # clipped to 28, 29
    assert shown["indices"] == [3, 4] and last["indices"] == [28, 29] and last["dub_frames"] == 30
    assert last["warm"] and not list((ws.root / "renders").glob("*preview*"))
    import imageio.v3 as iio

    for index, path in zip(shown["indices"] + last["indices"], shown["frames"] + last["frames"], strict=True):
        preview = iio.imread(path).astype(np.float64)
        full = written[index].astype(np.float64)
        if full.max() > 255:
            full = full / 257.0
        assert preview.shape == full.shape
        assert np.abs(preview - full).max() <= 2.0, index  # batch size may change the last float bits
        assert np.abs(preview - full).mean() < 0.05
    different = iio.imread(shown["frames"][0]).astype(np.float64) - written[20].astype(np.float64) / (
        257.0 if delivery == "png16" else 1.0)
    assert np.abs(different).mean() > 0.5  # another frame does differ: the comparison can fail


def test_a_frame_outside_the_dub_is_refused(shared_trained_actor: Any, tmp_path: Path) -> None:
    events: list[P.Event] = []
    code = run_job(P.JobSpec("preview", {"actor": "a", "shot": "s", "audio": str(speech(tmp_path / "a.wav", 0.4)),
                                         "frame": 500, "device": "cpu"}, str(shared_trained_actor.root)),
                   events.append)
    assert code == P.EXIT_ERROR and isinstance(events[-1], P.Error) and events[-1].code == P.BAD_PARAMS
    assert "0-9" in events[-1].message


def test_a_warm_engine_answers_a_second_preview_from_memory(shared_trained_actor: Any, tmp_path: Path) -> None:
    ws = shared_trained_actor
    params = {"actor": "a", "shot": "s", "audio": str(speech(tmp_path / "a.wav", 0.8)), "frame": 5,
              "device": "cpu", "out": str(tmp_path / "p")}
    proc = subprocess.Popen([sys.executable, "-m", "core.worker", "--serve", "--idle-exit", "120"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdin is not None and proc.stdout is not None

    def ask(spec: P.JobSpec) -> P.Event:
        proc.stdin.write(json.dumps(spec.to_dict()) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            event = P.decode_event(proc.stdout.readline())  # type: ignore[union-attr]
            if event.job_id == spec.id and isinstance(event, P.Done | P.Error | P.Cancelled):
                return event
        pytest.fail("no answer from the warm engine")

    try:
        first = ask(P.JobSpec("preview", params, str(ws.root)))
        second = ask(P.JobSpec("preview", params, str(ws.root)))
        happier = ask(P.JobSpec("preview", {**params, "emotions": "happy:1"}, str(ws.root)))
        assert isinstance(first, P.Done) and isinstance(second, P.Done) and isinstance(happier, P.Done)
        assert not first.outputs["warm"] and second.outputs["warm"] and not happier.outputs["warm"]
        assert second.outputs["seconds"] < first.outputs["seconds"]
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_dub_warns_of_what_an_editor_should_know() -> None:
    from core.dub.pipeline import dub_warnings

    base = {"frames": 24, "shot_frames": 24, "end": "loop", "emotion_sources": {"happy": "prior", "sad": "footage"},
            "renderer": {"model": "neural_texture", "held_out": {"face_psnr": 31.0}}}
    assert dub_warnings(base, ["sad"]) == []
    warnings = dub_warnings({**base, "frames": 30, "renderer": {"model": "nt", "held_out": {"face_psnr": 12.5}}},
                            ["happy", "sad"])
    assert len(warnings) == 3
    assert "undertrained" in warnings[0] and "12.5 dB" in warnings[0]
    assert warnings[1].startswith("happy comes from the face model's generic expression")
    assert "frames 24-29 loop the shot" in warnings[2]
    held = dub_warnings({**base, "frames": 30, "end": "hold", "renderer": {"model": "nt"}}, [])
    assert "never measured" in held[0] and "hold the shot's last frame" in held[1]
    cut = dub_warnings({**base, "length": "shot", "audio_cut_s": 1.2, "fps": 25.0}, [])
    assert len(cut) == 1 and "runs 1.20 s past the end of the shot" in cut[0]
    assert dub_warnings({**base, "audio_cut_s": 0.02, "fps": 25.0}, []) == []  # less than a frame: nothing to say


def test_train_actor_tracks_only_what_is_not_tracked_and_says_what_is_missing(tmp_path: Path) -> None:
    from core.synthetic.known_clip import known_clip_workspace
    from core.workspace import Workspace

    ws = known_clip_workspace(tmp_path / "ws", n_frames=12, size=64, clips=1)
    outputs = job(ws, "train.actor", {"actor": "a", "a2e_iterations": 2, "renderer_iterations": 2, "device": "cpu"})
    assert outputs["tracked_first"] == [] and outputs["renderer"]["iterations"] == 2
    empty = Workspace.create(tmp_path / "empty")
    empty.add_actor("bob")
    events: list[P.Event] = []
    assert run_job(P.JobSpec("train.actor", {"actor": "bob"}, str(empty.root)), events.append) == P.EXIT_ERROR
    assert isinstance(events[-1], P.Error) and "no footage" in events[-1].message
    assert "import the actor's footage" in events[-1].hint


def test_emotion_source_prior_takes_the_generic_expression_even_for_a_filmed_emotion(shared_trained_actor: Any,
                                                                                    tmp_path: Path) -> None:
    ws = shared_trained_actor
    clip = next(iter(ws.read_manifest()["actors"]["a"]["clips"]))
    before = dict(ws.read_manifest()["actors"]["a"]["clips"][clip].get("emotion") or {})
    params = {"actor": "a", "shot": "s", "audio": str(speech(tmp_path / "a.wav", 0.4)), "frame": 3,
              "emotions": "happy:0.8", "device": "cpu", "out": str(tmp_path / "p")}
    try:
        ws.set_clip_emotion("a", clip, {"happy": 1.0})  # the actor was filmed happy
        assert job(ws, "preview", params)["emotion_sources"] == {"happy": "footage"}
        assert job(ws, "preview", {**params, "emotion_source": "prior"})["emotion_sources"] == {"happy": "prior"}
    finally:
        ws.set_clip_emotion("a", clip, before)


def test_emotion_source_is_checked() -> None:
    from core.dub.pipeline import DubConfig

    with pytest.raises(ValueError, match="emotion_source"):
        DubConfig(emotion_source="footage_only")
    with pytest.raises(ValueError, match="needs the emotion prior"):
        DubConfig(emotion_source="prior", emotion_prior=False)
