"""``emodub``: the engine's command line. One subcommand per job kind (from the job registry),
plus ``worker``, ``doctor``, ``workspace`` and ``demo``.

In a terminal each job shows a progress bar per stage; ``--json`` prints the protocol's JSON lines
instead (the same events the worker streams to the add-on and the app).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core import __version__
from core.jobs import protocol as P
from core.jobs.context import CancelToken
from core.jobs.registry import JobKind, all_kinds
from core.jobs.threads import configure_cpu_threads

if TYPE_CHECKING:
    from core.workspace import Workspace


# Artifacts for front-ends only: a batch's item records and plan (its log lines already say what they say).
QUIET_ARTIFACTS = frozenset({"batch_item", "batch_plan"})


class TerminalReporter:
    """Renders events for a person: a tqdm bar per stage on stderr, logs, a final summary."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._bars: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}

    def __call__(self, event: P.Event) -> None:
        from tqdm import tqdm

        if isinstance(event, P.Progress):
            bar = self._bars.get(event.stage)
            if bar is not None and event.done < bar.n:  # the stage runs again (the demo's second model): a new bar
                bar = None
            if bar is None:
                self._close()  # one bar at a time; a stage that comes back gets a fresh bar and clock
                bar = self._bars[event.stage] = tqdm(total=event.total or None, desc=event.stage,
                                                     file=self.stream, dynamic_ncols=True, leave=True)
            if event.total and bar.total != event.total:
                bar.total = event.total
            bar.n = event.done
            whole = ""
            if event.overall is not None:  # where the whole job is: stages come and go, this only grows
                left = f", ~{round(event.overall_eta_s)} s left" if event.overall_eta_s is not None else ""
                whole = f"job {round(100 * event.overall)}%{left}"
            postfix = "; ".join(part for part in (event.message, whole) if part)
            if postfix:
                bar.set_postfix_str(postfix, refresh=False)
            bar.refresh()
        elif isinstance(event, P.Log):
            self._write(f"[{event.level}] {event.message}")
        elif isinstance(event, P.Artifact):
            if event.kind not in QUIET_ARTIFACTS:
                self._write(f"wrote {event.kind}: {event.path}")
        elif isinstance(event, P.Error):
            self._close()
            self._write(f"error: {event.message}")
            if event.hint:
                self._write(f"hint: {event.hint}")
            if event.traceback:
                self._write(event.traceback)
        elif isinstance(event, P.Cancelled):
            self._close()
            self._write(f"cancelled: {event.message}")
        elif isinstance(event, P.Done):
            self._close()
            self.outputs = event.outputs

    def _write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream)

    def _close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


class JsonReporter:
    def __call__(self, event: P.Event) -> None:
        sys.stdout.write(P.encode_event(event) + "\n")
        sys.stdout.flush()


def run_kind_in_process(kind: JobKind, params: dict[str, Any], workspace: str | None, as_json: bool) -> int:
    """Run a job kind here, with Ctrl-C as a cancel request (the job saves what it has)."""
    spec = P.JobSpec(kind=kind.name, params=params, workspace=workspace)
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    signal.signal(signal.SIGTERM, lambda *_: cancel.cancel())
    reporter: Any = JsonReporter() if as_json else TerminalReporter()
    from core.jobs.runner import run_job

    try:
        code = run_job(spec, reporter, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    if not as_json and code == P.EXIT_OK:
        outputs = reporter.outputs
        if outputs:
            print(json.dumps(outputs, indent=2, sort_keys=True))
    return code


def _add_kind_parsers(subparsers: argparse._SubParsersAction, kinds: dict[str, JobKind],
                      groups: dict[str, argparse._SubParsersAction] | None = None) -> None:
    """A parser per job kind (``shot.prepare`` -> ``emodub shot prepare``); ``groups``: command groups that exist
    already (``workspace``), which kinds join."""
    groups = dict(groups or {})
    for name, kind in kinds.items():
        parts = name.split(".")
        parent = subparsers
        for depth in range(len(parts) - 1):
            key = ".".join(parts[: depth + 1])
            if key not in groups:
                group = parent.add_parser(parts[depth], help=f"{parts[depth]} subcommands")
                groups[key] = group.add_subparsers(dest=f"_{key}", metavar="WHAT", required=True)
            parent = groups[key]
        sub = parent.add_parser(parts[-1], help=kind.help, description=kind.help)
        if kind.needs_workspace:
            sub.add_argument("--workspace", "-w", required=True, help="the emodub workspace folder")
        kind.add_arguments(sub)
        sub.add_argument("--json", action="store_true", help="print protocol JSON lines instead of bars")
        sub.set_defaults(_kind=kind)


def build_parser(kinds: dict[str, JobKind] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emodub", description="emodub: emotion-controllable visual dubbing (engine)",
        epilog="Each job kind can also run as a worker: emodub worker --job spec.json")
    parser.add_argument("--version", action="version", version=f"emodub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    w = sub.add_parser("worker", help="run one job spec, streaming JSON-lines events on stdout")
    w.add_argument("--job", help="job spec file (default: first line of stdin)")
    w.add_argument("-v", "--verbose", action="store_true")
    d = sub.add_parser("doctor", help="check Python, torch, CUDA, ffmpeg, mediapipe, FLAME, disk")
    d.add_argument("--json", action="store_true", help="machine-readable report")
    d.add_argument("--workspace", "-w", default=None, help="also check this workspace")
    ws = sub.add_parser("workspace", help="create or check a workspace")
    ws_sub = ws.add_subparsers(dest="ws_command", metavar="WHAT", required=True)
    ws_check = ws_sub.add_parser("check", help="validate a workspace (manifest, files, leftovers of "
                                               "interrupted jobs, stale locks)")
    ws_check.add_argument("path")
    ws_clean = ws_sub.add_parser("clean", help="remove the leftovers of interrupted jobs (temporary files, "
                                               "staging folders, partial renders, stale locks)")
    ws_clean.add_argument("path")
    _add_renderers_parser(sub)
    _add_kind_parsers(sub, kinds if kinds is not None else all_kinds(), {"workspace": ws_sub})  # + workspace init
    return parser


def _add_renderers_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    r = sub.add_parser("renderers", help="list the renderer variants, their options and presets",
                       description="List the renderer variants (answers without loading torch).")
    r.add_argument("--json", action="store_true", help="machine-readable list")
    r.add_argument("--workspace", "-w", default=None, help="also say which variants --actor has trained")
    r.add_argument("--actor", default=None)
    return r


def renderers_command(argv: Sequence[str]) -> int:
    """``emodub renderers [--json] [-w W --actor A]``: the variants from :mod:`core.renderers.spec` (no torch)."""
    parser = argparse.ArgumentParser(prog="emodub renderers")
    sub = parser.add_subparsers(dest="command")
    args = _add_renderers_parser(sub).parse_args(list(argv))
    from core.renderers.catalog import DEFAULT_VARIANT, LEGACY_VARIANT, best_renderer, trained_renderers
    from core.renderers.spec import describe_variants

    variants = describe_variants()
    trained: dict[str, Any] = {}
    best = None
    if args.workspace and args.actor:
        from core.workspace import Workspace, WorkspaceError

        try:
            manifest = Workspace.open(args.workspace).read_manifest()
        except WorkspaceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        trained = trained_renderers(manifest, args.actor)
        best = best_renderer(manifest, args.actor)
    for entry in variants:
        entry["trained"] = sorted(n for n, r in trained.items() if r["variant"] == entry["name"])
    if args.json:
        print(json.dumps({"default": DEFAULT_VARIANT, "legacy": LEGACY_VARIANT, "variants": variants,
                          "trained": trained, "best": best}, indent=1, default=str))
        return 0
    for entry in variants:
        marks = " (default)" if entry["name"] == DEFAULT_VARIANT else ""
        print(f"{entry['name']}{marks}: {entry['description']}")
        if entry["presets"]:
            print("  presets: " + "; ".join(f"{k} ({v})" for k, v in entry["presets"].items()))
        for option in entry["options"]:
            print(f"  --set {option['name']}=<{option['type']}> (default {option['default']}): {option['help']}")
        if entry["trained"]:
            print(f"  trained by {args.actor}: {', '.join(entry['trained'])}")
    if best:
        print(f"best of {args.actor}: {best}")
    return 0


def _workspace_command(args: argparse.Namespace) -> int:
    from core.workspace import Workspace, WorkspaceError

    try:
        ws = Workspace.open(args.path)
        if args.ws_command == "clean":
            return _workspace_clean(ws)
        problems = ws.validate()
        leftovers = ws.leftovers()
        running = ws.others_at_work()
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"problem: {problem}")
    for line in leftovers.describe(ws.root):
        # a running job's files in progress look like leftovers: say so rather than alarm
        print(f"{'in progress?' if running else 'leftover'}: {line}")
    for lock in running:
        print(f"running: {lock.describe()}")
    if leftovers and not running:
        print("hint: `emodub workspace clean` removes the leftovers")
    total = len(problems) + (len(leftovers.paths()) if not running else 0)
    print("workspace OK" if not total else f"{total} problem(s)")
    return 0 if not total else 1


def _workspace_clean(ws: Workspace) -> int:
    removed = ws.cleanup()
    for line in removed.describe(ws.root):
        print(f"removed {line}")
    running = ws.others_at_work()
    if running:
        print("kept the files of running jobs: " + "; ".join(lock.describe() for lock in running)
              + " (clean again when they are done)")
    left = ws.leftovers()
    print(f"removed {len(removed.paths())} leftover(s)" + (f"; {len(left.paths())} left" if left else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:  # fast path: no parser construction, no registry import
        from core.jobs.worker import main as worker_main

        return worker_main(argv[1:])  # sets the thread policy itself
    if argv[:1] == ["renderers"]:  # fast path: answers without importing torch (the front-ends call it)
        return renderers_command(argv[1:])
    configure_cpu_threads()  # before all_kinds(): the job modules it imports load torch
    kinds = all_kinds()
    parser = build_parser(kinds)
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from core.doctor import main as doctor_main

        return doctor_main(as_json=args.json, workspace=args.workspace)
    if args.command == "workspace" and getattr(args, "_kind", None) is None:
        return _workspace_command(args)
    kind: JobKind = args._kind
    params = kind.params_from_args(args)
    workspace = getattr(args, "workspace", None)
    return run_kind_in_process(kind, params, workspace, args.json)


if __name__ == "__main__":
    sys.exit(main())
