"""The ``ingest`` job kind: ``emodub ingest VIDEO --workspace W (--actor A [--clip C] [--emotion happy:0.66]
| --shot S)``. See :mod:`core.ingest.ingest` for what it does and refuses."""

from __future__ import annotations

import argparse
from typing import Any

from core.jobs.context import JobContext
from core.jobs.registry import FRAME_RATE, Arg, Bounds, job_kind


@job_kind("ingest",
          help="bring a video into the workspace as actor footage (--actor) or a shot to dub (--shot)",
          args=[Arg("video", help="the video file"),
                Arg("--actor", default=None, help="actor whose footage this is"),
                Arg("--clip", default=None, help="clip name (default: from the file name)"),
                Arg("--shot", default=None, help="ingest as a shot to be dubbed, with this name"),
                Arg("--emotion", default=None,
                    help="emotion label of an actor clip: neutral, happy, happy:0.66, sad:0.5,angry:0.2 ..."),
                Arg("--sentence", default=None,
                    help="what an actor clip says (an id or the words): takes of one sentence in different "
                         "emotions teach the jean renderer how this actor's emotions look apart from speech"),
                Arg("--fps", type=float, default=None, bounds=FRAME_RATE,
                    help="resample the working copy to this frame rate (default: a shot keeps its own rate "
                         "and frames; actor footage is normalised to 25)"),
                Arg("--keep-fps", action="store_true", dest="keep_fps",
                    help="keep the source's frame rate for actor footage too"),
                Arg("--landmarks", action=argparse.BooleanOptionalAction, default=True,
                    help="detect face landmarks and the stable crop while ingesting (default on)"),
                Arg("--replace", action="store_true", help="replace an existing clip/shot of that name"),
                Arg("--max-side", type=int, default=1920, dest="max_side",
                    help="longest side of the working copy; larger footage is cropped/downscaled "
                         "(default 1920)"),
                Arg("--large", choices=["crop", "downscale"], default="crop",
                    help="larger footage: keep a region around the face (crop, default) or downscale it"),
                Arg("--max-faces", type=int, default=1, dest="max_faces", bounds=Bounds(1, 8),
                    help="faces to look for per frame (default 1); above 1 every face gets its own track and id, "
                         "and tracking and dubbing then take --face ID"),
                Arg("--crop-size", type=int, default=256, dest="crop_size",
                    help="side of the stable square face crop (READ: 256; 512 for high resolution)")])
def run_ingest(ctx: JobContext) -> dict[str, Any]:
    from core.ingest.ingest import IngestConfig, ingest
    from core.landmarks.crop import CropConfig

    p = ctx.params
    if not p.get("video"):
        from core.jobs.context import JobFailed

        raise JobFailed("no video given", hint="emodub ingest VIDEO --workspace W --actor NAME",
                        code="bad_params")
    config = IngestConfig(fps=float(p["fps"]) if p.get("fps") is not None else None,  # 0 is refused, not native
                          keep_fps=bool(p.get("keep_fps", False)),
                          landmarks=bool(p.get("landmarks", True)), replace=bool(p.get("replace", False)),
                          max_side=int(p.get("max_side") or 1920), large=str(p.get("large") or "crop"),
                          max_faces=int(p.get("max_faces") or 1),
                          crop=CropConfig(out_size=int(p.get("crop_size") or 256)))
    result = ingest(ctx.workspace, p["video"], actor=p.get("actor"), clip=p.get("clip"), shot=p.get("shot"),
                    emotion=p.get("emotion"), sentence=p.get("sentence"), config=config, reporter=ctx)
    root = ctx.workspace.root
    rec = result.record
    for key, kind in (("video", "video"), ("audio", "audio"), ("landmarks", "landmarks"), ("crop", "crop")):
        if rec.get(key):
            ctx.artifact(root / rec[key], kind)
    outputs: dict[str, Any] = {
        "folder": str(result.folder), "video": str(root / rec["video"]),
        "audio": str(root / rec["audio"]) if rec.get("audio") else None, "frames": rec["frames"],
        "fps": rec["fps"], "fps_num": rec["fps_num"], "fps_den": rec["fps_den"], "timecode": rec.get("timecode"),
        "width": rec["width"], "height": rec["height"], "warnings": result.warnings}
    if p.get("shot"):
        outputs["shot"] = p["shot"]
    else:
        outputs["actor"], outputs["clip"] = p.get("actor"), result.folder.name
        if p.get("sentence"):
            outputs["sentence"] = str(p["sentence"])
    if rec.get("faces") is not None:
        outputs["faces"] = rec["faces"]
    if result.track is not None:
        outputs["detection_rate"] = rec["landmark_stats"]["detection_rate"]
        outputs["flagged_frames"] = rec["landmark_stats"]["flagged"]
    return outputs
