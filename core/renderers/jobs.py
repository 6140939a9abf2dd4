"""Job kinds of every renderer variant: ``train.renderer`` and ``eval.renderer``.

CLI::

    emodub train renderer -w W --actor A [--renderer lipnerf] [--preset cpu] [--set KEY=VALUE ...]
                          [--iterations N] [--name NAME] [--holdout 0.2] [--restart]
    emodub eval renderer -w W --actor A [--name NAME | --renderer VARIANT] [--json]
    emodub renderers [--json]                       # the variants, their options and presets

The trained model goes to ``actors/<A>/models/<name>`` (default name: the variant's); after training the
held-out figures are measured (:mod:`core.renderers.evaluate`) and recorded, so the dub can pick the actor's
best renderer. Top-level imports stay light (torch is imported inside the functions).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import POSITIVE, Arg, Bounds, job_kind

from .catalog import DEFAULT_VARIANT, best_renderer, trained_renderers

_DEVICE = Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])


def parse_settings(items: Any) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs (a list of strings) or a dict -> a dict of option values (strings are typed
    later against the variant's options)."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise JobFailed(f"--set {item!r} is not KEY=VALUE", code="bad_params",
                            hint="e.g. --set unet_base=32; `emodub renderers` lists each renderer's options")
        out[key.strip()] = value.strip()
    return out


def _train_settings(variant: str, preset: str | None, p: dict[str, Any]) -> Any:
    from dataclasses import fields

    from .spec import preset_train_settings
    from .train import TrainConfig

    settings = preset_train_settings(variant, preset)
    for key in ("iterations", "batch_size", "lr", "lr_final", "seed"):
        if p.get(key) is not None:
            settings[key] = p[key]
    if p.get("minutes") is not None:
        settings["max_seconds"] = float(p["minutes"]) * 60.0
        if p.get("iterations") is None:
            settings["iterations"] = 10**7  # the time budget decides
    iterations = int(settings.get("iterations", 2000))
    every = max(10, min(250, iterations // 4)) if not settings.get("max_seconds") else 250
    settings.setdefault("checkpoint_every", every)
    settings.setdefault("sample_every", every)
    known = {f.name for f in fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in settings.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise JobFailed(f"invalid training settings: {exc}", code="bad_params") from None


@dataclass
class _Training:
    """What one ``train.renderer`` run trains, resolved from its params (the same on every rank)."""

    variant: str
    name: str
    holdout: float
    config: Any
    out: Path
    train_src: Any
    held: Any
    split: Any
    setup: Any
    renderer: Any


def _training(ws: Any, p: dict[str, Any]) -> _Training:
    """Resolve a ``train.renderer`` job's params into the data and the renderer to train (no writes)."""
    from .data import actor_sources
    from .registry import build
    from .spec import BadRendererOption, UnknownRenderer, get_variant

    variant = str(p.get("renderer") or DEFAULT_VARIANT)
    holdout = float(p.get("holdout", 0.2))
    if not 0.0 <= holdout < 1.0:
        raise JobFailed(f"--holdout must be in [0, 1), got {holdout}", code="bad_params")
    try:
        get_variant(variant)
        options = parse_settings(p.get("options"))
        config = _train_settings(variant, p.get("preset"), p)
        needs = _needs_of(variant, p.get("preset"), options)
    except (UnknownRenderer, BadRendererOption) as exc:
        raise JobFailed(str(exc), code="bad_params", hint="`emodub renderers` lists the variants and options") from None
    name = p.get("name") or variant
    out = ws.model_dir(p["actor"], name)
    train_src, held, split = actor_sources(ws, p["actor"], needs, holdout)
    import hashlib
    import json

    import torch

    from core.renderers.base import RendererSetup

    frames_key = hashlib.sha256(json.dumps(split, sort_keys=True).encode()).hexdigest()[:16]
    try:
        feature_widths = train_src.feature_widths()
    except ValueError as exc:
        raise JobFailed(str(exc), code="bad_params", hint="`emodub features import` again with one network") from None
    setup = RendererSetup(image_size=train_src.size, face_model=train_src.face_model_spec,
                          train_frames=train_src.train_frames, fps=train_src.clips[0].clip.fps,
                          n_expression=train_src.face_model().n_expr, frames_key=frames_key,
                          frame_features=feature_widths)
    torch.manual_seed(config.seed)  # the initial weights follow --seed too, not only the training order
    try:
        renderer = build(variant, setup, p.get("preset"), options)
    except BadRendererOption as exc:
        raise JobFailed(str(exc), code="bad_params", hint="`emodub renderers` lists the options") from None
    return _Training(variant, name, holdout, config, out, train_src, held, split, setup, renderer)


def train_follower(params: dict[str, Any], workspace: str, env: Any) -> dict[str, Any]:
    """Rank ``env.rank`` > 0 of a distributed ``train.renderer``: train beside rank 0, write nothing."""
    from core.jobs.context import resolve_device
    from core.workspace import Workspace
    from core.workspace.atomic import forbid_writes

    from .distributed import process_group, rank_device
    from .train import train

    forbid_writes(f"rank {env.rank} of a distributed training (only rank 0 writes)")
    job = _training(Workspace.open(workspace), params)
    device = rank_device(resolve_device(params.get("device")), env)
    with process_group(env, device):
        return train(job.renderer, job.train_src, job.out, job.config, device=device, dist_env=env)


@job_kind("train.renderer", help="train a renderer variant on an actor's tracked clips (`emodub renderers` lists them)",
          args=[Arg("--actor", required=True),
                Arg("--renderer", default=DEFAULT_VARIANT, help=f"renderer variant (default {DEFAULT_VARIANT})"),
                Arg("--preset", default=None, help="the variant's named option set (e.g. cpu, paper, static)"),
                Arg("--set", action="append", default=None, dest="options", metavar="KEY=VALUE",
                    spec_types=(list, dict),
                    help="a variant option (repeatable); `emodub renderers` lists them"),
                Arg("--name", default=None, help="model name (default: the variant's name)"),
                Arg("--iterations", type=int, default=None, help="training steps (default: the variant's)"),
                Arg("--minutes", type=float, default=None, bounds=POSITIVE,
                    help="train for this long (the learning rate decays over it); with --iterations, whichever "
                         "comes first"),
                Arg("--batch-size", type=int, default=None, dest="batch_size"),
                Arg("--lr", type=float, default=None, help="Adam learning rate (default: the variant's)"),
                Arg("--lr-final", type=float, default=None, dest="lr_final",
                    help="decay the learning rate exponentially to this by the last step"),
                Arg("--holdout", type=float, default=0.2, help="fraction of each clip's last frames held out"),
                Arg("--seed", type=int, default=None),
                Arg("--restart", action="store_true", help="discard a checkpoint of an earlier run and start over"),
                Arg("--eval", action=argparse.BooleanOptionalAction, default=True, dest="evaluate",
                    help="measure the held-out frames after training (default on)"),
                Arg("--nproc", type=int, default=1, bounds=Bounds(1, 64),
                    help="train on this many processes of this machine with torch.distributed (one per GPU; gloo "
                         "on CPU); each step sees nproc x batch-size frames. For several machines launch with "
                         "torchrun instead (core/renderers/distributed.py)"),
                _DEVICE])
def run_train_renderer(ctx: JobContext) -> dict[str, Any]:
    from .distributed import DistEnv, local_ranks, process_group, rank_device
    from .evaluate import evaluate_model
    from .registry import CHECKPOINT
    from .train import train

    p = ctx.params
    env = DistEnv.from_environ()  # launched by torchrun: every process runs this job
    if env.active and env.rank > 0:
        summary = train_follower(p, str(ctx.spec.workspace), env)
        return {"rank": env.rank, "iterations": summary["iterations"]}
    nproc = int(p.get("nproc") or 1)
    if env.active and nproc > 1:
        raise JobFailed("--nproc is for a launch from emodub; under torchrun the ranks come from torchrun",
                        code="bad_params", hint="leave out --nproc, or run without torchrun")
    ws = ctx.workspace
    job = _training(ws, p)
    evaluating = bool(p.get("evaluate", True) and len(job.held))
    ctx.plan([("train renderer", 9.0), *([("eval renderer", 1.0)] if evaluating else [])])
    with ws.lock(f"train/{p['actor']}/{job.name}"):
        if p.get("restart"):  # start over: nothing of the earlier run stays beside the new one
            import shutil

            for stale in (CHECKPOINT, "losses.json", "loss.png", "summary.json", "eval.json"):
                (job.out / stale).unlink(missing_ok=True)
            shutil.rmtree(job.out / "samples", ignore_errors=True)
        from core.workspace import atomic_write_json

        atomic_write_json(job.out / "split.json", {"holdout": job.holdout, "clips": job.split})
        ctx.log(f"training {job.variant} ({job.name}) on {len(job.train_src)} frames of {len(job.split)} clip(s), "
                f"{len(job.held)} held out" + (f", on {nproc} processes" if nproc > 1 else ""))

        def run_training(dist_env: Any) -> dict[str, Any]:
            from .spec import BadRendererOption

            device = rank_device(ctx.device, dist_env) if dist_env.active else ctx.device
            try:
                with process_group(dist_env, device):
                    return train(job.renderer, job.train_src, job.out, job.config, device=device,
                                 progress=lambda done, total, msg: ctx.progress("train renderer", done, total, msg),
                                 artifact=lambda path, kind: ctx.artifact(path, kind), log=ctx.log,
                                 dist_env=dist_env)
            except BadRendererOption as exc:  # an option only the data could check (a variant's prepare)
                raise JobFailed(str(exc), code="bad_params", hint="`emodub renderers` lists the options") from None

        if nproc > 1:
            job.train_src.load_crops()  # the other ranks only read the caches
            followers = {**p, "restart": False, "evaluate": False, "nproc": 1}
            with local_ranks(nproc, followers, str(ws.root)) as rank0:
                summary = run_training(rank0)
        else:
            summary = run_training(env)
        ws.set_model(p["actor"], job.name, {"kind": "renderer", "variant": job.variant, "path": ws.rel(job.out),
                                            "iterations": summary["iterations"], "size": job.setup.image_size,
                                            "preset": p.get("preset"),
                                            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        result = {**summary, "model": job.name, "model_dir": str(job.out), "train_frames": len(job.train_src),
                  "held_out_frames": len(job.held)}
    if evaluating:
        result["held_out"] = evaluate_model(ws, p["actor"], job.name, ctx.device, max_frames=200,
                                            progress=lambda d, n: ctx.progress("eval renderer", d, n))
    return result


def _needs_of(variant: str, preset: str | None, options: dict[str, Any]) -> Any:
    """What the data layer must provide for a renderer of ``variant`` with these options."""
    from .registry import make_options, renderer_class
    from .spec import resolve_options

    return renderer_class(variant).needs_for(make_options(variant, resolve_options(variant, preset, options)))


@job_kind("eval.renderer", help="held-out figures of a trained renderer (face-mask PSNR/SSIM, mouth PSNR, LPIPS)",
          args=[Arg("--actor", required=True),
                Arg("--name", default=None, help="the model to evaluate (default: the actor's best of --renderer)"),
                Arg("--renderer", default=None, help="evaluate the actor's best model of this variant"),
                Arg("--max-frames", type=int, default=200, dest="max_frames"),
                _DEVICE])
def run_eval_renderer(ctx: JobContext) -> dict[str, Any]:
    from .evaluate import evaluate_model

    p = ctx.params
    name = p.get("name") or choose_model(ctx, p["actor"], p.get("renderer"))
    max_frames = int(p.get("max_frames", 200))
    if max_frames < 1:
        raise JobFailed("--max-frames must be >= 1", code="bad_params")
    ctx.progress("eval renderer", 0, 1)
    try:
        return evaluate_model(ctx.workspace, p["actor"], name, ctx.device, max_frames,
                              progress=lambda d, n: ctx.progress("eval renderer", d, n))
    except FileNotFoundError as exc:
        raise JobFailed(str(exc), code="missing_input",
                        hint=f"train it first: emodub train renderer --actor {p['actor']}") from None


def choose_model(ctx: JobContext, actor: str, variant: str | None) -> str:
    """The actor's best trained renderer (of ``variant`` when given), or a JobFailed saying what to train."""
    manifest = ctx.workspace.read_manifest()
    best = best_renderer(manifest, actor, variant)
    if best is None:
        have = sorted({r["variant"] for r in trained_renderers(manifest, actor).values()})
        what = f"a {variant} renderer" if variant else "a renderer"
        raise JobFailed(f"actor {actor!r} has no trained {what[2:] if variant else 'renderer'}"
                        + (f" (trained: {', '.join(have)})" if have else ""), code="missing_input",
                        hint=f"train {what}: emodub train renderer --actor {actor}"
                             + (f" --renderer {variant}" if variant else ""))
    return best


@job_kind("features.import", help="import per-frame features computed outside emodub for one clip of an actor "
                                  "(an emotion network's for jean, OpenFace action units)",
          args=[Arg("file", help="the features: a .npy array (frames x features) or a .csv with a header row"),
                Arg("--actor", required=True),
                Arg("--clip", required=True, help="the actor's clip the rows belong to, one row per frame"),
                Arg("--name", required=True, help="what renderers call these features, e.g. emotion_net"),
                Arg("--columns", default=None,
                    help="a CSV's columns to keep: names or patterns, comma-separated (e.g. 'AU*_r'; default: "
                         "every numeric column)")])
def run_import_features(ctx: JobContext) -> dict[str, Any]:
    from core.tracking.result import TrackedClip

    from .frame_features import FrameFeatureError, feature_path, read_feature_file, save_frame_features

    p = ctx.params
    ws = ctx.workspace
    clips = ws.read_manifest()["actors"].get(p["actor"], {}).get("clips", {})
    if p["clip"] not in clips:
        raise JobFailed(f"actor {p['actor']!r} has no clip {p['clip']!r}", code="bad_params",
                        hint=f"its clips: {', '.join(sorted(clips)) or 'none (ingest footage first)'}")
    folder = ws.clip_dir(p["actor"], p["clip"])
    n_frames = int(clips[p["clip"]].get("frames") or 0)
    if (folder / "tracking" / "params.npz").exists():
        n_frames = TrackedClip.load(folder).n_frames
    try:
        feature_path(folder, p["name"])  # a bad name is refused before the file is read
        array, names = read_feature_file(Path(p["file"]), p.get("columns"))
        path = save_frame_features(folder, p["name"], array, n_frames, names)
    except FrameFeatureError as exc:
        raise JobFailed(str(exc), code="bad_params", hint="one row per frame of the clip's working copy, "
                        "numbers only (`emodub features import --help`)") from None
    ctx.artifact(path, "features")
    ctx.log(f"{len(array)} frames x {array.shape[1]} features imported as {p['name']!r} for clip {p['clip']!r}")
    return {"actor": p["actor"], "clip": p["clip"], "name": p["name"], "file": str(path),
            "frames": int(array.shape[0]), "width": int(array.shape[1]), "columns": names[:64]}
