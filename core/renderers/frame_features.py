"""Per-frame features computed outside emodub, for renderers that can use them.

Some inputs of the methods behind our renderers come from networks or tools we cannot ship or run offline: JEAN's
emotion-recognition features (§3.2 of its paper), NeRF-AD's OpenFace action units. A user who has them computes
them for each clip of an actor with their own tool and imports them::

    emodub features import -w W --actor A --clip C --name emotion_net FEATURES.npy
    emodub features import -w W --actor A --clip C --name openface_au OPENFACE.csv --columns "AU*_r"

They are stored per clip as ``<clip folder>/features/<name>.npy``: a float32 array (N, F), one row per frame of
the clip's working copy. A renderer asks for them by name (:attr:`core.renderers.base.RendererNeeds.frame_features`)
and finds them in :attr:`core.renderers.base.RendererBatch.features` (and its temporal context's). Files are read
with ``allow_pickle=False``: a feature file is numbers only, never code.
"""

from __future__ import annotations

import csv
import fnmatch
import re
from pathlib import Path

import numpy as np

FEATURES_DIR = "features"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class FrameFeatureError(ValueError):
    """A feature file that cannot be used; the message says what is wrong and what to do."""


def feature_path(clip_folder: Path, name: str) -> Path:
    """Where a clip's features called ``name`` live."""
    if not _NAME.match(name):
        raise FrameFeatureError(f"feature name {name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
    return Path(clip_folder) / FEATURES_DIR / f"{name}.npy"


def read_feature_file(path: Path, columns: str | None = None) -> tuple[np.ndarray, list[str]]:
    """(N, F) float32 features and their column names from a ``.npy`` (2-D numbers) or a ``.csv`` with a header.

    Args:
        columns: comma-separated column names or patterns (``AU*_r``) a CSV's features are taken from
            (default: every numeric column; an OpenFace CSV then includes its frame numbers and timestamps).

    Raises:
        FrameFeatureError: unreadable, not 2-D numbers, no matching column, or not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameFeatureError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if columns:
            raise FrameFeatureError("--columns applies to CSV files; a .npy file is used whole")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise FrameFeatureError(f"{path} is not a plain numeric .npy array ({exc})") from None
        names = [f"f{i}" for i in range(array.shape[1])] if array.ndim == 2 else []
    elif suffix == ".csv":
        array, names = _read_csv(path, columns)
    else:
        raise FrameFeatureError(f"{path}: features are read from .npy or .csv files")
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or min(array.shape) == 0:
        raise FrameFeatureError(f"{path} holds {array.dtype} of shape {array.shape}: features are a 2-D array of "
                                "numbers, one row per frame")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        bad = np.nonzero(~np.isfinite(array).all(1))[0]
        raise FrameFeatureError(f"{path} has NaN or infinite values in {len(bad)} rows (first: {bad[:5].tolist()}); "
                                "fill or drop them where you computed the features")
    return array, names


def _read_csv(path: Path, columns: str | None) -> tuple[np.ndarray, list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise FrameFeatureError(f"{path} needs a header row and at least one frame")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if columns:
        patterns = [c.strip() for c in columns.split(",") if c.strip()]
        keep = [i for i, h in enumerate(header) if any(fnmatch.fnmatchcase(h, p) for p in patterns)]
        if not keep:
            raise FrameFeatureError(f"no column of {path} matches {columns!r} (its columns: {', '.join(header[:12])}"
                                    f"{' ...' if len(header) > 12 else ''})")
    else:
        keep = [i for i in range(len(header)) if all(_is_number(r[i]) for r in body if i < len(r))]
        if not keep:
            raise FrameFeatureError(f"{path} has no numeric column")
    try:
        array = np.array([[float(r[i]) for i in keep] for r in body], np.float64)
    except (ValueError, IndexError) as exc:
        raise FrameFeatureError(f"{path}: a chosen column holds something other than a number ({exc})") from None
    return array, [header[i] for i in keep]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def save_frame_features(clip_folder: Path, name: str, array: np.ndarray, n_frames: int,
                        columns: list[str] | None = None) -> Path:
    """Store a clip's features (atomically) after checking there is one row per frame; ``columns`` (their names,
    e.g. OpenFace's ``AU12_r``) go beside them in ``<name>.json``.

    Raises:
        FrameFeatureError: the row count is not the clip's frame count.
    """
    from core.workspace.atomic import atomic_write

    if len(array) != n_frames:
        raise FrameFeatureError(f"{len(array)} rows of features for a clip of {n_frames} frames: compute them on "
                                "the clip's working copy (its frame rate may differ from the source's)")
    from core.workspace.atomic import atomic_write_json

    path = feature_path(clip_folder, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns) if columns and len(columns) == array.shape[1] else [f"f{i}" for i in range(array.shape[1])]
    atomic_write_json(path.with_suffix(".json"), {"columns": names})
    return atomic_write(path, lambda handle: np.save(handle, np.ascontiguousarray(array, np.float32),
                                                     allow_pickle=False))


def feature_columns(clip_folder: Path, name: str) -> list[str]:
    """The column names of a clip's imported features (``f0``, ``f1``... when none were recorded)."""
    import json

    path = feature_path(clip_folder, name)
    meta = path.with_suffix(".json")
    if meta.exists():
        return [str(c) for c in json.loads(meta.read_text()).get("columns", [])]
    width = np.load(path, mmap_mode="r", allow_pickle=False).shape[1]
    return [f"f{i}" for i in range(width)]


def load_frame_features(clip_folder: Path, names: tuple[str, ...], n_frames: int) -> dict[str, np.ndarray]:
    """The clip's features ``names`` (each (N, F) float32, memory-mapped).

    Raises:
        FrameFeatureError: one is missing or does not have a row per frame.
    """
    out = {}
    for name in names:
        path = feature_path(clip_folder, name)
        if not path.exists():
            raise FrameFeatureError(f"clip {Path(clip_folder).name!r} has no features {name!r} ({path}); import "
                                    f"them with `emodub features import --name {name}`")
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.ndim != 2 or len(array) != n_frames:
            raise FrameFeatureError(f"{path} has shape {array.shape}, the clip has {n_frames} frames: import the "
                                    "features again")
        out[name] = array
    return out
