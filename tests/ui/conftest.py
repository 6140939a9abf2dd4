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


@pytest.fixture
def tiny_trained_shot():
    """Makes a tiny trained dub set-up: ``tiny_trained_shot(root, actor, shot)`` (see :func:`_tiny_trained_shot`)."""
    return _tiny_trained_shot


def _tiny_trained_shot(root: Path, actor: str, shot: str, renderer_iterations: int = 3):
    """A workspace whose ``actor`` (two clips rendered from known parameters) is trained a few steps in this process,
    with ``shot`` a copy of its first clip: the smallest real dub set-up."""
    import shutil

    from core.jobs import protocol as P
    from core.jobs.runner import run_job
    from core.synthetic.known_clip import known_clip_workspace

    ws = known_clip_workspace(root, n_frames=24, size=64, clips=2, actor=actor, fps=25)
    for spec in (P.JobSpec("train.a2e", {"actor": actor, "iterations": 4, "batch_size": 4, "seq_len": 8,
                                         "device": "cpu"}, str(ws.root)),
                 P.JobSpec("train.renderer", {"actor": actor, "iterations": renderer_iterations,
                                              "options": {"unet_base": 8}, "device": "cpu"}, str(ws.root))):
        events: list[P.Event] = []
        assert run_job(spec, events.append) == P.EXIT_OK, events[-1]
    shutil.copytree(ws.clip_dir(actor, "c1"), ws.shot_dir(shot))
    ws.set_shot(shot, {"video": f"shots/{shot}/video.mp4", "audio": f"shots/{shot}/audio.wav", "fps": 25,
                       "frames": 24, "width": 64, "height": 64})
    return ws
