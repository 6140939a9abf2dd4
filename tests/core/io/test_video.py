"""Video I/O: probe, streaming decode with fps/crop/size, atomic H.264 writing, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.io.audio import write_wav
from core.io.ffmpeg import MediaError, fps_arg, fps_fraction, run_ffmpeg
from core.io.video import VideoWriter, iter_frames, probe, read_frame, write_video


def ramp_frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frame i: flat grey level 8*i (encodes its index), with a bright square that moves right."""
    frames = []
    for i in range(n):
        f = np.full((height, width, 3), (8 * i) % 256, np.uint8)
        x = (2 * i) % (width - 8)
        f[4:12, x:x + 8] = (255, 0, 0)
        frames.append(f)
    return frames


def frame_index(frame: np.ndarray) -> int:
    """Recover i from a ramp frame's background (bottom rows are untouched by the square)."""
    return int(round(frame[frame.shape[0] // 2:, :, 1].mean() / 8.0))


def test_fps_fraction_snaps_ntsc_rates() -> None:
    assert fps_arg(29.97) == "30000/1001"
    assert fps_arg(23.976) == "24000/1001"
    assert fps_fraction(25.0) == 25
    assert fps_arg(12.5) == "25/2"
    with pytest.raises(ValueError):
        fps_fraction(0)


def test_writer_roundtrip_probe_and_odd_size(tmp_path: Path) -> None:
    frames = ramp_frames(30, width=65, height=47)  # odd sides are padded to 66x48
    out = write_video(tmp_path / "ramp.mp4", frames, fps=25, preset="ultrafast", crf=12)
    info = probe(out)
    assert (info.width, info.height) == (66, 48)
    assert info.frames == 30 and info.frames_exact
    assert info.fps == pytest.approx(25.0)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.variable_fps is False and not info.has_audio
    decoded = list(iter_frames(out))
    assert len(decoded) == 30
    assert all(d.shape == (48, 66, 3) and d.dtype == np.uint8 for d in decoded)
    assert [frame_index(d) for d in decoded] == list(range(30))
    # the padded column/row repeat the edge, the content is close to what was written (crf 12)
    err = np.abs(decoded[7][:47, :65].astype(int) - frames[7].astype(int))
    assert err.mean() < 3.0
    decoded[0][0, 0] = 1  # frames are writable, independent arrays


def test_writer_accepts_float_frames_and_refuses_mixed_sizes(tmp_path: Path) -> None:
    path = tmp_path / "float.mp4"
    with pytest.raises(MediaError) as err, VideoWriter(path, 25, preset="ultrafast") as writer:
        writer.write(np.full((32, 32, 3), 0.5, np.float32))
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert err.value.code == "bad_frame"
    assert not path.exists() and not list(tmp_path.iterdir())
    with VideoWriter(path, 25, preset="ultrafast") as writer:
        writer.write(np.full((32, 32, 3), 0.5, np.float32))
        writer.write(np.full((32, 32), 200, np.uint8))  # grey frames are repeated to RGB
    frames = list(iter_frames(path))
    assert abs(int(frames[0].mean()) - 128) <= 2 and abs(int(frames[1].mean()) - 200) <= 2


def test_writer_is_atomic_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous version")
    with pytest.raises(RuntimeError), VideoWriter(target, 25, preset="ultrafast") as writer:
        for f in ramp_frames(5):
            writer.write(f)
        raise RuntimeError("renderer crashed")
    assert target.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary left behind
    with pytest.raises(MediaError) as err, VideoWriter(tmp_path / "empty.mp4", 25):
        pass
    assert err.value.code == "no_frames" and not (tmp_path / "empty.mp4").exists()


def test_writer_muxes_audio(tmp_path: Path) -> None:
    sr = 16000
    t = np.arange(int(1.2 * sr)) / sr
    wav = write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), sr)
    out = write_video(tmp_path / "av.mp4", ramp_frames(25), fps=25, audio=wav, preset="ultrafast")
    info = probe(out)
    assert info.has_audio and info.audio_codec == "aac" and info.audio_channels == 1
    assert info.duration_s == pytest.approx(1.2, abs=0.1)  # audio longer than video is kept
    short = write_video(tmp_path / "short.mp4", ramp_frames(10), fps=25, audio=wav, preset="ultrafast",
                        shortest=True)
    assert probe(short).duration_s < 0.8


def test_iter_frames_normalises_fps_crops_and_resizes(tmp_path: Path) -> None:
    src = write_video(tmp_path / "r30.mp4", ramp_frames(30), fps=30, preset="ultrafast", crf=10)
    at25 = list(iter_frames(src, fps=25))
    assert len(at25) == 25  # 1 s of video
    indices = [frame_index(f) for f in at25]
    assert indices[0] == 0 and indices == sorted(indices) and len(set(indices)) == 25  # 5 of 30 dropped
    small = list(iter_frames(src, crop=(8, 4, 32, 40), size=(16, 20), max_frames=3))
    assert len(small) == 3 and small[0].shape == (20, 16, 3)
    assert frame_index(small[2]) == 2
    with pytest.raises(ValueError):
        next(iter_frames(src, crop=(40, 0, 32, 32)))  # outside the 64x48 frame


def test_iter_frames_stops_ffmpeg_when_consumer_stops(tmp_path: Path) -> None:
    src = write_video(tmp_path / "r.mp4", ramp_frames(40), fps=25, preset="ultrafast")
    gen = iter_frames(src)
    first = next(gen)
    gen.close()  # kills the ffmpeg pipe; must not raise
    assert frame_index(first) == 0


def test_read_frame_by_index(tmp_path: Path) -> None:
    src = write_video(tmp_path / "r.mp4", ramp_frames(30), fps=25, preset="ultrafast", crf=10, keyint=10)
    for i in (0, 1, 9, 10, 17, 29):
        assert frame_index(read_frame(src, i)) == i
    with pytest.raises(IndexError):
        read_frame(src, 30)


def test_probe_detects_variable_frame_rate(tmp_path: Path) -> None:
    vfr = tmp_path / "vfr.mp4"
    # 50 frames; from frame 20 on, each frame lasts 20 ms longer (timestamps spread out)
    run_ffmpeg(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25",
                "-vf", "setpts='N/25/TB+if(gt(N,20),(N-20)*0.02/TB,0)'", "-frames:v", "50", "-vsync", "vfr",
                "-c:v", "libx264", "-preset", "ultrafast", str(vfr)])
    info = probe(vfr)
    assert info.variable_fps is True
    assert info.frames == 50
    lo, hi = info.fps_range
    assert lo < 20 and hi == pytest.approx(25, abs=0.5)
    frames = list(iter_frames(vfr, fps=25))
    assert len(frames) == pytest.approx(info.duration_s * 25, abs=2)  # resampled onto a constant grid


def test_probe_applies_rotation(tmp_path: Path) -> None:
    src = write_video(tmp_path / "land.mp4", ramp_frames(5, width=64, height=32), fps=25, preset="ultrafast")
    rotated = tmp_path / "portrait.mp4"
    run_ffmpeg(["-v", "error", "-y", "-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                str(rotated)])
    info = probe(rotated)
    assert info.rotation in (90, 270) and (info.width, info.height) == (32, 64)
    assert next(iter_frames(rotated)).shape == (64, 32, 3)


@pytest.mark.parametrize("case", ["text", "missing", "empty", "folder", "audio_only"])
def test_probe_bad_inputs_give_clear_errors(tmp_path: Path, case: str) -> None:
    path = tmp_path / "clip.mp4"
    if case == "text":
        path.write_text("this is not a video\n" * 20)
        code = "not_media"
    elif case == "missing":
        code = "not_found"
    elif case == "empty":
        path.write_bytes(b"")
        code = "not_media"
    elif case == "folder":
        path.mkdir()
        code = "not_media"
    else:
        path = write_wav(tmp_path / "sound.wav", np.zeros(1600), 16000)
        code = "no_video_stream"
    with pytest.raises(MediaError) as err:
        probe(path)
    assert err.value.code == code
    assert str(path.name) in err.value.message and err.value.hint


def test_truncated_mp4_is_reported_as_incomplete(tmp_path: Path) -> None:
    src = write_video(tmp_path / "full.mp4", ramp_frames(20), fps=25, preset="ultrafast")
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    # faststart puts the index (moov) first: drop it to mimic an interrupted recording
    ftyp_len = int.from_bytes(data[:4], "big")
    cut.write_bytes(data[:ftyp_len] + b"\0\0\0\x08free" + data[-2000:])
    with pytest.raises(MediaError) as err:
        probe(cut)
    assert err.value.code == "unreadable" and "incomplete" in err.value.message


def test_ffmpeg_runs_in_its_own_process_group(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the foreground process group: ffmpeg must not be in the engine's, or
    it dies before the engine's cancel path runs (issue 19: "encoding ... failed: no message from ffmpeg")."""
    import os

    writer = VideoWriter(tmp_path / "g.mp4", 25)
    writer.write(np.zeros((16, 16, 3), np.uint8))
    try:
        assert writer._proc is not None
        assert os.getpgid(writer._proc.pid) == writer._proc.pid != os.getpgrp()
    finally:
        writer.abort()
    assert not list(tmp_path.iterdir())
