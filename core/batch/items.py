"""One item of a batch, run where a worker runs it (a Ray task, or the batch's own process).

:func:`run_item` runs the item's ``dub`` job through the same runner as every job, and keeps the item's record
in the batch folder (``items/<id>.json``, written atomically): ``running`` when it starts (with the attempt
number), then ``done`` / ``failed`` (error code, message, hint) / ``cancelled``. The record is written by the
worker itself, so an item that finished is known to have finished even when the process that started the batch
was stopped before it heard of it. While it runs, ``items/<id>.progress.json`` holds its latest progress (at
most twice a second) and ``logs/<id>.jsonl`` its events (every attempt, appended).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from core.jobs import protocol as P
from core.jobs.context import CancelToken
from core.workspace.atomic import atomic_write_json

PROGRESS_EVERY_S = 0.5


def item_paths(batch_dir: Path, item_id: str) -> tuple[Path, Path, Path]:
    """``(record, progress, log)`` files of an item."""
    return (batch_dir / "items" / f"{item_id}.json", batch_dir / "items" / f"{item_id}.progress.json",
            batch_dir / "logs" / f"{item_id}.jsonl")


def read_json_object(path: Path) -> dict[str, Any]:
    """A batch file's JSON object (``{}`` when it is missing, unreadable or not an object)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_record(batch_dir: Path, item_id: str) -> dict[str, Any]:
    """The item's record (``{}`` when it never ran or the file is unreadable)."""
    return read_json_object(item_paths(batch_dir, item_id)[0])


def read_progress(batch_dir: Path, item_id: str) -> dict[str, Any]:
    """A running item's latest progress (``stage``, ``done``, ``total``; ``{}`` when there is none)."""
    return read_json_object(item_paths(batch_dir, item_id)[1])


def item_fraction(batch_dir: Path, item_id: str) -> float:
    """How far a running item is, 0..1, from its progress file (the render stage is most of a dub)."""
    progress = read_progress(batch_dir, item_id)
    try:
        done, total = float(progress["done"]), float(progress["total"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    share = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    return 0.1 + 0.85 * share if progress.get("stage") == "render" else 0.05


class _ItemSink:
    """Receives the item's job events: appends them to its log and keeps its progress file fresh."""

    def __init__(self, log_path: Path, progress_path: Path) -> None:
        self.progress_path = progress_path
        self.last_write = 0.0
        self.error: P.Error | None = None
        self.outputs: dict[str, Any] = {}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "a", encoding="utf-8")

    def __call__(self, event: P.Event) -> None:
        if isinstance(event, P.Progress):
            now = time.monotonic()
            if now - self.last_write >= PROGRESS_EVERY_S or (event.total and event.done >= event.total):
                self.last_write = now
                atomic_write_json(self.progress_path, {"stage": event.stage, "done": event.done,
                                                       "total": event.total, "eta_s": event.eta_s})
            return
        if isinstance(event, P.Error):
            self.error = event
        elif isinstance(event, P.Done):
            self.outputs = event.outputs
        self.log.write(P.encode_event(event) + "\n")
        self.log.flush()

    def close(self) -> None:
        self.log.close()


def failed_record(item: dict[str, Any], batch_dir: Path, code: str, message: str, hint: str,
                  status: str = "failed", attempted: bool = False) -> dict[str, Any]:
    """Record an item that ended without :func:`run_item` recording it (its worker died or was cancelled before
    it started, or it was refused); ``attempted``: count it as an attempt."""
    previous = read_record(batch_dir, item["id"])
    record = {**previous, "id": item["id"], "status": status, "digest": item.get("digest"), "shot": item["shot"],
              "language": item["language"], "emotion": item["emotion"], "renderer": item.get("renderer"),
              "attempts": int(previous.get("attempts", 0)) + (1 if attempted else 0), "finished": time.time(),
              "error": {"code": code, "message": message, "hint": hint}}
    record.pop("outputs", None)
    atomic_write_json(item_paths(batch_dir, item["id"])[0], record)
    return record


def run_item(item: dict[str, Any], workspace: str, batch_dir: str, batch_id: str, threads: int = 1,
             device: str = "auto", cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run one plan item (``PlanItem.to_json()``) as a ``dub`` job; returns its final record.

    ``threads`` is the torch CPU threads this item may use (cores / workers). A cancel reaches the dub as
    ``KeyboardInterrupt`` (Ray's ``cancel``) or SIGINT: the dub stops, removes what it half wrote, and the record
    says ``cancelled``.
    """
    import torch

    from core.jobs.runner import run_job

    torch.set_num_threads(max(1, int(threads)))
    folder = Path(batch_dir)
    record_path, progress_path, log_path = item_paths(folder, item["id"])
    previous = read_record(folder, item["id"])
    attempt = int(previous.get("attempts", 0)) + 1
    started = time.time()
    record: dict[str, Any] = {"id": item["id"], "status": "running", "attempts": attempt, "started": started,
                              "host": socket.gethostname(), "pid": os.getpid(), "digest": item.get("digest"),
                              "shot": item["shot"], "language": item["language"], "emotion": item["emotion"],
                              "renderer": item.get("renderer")}
    atomic_write_json(record_path, record)
    sink = _ItemSink(log_path, progress_path)
    sink.log.write(json.dumps({"attempt": attempt, "started": started, "host": record["host"],
                               "pid": record["pid"]}) + "\n")
    spec = P.JobSpec(kind="dub", params={**item["params"], "device": device}, workspace=workspace,
                     id=f"{batch_id}.{item['id']}.{attempt}")
    try:
        code = run_job(spec, sink, cancel)
    except KeyboardInterrupt:  # a cancel that arrived outside the job (before it started)
        code = P.EXIT_CANCELLED
    finally:
        sink.close()
        progress_path.unlink(missing_ok=True)
    finished = time.time()
    record.update(finished=finished, seconds=finished - started)
    if code == P.EXIT_OK:
        out = sink.outputs
        record.update(status="done", outputs={key: out.get(key) for key in ("video", "delivery", "report", "render",
                                                                            "frames", "fps", "duration_s")})
    elif code == P.EXIT_CANCELLED:
        record.update(status="cancelled", error={"code": P.CANCELLED, "message": "the batch was stopped",
                                                 "hint": "run the plan again: it redoes this item"})
    else:
        error = sink.error
        record.update(status="failed", error={"code": error.code if error else P.INTERNAL,
                                              "message": error.message if error else f"the dub ended with exit "
                                                                                     f"code {code}",
                                              "hint": error.hint if error else ""})
    atomic_write_json(record_path, record)
    return record
