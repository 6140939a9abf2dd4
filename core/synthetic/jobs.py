"""The ``synth`` job kind: a small MEAD-like corpus of the synthetic actor, or its contact sheet.

CLI::

    emodub synth --out DIR [--sentences 4] [--emotions neutral happy sad ...] [--intensities 1 2 3]
                 [--size 256] [--seed 0] [--actor synthetic] [--supersample 2] [--params-only]
                 [--overwrite] [--device auto]
    emodub synth --out DIR --contact-sheet        # DIR/contact_sheet.png, no corpus

``--out`` is a workspace folder: created when missing or empty, reused when it already is one (finished
clips are kept, so an interrupted build resumes). The corpus is sentences x (neutral + every other emotion
x every intensity) clips, each a 25 fps mp4 with its audio, the wav and the per-frame ground truth
(:mod:`core.synthetic.actor`); the same seed gives the same corpus. Progress is reported per clip. A cancel
stops at the next frame chunk: finished clips stay valid, the clip being rendered is removed, so the
workspace never holds half a clip.

Top-level imports stay light (torch is imported inside the function).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.jobs.context import JobCancelled, JobContext, JobFailed
from core.jobs.registry import Arg, job_kind

MEAD_LEVELS: dict[int, float] = {1: 0.33, 2: 0.66, 3: 1.0}


def _names(value: Any) -> list[str]:
    """Emotion names from a list or a comma/space separated string."""
    if value is None:
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    return [str(v).strip().lower() for v in items if str(v).strip()]


def parse_intensities(values: Sequence[Any] | str | None) -> list[float]:
    """MEAD levels 1, 2, 3 -> 0.33, 0.66, 1.0; values strictly between 0 and 1 are raw intensities."""
    if values is None or values == []:
        return list(MEAD_LEVELS.values())
    items = values.replace(",", " ").split() if isinstance(values, str) else list(values)
    out: list[float] = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise JobFailed(f"intensity {item!r} is not a number",
                            hint="use MEAD levels: --intensities 1 2 3", code="bad_params") from None
        if value in MEAD_LEVELS:
            out.append(MEAD_LEVELS[int(value)])
        elif 0.0 < value < 1.0:
            out.append(value)
        else:
            raise JobFailed(f"intensity {item!r} is neither a MEAD level (1, 2, 3) nor a value in (0, 1)",
                            hint="use --intensities 1 2 3 (MEAD levels) or e.g. 0.5", code="bad_params")
    return sorted(set(out))


def parse_emotions(value: Any) -> list[str]:
    """Canonical emotion names (all eight MEAD emotions when empty); JobFailed for unknown names."""
    from core.expression.emotions import EMOTIONS, MEAD_EMOTIONS, NEUTRAL, emotion_index

    names = _names(value) or list(MEAD_EMOTIONS)
    out: list[str] = []
    for name in names:
        if name == NEUTRAL:
            canonical = NEUTRAL
        else:
            try:
                canonical = EMOTIONS[emotion_index(name)]
            except ValueError as exc:
                raise JobFailed(str(exc), hint=f"choose from: {', '.join(MEAD_EMOTIONS)}",
                                code="bad_params") from None
        if canonical not in out:
            out.append(canonical)
    return out


def _int_param(ctx: JobContext, key: str, default: int, minimum: int) -> int:
    value = ctx.params.get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise JobFailed(f"{key} must be an integer, got {value!r}", code="bad_params") from None
    if number != value and not isinstance(value, str) and float(value) != number:
        raise JobFailed(f"{key} must be an integer, got {value!r}", code="bad_params")
    if number < minimum:
        raise JobFailed(f"{key} must be >= {minimum}, got {number}", code="bad_params")
    return number


def _open_or_create(out: Path) -> Any:
    from core.workspace import Workspace, WorkspaceError
    from core.workspace.manifest import MANIFEST_NAME

    try:
        if (out / MANIFEST_NAME).exists():
            return Workspace.open(out)
        return Workspace.create(out)
    except WorkspaceError as exc:
        raise JobFailed(str(exc), hint=exc.hint or "pass --out a new folder or an emodub workspace",
                        code="bad_workspace") from None


def _remove_partial_clip(ws: Any, actor: str, clip: str) -> None:
    """Delete a clip whose rendering was interrupted (its folder and any manifest record)."""
    import shutil

    record = ws.read_manifest().get("actors", {}).get(actor, {}).get("clips", {})
    if clip in record:
        ws.update(lambda m: m["actors"][actor]["clips"].pop(clip, None))
    shutil.rmtree(ws.clip_dir(actor, clip), ignore_errors=True)


@job_kind("synth",
          help="build a synthetic MEAD-like corpus (sentences x emotions x intensities) of the procedural "
               "actor in a workspace, or render its contact sheet",
          needs_workspace=False,
          args=[Arg("--out", required=True, help="workspace folder to write (created when missing)"),
                Arg("--actor", default="synthetic", help="actor name in the workspace (default synthetic)"),
                Arg("--sentences", type=int, default=4, help="distinct random sentences (default 4)"),
                Arg("--emotions", nargs="+", default=None, spec_types=(str, list),
                    help="emotions to act (default all eight MEAD emotions: neutral angry contempt "
                         "disgusted fear happy sad surprised)"),
                Arg("--intensities", nargs="+", default=None, spec_types=(str, list),
                    help="MEAD levels 1 2 3 (= 0.33 0.66 1.0; default all three) or values in (0, 1)"),
                Arg("--size", type=int, default=256, help="frame height = width in pixels (default 256)"),
                Arg("--seed", type=int, default=0, help="corpus and identity seed (default 0)"),
                Arg("--supersample", type=int, default=2,
                    help="anti-aliasing: render at N x the size and filter down (default 2; 1 is ~5x faster)"),
                Arg("--params-only", dest="params_only", action="store_true",
                    help="write audio and ground-truth parameters only (no video rendering)"),
                Arg("--overwrite", action="store_true", help="rebuild clips that already exist"),
                Arg("--contact-sheet", dest="contact_sheet", action="store_true",
                    help="write DIR/contact_sheet.png (the head in neutral, visemes, emotions, poses) and "
                         "skip the corpus"),
                Arg("--device", default="auto", choices=["auto", "cpu", "cuda"], help="render device")])
def run_synth(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    if not p.get("out"):
        raise JobFailed("no output folder given", hint="emodub synth --out DIR", code="bad_params")
    out = Path(str(p["out"])).expanduser()
    size = _int_param(ctx, "size", 256, 16)
    if size % 2:
        raise JobFailed(f"size must be even (H.264 needs even frame sides), got {size}",
                        hint=f"use --size {size + 1}", code="bad_params")
    seed = _int_param(ctx, "seed", 0, 0)
    supersample = _int_param(ctx, "supersample", 2, 1)
    device = ctx.device
    start = time.perf_counter()

    if p.get("contact_sheet"):
        from core.synthetic.contact_sheet import render_contact_sheet

        out.mkdir(parents=True, exist_ok=True)
        ctx.progress("contact sheet", 0, 1, "rendering")
        path = out / "contact_sheet.png"
        render_contact_sheet(path, size=size, identity_seed=seed, device=device)
        ctx.progress("contact sheet", 1, 1, path.name)
        ctx.artifact(path, "image")
        return {"contact_sheet": str(path), "seconds": round(time.perf_counter() - start, 3)}

    from core.workspace import LockBusy, validate_name

    actor = str(p.get("actor") or "synthetic")
    try:
        validate_name(actor, "actor name")
    except Exception as exc:  # noqa: BLE001 - WorkspaceError carries the hint
        raise JobFailed(str(exc), hint=getattr(exc, "hint", ""), code="bad_params") from None
    n_sentences = _int_param(ctx, "sentences", 4, 1)
    emotions = parse_emotions(p.get("emotions"))
    intensities = parse_intensities(p.get("intensities"))
    params_only = bool(p.get("params_only", False))
    n_per_sentence = sum(1 if e == "neutral" else len(intensities) for e in emotions)
    total = n_sentences * n_per_sentence

    from core.synthetic.actor import ActorConfig, SyntheticActor, build_corpus

    ws = _open_or_create(out)
    ctx.log(f"synth: {total} clips ({n_sentences} sentences x {n_per_sentence} renditions) of actor "
            f"{actor!r} at {size}px on {device} into {ws.root}")
    synthetic = SyntheticActor(ActorConfig(size=size, identity_seed=seed, supersample=supersample),
                               device=device)
    current: dict[str, str | None] = {"clip": None}
    done_names: list[str] = []

    def on_clip(name: str) -> None:
        current["clip"] = name
        ctx.log(f"rendering {name}", level="debug")

    def progress(done: int, total_clips: int) -> None:
        finished = current["clip"]
        current["clip"] = None
        if finished is not None:
            done_names.append(finished)
            rel = ws.read_manifest()["actors"][actor]["clips"][finished].get("video")
            if rel:
                ctx.artifact(ws.root / rel, "video")
        ctx.progress("synth", done, total_clips, finished or "")

    try:
        with ws.lock(f"synth/{actor}"):
            from core.workspace import atomic_write_json

            # The resolved settings next to the clips (a rerun with other settings adds to the same actor).
            atomic_write_json(ws.actor_dir(actor) / "synth.json", {
                "sentences": n_sentences, "emotions": emotions, "intensities": intensities, "size": size,
                "seed": seed, "supersample": supersample, "params_only": params_only, "fps": synthetic.fps})
            ctx.progress("synth", 0, total, "starting")
            clips = build_corpus(
                ws, synthetic, actor=actor, n_sentences=n_sentences, emotions=emotions,
                intensities=intensities, seed=seed, render_video=not params_only, progress=progress,
                overwrite=bool(p.get("overwrite")), on_clip=on_clip,
                should_stop=lambda: ctx.cancel_token.is_cancelled)
    except LockBusy as exc:
        raise JobFailed(str(exc), hint="wait for the other synth job to finish", code="busy") from None
    except (JobCancelled, InterruptedError):
        if current["clip"] is not None:  # cancelled while rendering: drop the unfinished clip
            _remove_partial_clip(ws, actor, current["clip"])
            ctx.log(f"cancelled while rendering {current['clip']}; removed it (finished clips are kept)")
        raise JobCancelled("cancelled between clips; finished clips are kept") from None
    except ValueError as exc:
        raise JobFailed(str(exc), code="bad_params") from None
    frames = sum(c.frames for c in clips)
    duration = sum(c.duration_s for c in clips)
    problems = ws.validate()
    if problems:
        raise JobFailed("the synthetic workspace is inconsistent: " + "; ".join(problems[:5]),
                        code="internal")
    return {"workspace": str(ws.root), "actor": actor, "clips": len(clips), "frames": int(frames),
            "duration_s": round(float(duration), 3), "size": size, "seed": seed, "video": not params_only,
            "seconds": round(time.perf_counter() - start, 3)}
