"""A small Adam for the tracker's named variables.

The tracker creates one optimiser per mini-batch (thousands per clip); ``torch.optim.Adam`` costs a lazy
import of torch's compiler stack on first use (seconds) and per-group bookkeeping on every step. This one is
the textbook algorithm (Kingma & Ba 2015, with bias correction) over a dict of tensors, with a learning rate
per variable, a global factor for schedules, and a plain-tensor state that checkpoints with ``torch.save``.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


class NamedAdam:
    """Adam over named leaf tensors.

    Args:
        params: name -> leaf tensor (``requires_grad``), updated in place.
        lr: name -> learning rate.
        betas: moment decay rates.
        eps: denominator guard.
    """

    def __init__(self, params: dict[str, Tensor], lr: dict[str, float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        missing = [n for n in params if n not in lr]
        if missing:
            raise ValueError(f"no learning rate for {missing}")
        self.params = params
        self.lr = {n: float(lr[n]) for n in params}
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, factor: float = 1.0) -> None:
        """One update with every learning rate multiplied by ``factor``; variables without a gradient are
        left alone (their moments too)."""
        self.step_count += 1
        b1, b2 = self.betas
        bias1 = 1.0 - b1 ** self.step_count
        bias2 = 1.0 - b2 ** self.step_count
        for name, p in self.params.items():
            if p.grad is None:
                continue
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
            denom = (v / bias2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr[name] * factor / bias1)

    def state_dict(self) -> dict[str, object]:
        return {"step": self.step_count, "exp_avg": {n: t.detach().cpu().clone() for n, t in self.exp_avg.items()},
                "exp_avg_sq": {n: t.detach().cpu().clone() for n, t in self.exp_avg_sq.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.step_count = int(state["step"])  # type: ignore[arg-type]
        for key, target in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            saved: dict[str, Tensor] = state[key]  # type: ignore[assignment]
            for name in target:
                if name in saved and saved[name].shape == target[name].shape:
                    target[name] = saved[name].to(target[name])
