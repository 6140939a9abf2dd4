"""How well a job's one bar and its ETA hold: ``train.actor`` from imported (untracked) takes to trained models.

    python build.py bench progress [--a2e 300] [--renderer 200] [--track 0.5] [--size 128]

A synthetic actor's three takes are ingested (not tracked), then ``train.actor`` runs in this process (tracking
first, then the audio-to-expression model, then the renderer), its progress events recorded with their times.
Records, for the whole job's bar (``overall``) at about 10, 25, 50 and 75 % of the wall time:

* ``eta_error_at_<P>pct``: (the ETA the bar showed then - the real time left) / the real time left;
* ``bar_at_<P>pct``: the bar then (a bar that follows the time would read P %);
* ``bar_monotone``: whether it only grew; ``bar_max_before_done``: its largest value before ``done``;
* ``stages``: each stage's seconds and the part of the bar it moved through;
* ``train_actor_s``: the whole job.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import emit, load_average


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a2e", type=int, default=300)
    parser.add_argument("--renderer", type=int, default=200)
    parser.add_argument("--track", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    from core.jobs import protocol as P
    from core.jobs.runner import run_job
    from core.synthetic.takes import camera_takes
    from core.workspace import Workspace

    folder = Path(tempfile.mkdtemp(prefix="emodub-bench-progress-"))
    try:
        events: list[P.Event] = []
        camera = camera_takes(folder, size=args.size)
        ws = Workspace.create(folder / "ws")
        for emotion, takes in camera.takes.items():
            for take in takes:
                spec = P.JobSpec("ingest", {"video": str(take), "actor": "anna", "clip": take.stem,
                                            "emotion": "neutral" if emotion == "neutral" else f"{emotion}:1"},
                                 str(ws.root))
                assert run_job(spec, events.append) == P.EXIT_OK, events[-1]
        from core.consent import record_synthetic_consent

        record_synthetic_consent(ws, "anna", "bench.progress")
        seen: list[tuple[float, float, float | None]] = []
        stages: dict[str, list[float]] = {}  # stage -> [first, last] time it reported, and the bar then

        def sink(event: P.Event) -> None:
            if isinstance(event, P.Progress) and event.overall is not None:
                now = time.monotonic()
                seen.append((now, event.overall, event.overall_eta_s))
                span = stages.setdefault(event.stage, [now, now, event.overall, event.overall])
                span[1], span[3] = now, event.overall
            events.append(event)

        params = {"actor": "anna", "a2e_iterations": args.a2e, "renderer_iterations": args.renderer,
                  "track_iterations": args.track, "device": "cpu"}
        t0 = time.monotonic()
        code = run_job(P.JobSpec("train.actor", params, str(ws.root)), sink)
        total = time.monotonic() - t0
        assert code == P.EXIT_OK, events[-1]
        config = {**params, "size": args.size, "takes": 3, "load": load_average()}
        emit("train_actor_s", round(total, 1), "s", config)
        bars = [bar for _, bar, _ in seen]
        emit("bar_monotone", bars == sorted(bars), "bool", config)
        emit("bar_max_before_done", round(max(bars), 4), "fraction", config)
        # Where the time went and what share of the bar each stage had: what the plans' costs should follow.
        emit("stages", {name: {"seconds": round(last - first, 1), "bar": [round(lo, 3), round(hi, 3)]}
                        for name, (first, last, lo, hi) in stages.items()}, "s", config)
        for pct in (10, 25, 50, 75):
            when = t0 + total * pct / 100
            t, bar, eta = min(seen, key=lambda item: abs(item[0] - when))
            left = total - (t - t0)
            emit(f"bar_at_{pct}pct", round(bar, 3), "fraction", config)
            emit(f"eta_error_at_{pct}pct", None if eta is None else round((eta - left) / left, 3), "relative", config)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
