"""Stage locks: one job at a time writes a given stage (e.g. ``track/actor/clip``).

A lock is a file created with ``O_CREAT | O_EXCL`` holding the owner's pid and host. A lock whose
process is gone (crash, kill -9) is stale and is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path


class LockBusy(RuntimeError):
    """Another live job holds the lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_owner(path: Path) -> dict[str, object]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def stage_lock(path: str | os.PathLike[str], what: str = "") -> Iterator[Path]:
    """Hold the lock file ``path`` for the duration of the block.

    Raises:
        LockBusy: a live process holds it. The message names the process and the stage.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "what": what}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_owner(path)
            pid = owner.get("pid")
            same_host = owner.get("host") == socket.gethostname()
            if isinstance(pid, int) and same_host and not _alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # stale: its owner died without releasing it
                continue
            raise LockBusy(f"{what or path.name} is being written by another job "
                           f"(pid {pid} on {owner.get('host', '?')}); wait for it to finish, or "
                           f"delete {path} if that job is gone") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
