"""Train the speech encoder (:mod:`core.audio.speech_encoder`) on LibriSpeech and measure it (JSON lines).

    python build.py bench speech_encoder                 # train and measure; nothing written into the package
    python build.py bench speech_encoder --save          # ... and write core/audio/weights/speech_encoder.pt

Trains on LibriSpeech train-clean-100 (one utterance per reader in ``../shared/data``; CC BY 4.0, so the weights may
ship) but the three readers the voice benches dub with (``MEASURED_READERS``), and measures on the 10 test-other
readers it never heard: how often it names the acoustic units of their unwarped frames right from the frames heard
with the furthest warps (0.82 and 1.22), against the nearest unit of the warped log-mel itself. The a2e's own
figures (``emodub eval a2e``, ``bench/voice_posed.py``) say whether that helps the lips.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import ROOT, SHARED, emit
from voice_dubs import DEFAULT_VOICES

LIBRISPEECH = SHARED / "speech" / "librispeech_261_speakers"


# The readers whose voices bench/voice_dubs.py and bench/voice_posed.py dub with stay unheard by the encoder.
MEASURED_READERS = {path.name.split("-")[0] for path in DEFAULT_VOICES.values() if path.suffix == ".flac"}


def load_waves(folder: Path, leave_out: set[str] | frozenset[str] = frozenset()) -> list[np.ndarray]:
    """Every utterance under ``folder`` (mono 16 kHz at the a2e's speech level) but those of the ``leave_out``
    speakers."""
    from core.audio.features import MelExtractor
    from core.audio.io import load_audio

    prepare = MelExtractor().prepare
    return [prepare(*load_audio(path, 16000)) for path in sorted(folder.rglob("*.flac"))
            if path.name.split("-")[0] not in leave_out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128, help="frames per segment (10 ms each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", action="store_true", help="write the package's weights file")
    parser.add_argument("--out", type=Path, default=None, help="write the weights here instead")
    args = parser.parse_args()

    import torch
    from tqdm import tqdm

    from core.audio.features import AudioFeatureConfig
    from core.audio.speech_encoder import (
        SPEECH_ENCODER_FILE,
        TRAIN_WARPS,
        save_speech_encoder,
        train_speech_encoder,
        unit_accuracy,
        utterance_views,
    )

    train_dir, test_dir = LIBRISPEECH / "librispeech_train-clean-100", LIBRISPEECH / "librispeech_test-other"
    if not train_dir.is_dir():
        raise SystemExit(f"LibriSpeech is not at {LIBRISPEECH} (see ../shared/data/SOURCES.md)")
    t0 = time.perf_counter()
    train_views = utterance_views(load_waves(train_dir, MEASURED_READERS))
    test_views = utterance_views(load_waves(test_dir))
    seconds = sum(v.shape[1] for v in train_views) / 100
    config = {"steps": args.steps, "batch": args.batch, "length": args.length, "seed": args.seed,
              "train_utterances": len(train_views), "left_out_readers": sorted(MEASURED_READERS),
              "train_minutes": round(seconds / 60, 1),
              "test_utterances": len(test_views), "warps": list(TRAIN_WARPS), "threads": torch.get_num_threads()}
    emit("features_seconds", round(time.perf_counter() - t0, 1), "s", config)

    bar = tqdm(total=args.steps, desc="speech encoder", unit="step")

    def progress(step: int, total: int, loss: float) -> None:
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")

    t0 = time.perf_counter()
    encoder, losses, centres = train_speech_encoder(train_views, args.steps, batch=args.batch, length=args.length,
                                                    seed=args.seed, progress=progress)
    bar.close()
    config["train_seconds"] = round(time.perf_counter() - t0, 1)
    emit("final_loss", round(float(np.mean(losses[-100:])), 4), "nats", config)

    figures = {}
    for warp in (0, len(TRAIN_WARPS) - 1):
        by_encoder, by_nearest = unit_accuracy(encoder, test_views, centres, warp)
        figures[f"units_at_{TRAIN_WARPS[warp]:g}"] = {"encoder": round(by_encoder, 4), "log_mel": round(by_nearest, 4)}
        emit("unit_accuracy", figures[f"units_at_{TRAIN_WARPS[warp]:g}"], "fraction",
             {**config, "warp": TRAIN_WARPS[warp], "chance": round(1 / len(centres), 4)})
    report = {**config, "data": f"LibriSpeech train-clean-100 (CC BY 4.0), {len(train_views)} readers",
              "test_other": figures, "feature_config": AudioFeatureConfig().to_dict()}
    target = args.out or (SPEECH_ENCODER_FILE if args.save else None)
    if target is not None:
        save_speech_encoder(encoder, target, report)
        emit("saved", str(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target), "", config)
    print(json.dumps({"summary": figures}))


if __name__ == "__main__":
    main()
