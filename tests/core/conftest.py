"""Fixtures shared by engine tests: a tiny *tracked* clip rendered from known parameters.

It stands in for ingest + tracking (tested in their own packages) so the renderer and the dubbing
pipeline can be tested on exactly known geometry: the "tracked" parameters are the ground truth.
The clip writer lives in :mod:`core.synthetic.known_clip` (the renderer bench uses it too).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from core.synthetic.known_clip import KNOWN_CLIP_FPS as FPS
from core.synthetic.known_clip import known_clip_workspace, render_known_clip

__all__ = ["FPS", "render_known_clip", "tracked_workspace", "trained_actor"]


@pytest.fixture
def tracked_workspace(tmp_path: Path) -> Callable[..., object]:
    """``make(n_frames=20, size=64)`` -> a Workspace with actor ``a`` and one tracked clip ``c``."""

    def make(n_frames: int = 20, size: int = 64, clips: int = 1):
        return known_clip_workspace(tmp_path / "ws", n_frames=n_frames, size=size, clips=clips)

    return make


def train_tiny_actor(root: Path) -> object:
    """A Workspace at ``root`` with actor ``a`` (two 24-frame tracked clips, a2e and renderer trained a few
    steps) and shot ``s`` (a copy of clip ``c1``): enough to run ``dub`` end to end in seconds."""
    import torch

    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    torch.set_num_threads(1)
    ws = known_clip_workspace(root, n_frames=24, size=64, clips=2)
    for spec in (P.JobSpec("train.a2e", {"actor": "a", "iterations": 6, "batch_size": 4, "seq_len": 8,
                                         "checkpoint_every": 3, "device": "cpu"}, str(ws.root)),
                 P.JobSpec("train.renderer", {"actor": "a", "iterations": 4, "options": {"unet_base": 8},
                                              "device": "cpu"},
                           str(ws.root))):
        events: list[P.Event] = []
        assert run_job(spec, events.append) == P.EXIT_OK, events[-1]
    shutil.copytree(ws.clip_dir("a", "c1"), ws.shot_dir("s"))
    ws.set_shot("s", {"video": "shots/s/video.mp4", "fps": 25, "frames": 24})
    return ws


@pytest.fixture
def trained_actor(tmp_path: Path) -> object:
    """:func:`train_tiny_actor` in a fresh folder per test."""
    return train_tiny_actor(tmp_path / "ws")


@pytest.fixture(scope="module")
def shared_trained_actor(tmp_path_factory: pytest.TempPathFactory) -> object:
    """:func:`train_tiny_actor` once per test module (for tests that leave the actor as it was)."""
    return train_tiny_actor(tmp_path_factory.mktemp("actor") / "ws")


@pytest.fixture
def crafted_pickle(tmp_path: Path) -> Callable[[Path], Path]:
    """``craft(path)`` writes a torch file at ``path`` whose unpickling would run ``touch MARKER`` (an
    object whose ``__reduce__`` calls ``os.system``) and returns MARKER, which must never appear."""
    import os

    import torch

    def craft(path: Path) -> Path:
        marker = tmp_path / f"executed-{path.parent.name}-{path.stem}"

        class Payload:
            def __reduce__(self) -> tuple[object, tuple[str]]:
                return os.system, (f"touch {marker}",)

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "emodub-a2e", "version": 1, "payload": Payload()}, path)
        return marker

    return craft
