"""Run a plan's items: locally on a Ray instance the batch starts, on an existing Ray cluster, or inline.

The batch folder is ``<workspace>/batches/<plan name>/``:

* ``plan.json``: the plan as expanded into items (what ran);
* ``items/<id>.json``: each item's record (:mod:`core.batch.items`), written by the worker that ran it;
* ``logs/<id>.jsonl``: each item's job events, every attempt;
* ``summary.json`` and ``batch_report.md``: done / failed / skipped, time per item, errors.

An item whose record says ``done`` for the same params, and whose video is still there, is skipped; every other
item (never started, failed, cancelled, or stopped with its worker) runs. Items are independent: one that fails
is recorded with its error and the others go on.

Where it runs (:class:`RayExecutor`): one Ray task per item declaring ``num_cpus = threads`` (and ``num_gpus`` on
GPU machines), so Ray places as many items at once as the machine or cluster has room for. Locally the batch
starts a private Ray instance with ``workers x threads`` CPUs (no dashboard, worker output kept out of the
job's event stream) and stops it at the end. With an address it joins that cluster instead: every node must
have the same emodub installed (a node with another version fails its items with a message that says so) and
read the workspace at the same path (shared storage). :class:`InlineExecutor` runs the items one after the
other in this process (no Ray; for debugging, and where Ray cannot start).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.jobs.context import CancelToken, JobCancelled, JobFailed
from core.workspace.atomic import atomic_write_json, atomic_write_text

from .items import failed_record, item_fraction, item_paths, read_record, run_item
from .plan import Plan, PlanItem

CANCEL_GRACE_S = 20.0  # how long stopped items get to record that they were cancelled
POLL_S = 0.5


def item_digest(item: PlanItem) -> str:
    """What the item's result depends on: its params and the content of the files they name (audio, curves),
    so an edited curve or a re-exported audio track is dubbed again even under the same path."""
    import hashlib
    import json

    from core.delivery.provenance import file_sha256

    files = {}
    for key in ("audio", "emotions"):
        value = item.params.get(key)
        if isinstance(value, str) and Path(value).is_file():
            files[key] = file_sha256(Path(value))
    return hashlib.sha256(json.dumps([item.params, files], sort_keys=True).encode()).hexdigest()[:16]


def is_finished(batch_dir: Path, item: PlanItem, digest: str) -> bool:
    """The item's record says done, for these params (``digest``: :func:`item_digest`), and its video is still
    on disk."""
    record = read_record(batch_dir, item.id)
    video = (record.get("outputs") or {}).get("video")
    return (record.get("status") == "done" and record.get("digest") == digest
            and bool(video) and Path(str(video)).exists())


class Executor(Protocol):
    """Runs items somewhere; :meth:`wait` returns the records of items that ended since the last call."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def submit(self, items: list[dict[str, Any]]) -> None: ...

    def wait(self, timeout_s: float) -> list[dict[str, Any]]: ...

    def cancel(self) -> list[dict[str, Any]]: ...

    @property
    def describe(self) -> str: ...


@dataclass
class RunContext:
    workspace: str
    batch_dir: Path
    batch_id: str
    threads: int = 1
    device: str = "auto"


@dataclass
class InlineExecutor:
    """Items one after the other in this process; a cancel stops the running item at its next step."""

    run: RunContext
    cancel_token: CancelToken = field(default_factory=CancelToken)
    _queue: list[dict[str, Any]] = field(default_factory=list)

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.clear()

    @property
    def describe(self) -> str:
        return "inline (one item at a time in this process)"

    def submit(self, items: list[dict[str, Any]]) -> None:
        self._queue.extend(items)

    def wait(self, timeout_s: float) -> list[dict[str, Any]]:
        if not self._queue:
            return []
        item = self._queue.pop(0)
        return [run_item(item, self.run.workspace, str(self.run.batch_dir), self.run.batch_id, self.run.threads,
                         self.run.device, cancel=self.cancel_token)]

    def cancel(self) -> list[dict[str, Any]]:
        self.cancel_token.cancel()
        self._queue.clear()
        return []


def _ray_item(item: dict[str, Any], workspace: str, batch_dir: str, batch_id: str, threads: int, device: str,
              version: str) -> dict[str, Any]:
    """The Ray task: refuses to run on a node with another emodub, else :func:`run_item`."""
    from core import __version__

    if version != __version__:
        return failed_record(item, Path(batch_dir), "version_mismatch",
                             f"this node has emodub {__version__}, the batch was started with {version}",
                             "install the same emodub on every node of the cluster")
    return run_item(item, workspace, batch_dir, batch_id, threads, device)


@contextlib.contextmanager
def _keep_signal_handlers() -> Iterator[None]:
    """ray.init installs its own SIGTERM/SIGINT handlers in the driver; the job's (cancel: save and stop) stay."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                with contextlib.suppress(ValueError):  # not the main thread: Ray could not set them either
                    signal.signal(sig, handler)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, with a user's error, when nothing listens at a ``host:port`` / ``ray://host:port`` address
    (``ray.init`` would retry for minutes). ``auto`` and other forms are left to Ray."""
    import socket
    from urllib.parse import urlsplit

    split = urlsplit(address if "://" in address else f"tcp://{address}")
    if not split.hostname or not split.port:
        return
    try:
        with socket.create_connection((split.hostname, split.port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise JobFailed(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}", code="ray_unreachable",
                        hint="check the address (`ray status` on the head node prints it) and that this machine can "
                             "reach the head's port") from None


@dataclass
class RayExecutor:
    """One Ray task per item on a local instance (``address=None``; ``workers`` items at once) or a cluster."""

    run: RunContext
    workers: int = 1
    address: str | None = None
    gpus_per_item: float = 0.0
    _refs: dict[Any, dict[str, Any]] = field(default_factory=dict)

    @property
    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else f"a local Ray instance, {self.workers} " \
                                                                           f"worker(s)"
        return f"{where}, {self.run.threads} thread(s) per item"

    def __enter__(self) -> RayExecutor:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time
        import ray

        with _keep_signal_handlers():
            if self.address:
                _check_reachable(self.address)
                try:
                    ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
                except (ConnectionError, TimeoutError) as exc:
                    raise JobFailed(f"cannot join the Ray cluster at {self.address}: {exc}", code="ray_unreachable",
                                    hint="check the address (`ray status` on the head node prints it) and that this "
                                         "machine has the cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                                    ) from None
            else:
                import core

                root = str(Path(core.__file__).resolve().parent.parent)
                path = os.environ.get("PYTHONPATH")
                # the workers (started by ray.init, with this environment) import core like this process does
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, path) if p)
                try:
                    ray.init(num_cpus=self.workers * self.run.threads, include_dashboard=False, log_to_driver=False,
                             logging_level="WARNING", object_store_memory=96 * 1024 * 1024, configure_logging=True)
                finally:
                    if path is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = path
            self._check_feasible(ray.nodes())
        return self

    def _check_feasible(self, nodes: list[dict[str, Any]]) -> None:
        """Refuse at once what no node of the cluster can run (Ray would wait for such a node forever)."""
        alive = [node.get("Resources") or {} for node in nodes if node.get("Alive")]
        cpus = max((float(r.get("CPU", 0)) for r in alive), default=0.0)
        gpus = max((float(r.get("GPU", 0)) for r in alive), default=0.0)
        if self.run.threads > cpus or self.gpus_per_item > gpus:
            import ray

            ray.shutdown()
            where = f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"
            raise JobFailed(f"no node of {where} has {self.run.threads} CPU(s)"
                            + (f" and {self.gpus_per_item:g} GPU(s)" if self.gpus_per_item else "")
                            + f" for an item (the largest has {cpus:g} CPU(s), {gpus:g} GPU(s))", code="bad_params",
                            hint="lower --threads (or --gpus-per-item; --device cpu on a machine without a GPU), or "
                                 "add larger nodes to the cluster")

    def __exit__(self, *exc: object) -> None:
        import ray

        # a local instance is stopped; from a cluster the driver only disconnects (the cluster stays up)
        with _keep_signal_handlers():
            ray.shutdown()

    def submit(self, items: list[dict[str, Any]]) -> None:
        import ray

        from core import __version__

        task = ray.remote(num_cpus=self.run.threads, num_gpus=self.gpus_per_item, max_retries=0)(_ray_item)
        for item in items:
            ref = task.remote(item, self.run.workspace, str(self.run.batch_dir), self.run.batch_id,
                              self.run.threads, self.run.device, __version__)
            self._refs[ref] = item

    def wait(self, timeout_s: float) -> list[dict[str, Any]]:
        import ray

        if not self._refs:
            return []
        ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=timeout_s, fetch_local=True)
        return [self._collect(ref) for ref in ready]

    def _collect(self, ref: Any) -> dict[str, Any]:
        import ray

        item = self._refs.pop(ref)
        try:
            return ray.get(ref)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError) as exc:
            status = "cancelled" if isinstance(exc, ray.exceptions.TaskCancelledError) else "failed"
            return failed_record(item, self.run.batch_dir, status, f"the item's worker stopped: {type(exc).__name__}",
                                 "run the plan again: it redoes this item", status=status)
        except ray.exceptions.RayError as exc:
            return failed_record(item, self.run.batch_dir, "worker_failed", f"{type(exc).__name__}: {exc}",
                                 "see the item's log in the batch folder")

    def cancel(self) -> list[dict[str, Any]]:
        import ray

        for ref in self._refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False)
        ended: list[dict[str, Any]] = []
        deadline = time.monotonic() + CANCEL_GRACE_S
        while self._refs and time.monotonic() < deadline:
            ended += self.wait(POLL_S)
        return ended


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_batch(plan: Plan, executor_factory: Callable[[RunContext], Executor],
              run: RunContext, progress: Callable[[int, int, str], None],
              log: Callable[[str, str], None], artifact: Callable[[Path, str], None]) -> BatchResult:
    """Run the unfinished items of ``plan``; write ``summary.json`` and ``batch_report.md``.

    ``progress(done, total, message)`` is the job's (it raises :class:`JobCancelled` on a cancel request: the
    running items are cancelled, the report is written, then it propagates).
    """
    batch_dir = run.batch_dir
    (batch_dir / "items").mkdir(parents=True, exist_ok=True)
    atomic_write_json(batch_dir / "plan.json", plan.to_json())
    artifact(batch_dir / "plan.json", "batch_plan")  # front-ends list the items from it
    result = BatchResult()
    todo: list[dict[str, Any]] = []
    for item in plan.items:
        digest = item_digest(item)  # hashes the item's audio and curves: once per item
        if is_finished(batch_dir, item, digest):
            result.skipped.append(item.id)
            result.records[item.id] = read_record(batch_dir, item.id)
        else:
            todo.append({**item.to_json(), "digest": digest})
    if result.skipped:
        log(f"{len(result.skipped)} item(s) finished in an earlier run are skipped: "
            + ", ".join(result.skipped[:6]) + (" ..." if len(result.skipped) > 6 else ""), "info")
    units = 100
    total = max(1, len(todo)) * units
    started = time.monotonic()
    shown = 0

    def record_ended(record: dict[str, Any]) -> None:
        status = record.get("status", "failed")
        getattr(result, {"done": "done", "cancelled": "cancelled"}.get(status, "failed")).append(record["id"])
        result.records[record["id"]] = record
        artifact(item_paths(batch_dir, record["id"])[0], "batch_item")
        if status == "done":
            log(f"item {record['id']}: done in {record.get('seconds', 0):.1f} s", "info")
        elif status == "failed":
            error = record.get("error") or {}
            log(f"item {record['id']}: failed: {error.get('message', '?')}", "warning")

    try:
        if todo:
            with executor_factory(run) as executor:
                log(f"running {len(todo)} item(s) on {executor.describe}", "info")
                executor.submit(todo)
                pending = {item["id"] for item in todo}
                try:
                    while pending:
                        for record in executor.wait(POLL_S):
                            pending.discard(record["id"])
                            record_ended(record)
                        ended = len(todo) - len(pending)
                        running = sum(item_fraction(batch_dir, i) for i in pending)
                        shown = max(shown, min(total - 1 if pending else total, int(ended * units + running * units)))
                        progress(shown, total, f"{ended}/{len(todo)} items" + (f", {len(result.failed)} failed"
                                                                              if result.failed else ""))
                except (JobCancelled, KeyboardInterrupt):
                    log(f"stopping: cancelling {len(pending)} unfinished item(s)", "warning")
                    for record in executor.cancel():
                        pending.discard(record["id"])
                        record_ended(record)
                    raise
    finally:
        write_report(plan, batch_dir, result, time.monotonic() - started)
        artifact(batch_dir / "batch_report.md", "report")
    return result


def write_report(plan: Plan, batch_dir: Path, result: BatchResult, seconds: float) -> None:
    """``summary.json`` and ``batch_report.md`` (a table of every item) in the batch folder."""
    rows = []
    for item in plan.items:
        record = result.records.get(item.id) or read_record(batch_dir, item.id)
        status = ("skipped" if item.id in result.skipped else
                  record.get("status", "pending") if record else "pending")
        if status == "running":  # stopped with its worker, never heard of again
            status = "unfinished"
        rows.append({"id": item.id, "shot": item.shot, "language": item.language, "emotion": item.emotion,
                     "renderer": item.renderer or "(best)", "status": status, "seconds": record.get("seconds"),
                     "attempts": record.get("attempts", 0), "video": (record.get("outputs") or {}).get("video"),
                     "error": record.get("error")})
    counts = {key: len(getattr(result, key)) for key in ("done", "failed", "cancelled", "skipped")}
    counts["pending"] = sum(1 for row in rows if row["status"] in ("pending", "unfinished"))
    atomic_write_json(batch_dir / "summary.json", {"plan": plan.name, "items": rows, **counts, "seconds": seconds})
    lines = [f"# Batch {plan.name}", "",
             f"{len(plan.items)} item(s): {counts['done']} done, {counts['failed']} failed, {counts['skipped']} "
             f"skipped (finished earlier), {counts['cancelled'] + counts['pending']} not finished; "
             f"{seconds:.1f} s this run.", "",
             "| item | shot | language | emotion | renderer | status | seconds | attempts | output or error |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["error"] and row["status"] != "skipped":
            note = f"{row['error'].get('message', '')} ({row['error'].get('code', '')})".replace("|", "/")
        else:
            note = row["video"] or ""
        secs = f"{row['seconds']:.1f}" if isinstance(row["seconds"], int | float) else ""
        lines.append(f"| {row['id']} | {row['shot']} | {row['language']} | {row['emotion']} | {row['renderer']} | "
                     f"{row['status']} | {secs} | {row['attempts']} | {note} |")
    if counts["failed"] or counts["cancelled"] or counts["pending"]:
        lines += ["", "Run the plan again to redo the items that did not finish; finished ones are skipped."]
    atomic_write_text(batch_dir / "batch_report.md", "\n".join(lines) + "\n")
