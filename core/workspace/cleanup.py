"""Leftovers of interrupted jobs in a workspace, and their removal.

A job that is cancelled, crashes or is killed (``kill -9``) can leave behind:

* ``.tmp-*`` files of atomic writes that never reached their rename (:mod:`.atomic`), among them
  the video an encoder was writing;
* ``.staging/<id>/`` folders of an ingest (:mod:`core.ingest.ingest`);
* ``renders/<name>/`` folders of a dub that never finished: a dub records its render in the manifest
  only when it is complete, so a render folder without a record is a partial one (its ``audio.wav``
  alone can be tens of MB);
* lock files (``.locks/*.lock``) whose process is gone.

Everything but stale locks may belong to a job that is running right now, so those are removed only
when no other process holds a lock in the workspace (every job run by the engine holds one for its
whole life, see :meth:`core.jobs.context.JobContext.workspace`). ``.tmp-*`` files must also be older
than :data:`TMP_GRACE_S`: the desktop app writes small files atomically without a job, and such a
write takes milliseconds. Trained models and tracking state of an interrupted run are *not*
leftovers: the next run resumes from them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import TMP_PREFIX
from .lock import is_stale, read_owner

STAGING_DIR = ".staging"
LOCKS_DIR = ".locks"
TMP_GRACE_S = 5.0


@dataclass(frozen=True)
class LockInfo:
    """A lock file and what it says: who holds it and whether that process is gone."""

    path: Path
    owner: dict[str, Any]
    stale: bool

    @property
    def what(self) -> str:
        return str(self.owner.get("what") or self.path.stem)

    def describe(self) -> str:
        who = f"pid {self.owner.get('pid', '?')} on {self.owner.get('host', '?')}"
        return f"{self.what} ({who}{', gone' if self.stale else ''})"


@dataclass
class Leftovers:
    """What interrupted jobs left in a workspace (paths are absolute)."""

    temporaries: list[Path] = field(default_factory=list)
    staging: list[Path] = field(default_factory=list)
    partial_renders: list[Path] = field(default_factory=list)
    stale_locks: list[Path] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [*self.temporaries, *self.staging, *self.partial_renders, *self.stale_locks]

    def __bool__(self) -> bool:
        return bool(self.paths())

    def describe(self, root: Path) -> list[str]:
        """One sentence per leftover, paths relative to ``root``."""
        def rel(path: Path) -> str:
            with contextlib.suppress(ValueError):
                return path.relative_to(root).as_posix()
            return str(path)

        return ([f"temporary file of an interrupted write: {rel(p)}" for p in self.temporaries]
                + [f"staging folder of an interrupted ingest: {rel(p)}" for p in self.staging]
                + [f"partial render (never finished, not in the manifest): {rel(p)}" for p in self.partial_renders]
                + [f"stale lock (its job is gone): {rel(p)} ({read_owner(p).get('what', '?')})"
                   for p in self.stale_locks])


def locks(root: Path) -> list[LockInfo]:
    """Every stage lock of the workspace at ``root``."""
    folder = root / LOCKS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.lock")):
        owner = read_owner(path)
        found.append(LockInfo(path, owner, is_stale(path, owner)))
    return found


def others_at_work(root: Path) -> list[LockInfo]:
    """Live locks held by other processes than this one: jobs that are running now."""
    me = os.getpid()
    return [lock for lock in locks(root) if not lock.stale and lock.owner.get("pid") != me]


def find_leftovers(root: Path, registered_renders: set[str], min_age_s: float = TMP_GRACE_S) -> Leftovers:
    """The leftovers under ``root`` (see the module docstring). ``registered_renders``: the render names
    the manifest records. ``.tmp-*`` files younger than ``min_age_s`` are not counted."""
    now = time.time()
    found = Leftovers()
    for path in sorted(root.rglob(TMP_PREFIX + "*")):
        if STAGING_DIR in path.relative_to(root).parts:
            continue  # goes with its staging folder
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime >= min_age_s:
                found.temporaries.append(path)
    staging = root / STAGING_DIR
    if staging.is_dir():
        found.staging = sorted(staging.iterdir())
    renders = root / "renders"
    if renders.is_dir():
        found.partial_renders = sorted(p for p in renders.iterdir()
                                       if p.is_dir() and p.name not in registered_renders)
    found.stale_locks = [lock.path for lock in locks(root) if lock.stale]
    return found


def remove(leftovers: Leftovers) -> Leftovers:
    """Delete ``leftovers``; returns what was really removed."""
    removed = Leftovers()
    for attr in ("temporaries", "staging", "partial_renders", "stale_locks"):
        for path in getattr(leftovers, attr):
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                continue  # a read-only workspace keeps it; `workspace check` still lists it
            getattr(removed, attr).append(path)
    return removed
