"""Ingest: probe, validate and normalise footage into a workspace (clip or shot folder + manifest).

Names are loaded on first use so that importing ``core.ingest.jobs`` (the CLI does it for
``emodub --help``) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {name: "core.ingest.ingest" for name in (
    "IngestConfig", "IngestResult", "default_clip_name", "ingest", "parse_emotion", "working_to_source")}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.ingest' has no attribute {name!r}")
