"""Draw landmarks on frames, for checking a detector or a tracking result by eye.

* :func:`draw_landmarks` — one frame with the 68 points (and optionally their numbers, the iBUG
  contours and dense MediaPipe points); colour says whether the frame was detected, interpolated or
  flagged.
* :func:`contact_sheet` — a grid of several annotated frames in one image (save it as PNG).
* :func:`write_overlay_video` — stream a video with the landmark track drawn on every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .mapping import ibug68_segments

if TYPE_CHECKING:
    from .track import LandmarkTrack

DETECTED = (40, 230, 60)
INTERPOLATED = (255, 200, 0)
FLAGGED = (255, 40, 40)


def draw_landmarks(frame: np.ndarray, lmk68: np.ndarray, *, color: tuple[int, int, int] = DETECTED,
                   radius: float | None = None, lines: bool = True, numbers: bool = False,
                   dense: np.ndarray | None = None, scale: float = 1.0,
                   label: str | None = None) -> np.ndarray:
    """A copy of ``frame`` with landmarks drawn.

    Args:
        frame: (H, W, 3) uint8.
        lmk68: (68, 2) pixel coordinates (NaN rows are skipped).
        color: colour of points and contours.
        radius: point radius in output pixels (default: from the face size).
        lines: draw the iBUG contours.
        numbers: write each point's 0-based index beside it.
        dense: optional (K, 2) extra points (e.g. the 478 MediaPipe points) drawn small and grey.
        scale: enlarge the output by this factor first (numbers are readable on a small face).
        label: text written in the top-left corner.

    Returns:
        (round(H*scale), round(W*scale), 3) uint8.
    """
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(frame, np.uint8))
    if scale != 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    pts = np.asarray(lmk68, np.float64) * scale
    ok = np.all(np.isfinite(pts), axis=1)
    if radius is None:
        span = np.ptp(pts[ok], axis=0).max() if ok.any() else 100.0
        radius = float(np.clip(span / 120.0, 1.0, 4.0))
    if dense is not None:
        d = np.asarray(dense, np.float64)[:, :2] * scale
        for x, y in d[np.all(np.isfinite(d), axis=1)]:
            draw.point((x, y), fill=(200, 200, 200))
    if lines:
        for a, b in ibug68_segments():
            if ok[a] and ok[b]:
                draw.line([tuple(pts[a]), tuple(pts[b])], fill=color, width=max(1, int(radius / 2)))
    for i, (x, y) in enumerate(pts):
        if not ok[i]:
            continue
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
        if numbers:
            draw.text((x + radius + 1, y - radius - 8), str(i), fill=(255, 255, 255), stroke_width=1,
                      stroke_fill=(0, 0, 0))
    if label:
        draw.text((4, 4), label, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(img)


def _frame_color(track: LandmarkTrack, i: int) -> tuple[int, int, int]:
    if track.flagged[i]:
        return FLAGGED
    if track.interpolated[i]:
        return INTERPOLATED
    return DETECTED


def annotate_frame(frame: np.ndarray, track: LandmarkTrack, i: int, **kwargs: object) -> np.ndarray:
    """Frame ``i`` of a clip with the track's landmarks and a label (index, confidence, status)."""
    status = "flagged" if track.flagged[i] else "interpolated" if track.interpolated[i] else "detected"
    label = f"frame {i}  conf {track.confidence[i]:.2f}  {status}"
    dense = None if track.lmk_dense is None else track.lmk_dense[i]
    return draw_landmarks(frame, track.lmk68[i], color=_frame_color(track, i), label=label,
                          dense=kwargs.pop("dense", dense), **kwargs)  # type: ignore[arg-type]


def contact_sheet(images: Sequence[np.ndarray], columns: int = 3,
                  tile_width: int | None = None) -> np.ndarray:
    """Tile images (each (H, W, 3) uint8) into one grid image, resized to a common tile width."""
    from PIL import Image

    if not images:
        raise ValueError("no images for the contact sheet")
    tile_width = tile_width or images[0].shape[1]
    tiles = []
    for im in images:
        h, w = im.shape[:2]
        tiles.append(np.asarray(Image.fromarray(im).resize((tile_width, round(h * tile_width / w)),
                                                          Image.Resampling.BILINEAR)))
    tile_h = max(t.shape[0] for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * tile_h, columns * tile_width, 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * tile_h:r * tile_h + t.shape[0], c * tile_width:(c + 1) * tile_width] = t
    return sheet


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image (PNG/JPEG by suffix) atomically."""
    from PIL import Image

    from core.workspace import atomic_path

    out = Path(path)
    with atomic_path(out) as tmp:
        Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(tmp, format=None if out.suffix else "PNG")
    return out


def write_overlay_video(video: str | Path, track: LandmarkTrack, out: str | Path, *, fps: float | None = None,
                        numbers: bool = False, crf: int = 23) -> Path:
    """Stream ``video`` with ``track`` drawn on every frame into ``out`` (atomic mp4)."""
    from core.io.video import VideoWriter, iter_frames, probe

    info = probe(video, count_frames=False)
    with VideoWriter(out, fps or info.fps, crf=crf, preset="veryfast") as writer:
        for i, frame in enumerate(iter_frames(video, info=info)):
            if i >= len(track):
                break
            writer.write(annotate_frame(frame, track, i, numbers=numbers, dense=None))
    return Path(out)
