"""Qt tests run offscreen; helpers to build small workspaces with real media."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def studio_settings():
    """Settings pointing the engine at this interpreter and this checkout (no QSettings IO)."""
    from ui.settings import StudioSettings

    return StudioSettings(engine_python=sys.executable, engine_pythonpath=str(ROOT), cancel_grace_s=5.0)


@pytest.fixture
def notifier():
    from ui.notify import RecordingNotifier

    return RecordingNotifier()


@pytest.fixture
def window(qtbot, studio_settings, notifier):
    """The app's main window, shown, its job queue shut down afterwards."""
    from ui.app import MainWindow

    win = MainWindow(studio_settings, notifier)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.jobs.shutdown(wait_ms=2000)
    win.warm.stop(wait_ms=2000)


@pytest.fixture(scope="session")
def _workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ui.demo_media import make_demo_workspace

    return make_demo_workspace(tmp_path_factory.mktemp("template") / "ws", frames=40, size=96).root


@pytest.fixture
def shot_workspace(_workspace_template: Path, tmp_path: Path):
    """A workspace with one actor (two labelled clips, a model), one shot with a 40-frame synthetic
    video and audio, and no renders (a fresh copy per test)."""
    import shutil

    from core.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(_workspace_template, root)
    return Workspace.open(root)
