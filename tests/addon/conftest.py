"""Fixtures of the add-on tests: a fake ``emodub`` executable, a synthetic clip and dub audio.

``BLENDER_USER_RESOURCES`` points to a temporary folder before any test imports ``bpy``, so
installing the extension never touches the real Blender configuration.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAKE_ENGINE = HERE / "fake_engine.py"

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="emodub-blender-"))
if str(ROOT) not in sys.path:  # the add-on's pure modules are imported as the `addon` package
    sys.path.insert(0, str(ROOT))

CLIP_FRAMES = 40
CLIP_FPS = 25
AUDIO_RATE = 16000
AUDIO_SECONDS = 2.0


def write_fake_emodub(folder: Path) -> Path:
    """An executable named ``emodub`` that runs the fake engine with this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "emodub"
    script.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{FAKE_ENGINE}' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


@pytest.fixture(scope="session")
def fake_emodub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_emodub(tmp_path_factory.mktemp("fake-bin"))


def write_clip(path: Path, frames: int = CLIP_FRAMES, fps: int = CLIP_FPS) -> Path:
    """A synthetic H.264 clip: a bright square moving over a dark background."""
    import imageio_ffmpeg
    import numpy as np

    writer = imageio_ffmpeg.write_frames(str(path), (64, 48), fps=fps, codec="libx264", macro_block_size=1,
                                         pix_fmt_out="yuv420p", ffmpeg_log_level="error")
    writer.send(None)
    for i in range(frames):
        frame = np.full((48, 64, 3), 30, np.uint8)
        frame[10:30, i % 44:(i % 44) + 20] = 220
        writer.send(frame.tobytes())
    writer.close()
    return path


def write_wav(path: Path, seconds: float = AUDIO_SECONDS, rate: int = AUDIO_RATE) -> Path:
    """A mono 16-bit tone: the stand-in for the new dialogue."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * 220.0 * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("media") / "take1.mp4")


@pytest.fixture(scope="session")
def dub_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("media") / "dub_fr.wav")

