"""JEAN's audio encoder on a voice it never heard: audio-to-mouth retrieval among 32 windows.

    python build.py bench jean_retrieval --synthetic demo-out/workspace --out /tmp/jean-retrieval \\
        --save /tmp/jean-retrieval/audio_encoder.pt

The landmark autoencoder and the contrastive audio encoder (:mod:`core.renderers.jean.pretrain`) train on many
speakers: the synthetic corpus (``--synthetic``: a workspace with the tracked ``synthetic`` actor) and the real
clips with a face and speech under ``../shared/data/real/`` (each ingested and tracked once into
``--out``/workspace as its own actor, one per speaker), never the held-out speaker ``--test`` (default
``clips/long/office_man_256_25fps_60s.mp4``). On every frame of the held-out clip, the mouth embedding of the
landmark autoencoder and the audio embedding of the audio encoder are computed, and retrieval asks: given a
window's audio, which of 32 windows of the same clip is its mouth? Figures (JSON lines): top-1 accuracy for
single frames and for 5-frame windows, against chance 1/32, and the same for an encoder trained on the
synthetic corpus alone (and, with ``--compare-negatives``, for one whose contrastive negatives may be another
speaker's frames). Each is also measured on the clip's last 20% alone (``jean_retrieval_tail_...``), beside a
reference that did hear the voice: encoders trained on the test clip's own first 80%.

The real clips' licences (MEAD, CREMA-D: research use) do not let an encoder trained on them ship: ``--save``
writes it for measurement and for a user's own renderer (``--set audio_encoder_weights=...``), never into the
package.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
from _common import SHARED, emit, emodub

CANDIDATES = 32
OWN_TAIL = 0.2  # the test clip's last 20%: the own-speaker reference is measured there
# speaker (actor name) -> real clips with a face and speech, relative to ../shared/data/real
REAL_SPEAKERS: dict[str, list[str]] = {
    "interview_woman": ["clips/interview_woman_25fps.mp4"],
    "studio_woman": ["clips/studio_woman_30fps.mp4"],
    "french_address": ["clips/long/french_address_512_30fps_50s.mp4"],
    "cremad_1001": [f"emotion/cremad_actor1001/{e}.flv" for e in
                    ("neutral", "happy", "sad", "angry", "fear", "disgusted")],
    "mead_m030": [f"emotion/mead_m030_256/{e}.mp4" for e in
                  ("happy", "sad", "surprised", "fear", "disgusted", "contempt")],
    "mead_m003": ["emotion/mead_raw_1080p/M003_level_1_disgusted_015.mp4",
                  "emotion/mead_raw_1080p/M003_level_1_happy_024.mp4"],
    "mead_w040": ["emotion/mead_raw_1080p/W040_level_3_happy_029.mp4"],
    "mead_w036": ["emotion/mead_raw_1080p/W036_level_3_happy_007.mp4"],
    "mead_w023": ["emotion/mead_raw_1080p/W023_level_2_surprised_010.mp4"],
    "mead_m026": ["emotion/mead_raw_1080p/M026_level_3_disgusted_018.mp4"],
}


def tracked_actor(ws_root: Path, actor: str, videos: list[Path], log: Path) -> bool:
    """Ingest (256 px crops, 25 fps) and track ``videos`` as ``actor``'s clips, unless done already (videos without
    sound are skipped). Returns whether the actor has a tracked clip."""
    from core.workspace import Workspace

    ws = Workspace.open(ws_root) if (ws_root / "emodub.json").exists() else Workspace.create(ws_root)
    from core.io.video import probe

    for video in videos:
        if not probe(video, count_frames=False).has_audio:  # some MEAD crops carry no sound: nothing to align
            print(json.dumps({"skipped": str(video), "reason": "no audio stream"}), flush=True)
            continue
        clip = video.stem.replace(".", "_")
        done = (ws.clip_dir(actor, clip) / "tracking" / "params.npz").exists()
        if done:
            continue
        emodub("ingest", "-w", str(ws_root), str(video), "--actor", actor, "--clip", clip, "--crop-size", "256",
               "--replace", log=log)
        emodub("track", "-w", str(ws_root), "--actor", actor, "--clip", clip, log=log)
        ws = Workspace.open(ws_root)
    clips = ws.read_manifest()["actors"].get(actor, {}).get("clips", {})
    return any((ws.clip_dir(actor, c) / "tracking" / "params.npz").exists() for c in clips)


def actor_series(ws_root: Path, actor: str, utterance_norm: bool = False) -> list[Any]:
    from core.renderers.base import AudioNeed, RendererNeeds
    from core.renderers.data import actor_sources
    from core.renderers.jean.pretrain import series_of_source
    from core.workspace import Workspace

    needs = RendererNeeds(audio=AudioNeed("mfcc", {"window_video_frames": 8, "utterance_norm": utterance_norm}))
    source, _, _ = actor_sources(Workspace.open(ws_root), actor, needs, 0.0)
    return series_of_source(source, source.face_model().n_expr, speaker=actor)


def split_series(series: Any, fraction: float) -> tuple[Any, Any]:
    """A :class:`~core.renderers.jean.pretrain.Series` cut into its first ``1 - fraction`` and its last ``fraction``."""
    from dataclasses import replace

    cut = len(series) - int(round(len(series) * fraction))

    def part(rows: slice) -> Any:
        return replace(series, landmarks=series.landmarks[rows], audio=series.audio[rows],
                       emotion=series.emotion[rows], frames=series.frames[rows])

    return part(slice(0, cut)), part(slice(cut, None))


def measure(series: list[Any], tests: dict[str, Any], steps: int, label: str, config: dict[str, Any],
            same_speaker_negatives: bool = True) -> tuple[Any, Any]:
    """Train the landmark autoencoder and the audio encoder on ``series``; emit the retrieval on each of ``tests``
    (name -> the test speaker's Series)."""
    from core.renderers.jean.pretrain import retrieval_accuracy, train_audio_encoder, train_landmark_autoencoder

    t0 = time.perf_counter()
    landmark_ae, lae_loss = train_landmark_autoencoder(series, steps)
    audio, nce = train_audio_encoder(series, landmark_ae, steps, same_speaker_negatives=same_speaker_negatives)
    seconds = time.perf_counter() - t0
    info = {**config, "encoder": label, "train_clips": len(series), "train_frames": sum(len(s) for s in series),
            "speakers_trained": len({s.speaker for s in series}), "same_speaker_negatives": same_speaker_negatives,
            "steps": steps, "landmark_loss": round(lae_loss, 4), "info_nce": round(nce, 4),
            "train_seconds": round(seconds, 1), "chance": 1 / CANDIDATES}
    for name, test in tests.items():
        for span in (1, 5):
            top1 = retrieval_accuracy(test, landmark_ae, audio, CANDIDATES, span=span)
            emit(f"jean_retrieval{name}_top1_span{span}", round(top1, 4), "", {**info, "test_frames": len(test)})
    return landmark_ae, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=Path, required=True, help="workspace with the tracked synthetic actor")
    parser.add_argument("--test", type=Path, default=SHARED / "clips" / "long" / "office_man_256_25fps_60s.mp4")
    parser.add_argument("--out", type=Path, default=Path("jean-retrieval"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--save", type=Path, default=None, help="write the multi-speaker encoder here")
    parser.add_argument("--utterance-norm", action="store_true",
                        help="MFCCs standardised over each recording's speech (the a2e's speaker normalisation)")
    parser.add_argument("--compare-negatives", action="store_true",
                        help="also train the multi-speaker encoder with any speaker's frames as negatives")
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ws_root, log = out / "workspace", out / "commands.log"
    if not args.test.exists():
        sys.exit(f"{args.test} does not exist: put the shared data beside the project or pass --test")
    tracked_actor(ws_root, "test_speaker", [args.test], log)
    speakers = {name: [SHARED / p for p in paths if (SHARED / p).exists()] for name, paths in REAL_SPEAKERS.items()}
    speakers = {name: videos for name, videos in speakers.items()
                if videos and tracked_actor(ws_root, name, videos, log)}
    norm = args.utterance_norm
    test = actor_series(ws_root, "test_speaker", norm)[0]
    synthetic = actor_series(args.synthetic.resolve(), "synthetic", norm)
    real = [s for name in speakers for s in actor_series(ws_root, name, norm)]
    config = {"test": str(args.test.name), "candidates": CANDIDATES,
              "speakers": 1 + len(speakers), "utterance_norm": norm}
    own, tail = split_series(test, OWN_TAIL)
    tests = {"": test, "_tail": tail}
    measure(synthetic, tests, args.steps, "synthetic corpus", config)
    if args.compare_negatives:
        measure(synthetic + real, tests, args.steps, "synthetic + real speakers, any speaker's frames as negatives",
                config, same_speaker_negatives=False)
    landmark_ae, audio = measure(synthetic + real, tests, args.steps, "synthetic + real speakers", config)
    # What the encoders reach on a voice they did hear: the test speaker's own first 80%, measured on the rest.
    measure([own], {"_tail": tail}, args.steps, "the test speaker's own first 80%", config)
    if args.save:
        from core.renderers.jean.model import save_audio_encoder

        save_audio_encoder(args.save, landmark_ae, audio, {"speakers": config["speakers"],
                                                           "note": "research-use data: do not ship"})
        print(json.dumps({"saved": str(args.save)}))


if __name__ == "__main__":
    main()
