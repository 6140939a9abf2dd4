"""Ingest on generated footage: normalisation, records, and bad input that leaves the workspace as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.ingest.ingest import IngestConfig, default_clip_name, ingest, parse_emotion, working_to_source
from core.io.audio import load_wav, write_wav
from core.io.video import iter_frames, probe, write_video
from core.jobs import protocol as P
from core.jobs.context import CancelToken, JobCancelled, JobFailed
from core.jobs.runner import run_job
from core.landmarks.detector import GroundTruthDetector
from core.landmarks.track import LandmarkTrack
from core.workspace import Workspace

FAST = {"preset": "ultrafast"}


def pattern_frames(n: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """Frame i has grey level 4*i in its lower half (recoverable after encoding)."""
    frames = []
    for i in range(n):
        f = np.zeros((height, width, 3), np.uint8)
        f[height // 2:] = 4 * i
        f[: height // 2, (3 * i) % width] = 255
        frames.append(f)
    return frames


def make_video(tmp: Path, name: str = "take.mp4", n: int = 30, fps: float = 25, audio: bool = True,
               size: tuple[int, int] = (96, 64)) -> Path:
    wav = None
    if audio:
        sr = 44100
        t = np.arange(int(sr * n / fps)) / sr
        wav = write_wav(tmp / f"{name}.wav", 0.3 * np.sin(2 * np.pi * 220 * t), sr)
    return write_video(tmp / name, pattern_frames(n, *size), fps=fps, audio=wav, crf=10, **FAST)


def snapshot(ws: Workspace) -> tuple[str, list[str]]:
    """The manifest and every file of the workspace (except lock files)."""
    files = sorted(p.relative_to(ws.root).as_posix() for p in ws.root.rglob("*")
                   if p.is_file() and ".locks" not in p.parts)
    return ws.manifest_path.read_text(), files


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


def test_ingest_actor_clip_without_landmarks(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path, "Take 1 (final).mp4", n=30, fps=30)
    result = ingest(ws, src, actor="anna", emotion="happy:0.66", sentence="s01",
                    config=IngestConfig(landmarks=False, **FAST))
    assert result.folder == ws.clip_dir("anna", "Take_1_final")
    rec = ws.clip("anna", "Take_1_final")
    assert rec["emotion"] == {"happy": 0.66} and rec["fps"] == 25.0 and rec["sentence"] == "s01"
    assert rec["frames"] == 25 and rec["duration_s"] == pytest.approx(1.0)  # 30 frames at 30 fps -> 1 s
    assert (rec["width"], rec["height"]) == (96, 64) and rec["geometry"] == "full"
    assert rec["stages"] == {"ingest": True, "landmarks": False} and rec["synthetic"] is False
    assert rec["source"] == str(src.resolve())
    info = probe(ws.root / rec["video"])
    assert info.frames == 25 and info.fps == 25.0 and info.variable_fps is False and not info.has_audio
    audio, sr = load_wav(ws.root / rec["audio"], mono=False)
    assert sr == 16000 and audio.shape[1] == 1 and len(audio) == pytest.approx(16000, abs=1000)
    levels = [int(round(f[40:].mean() / 4)) for f in iter_frames(ws.root / rec["video"])]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] >= 27  # 30 -> 25 fps, in order
    saved = json.loads((result.folder / "probe.json").read_text())
    assert saved["source"]["fps"] == 30.0 and saved["working"]["frames"] == 25
    assert ws.validate() == []
    assert not any((ws.root / ".staging").iterdir())


def test_ingest_with_ground_truth_landmarks_and_keep_fps(ws: Workspace, tmp_path: Path) -> None:
    n = 20
    src = make_video(tmp_path, n=n, fps=25)
    rng = np.random.default_rng(0)
    lmk = (rng.uniform(20, 60, (68, 2)) + np.linspace(0, 10, n)[:, None, None]).astype(np.float32)
    lmk[8:10] = np.nan  # short gap
    config = IngestConfig(keep_fps=True, **FAST)
    result = ingest(ws, src, actor="synth", clip="c0", config=config, detector=GroundTruthDetector(lmk),
                    synthetic=True)
    rec = ws.clip("synth", "c0")
    assert rec["stages"]["landmarks"] and rec["synthetic"] and rec["frames"] == n
    assert rec["landmark_stats"]["interpolated"] == 2 and rec["landmark_stats"]["flagged"] == 0
    track = LandmarkTrack.load(ws.root / rec["landmarks"])
    np.testing.assert_allclose(track.lmk68[:8], lmk[:8])
    assert track.interpolated[8:10].all()
    crop = json.loads((result.folder / "crop.json").read_text())
    assert crop["out_size"] == 256 and crop["size"] > 0
    assert any("interpolated" in w for w in result.warnings)


def test_shot_without_audio_is_a_warning(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path, "mute.mp4", audio=False)
    logs: list[tuple[str, str]] = []

    class Recorder:
        def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
            pass

        def log(self, message: str, level: str = "info") -> None:
            logs.append((level, message))

        def check_cancelled(self) -> None:
            pass

    result = ingest(ws, src, shot="s1", config=IngestConfig(landmarks=False, **FAST), reporter=Recorder())
    rec = ws.shot("s1")
    assert rec["audio"] is None and "emotion" not in rec
    assert any(level == "warning" and "no audio stream" in m for level, m in logs)
    assert result.warnings and (ws.root / rec["video"]).exists()


def test_existing_clip_needs_replace(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path)
    config = IngestConfig(landmarks=False, **FAST)
    ingest(ws, src, actor="a", clip="c", config=config)
    before = snapshot(ws)
    with pytest.raises(JobFailed) as err:
        ingest(ws, src, actor="a", clip="c", config=config)
    assert err.value.code == "exists" and "--replace" in err.value.hint
    assert snapshot(ws) == before
    other = make_video(tmp_path, "other.mp4", n=40)
    ingest(ws, other, actor="a", clip="c", config=IngestConfig(landmarks=False, replace=True, **FAST))
    assert ws.clip("a", "c")["frames"] == 40
    assert not any((ws.root / ".staging").iterdir())


def bad_input(tmp: Path, case: str) -> tuple[Path, dict[str, Any], str]:
    """(video, ingest kwargs, expected error code) for each kind of bad input."""
    if case == "text_renamed_mp4":
        path = tmp / "notes.mp4"
        path.write_text("meeting notes, not a video\n" * 50)
        return path, {"actor": "a"}, "not_media"
    if case == "missing":
        return tmp / "nowhere.mp4", {"actor": "a"}, "not_found"
    if case == "audio_only":
        return write_wav(tmp / "voice.wav", np.zeros(16000), 16000), {"actor": "a"}, "no_video_stream"
    if case == "no_audio_actor":
        return make_video(tmp, "mute.mp4", audio=False), {"actor": "a"}, "no_audio_stream"
    if case == "one_frame":
        return make_video(tmp, "one.mp4", n=1), {"actor": "a"}, "too_short"
    if case == "bad_emotion":
        return make_video(tmp), {"actor": "a", "emotion": "furious:0.5"}, "bad_params"
    if case == "emotion_out_of_range":
        return make_video(tmp), {"actor": "a", "emotion": "happy:1.5"}, "bad_params"
    if case == "emotion_on_shot":
        return make_video(tmp), {"shot": "s", "emotion": "happy"}, "bad_params"
    if case == "sentence_on_shot":
        return make_video(tmp), {"shot": "s", "sentence": "s01"}, "bad_params"
    if case == "bad_name":
        return make_video(tmp), {"actor": "../evil"}, "bad_params"
    if case == "actor_and_shot":
        return make_video(tmp), {"actor": "a", "shot": "s"}, "bad_params"
    if case == "no_face":
        n = 10
        return make_video(tmp, n=n), {"actor": "a", "detector": GroundTruthDetector(
            np.full((n, 68, 2), np.nan, np.float32))}, "no_face"
    raise AssertionError(case)


BAD_CASES = ["text_renamed_mp4", "missing", "audio_only", "no_audio_actor", "one_frame", "bad_emotion",
             "emotion_out_of_range", "emotion_on_shot", "sentence_on_shot", "bad_name", "actor_and_shot", "no_face"]


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding one good clip (copied for each test: cheaper than ingesting again)."""
    tmp = tmp_path_factory.mktemp("seeded")
    ws = Workspace.create(tmp / "ws")
    ingest(ws, make_video(tmp, "good.mp4"), actor="a", clip="good",
           config=IngestConfig(landmarks=False, **FAST))
    return ws.root


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_refused_and_leaves_the_workspace_as_it_was(seeded_template: Path, tmp_path: Path,
                                                                 case: str) -> None:
    import shutil

    ws = Workspace.open(shutil.copytree(seeded_template, tmp_path / "ws"))
    before = snapshot(ws)
    video, kwargs, code = bad_input(tmp_path, case)
    with pytest.raises(JobFailed) as err:
        ingest(ws, video, config=IngestConfig(**FAST), **kwargs)
    assert err.value.code == code
    assert err.value.message and err.value.hint  # what is wrong and what to do
    assert snapshot(ws) == before
    assert ws.validate() == [] and Workspace.open(ws.root).clip("a", "good")


def test_bad_input_messages_read_well(ws: Workspace, tmp_path: Path) -> None:
    messages = {}
    for case in ("text_renamed_mp4", "no_audio_actor", "one_frame"):
        video, kwargs, _ = bad_input(tmp_path, case)
        with pytest.raises(JobFailed) as err:
            ingest(ws, video, config=IngestConfig(**FAST), **kwargs)
        messages[case] = err.value.message
    assert "not a video file" in messages["text_renamed_mp4"] and "notes.mp4" in messages["text_renamed_mp4"]
    assert "no audio stream" in messages["no_audio_actor"]
    assert "only 1 frame;" in messages["one_frame"]


def test_cancel_midway_leaves_nothing(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path, n=60)
    before = snapshot(ws)

    class CancelAfter:
        def __init__(self) -> None:
            self.frames = 0

        def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
            self.check_cancelled()

        def log(self, message: str, level: str = "info") -> None:
            pass

        def check_cancelled(self) -> None:
            self.frames += 1
            if self.frames > 20:
                raise JobCancelled("cancel requested")

    with pytest.raises(JobCancelled):
        ingest(ws, src, actor="a", config=IngestConfig(landmarks=False, **FAST), reporter=CancelAfter())
    assert snapshot(ws) == before


def test_large_footage_is_downscaled_and_maps_back(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path, "big.mp4", n=6, size=(400, 224), audio=True)
    config = IngestConfig(landmarks=False, max_side=200, large="downscale", **FAST)
    ingest(ws, src, actor="a", clip="big", config=config)
    rec = ws.clip("a", "big")
    assert (rec["width"], rec["height"]) == (200, 112) and rec["geometry"] == "downscale"
    assert rec["source_size"] == [400, 224] and rec["source_scale"] == [0.5, 0.5]
    np.testing.assert_allclose(working_to_source(np.array([[0.0, 0.0], [199.0, 111.0]]), rec),
                               [[0.5, 0.5], [398.5, 222.5]])


def test_large_footage_without_a_face_falls_back_to_downscale(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path, "big.mp4", n=6, size=(400, 224))
    no_face = GroundTruthDetector(np.full((100, 68, 2), np.nan, np.float32))
    ingest(ws, src, actor="a", clip="big", config=IngestConfig(landmarks=False, max_side=200, **FAST),
           region_detector=no_face)
    assert ws.clip("a", "big")["geometry"] == "downscale"


def test_names_and_emotions() -> None:
    assert default_clip_name("/x/My take #2.MOV") == "My_take_2"
    assert default_clip_name("/x/###.mp4") == "clip"
    assert parse_emotion("neutral") == {} and parse_emotion(None) == {}
    assert parse_emotion("sad:0.33, angry:0.2") == {"sad": 0.33, "angry": 0.2}


def test_ingest_job_through_the_runner(ws: Workspace, tmp_path: Path) -> None:
    src = make_video(tmp_path, n=15)
    events: list[P.Event] = []
    spec = P.JobSpec(kind="ingest", params={"video": str(src), "actor": "bob", "emotion": "sad:0.33",
                                            "landmarks": False}, workspace=str(ws.root))
    assert run_job(spec, events.append, CancelToken()) == P.EXIT_OK
    done = events[-1]
    assert isinstance(done, P.Done) and done.outputs["frames"] == 15 and done.outputs["clip"] == "take"
    assert any(isinstance(e, P.Artifact) and e.kind == "video" for e in events)
    progress = [e for e in events if isinstance(e, P.Progress) and e.stage == "ingest"]
    assert progress and progress[-1].done == progress[-1].total == 15
    # a bad input through the runner: an error event with message and hint, exit code 1
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    events.clear()
    spec = P.JobSpec(kind="ingest", params={"video": str(bad), "actor": "bob"}, workspace=str(ws.root))
    assert run_job(spec, events.append, CancelToken()) == P.EXIT_ERROR
    err = events[-1]
    assert isinstance(err, P.Error) and err.code == "not_media" and "bad.mp4" in err.message and err.hint


def test_variable_frame_rate_is_normalised(ws: Workspace, tmp_path: Path) -> None:
    from core.io.ffmpeg import run_ffmpeg

    vfr = tmp_path / "phone.mp4"
    run_ffmpeg(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25",
                "-vf", "setpts='N/25/TB+if(gt(N,20),(N-20)*0.02/TB,0)'", "-frames:v", "50", "-vsync", "vfr",
                "-c:v", "libx264", "-preset", "ultrafast", str(vfr)])
    assert probe(vfr).variable_fps
    config = IngestConfig(landmarks=False, **FAST)
    ingest(ws, vfr, shot="const", config=config)
    rec = ws.shot("const")
    out = probe(ws.root / rec["video"])
    assert out.variable_fps is False and out.fps == 25.0 and rec["fps"] == 25.0
    assert rec["frames"] == pytest.approx(probe(vfr).duration_s * 25, abs=2)
    ingest(ws, vfr, shot="kept", config=IngestConfig(landmarks=False, keep_fps=True, **FAST))
    kept = ws.shot("kept")
    assert kept["fps"] == pytest.approx(probe(vfr).average_fps, rel=0.01) and kept["fps"] < 25
    assert probe(ws.root / kept["video"]).variable_fps is False
