"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Write to a temporary file in the same folder, flush and fsync it, then ``os.replace`` it over the
target and fsync the folder. If the process dies before the rename, the target is untouched and
only a ``.tmp-*`` file is left behind (found and removed by :mod:`core.workspace.cleanup`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".tmp-"
_writes_forbidden: str | None = None


def forbid_writes(reason: str | None) -> None:
    """From now on every atomic write of this process raises ``PermissionError(reason)`` (``None`` lifts it).
    For processes that must only read the workspace (ranks other than 0 of a distributed training)."""
    global _writes_forbidden
    _writes_forbidden = reason


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to open folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on normal exit it is renamed over ``target``.

    For writers that want a path (``np.savez``, ``torch.save``, ffmpeg). On an exception the
    temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    if _writes_forbidden:
        raise PermissionError(f"{_writes_forbidden}: refused to write {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + target.name + ".",
                                    suffix=suffix if suffix is not None else target.suffix,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _rename(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _process_umask() -> int:
    """The process umask, read without changing it where the system says it (Linux), else set and restored."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _rename(tmp: Path, target: Path) -> None:
    # mkstemp creates 0600 files; a render on a studio's shared storage must be readable like any file the
    # user writes, so the new file takes the old target's mode or the mode the umask gives a new file.
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_process_umask()
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def atomic_write(target: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file, then move it over ``target`` atomically."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
    return Path(target)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(target, lambda fh: fh.write(data))


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_npz(target: str | os.PathLike[str], **arrays: Any) -> Path:
    """``np.savez_compressed`` atomically (numpy imported here so the module stays stdlib-light)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(target, buffer.getvalue())
