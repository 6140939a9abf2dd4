"""Waveform envelopes, video probing, thumbnails, frames and loss parsing (no Qt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.jobs import protocol as P
from ui import media
from ui.demo_media import make_shot_media, write_wav
from ui.losses import LossHistory, parse_loss_message


def test_envelope_matches_brute_force_and_streams_in_blocks(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(16000 * 3) * 0.2).clip(-1, 1).astype(np.float32)
    samples[1000] = 0.95
    path = write_wav(tmp_path / "a.wav", samples)
    pcm = np.asarray(samples * 32767, np.int16).astype(np.float32) / 32768  # what PCM16 stores
    env = media.audio_envelope(path, bins=300, block_seconds=0.37)  # blocks not aligned to bins
    per_bin = int(np.ceil(pcm.size / 300))
    padded = np.concatenate([pcm, np.full(300 * per_bin - pcm.size, np.nan, np.float32)]).reshape(
        300, per_bin
    )
    np.testing.assert_allclose(env.high, np.nanmax(padded, axis=1), atol=1e-4)
    np.testing.assert_allclose(env.low, np.nanmin(padded, axis=1), atol=1e-4)
    assert env.duration_s == pytest.approx(3.0) and env.high.max() == pytest.approx(0.95, abs=1e-3)
    lo, hi = env.window(1.0, 2.0, 50)  # the middle second, 50 columns
    assert hi.max() == pytest.approx(np.nanmax(padded[100:200]), abs=1e-4)
    lo, hi = env.window(2.5, 3.5, 10)  # half outside the audio: zeros there
    assert np.all(hi[6:] == 0) and hi[:4].max() > 0


def test_envelope_of_a_video_soundtrack_and_missing_file(tmp_path: Path) -> None:
    video, _ = make_shot_media(tmp_path, frames=25, size=64)
    env = media.audio_envelope(video, bins=100)  # mp4: soundfile cannot read it, ffmpeg does
    assert env.bins == 100 and env.high.max() > 0.3
    with pytest.raises(media.MediaError, match="does not exist"):
        media.audio_envelope(tmp_path / "nope.wav")


def test_probe_refuses_non_videos_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(media.MediaError, match="text file, not a video") as info:
        media.probe_video(text)
    assert "choose a video file" in info.value.hint
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(media.MediaError, match="not a video file"):
        media.probe_video(junk)
    image = tmp_path / "still.png"
    from PySide6.QtGui import QImage

    blank = QImage(32, 32, QImage.Format.Format_RGB888)
    blank.fill(0)
    assert blank.save(str(image))
    with pytest.raises(media.MediaError, match="single image|no video stream"):
        media.probe_video(image)
    wav = write_wav(tmp_path / "voice.wav", np.zeros(1600, np.float32))
    with pytest.raises(media.MediaError, match="audio file, not a video"):
        media.probe_video(wav)
    with pytest.raises(media.MediaError, match="folder"):
        media.probe_video(tmp_path)


def test_thumbnails_and_frames(tmp_path: Path) -> None:
    video, _ = make_shot_media(tmp_path, frames=30, size=64)
    info = media.probe_video(video)
    assert (info.width, info.height, info.fps) == (64, 64, 25.0)
    indices, images = media.thumbnails(video, 5, height=32, n_frames=30)
    assert indices == [0, 7, 14, 22, 29] and images[0].shape == (32, 32, 3)
    first, later = media.read_frame(video, 0), media.read_frame(video, 12)
    assert (
        first.shape == (64, 64, 3) and np.abs(first.astype(int) - later.astype(int)).sum() > 0
    )  # mouth moved
    np.testing.assert_array_equal(
        media.read_frame(video, 500), media.read_frame(video, 29)
    )  # clamps to the end
    cache = media.FrameCache(video, max_side=64, capacity=2)
    np.testing.assert_array_equal(cache.frame(12), later)


def test_loss_messages_and_losses_file(tmp_path: Path) -> None:
    assert parse_loss_message("loss 0.0123") == {"loss": 0.0123}
    assert parse_loss_message("step 40 g_l1=0.5, d: 1e-2 lr 0.001") == {"g_l1": 0.5, "d": 0.01}
    history = LossHistory()
    assert history.feed(P.Progress("j", stage="a2e", done=1, total=9, message="g_l1 0.9 d 0.7"))
    assert history.feed(P.Progress("j", stage="a2e", done=2, total=9, message="g_l1 0.8 d 0.6"))
    assert not history.feed(P.Progress("j", stage="a2e", done=3, total=9, message="warming up"))
    assert history.series["g_l1"] == ([1.0, 2.0], [0.9, 0.8])
    path = tmp_path / "losses.json"
    path.write_text(json.dumps({"step": [10, 20, 30], "l1": [0.5, 0.4, 0.3], "gan": [1.0, None, 0.8]}))
    assert history.feed(P.Artifact("j", path=str(path), kind="losses"))
    assert history.series["l1"] == ([10.0, 20.0, 30.0], [0.5, 0.4, 0.3])
    assert history.series["gan"] == ([10.0, 30.0], [1.0, 0.8]) and "g_l1" not in history.series
    # The a2e trainer's file: training losses per `step`, validation per `val_step`.
    path.write_text(
        json.dumps({"step": [1, 2], "l1": [0.5, 0.4], "val_step": [2], "val_l1": [0.6], "odd": [1.0]})
    )
    history.load_file(path)
    assert history.series["val_l1"] == ([2.0], [0.6]) and history.skipped == ["odd"]
    path.write_text(json.dumps({"l1": [0.5]}))
    with pytest.raises(ValueError, match="'step' list"):
        history.load_file(path)
    # The a2e trainer's progress message.
    message = "L1 0.123 vel 0.0045 G 0.345 D 0.221 | val L1 0.300 jaw r 0.45"
    assert parse_loss_message(message) == {
        "L1": 0.123,
        "vel": 0.0045,
        "G": 0.345,
        "D": 0.221,
        "val L1": 0.3,
        "jaw r": 0.45,
    }
