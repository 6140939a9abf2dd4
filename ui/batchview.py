"""A batch job's items for the job queue (no Qt): read from the batch folder the engine keeps.

The ``batch.dub`` job announces its expanded plan (artifact ``batch_plan``: ``<batch>/plan.json``); each item's
record is ``<batch>/items/<id>.json`` and, while it runs, ``<batch>/items/<id>.progress.json``
(:mod:`core.batch.items`, whose readers this uses). The app reads them when the job reports progress, so the
queue shows one job with a row per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BatchItemRow:
    id: str
    status: str
    detail: str
    seconds: float | None = None
    fraction: float | None = None


def batch_plan_path(artifacts: list[dict[str, str]]) -> Path | None:
    """The plan file a batch job announced, if any."""
    for artifact in artifacts:
        if artifact.get("kind") == "batch_plan":
            return Path(artifact["path"])
    return None


def batch_items(plan_path: Path, job_finished: bool = False) -> list[BatchItemRow]:
    """One row per item of the plan: its status (``pending`` until a worker takes it), the output or the error,
    its time, and how far a running item is."""
    from core.batch.items import read_json_object, read_progress, read_record

    batch_dir = plan_path.parent
    rows = []
    for item in read_json_object(plan_path).get("items") or []:
        item_id = str(item.get("id", "?"))
        record = read_record(batch_dir, item_id)
        status = str(record.get("status") or "pending")
        fraction = None
        if status == "running":
            progress = read_progress(batch_dir, item_id)
            total = progress.get("total") or 0
            fraction = min(1.0, float(progress.get("done", 0)) / total) if total else None
            if job_finished:  # the batch ended while this item ran (stopped): it was not finished
                status, fraction = "unfinished", None
        error = record.get("error") or {}
        outputs = record.get("outputs") or {}
        if status in ("failed", "cancelled", "unfinished") and error:
            detail = str(error.get("message", ""))
        elif status == "done":
            detail = str(outputs.get("video") or "")
        else:
            detail = f"{item.get('shot', '')} · {item.get('language', '')} · {item.get('emotion', '')}"
        seconds = record.get("seconds")
        rows.append(BatchItemRow(item_id, status, detail, float(seconds) if isinstance(seconds, int | float) else None,
                                 fraction))
    return rows
