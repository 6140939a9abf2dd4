"""The plate a dub is composited over: the ingested source at its own precision, or the working copy.

A shot's record (written by ingest) names its ``source`` file, where the working copy came from in it
(``source_region``/``source_scale``: the working copy of a 4K plate is a face region or a downscale) and whether
the working copy's frame ``k`` is the source's frame ``k`` (``source_frames``: the shot kept its own rate and
every frame). When it is, a delivery is composited over the source: decoded once per frame (``rgb48le`` for a
10-16 bit source, ``rgb24`` for an 8-bit one), at its full resolution, with the crop square mapped from working
to source pixels. Otherwise the plate is the working copy ``video.mp4`` (H.264, 8-bit) and
:attr:`Plate.note` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.landmarks.crop import CropTransform


@dataclass(frozen=True)
class Plate:
    """Where the pixels outside the face come from.

    Attributes:
        path: the video file.
        kind: ``"source"`` (the ingested original) or ``"working"`` (the shot's ``video.mp4``).
        depth: 8 or 16: the bits per component frames are decoded at.
        crop: the shot's crop square in this file's pixels.
        width, height: frame size.
        pix_fmt: the file's pixel format.
        note: why the working copy is the plate (empty for the source).
    """

    path: Path
    kind: str
    depth: int
    crop: CropTransform
    width: int
    height: int
    pix_fmt: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "depth": self.depth, "width": self.width,
                "height": self.height, "pix_fmt": self.pix_fmt, "note": self.note}


def crop_on_source(crop: CropTransform, record: dict[str, Any], width: int, height: int) -> CropTransform:
    """The working copy's crop square in the source's pixels (``source_region``/``source_scale`` of the record).

    A working pixel ``u`` is source pixel ``x + (u + 0.5) / sx - 0.5``; the square's corner and side are rounded
    to whole source pixels (exact when the working copy is the source or a region of it at scale 1).
    """
    region = record.get("source_region") or {"x": 0, "y": 0}
    sx, sy = (float(v) for v in (record.get("source_scale") or (1.0, 1.0)))
    scale = (sx + sy) / 2.0
    x0 = int(round(region["x"] + crop.x0 / sx))
    y0 = int(round(region["y"] + crop.y0 / sy))
    size = max(1, int(round(crop.size / scale)))
    return CropTransform(x0=x0, y0=y0, size=size, out_size=crop.out_size, image_width=width, image_height=height,
                         border=crop.border)


def resolve_plate(shot_dir: Path, record: dict[str, Any], crop: CropTransform, n_frames: int) -> Plate:
    """The plate of a shot (see the module docstring)."""
    from core.io.ffmpeg import MediaError
    from core.io.video import probe

    working = shot_dir / "video.mp4"
    source = record.get("source")
    reason = ""
    if not source:
        reason = "the shot records no source file"
    elif not record.get("source_frames"):
        reason = ("the working copy was resampled at ingest (another frame rate, or a variable-rate source), so its "
                  "frames are not the source's")
    elif not Path(source).is_file():
        reason = f"the source file {source} is not there any more"
    else:
        try:
            info = probe(source)
        except MediaError as exc:
            info, reason = None, f"the source file cannot be read ({exc.message})"
        if info is not None:
            if list(record.get("source_size") or []) != [info.width, info.height]:
                reason = f"the source file {source} changed size since ingest"
            elif info.frames < n_frames:
                reason = f"the source file {source} has {info.frames} frames, the shot {n_frames}"
            else:
                depth = 16 if info.bit_depth > 8 else 8
                return Plate(Path(info.path), "source", depth, crop_on_source(crop, record, info.width, info.height),
                             info.width, info.height, info.pix_fmt)
    info = probe(working, count_frames=False)
    return Plate(working, "working", 8, crop, info.width, info.height, info.pix_fmt,
                 note=f"the plate is the shot's H.264 working copy: {reason}")
