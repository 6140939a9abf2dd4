"""Audio I/O: extraction to 16 kHz mono, wav round trips, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.io.audio import extract_audio, load_wav, resample, write_wav
from core.io.ffmpeg import MediaError, run_ffmpeg
from core.io.video import write_video


def dominant_frequency(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1.0 / sr)[np.argmax(spectrum)])


def test_wav_roundtrip_and_resample(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr) / sr
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 300 * t), 0.25 * np.sin(2 * np.pi * 300 * t)], axis=1)
    path = write_wav(tmp_path / "s.wav", stereo, sr)
    mono, rate = load_wav(path)
    assert rate == sr and mono.shape == (sr,)
    np.testing.assert_allclose(mono, stereo.mean(axis=1), atol=2e-4)  # PCM16 quantisation
    both, _ = load_wav(path, mono=False)
    assert both.shape == (sr, 2)
    at16, rate16 = load_wav(path, sr=16000)
    assert rate16 == 16000 and len(at16) == 16000
    assert dominant_frequency(at16, 16000) == pytest.approx(300, abs=2)
    assert len(resample(np.zeros(480), 48000, 16000)) == 160
    with pytest.raises(ValueError):
        write_wav(tmp_path / "bad.wav", np.array([0.0, np.nan]), 16000)
    assert not (tmp_path / "bad.wav").exists()


def test_extract_audio_to_16k_mono(tmp_path: Path) -> None:
    # a video whose sound is a 44.1 kHz stereo 1 kHz tone
    sr = 44100
    t = np.arange(int(1.0 * sr)) / sr
    tone = write_wav(tmp_path / "tone.wav", np.stack([0.4 * np.sin(2 * np.pi * 1000 * t)] * 2, axis=1), sr)
    frames = [np.zeros((32, 32, 3), np.uint8)] * 25
    video = write_video(tmp_path / "v.mp4", frames, fps=25, audio=tone, preset="ultrafast")
    out = extract_audio(video, tmp_path / "a.wav")
    audio, rate = load_wav(out, mono=False)
    assert rate == 16000 and audio.shape[1] == 1
    assert len(audio) == pytest.approx(16000, abs=800)  # AAC priming/padding
    assert dominant_frequency(audio[:, 0], rate) == pytest.approx(1000, abs=3)
    assert 0.2 < np.abs(audio).max() < 0.5


def test_extract_audio_without_sound_is_a_clear_error(tmp_path: Path) -> None:
    video = write_video(tmp_path / "mute.mp4", [np.zeros((16, 16, 3), np.uint8)] * 5, fps=25,
                        preset="ultrafast")
    with pytest.raises(MediaError) as err:
        extract_audio(video, tmp_path / "a.wav")
    assert err.value.code == "no_audio_stream"
    assert not (tmp_path / "a.wav").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_extract_audio_from_an_audio_file(tmp_path: Path) -> None:
    src = tmp_path / "s.flac"
    run_ffmpeg(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=0.5",
                str(src)])
    audio, rate = load_wav(extract_audio(src, tmp_path / "a.wav"))
    assert rate == 16000 and dominant_frequency(audio, rate) == pytest.approx(500, abs=3)


def test_extracted_audio_starts_at_the_video_start(tmp_path: Path) -> None:
    """A sound track muxed 0.5 s late keeps its offset (silence first), so audio and frames stay in sync."""
    both = tmp_path / "av.mp4"
    run_ffmpeg(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1",
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(both)])
    late = tmp_path / "late.mp4"
    run_ffmpeg(["-v", "error", "-y", "-i", str(both), "-itsoffset", "0.5", "-i", str(both),
                "-map", "0:v", "-map", "1:a", "-c", "copy", str(late)])
    audio, sr = load_wav(extract_audio(late, tmp_path / "a.wav"))
    onset = np.flatnonzero(np.abs(audio) > 0.05)[0] / sr
    assert onset == pytest.approx(0.5, abs=0.02)
