"""Training the neural-texture renderer: resumable, checkpointed, reporting through the job protocol.

The trainer is independent of where frames come from: a :class:`RendererSample` source (a clip of
the workspace rasterized with its tracked parameters, or synthetic tensors in tests) yields per-frame
tensors; the trainer optimises L1 + style + 0.01 LSGAN with Adam (READ §3.3-3.4), writes
``checkpoint.pt`` atomically every ``checkpoint_every`` iterations and at the end or on cancel, and
resumes from it with optimiser state, iteration, RNG state and loss history, so an interrupted run's
loss curve continues unbroken.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from core.workspace import atomic_path, atomic_write_json

from .losses import StyleLoss, lsgan_discriminator_loss, lsgan_generator_loss
from .model import NeuralTextureConfig, NeuralTextureRenderer, PatchDiscriminator


class RendererSample(Protocol):
    """A source of training frames (all tensors float32, image size H = W = ``size``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """``frame`` (3,H,W) in [0,1], ``uv`` (2,H,W), ``alpha`` (1,H,W), ``uv_window`` (2 W_R,H,W),
        ``audio`` (T_a, D_a) (absent for the static variant)."""
        ...


@dataclass
class RendererTrainConfig:
    """Optimisation settings (READ: Adam 1e-4, batch 1, λ1 = λ_style = 1, λ_GAN = 0.01).

    Attributes:
        iterations: total optimisation steps.
        batch_size: frames per step.
        lr: Adam learning rate of the renderer and the discriminator.
        lambda_l1, lambda_style, lambda_gan: loss weights.
        gan_start: iteration from which the adversarial term is used (lets L1 shape the image first).
        checkpoint_every: iterations between checkpoints.
        sample_every: iterations between sample images (0: never).
        seed: RNG seed.
    """

    iterations: int = 2000
    batch_size: int = 1
    lr: float = 1e-4
    lambda_l1: float = 1.0
    lambda_style: float = 1.0
    lambda_gan: float = 0.01
    gan_start: int = 200
    checkpoint_every: int = 250
    sample_every: int = 250
    seed: int = 0
    model: NeuralTextureConfig = field(default_factory=NeuralTextureConfig)


def _batch(source: RendererSample, indices: Sequence[int], device: str) -> dict[str, torch.Tensor]:
    items = [source[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def save_sample_image(path: Path, pred: torch.Tensor, target: torch.Tensor) -> Path:
    """Write ``pred | target`` side by side as a PNG, atomically."""
    import imageio.v3 as iio

    row = torch.cat([pred, target], dim=-1).clamp(0, 1)
    array = (row.permute(1, 2, 0).detach().cpu().numpy() * 255).round().astype("uint8")
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, array, extension=".png")
    return path


def plot_losses(path: Path, history: dict[str, list[float]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, values in history.items():
        if name != "step" and values:
            ax.plot(history["step"][: len(values)], values, label=name, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_yscale("log")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def train_renderer(source: RendererSample, out_dir: Path, config: RendererTrainConfig,
                   device: str = "cpu",
                   progress: Callable[[int, int, str], None] | None = None,
                   artifact: Callable[[Path, str], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a renderer in ``out_dir``; returns a summary. ``progress`` may raise
    :class:`core.jobs.context.JobCancelled`: a checkpoint is written, then it propagates."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    model = NeuralTextureRenderer(config.model).to(device)
    disc = PatchDiscriminator().to(device)
    opt_g = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=(0.5, 0.999))
    style = StyleLoss().to(device)
    history: dict[str, list[float]] = {"step": [], "l1": [], "style": [], "gan_g": [], "gan_d": []}
    start = 0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        disc.load_state_dict(state["disc"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        history = state["history"]
        start = int(state["iteration"])
        _set_rng_state(state["rng"])
    atomic_write_json(out_dir / "config.json", {**asdict(config), "style_loss": style.kind})

    def save(iteration: int) -> None:
        with atomic_path(ckpt_path) as tmp:
            torch.save({"model": model.state_dict(), "disc": disc.state_dict(), "opt_g": opt_g.state_dict(),
                        "opt_d": opt_d.state_dict(), "history": history, "iteration": iteration,
                        "rng": _rng_state(), "model_config": asdict(config.model)}, tmp)
        atomic_write_json(out_dir / "losses.json", history)
        plot_losses(out_dir / "loss.png", history)
        if artifact:
            artifact(ckpt_path, "checkpoint")
            artifact(out_dir / "losses.json", "losses")

    n = len(source)
    iteration = start
    t0 = time.perf_counter()
    try:
        for iteration in range(start + 1, config.iterations + 1):
            batch = _batch(source, [random.randrange(n) for _ in range(config.batch_size)], device)
            out = model(batch["uv"], batch["alpha"], batch["frame"], batch.get("uv_window"),
                        batch.get("audio"))
            pred, target = out["image"], batch["frame"]
            use_gan = config.lambda_gan > 0 and iteration > config.gan_start
            if use_gan:
                opt_d.zero_grad()
                d_loss = lsgan_discriminator_loss(disc(target), disc(pred.detach()))
                d_loss.backward()
                opt_d.step()
            opt_g.zero_grad()
            l1 = (pred - target).abs().mean()
            st = style(pred, target)
            g_gan = lsgan_generator_loss(disc(pred)) if use_gan else pred.new_zeros(())
            loss = config.lambda_l1 * l1 + config.lambda_style * st + config.lambda_gan * g_gan
            loss.backward()
            opt_g.step()
            history["step"].append(iteration)
            history["l1"].append(l1.item())
            history["style"].append(st.item())
            history["gan_g"].append(g_gan.item())
            history["gan_d"].append(d_loss.item() if use_gan else 0.0)
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                save(iteration)
            if config.sample_every and iteration % config.sample_every == 0:
                sample = save_sample_image(out_dir / "samples" / f"{iteration:06d}.png", pred[0], target[0])
                if artifact:
                    artifact(sample, "image")
            if progress:
                progress(iteration, config.iterations, f"l1 {l1.item():.4f} style {st.item():.4f}")
    except BaseException:
        completed = history["step"][-1] if history["step"] else start
        if completed > start:  # keep what was learned; resume continues from here
            save(completed)
        raise
    seconds = time.perf_counter() - t0
    summary = {"iterations": iteration, "resumed_from": start,
               "final_l1": history["l1"][-1] if history["l1"] else None,
               "seconds": seconds, "iterations_per_s": (iteration - start) / max(seconds, 1e-9),
               "style_loss": style.kind}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def model_config_from(saved: dict[str, Any]) -> NeuralTextureConfig:
    """The architecture recorded in a checkpoint. Settings this version does not know are dropped with a
    warning (a checkpoint written by another version); a real architecture mismatch still fails when the
    weights are loaded, naming the tensors."""
    from dataclasses import fields

    known = {f.name for f in fields(NeuralTextureConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        import logging

        logging.getLogger("emodub.renderer").warning("checkpoint settings not known to this version ignored: %s",
                                                     ", ".join(unknown))
    return NeuralTextureConfig(**{k: v for k, v in saved.items() if k in known})


def load_renderer(out_dir: Path, device: str = "cpu") -> NeuralTextureRenderer:
    """The trained renderer in ``out_dir`` (eval mode)."""
    state = torch.load(out_dir / "checkpoint.pt", map_location=device, weights_only=False)
    model = NeuralTextureRenderer(model_config_from(state["model_config"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


def read_history(out_dir: Path) -> dict[str, list[float]]:
    return json.loads((out_dir / "losses.json").read_text())
