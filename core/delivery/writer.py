"""Writers of the delivery formats: a movie (through :class:`~core.io.video.VideoWriter`) or an image sequence.

An image sequence is a folder ``NAME/`` of ``NAME.001001.png`` (or ``.exr``), ``NAME.001002.png``... (frame
numbers from :data:`~core.delivery.formats.SEQUENCE_START`), with ``NAME.json`` (frame rate, first frame,
timecode, frame count, colour, provenance) and ``NAME.wav`` (the dub audio at its own rate and depth) beside the
frames. The matte sequence (``--matte sequence``) is a folder ``<output>_matte/`` of 16-bit greyscale PNGs (0 =
the plate, 65535 = the rendered face). Every folder is written under a ``.tmp-`` name and renamed into place when
complete, like every file emodub writes; a failure leaves nothing (and the old output, if any, as it was).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from .formats import SEQUENCE_START, DeliveryFormat


def _to16(frame: np.ndarray) -> np.ndarray:
    """uint8 -> uint16 by ``v * 257`` (exact and reversible: ``w >> 8`` gives ``v`` back); uint16 as it is."""
    return frame.astype(np.uint16) * 257 if frame.dtype == np.uint8 else frame


def enable_openexr() -> Any:
    """OpenCV with its OpenEXR codec switched on (OpenCV ships it off; it is only used here to *write* EXR).

    Raises:
        RuntimeError: OpenCV is missing or was already used with the codec off in this process.
    """
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        import cv2
    except ImportError:
        raise RuntimeError("writing EXR needs OpenCV (pip install opencv-contrib-python==4.11.0.86)") from None
    return cv2


class _PngPipe:
    """Frames piped into one ffmpeg that writes a numbered 16-bit PNG sequence (``rgb48``, ``rgba64`` or
    ``gray16``)."""

    def __init__(self, pattern: Path, width: int, height: int, channels: int, rate: Fraction) -> None:
        from core.io.ffmpeg import ffmpeg_exe, own_process_group

        pix_in, pix_out = {1: ("gray16le", "gray16be"), 3: ("rgb48le", "rgb48be"), 4: ("rgba64le", "rgba64be")}[
            channels]
        self.shape = (height, width, channels) if channels > 1 else (height, width)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo",
               "-pix_fmt", pix_in, "-s", f"{width}x{height}", "-framerate", f"{rate.numerator}/{rate.denominator}",
               "-i", "-", "-c:v", "png", "-pix_fmt", pix_out, "-start_number", str(SEQUENCE_START),
               "-f", "image2", str(pattern)]
        self._err: IO[bytes] = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err,
                                      **own_process_group())

    def write(self, frame: np.ndarray) -> None:
        from core.io.ffmpeg import MediaError

        arr = np.ascontiguousarray(frame, "<u2")
        if arr.shape != self.shape:
            raise MediaError(f"a frame of {arr.shape} in a sequence of {self.shape}", code="bad_frame")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(arr.reshape(-1).data)
        except BrokenPipeError:
            self._fail()

    def _fail(self) -> None:
        from core.io.ffmpeg import MediaError, stderr_tail

        self._proc.wait()
        self._err.seek(0)
        raise MediaError(f"writing the PNG sequence failed: {stderr_tail(self._err.read())}", code="encode_failed")

    def close(self) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        if self._proc.wait() != 0:
            self._fail()
        self._err.close()

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        with contextlib.suppress(Exception):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        self._proc.wait()
        self._err.close()


class _Folder:
    """A folder written under a temporary name beside ``target`` and renamed over it on :meth:`commit`."""

    def __init__(self, target: Path) -> None:
        from core.workspace.atomic import TMP_PREFIX

        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = target.parent / f"{TMP_PREFIX}{target.name}.{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()

    def commit(self) -> Path:
        old = None
        if self.target.exists():
            old = self.tmp.with_name(self.tmp.name + "-old")
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class DeliveryWriter:
    """Write a dub in one delivery format, frame by frame. Use as a context manager::

        with DeliveryWriter(FORMATS["png16"], out, Fraction(24000, 1001), audio=wav, matte="sequence") as w:
            for frame, matte in ...:
                w.write(frame, matte)        # (H, W, 3) uint8/uint16 plate-composited frame, (H, W) uint16 matte
        w.outputs                            # {"delivery": path, "matte": path (with --matte sequence)}

    Args:
        fmt: the format.
        out: a movie file (``.mov``/``.mp4``) or the sequence's folder.
        rate: the exact frame rate.
        audio: the dub audio (muxed into a movie as ``audio_codec``; copied beside a sequence).
        audio_codec: the movie's audio codec (e.g. ``pcm_s24le`` for a 24-bit dub audio).
        timecode: the first frame's timecode.
        metadata: movie metadata tags (string values).
        sidecar: extra fields of a sequence's JSON sidecar (e.g. the provenance).
        matte: ``none``, ``sequence`` or ``alpha`` (:func:`~core.delivery.formats.check_matte`).
    """

    def __init__(self, fmt: DeliveryFormat, out: str | Path, rate: Fraction, *, audio: str | Path | None = None,
                 audio_codec: str | None = None, timecode: str | None = None,
                 metadata: dict[str, str] | None = None, sidecar: dict[str, Any] | None = None,
                 matte: str = "none") -> None:
        from .formats import check_matte

        check_matte(fmt, matte)
        self.fmt, self.out, self.rate = fmt, Path(out), Fraction(rate)
        self.audio = None if audio is None else Path(audio)
        self.audio_codec, self.timecode = audio_codec, timecode
        self.metadata = dict(metadata or {})
        self.sidecar = dict(sidecar or {})
        self.matte = matte
        self.frames = 0
        self.outputs: dict[str, str] = {}
        self._movie: Any = None
        self._folder: _Folder | None = None
        self._pipe: _PngPipe | None = None
        self._matte_folder: _Folder | None = None
        self._matte_pipe: _PngPipe | None = None
        self._size: tuple[int, int] | None = None
        self._depth = 8
        self._closed = False
        if not fmt.sequence:
            from core.io.video import VideoWriter

            self._movie = VideoWriter(self.out, self.rate, codec=fmt.codec or "h264", alpha=matte == "alpha",
                                      audio=self.audio, audio_codec=audio_codec, timecode=timecode,
                                      metadata=self.metadata)

    def __enter__(self) -> DeliveryWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def matte_dir(self) -> Path:
        stem = self.out.name if self.fmt.sequence else self.out.stem
        return self.out.parent / f"{stem}_matte"

    def _start(self, width: int, height: int, depth: int) -> None:
        self._size, self._depth = (width, height), depth
        if self.fmt.sequence:
            self._folder = _Folder(self.out)
            if self.fmt.ext == ".png":
                channels = 4 if self.matte == "alpha" else 3
                self._pipe = _PngPipe(self._folder.tmp / f"{self.out.name}.%06d.png", width, height, channels,
                                      self.rate)
            else:
                enable_openexr()
        if self.matte == "sequence":
            self._matte_folder = _Folder(self.matte_dir)
            self._matte_pipe = _PngPipe(self._matte_folder.tmp / f"{self.matte_dir.name}.%06d.png", width, height, 1,
                                        self.rate)

    def write(self, frame: np.ndarray, matte: np.ndarray) -> None:
        """Append a composited frame ((H, W, 3) uint8 or uint16) and its paste matte ((H, W) uint16)."""
        from core.io.ffmpeg import MediaError

        if self._closed:
            raise MediaError("this DeliveryWriter is closed", code="encode_failed")
        height, width = frame.shape[:2]
        try:
            if self._size is None:
                self._start(width, height, 16 if frame.dtype == np.uint16 else 8)
            if (width, height) != self._size or matte.shape != (height, width):
                raise MediaError(f"frame {self.frames} is {width}x{height} with a {matte.shape} matte, the output "
                                 f"is {self._size}", code="bad_frame")
            self._write(frame, np.asarray(matte, np.uint16))
        except BaseException:
            self.abort()
            raise
        self.frames += 1

    def _write(self, frame: np.ndarray, matte: np.ndarray) -> None:
        alpha = self.matte == "alpha"
        if self._movie is not None:
            if alpha:  # ProRes 4444: RGBA at 16 bits (the matte keeps its precision)
                self._movie.write(np.concatenate([_to16(frame), matte[..., None]], axis=2))
            else:
                self._movie.write(frame)
        elif self._pipe is not None:
            rgb = _to16(frame)
            self._pipe.write(np.concatenate([rgb, matte[..., None]], axis=2) if alpha else rgb)
        else:
            cv2 = enable_openexr()
            assert self._folder is not None
            top = np.float32(np.iinfo(frame.dtype).max)
            image = frame.astype(np.float32) / top
            bgr = image[..., ::-1]
            if alpha:
                bgr = np.concatenate([bgr, (matte.astype(np.float32) / np.float32(65535))[..., None]], axis=2)
            path = self._folder.tmp / f"{self.out.name}.{SEQUENCE_START + self.frames:06d}.exr"
            ok = cv2.imwrite(str(path), np.ascontiguousarray(bgr),
                             [cv2.IMWRITE_EXR_TYPE, cv2.IMWRITE_EXR_TYPE_FLOAT,
                              cv2.IMWRITE_EXR_COMPRESSION, cv2.IMWRITE_EXR_COMPRESSION_ZIP])
            if not ok:
                from core.io.ffmpeg import MediaError

                raise MediaError(f"OpenCV could not write {path.name}", code="encode_failed")
        if self._matte_pipe is not None:
            self._matte_pipe.write(matte)

    def close(self) -> dict[str, str]:
        """Finish and move everything into place; returns :attr:`outputs`."""
        from core.io.ffmpeg import MediaError
        from core.workspace import atomic_write_json

        if self._closed:
            return self.outputs
        if self._size is None:
            self.abort()
            raise MediaError(f"no frames were written to {self.out}", code="no_frames")
        try:
            if self._movie is not None:
                self._movie.close()
            if self._pipe is not None:
                self._pipe.close()
            if self._matte_pipe is not None:
                self._matte_pipe.close()
            if self._folder is not None:
                name = self.out.name
                if self.audio is not None:
                    shutil.copyfile(self.audio, self._folder.tmp / f"{name}.wav")
                atomic_write_json(self._folder.tmp / f"{name}.json", {
                    "format": f"emodub-{self.fmt.name}-sequence", "version": 1,
                    "files": f"{name}.%06d{self.fmt.ext}", "first_frame": SEQUENCE_START,
                    "last_frame": SEQUENCE_START + self.frames - 1, "frames": self.frames,
                    "fps": float(self.rate), "fps_num": self.rate.numerator, "fps_den": self.rate.denominator,
                    "timecode": self.timecode, "width": self._size[0], "height": self._size[1],
                    "bits": 16 if self.fmt.ext == ".png" else 32, "plate_bits": self._depth,
                    "alpha": "matte" if self.matte == "alpha" else None,
                    "values": ("RGB code values of the plate (not linearised); an 8-bit plate value v is stored as "
                               + ("257 v" if self.fmt.ext == ".png" else "v / 255")),
                    "audio": f"{name}.wav" if self.audio is not None else None, **self.sidecar})
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._folder is not None:
            self._folder.commit()
        if self._matte_folder is not None:
            self._matte_folder.commit()
            self.outputs["matte"] = str(self.matte_dir)
        self.outputs["delivery"] = str(self.out)
        return self.outputs

    def abort(self) -> None:
        """Stop and remove everything half-made; earlier outputs stay as they were."""
        if self._closed:
            return
        self._closed = True
        if self._movie is not None:
            self._movie.abort()
        for pipe in (self._pipe, self._matte_pipe):
            if pipe is not None:
                pipe.kill()
        for folder in (self._folder, self._matte_folder):
            if folder is not None:
                folder.discard()
