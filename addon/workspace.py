"""Read-only view of an emodub workspace's manifest (``emodub.json``) for the add-on's pickers.

Pure Python (no ``bpy``, no ``core``): the engine owns the workspace; the add-on only lists what is
there (actors, their trained models, prepared shots) to fill its pickers and to say early, with a
clear message, when a job cannot work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST_NAME = "emodub.json"
MANIFEST_FORMAT = "emodub-workspace"


class WorkspaceProblem(ValueError):
    """The workspace folder is missing or unreadable; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the workspace at ``root``.

    Raises:
        WorkspaceProblem: no folder set, no manifest, not JSON or not an emodub manifest.
    """
    if not str(root).strip():
        raise WorkspaceProblem("no workspace folder is set",
                               hint="set the workspace folder in the emodub add-on preferences")
    path = Path(root).expanduser() / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkspaceProblem(f"{Path(root).expanduser()} is not an emodub workspace (no {MANIFEST_NAME})",
                               hint="press Create Workspace (the folder button beside Workspace in "
                                    "Preferences > Add-ons > emodub), or pick another folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkspaceProblem(f"cannot read {path}: {exc}", hint="check the file or restore it") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise WorkspaceProblem(f"{path} is not an emodub workspace manifest",
                               hint="pick the folder that contains emodub.json")
    return data


def _section(root: str | os.PathLike[str], name: str) -> dict[str, Any]:
    try:
        section = read_manifest(root).get(name)
    except WorkspaceProblem:
        return {}
    return section if isinstance(section, dict) else {}


def list_actors(root: str | os.PathLike[str]) -> list[str]:
    """Actor names in the workspace (empty when it cannot be read)."""
    return sorted(_section(root, "actors"))


def list_shots(root: str | os.PathLike[str]) -> list[str]:
    """Shot names in the workspace (empty when it cannot be read)."""
    return sorted(_section(root, "shots"))


def actor_models(root: str | os.PathLike[str], actor: str) -> list[str]:
    """Names of the trained models recorded for ``actor`` (e.g. ``["a2e", "renderer"]``)."""
    record = _section(root, "actors").get(actor)
    models = record.get("models") if isinstance(record, dict) else None
    return sorted(models) if isinstance(models, dict) else []
