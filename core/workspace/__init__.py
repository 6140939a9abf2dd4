"""The emodub workspace: a project folder with a versioned manifest and atomic artifacts."""

from .atomic import (
    atomic_path,
    atomic_save_npz,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from .lock import LockBusy, stage_lock
from .manifest import SCHEMA_VERSION, Workspace, WorkspaceError, shot_name_for, validate_name

__all__ = [
    "SCHEMA_VERSION",
    "LockBusy",
    "Workspace",
    "WorkspaceError",
    "atomic_path",
    "atomic_save_npz",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "shot_name_for",
    "stage_lock",
    "validate_name",
]
