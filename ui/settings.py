"""The app's settings (engine Python, cancel grace period, recent workspaces), stored with QSettings."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

ORGANISATION = "emodub"
APPLICATION = "emodub-studio"


def default_engine_pythonpath() -> str:
    """The folder holding the ``core`` package this app was started from, so the worker runs the same
    engine code (an installed emodub needs none, but it does no harm)."""
    import core

    return str(Path(core.__file__).resolve().parent.parent)


@dataclass
class StudioSettings:
    """Settings of emodub-studio.

    Attributes:
        engine_python: the Python that runs the engine (``<python> -m core.worker``); defaults to the
            app's own interpreter. Point it at another environment (e.g. one with CUDA torch) if needed.
        engine_pythonpath: prepended to ``PYTHONPATH`` of the engine process ("" for none).
        cancel_grace_s: seconds between the cancel request and SIGTERM, and again before SIGKILL.
        recent_workspaces: most recent first.
        max_parallel_jobs: engine processes at once (jobs are heavy: 1 by default).
    """

    engine_python: str = field(default_factory=lambda: sys.executable)
    engine_pythonpath: str = field(default_factory=default_engine_pythonpath)
    cancel_grace_s: float = 10.0
    recent_workspaces: list[str] = field(default_factory=list)
    max_parallel_jobs: int = 1

    def add_recent(self, path: str | os.PathLike[str]) -> None:
        text = str(path)
        self.recent_workspaces = [text, *[p for p in self.recent_workspaces if p != text]][:8]

    @classmethod
    def load(cls) -> StudioSettings:
        from PySide6.QtCore import QSettings

        qs = QSettings(ORGANISATION, APPLICATION)
        base = cls()
        recent = qs.value("recent_workspaces", [])
        if isinstance(recent, str):
            recent = [recent]
        try:
            grace = float(qs.value("cancel_grace_s", base.cancel_grace_s))
        except (TypeError, ValueError):
            grace = base.cancel_grace_s
        return cls(
            engine_python=str(qs.value("engine_python", base.engine_python) or base.engine_python),
            engine_pythonpath=str(qs.value("engine_pythonpath", base.engine_pythonpath) or ""),
            cancel_grace_s=grace,
            recent_workspaces=[str(p) for p in recent or []],
        )

    def save(self) -> None:
        from PySide6.QtCore import QSettings

        qs = QSettings(ORGANISATION, APPLICATION)
        qs.setValue("engine_python", self.engine_python)
        qs.setValue("engine_pythonpath", self.engine_pythonpath)
        qs.setValue("cancel_grace_s", self.cancel_grace_s)
        qs.setValue("recent_workspaces", self.recent_workspaces)
