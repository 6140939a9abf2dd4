"""Provenance of a dub: which engine, which actor under which consent, which models made it.

:func:`provenance` is written into ``report.json``/``report.md`` and into every output: MOV/MP4 metadata tags
(:func:`metadata_tags`: readable with ``ffmpeg -i`` or any MOV tag reader) and the JSON sidecar of an image
sequence.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

CHECKPOINT = "checkpoint.pt"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_entry(folder: Path, name: str, **extra: Any) -> dict[str, Any]:
    """``{"name", "file", "sha256", ...}`` of a model folder's checkpoint."""
    ckpt = folder / CHECKPOINT
    return {"name": name, "file": CHECKPOINT, "sha256": file_sha256(ckpt) if ckpt.is_file() else None, **extra}


def provenance(actor: str, consent: dict[str, Any], models: dict[str, dict[str, Any]],
               renderer_variant: str) -> dict[str, Any]:
    """The provenance record of a dub.

    Args:
        actor: the actor whose models dubbed.
        consent: the actor's consent record (:func:`core.consent.require_consent`).
        models: ``{"a2e": model_entry(...), "renderer": model_entry(...)}``.
        renderer_variant: the renderer variant (``neural_texture``, ``lipnerf``...).
    """
    from core import __version__
    from core.consent import summary

    return {"engine": "emodub", "engine_version": __version__, "actor": actor, "consent": summary(consent),
            "models": models, "renderer_variant": renderer_variant,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def metadata_tags(record: dict[str, Any]) -> dict[str, str]:
    """MOV/MP4 metadata of a provenance record: a readable ``comment`` and ``emodub_*`` tags (JSON values)."""
    consent = record.get("consent") or {}
    models = record.get("models") or {}
    hashes = {role: (entry or {}).get("sha256") for role, entry in models.items()}
    return {
        "comment": (f"emodub {record.get('engine_version')} dub of actor {record.get('actor')}; consent "
                    f"{consent.get('id')} ({consent.get('consented_by')}, {consent.get('date')}, document "
                    f"{consent.get('document')})"),
        "encoder": f"emodub {record.get('engine_version')}",
        "emodub_version": str(record.get("engine_version")),
        "emodub_actor": str(record.get("actor")),
        "emodub_consent": json.dumps(consent, sort_keys=True),
        "emodub_models": json.dumps(hashes, sort_keys=True),
        "emodub_renderer": str(record.get("renderer_variant")),
        "emodub_provenance": json.dumps(record, sort_keys=True, separators=(",", ":")),
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    """The container metadata tags of a movie file (``ffmpeg -f ffmetadata``)."""
    from core.io.ffmpeg import run_ffmpeg

    proc = run_ffmpeg(["-v", "error", "-i", str(path), "-f", "ffmetadata", "-"], what="reading the metadata")
    tags: dict[str, str] = {}
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    for line in lines[1:]:
        if line.startswith("[") and line.endswith("]"):
            break  # a stream or chapter section follows the global tags
        key, sep, value = line.partition("=")
        if sep and not key.startswith(";"):
            tags[key] = value.replace("\\=", "=").replace("\\;", ";").replace("\\#", "#").replace("\\\\", "\\")
    return tags
