"""The ffmpeg executable shipped by imageio-ffmpeg, and the error type of everything in :mod:`core.io`.

emodub never relies on a system ffmpeg or ffprobe: ``imageio_ffmpeg.get_ffmpeg_exe()`` gives a static
build inside the wheel (4.2.2 for imageio-ffmpeg 0.5.1), which has libx264, aac and libsoxr. There is no
ffprobe in that wheel, so :mod:`core.io.video` probes by parsing ``ffmpeg -i`` output.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any


class MediaError(Exception):
    """A video/audio file emodub cannot use. ``code`` for programs, ``message``/``hint`` for people.

    Codes: ``not_found``, ``unreadable``, ``not_media`` (not a video/audio file ffmpeg can read),
    ``no_video_stream``, ``no_audio_stream``, ``no_frames``, ``decode_failed``, ``encode_failed``,
    ``bad_frame``, ``no_ffmpeg``.
    """

    def __init__(self, message: str, *, hint: str = "", code: str = "media_error") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaError("imageio-ffmpeg is not installed", hint="pip install imageio-ffmpeg==0.5.1",
                         code="no_ffmpeg") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise MediaError(f"the ffmpeg binary of imageio-ffmpeg is missing ({exc})",
                         hint="reinstall imageio-ffmpeg (pip install --force-reinstall imageio-ffmpeg)",
                         code="no_ffmpeg") from None


def own_process_group() -> dict[str, Any]:
    """``Popen`` keyword arguments that start ffmpeg in its own process group.

    Ctrl-C in a terminal sends SIGINT to the whole foreground process group. ffmpeg would die of it at
    once, and the engine would report "encoding ... failed: no message from ffmpeg" instead of running
    its cancel path (which stops ffmpeg itself and removes the half-written file). In a group of its
    own ffmpeg never sees the terminal's signals; the engine kills it on cancel and on errors, and an
    ffmpeg orphaned by a killed engine ends when its pipe closes.
    """
    return {"process_group": 0} if os.name == "posix" else {}


def run_ffmpeg(args: Sequence[str], *, timeout: float | None = None, check: bool = True,
               what: str = "ffmpeg") -> subprocess.CompletedProcess[bytes]:
    """Run ``ffmpeg -hide_banner -nostdin <args>`` and capture its output.

    Raises:
        MediaError: (code ``ffmpeg_failed``) when ``check`` and ffmpeg exits non-zero; the message
            carries the last lines ffmpeg printed.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, **own_process_group())
    if check and proc.returncode != 0:
        raise MediaError(f"{what} failed: {stderr_tail(proc.stderr)}",
                         hint="the file may be damaged or in a format this ffmpeg cannot handle",
                         code="ffmpeg_failed")
    return proc


def stderr_tail(stderr: bytes | str, lines: int = 4) -> str:
    """The last meaningful lines of ffmpeg's stderr, joined on one line."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no message from ffmpeg"


# Frame rates that are really rationals with denominator 1001 (NTSC family); snapping to them keeps
# the container's time base exact instead of drifting by 0.1 %.
_NTSC = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))


def fps_fraction(fps: float | Fraction | str) -> Fraction:
    """A frame rate as an exact rational: ``29.97`` -> ``30000/1001``, ``25.0`` -> ``25``."""
    if isinstance(fps, Fraction):
        value = fps
    elif isinstance(fps, str):
        value = Fraction(fps)
    else:
        value = Fraction(float(fps))
    if value <= 0:
        raise ValueError(f"frame rate must be > 0, got {fps!r}")
    for ntsc in _NTSC:
        # ffmpeg prints these rates rounded to two decimals (23.98, 29.97, 59.94): 0.005 catches them all
        if abs(float(value) - float(ntsc)) < 5e-3:
            return ntsc
    return value.limit_denominator(1001)


def fps_of(record: dict[str, Any] | None, default: float | Fraction = 25) -> Fraction:
    """The exact frame rate of a manifest or ``probe.json`` record: ``fps_num``/``fps_den`` when present
    (written since native timing), else its float ``fps`` snapped by :func:`fps_fraction`."""
    record = record or {}
    num, den = record.get("fps_num"), record.get("fps_den")
    if isinstance(num, int) and isinstance(den, int) and num > 0 and den > 0:
        return Fraction(num, den)
    value = record.get("fps")
    return fps_fraction(value if isinstance(value, (int, float, str)) and value else default)


def fps_record(fps: float | Fraction | str) -> dict[str, Any]:
    """``{"fps": float, "fps_num": int, "fps_den": int}``: how records store a frame rate (the float for
    readers that predate exact rates, the rational for everything that counts frames)."""
    frac = fps_fraction(fps)
    return {"fps": float(frac), "fps_num": frac.numerator, "fps_den": frac.denominator}


def fps_arg(fps: float | Fraction | str) -> str:
    """A frame rate in ffmpeg's ``num/den`` syntax."""
    frac = fps_fraction(fps)
    return f"{frac.numerator}/{frac.denominator}"


def check_readable(path: str | Path, what: str = "video") -> Path:
    """The resolved ``path`` if it is an existing readable file; a clear :class:`MediaError` otherwise."""
    import os

    p = Path(path).expanduser()
    if not p.exists():
        raise MediaError(f"{what} file {p} does not exist", hint="check the path (and its spelling)",
                         code="not_found")
    if p.is_dir():
        raise MediaError(f"{p} is a folder, not a {what} file", hint=f"pass the {what} file itself",
                         code="not_media")
    if not os.access(p, os.R_OK):
        raise MediaError(f"cannot read {p}: permission denied",
                         hint="fix the file's permissions (chmod u+r) or copy it somewhere readable",
                         code="unreadable")
    if p.stat().st_size == 0:
        raise MediaError(f"{p} is empty (0 bytes)", hint="the copy or recording may have failed",
                         code="not_media")
    return p.resolve()
