"""Training of the audio-to-expression GAN (READ §3.2) on an actor's workspace clips, resumable.

Per iteration: a batch of ``batch_size`` random ``seq_len``-frame sequences; one discriminator update
(LSGAN: real -> 1, generated -> 0) then one generator update with
``lambda_l1 * L1 + lambda_gan * LSGAN + lambda_vel * L1(velocity)`` (velocity = frame-to-frame
difference), all on standardised parameters, masked where short clips are padded. Adam for both.

Model folder ``ws.model_dir(actor, name)``:

- ``checkpoint.pt``: networks, both optimisers, iteration, RNG states, loss history, statistics, split;
  written atomically every ``checkpoint_every`` iterations (with ``losses.json``), on cancel and at the
  end (with ``loss.png`` too). A new run with the
  same folder continues from it (the loss history continues unbroken; with the same iteration count and
  threads, an interrupted + resumed run computes exactly what an uninterrupted one does).
- ``config.json``: resolved configuration, feature config, params source, split, final metrics.
- ``losses.json``: ``{"step": [...], "l1": [...], "vel": [...], "gan_g": [...], "gan_d": [...],
  "total": [...], "val_step": [...], "val_l1": [...], "val_jaw_corr": [...]}``.
- ``loss.png``: those curves (matplotlib, Agg).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from core.audio.features import AudioFeatureConfig, make_extractor
from core.eval.stats import pearson
from core.expression.a2e import (
    ARTICULATION_MAX_GAIN,
    ARTICULATION_MIN_CORRELATION,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    A2EConfig,
    A2EDiscriminator,
    A2EGenerator,
    A2EModel,
    A2EStats,
    a2e_feature_config,
    slow_part,
    target_names,
)
from core.expression.a2e_data import (
    SPEECH_PRIOR_PREFIX,
    WARP_MARK,
    ClipData,
    SequenceSampler,
    actor_defaults,
    cut_tails,
    load_actor_clips,
    match_target_statistics,
    speech_prior_clips,
    split_groups,
    warped_copies,
)

HISTORY_KEYS: tuple[str, ...] = ("step", "l1", "vel", "gan_g", "gan_d", "total", "val_step", "val_l1",
                                 "val_jaw_corr")


class Reporter(Protocol):
    """What training needs of a job context (:class:`core.jobs.context.JobContext` is one)."""

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None: ...
    def log(self, message: str, level: str = "info") -> None: ...
    def artifact(self, path: str | Path, kind: str) -> None: ...
    def check_cancelled(self) -> None: ...


class NullReporter:
    """A reporter that reports nothing and never cancels (library use, tests)."""

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass

    def artifact(self, path: str | Path, kind: str) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


def compute_stats(clips: Sequence[ClipData]) -> A2EStats:
    """Per-dimension mean/std of features (over every audio frame) and targets (over every frame)."""
    feats = np.concatenate([c.features[:, c.features.shape[1] // 2] for c in clips], 0)  # centre frames
    targets = np.concatenate([c.targets for c in clips], 0).astype(np.float64)
    f_std = feats.std(0)
    t_std = targets.std(0)
    # A parameter that never moves in the training data is predicted as its constant (std 1: no blow-up).
    t_std = np.where(t_std < 1e-6, 1.0, t_std)
    return A2EStats(feats.mean(0).astype(np.float32), np.maximum(f_std, 1e-3).astype(np.float32),
                    targets.mean(0).astype(np.float32), t_std.astype(np.float32))


def init_emotion_offset(generator: A2EGenerator, clips: Sequence[ClipData], stats: A2EStats) -> None:
    """Start the emotion path at the least-squares fit of the standardised targets to the labels.

    ``targets ~ b + emotion @ A`` over every training frame: ``A`` (7, P) goes into the generator's linear
    emotion offset and ``b`` into the decoder's output bias. Adam moves a weight by about ``lr`` per step,
    so at READ's lr 1e-4 an offset of 3 standard deviations (a full smile) would take ~30k iterations to
    learn from zero; starting at the fit, training only refines it. Emotions missing from the data get 0.
    """
    if generator.emotion_offset is None:
        return
    emo = np.concatenate([c.emotion for c in clips]).astype(np.float64)
    y = (np.concatenate([c.targets for c in clips]) - stats.target_mean) / stats.target_std
    design = np.concatenate([np.ones((emo.shape[0], 1)), emo], 1)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)   # (8, P), min-norm for absent
    with torch.no_grad():
        generator.emotion_offset.weight.copy_(torch.as_tensor(coef[1:].T, dtype=torch.float32))
        generator.net.decoder[-1].bias.add_(torch.as_tensor(coef[0], dtype=torch.float32))


def calibrate_articulation(model: A2EModel, clips: Sequence[ClipData]) -> np.ndarray:
    """(P,) gains on the model's articulation (:func:`core.expression.a2e.articulation`) fitted on ``clips``: per
    parameter, the least-squares slope of the clips' fast motion on the predicted one, in [1,
    ARTICULATION_MAX_GAIN], and 1 where the two correlate under ARTICULATION_MIN_CORRELATION. The slope, not the
    ratio of spreads: a parameter the model predicts with little skill
    gets a gain near 1 (its motion would be mostly noise made larger), one it predicts well gets back the
    amplitude L1 training took from it."""
    true_fast, predicted_fast = [], []
    for clip in clips:
        predicted = model.predict_features(clip.features, clip.emotion, smooth=True)
        predicted_fast.append(predicted - slow_part(predicted, model.fps, axis=0))
        target = clip.targets.astype(np.float32)
        true_fast.append(target - slow_part(target, model.fps, axis=0))
    truth, predicted = np.concatenate(true_fast).astype(np.float64), np.concatenate(predicted_fast).astype(np.float64)
    variance = predicted.var(0)
    covariance = ((truth - truth.mean(0)) * (predicted - predicted.mean(0))).mean(0)
    correlation = covariance / np.maximum(np.sqrt(variance * truth.var(0)), 1e-12)
    # Only where the prediction follows the footage: a barely trained network's faint, chance-correlated motion
    # would otherwise get the largest gains.
    skilled = (variance > 1e-12) & (correlation >= ARTICULATION_MIN_CORRELATION)
    gain = np.where(skilled, covariance / np.maximum(variance, 1e-12), 1.0)
    return np.clip(gain, 1.0, ARTICULATION_MAX_GAIN).astype(np.float32)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (B, T, ...) over the frames where ``mask`` (B, T) is 1."""
    m = mask.reshape(*mask.shape, *([1] * (x.ndim - mask.ndim)))
    count = (m.expand_as(x)).sum().clamp_min(1.0)
    return (x * m).sum() / count


def generator_losses(fake: torch.Tensor, real: torch.Tensor,
                     mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 and velocity L1 of (B, T, P) standardised parameters (velocity masked where both frames exist)."""
    l1 = masked_mean((fake - real).abs(), mask)
    vel_mask = mask[:, 1:] * mask[:, :-1]
    vel = masked_mean(((fake[:, 1:] - fake[:, :-1]) - (real[:, 1:] - real[:, :-1])).abs(), vel_mask)
    return l1, vel


class A2ETrainer:
    """Builds (or resumes) the networks for a set of clips and trains them. Used by :func:`train_a2e`."""

    def __init__(self, config: A2EConfig, feature_config: AudioFeatureConfig, train_clips: Sequence[ClipData],
                 val_clips: Sequence[ClipData], expr_names: Sequence[str], fps: float, device: str = "cpu",
                 meta: dict[str, Any] | None = None) -> None:
        self.config = config
        self.feature_config = feature_config
        self.train_clips = list(train_clips)
        self.val_clips = list(val_clips)
        self.expr_names = list(expr_names)
        self.fps = float(fps)
        self.device = device
        self.meta = dict(meta or {})
        c0 = self.train_clips[0]
        self.audio_dim = int(np.prod(c0.features.shape[1:]))
        self.n_params = len(target_names(self.expr_names, config.include_neck))
        torch.manual_seed(config.seed)
        self.generator = A2EGenerator(self.audio_dim, self.n_params, config).to(device)
        self.discriminator = A2EDiscriminator(self.audio_dim, self.n_params, config).to(device)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.stats = compute_stats(self.train_clips)
        init_emotion_offset(self.generator, self.train_clips, self.stats)  # replaced by a resumed state
        self.rng = np.random.default_rng(config.seed)
        self.sampler = SequenceSampler(self.train_clips, config.seq_len)
        self.iteration = 0
        self.history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
        self._acc: dict[str, list[float]] = {k: [] for k in ("l1", "vel", "gan_g", "gan_d", "total")}
        self._t = {k: torch.as_tensor(v, device=device) for k, v in
                   (("fm", self.stats.feat_mean), ("fs", self.stats.feat_std), ("tm", self.stats.target_mean),
                    ("ts", self.stats.target_std))}

    def split(self) -> dict[str, list[str]]:
        return {"train": [c.name for c in self.train_clips], "val": [c.name for c in self.val_clips]}

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": self.config.to_dict(), "feature_config": self.feature_config.to_dict(),
                "expr_names": self.expr_names, "audio_dim": self.audio_dim, "fps": self.fps,
                "stats": self.stats.to_dict(), "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "iteration": self.iteration,
                "history": copy.deepcopy(self.history), "pending": copy.deepcopy(self._acc),
                "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "split": self.split(), "defaults": {k: v.tolist() for k, v in actor_defaults(self.train_clips).items()},
                **self.meta}

    def load_state(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.iteration = int(state["iteration"])
        self.history = {k: list(state["history"].get(k, [])) for k in HISTORY_KEYS}
        self._acc = {k: list(v) for k, v in state.get("pending", {}).items()} or self._acc
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.stats = A2EStats.from_dict(state["stats"])  # the statistics the networks were trained with
        self.stats.articulation_gain = None  # fitted again when training ends
        for key, value in (("fm", self.stats.feat_mean), ("fs", self.stats.feat_std),
                           ("tm", self.stats.target_mean), ("ts", self.stats.target_std)):
            self._t[key] = torch.as_tensor(value, device=self.device)

    def model(self) -> A2EModel:
        """An inference model sharing the current generator weights."""
        gen = A2EGenerator(self.audio_dim, self.n_params, self.config)
        gen.load_state_dict(self.generator.state_dict())
        return A2EModel(self.config, self.feature_config, self.stats, self.expr_names, self.fps, gen,
                        actor_defaults(self.train_clips), self.device)

    # -- one iteration ---------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, ...]:
        b = self.sampler.sample(self.rng, self.config.batch_size)
        d = self.device
        feats = torch.as_tensor(b["features"], device=d)
        B, T = feats.shape[:2]
        audio = ((feats - self._t["fm"]) / self._t["fs"]).reshape(B, T, -1)
        emo = torch.as_tensor(b["emotion"], device=d)
        real = (torch.as_tensor(b["targets"], device=d) - self._t["tm"]) / self._t["ts"]
        mask = torch.as_tensor(b["mask"], device=d)
        return audio, emo, real, mask

    def step(self) -> dict[str, float]:
        cfg = self.config
        audio, emo, real, mask = self._batch()
        fake = self.generator(audio, emo)
        gan_d = torch.zeros((), device=self.device)
        if cfg.use_gan:
            self.opt_d.zero_grad(set_to_none=True)
            d_real = self.discriminator(real, audio, emo)
            d_fake = self.discriminator(fake.detach(), audio, emo)
            gan_d = 0.5 * (masked_mean((d_real - 1.0) ** 2, mask) + masked_mean(d_fake**2, mask))
            gan_d.backward()
            self.opt_d.step()
        self.opt_g.zero_grad(set_to_none=True)
        l1, vel = generator_losses(fake, real, mask)
        gan_g = torch.zeros((), device=self.device)
        if cfg.use_gan:
            for p in self.discriminator.parameters():  # no discriminator gradients in the generator step
                p.requires_grad_(False)
            gan_g = masked_mean((self.discriminator(fake, audio, emo) - 1.0) ** 2, mask)
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
        total = cfg.lambda_l1 * l1 + cfg.lambda_gan * gan_g + cfg.lambda_vel * vel
        total.backward()
        self.opt_g.step()
        self.iteration += 1
        values = {"l1": l1.item(), "vel": vel.item(), "gan_g": gan_g.item(), "gan_d": gan_d.item(),
                  "total": total.item()}
        for k, v in values.items():
            self._acc[k].append(v)
        if self.iteration % cfg.log_every == 0:
            self.history["step"].append(self.iteration)
            for k in self._acc:
                self.history[k].append(float(np.mean(self._acc[k])))
                self._acc[k] = []
        return values

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Mean standardised L1 and jaw-opening correlation on the held-out clips (no smoothing)."""
        if not self.val_clips:
            return {}
        model = self.model()
        l1s, pred_jaw, true_jaw = [], [], []
        E = len(self.expr_names)
        for clip in self.val_clips:
            raw = model.predict_features(clip.features, clip.emotion, smooth=False)
            l1s.append(float(np.mean(np.abs((raw - clip.targets) / self.stats.target_std))))
            pred_jaw.append(raw[:, E])
            true_jaw.append(clip.targets[:, E])
        out = {"val_l1": float(np.mean(l1s)),
               "val_jaw_corr": pearson(np.concatenate(pred_jaw), np.concatenate(true_jaw), undefined=0.0)}
        self.history["val_step"].append(self.iteration)
        self.history["val_l1"].append(out["val_l1"])
        self.history["val_jaw_corr"].append(out["val_jaw_corr"])
        return out


def plot_losses(history: dict[str, list[float]], path: Path, title: str = "a2e") -> Path:
    """Write the loss curves (training losses, weighted as in the objective, and validation) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.workspace import atomic_path

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.13, top=0.9, wspace=0.35)  # tight_layout costs ~1 s
    steps = history.get("step", [])
    for key, label in (("l1", "L1"), ("vel", "velocity L1"), ("gan_g", "LSGAN (G)"), ("gan_d", "LSGAN (D)"),
                       ("total", "total")):
        values = history.get(key, [])
        if values and any(v > 0 for v in values):
            ax.plot(steps[: len(values)], values, label=label)
    ax.set_xlabel("iteration")
    ax.set_title(f"{title}: training losses")
    if ax.get_lines():
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    if history.get("val_step"):
        ax2.plot(history["val_step"], history["val_l1"], "o-", label="val L1 (standardised)")
        ax2b = ax2.twinx()
        ax2b.plot(history["val_step"], history["val_jaw_corr"], "s--", color="tab:green",
                  label="val jaw corr")
        ax2b.set_ylabel("jaw correlation")
        ax2b.set_ylim(-0.1, 1.0)
        ax2.legend(loc="upper left", fontsize=8)
        ax2b.legend(loc="upper right", fontsize=8)
    ax2.set_xlabel("iteration")
    ax2.set_title("validation (held-out clips)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def _write_outputs(trainer: A2ETrainer, model_dir: Path, reporter: Reporter, extra: dict[str, Any],
                   plot: bool = True) -> Path:
    from core.io.checkpoint import save_checkpoint
    from core.workspace import atomic_write_json

    ckpt = model_dir / "checkpoint.pt"
    save_checkpoint(trainer.state(), ckpt)
    atomic_write_json(model_dir / "losses.json", trainer.history)
    if plot:  # periodic checkpoints skip the PNG (about a second of matplotlib); losses.json has the data
        plot_losses(trainer.history, model_dir / "loss.png", title=model_dir.name)
    config = {"a2e": trainer.config.to_dict(), "features": trainer.feature_config.to_dict(),
              "iteration": trainer.iteration, "expr_names": trainer.expr_names, "fps": trainer.fps,
              "target_names": target_names(trainer.expr_names, trainer.config.include_neck),
              "split": trainer.split(),
              **trainer.meta, **extra}
    atomic_write_json(model_dir / "config.json", config)
    reporter.artifact(ckpt, "checkpoint")
    reporter.artifact(model_dir / "losses.json", "losses")
    reporter.artifact(model_dir / "loss.png", "plot")
    return ckpt


def train_a2e(ws: Any, actor: str, config: A2EConfig | None = None, model_name: str = "a2e",
              reporter: Reporter | None = None, restart: bool = False, device: str = "cpu",
              feature_config: AudioFeatureConfig | None = None) -> dict[str, Any]:
    """Train (or resume training) an actor's a2e model from the workspace's clips.

    Args:
        ws: the workspace.
        actor: actor name.
        config: training configuration (default :class:`A2EConfig`). On resume the checkpoint's
            architecture is kept; ``iterations`` may be raised to train longer.
        model_name: model folder name (``a2e``; ``a2e_l1`` for the L1-only ablation...).
        reporter: progress/log/artifact/cancel (a :class:`JobContext`); default silent.
        restart: ignore an existing checkpoint and start over.
        device: ``cpu`` or ``cuda``.
        feature_config: audio feature configuration (default :func:`core.expression.a2e.a2e_feature_config`).

    Returns:
        Outputs: model dir, checkpoint, iteration, final losses, validation metrics, params source.

    Raises:
        A2EDataError: no usable clips. JobCancelled (from the reporter): after saving a checkpoint.
    """
    from core.workspace import validate_name

    reporter = reporter or NullReporter()
    config = config or A2EConfig()
    validate_name(model_name, "model name")
    model_dir = ws.model_dir(actor, model_name)
    ckpt_path = model_dir / "checkpoint.pt"
    state: dict[str, Any] | None = None
    if ckpt_path.is_file() and not restart:
        from core.io.checkpoint import incompatible, load_checkpoint

        state = load_checkpoint(ckpt_path, what="a2e checkpoint")
        if state.get("format") != CHECKPOINT_FORMAT:
            raise incompatible(ckpt_path, "a2e checkpoint", "it is not an a2e checkpoint")
        saved = A2EConfig.from_dict(state["config"])
        # Architecture, data and loss settings come from the checkpoint; only the length may change.
        config = A2EConfig.from_dict({**saved.to_dict(), "iterations": config.iterations})
        feature_config = AudioFeatureConfig.from_dict(state["feature_config"])
        reporter.log(f"resuming {model_name} from iteration {state['iteration']} ({ckpt_path})")
    feature_config = feature_config or a2e_feature_config(config.speech_prior)
    extractor = make_extractor(config.feature, feature_config, config.phoneme_model, device)
    with ws.lock(f"train/{actor}/{model_name}"):
        clips, expr_names, source = load_actor_clips(
            ws, actor, extractor, config.params_source, config.include_neck, log=reporter.log,
            progress=lambda d, t: reporter.progress("load clips", d, t, "audio features"))
        fps = float(ws.clip(actor, clips[0].name).get("fps") or 25.0)
        whole_clips = clips
        actor_clips, tails = cut_tails(whole_clips, config.tail_holdout)  # no tails without tail_holdout
        clips = actor_clips + tails
        copies: list[ClipData] = warped_copies(
            ws, actor, whole_clips, actor_clips,
            {warp: make_extractor(config.feature, replace(feature_config, warp=warp), config.phoneme_model, device)
             for warp in config.voice_warps})
        if copies:
            reporter.log(f"voice warps {config.voice_warps}: {len(copies)} copies of the footage heard as other "
                         "voices join the training clips")
        if config.speech_prior > 0:
            prior = speech_prior_clips(config.speech_prior, extractor, config.include_neck, fps, expr_names,
                                       config.seed, voices=config.speech_prior_voices)
            prior = match_target_statistics(prior, actor_clips)
            clips = clips + prior
            reporter.log(f"speech prior: {config.speech_prior} synthetic sentences "
                         f"({sum(c.n_frames for c in prior)} frames"
                         f"{', many voices' if config.speech_prior_voices else ''}) join the training clips")
        by_name = {c.name: c for c in clips + copies}
        if state is not None:
            missing = [n for n in state["split"]["train"] + state["split"]["val"] if n not in by_name]
            if missing:
                raise ValueError(f"cannot resume: clips {missing[:5]} of the checkpoint's split are gone; "
                                 "restore them or train from scratch (--restart)")
            train_names, val_names = state["split"]["train"], state["split"]["val"]
        else:
            if tails:  # the clips' ends are held out, all the rest trains
                train_names, val_names = [c.name for c in actor_clips], [c.name for c in tails]
            else:
                train_names, val_names = split_groups(actor_clips, config.val_fraction, config.seed)
            train_names += [c.name for c in clips[len(actor_clips) + len(tails):]]  # the prior is never held out
            trained = set(train_names)
            train_names += [c.name for c in copies if c.name.split(WARP_MARK)[0] in trained]
        meta = {"actor": actor, "model_name": model_name, "params_source": source, "feature": config.feature}
        trainer = A2ETrainer(config, feature_config, [by_name[n] for n in train_names],
                             [by_name[n] for n in val_names], expr_names, fps, device, meta)
        if state is not None:
            trainer.load_state(state)
        reporter.log(f"a2e {model_name}: {len(train_names)} training clips "
                     f"({sum(by_name[n].n_frames for n in train_names)} frames), {len(val_names)} held out; "
                     f"params from {source}; {'L1+GAN' if config.use_gan else 'L1 only'}; device {device}")
        stage = f"train {model_name}"
        start = time.perf_counter()
        last: dict[str, float] = {}
        val: dict[str, float] = {}
        try:
            reporter.progress(stage, trainer.iteration, config.iterations, "starting")
            while trainer.iteration < config.iterations:
                last = trainer.step()
                it = trainer.iteration
                if it % config.val_every == 0 or it == config.iterations:
                    val = trainer.validate()
                if it % config.checkpoint_every == 0 and it < config.iterations:
                    _write_outputs(trainer, model_dir, NullReporter(), {}, plot=False)
                    reporter.artifact(model_dir / "losses.json", "losses")
                if it % config.log_every == 0 or it == config.iterations:
                    msg = (f"L1 {last['l1']:.3f} vel {last['vel']:.4f} G {last['gan_g']:.3f} "
                           f"D {last['gan_d']:.3f}" + (f" | val L1 {val['val_l1']:.3f} jaw r "
                                                        f"{val['val_jaw_corr']:.2f}" if val else ""))
                    reporter.progress(stage, it, config.iterations, msg)
                else:
                    reporter.check_cancelled()
        except BaseException:
            _write_outputs(trainer, model_dir, reporter, {"interrupted": True})
            reporter.log(f"saved checkpoint at iteration {trainer.iteration}; run the same command to resume")
            raise
        seconds = time.perf_counter() - start
        if config.articulation:
            own = [c for c in trainer.train_clips if WARP_MARK not in c.name and not c.name.startswith(
                SPEECH_PRIOR_PREFIX)]
            trainer.stats.articulation_gain = calibrate_articulation(trainer.model(), own)
            history = trainer.history
            if history["val_step"] and history["val_step"][-1] == trainer.iteration:  # measured again, with the gain
                for key in ("val_step", "val_l1", "val_jaw_corr"):
                    history[key].pop()
            val = {}
        if not val and trainer.val_clips:
            val = trainer.validate()
        ckpt = _write_outputs(trainer, model_dir, reporter, {"interrupted": False, "val": val,
                                                             "train_seconds_last_run": seconds})
        record = {"path": ws.rel(model_dir), "kind": "a2e", "iteration": trainer.iteration,
                  "use_gan": config.use_gan, "params_source": source, **val}
        ws.set_model(actor, model_name, record)
    history = trainer.history
    return {"model_dir": str(model_dir), "checkpoint": str(ckpt), "iteration": trainer.iteration,
            "params_source": source, "train_clips": len(train_names), "val_clips": len(val_names),
            "final": {k: history[k][-1] for k in ("l1", "vel", "gan_g", "gan_d", "total") if history[k]},
            "val": val, "seconds": seconds}
