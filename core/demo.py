"""``emodub demo``: the main job on the embedded synthetic actor.

The full dubbing demo (synthetic corpus -> tracking -> a2e -> renderer -> dub) is not built yet.
Until it is, this runs the engine selftest so the installation is checked end to end, and says so.
"""

from __future__ import annotations

from pathlib import Path

NOT_BUILT = ("The full emodub demo (train on the synthetic actor, dub a held-out line with an emotion "
             "ramp) is not built yet. Running the engine selftest instead.")


def main(out: str = "demo-out", quick: bool = False, as_json: bool = False) -> int:
    from core.cli import run_kind_in_process
    from core.jobs.registry import get_kind

    print(NOT_BUILT, flush=True)
    kind = get_kind("selftest")
    assert kind is not None
    steps = 20 if quick else 100
    return run_kind_in_process(kind, {"steps": steps, "out_dir": str(Path(out).resolve()), "device": "auto"},
                               None, as_json)
