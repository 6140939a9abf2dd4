"""Media reading for the app, without Qt: audio envelopes, video probing, thumbnails, single frames,
and a frame stream for playback. Everything streams (bounded memory for long files).

Video goes through the ffmpeg binary of ``imageio-ffmpeg``; audio through ``soundfile`` with an ffmpeg
fallback for containers soundfile cannot read (mp4, m4a...).
"""

from __future__ import annotations

import logging
import math
import subprocess
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class _ScaledReadFilter(logging.Filter):
    """imageio-ffmpeg warns whenever the output is scaled, which is what we ask for on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "different from the source frame size" not in record.getMessage()


logging.getLogger("imageio_ffmpeg").addFilter(_ScaledReadFilter())


class MediaError(Exception):
    """A file that cannot be used; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


# ------------------------------------------------------------------------------------------------
# Audio
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """Min/max envelope of a mono signal.

    Attributes:
        low, high: (bins,) float32 minimum and maximum of each bin, in [-1, 1].
        duration_s: length of the audio.
        sample_rate: of the source.
    """

    low: np.ndarray
    high: np.ndarray
    duration_s: float
    sample_rate: int

    @property
    def bins(self) -> int:
        return int(self.low.shape[0])

    def resample(self, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """Envelope over ``columns`` equal spans of the whole audio: (columns,) low and high."""
        return self.window(0.0, self.duration_s, columns)

    def window(self, t0: float, t1: float, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """Envelope of the time span ``[t0, t1)`` seconds over ``columns`` equal spans (min of mins,
        max of maxes); 0 where the span lies outside the audio. Returns (columns,) low and high."""
        columns = max(int(columns), 1)
        low = np.zeros(columns, np.float32)
        high = np.zeros(columns, np.float32)
        if self.bins == 0 or self.duration_s <= 0 or t1 <= t0:
            return low, high
        edges = t0 + (t1 - t0) * np.arange(columns + 1) / columns
        bin_edges = np.floor(edges / self.duration_s * self.bins).astype(np.int64)
        first = bin_edges[:-1]
        last = np.maximum(bin_edges[1:], first + 1)  # a column narrower than a bin still shows it
        valid = (first >= 0) & (first < self.bins) & (last > 0)
        if not np.any(valid):
            return low, high
        starts = np.clip(first[valid], 0, self.bins - 1)
        stop = int(min(last[valid][-1], self.bins))
        # reduceat over consecutive starts: equal starts give that single bin, which is what we want.
        low[valid] = np.minimum.reduceat(self.low[:stop], starts)
        high[valid] = np.maximum.reduceat(self.high[:stop], starts)
        return low, high


def _envelope_of_blocks(blocks: Iterator[np.ndarray], total: int, bins: int, sample_rate: int) -> Envelope:
    """Min/max per bin over a stream of mono float blocks (vectorised per block)."""
    bins = max(1, min(int(bins), max(total, 1)))
    per_bin = max(1, math.ceil(total / bins))
    low = np.full(bins, np.inf, np.float32)
    high = np.full(bins, -np.inf, np.float32)
    capacity = bins * per_bin
    offset = 0
    for block in blocks:
        block = block[: max(capacity - offset, 0)]  # a stream longer than announced: ignore the excess
        n = block.shape[0]
        if n == 0:
            continue
        first, last = offset // per_bin, (offset + n - 1) // per_bin
        ids = np.arange(first, last + 1)
        starts = np.maximum(ids * per_bin - offset, 0)  # strictly increasing segment starts in the block
        low[ids] = np.minimum(low[ids], np.minimum.reduceat(block, starts))
        high[ids] = np.maximum(high[ids], np.maximum.reduceat(block, starts))
        offset += n
    empty = ~np.isfinite(low)
    low[empty] = 0.0
    high[empty] = 0.0
    return Envelope(low, high, total / float(sample_rate) if sample_rate else 0.0, sample_rate)


def audio_envelope(path: str | Path, bins: int = 4096, block_seconds: float = 10.0) -> Envelope:
    """Min/max envelope of an audio file (channels averaged), read in blocks.

    Raises:
        MediaError: the file does not exist or holds no readable audio.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"audio file {path} does not exist", "choose an existing wav/flac/mp3/mp4 file")
    try:
        import soundfile as sf

        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - soundfile raises its own error types; fall back to ffmpeg
        samples, rate = decode_audio(path, sample_rate=16000)
        return _envelope_of_blocks(iter([samples]), samples.shape[0], bins, rate)
    block = max(1, int(info.samplerate * block_seconds))
    stream = (
        b.mean(axis=1) if b.ndim == 2 else b
        for b in sf.blocks(str(path), blocksize=block, dtype="float32", always_2d=True)
    )
    return _envelope_of_blocks(stream, int(info.frames), bins, int(info.samplerate))


def decode_audio(path: str | Path, sample_rate: int = 16000) -> tuple[np.ndarray, int]:
    """Decode any audio/video file's first audio stream to mono float32 at ``sample_rate``.

    Returns:
        ((n,) float32 in [-1, 1], sample_rate)

    Raises:
        MediaError: no audio stream or not a media file.
    """
    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(int(sample_rate)),
        "-f",
        "s16le",
        "-",
    ]
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"cannot decode the audio of {path}: {exc}") from None
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MediaError(
            f"{Path(path).name} has no readable audio" + (f" ({reason[-1]})" if reason else ""),
            "choose a wav, flac, mp3 or a video file with a sound track",
        )
    samples = np.frombuffer(result.stdout, np.int16).astype(np.float32) / 32768.0
    return samples, int(sample_rate)


# ------------------------------------------------------------------------------------------------
# Video
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a video file."""

    path: str
    fps: float
    width: int
    height: int
    duration_s: float
    codec: str
    audio_codec: str | None

    @property
    def frames(self) -> int:
        return max(int(round(self.duration_s * self.fps)), 0)


TEXT_PSEUDO_CODECS = frozenset({"ansi", "bintext", "xbin", "idf", "tty"})
VIDEO_HINT = "choose a video file (mp4, mov, mkv, avi...) with a video stream"


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's metadata.

    Raises:
        MediaError: missing file, not a media file, or a file without a video stream (e.g. a wav).
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path} does not exist", VIDEO_HINT)
    if path.is_dir():
        raise MediaError(f"{path} is a folder, not a video file", VIDEO_HINT)
    gen = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration):
        if _is_audio_file(path):
            raise MediaError(f"{path.name} is an audio file, not a video", VIDEO_HINT) from None
        raise MediaError(f"{path.name} is not a video file ffmpeg can read", VIDEO_HINT) from None
    finally:
        gen.close()
    fps = float(meta.get("fps") or 0.0)
    size = meta.get("size") or (0, 0)
    codec = str(meta.get("codec", "")).rstrip(",").strip()
    if codec in TEXT_PSEUDO_CODECS:  # ffmpeg renders text files as ANSI-art "video"
        raise MediaError(f"{path.name} is a text file, not a video", VIDEO_HINT)
    if fps <= 0 or not size[0] or not size[1]:
        raise MediaError(f"{path.name} has no video stream", VIDEO_HINT)
    if float(meta.get("duration") or 0.0) * fps < 1.5:
        raise MediaError(f"{path.name} is a single image, not a video", VIDEO_HINT)
    return VideoInfo(
        str(path),
        fps,
        int(size[0]),
        int(size[1]),
        float(meta.get("duration") or 0.0),
        str(meta.get("codec", "")),
        meta.get("audio_codec"),
    )


def _is_audio_file(path: Path) -> bool:
    try:
        import soundfile as sf

        sf.info(str(path))
    except Exception:  # noqa: BLE001 - any failure means "not an audio file soundfile knows"
        return False
    return True


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even-sized (w, h) that fits in ``max_side`` keeping the aspect ratio."""
    scale = min(1.0, max_side / float(max(width, height)))
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def iter_frames(
    path: str | Path, start_frame: int = 0, max_side: int = 320, fps: float | None = None
) -> Iterator[np.ndarray]:
    """Stream frames from ``start_frame`` on, downscaled to fit ``max_side``: (h, w, 3) uint8 each.

    Seeking is done by ffmpeg (``-ss`` before the input: fast, frame accurate for re-encoded output).
    """
    import imageio_ffmpeg

    info = probe_video(path)
    fps = fps or info.fps
    w, h = _scaled_size(info.width, info.height, max_side)
    input_params = ["-ss", f"{start_frame / fps:.6f}"] if start_frame > 0 else []
    gen = imageio_ffmpeg.read_frames(
        str(path), input_params=input_params, output_params=["-vf", f"scale={w}:{h}"]
    )
    try:
        meta = next(gen)
        w, h = meta["size"]
        for raw in gen:
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    finally:
        gen.close()


def read_frame(path: str | Path, index: int, max_side: int = 480) -> np.ndarray:
    """One frame (h, w, 3) uint8; the last frame when ``index`` is past the end.

    Raises:
        MediaError: unreadable video.
    """
    last: np.ndarray | None = None
    for frame in iter_frames(path, max(int(index), 0), max_side):
        last = frame
        break
    if last is None:  # past the end: ffmpeg produced nothing after the seek; take the final frame
        info = probe_video(path)
        back = max(min(int(index), info.frames) - int(info.fps) - 1, 0)  # a second before the end
        for frame in iter_frames(path, back, max_side):
            last = frame
    if last is None:
        raise MediaError(f"{Path(path).name}: no frame could be decoded", VIDEO_HINT)
    return last


def thumbnails(
    path: str | Path, count: int, height: int = 72, n_frames: int | None = None
) -> tuple[list[int], list[np.ndarray]]:
    """``count`` evenly spaced frames of a video, one streaming pass at thumbnail size.

    Returns:
        (frame indices, list of (height, w, 3) uint8 images)
    """
    info = probe_video(path)
    total = n_frames or info.frames or 1
    count = max(1, min(int(count), total))
    wanted = np.unique(np.round(np.linspace(0, total - 1, count)).astype(int))
    max_side = max(height, int(round(height * info.width / max(info.height, 1))))
    picked: list[np.ndarray] = []
    indices: list[int] = []
    pointer = 0
    for i, frame in enumerate(iter_frames(path, 0, max_side)):
        if pointer < len(wanted) and i == wanted[pointer]:
            picked.append(frame.copy())
            indices.append(i)
            pointer += 1
            if pointer == len(wanted):
                break
    return indices, picked


class FrameCache:
    """Frames of one video by index with a small LRU cache (scrubbing revisits frames)."""

    def __init__(self, path: str | Path, max_side: int = 480, capacity: int = 48) -> None:
        self.path = Path(path)
        self.max_side = max_side
        self.capacity = capacity
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.info = probe_video(self.path)

    def frame(self, index: int) -> np.ndarray:
        index = min(max(int(index), 0), max(self.info.frames - 1, 0))
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = read_frame(self.path, index, self.max_side)
        self._cache[index] = image
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return image
