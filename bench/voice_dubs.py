"""Lip sync across voices: one shot dubbed with several speakers' audio, per a2e model, side by side.

    .venv/bin/python bench/voice_dubs.py -w WS --actor cremad --shot cremad_neutral \\
        --a2e-models a2e,a2e_voices --renderer-model neural_texture --out /tmp/voices

For every voice (default: German, French and English radio speech from ``../shared/data/real/audio`` and three
LibriSpeech readers, two women and one man) and every a2e model, ``emodub dub`` renders the shot with the
voice's first ``--seconds`` (the shot's frames loop when the audio outlasts them), then the lip-sync proxy
is measured on the dub: MediaPipe landmarks detected on its frames, mouth opening against the sound track's
envelope, peak correlation and its offset in frames (``core.eval.video_metrics.sync_report``). No ground
truth exists for another speaker's audio on this face, so this proxy is what there is; ``eval a2e``'s
``mouth_open_corr_voices`` is the measure with ground truth (the actor's own held-out audio, shifted).

Prints one JSON line per dub and a last ``summary`` line; writes ``table.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _common import SHARED, emit, emodub

LIBRISPEECH = SHARED / "speech" / "librispeech_261_speakers" / "librispeech_train-clean-100"
# Reader sex from the median f0 of the voiced frames (librosa.yin): 216 and 205 Hz, 123 Hz.
DEFAULT_VOICES: dict[str, Path] = {
    "german": SHARED / "audio" / "german_48k.wav",
    "french": SHARED / "audio" / "french_cv_16k.wav",
    "english_radio": SHARED / "audio" / "english_radio_16k.wav",
    "libri_103_f": LIBRISPEECH / "103-1240-0000.flac",
    "libri_1088_f": LIBRISPEECH / "1088-129236-0000.flac",
    "libri_1034_m": LIBRISPEECH / "1034-121119-0000.flac",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--shot", required=True)
    parser.add_argument("--a2e-models", default="a2e", help="comma-separated a2e model names")
    parser.add_argument("--renderer-model", default=None)
    parser.add_argument("--voices", default=None, help="NAME=FILE,... (default: the six of DEFAULT_VOICES)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of each voice dubbed")
    parser.add_argument("--out", type=Path, default=Path("voice-dubs"))
    args = parser.parse_args()

    from core.eval.video_metrics import sync_report

    voices = DEFAULT_VOICES if not args.voices else {
        k: Path(v) for k, v in (item.split("=", 1) for item in args.voices.split(","))}
    missing = [str(p) for p in voices.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"voice files missing: {missing} (../shared/data, see its SOURCES.md)")
    models = [m.strip() for m in args.a2e_models.split(",") if m.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "commands.log"
    config = {"workspace": str(args.workspace), "actor": args.actor, "shot": args.shot,
              "renderer_model": args.renderer_model, "seconds": args.seconds}
    rows: dict[str, dict[str, Any]] = {}
    for voice, path in voices.items():
        for model in models:
            name = f"voices-{model}-{voice}"
            video = args.out / f"{name}.mp4"
            renderer = ["--renderer-model", args.renderer_model] if args.renderer_model else []
            emodub("dub", "-w", str(args.workspace), "--actor", args.actor, "--shot", args.shot, "--audio", str(path),
                   "--audio-duration", str(args.seconds), "--a2e-model", model, *renderer, "--name", name,
                   "--out", str(video.resolve()), log=log)
            sync = sync_report(video)
            row = {"peak_r": round(float(sync["peak_corr"]), 3), "offset_frames": int(sync["offset_frames"]),
                   "r_at_0": round(float(sync["corr_at_zero"]), 3),
                   "detected_fraction": round(float(sync["detected_fraction"]), 3)}
            rows.setdefault(voice, {})[model] = row
            emit(f"lipsync_{voice}_{model}", row, "r / frames", {**config, "voice": str(path), "a2e_model": model})
    lines = ["| voice | " + " | ".join(f"{m}: peak r (offset)" for m in models) + " |",
             "| --- | " + " | ".join("---" for _ in models) + " |"]
    for voice, by_model in rows.items():
        cells = [f"{by_model[m]['peak_r']:.2f} ({by_model[m]['offset_frames']:+d})" for m in models]
        lines.append(f"| {voice} | " + " | ".join(cells) + " |")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    emit("summary", rows, "", config)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
