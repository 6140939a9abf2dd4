"""Video I/O through the bundled ffmpeg: probe, stream frames in, stream frames out.

Nothing here holds a whole video in memory: :func:`iter_frames` reads raw RGB frames one at a time
from an ffmpeg pipe, and :class:`VideoWriter` pipes frames into an ffmpeg encoder as they come.

* :func:`probe` parses ``ffmpeg -i`` (there is no ffprobe in imageio-ffmpeg) and, unless told not to,
  reads the packet timestamps of the video stream (``-c copy -f framecrc``: no decoding, so it is fast)
  for an exact frame count and variable-frame-rate detection.
* :func:`iter_frames` decodes with optional frame-rate normalisation (ffmpeg's ``fps`` filter: frames
  are duplicated or dropped to land on a constant grid), crop and resize, in that order.
* :class:`VideoWriter` encodes H.264 yuv420p (the format every player and Blender read), optionally
  muxes a wav in as AAC, and writes atomically: the file appears under its name only when complete.

Frames are ``uint8`` arrays of shape ``(H, W, 3)``, RGB. Rotated phone videos are returned upright
(ffmpeg's autorotation); :attr:`VideoInfo.width`/``height`` are the upright size.
"""

from __future__ import annotations

import contextlib
import math
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from .ffmpeg import (
    MediaError,
    check_readable,
    ffmpeg_exe,
    fps_arg,
    fps_fraction,
    own_process_group,
    run_ffmpeg,
    stderr_tail,
)

__all__ = ["VideoInfo", "VideoWriter", "iter_frames", "probe", "read_frame", "write_video"]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found in a file.

    Attributes:
        path: absolute path of the file.
        container: ffmpeg's demuxer name (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``...).
        width, height: upright frame size in pixels (after the rotation below is applied).
        rotation: clockwise rotation (0/90/180/270) ffmpeg applies when decoding (phone videos).
        codec, pix_fmt: video codec and pixel format of the stream.
        sar: sample aspect ratio (``"1:1"`` = square pixels; ``None`` when not stated).
        fps: nominal frame rate (the stream's average rate, else ffmpeg's ``tbr`` guess).
        frames: number of video frames; exact when ``frames_exact`` (counted from packets), else
            ``duration_s * fps`` rounded.
        duration_s: duration of the file (container), seconds.
        variable_fps: frame intervals vary (more than 2 % of them are off the median by >10 %);
            ``None`` when timestamps were not read. Ingest normalises such video to a constant rate.
        fps_range: (min, max) instantaneous frame rate (5th/95th percentile of intervals) or ``None``.
        video_stream: ffmpeg index of the video stream used (cover-art streams are skipped).
        has_audio, audio_stream, audio_codec, audio_sample_rate, audio_channels: first audio stream.
        timecode: the source timecode of the first frame (``01:00:00:00``; ``;`` before the frames of a
            drop-frame timecode) from the container's or the video stream's ``timecode`` tag, or ``None``.
        tbr: ffmpeg's guess of the stream's base rate (``r_frame_rate``): what a variable-rate phone video was
            meant to run at (30 with dropped frames), where :attr:`fps` is its average.
        fps_num, fps_den: the frame rate as an exact rational (``24000/1001``): ffmpeg's printed rate
            (rounded to two decimals) snapped to the NTSC family or a small denominator, checked against the
            packet timestamps when they were read (:attr:`rate`).
    """

    path: str
    container: str
    width: int
    height: int
    rotation: int
    codec: str
    pix_fmt: str
    sar: str | None
    fps: float
    frames: int
    frames_exact: bool
    duration_s: float
    variable_fps: bool | None
    fps_range: tuple[float, float] | None
    video_stream: int
    has_audio: bool
    audio_stream: int | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    timecode: str | None = None
    fps_num: int = 0
    fps_den: int = 1
    tbr: float = 0.0

    @property
    def rate(self) -> Fraction:
        """The exact frame rate (``fps_num/fps_den``; from :attr:`fps` for an info made without them)."""
        if self.fps_num > 0 and self.fps_den > 0:
            return Fraction(self.fps_num, self.fps_den)
        return fps_fraction(self.fps) if self.fps > 0 else Fraction(0)

    @property
    def bit_depth(self) -> int:
        """Bits per component of the stream's pixel format (8 for yuv420p, 10 for yuv422p10le...)."""
        return pix_fmt_depth(self.pix_fmt)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.width, self.height

    @property
    def average_fps(self) -> float:
        """Frames per second over the whole stream (what a variable-rate video averages)."""
        if self.frames_exact and self.duration_s > 0 and self.frames > 1:
            return self.frames / self.duration_s
        return self.fps

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["fps_range"] = list(self.fps_range) if self.fps_range else None
        return out


# ------------------------------------------------------------------------------------------------
# probe
# ------------------------------------------------------------------------------------------------

_INPUT = re.compile(r"^Input #0, (.+?), from ", re.M)
_DURATION = re.compile(r"Duration: (N/A|(\d+):(\d+):(\d+(?:\.\d+)?))")
_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\([^)]*\))?: (\w+): (.*)$")
_SIZE = re.compile(r"(?:^|[ ,])(\d{1,5})x(\d{1,5})(?=[ ,\[]|$)")
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)")
_SAR = re.compile(r"SAR (\d+:\d+)")
_HZ = re.compile(r"(\d+) Hz")
_ROTATE = re.compile(r"^\s*rotate\s*:\s*(-?\d+)", re.M)
_TIMECODE = re.compile(r"^\s*timecode\s*:\s*(\d{1,2}:\d{2}:\d{2}[:;.]\d{2,3})\s*$", re.M)
_DISPLAYMATRIX = re.compile(r"displaymatrix: rotation of (-?[\d.]+) degrees")
_CHANNEL_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6,
                    "6.1": 7, "7.1": 8, "downmix": 2}


def _rate(text: str, which: str) -> float | None:
    for value, kilo, kind in _RATE.findall(text):
        if kind == which:
            return float(value) * (1000.0 if kilo else 1.0)
    return None


def pix_fmt_depth(pix_fmt: str) -> int:
    """Bits per component of an ffmpeg pixel format name: ``yuv420p`` 8, ``yuv422p10le`` 10, ``rgb48le`` 16,
    ``gbrpf32le`` 32; unknown names count as 8."""
    name = pix_fmt.lower()
    if name in ("rgb48le", "rgb48be", "bgr48le", "bgr48be", "rgba64le", "rgba64be", "bgra64le", "bgra64be",
                "gray16le", "gray16be", "ya16le", "ya16be"):
        return 16
    if "f32" in name:
        return 32
    if "f16" in name:
        return 16
    match = re.search(r"p(\d{2})(?:le|be)?$", name) or re.search(r"^p\d(\d{2})", name)  # p010le, p210le
    return int(match.group(1)) if match else 8


def exact_rate(nominal: float, times: np.ndarray | None = None) -> Fraction:
    """The exact frame rate of a stream: ``nominal`` (ffmpeg's printed rate) snapped to the NTSC family
    (``23.98`` -> ``24000/1001``) or a small denominator, unless the packet ``times`` (seconds, sorted)
    say otherwise by more than 0.2 % (then their average rate, snapped the same way)."""
    snapped = fps_fraction(nominal) if nominal > 0 else None
    if times is not None and times.size >= 3 and times[-1] > times[0]:
        measured = (times.size - 1) / float(times[-1] - times[0])
        if snapped is None or abs(measured - float(snapped)) > 2e-3 * float(snapped):
            return fps_fraction(measured)
    return snapped if snapped is not None else Fraction(0)


def _stream_blocks(stderr: str) -> list[tuple[int, str, str, str]]:
    """``(index, type, description, block text)`` for each stream of input 0."""
    lines = stderr.splitlines()
    blocks: list[tuple[int, str, str, str]] = []
    for i, line in enumerate(lines):
        m = _STREAM.match(line)
        if not m:
            continue
        indent = len(line) - len(line.lstrip())
        block = [line]
        for nxt in lines[i + 1:]:
            if _STREAM.match(nxt) or not nxt.strip() or len(nxt) - len(nxt.lstrip()) < indent:
                break
            block.append(nxt)
        blocks.append((int(m.group(1)), m.group(2), m.group(3), "\n".join(block)))
    return blocks


def _classify_failure(path: Path, stderr: str) -> MediaError:
    last = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = last[-1] if last else "no message from ffmpeg"
    reason = re.sub(r"^\[[^\]]*\]\s*", "", reason)  # "[mov,mp4 @ 0x..] " prefix
    if reason.startswith(str(path) + ":"):
        reason = reason[len(str(path)) + 1:].strip()
    if "Permission denied" in stderr:
        return MediaError(f"cannot read {path}: permission denied", hint="fix the file's permissions",
                          code="unreadable")
    with open(path, "rb") as fh:
        head = fh.read(12)
    if "moov atom not found" in stderr and head[4:8] == b"ftyp":  # an MP4 header without its index
        return MediaError(f"{path} is an incomplete MP4/MOV file (moov atom not found)",
                          hint="the recording or copy was interrupted; export or copy it again",
                          code="unreadable")
    return MediaError(f"{path} is not a video file ffmpeg can read ({reason})",
                      hint="give a video file (mp4, mov, mkv, avi...); check it plays in a video player",
                      code="not_media")


def _packet_times(path: Path, stream: int) -> np.ndarray | None:
    """Presentation times (s, sorted) of every packet of ``stream``, read without decoding."""
    proc = run_ffmpeg(["-v", "error", "-i", str(path), "-map", f"0:{stream}", "-c", "copy",
                       "-f", "framecrc", "-"], check=False)
    if proc.returncode != 0:
        return None
    text = proc.stdout.decode("utf-8", "replace")
    tb = re.search(r"^#tb \d+: (\d+)/(\d+)", text, re.M)
    if tb is None:
        return np.zeros(0)
    timebase = int(tb.group(1)) / int(tb.group(2))
    pts = [int(line.split(",")[2]) for line in text.splitlines() if line and not line.startswith("#")]
    return np.sort(np.asarray(pts, np.float64)) * timebase


def probe(path: str | Path, *, count_frames: bool = True) -> VideoInfo:
    """Inspect a video file.

    Args:
        path: the file.
        count_frames: read packet timestamps for an exact frame count and variable-rate detection
            (reads the whole file without decoding: about a second per GB).

    Raises:
        MediaError: ``not_found``, ``unreadable``, ``not_media`` (e.g. a text file renamed .mp4),
            ``no_video_stream`` (audio-only file; the message says what it does contain).
    """
    p = check_readable(path, "video")
    proc = run_ffmpeg(["-i", str(p)], check=False)  # exits 1 ("no output file") even when all is well
    stderr = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in stderr:
        raise _classify_failure(p, stderr)
    container_match = _INPUT.search(stderr)
    container = container_match.group(1) if container_match else "unknown"
    blocks = _stream_blocks(stderr)
    video = [b for b in blocks if b[1] == "Video" and "(attached pic)" not in b[2]]
    audio = [b for b in blocks if b[1] == "Audio"]
    if not video:
        found = ", ".join(sorted({b[1].lower() for b in blocks})) or "no streams"
        raise MediaError(f"{p} has no video stream (it contains: {found})",
                         hint="give a video file; to dub a sound file, pass it as the audio of a dub job",
                         code="no_video_stream")
    v_index, _, desc, block = video[0]
    codec = desc.split()[0].rstrip(",")
    size = _SIZE.search(desc)
    if size is None:
        raise MediaError(f"{p}: cannot tell the frame size of its video stream ({desc.strip()})",
                         hint="re-encode it with a common codec (H.264)", code="not_media")
    width, height = int(size.group(1)), int(size.group(2))
    fields = [f.strip() for f in desc.split(",")]
    pix_fmt = fields[1].split("(")[0].strip() if len(fields) > 1 else "unknown"
    sar_match = _SAR.search(desc)
    nominal_fps = _rate(desc, "fps") or _rate(desc, "tbr") or 0.0
    rotation = 0
    rot = _ROTATE.search(block)
    if rot:
        rotation = int(rot.group(1)) % 360
    else:
        dm = _DISPLAYMATRIX.search(block)
        if dm:
            rotation = int(round(-float(dm.group(1)))) % 360
    if rotation in (90, 270):
        width, height = height, width
    duration = 0.0
    dur = _DURATION.search(stderr)
    if dur and dur.group(1) != "N/A":
        duration = int(dur.group(2)) * 3600 + int(dur.group(3)) * 60 + float(dur.group(4))

    frames_exact = False
    variable: bool | None = None
    fps_range: tuple[float, float] | None = None
    frames = int(round(duration * nominal_fps)) if nominal_fps > 0 else 0
    times = None
    if count_frames:
        times = _packet_times(p, v_index)
        if times is not None:
            frames, frames_exact = int(times.size), True
            if times.size >= 3:
                intervals = np.diff(times)
                intervals = intervals[intervals > 0]
                if intervals.size >= 2:
                    median = float(np.median(intervals))
                    off = np.abs(intervals - median) > 0.1 * median
                    variable = bool(off.mean() > 0.02)
                    lo, hi = np.percentile(intervals, [95.0, 5.0])
                    fps_range = (round(1.0 / lo, 3), round(1.0 / hi, 3))
                    if nominal_fps <= 0:
                        nominal_fps = 1.0 / median
            if duration <= 0 and times.size >= 2:
                duration = float(times[-1] - times[0]) + (1.0 / nominal_fps if nominal_fps > 0 else 0.0)

    rate = exact_rate(nominal_fps, times if variable is False else None)
    if rate > 0 and variable is not True:
        nominal_fps = float(rate)
    tc = _TIMECODE.search(stderr)
    a_index = a_codec = a_rate = a_channels = None
    if audio:
        a_index, _, a_desc, _ = audio[0]
        a_codec = a_desc.split()[0].rstrip(",")
        hz = _HZ.search(a_desc)
        a_rate = int(hz.group(1)) if hz else None
        a_fields = [f.strip() for f in a_desc.split(",")]
        layout = a_fields[2] if len(a_fields) > 2 else ""
        ch = re.match(r"(\d+) channels", layout)
        a_channels = int(ch.group(1)) if ch else _CHANNEL_LAYOUTS.get(layout.split("(")[0].strip())
    return VideoInfo(path=str(p), container=container, width=width, height=height, rotation=rotation,
                     codec=codec, pix_fmt=pix_fmt, sar=sar_match.group(1) if sar_match else None,
                     fps=float(nominal_fps), frames=frames, frames_exact=frames_exact,
                     duration_s=float(duration), variable_fps=variable, fps_range=fps_range,
                     video_stream=v_index, has_audio=bool(audio), audio_stream=a_index, audio_codec=a_codec,
                     audio_sample_rate=a_rate, audio_channels=a_channels,
                     timecode=tc.group(1) if tc else None, fps_num=rate.numerator if rate > 0 else 0,
                     fps_den=rate.denominator if rate > 0 else 1, tbr=float(_rate(desc, "tbr") or 0.0))


# ------------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------------

def _filter_chain(fps: float | None, crop: tuple[int, int, int, int] | None, size: tuple[int, int] | None,
                  src: tuple[int, int]) -> tuple[list[str], tuple[int, int]]:
    filters: list[str] = []
    width, height = src
    if fps is not None:
        filters.append(f"fps={fps_arg(fps)}")
    if crop is not None:
        x, y, w, h = (int(v) for v in crop)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise ValueError(f"crop (x={x}, y={y}, w={w}, h={h}) is not inside the {width}x{height} frame")
        filters.append(f"crop={w}:{h}:{x}:{y}")
        width, height = w, h
    if size is not None:
        out_w, out_h = (int(v) for v in size)
        if out_w <= 0 or out_h <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if (out_w, out_h) != (width, height):
            # area averaging when shrinking (no aliasing), bicubic when enlarging
            flags = "area" if out_w * out_h < width * height else "bicubic"
            filters.append(f"scale={out_w}:{out_h}:flags={flags}")
        width, height = out_w, out_h
    return filters, (width, height)


def _read_exactly(stream: IO[bytes], nbytes: int) -> bytearray | None:
    buf = bytearray(nbytes)
    view = memoryview(buf)
    got = 0
    while got < nbytes:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None  # end of stream (a trailing partial frame is dropped)
        got += n
    return buf


def iter_frames(path: str | Path, *, fps: float | None = None, size: tuple[int, int] | None = None,
                crop: tuple[int, int, int, int] | None = None, start_s: float = 0.0,
                max_frames: int | None = None, info: VideoInfo | None = None,
                depth: int = 8) -> Iterator[np.ndarray]:
    """Decode frames one at a time through an ffmpeg pipe.

    Args:
        path: the video.
        fps: resample to this constant rate (frames duplicated/dropped on ffmpeg's ``fps`` grid);
            ``None`` keeps the stream's own frames.
        size: ``(width, height)`` of the output frames (after ``crop``); ``None`` keeps the size.
        crop: ``(x, y, w, h)`` region of the upright frame to keep, applied before ``size``.
        start_s: start time in seconds (fast seek).
        max_frames: stop after this many frames.
        info: a :func:`probe` result for ``path`` (saves probing again).
        depth: 8 (``uint8`` frames, ``rgb24``) or 16 (``uint16`` frames, ``rgb48le``: a 10-16 bit source at its
            full precision).

    Yields:
        (H, W, 3) uint8 (or uint16) RGB frames (each a fresh, writable array).

    Raises:
        MediaError: ``decode_failed`` when ffmpeg fails (with its message).
    """
    info = info or probe(path, count_frames=False)
    filters, (width, height) = _filter_chain(fps, crop, size, info.size)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if start_s > 0:
        cmd += ["-ss", f"{start_s:.6f}"]
    cmd += ["-i", info.path, "-map", f"0:{info.video_stream}", "-an", "-sn", "-dn"]
    if filters:
        cmd += ["-vf", ",".join(filters)]
    if fps is None:  # every frame of the stream once, as it is (no duplicates or drops to a constant rate)
        cmd += ["-vsync", "passthrough"]
    if max_frames is not None:
        cmd += ["-frames:v", str(int(max_frames))]
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8 or 16, got {depth}")
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24" if depth == 8 else "rgb48le", "-"]
    dtype = np.uint8 if depth == 8 else np.dtype("<u2")
    nbytes = width * height * 3 * (depth // 8)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                **own_process_group())
        assert proc.stdout is not None
        stopped_early = True
        yielded = 0
        try:
            while max_frames is None or yielded < max_frames:
                buf = _read_exactly(proc.stdout, nbytes)
                if buf is None:
                    stopped_early = False
                    break
                frame = np.frombuffer(buf, dtype).reshape(height, width, 3)
                yield frame if depth == 8 else frame.astype(np.uint16)
                yielded += 1
            else:
                stopped_early = False
        finally:
            if stopped_early and proc.poll() is None:
                proc.kill()  # the consumer stopped (break, exception, cancel): no need to finish
            proc.stdout.close()
            code = proc.wait()
        if code != 0 and not stopped_early:
            err.seek(0)
            raise MediaError(f"decoding {info.path} failed after {yielded} frames: {stderr_tail(err.read())}",
                             hint="the file may be damaged; try re-encoding it with ffmpeg",
                             code="decode_failed")


def read_frame(path: str | Path, index: int, *, fps: float | None = None,
               info: VideoInfo | None = None) -> np.ndarray:
    """Frame ``index`` of a constant-frame-rate video (such as ingest's ``video.mp4``), by seeking.

    ``fps`` defaults to the file's own rate. Frame ``i`` is the first frame shown at or after
    ``(i - 0.5) / fps`` s, which is robust to the rounding of container time bases.

    Raises:
        IndexError: no such frame.
    """
    if index < 0:
        raise IndexError(f"frame index must be >= 0, got {index}")
    info = info or probe(path, count_frames=False)
    rate = float(fps or info.fps)
    if rate <= 0:
        raise MediaError(f"{path}: unknown frame rate", hint="pass fps=", code="decode_failed")
    frames = list(iter_frames(path, start_s=_seek_time(index, rate), max_frames=1, info=info))
    if not frames:
        raise IndexError(f"{path} has no frame {index} (about {info.frames} frames)")
    return frames[0]


def _seek_time(index: int, rate: float) -> float:
    """Where to seek for frame ``index``: half a frame early, robust to the rounding of container time bases."""
    return max(0.0, (index - 0.5) / rate)


class FrameReader:
    """Full-resolution frames of a video by index, decoded (at ``depth``) as they are asked for.

    Read in order (a dub), every frame is decoded once. Without ``fps``, an earlier frame starts the decoding
    again from the first frame (a shot that loops); with ``fps``, an earlier frame, or one more than
    :attr:`SEEK_AHEAD` frames ahead, is reached by seeking (a preview reads a few frames anywhere). A video that
    ends early holds its last frame.
    """

    SEEK_AHEAD = 8

    def __init__(self, path: str | Path, depth: int = 8, fps: float | None = None) -> None:
        self.path, self.depth, self.fps = Path(path), depth, fps
        self._it: Iterator[np.ndarray] | None = None
        self._pos = -1
        self._frame: np.ndarray | None = None

    def get(self, index: int) -> np.ndarray:
        seek = self.fps is not None and (index < self._pos or index > self._pos + self.SEEK_AHEAD)
        if self._it is None or index < self._pos or seek:
            self.close()
            start = index if seek and index > 0 else 0
            self._it = iter_frames(self.path, start_s=_seek_time(start, self.fps) if start else 0.0,
                                   depth=self.depth)
            self._pos = start - 1
        while self._pos < index:
            try:
                self._frame = next(self._it)
            except StopIteration:
                break
            self._pos += 1
        assert self._frame is not None, f"{self.path} has no frames"
        return self._frame

    def close(self) -> None:
        if self._it is not None:
            self._it.close()  # type: ignore[attr-defined]
            self._it = None


# ------------------------------------------------------------------------------------------------
# encoding
# ------------------------------------------------------------------------------------------------

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def as_uint8_frame(frame: np.ndarray) -> np.ndarray:
    """A frame as C-contiguous (H, W, 3) uint8: float frames in [0, 1] are scaled and rounded,
    grey (H, W) / (H, W, 1) frames are repeated to RGB, RGBA drops alpha."""
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise MediaError(f"a frame must have shape (H, W, 3), got {arr.shape}", code="bad_frame")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise MediaError(f"frames must be uint8 or float in [0, 1], got {arr.dtype}", code="bad_frame")
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


# Video codecs :class:`VideoWriter` encodes: ffmpeg encoder, its options, the pixel format it is fed into
# (``{alpha}``: with or without an alpha plane), whether sides must be even.
VIDEO_CODECS: dict[str, dict[str, Any]] = {
    "h264": {"encoder": ["-c:v", "libx264"], "pix_fmt": ("yuv420p", None), "even": True,
             "audio": "aac", "containers": ("mp4", "mov", "matroska")},
    "prores422hq": {"encoder": ["-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0"],
                    "pix_fmt": ("yuv422p10le", None), "even": True, "audio": "pcm", "containers": ("mov",)},
    "prores4444": {"encoder": ["-c:v", "prores_ks", "-profile:v", "4", "-vendor", "apl0"],
                   "pix_fmt": ("yuv444p10le", "yuva444p10le"), "even": False, "audio": "pcm",
                   "containers": ("mov",)},
}
# PCM sample formats by soundfile subtype (the dub audio keeps its own depth in MOV deliveries).
PCM_CODECS = {"PCM_U8": "pcm_u8", "PCM_S8": "pcm_s8", "PCM_16": "pcm_s16le", "PCM_24": "pcm_s24le",
              "PCM_32": "pcm_s32le", "FLOAT": "pcm_f32le", "DOUBLE": "pcm_f64le"}


def as_frame(frame: np.ndarray, channels: int = 3) -> np.ndarray:
    """A frame as C-contiguous (H, W, ``channels``) ``uint8`` or ``uint16`` (16-bit frames are kept as they are;
    float frames in [0, 1] become uint8); see :func:`as_uint8_frame` for the other conversions."""
    arr = np.asarray(frame)
    if arr.dtype == np.uint16:
        if arr.ndim != 3 or arr.shape[2] != channels:
            raise MediaError(f"a 16-bit frame must have shape (H, W, {channels}), got {arr.shape}", code="bad_frame")
        return np.ascontiguousarray(arr)
    if channels == 4:
        if arr.ndim != 3 or arr.shape[2] != 4:
            raise MediaError(f"a frame with alpha must have shape (H, W, 4), got {arr.shape}", code="bad_frame")
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.floating):
                raise MediaError(f"frames must be uint8, uint16 or float in [0, 1], got {arr.dtype}",
                                 code="bad_frame")
            arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)
    return as_uint8_frame(arr)


class VideoWriter:
    """Stream frames into a video file, atomically. Use as a context manager::

        with VideoWriter(out, fps=25, audio="speech.wav") as writer:
            for frame in frames:
                writer.write(frame)      # (H, W, 3) uint8 or uint16, or float in [0, 1]

    The size and depth are fixed by the first frame: uint8 frames are fed to ffmpeg as ``rgb24``, uint16 frames
    (a 10-16 bit plate) as ``rgb48le`` (``rgba``/``rgba64le`` with ``alpha``). yuv420p/yuv422p need even sides:
    an odd width/height is padded by repeating the last column/row (``odd_size="pad"``) or refused
    (``"error"``). The file is encoded to a temporary name beside ``path`` and renamed over it when
    :meth:`close` succeeds; on an exception inside the ``with`` block (or :meth:`abort`) nothing is left behind
    and ``path`` is untouched.

    Args:
        path: output file (.mp4, .mov or .mkv; ProRes: .mov).
        fps: frame rate, exact (a :class:`~fractions.Fraction` or ``"30000/1001"``; 29.97 and friends are
            snapped to their exact 1001 rationals).
        audio: optional audio file muxed in (AAC for H.264, PCM for ProRes; its length is kept unless
            ``shortest``).
        shortest: end the file at the shorter of video and audio.
        crf: x264 constant quality (0 lossless, 17 visually lossless, 23 x264's default).
        preset: x264 speed/size trade-off (``ultrafast``...``veryslow``).
        audio_bitrate: AAC bit rate.
        threads: encoder threads (0 = ffmpeg decides).
        keyint: GOP length in frames (``None``: x264's default of 250); short GOPs make seeking faster.
        codec: ``h264`` (default: yuv420p, the format every player and Blender read), ``prores422hq`` (ProRes
            422 HQ, 10-bit 4:2:2) or ``prores4444`` (ProRes 4444, 10-bit 4:4:4, with ``alpha`` an alpha plane).
        alpha: frames carry a fourth (alpha) channel, written as the alpha plane (``prores4444`` only).
        audio_codec: the audio encoder (default: ``aac`` for H.264, ``pcm_s16le`` for ProRes; see
            :data:`PCM_CODECS` to keep the dub audio's own depth).
        timecode: the timecode of the first frame (``01:00:00:00``), written as the file's timecode track.
        metadata: container metadata (``{"comment": ..., "emodub_version": ...}``); keys other than the
            standard ones are kept in MOV/MP4 (``use_metadata_tags``).
    """

    def __init__(self, path: str | Path, fps: float | Fraction | str, *, audio: str | Path | None = None,
                 shortest: bool = False, crf: int = 17, preset: str = "veryfast", audio_bitrate: str = "192k",
                 threads: int = 0, keyint: int | None = None, odd_size: str = "pad", codec: str = "h264",
                 alpha: bool = False, audio_codec: str | None = None, timecode: str | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.fps = fps_fraction(fps)
        self.audio = None if audio is None else check_readable(audio, "audio")
        self.shortest = shortest
        self.crf = int(crf)
        self.preset = preset
        self.audio_bitrate = audio_bitrate
        self.threads = int(threads)
        self.keyint = keyint
        if odd_size not in ("pad", "error"):
            raise ValueError(f"odd_size must be 'pad' or 'error', got {odd_size!r}")
        if codec not in VIDEO_CODECS:
            raise ValueError(f"codec must be one of {', '.join(VIDEO_CODECS)}, got {codec!r}")
        if alpha and VIDEO_CODECS[codec]["pix_fmt"][1] is None:
            raise ValueError(f"{codec} has no alpha plane (use prores4444)")
        self.codec = codec
        self.alpha = bool(alpha)
        self.audio_codec = audio_codec or ("aac" if VIDEO_CODECS[codec]["audio"] == "aac" else "pcm_s16le")
        self.timecode = timecode
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.odd_size = odd_size
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given
        self.encoded_size: tuple[int, int] | None = None  # after padding to even sides
        self.depth: int | None = None  # 8 or 16 bits per component, from the first frame
        self._stack = contextlib.ExitStack()
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._err: IO[bytes] | None = None
        self._closed = False

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing -----------------------------------------------------------------------------
    def _start(self, width: int, height: int, depth: int) -> None:
        from core.workspace import atomic_path

        spec = VIDEO_CODECS[self.codec]
        if self.path.suffix.lower() not in _FORMATS:
            raise MediaError(f"cannot write {self.path.name}: use .mp4, .mov or .mkv", code="encode_failed")
        fmt = _FORMATS[self.path.suffix.lower()]
        if fmt not in spec["containers"]:
            raise MediaError(f"cannot write {self.codec} into {self.path.name}: use a .mov file",
                             code="encode_failed")
        self.size, self.depth = (width, height), depth
        self.encoded_size = (width + width % 2, height + height % 2) if spec["even"] else (width, height)
        if self.encoded_size != self.size and self.odd_size == "error":
            raise MediaError(f"frame size {width}x{height} has an odd side; {spec['pix_fmt'][0]} needs even sides",
                             hint="crop or pad the frames to even sizes", code="bad_frame")
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        ew, eh = self.encoded_size
        pix_in = {(8, False): "rgb24", (16, False): "rgb48le", (8, True): "rgba", (16, True): "rgba64le"}[
            (depth, self.alpha)]
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", pix_in, "-s", f"{ew}x{eh}", "-framerate", fps_arg(self.fps),
               "-i", "-"]
        if self.audio is not None:
            cmd += ["-i", str(self.audio)]
        cmd += ["-map", "0:v:0"]
        if self.audio is not None:
            cmd += ["-map", "1:a:0", "-c:a", self.audio_codec]
            if self.audio_codec == "aac":
                cmd += ["-b:a", self.audio_bitrate]
            if self.shortest:
                cmd += ["-shortest"]
        cmd += list(spec["encoder"])
        if self.codec == "h264":
            cmd += ["-preset", self.preset, "-crf", str(self.crf)]
        # RGB -> Y'CbCr with the BT.709 matrix, and say so in the stream
        cmd += ["-vf", "scale=out_color_matrix=bt709:out_range=tv", "-colorspace", "bt709",
                "-color_primaries", "bt709", "-color_trc", "bt709"] if self.codec != "h264" else []
        cmd += ["-pix_fmt", spec["pix_fmt"][1 if self.alpha else 0], "-threads", str(self.threads)]
        if self.keyint and self.codec == "h264":
            cmd += ["-g", str(int(self.keyint))]
        if self.timecode:
            cmd += ["-timecode", self.timecode]
        for key, value in self.metadata.items():
            cmd += ["-metadata", f"{key}={value}"]
        if fmt in ("mp4", "mov"):
            cmd += ["-movflags", "+faststart" + ("+use_metadata_tags" if self.metadata else "")]
        cmd += ["-f", fmt, str(self._tmp)]
        self._err = self._stack.enter_context(tempfile.TemporaryFile())
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err,
                                      **own_process_group())

    def _ffmpeg_error(self) -> str:
        if self._err is None:
            return "no message from ffmpeg"
        self._err.seek(0)
        return stderr_tail(self._err.read())

    def write(self, frame: np.ndarray) -> None:
        """Append one frame ((H, W, 3) uint8/uint16 or float in [0, 1]; (H, W, 4) with ``alpha``); all frames
        must have the first's size and type."""
        if self._closed:
            raise MediaError("this VideoWriter is closed", code="encode_failed")
        try:
            arr = as_frame(frame, 4 if self.alpha else 3)
        except MediaError:
            self.abort()
            raise
        height, width = arr.shape[:2]
        depth = 16 if arr.dtype == np.uint16 else 8
        if self._proc is None:
            try:
                self._start(width, height, depth)
            except BaseException:
                self.abort()
                raise
        if (width, height) != self.size or depth != self.depth:
            self.abort()
            raise MediaError(f"frame {self.frames_written} is {width}x{height} at {depth} bits, the video is "
                             f"{self.size[0]}x{self.size[1]} at {self.depth} bits",
                             hint="give frames of one size and type", code="bad_frame")
        if self.encoded_size != self.size:
            ew, eh = self.encoded_size
            arr = np.pad(arr, ((0, eh - height), (0, ew - width), (0, 0)), mode="edge")
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(arr.reshape(-1).data)
        except BrokenPipeError:
            self._proc.wait()
            message = self._ffmpeg_error()
            self.abort()
            raise MediaError(f"encoding {self.path} failed: {message}", code="encode_failed") from None
        self.frames_written += 1

    def write_many(self, frames: Iterable[np.ndarray]) -> None:
        """Append frames from an iterable or an (N, H, W, 3) array."""
        for frame in frames:
            self.write(frame)

    def close(self) -> Path:
        """Finish encoding and move the file into place. Returns ``path``."""
        if self._closed:
            return self.path
        if self._proc is None:
            self.abort()
            raise MediaError(f"no frames were written to {self.path}", code="no_frames")
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        code = self._proc.wait()
        if code != 0:
            message = self._ffmpeg_error()
            self.abort()
            raise MediaError(f"encoding {self.path} failed: {message}", code="encode_failed")
        self._closed = True
        self._stack.close()  # renames the temporary file over path
        return self.path

    def abort(self) -> None:
        """Stop encoding and remove the temporary file; ``path`` is left as it was."""
        if self._closed:
            return
        self._closed = True
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(Exception):
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            self._proc.wait()
        # unwinding atomic_path with an exception deletes its temporary file
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float | Fraction | str,
                **kwargs: Any) -> Path:
    """Write all ``frames`` (iterable or (N, H, W, 3) array) with :class:`VideoWriter`."""
    with VideoWriter(path, fps, **kwargs) as writer:
        writer.write_many(frames)
    return Path(path)


def frame_count_for(duration_s: float, fps: float) -> int:
    """Frames a constant-rate stream of ``duration_s`` has at ``fps`` (ffmpeg's ``fps`` filter rounds
    each output time to the nearest input frame, so this is an estimate to +-1)."""
    return max(0, int(math.floor(duration_s * float(Fraction(fps_fraction(fps))) + 0.5)))
