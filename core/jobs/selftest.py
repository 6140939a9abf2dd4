"""The ``selftest`` job: small real torch work in steps, to test the job machinery end to end.

It fits a tiny MLP to ``sin(x)`` for ``steps`` steps, reporting progress after each. On completion
it writes ``selftest.json`` (final loss, device, timings); on cancel it writes the checkpoint
``selftest.ckpt`` of the steps done so far, atomically, and nothing else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .context import JobCancelled, JobContext
from .registry import Arg, job_kind


@job_kind("selftest", help="fit a tiny MLP in steps to check that the engine works end to end",
          needs_workspace=False,
          args=[Arg("--steps", type=int, default=50, help="optimisation steps (default 50)"),
                Arg("--step-delay", type=float, default=0.0, dest="step_delay",
                    help="seconds to sleep per step (to watch progress or test cancel)"),
                Arg("--out-dir", dest="out_dir", default=None,
                    help="where to write selftest.json (default: a temporary folder)"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_selftest(ctx: JobContext) -> dict[str, Any]:
    import tempfile

    import torch

    from core.workspace import atomic_path, atomic_write_json

    steps = int(ctx.params.get("steps", 50))
    delay = float(ctx.params.get("step_delay", 0.0))
    if steps < 1:
        from .context import JobFailed

        raise JobFailed(f"steps must be >= 1, got {steps}", hint="pass --steps 10", code="bad_params")
    out_dir = Path(ctx.params.get("out_dir") or tempfile.mkdtemp(prefix="emodub-selftest-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    device = ctx.device
    torch.manual_seed(0)
    x = torch.linspace(-3.0, 3.0, 256, device=device).unsqueeze(1)
    y = torch.sin(x)
    model = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    ctx.log(f"selftest: torch {torch.__version__} on {device}, {steps} steps")
    start = time.perf_counter()
    first_loss = loss_value = float("nan")
    done = 0
    try:
        ctx.progress("selftest", 0, steps, "fitting sin(x)")
        for step in range(1, steps + 1):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimiser.step()
            loss_value = loss.item()
            if step == 1:
                first_loss = loss_value
            done = step
            if delay:
                time.sleep(delay)
            ctx.progress("selftest", step, steps, f"loss {loss_value:.4f}")
    except JobCancelled:
        ckpt = out_dir / "selftest.ckpt"
        with atomic_path(ckpt) as tmp:
            torch.save({"step": done, "model": model.state_dict(), "loss": loss_value}, tmp)
        ctx.artifact(ckpt, "checkpoint")
        ctx.log(f"selftest cancelled after {done} steps; checkpoint saved to {ckpt}")
        raise
    result = {"steps": steps, "first_loss": first_loss, "final_loss": loss_value, "device": device,
              "seconds": time.perf_counter() - start, "torch": torch.__version__}
    path = atomic_write_json(out_dir / "selftest.json", result)
    ctx.artifact(path, "report")
    return {"report": str(path), "final_loss": loss_value, "first_loss": first_loss, "device": device}
