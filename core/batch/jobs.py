"""Job kind ``batch.dub``: every dub of a plan, locally or on a Ray cluster (``emodub batch dub --plan plan.toml``)."""

from __future__ import annotations

import os
from typing import Any

from core.jobs import protocol as P
from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import Arg, Bounds, job_kind


@job_kind("batch.dub", help="run every dub of a plan (shots x audio tracks x emotion passes x renderers); a rerun "
                            "skips the items that finished",
          args=[Arg("--plan", required=True, spec_types=(str, dict),
                    help="the plan: a .json or .toml file (core/batch/plan.py describes its form), or the plan "
                         "object itself in a job spec"),
                Arg("--workers", type=int, default=None, bounds=Bounds(1, 1024),
                    help="items at once on this machine (default: one per core, at most one per item)"),
                Arg("--threads", type=int, default=None, bounds=Bounds(1, 256),
                    help="torch threads (CPUs asked of Ray) per item (default: cores / workers; 1 on a cluster)"),
                Arg("--ray-address", default=None, dest="ray_address",
                    help="run the items on this existing Ray cluster (e.g. ray://head:10001 or auto) instead of a "
                         "local instance; every node needs the same emodub and the workspace at the same path"),
                Arg("--gpus-per-item", type=float, default=None, dest="gpus_per_item", bounds=Bounds(0, 64),
                    help="GPUs each item asks Ray for (default: 1 with --device cuda, else 0)"),
                Arg("--backend", default="ray", choices=["ray", "inline"],
                    help="ray (default), or inline: one item at a time in this process, without Ray"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device of each dub")])
def run_batch_dub(ctx: JobContext) -> dict[str, Any]:
    from .plan import PlanError, load_plan, parse_plan
    from .runner import InlineExecutor, RayExecutor, RunContext, run_batch

    p = ctx.params
    ws = ctx.workspace
    try:
        if isinstance(p["plan"], dict):
            plan = parse_plan(p["plan"], base=ws.root, name=str(p["plan"].get("name") or "batch"))
        else:
            plan = load_plan(p["plan"])
    except PlanError as exc:
        raise JobFailed(str(exc), code=P.BAD_INPUT,
                        hint="fix the plan (its form is described in core/batch/plan.py and docs/scaling.md)") from None
    cores = os.cpu_count() or 1
    workers = int(p.get("workers") or max(1, min(cores, len(plan.items))))
    # on a cluster the items run on other machines: one thread each unless told (this machine's cores say nothing)
    threads = int(p.get("threads") or (1 if p.get("ray_address") else max(1, cores // workers)))
    device = str(p.get("device") or "auto")
    gpus = p.get("gpus_per_item")
    if gpus is None:
        gpus = 1.0 if device == "cuda" else 0.0
    batch_dir = ws.root / "batches" / plan.name
    run = RunContext(workspace=str(ws.root), batch_dir=batch_dir, batch_id=f"{plan.name}-{ctx.spec.id[:8]}",
                     threads=threads, device=device)
    if p.get("backend") == "inline":
        if p.get("ray_address"):
            raise JobFailed("--ray-address needs the ray backend", code=P.BAD_PARAMS,
                            hint="leave out --backend inline")

        def factory(run: RunContext) -> Any:
            return InlineExecutor(run, cancel_token=ctx.cancel_token)
    else:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise JobFailed("Ray is not installed in this engine's environment", code="missing_dependency",
                            hint="reinstall emodub (`python build.py env`), or run with --backend inline") from None

        def factory(run: RunContext) -> Any:
            return RayExecutor(run, workers=workers, address=p.get("ray_address"), gpus_per_item=float(gpus))
    ctx.log(f"plan {plan.name}: {len(plan.items)} item(s); batch folder {batch_dir}")
    with ws.lock(f"batch/{plan.name}"):
        result = run_batch(plan, factory, run,
                           progress=lambda done, total, msg: ctx.progress("batch", done, total, msg),
                           log=lambda message, level: ctx.log(message, level),
                           artifact=lambda path, kind: ctx.artifact(path, kind))
    if result.failed:
        ctx.log(f"{len(result.failed)} of {len(plan.items)} item(s) failed: see {batch_dir / 'batch_report.md'}",
                "warning")
    return {"batch": plan.name, "batch_dir": str(batch_dir), "report": str(batch_dir / "batch_report.md"),
            "done": len(result.done), "failed": len(result.failed), "skipped": len(result.skipped),
            "cancelled": len(result.cancelled),
            "items": {item.id: ("skipped" if item.id in result.skipped
                                else result.records.get(item.id, {}).get("status", "pending"))
                      for item in plan.items}}
