"""An actor's trained renderers as the workspace manifest records them (standard library only).

A renderer model record (``actors/<A>/models/<name>`` in the manifest) has ``kind: "renderer"``, its
``variant`` and, once evaluated, ``held_out`` figures. Records written before the renderer registry have no
``variant``: they are neural-texture renderers.
"""

from __future__ import annotations

from typing import Any

DEFAULT_VARIANT = "neural_texture"  # what `emodub train renderer` trains without --renderer (fast on a CPU)
LEGACY_VARIANT = "neural_texture"  # the variant of model records written before variants were recorded
RANK_METRIC = "face_psnr"  # the held-out figure that decides an actor's best renderer


def trained_renderers(manifest: dict[str, Any], actor: str) -> dict[str, dict[str, Any]]:
    """Model name -> record (with ``variant`` filled in) of the actor's trained renderers."""
    models = (manifest.get("actors", {}).get(actor) or {}).get("models", {}) or {}
    out = {}
    for name, record in models.items():
        if isinstance(record, dict) and record.get("kind") == "renderer":
            out[name] = {**record, "variant": record.get("variant") or LEGACY_VARIANT}
    return out


def best_renderer(manifest: dict[str, Any], actor: str, variant: str | None = None) -> str | None:
    """The actor's trained renderer (of ``variant`` when given) with the highest held-out face-mask PSNR;
    models never evaluated come after evaluated ones, the most recently trained first. ``None`` if none."""
    candidates = [(name, rec) for name, rec in trained_renderers(manifest, actor).items()
                  if variant is None or rec["variant"] == variant]
    if not candidates:
        return None

    def key(item: tuple[str, dict[str, Any]]) -> tuple[int, float, str]:
        score = (item[1].get("held_out") or {}).get(RANK_METRIC)
        if isinstance(score, (int, float)):
            return (1, float(score), "")
        return (0, 0.0, str(item[1].get("trained_at", "")))

    return max(candidates, key=key)[0]
