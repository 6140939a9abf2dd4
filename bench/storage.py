"""Storage per second of delivered dub, per delivery format, on a real 1080p take (what docs/scaling.md rests on).

    python build.py bench storage [--video PATH] [--seconds 4]

Writes ``--seconds`` of a 1080p MEAD take (``../shared/data/real/emotion/mead_raw_1080p``, research use, read for
measuring only) through the product's own :class:`core.delivery.writer.DeliveryWriter` in every delivery format
(h264 review, ProRes 422 HQ, ProRes 4444, PNG16 and EXR sequences; 48 kHz stereo PCM / AAC audio beside it), with
the paste matte as a sequence, and records the bytes per second of each: ``delivery_mb_per_s``, and
``matte_mb_per_s`` for the matte sequence. A dub's other files (params.npz, audio.wav, report) are measured from
the same run's sizes and recorded as ``render_extras_kb_per_s``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

from _common import ROOT, SHARED, emit


def folder_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    take = SHARED / "emotion" / "mead_raw_1080p" / "W040_level_3_happy_029.mp4"
    parser.add_argument("--video", type=Path, default=take)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    if not args.video.is_file():
        print(f"# {args.video} is missing: nothing to measure", file=sys.stderr)
        return 0
    import numpy as np

    from core.delivery.formats import FORMATS
    from core.delivery.writer import DeliveryWriter
    from core.io.audio import write_wav
    from core.io.video import iter_frames, probe

    info = probe(args.video, count_frames=False)
    rate = Fraction(info.fps_num, info.fps_den) if info.fps_num else Fraction(info.fps).limit_denominator(1001)
    count = int(math.ceil(args.seconds * float(rate)))
    frames = list(iter_frames(args.video, max_frames=count))
    height, width = frames[0].shape[:2]
    # a face-sized feathered matte in the middle (the matte's size depends on the face, not the format)
    yy, xx = np.mgrid[:height, :width]
    radius = ((xx - width / 2) / (width * 0.15)) ** 2 + ((yy - height * 0.45) / (height * 0.3)) ** 2
    matte = (np.clip(1.5 - radius, 0, 1) * 65535).astype(np.uint16)
    seconds = len(frames) / float(rate)
    tmp = Path(tempfile.mkdtemp(prefix="emodub-bench-storage-"))
    try:
        t = np.arange(int(seconds * 48000)) / 48000
        wav = write_wav(tmp / "audio.wav", np.stack([0.2 * np.sin(2 * np.pi * 220 * t)] * 2, 1).astype(np.float32),
                        48000)
        config = {"video": args.video.name, "width": width, "height": height, "fps": float(rate), "seconds": seconds}
        for name, fmt in FORMATS.items():
            out = tmp / name / ("dubbed" if fmt.sequence else f"dubbed{fmt.ext}")
            with DeliveryWriter(fmt, out, rate, audio=wav, matte="sequence") as writer:
                for frame in frames:
                    writer.write(frame, matte)
            delivery = Path(writer.outputs["delivery"])
            emit("delivery_mb_per_s", round(folder_bytes(delivery) / seconds / 1e6, 3), "MB/s",
                 {**config, "format": name})
            if name == "h264":
                emit("matte_mb_per_s", round(folder_bytes(Path(writer.outputs["matte"])) / seconds / 1e6, 3), "MB/s",
                     {**config, "matte": "sequence (16-bit PNG)"})
        emit("render_extras_kb_per_s", round(folder_bytes(wav) / seconds / 1e3, 1), "kB/s",
             {**config, "what": "the dub audio WAV kept in the render folder (48 kHz stereo)"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
