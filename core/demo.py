"""``emodub demo``: the whole product on the embedded synthetic actor.

1. build a small MEAD-like corpus of the synthetic actor (sentences x emotions, video + audio);
2. landmarks (the synthetic actor's exact landmarks stand in for the detector) and tracking of every clip;
3. train the audio-to-expression GAN and the renderer (``--renderer NAME``, any registered variant; default the
   neural-texture renderer) at demo scale, and evaluate it on the held-out tail of every clip;
4. dub a held-out sentence (never in the corpus) onto a neutral shot with a keyframed emotion ramp
   neutral -> happy -> sad;
5. render the ground truth of that line (the synthetic actor speaking it with the same emotion ramp and
   the shot's head motion) and write ``dubbed.mp4``, ``side_by_side.mp4`` (ground truth | dubbed) and
   ``report.json``/``report.md`` into the output folder.

``--compare A,B`` trains, evaluates and dubs with each variant on the same data: one table of held-out figures
and ``compare.mp4`` (ground truth | A | B). Every number in the report is measured on frames no model was
trained on.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import Arg, job_kind
from core.renderers.catalog import DEFAULT_VARIANT


@dataclass(frozen=True)
class DemoPreset:
    size: int
    sentences: int
    emotions: tuple[str, ...]
    intensities: tuple[float, ...]
    a2e_iterations: int
    track_fast: bool
    words: tuple[int, int]
    holdout: float = 0.2  # last fraction of every corpus clip the renderer never trains on (its eval frames)
    ablations: bool = False  # also train each variant's DEMO_ABLATIONS (e.g. the static texture) and compare
    # (how long each renderer trains at a preset is the variant's own DEMO setting, in its config.py)


PRESETS = {
    "quick": DemoPreset(size=128, sentences=2, emotions=("neutral", "happy", "sad"), intensities=(1.0,),
                        a2e_iterations=300, track_fast=True, words=(3, 5)),
    # The end-to-end test's preset: every stage runs, nothing is trained long enough to look good.
    "smoke": DemoPreset(size=64, sentences=1, emotions=("neutral", "happy"), intensities=(1.0,),
                        a2e_iterations=20, track_fast=True, words=(2, 3), ablations=True),
    "full": DemoPreset(size=192, sentences=3, emotions=("neutral", "happy", "sad", "surprised"),
                       intensities=(0.66, 1.0), a2e_iterations=600, track_fast=True, words=(4, 7), ablations=True),
}


# The demo's bar: seconds per clip at the full preset's 192 px (scaled by pixels), per held-out frame of an
# evaluation, and of a dub; renderer and a2e steps cost what train.actor's plan says they do.
SECONDS_PER_CLIP = {"corpus": 4.0, "tracking": 2.5}
SECONDS_PER_EVAL_FRAME = 0.14
SECONDS_PER_DUB = 8.0


def demo_plan(preset: DemoPreset, variants: list[str], trainings: list[tuple[str, str, str | None]],
              preset_name: str, nerf_minutes: float | None) -> list[tuple[str, float]]:
    """The demo's steps and their expected seconds (for :meth:`JobContext.plan`), in the order they run."""
    from core.dub.jobs import SECONDS_PER_ITERATION
    from core.renderers.spec import get_variant

    others = [e for e in preset.emotions if e != "neutral"]
    clips = preset.sentences * (int("neutral" in preset.emotions) + len(others) * len(preset.intensities))
    pixels = (preset.size / 192) ** 2
    steps = [("corpus", clips * SECONDS_PER_CLIP["corpus"] * pixels),
             ("landmarks+tracking", clips * SECONDS_PER_CLIP["tracking"] * pixels),
             ("train.a2e", preset.a2e_iterations * SECONDS_PER_ITERATION["a2e"])]
    for variant, name, _ in trainings:
        spec = get_variant(variant)
        nerf = "render_size" in spec.config_class().__dataclass_fields__
        iterations = spec.demo_params(preset_name).get("iterations") or 500
        seconds = nerf_minutes * 60 if nerf and nerf_minutes else iterations * SECONDS_PER_ITERATION["renderer"]
        steps += [(f"train {name}", seconds * pixels), (f"eval {name}", 200 * SECONDS_PER_EVAL_FRAME * pixels)]
    steps += [(f"dub {v}", SECONDS_PER_DUB) for v in variants]
    return steps


def emotion_ramp(n_frames: int, fps: float) -> dict[str, Any]:
    """Keyframes: neutral, up to happy 0.9 by 40%, over to sad 0.9 by 80% of the line (Bezier)."""
    a, b, c = 0, int(0.4 * n_frames), int(0.8 * n_frames)
    return {"format": "emodub-emotion-curves", "version": 1, "fps": fps,
            "curves": {"happy": {"keyframes": [{"frame": a, "value": 0.0}, {"frame": b, "value": 0.9},
                                               {"frame": c, "value": 0.0}]},
                       "sad": {"keyframes": [{"frame": b, "value": 0.0}, {"frame": c, "value": 0.9}]}}}


def _side_by_side(left: Path, others: list[Path], out: Path, audio: Path, fps: float) -> Path:
    """``left | other_1 | other_2 ...`` frame by frame (as long as the shortest)."""
    from core.io.video import VideoWriter, iter_frames
    from core.landmarks.crop import resize_image

    with VideoWriter(out, fps, audio=audio) as writer:
        for frames in zip(iter_frames(left), *(iter_frames(o) for o in others), strict=False):
            a = frames[0]
            row = [a] + [b if b.shape == a.shape else resize_image(b, a.shape[1], a.shape[0]) for b in frames[1:]]
            writer.write(np.concatenate(row, axis=1))
    return out


HELD_OUT_KEYS = ("face_psnr", "face_ssim", "mouth_psnr", "psnr", "ssim", "frames")


@job_kind("demo", help="the main job on the embedded synthetic actor (corpus, tracking, training, dub)",
          needs_workspace=False,
          args=[Arg("--out", default="demo-out", help="output folder (default demo-out)"),
                Arg("--quick", action="store_true", help="the quick preset (smaller corpus, shorter training)"),
                Arg("--preset", default=None, choices=sorted(PRESETS),
                    help="full (default), quick (= --quick) or smoke (the end-to-end test's)"),
                Arg("--renderer", default=None,
                    help=f"renderer variant to train and dub with (default {DEFAULT_VARIANT}; `emodub renderers`)"),
                Arg("--compare", default=None, metavar="A,B",
                    help="train, evaluate and dub with each of these variants; one table and compare.mp4"),
                Arg("--nerf-minutes", type=float, default=None, dest="nerf_minutes",
                    help="train NeRF variants for this long instead of the preset's iterations"),
                Arg("--seed", type=int, default=0),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"])])
def run_demo(ctx: JobContext) -> dict[str, Any]:
    import torch

    from core.expression.emotions import EmotionCurves
    from core.io.audio import write_wav
    from core.morphable.data import FaceParams
    from core.synthetic.actor import ActorConfig, SyntheticActor, build_corpus
    from core.synthetic.corpus import synthesize_clip
    from core.synthetic.emotion_faces import compose_expression, emotion_expression, emotion_jaw_offset
    from core.synthetic.phonemes import random_sentence
    from core.synthetic.visemes import viseme_track
    from core.workspace import Workspace, atomic_write_json, atomic_write_text

    preset_name = ctx.params.get("preset") or ("quick" if ctx.params.get("quick") else "full")
    preset = PRESETS[preset_name]
    seed = int(ctx.params.get("seed", 0))
    out = Path(ctx.params.get("out") or "demo-out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    ws = Workspace.create(out / "workspace", exist_ok=True)
    sub = ctx.in_workspace(str(ws.root))  # released with ctx: no stale job lock in the demo's workspace
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    device = ctx.device
    torch.manual_seed(seed)

    def lap(name: str, start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 1)
        ctx.log(f"{name}: {timings[name]} s")

    from core.renderers.spec import UnknownRenderer, get_variant

    variants = [v.strip() for v in (ctx.params.get("compare") or ctx.params.get("renderer") or DEFAULT_VARIANT)
                .split(",") if v.strip()]
    try:
        for variant in variants:
            get_variant(variant)
    except UnknownRenderer as exc:
        raise JobFailed(str(exc), code="bad_params", hint="`emodub renderers` lists the variants") from None
    trainings = [(v, v, None) for v in variants]
    if preset.ablations:
        trainings += [(v, f"{v}_{a}", a) for v in variants for a in get_variant(v).demo_ablations]
    nerf_minutes = float(ctx.params["nerf_minutes"]) if ctx.params.get("nerf_minutes") else None
    ctx.plan(demo_plan(preset, variants, trainings, preset_name, nerf_minutes))

    # 1. corpus
    start = time.perf_counter()
    synthetic = SyntheticActor(ActorConfig(size=preset.size))
    build_corpus(ws, synthetic, "synthetic", preset.sentences, emotions=preset.emotions,
                         intensities=preset.intensities, seed=seed, words=preset.words,
                         progress=lambda d, n: ctx.progress("corpus", d, n, "synthetic actor clips"))
    names = sorted(ws.read_manifest()["actors"]["synthetic"]["clips"])
    lap("corpus", start)

    # 2. landmarks + tracking
    start = time.perf_counter()
    for k, name in enumerate(names):
        ctx.progress("landmarks+tracking", k, len(names), name)
        sub.run_kind("landmarks", {"actor": "synthetic", "clip": name, "detector": "ground_truth",
                                   "crop_size": preset.size})
        fast = {"photometric": False, "iterations": 0.5 if preset.size > 64 else 0.2} if preset.track_fast else {}
        sub.run_kind("track", {"actor": "synthetic", "clip": name, "overlay": False, "device": device, **fast})
    ctx.progress("landmarks+tracking", len(names), len(names))
    lap("tracking", start)

    # 3. training
    start = time.perf_counter()
    sub.run_kind("train.a2e", {"actor": "synthetic", "iterations": preset.a2e_iterations, "device": device})
    lap("train_a2e", start)
    renderers: dict[str, dict[str, Any]] = {}
    for variant, name, ablation in trainings:
        start = time.perf_counter()
        params = {"renderer": variant, **get_variant(variant).demo_params(preset_name)}
        if ablation:
            params["preset"] = ablation
        if "render_size" in get_variant(variant).config_class().__dataclass_fields__:  # a NeRF: <= the crop
            params["options"] = {**params.get("options", {}),
                                 "render_size": min(preset.size, params.get("options", {}).get("render_size", 128))}
            if nerf_minutes:
                params = {**params, "iterations": None, "minutes": nerf_minutes}
        sub.run_kind("train.renderer", {"actor": "synthetic", **params, "name": name, "device": device,
                                        "holdout": preset.holdout, "evaluate": False}, step=f"train {name}")
        lap(f"train_{name}", start)
        start = time.perf_counter()
        renderers[name] = sub.run_kind("eval.renderer", {"actor": "synthetic", "name": name, "device": device},
                                       step=f"eval {name}")
        lap(f"eval_{name}", start)

    # 4. the held-out line and the shot
    start = time.perf_counter()
    rng = np.random.default_rng(seed + 10_000)  # a seed the corpus never used
    line = synthesize_clip(random_sentence(rng, int(rng.integers(*preset.words)) + 1), np.zeros(7, np.float32),
                           synthetic.fps, rng)
    n = int(line["n_frames"])
    write_wav(out / "line.wav", line["wave"], 16000)
    shot_clip = next(c for c in names if "neutral" in c)
    if not ws.read_manifest()["shots"].get("demo_shot"):
        shutil.copytree(ws.clip_dir("synthetic", shot_clip), ws.shot_dir("demo_shot"), dirs_exist_ok=True)
        ws.set_shot("demo_shot", {**ws.clip("synthetic", shot_clip), "video": "shots/demo_shot/video.mp4",
                                  "audio": "shots/demo_shot/audio.wav", "source": f"clip {shot_clip}"})
    curves_json = emotion_ramp(n, synthetic.fps)
    atomic_write_json(out / "emotions.json", curves_json)
    dubs = {}
    for variant in variants:
        dubs[variant] = sub.run_kind("dub", {
            "actor": "synthetic", "shot": "demo_shot", "audio": str(out / "line.wav"), "emotions": curves_json,
            "out": str(out / ("dubbed.mp4" if variant == variants[0] else f"dubbed_{variant}.mp4")),
            "device": device, "name": "demo" if variant == variants[0] else f"demo_{variant}",
            "renderer_model": variant}, step=f"dub {variant}")
    dub = dubs[variants[0]]
    lap("dub", start)

    # 5. ground truth of the line with the same emotion ramp and the shot's head motion
    start = time.perf_counter()
    emotion = EmotionCurves.from_json(curves_json).sample(n)
    mouth, jaw = viseme_track(line["timing"], synthetic.fps, n)
    shot_gt = FaceParams.load(ws.shot_dir("demo_shot") / "ground_truth" / "params.npz").to_numpy()
    src = np.arange(n) % shot_gt["expression"].shape[0]
    blink_names = [i for i, name in enumerate(synthetic.model.expr_names) if "blink" in name]
    blink = shot_gt["expression"][src][:, blink_names].max(1) if blink_names else None
    arrays = {k: v[src] for k, v in shot_gt.items()}
    arrays["expression"] = compose_expression(mouth, emotion_expression(emotion), blink).astype(np.float32)
    arrays["jaw_pose"] = np.zeros((n, 3), np.float32)
    arrays["jaw_pose"][:, 0] = jaw + emotion_jaw_offset(emotion)
    gt_dir = out / "ground_truth"
    synthetic.write_video(gt_dir, arrays, out / "line.wav")
    shutil.move(str(gt_dir / "video.mp4"), out / "ground_truth.mp4")
    _side_by_side(out / "ground_truth.mp4", [out / "dubbed.mp4"], out / "side_by_side.mp4", out / "line.wav",
                  synthetic.fps)
    if len(variants) > 1:
        _side_by_side(out / "ground_truth.mp4", [Path(d["video"]) for d in dubs.values()], out / "compare.mp4",
                      out / "line.wav", synthetic.fps)
    lap("ground_truth", start)

    # 6. metrics on the held-out line
    metrics = _metrics(out / "ground_truth.mp4", out / "dubbed.mp4", Path(dub["report"]), arrays, jaw)
    metrics["renderer_held_out"] = {name: {k: r[k] for k in (*HELD_OUT_KEYS, "variant")}
                                    for name, r in renderers.items()}
    if len(variants) > 1:
        metrics["compare"] = {v: _metrics(out / "ground_truth.mp4", Path(d["video"]), Path(d["report"]), arrays, jaw)
                              for v, d in dubs.items()}
    result = {"dubbed": str(out / "dubbed.mp4"), "side_by_side": str(out / "side_by_side.mp4"),
              "ground_truth": str(out / "ground_truth.mp4"), "report": str(out / "report.json"),
              "preset": preset_name, "frames": n, "renderers": variants,
              **({"compare_video": str(out / "compare.mp4")} if len(variants) > 1 else {}),
              "seconds": round(time.perf_counter() - t0, 1), "timings_s": timings, "metrics": metrics,
              "clips": len(names), "device": device}
    atomic_write_json(out / "report.json", result)
    atomic_write_text(out / "report.md", _markdown(result, dub))
    for key in ("dubbed", "side_by_side", "report"):
        ctx.artifact(result[key], "video" if key != "report" else "report")
    return result


def _metrics(gt: Path, dubbed: Path, dub_report: Path, arrays: dict[str, np.ndarray], jaw: np.ndarray
             ) -> dict[str, Any]:
    import json

    import torch

    from core.eval.image_metrics import psnr, ssim
    from core.io.video import iter_frames

    values: dict[str, list[float]] = {"psnr": [], "ssim": []}
    for a, b in zip(iter_frames(gt), iter_frames(dubbed), strict=False):
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
        values["psnr"].append(float(psnr(tb, ta)))
        values["ssim"].append(float(ssim(tb, ta)))
    report = json.loads(dub_report.read_text())
    return {"psnr_vs_ground_truth": float(np.mean(values["psnr"])),
            "ssim_vs_ground_truth": float(np.mean(values["ssim"])),
            "lipsync_proxy": report.get("lipsync_proxy"),
            "note": "full frames of a line no model saw; head pose from the shot, so only the face differs"}


def _compare_lines(m: dict[str, Any]) -> list[str]:
    if "compare" not in m:
        return []
    lines = ["Dubs of the held-out line with each variant (`compare.mp4`: ground truth | " +
             " | ".join(m["compare"]) + "):", "", "| variant | PSNR vs ground truth | SSIM | lip-sync proxy r |",
             "| --- | --- | --- | --- |"]
    for variant, c in m["compare"].items():
        sync = c.get("lipsync_proxy") or {}
        lines.append(f"| {variant} | {c['psnr_vs_ground_truth']:.2f} | {c['ssim_vs_ground_truth']:.3f} | "
                     f"{sync.get('peak_corr', 0):.2f} |")
    return [*lines, ""]


def _markdown(result: dict[str, Any], dub: dict[str, Any]) -> str:
    m = result["metrics"]
    sync = m.get("lipsync_proxy") or {}
    lines = ["# emodub demo", "",
             f"Preset **{result['preset']}**, {result['clips']} synthetic clips, {result['seconds']} s in all "
             f"on {result['device']}.", "",
             "| file | what |", "| --- | --- |",
             "| `dubbed.mp4` | the held-out line dubbed onto a neutral shot, emotion ramp neutral -> happy -> sad |",
             "| `side_by_side.mp4` | ground truth (left) and the dub (right) |",
             "| `workspace/renders/demo/report.md` | the dub's own report and emotion plot |", "",
             f"- PSNR vs ground truth: {m['psnr_vs_ground_truth']:.2f} dB, SSIM {m['ssim_vs_ground_truth']:.3f}",
             f"- lip-sync proxy (jaw opening vs audio envelope): peak r {sync.get('peak_corr', 0):.2f} at offset "
             f"{sync.get('offset_frames')} frames (r {sync.get('corr_at_zero', 0):.2f} at offset 0)", "",
             "Renderer on the held-out last frames of every corpus clip (tracked parameters, never trained on):",
             "", "| renderer | variant | face PSNR dB | face SSIM | mouth PSNR dB | whole-crop PSNR dB | "
                 "whole-crop SSIM | frames |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
             *[f"| {name} | {r['variant']} | {r['face_psnr']:.2f} | {r['face_ssim']:.3f} | {r['mouth_psnr']:.2f} | "
               f"{r['psnr']:.2f} | {r['ssim']:.3f} | {r['frames']} |" for name, r in m["renderer_held_out"].items()],
             "", "Face figures are inside the tracked face mask (the mesh without scalp, ears and neck); the whole "
                 "crop includes the background, which the neural-texture renderer copies from the plate.", "",
             *_compare_lines(m),
             f"- stage times (s): {result['timings_s']}", ""]
    return "\n".join(lines)

