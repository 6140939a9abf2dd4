"""Shared test configuration: markers that skip cleanly, the shared real-data folder."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the clone (or ``EMODUB_SHARED_DATA``); ``None`` when absent."""
    env = os.environ.get("EMODUB_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not present")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    has_bpy = importlib.util.find_spec("bpy") is not None  # importing bpy here would be slow
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="no CUDA device"))
        if "blender" in item.keywords and not has_bpy:
            item.add_marker(pytest.mark.skip(reason="bpy is not installed"))
