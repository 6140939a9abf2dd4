"""The whole product on real footage: learn an actor from one clip, measure the renderer on the clip's
held-out end, dub the clip with another language and an emotion ramp, and check the result (JSON lines).

    python build.py bench real_footage                    # needs ../shared/data (see its SOURCES.md)
    .venv/bin/python bench/real_footage.py --out /tmp/real --renderer-iterations 1500
    .venv/bin/python bench/real_footage.py --clip my_actor.mp4 --audio my_dub.wav --out /tmp/mine

Every step runs through the ``emodub`` CLI, as a user would:

1. ``ingest`` the clip as actor footage (MediaPipe landmarks, 256 px crop) and ``track`` it;
2. ``train renderer --holdout 0.2``: the renderer never sees the last 20% of the clip; ``eval renderer``
   reports PSNR / SSIM / mouth-region PSNR on exactly those frames (``renderer_held_out_*``);
3. ``train a2e --speech-prior 40 --holdout 0.2`` on the clip's first 80% plus 40 neutral sentences of the
   synthetic actor (scaled to the actor's own parameter ranges): 8 s of one take alone teach no
   speech-to-mouth mapping that carries to a new language (measured: the clip-only a2e's jaw anti-correlated
   with the German audio, r = -0.62). ``eval a2e`` then drives the a2e with the held-out end's own audio and
   correlates the mouth opening of the face model posed with its prediction against the tracked mouth
   opening (``a2e_held_out_mouth_open_r``; the jaw angle alone: ``a2e_held_out_jaw_r``; against the detected
   landmarks' opening, which no tracking change can move: ``a2e_held_out_mouth_open_r_detected``): lip sync
   where there is ground truth;
4. ``shot prepare`` the same clip as the shot, then ``dub`` it with the new audio and a happy ramp
   (0 -> 0.8 over the first 2 s, then held). The actor was filmed neutral only, so happy comes from the
   face model's FACS prior (``core.expression.emotion_prior``; the dub report says so);
5. checks on the output mp4: it decodes, carries an audio stream as long as the new audio, has one video
   frame per 1/fps of it, and a lip-sync proxy computed from **MediaPipe landmarks detected on the dubbed
   frames** against the new audio's envelope (peak correlation and its offset in frames; the same proxy
   on the original clip with its own audio is given for reference). ``strip.png`` shows original and
   dubbed crops of a few frames; ``side_by_side.mp4`` the whole dub next to the looped original.

**Shots that are not the training footage** (``--unseen-shot-seconds S``, for the long clips): the clip's last S
seconds are cut into their own file and prepared as the shot instead of the whole clip. With ``--holdout`` covering
them (0.1 of a 50-60 s clip: the last 5-6 s), neither the renderer nor the a2e ever saw those frames: the studio
case of training on takes and dubbing another shot. ``unseen_strip.png`` and ``unseen_side_by_side.mp4`` show it.

    .venv/bin/python bench/real_footage.py --clip ../shared/data/real/clips/long/office_man_256_25fps_60s.mp4 \
        --clip-name take --out /tmp/compare-office --holdout 0.1 --unseen-shot-seconds 5 --consent-by ... \
        --consent-scope ... --consent-document ...

(``--clip-name take`` with ``--out`` pointing where ``bench/renderer_compare.py`` left its workspace reuses that
ingest and tracking.)

Figures: ``{"name", "value", "unit", "config"}`` per line; the last line (``name = "summary"``) has them all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, SHARED, emit, emodub


def happy_ramp(fps: float, seconds: float, peak: float = 0.8) -> dict[str, Any]:
    return {"format": "emodub-emotion-curves", "version": 1, "fps": fps,
            "curves": {"happy": {"keyframes": [{"frame": 0, "value": 0.0, "interpolation": "linear"},
                                               {"frame": int(round(seconds * fps)), "value": peak}]}}}


def detected_lipsync(video: Path, audio: Path) -> dict[str, Any]:
    """Lip-sync proxy of ``video`` against ``audio`` from MediaPipe landmarks detected on its frames."""
    from core.eval.video_metrics import sync_report

    result = sync_report(video, audio)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}


def contact_strip(original: Path, dubbed: Path, crop_json: Path, out: Path, picks: int = 6) -> Path:
    """Original (top) and dubbed (bottom) face crops of ``picks`` frames spread over the dub."""
    import imageio.v3 as iio

    from core.io.video import iter_frames
    from core.landmarks.crop import CropTransform

    crop = CropTransform.load(crop_json)
    source = [crop.crop_image(f) for f in iter_frames(original)]
    dub = [crop.crop_image(f) for f in iter_frames(dubbed)]
    chosen = np.linspace(0, len(dub) - 1, picks).round().astype(int)
    top = np.concatenate([source[i % len(source)] for i in chosen], 1)
    bottom = np.concatenate([dub[i] for i in chosen], 1)
    iio.imwrite(out, np.concatenate([top, bottom], 0))
    return out


def clip_tail(clip: Path, seconds: float, out: Path) -> Path:
    """The last ``seconds`` of ``clip`` (video and sound) as their own file, at the clip's rate and size."""
    import imageio_ffmpeg

    from core.io.video import probe

    info = probe(clip)
    first = max(0, info.frames - int(round(seconds * info.fps)))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-ss", f"{first / info.fps:.6f}",
                    "-i", str(clip), "-frames:v", str(info.frames - first), "-c:v", "libx264", "-crf", "10",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)], check=True)
    return out


def side_by_side(original: Path, dubbed: Path, audio: Path, out: Path, fps: float) -> Path:
    from core.io.video import VideoWriter, iter_frames

    source = list(iter_frames(original))
    with VideoWriter(out, fps, audio=audio) as writer:
        for i, frame in enumerate(iter_frames(dubbed)):
            writer.write(np.concatenate([source[i % len(source)], frame], 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=SHARED / "clips" / "interview_woman_25fps.mp4")
    parser.add_argument("--audio", type=Path, default=SHARED / "audio" / "german_48k.wav")
    parser.add_argument("--out", type=Path, default=Path("real-out"))
    parser.add_argument("--renderer-iterations", type=int, default=1500)
    parser.add_argument("--renderer", default="neural_texture", help="renderer variant (`emodub renderers`)")
    parser.add_argument("--renderer-preset", default=None, help="the variant's preset (e.g. cpu)")
    parser.add_argument("--a2e-iterations", type=int, default=600)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--speech-prior", type=int, default=None,
                        help="synthetic sentences mixed into the a2e training (0: the clip alone; default: the "
                             "a2e job's choice, 40 below 20 s of footage)")
    parser.add_argument("--clip-name", default="interview", help="the clip's name in the workspace")
    parser.add_argument("--unseen-shot-seconds", type=float, default=0.0,
                        help="dub the clip's last S seconds, cut into their own shot, instead of the whole clip "
                             "(keep them inside --holdout so no training saw them)")
    parser.add_argument("--ramp-seconds", type=float, default=2.0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    # A dub needs the actor's consent record (core.consent). The default clip is a public research example
    # (../shared/data/SOURCES.md): what is recorded for it is its licence, for this benchmark only, not a person's
    # consent. Your own footage needs the person's real consent: --consent-by/--consent-scope/--consent-document.
    parser.add_argument("--consent-by", default=None, help="who consented to the dub of the clip's person")
    parser.add_argument("--consent-scope", default=None, help="what they consented to")
    parser.add_argument("--consent-document", default=None, help="reference of the signed document")
    args = parser.parse_args()
    for path in (args.clip, args.audio):
        if not path.exists():
            sys.exit(f"{path} does not exist: pass --clip/--audio, or put the shared data beside the project")
    default_clip = args.clip.resolve() == (SHARED / "clips" / "interview_woman_25fps.mp4").resolve()
    consent = [args.consent_by, args.consent_scope, args.consent_document]
    if not all(consent):
        if not default_clip:
            sys.exit("dubbing your own clip needs its person's consent record: pass --consent-by, --consent-scope "
                     "and --consent-document")
        consent = ["not the person: a public research example clip (Apache-2.0, ../shared/data/SOURCES.md)",
                   "benchmark of emodub on the project's test clip only; the output is not for distribution",
                   "../shared/data/SOURCES.md (OpenTalker/SadTalker examples/ref_video/WDA_KatieHill_000.mp4)"]
    from core.io.video import probe

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ws, log = out / "workspace", out / "commands.log"
    dev = ["--device", args.device]
    t0 = time.perf_counter()
    config = {"clip": args.clip.name, "audio": args.audio.name, "renderer": args.renderer,
              "renderer_iterations": args.renderer_iterations,
              "a2e_iterations": args.a2e_iterations, "holdout": args.holdout, "speech_prior": args.speech_prior,
              "unseen_shot_seconds": args.unseen_shot_seconds}
    figures: dict[str, Any] = {}

    def record(name: str, value: Any, unit: str) -> None:
        figures[name] = value
        emit(name, value, unit, config)

    stages: dict[str, float] = {}

    def lap(name: str, start: float) -> None:
        stages[name] = round(time.perf_counter() - start, 1)

    s = time.perf_counter()
    manifest = ws / "emodub.json"
    clip_known = manifest.exists() and args.clip_name in json.loads(manifest.read_text()).get("actors", {}).get(
        "actor", {}).get("clips", {})
    if not manifest.exists():
        subprocess.run([sys.executable, "-m", "core.cli", "workspace", "init", str(ws)], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    if not clip_known:
        emodub("ingest", "-w", str(ws), str(args.clip), "--actor", "actor", "--clip", args.clip_name,
               "--emotion", "neutral", log=log)
    if not (ws / "actors" / "actor" / "consent.json").exists():
        emodub("actor", "consent", "-w", str(ws), "--actor", "actor", "--by", consent[0], "--scope", consent[1],
               "--document", consent[2], log=log)
    clip_dir = ws / "actors" / "actor" / "clips" / args.clip_name
    track = (json.loads((clip_dir / "tracking" / "quality.json").read_text())
             if (clip_dir / "tracking" / "params.npz").exists() else
             emodub("track", "-w", str(ws), "--actor", "actor", "--clip", args.clip_name, *dev, log=log))
    lap("ingest+track", s)
    s = time.perf_counter()
    preset = ["--preset", args.renderer_preset] if args.renderer_preset else []
    emodub("train", "renderer", "-w", str(ws), "--actor", "actor", "--renderer", args.renderer, *preset,
           "--iterations", str(args.renderer_iterations), "--holdout", str(args.holdout), "--no-eval", *dev, log=log)
    lap("train_renderer", s)
    held = emodub("eval", "renderer", "-w", str(ws), "--actor", "actor", "--name", args.renderer, *dev, log=log)
    record("renderer_held_out_psnr", round(held["psnr"], 3), "dB")
    record("renderer_held_out_ssim", round(held["ssim"], 4), "")
    record("renderer_held_out_mouth_psnr", round(held["mouth_psnr"], 3), "dB")
    record("renderer_held_out_face_psnr", round(held["face_psnr"], 3), "dB")
    record("renderer_held_out_face_ssim", round(held["face_ssim"], 4), "")
    record("renderer_held_out_frames", held["frames"], "frames")
    s = time.perf_counter()
    a2e_holdout = ["--holdout", str(args.holdout)] if args.holdout > 0 else []
    prior = [] if args.speech_prior is None else ["--speech-prior", str(args.speech_prior)]
    emodub("train", "a2e", "-w", str(ws), "--actor", "actor", "--iterations", str(args.a2e_iterations),
           *prior, *a2e_holdout, "--restart", *dev, log=log)
    lap("train_a2e", s)
    if a2e_holdout:  # lip sync where there is ground truth: the held-out end driven by its own audio
        a2e_held = emodub("eval", "a2e", "-w", str(ws), "--actor", "actor", "--ablation-name", "none", *dev,
                          log=log)
        record("a2e_held_out_mouth_open_r", a2e_held.get("mouth_open_corr"), "")
        record("a2e_held_out_jaw_r", round(a2e_held["jaw_corr"], 4), "")
        detected = a2e_held.get("mouth_open_corr_detected") or {}
        record("a2e_held_out_mouth_open_r_detected", detected.get("predicted"), "")
        record("a2e_held_out_frames", a2e_held["frames"], "frames")
    s = time.perf_counter()
    shot, shot_source = "interview_shot", args.clip
    if args.unseen_shot_seconds > 0:
        shot, shot_source = "unseen_shot", out / "unseen_shot.mp4"
        if not shot_source.exists():
            clip_tail(args.clip, args.unseen_shot_seconds, shot_source)
        record("unseen_shot_seconds", args.unseen_shot_seconds, "s")
    if not (ws / "shots" / shot / "tracking" / "params.npz").exists():
        emodub("shot", "prepare", "-w", str(ws), str(shot_source), "--shot", shot, log=log)
    lap("shot_prepare", s)
    fps = float(probe(ws / "shots" / shot / "video.mp4").fps)
    (out / "emotions.json").write_text(json.dumps(happy_ramp(fps, args.ramp_seconds)))
    s = time.perf_counter()
    dub = emodub("dub", "-w", str(ws), "--actor", "actor", "--shot", shot, "--audio", str(args.audio),
                 "--emotions", str(out / "emotions.json"), "--out", str(out / "dubbed.mp4"), "--name", "real",
                 "--renderer-model", args.renderer, *dev, log=log)
    lap("dub", s)
    report = json.loads(Path(dub["report"]).read_text())

    video = probe(out / "dubbed.mp4")
    from core.io.audio import load_wav

    wave, sr = load_wav(args.audio)
    audio_s = wave.shape[0] / sr
    record("dub_frames", video.frames, "frames")
    record("dub_video_duration_s", round(video.duration_s, 3), "s")
    record("new_audio_duration_s", round(audio_s, 3), "s")
    record("dub_has_audio", bool(video.has_audio), "")
    record("dub_length_error_frames", round(abs(video.frames - audio_s * fps), 2), "frames")
    record("dub_emotion_sources", report.get("emotion_sources"), "")
    record("dub_render_fps", round(dub["render_fps"], 2), "frames/s")
    record("dub_peak_rss_mb", round(dub["peak_rss_mb"], 1), "MB")
    record("lipsync_params", {k: report["lipsync_proxy"][k] for k in ("peak_corr", "offset_frames")}, "")
    dubbed_sync = detected_lipsync(out / "dubbed.mp4", args.audio)
    record("lipsync_detected_dub", {k: dubbed_sync[k] for k in ("peak_corr", "offset_frames", "corr_at_zero",
                                                                "detected_fraction")}, "")
    original_sync = detected_lipsync(args.clip, clip_dir / "audio.wav")
    record("lipsync_detected_original", {k: original_sync[k] for k in ("peak_corr", "offset_frames",
                                                                       "corr_at_zero")}, "")
    record("tracking", {k: v for k, v in track.items() if isinstance(v, int | float | str)}, "")
    prefix = "unseen_" if args.unseen_shot_seconds > 0 else ""
    contact_strip(ws / "shots" / shot / "video.mp4", out / "dubbed.mp4", ws / "shots" / shot / "crop.json",
                  out / f"{prefix}strip.png")
    side_by_side(ws / "shots" / shot / "video.mp4", out / "dubbed.mp4", ws / "renders" / "real" / "audio.wav",
                 out / f"{prefix}side_by_side.mp4", fps)
    figures["stage_seconds"] = stages
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    emit("summary", figures, "", config)
    (out / "summary.json").write_text(json.dumps({"config": config, **figures}, indent=2))


if __name__ == "__main__":
    main()
