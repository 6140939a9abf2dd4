"""Fixtures shared by engine tests: a tiny *tracked* clip rendered from known parameters.

It stands in for ingest + tracking (tested in their own packages) so the renderer and the dubbing
pipeline can be tested on exactly known geometry: the "tracked" parameters are the ground truth.
The clip writer lives in :mod:`core.synthetic.known_clip` (the renderer bench uses it too).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.synthetic.known_clip import KNOWN_CLIP_FPS as FPS
from core.synthetic.known_clip import known_clip_workspace, render_known_clip

__all__ = ["FPS", "render_known_clip", "tracked_workspace"]


@pytest.fixture
def tracked_workspace(tmp_path: Path) -> Callable[..., object]:
    """``make(n_frames=20, size=64)`` -> a Workspace with actor ``a`` and one tracked clip ``c``."""

    def make(n_frames: int = 20, size: int = 64, clips: int = 1):
        return known_clip_workspace(tmp_path / "ws", n_frames=n_frames, size=size, clips=clips)

    return make
