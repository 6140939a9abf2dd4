"""Small synthetic media and workspaces for the app's tests and screenshots (no real people, no
downloads): a cartoon face whose mouth follows a synthetic voice, written as real mp4/wav files.

This is *not* the engine's synthetic actor (``core.synthetic``); it only gives the app's views
something real to decode and draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def synthetic_voice(duration_s: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Syllable-like bursts of a harmonic tone with a moving formant: (n,) float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    pitch = 140.0 + 25.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 9))
    formant = 0.6 + 0.4 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6))
    syllable_rate = 4.0 + rng.uniform(-0.5, 0.5)
    envelope = np.clip(np.sin(np.pi * syllable_rate * t) ** 2 - 0.1, 0, None)
    envelope *= np.sin(2 * np.pi * 0.45 * t + 1.0) > -0.6  # pauses between words
    signal = harmonics * formant * envelope + 0.01 * rng.standard_normal(n)
    return (0.8 * signal / max(np.abs(signal).max(), 1e-6)).astype(np.float32)


def mouth_openness(
    voice: np.ndarray, n_frames: int, fps: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Per-frame RMS of the voice scaled to [0, 1]: (n_frames,)."""
    per_frame = int(sample_rate / fps)
    usable = voice[: n_frames * per_frame]
    padded = np.zeros(n_frames * per_frame, np.float32)
    padded[: usable.shape[0]] = usable
    rms = np.sqrt((padded.reshape(n_frames, per_frame) ** 2).mean(axis=1))
    return np.clip(rms / max(rms.max(), 1e-6), 0, 1)


def face_frames(
    n_frames: int, size: int, mouth: np.ndarray, smile: np.ndarray | float = 0.0, hue: float = 0.0
) -> np.ndarray:
    """Cartoon faces: (n_frames, size, size, 3) uint8. ``mouth`` and ``smile`` are per frame in [0, 1]."""
    smile = np.broadcast_to(np.asarray(smile, np.float32), (n_frames,))
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5  # (S, S) in [-0.5, 0.5)
    sway = 0.02 * np.sin(np.arange(n_frames) * 0.15)[:, None, None]  # (N, 1, 1) head sway
    xs = x[None] - sway
    background = np.stack([0.18 + 0.2 * (y + 0.5), 0.22 + 0.1 * (y + 0.5), 0.3 + 0.15 * hue + 0 * y], -1)
    head = (xs / 0.3) ** 2 + (y[None] / 0.38) ** 2 <= 1.0
    eyes = np.zeros_like(head)
    for cx in (-0.11, 0.11):
        eyes |= ((xs - cx) / 0.045) ** 2 + ((y[None] + 0.08) / 0.03) ** 2 <= 1.0
    # Mouth: an ellipse whose height follows the voice; a smile bends it upward at the corners.
    mouth_h = (0.012 + 0.07 * mouth)[:, None, None]
    bend = (0.25 * smile)[:, None, None] * (xs / 0.12) ** 2
    mouth_mask = (xs / 0.12) ** 2 + ((y[None] - 0.17 + bend) / mouth_h) ** 2 <= 1.0
    skin = np.array([0.93, 0.76 - 0.1 * hue, 0.62 + 0.15 * hue], np.float32)
    img = np.broadcast_to(background, (n_frames, size, size, 3)).copy()
    img[head] = skin
    img[eyes & head] = (0.12, 0.1, 0.1)
    img[mouth_mask & head] = (0.45, 0.08, 0.1)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: float, audio_path: Path | None = None) -> Path:
    """Write (N, H, W, 3) uint8 frames to an H.264 mp4 (with ``audio_path`` muxed in, when given)."""
    import imageio_ffmpeg

    from core.workspace import atomic_path

    n, h, w, _ = frames.shape
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (w, h),
            fps=fps,
            codec="libx264",
            quality=7,
            macro_block_size=2,
            ffmpeg_log_level="error",
            audio_path=None if audio_path is None else str(audio_path),
            audio_codec=None if audio_path is None else "aac",
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    return path


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    import soundfile as sf

    from core.workspace import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, sample_rate, subtype="PCM_16", format="WAV")
    return path


def make_shot_media(
    folder: Path,
    frames: int = 50,
    size: int = 128,
    fps: float = 25.0,
    seed: int = 0,
    smile: np.ndarray | float = 0.0,
    hue: float = 0.0,
) -> tuple[Path, Path]:
    """``folder/video.mp4`` (with sound) and ``folder/audio.wav`` of a talking cartoon face."""
    folder.mkdir(parents=True, exist_ok=True)
    voice = synthetic_voice(frames / fps, seed)
    audio = write_wav(folder / "audio.wav", voice)
    images = face_frames(frames, size, mouth_openness(voice, frames, fps), smile, hue)
    video = write_video(folder / "video.mp4", images, fps, audio)
    return video, audio


def make_demo_workspace(root: Path, frames: int = 50, size: int = 128, fps: float = 25.0):  # -> Workspace
    """A workspace with actor ``anna`` (clips ``take1`` happy:0.66 and ``take2`` neutral, model ``a2e``)
    and shot ``scene12``, all with real (synthetic) media files."""
    from core.workspace import Workspace

    ws = Workspace.create(root)
    for clip, emotion, seed, smile in (("take1", {"happy": 0.66}, 1, 0.66), ("take2", {}, 2, 0.0)):
        folder = ws.clip_dir("anna", clip)
        video, audio = make_shot_media(folder, frames, size, fps, seed, smile)
        ws.set_clip(
            "anna",
            clip,
            {
                "video": ws.rel(video),
                "audio": ws.rel(audio),
                "fps": fps,
                "frames": frames,
                "width": size,
                "height": size,
                "duration_s": frames / fps,
                "emotion": emotion,
                "source": "synthetic",
                "synthetic": True,
                "stages": {"landmarks": True, "tracking": True},
            },
        )
    ws.set_model("anna", "a2e", {"steps": 2000, "final_loss": 0.0312})
    from core.consent import record_synthetic_consent

    record_synthetic_consent(ws, "anna", "ui.demo_media")  # a synthetic face: the app's demo is not refused
    folder = ws.shot_dir("scene12")
    video, audio = make_shot_media(folder, frames, size, fps, seed=3)
    ws.set_shot(
        "scene12",
        {
            "video": ws.rel(video),
            "audio": ws.rel(audio),
            "fps": fps,
            "frames": frames,
            "width": size,
            "height": size,
            "duration_s": frames / fps,
            "source": "synthetic",
            "stages": {"landmarks": True, "tracking": True},
        },
    )
    return ws


def make_stand_in_render(ws, shot: str, render: str, smile: np.ndarray, seed: int = 3):
    """A render folder whose video is the cartoon face with ``smile`` per frame: a STAND-IN for the
    ``dub`` job's output (used by the screenshot script until that job exists). Recorded with
    ``"stand_in": true`` so nothing mistakes it for an engine render."""
    record = ws.shot(shot)
    frames, fps, size = int(record["frames"]), float(record["fps"]), int(record["width"])
    folder = ws.render_dir(render)
    folder.mkdir(parents=True, exist_ok=True)
    voice = synthetic_voice(frames / fps, seed)
    audio = write_wav(folder / "audio.wav", voice)
    images = face_frames(frames, size, mouth_openness(voice, frames, fps), smile, hue=0.5)
    video = write_video(folder / "video.mp4", images, fps, audio)
    ws.set_render(
        render,
        {
            "video": ws.rel(video),
            "shot": shot,
            "actor": "anna",
            "frames": frames,
            "fps": fps,
            "stand_in": True,
        },
    )
    return video
