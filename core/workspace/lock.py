"""Stage locks: one job at a time writes a given stage (e.g. ``track/actor/clip``).

A lock is a file created with ``O_CREAT | O_EXCL`` holding the owner's pid and host. A lock whose
process is gone (crash, kill -9) is stale and is taken over; so is a lock file without a readable
owner that is older than :data:`UNREADABLE_STALE_S` (its writer died between creating and filling it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

UNREADABLE_STALE_S = 10.0


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


def read_owner(path: str | os.PathLike[str]) -> dict[str, object]:
    """The owner record of a lock file (pid, host, since, what); ``{}`` when unreadable."""
    try:
        owner = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return owner if isinstance(owner, dict) else {}


def is_stale(path: str | os.PathLike[str], owner: dict[str, object] | None = None) -> bool:
    """True when the lock's process is gone: same host and a dead pid, or no readable owner for longer
    than :data:`UNREADABLE_STALE_S`. A lock of another host is never judged stale from here."""
    path = Path(path)
    owner = read_owner(path) if owner is None else owner
    pid = owner.get("pid")
    if isinstance(pid, int):
        return owner.get("host") == socket.gethostname() and not _alive(pid)
    try:
        return time.time() - path.stat().st_mtime > UNREADABLE_STALE_S
    except OSError:
        return False  # already gone


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
            owner = read_owner(path)
            pid = owner.get("pid")
            if is_stale(path, owner):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # stale: its owner died without releasing it
                continue
            raise LockBusy(f"{what or path.name} is being written by another job "
                           f"(pid {pid} on {owner.get('host', '?')})") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
