"""Ingest + landmarks on the real clips of ../shared/data (skipped when absent or without mediapipe)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.ingest.ingest import IngestConfig, ingest, working_to_source
from core.io.audio import extract_audio
from core.io.video import VideoWriter, iter_frames, probe
from core.jobs.context import JobFailed
from core.landmarks.track import LandmarkTrack
from core.workspace import Workspace

pytest.importorskip("mediapipe")
pytestmark = pytest.mark.slow

FAST = {"preset": "ultrafast"}


def clip_path(shared: Path, name: str) -> Path:
    return shared / "real" / "clips" / name


def test_real_clips_ingest_with_landmarks(shared_data: Path, tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    interview = ingest(ws, clip_path(shared_data, "interview_woman_25fps.mp4"), actor="anna",
                       emotion="happy:0.33", config=IngestConfig(**FAST))
    studio = ingest(ws, clip_path(shared_data, "studio_woman_30fps.mp4"), shot="studio",
                    config=IngestConfig(**FAST))
    # actor footage is normalised to 25 fps; a shot keeps its own rate and every frame (199 at 30 fps)
    for result, frames, size, fps in ((interview, 200, 512, 25), (studio, 199, 700, 30)):
        rec = result.record
        assert rec["frames"] == frames and rec["fps"] == fps and (rec["fps_num"], rec["fps_den"]) == (fps, 1)
        assert (rec["width"], rec["height"]) == (size, size)
        assert rec["landmark_stats"]["detection_rate"] >= 0.98 and rec["landmark_stats"]["flagged"] == 0
        assert rec["landmark_stats"]["mean_confidence"] > 0.9
        track = LandmarkTrack.load(ws.root / rec["landmarks"])
        assert len(track) == frames and track.image_size == (size, size)
        crop = json.loads((ws.root / rec["crop"]).read_text())
        x0, y0, side = crop["x0"], crop["y0"], crop["size"]
        # the square holds every frame's face
        assert x0 <= track.lmk68[..., 0].min() and track.lmk68[..., 0].max() <= x0 + side
        assert y0 <= track.lmk68[..., 1].min() and track.lmk68[..., 1].max() <= y0 + side
        assert probe(ws.root / rec["video"]).frames == frames
    assert ws.clip("anna", "interview_woman_25fps")["emotion"] == {"happy": 0.33}
    assert ws.validate() == []


@pytest.fixture(scope="module")
def short_studio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2 s of the studio clip (25 fps, with its sound), for the slower scenarios."""
    env = os.environ.get("EMODUB_SHARED_DATA")
    shared = Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("../shared/data is not present")
    tmp = tmp_path_factory.mktemp("short")
    src = clip_path(shared, "studio_woman_30fps.mp4")
    wav = extract_audio(src, tmp / "sound.wav")
    out = tmp / "short.mp4"
    with VideoWriter(out, 25, audio=wav, shortest=True, crf=12, **FAST) as writer:
        writer.write_many(iter_frames(src, fps=25, max_frames=50))
    return out


def test_face_leaving_the_picture_is_flagged_not_fatal(short_studio: Path, tmp_path: Path) -> None:
    """Frames 20-22 are grey (a short gap: interpolated); in frames 30-44 the camera pans away until the face
    is gone, then back (a long gap: flagged)."""
    wav = extract_audio(short_studio, tmp_path / "sound.wav")
    pan = tmp_path / "pan.mp4"
    with VideoWriter(pan, 25, audio=wav, shortest=True, **FAST) as writer:
        for i, frame in enumerate(iter_frames(short_studio)):
            if 20 <= i <= 22:
                frame = np.full_like(frame, 128)
            elif 30 <= i <= 44:
                shift = min(700, 100 * min(i - 29, 45 - i))
                moved = np.empty_like(frame)
                moved[:] = frame[5, 5]  # background colour
                moved[:, shift:] = frame[:, :700 - shift]
                frame = moved
            writer.write(frame)
    ws = Workspace.create(tmp_path / "ws")
    result = ingest(ws, pan, actor="anna", clip="pan", config=IngestConfig(**FAST))
    track = result.track
    assert track is not None and len(track) == 50
    assert track.interpolated[20:23].all() and not track.flagged[20:23].any()
    flagged = np.flatnonzero(track.flagged)
    assert len(flagged) >= 6 and flagged.min() >= 30 and flagged.max() <= 44  # only where the face is gone
    assert track.detected[:20].all() and track.detected[46:].all()
    assert any("flagged" in w and "frames" in w for w in result.warnings)
    rec = ws.clip("anna", "pan")
    assert rec["landmark_stats"]["flagged"] == len(flagged) and rec["warnings"] == result.warnings
    assert ws.validate() == []


def test_a_video_without_any_face_is_refused(short_studio: Path, tmp_path: Path) -> None:
    grey = tmp_path / "grey.mp4"
    wav = extract_audio(short_studio, tmp_path / "sound.wav")
    with VideoWriter(grey, 25, audio=wav, shortest=True, **FAST) as writer:
        writer.write_many(np.full((64, 128, 128, 3), 90, np.uint8)[:12])
    ws = Workspace.create(tmp_path / "ws")
    before = ws.manifest_path.read_text()
    with pytest.raises(JobFailed) as err:
        ingest(ws, grey, actor="anna", config=IngestConfig(**FAST))
    assert err.value.code == "no_face" and "no face found" in err.value.message
    assert "--no-landmarks" in err.value.hint
    assert ws.manifest_path.read_text() == before and not (ws.root / "actors" / "anna").exists()


def test_large_footage_is_cropped_around_the_face(short_studio: Path, tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    config = IngestConfig(max_side=400, large="crop", crop_margin=0.3, **FAST)
    result = ingest(ws, short_studio, shot="closeup", config=config)
    rec = result.record
    assert rec["geometry"] == "face_crop" and max(rec["width"], rec["height"]) <= 400
    region = rec["source_region"]
    assert region["width"] < 700 and region["x"] > 0  # a region of the 700x700 plate, not all of it
    assert rec["landmark_stats"]["detection_rate"] >= 0.95
    # landmarks of the working copy, mapped back, land on the face in the original plate
    from core.landmarks.detector import MediaPipeDetector

    working = result.track.lmk68[0]
    with MediaPipeDetector() as detector:
        direct = detector.detect(next(iter_frames(short_studio))).lmk68
    iod = np.linalg.norm(direct[36:42].mean(0) - direct[42:48].mean(0))
    err = np.linalg.norm(working_to_source(working, rec) - direct, axis=1)
    assert np.median(err) < 0.05 * iod


def test_landmarks_job_on_an_ingested_clip(short_studio: Path, tmp_path: Path) -> None:
    from core.jobs import protocol as P
    from core.jobs.context import CancelToken
    from core.jobs.runner import run_job

    ws = Workspace.create(tmp_path / "ws")
    ingest(ws, short_studio, actor="anna", clip="take", config=IngestConfig(landmarks=False, **FAST))
    assert ws.clip("anna", "take")["stages"]["landmarks"] is False
    events: list[P.Event] = []
    spec = P.JobSpec(kind="landmarks", params={"actor": "anna", "clip": "take", "crop_size": 512},
                     workspace=str(ws.root))
    assert run_job(spec, events.append, CancelToken()) == P.EXIT_OK
    outputs = events[-1].outputs
    assert outputs["frames"] == 50 and outputs["detection_rate"] >= 0.95
    rec = ws.clip("anna", "take")
    assert rec["stages"]["landmarks"] is True and rec["landmark_stats"]["flagged"] == 0
    track = LandmarkTrack.load(ws.root / rec["landmarks"])
    assert len(track) == 50 and json.loads((ws.root / rec["crop"]).read_text())["out_size"] == 512
    progress = [e for e in events if isinstance(e, P.Progress) and e.stage == "landmarks"]
    assert progress[-1].done == progress[-1].total == 50
