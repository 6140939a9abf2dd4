#!/usr/bin/env python3
"""A stand-in for the emodub engine, for the add-on's tests while the real ``dub`` job does not exist.

It is started exactly like the engine (``emodub worker --job SPEC``, ``emodub doctor --json``,
``emodub --version``, ``emodub renderers --json``) through a small ``emodub`` wrapper script the tests write,
reads the job spec
with the real protocol module (``core.jobs.protocol``), speaks the real event protocol on stdout,
watches stdin for ``cancel`` and handles SIGTERM like the real worker.

What it does per kind:
* ``dub``: checks the emotion curves payload (per-frame lists of one length ``n``), then writes a real
  H.264 mp4 of ``n`` frames at the payload's fps with imageio-ffmpeg (each frame's brightness follows
  the ``happy`` curve) and a report.json, and answers ``done`` with ``{"video", "frames", "fps",
  "report"}`` like the contract says.
* ``batch.dub``: reads the plan with the real plan reader (``core.batch.plan``: the add-on's plan must pass the
  engine's checks), writes a video per item (frames = its curves file's length) and the item records in the batch
  folder like the real batch, and answers ``done`` with the real outputs' keys.
* any other kind (``shot.prepare``, ``train.actor``...): a few progress steps, then ``done``.

Environment switches:
* ``EMODUB_FAKE_RECORD``: a folder; each received spec is saved there as ``<job id>.json`` (the tests
  compare its emotion values with the F-curves), with ``<job id>.pid``.
* ``EMODUB_FAKE_MODE``: ``ok`` (default); ``fail`` (an ``error`` event with a hint, exit 1); ``no_consent``
  (the real engine's refusal of an actor without a consent record); ``crash``
  (dies midway with ``os._exit(70)`` and no terminal event); ``slow`` (0.05 s per step, 400 steps: for
  cancel); ``hang`` (ignores cancel and SIGTERM: only SIGKILL stops it); ``noisy`` (prints lines that
  are not protocol events between real ones).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.jobs import protocol as P  # noqa: E402 - after the path setup above

MODE = os.environ.get("EMODUB_FAKE_MODE", "ok")
RECORD = os.environ.get("EMODUB_FAKE_RECORD", "")
FAIL_MESSAGE = "actor 'anna' has no trained renderer"
FAIL_HINT = "press Train Actor first"


def emit(event: P.Event) -> None:
    sys.stdout.write(P.encode_event(event) + "\n")
    sys.stdout.flush()


# What ``renderers --json`` answers: one variant the real engine does not have, so a test can tell that the
# add-on's list comes from the engine.
FAKE_VARIANTS = [{"name": "neural_texture", "description": "Neural texture (fake engine)", "options": [],
                  "presets": {}, "default_preset": None},
                 {"name": "fake_nerf", "description": "A NeRF only the fake engine has", "options": [],
                  "presets": {"cpu": "small"}, "default_preset": "cpu"}]


def renderers() -> int:
    print(json.dumps({"default": "neural_texture", "variants": FAKE_VARIANTS, "trained": {}, "best": None}))
    return 0


def doctor() -> int:
    report = {"emodub": "0.1.0-fake", "ok": True, "checks": [
        {"name": "python", "ok": True, "detail": sys.version.split()[0], "hint": "", "required": True},
        {"name": "cuda", "ok": False, "detail": "no CUDA device; running on CPU", "hint": "",
         "required": False}]}
    print(json.dumps(report, indent=2))
    return 0


def write_video(path: Path, values: list[float], fps: float) -> None:
    """An H.264 file at the exact rate (24000/1001 for 23.976...), as the real engine writes the shot's rate."""
    import numpy as np

    from core.io.video import VideoWriter

    with VideoWriter(path, fps, preset="ultrafast") as writer:
        for value in values:
            writer.write(np.full((48, 64, 3), int(40 + 200 * min(max(value, 0.0), 1.0)), np.uint8))


def run_batch(spec: P.JobSpec) -> int:
    from core.batch.plan import PlanError, load_plan

    try:
        plan = load_plan(spec.params["plan"])
    except PlanError as exc:
        emit(P.Error(spec.id, code=P.BAD_INPUT, message=str(exc), hint="fix the plan"))
        return P.EXIT_ERROR
    batch_dir = Path(spec.workspace or os.getcwd()) / "batches" / plan.name
    (batch_dir / "items").mkdir(parents=True, exist_ok=True)
    items: dict[str, str] = {}
    for k, item in enumerate(plan.items):
        curves = json.loads(Path(item.params["emotions"]).read_text(encoding="utf-8"))
        happy = curves["per_frame"]["happy"]
        video = batch_dir / "fake" / f"{item.id}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        write_video(video, happy, float(curves["fps"]))
        record = {"id": item.id, "status": "done", "attempts": 1, "params": item.params,
                  "outputs": {"video": str(video), "frames": len(happy)}}
        (batch_dir / "items" / f"{item.id}.json").write_text(json.dumps(record))
        items[item.id] = "done"
        emit(P.Progress(spec.id, stage="batch", done=k + 1, total=len(plan.items)))
    report = batch_dir / "batch_report.md"
    report.write_text(f"# Batch {plan.name}\n\n{len(items)} done\n")
    emit(P.Done(spec.id, outputs={"batch": plan.name, "batch_dir": str(batch_dir), "report": str(report),
                                  "done": len(items), "failed": 0, "skipped": 0, "cancelled": 0, "items": items}))
    return P.EXIT_OK


def run(spec: P.JobSpec, cancel: threading.Event) -> int:
    emit(P.Started(spec.id, kind=spec.kind))
    if spec.kind == "batch.dub" and MODE == "ok":
        return run_batch(spec)
    frames, fps, happy = 5, 25.0, [0.0] * 5
    if spec.kind == "dub":
        curves = spec.params.get("emotions") or {}
        lists = list((curves.get("per_frame") or {}).values())
        if curves.get("format") != "emodub-emotion-curves" or not lists or len({len(v) for v in lists}) != 1:
            emit(P.Error(spec.id, code="bad_params", message="dub needs per-frame emotion curves",
                         hint="send the per_frame form"))
            return P.EXIT_BAD_SPEC
        frames, fps = len(lists[0]), float(curves["fps"])
        happy = curves["per_frame"].get("happy", [0.0] * frames)
        if not os.path.isfile(spec.params.get("audio", "")):
            emit(P.Error(spec.id, code="bad_audio", message=f"no audio file {spec.params.get('audio')!r}"))
            return P.EXIT_ERROR
    steps = 400 if MODE in ("slow", "hang") else frames
    for step in range(steps):
        if cancel.is_set() and MODE != "hang":
            emit(P.Cancelled(spec.id, message=f"cancelled after {step} steps"))
            return P.EXIT_CANCELLED
        if MODE == "crash" and step == 2:
            print("fake engine: simulated crash in the renderer", file=sys.stderr, flush=True)
            os._exit(70)
        if MODE == "noisy":
            print("this line is not an event", flush=True)
        emit(P.Progress(spec.id, stage="render", done=step, total=steps, message=f"frame {step}"))
        if MODE in ("slow", "hang"):
            time.sleep(0.05)
    if MODE == "no_consent":
        emit(P.Error(spec.id, code=P.NO_CONSENT, message="actor 'anna' has no consent record: emodub dubs a "
                     "person's face only with a record of their consent",
                     hint="record it with: emodub actor consent --actor anna --by NAME --scope WHAT --document REF"))
        return P.EXIT_ERROR
    if MODE == "fail":
        emit(P.Log(spec.id, level="error", message="loading the renderer failed"))
        emit(P.Error(spec.id, code="no_model", message=FAIL_MESSAGE, hint=FAIL_HINT))
        return P.EXIT_ERROR
    outputs: dict[str, object] = {"steps": steps}
    if spec.kind == "preview":  # one PNG per asked frame, as the real engine writes them
        import imageio.v3 as iio
        import numpy as np

        first, count = int(spec.params.get("frame", 0)), int(spec.params.get("count", 1))
        folder = Path(spec.workspace or os.getcwd()) / "previews" / "fake"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(first, first + count):
            path = folder / f"frame_{index:06d}.png"
            iio.imwrite(path, np.full((48, 64, 3), 200, np.uint8))
            paths.append(str(path))
        outputs = {"frames": paths, "indices": list(range(first, first + count)), "warm": False}
    if spec.kind == "dub":
        base = Path(spec.workspace or os.getcwd()) / "renders" / f"fake-{spec.id}"
        video = Path(spec.params.get("out") or base / "dub.mp4")
        write_video(video, happy, fps)
        report = base / "report.json"
        report.write_text(json.dumps({"frames": frames, "fps": fps, "fake": True}))
        emit(P.Artifact(spec.id, path=str(video), kind="video"))
        emit(P.Artifact(spec.id, path=str(report), kind="report"))
        outputs = {"video": str(video), "frames": frames, "fps": fps, "report": str(report),
                   "warnings": ["the dub audio runs 1.00 s past the end of the shot (fake)"]}
    emit(P.Done(spec.id, outputs=outputs))
    return P.EXIT_OK


def record(spec: P.JobSpec) -> None:
    if RECORD:
        folder = Path(RECORD)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{spec.id}.json").write_text(json.dumps(spec.to_dict()))
        (folder / f"{spec.id}.pid").write_text(str(os.getpid()))


def serve() -> int:
    """``worker --serve``: job specs on stdin, one per line, run in turn in this process; ``quit`` ends it."""
    for line in sys.stdin:
        if line.strip() == "quit":
            return 0
        if not line.strip() or P.is_cancel_line(line):
            continue
        spec = P.decode_spec(line)
        record(spec)
        run(spec, threading.Event())
    return 0


def worker(job: Path) -> int:
    try:
        spec = P.decode_spec(job.read_text(encoding="utf-8"))
    except (OSError, P.ProtocolError) as exc:
        emit(P.Error("unknown", code="bad_spec", message=f"cannot read the job spec: {exc}"))
        return P.EXIT_BAD_SPEC
    record(spec)
    cancel = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if P.is_cancel_line(line):
                cancel.set()
                return

    if MODE == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    threading.Thread(target=watch_stdin, daemon=True).start()
    return run(spec, cancel)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print("emodub 0.1.0 (fake engine for the add-on tests)")
        return 0
    if argv[:1] == ["doctor"]:
        return doctor()
    if argv[:1] == ["renderers"]:
        return renderers()
    if argv[:1] != ["worker"]:
        print(f"fake engine: unsupported arguments {argv}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="emodub worker")
    parser.add_argument("--job", type=Path)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--idle-exit", type=float, default=900.0)
    args = parser.parse_args(argv[1:])
    return serve() if args.serve else worker(args.job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
