"""The one trainer of every renderer variant: resumable, checkpointed, reporting through the job protocol.

Per iteration: a batch of frames drawn at random from the training :class:`~core.renderers.data.FrameSource`
-> ``renderer(batch)`` -> the discriminators of any active adversarial terms step on
:meth:`~core.renderers.base.Renderer.adversarial_pairs` -> the generator minimises the sum of
:meth:`~core.renderers.base.Renderer.losses` with Adam (learning rate constant, or decaying exponentially
to ``lr_final``; bf16 autocast on CUDA) -> :meth:`~core.renderers.base.Renderer.after_step`.
:meth:`~core.renderers.base.Renderer.before_step` comes before the forward, with the step's
:class:`~core.renderers.base.TrainStep` (its ``fraction`` follows the time budget when there is one).

``checkpoint.pt`` (tensors and plain data; :mod:`core.renderers.registry`) is written atomically every
``checkpoint_every`` iterations, at the end, and on cancel or error; a run started again in the same folder
with the same variant and options resumes from it with optimiser state, iteration, RNG state and loss
history, so an interrupted run's loss curve continues unbroken. ``losses.json``/``loss.png`` and
``samples/<iteration>.png`` (prediction | target) are written as it goes.

On several processes (:mod:`core.renderers.distributed`, ``dist_env``) every rank runs this same loop on its own
batches with the renderer inside ``DistributedDataParallel`` (the step's forward and its losses are one module, so
DDP sees every parameter the losses use); the discriminators' gradients are averaged by hand. Rank 0 alone writes.
The discriminators step after the generator in both cases (the generator's adversarial term uses the discriminator
of the step before, as in the usual alternating scheme).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.io.checkpoint import CheckpointError, save_checkpoint
from core.workspace import atomic_path, atomic_write_json

from .base import Renderer, RendererBatch, TrainStep
from .distributed import DistEnv, agree, average_gradients, gather_numbers
from .registry import CHECKPOINT, HEADER, header, read_checkpoint


class _TrainStepModule(torch.nn.Module):
    """A step's forward and losses as one module: what DistributedDataParallel wraps."""

    def __init__(self, renderer: Renderer) -> None:
        super().__init__()
        self.renderer = renderer

    def forward(self, batch: RendererBatch, criteria: torch.nn.ModuleDict, step: TrainStep
                ) -> tuple[Any, dict[str, torch.Tensor]]:
        out = self.renderer(batch)
        return out, self.renderer.losses(batch, out, criteria, step)


def _parameter_checksum(module: torch.nn.Module) -> float:
    """A number equal on replicas with equal weights (to check that the ranks stayed in step)."""
    with torch.no_grad():
        return float(sum(p.double().mul(1.0 + (i % 7)).sum() for i, p in enumerate(module.parameters())))


@dataclass
class TrainConfig:
    """Settings of the shared trainer (a variant's ``TRAIN_DEFAULTS`` and preset give its own defaults).

    Attributes:
        iterations: total optimisation steps.
        batch_size: frames per step.
        lr: Adam learning rate at the start.
        lr_final: learning rate at the last step, reached by exponential decay (``None``: constant).
        betas: Adam betas.
        checkpoint_every: iterations between checkpoints.
        sample_every: iterations between sample images (0: never).
        seed: RNG seed.
        autocast: bf16 autocast of the renderer's networks on CUDA (ignored on CPU; geometry and losses stay
            float32).
        grad_clip: clip the gradient norm to this (``None``: no clipping).
        max_seconds: stop after this much training time (summed over resumed runs), whatever the iteration;
            the learning rate then decays over the time budget instead of the iterations.
        snapshot_every_s: also keep the model's weights every this many seconds of training in
            ``snapshots/<iteration>.pt`` (with the training time), e.g. to measure quality against time.
    """

    iterations: int = 2000
    batch_size: int = 1
    lr: float = 1e-4
    lr_final: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    checkpoint_every: int = 250
    sample_every: int = 250
    seed: int = 0
    autocast: bool = True
    grad_clip: float | None = None
    max_seconds: float | None = None
    snapshot_every_s: float | None = None

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.lr_final is not None and not self.lr_final > 0:
            raise ValueError(f"final learning rate must be > 0, got {self.lr_final}")
        if self.max_seconds is not None and not (self.max_seconds > 0 and math.isfinite(self.max_seconds)):
            raise ValueError(f"the time budget must be a positive number of seconds, got {self.max_seconds}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def lr_factor(self, iteration: int, elapsed_s: float = 0.0) -> float:
        """Multiplier of ``lr`` at 1-based ``iteration`` (exponential decay to ``lr_final`` over the iterations,
        or over ``max_seconds`` of training when that is set)."""
        if self.lr_final is None:
            return 1.0
        if self.max_seconds:
            progress = min(elapsed_s / self.max_seconds, 1.0)
        elif self.iterations <= 1:
            return 1.0
        else:
            progress = min(iteration - 1, self.iterations - 1) / (self.iterations - 1)
        return (self.lr_final / self.lr) ** progress


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"])
    python = state["python"]
    if isinstance(python, tuple) and len(python) == 3:  # a version-1 checkpoint stored random.getstate()
        random.setstate(python)
    else:
        random.setstate((state["python_version"], tuple(python), state.get("python_gauss")))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_sample_image(path: Path, pred: torch.Tensor, target: torch.Tensor) -> Path:
    """Write ``pred | target`` (each (3, H, W) in [0, 1]) side by side as a PNG, atomically."""
    import imageio.v3 as iio

    row = torch.cat([pred, target], dim=-1).clamp(0, 1).float()
    array = (row.permute(1, 2, 0).detach().cpu().numpy() * 255).round().astype("uint8")
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, array, extension=".png")
    return path


def plot_losses(path: Path, history: dict[str, list[float]], max_points: int = 2000) -> Path:
    """The loss history as a PNG (log scale; long histories are averaged down to ``max_points``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = np.asarray(history["step"], float)
    stride = max(1, int(np.ceil(len(steps) / max_points)))
    for name, values in history.items():
        if name != "step" and values and any(v > 0 for v in values):
            n = len(values) // stride * stride or len(values)
            ys = np.asarray(values[:n], float).reshape(-1, min(stride, n)).mean(1)
            xs = steps[:n].reshape(-1, min(stride, n)).mean(1)
            ax.plot(xs, ys, label=name, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_yscale("log")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _check_resumable(state: dict[str, Any], renderer: Renderer, path: Path) -> None:
    """Refuse to resume a checkpoint of another variant, with other options or on other data (a clear error,
    not a crash: a per-frame latent table, for one, only fits the frames it was trained on)."""
    mine = header(renderer)
    hint = "resume with the options of the first run, train under another --name, or pass --restart to start over"
    if state["variant"] != mine["variant"]:
        raise CheckpointError(f"{path} holds a {state['variant']} renderer, not {mine['variant']}", path=path,
                              hint=hint)
    saved_setup = dict(state.get("setup") or {})
    keys = ("image_size", "n_expression") + (("train_frames", "frames_key") if renderer.frame_bound else ())
    for key in keys:
        if saved_setup.get(key) and saved_setup[key] != mine["setup"][key]:
            raise CheckpointError(f"the checkpoint in {path.parent} was trained on other data ({key} "
                                  f"{saved_setup[key]} then, {mine['setup'][key]} now: clips or --holdout changed)",
                                  path=path, hint=hint)
    theirs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(state.get("options", {})).items()}
    ours = json.loads(json.dumps(mine["options"]))
    differ = sorted(k for k in ours if k in theirs and theirs[k] != ours[k])
    if differ:
        detail = ", ".join(f"{k} {theirs[k]} (checkpoint) vs {ours[k]} (now)" for k in differ[:4])
        raise CheckpointError(f"the checkpoint in {path.parent} was trained with other options ({detail})",
                              path=path, hint=hint)


def _write_prepare_report(renderer: Renderer, out_dir: Path) -> None:
    """``prepare.json`` and the pictures of :meth:`Renderer.prepare_report` (nothing when it has none)."""
    figures, pictures = renderer.prepare_report()
    if figures:
        atomic_write_json(out_dir / "prepare.json", figures)
    for name, picture in pictures.items():
        import imageio.v3 as iio

        with atomic_path(out_dir / f"{name}.png") as tmp:
            iio.imwrite(tmp, picture, extension=".png")


@contextlib.contextmanager
def _logging(renderer: Renderer, log: Callable[[str], None] | None) -> Iterator[None]:
    """``renderer.log`` is ``log`` inside the block (a renderer logs only while the trainer lets it: its own
    preparation, never its training steps)."""
    renderer.log = log
    try:
        yield
    finally:
        renderer.log = None


def frame_drawer(weights: Any, n: int) -> Callable[[int], list[int]]:
    """``draw(k)``: k frame indices in [0, n), uniform, or in proportion to ``weights`` ((n,), or None).
    Draws with :mod:`random`, whose state the checkpoint keeps (a resumed run draws what the run would have)."""
    if weights is None:
        return lambda k: [random.randrange(n) for _ in range(k)]
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != n or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"frame weights must be {n} finite non-negative numbers with a positive sum")
    cumulative = np.cumsum(w).tolist()
    frames = range(n)
    return lambda k: random.choices(frames, cum_weights=cumulative, k=k)


def train(renderer: Renderer, source: Any, out_dir: Path, config: TrainConfig, device: str = "cpu",
          progress: Callable[[int, int, str], None] | None = None,
          artifact: Callable[[Path, str], None] | None = None,
          log: Callable[[str], None] | None = None, dist_env: DistEnv | None = None) -> dict[str, Any]:
    """Train (or resume) ``renderer`` on ``source`` (a :class:`~core.renderers.data.FrameSource`) in ``out_dir``.

    ``progress(done, total, message)`` may raise :class:`core.jobs.context.JobCancelled`: a checkpoint is
    written, then it propagates. ``dist_env``: this process's rank in a distributed run (its process group
    joined); only rank 0 writes and reports. Returns a summary (iterations, timing, final losses).
    """
    env = dist_env or DistEnv()
    writer = env.is_writer
    if not writer:
        progress = artifact = log = None
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    renderer = renderer.to(device).train()
    criteria = renderer.criteria().to(device)
    optimizer = torch.optim.Adam(renderer.param_groups(config.lr), lr=config.lr, betas=config.betas)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    adversaries = {name: torch.optim.Adam(module.parameters(), lr=config.lr, betas=config.betas)
                   for name, module in criteria.items() if hasattr(module, "discriminator_loss")}
    history: dict[str, list[float]] = {"step": [], "loss": []}
    start = 0
    elapsed_before = 0.0  # training seconds of earlier runs of this model (a time budget spans resumes)
    if ckpt_path.exists():
        state = read_checkpoint(ckpt_path, device)
        _check_resumable(state, renderer, ckpt_path)
        try:
            renderer.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"the checkpoint in {out_dir} does not fit this {renderer.variant} renderer "
                                  f"({str(exc).splitlines()[0]})", path=ckpt_path,
                                  hint="pass --restart to start over, or train under another --name") from None
        train_state = state.get("train") or {}
        if train_state.get("criteria"):
            criteria.load_state_dict(train_state["criteria"], strict=False)
        if (train_state.get("optimizers") or {}).get("model"):
            optimizer.load_state_dict(train_state["optimizers"]["model"])
        for name, opt in adversaries.items():
            saved = (train_state.get("criteria_optimizers") or {}).get(name)
            if saved:
                opt.load_state_dict(saved)
        history = {k: list(v) for k, v in (train_state.get("history") or history).items()}
        history.setdefault("loss", [])
        start = int(train_state.get("iteration", 0))
        elapsed_before = float(train_state.get("elapsed_s", 0.0))
        _set_rng_state(train_state.get("rng"))
        if log:
            log(f"resuming {renderer.variant} training at iteration {start} of {config.iterations}")
    else:
        with _logging(renderer, log):
            renderer.prepare(source)
        if writer:
            _write_prepare_report(renderer, out_dir)
    if env.active and env.rank > 0:  # rank 0 keeps its (saved) stream; the others draw other frames
        random.seed(config.seed * 7919 + env.rank * 104729 + start)
        torch.manual_seed(config.seed * 7919 + env.rank * 104729 + start)
    if writer:
        atomic_write_json(out_dir / "config.json", {"train": asdict(config), **header(renderer)})
        atomic_write_json(out_dir / HEADER, header(renderer))
    step_module: torch.nn.Module = _TrainStepModule(renderer)
    if env.active:
        from torch.nn.parallel import DistributedDataParallel

        cuda = torch.device(device).type == "cuda"
        # find_unused_parameters: a stage may leave parameters out (the tri-plane's coarse stage, a late GAN term)
        step_module = DistributedDataParallel(step_module, device_ids=[env.local_rank] if cuda else None,
                                              find_unused_parameters=True)

    # Only what the criteria learn is saved (a frozen perceptual network's weights would add ~40 MB per file).
    learned = {name for name, p in criteria.named_parameters() if p.requires_grad}

    def save(iteration: int) -> None:
        if not writer:
            return
        payload = {**header(renderer), "model": renderer.state_dict(),
                   "train": {"optimizers": {"model": optimizer.state_dict()},
                             "criteria": {k: v for k, v in criteria.state_dict().items() if k in learned},
                             "criteria_optimizers": {n: o.state_dict() for n, o in adversaries.items()},
                             "history": history, "iteration": iteration, "rng": _rng_state(),
                             "elapsed_s": elapsed_before + time.perf_counter() - t0, "config": asdict(config)}}
        save_checkpoint(payload, ckpt_path)
        atomic_write_json(out_dir / "losses.json", history)
        plot_losses(out_dir / "loss.png", history)
        if artifact:
            artifact(ckpt_path, "checkpoint")
            artifact(out_dir / "losses.json", "losses")

    def snapshot(iteration: int, elapsed: float) -> None:
        if not writer:
            return
        save_checkpoint({**header(renderer), "model": renderer.state_dict(), "iteration": iteration,
                         "elapsed_s": elapsed}, out_dir / "snapshots" / f"{iteration:07d}.pt")

    n = len(source)
    if n == 0:
        raise ValueError("no training frames")
    with _logging(renderer, log):
        renderer.attach_training_frames(source)
    draw = frame_drawer(renderer.frame_weights(source), n)
    next_snapshot = config.snapshot_every_s if config.snapshot_every_s else None
    use_autocast = config.autocast and torch.device(device).type == "cuda"
    renderer.amp_dtype = torch.bfloat16 if use_autocast else None  # the networks only (Renderer.network_autocast)
    iteration = start
    t0 = time.perf_counter()
    stopped_by_time = stopped_by_rank0 = False
    steps_before = len(history["step"])
    try:
        for iteration in range(start + 1, config.iterations + 1):
            elapsed = elapsed_before + time.perf_counter() - t0
            if env.active:  # one clock and one stop for every rank
                elapsed, stop = agree(elapsed, False)
                if stop:
                    stopped_by_rank0, iteration = True, iteration - 1
                    break
            if config.max_seconds and elapsed >= config.max_seconds:
                stopped_by_time, iteration = True, iteration - 1
                save(iteration)
                if next_snapshot is not None:
                    snapshot(iteration, elapsed)
                break
            # with a time budget the iteration count is only a cap: progress is whichever is further along
            done = max(iteration / config.iterations, elapsed / config.max_seconds if config.max_seconds else 0.0)
            step = TrainStep(iteration, config.iterations, min(done, 1.0))
            factor = config.lr_factor(iteration, elapsed)
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            batch = source.batch(draw(config.batch_size), device)
            renderer.before_step(step)
            optimizer.zero_grad()
            out, terms = step_module(batch, criteria, step)
            loss = torch.stack([t.float() for t in terms.values()]).sum()
            diverged = not bool(torch.isfinite(loss))
            if env.active:  # every rank stops together (the gradients are shared)
                _, diverged = agree(0.0, diverged)
            if diverged:
                raise FloatingPointError(f"the {renderer.variant} loss became {loss.item()} at iteration "
                                         f"{iteration}; lower the learning rate (--lr) and restart")
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(renderer.parameters(), config.grad_clip)
            optimizer.step()
            record: dict[str, float] = {}
            for name, (real, fake) in renderer.adversarial_pairs(batch, out, step).items():
                adversaries[name].zero_grad()
                d_loss = criteria[name].discriminator_loss(real, fake.detach())
                d_loss.backward()
                if env.active:
                    average_gradients(criteria[name].parameters())
                adversaries[name].step()
                record[f"{name}_d"] = d_loss.item()
            renderer.after_step(step, batch)
            record.update({k: v.item() for k, v in terms.items()})
            history["step"].append(iteration)
            history["loss"].append(loss.item())
            for key, value in record.items():
                values = history.setdefault(key, [])
                values.extend([0.0] * (len(history["step"]) - 1 - len(values)))  # a term that starts late
                values.append(value)
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                save(iteration)
            if next_snapshot is not None and elapsed_before + time.perf_counter() - t0 >= next_snapshot:
                snapshot(iteration, elapsed_before + time.perf_counter() - t0)
                next_snapshot += config.snapshot_every_s
            if writer and config.sample_every and iteration % config.sample_every == 0:
                sample = write_sample(renderer, batch, out_dir / "samples" / f"{iteration:06d}.png")
                if artifact:
                    artifact(sample, "image")
            if progress:
                shown = " ".join(f"{k} {v:.4f}" for k, v in list(record.items())[:3])
                if config.max_seconds:  # a time budget: progress in seconds of it
                    spent = min(elapsed_before + time.perf_counter() - t0, config.max_seconds)
                    progress(int(spent), int(config.max_seconds), f"iteration {iteration} {shown}")
                else:
                    progress(iteration, config.iterations, shown)
    except BaseException as exc:
        completed = history["step"][-1] if history["step"] else start
        if completed > start:  # keep what was learned; resume continues from here
            save(completed)
        if env.active and writer and not isinstance(exc, FloatingPointError | RuntimeError):
            with contextlib.suppress(RuntimeError):  # a cancel: the other ranks stop at their next step
                agree(0.0, True)
        raise
    finally:
        renderer.amp_dtype = None
    seconds = time.perf_counter() - t0
    ranks: list[dict[str, float]] = []
    if env.active and not stopped_by_rank0:
        steps = len(history["step"]) - steps_before
        every = gather_numbers([float(steps), _parameter_checksum(renderer)])
        ranks = [{"rank": r, "steps": int(s), "checksum": c} for r, (s, c) in enumerate(every)]
    summary = {"variant": renderer.variant, "iterations": iteration, "resumed_from": start,
               "stopped_by_time": stopped_by_time, "training_seconds": elapsed_before + seconds,
               "final_loss": history["loss"][-1] if history["loss"] else None,
               "final_terms": {k: v[-1] for k, v in history.items() if k not in ("step", "loss") and v},
               "seconds": seconds, "iterations_per_s": (iteration - start) / max(seconds, 1e-9),
               "train_frames": n}
    if env.active:
        summary["distributed"] = {"world_size": env.world_size, "backend": torch.distributed.get_backend(),
                                  "ranks": ranks, "stopped_by_rank0": stopped_by_rank0,
                                  "frames_per_step": config.batch_size * env.world_size}
    if writer:
        atomic_write_json(out_dir / "summary.json", summary)
    return summary


@torch.no_grad()
def write_sample(renderer: Renderer, batch: RendererBatch, path: Path) -> Path:
    """Render the first frame of ``batch`` in eval mode and save it beside its target."""
    was_training = renderer.training
    renderer.eval()
    try:
        out = renderer(batch[0:1])
    finally:
        renderer.train(was_training)
    assert out.image is not None
    return save_sample_image(path, out.image[0], batch.frames[0])


def read_history(out_dir: Path) -> dict[str, list[float]]:
    return json.loads((out_dir / "losses.json").read_text())
