"""A stable square crop per clip (READ Avatars §3.4) and its transform to and from the full frame.

READ crops "every frame to a square shape of 256 pixels ... by estimating a bounding box for each
frame with padding and then finding the smallest square that covers the union of these boxes", then
resizes that square to the working resolution. :func:`stable_crop` does exactly that from the clip's
68-point landmarks:

1. per frame, the box of the 68 points, padded by ``pad`` of its width/height on every side plus
   ``pad_top`` more above (the 68 points stop at the brows; the renderer needs the forehead);
2. the union of those boxes over the usable (not flagged) frames, clipped to the image;
3. the smallest square covering it, centred on it, moved inside the image when it fits.

When the square is larger than the image in one direction (a face filling a portrait frame's width),
it cannot fit: it stays centred on the face and the part outside the image is filled by repeating the
border pixels (``border="edge"``, default) or with black (``"constant"``). ``crop.json`` records the
square and how much of it lies outside (``outside``: left, top, right, bottom in pixels), so pasting
back writes only the part inside the plate.

Coordinates: pixel centres at integers, in the full frame and in the crop alike. A full-frame point
``p`` maps to ``(p + 0.5 - (x0, y0)) * out_size / size - 0.5`` in the crop (the resize is edge-aligned,
as PIL's). ``crop.json`` = ``{"x0", "y0", "size", "out_size"}`` plus ``image_width``,
``image_height``, ``outside``, ``border``, ``pad``, ``pad_top``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CropConfig:
    """Settings of :func:`stable_crop`.

    Attributes:
        pad: fraction of a frame's 68-point box width (height) added left and right (top and bottom).
        pad_top: extra fraction of the box height added above, for the forehead.
        out_size: side of the resized square crop (READ uses 256; 512 for a high-resolution renderer).
        border: ``"edge"`` or ``"constant"`` (black): how parts of the square outside the image are filled.
    """

    pad: float = 0.2
    pad_top: float = 0.3
    out_size: int = 256
    border: str = "edge"


@dataclass(frozen=True)
class CropTransform:
    """A square ``size`` x ``size`` region with top-left pixel ``(x0, y0)`` of a full frame, resized to
    ``out_size`` x ``out_size``. ``x0``/``y0`` may be negative and ``x0 + size`` may exceed the image
    when the square does not fit (see the module docstring)."""

    x0: int
    y0: int
    size: int
    out_size: int
    image_width: int
    image_height: int
    border: str = "edge"

    def __post_init__(self) -> None:
        if self.size <= 0 or self.out_size <= 0:
            raise ValueError(f"crop size and out_size must be > 0, got {self.size}, {self.out_size}")
        if self.border not in ("edge", "constant"):
            raise ValueError(f"border must be 'edge' or 'constant', got {self.border!r}")

    @property
    def scale(self) -> float:
        """Crop pixels per full-frame pixel."""
        return self.out_size / self.size

    @property
    def outside(self) -> tuple[int, int, int, int]:
        """Pixels of the square beyond the image: (left, top, right, bottom)."""
        return (max(0, -self.x0), max(0, -self.y0), max(0, self.x0 + self.size - self.image_width),
                max(0, self.y0 + self.size - self.image_height))

    # -- points ----------------------------------------------------------------------------------
    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Full-frame pixel coordinates (..., 2) -> crop pixel coordinates (..., 2)."""
        p = np.asarray(points, np.float64)
        return ((p + 0.5 - np.array([self.x0, self.y0])) * self.scale - 0.5).astype(np.float32)

    def from_crop(self, points: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates (..., 2) -> full-frame pixel coordinates (..., 2)."""
        p = np.asarray(points, np.float64)
        return ((p + 0.5) / self.scale - 0.5 + np.array([self.x0, self.y0])).astype(np.float32)

    def matrix(self) -> np.ndarray:
        """(3, 3) homogeneous matrix of :meth:`to_crop` (x, y, 1 column vectors)."""
        s = self.scale
        return np.array([[s, 0.0, (0.5 - self.x0) * s - 0.5], [0.0, s, (0.5 - self.y0) * s - 0.5],
                         [0.0, 0.0, 1.0]])

    # -- images ----------------------------------------------------------------------------------
    def _square(self, frame: np.ndarray) -> np.ndarray:
        """The size x size region of ``frame`` (padded where the square leaves the image)."""
        height, width = frame.shape[:2]
        if (width, height) != (self.image_width, self.image_height):
            raise ValueError(f"frame is {width}x{height}, the crop was made for "
                             f"{self.image_width}x{self.image_height}")
        left, top, right, bottom = self.outside
        region = frame[max(0, self.y0):min(height, self.y0 + self.size),
                       max(0, self.x0):min(width, self.x0 + self.size)]
        if left or top or right or bottom:
            pads = ((top, bottom), (left, right)) + ((0, 0),) * (frame.ndim - 2)
            region = np.pad(region, pads, mode="edge" if self.border == "edge" else "constant")
        return region

    def crop_image(self, frame: np.ndarray) -> np.ndarray:
        """The crop of ``frame`` ((H, W) or (H, W, C), uint8 or float), resized to out_size x out_size."""
        return resize_image(self._square(frame), self.out_size, self.out_size)

    def paste(self, crop_img: np.ndarray, plate: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Put a crop-space image back into a full frame.

        Args:
            crop_img: (out_size, out_size, C) image in crop space (e.g. a rendered face).
            plate: (H, W, C) full frame it goes into (not modified).
            mask: optional (out_size, out_size) weights in [0, 1] (1 = take ``crop_img``); default all 1.

        Returns:
            A new (H, W, C) frame of ``plate``'s dtype: ``mask * crop + (1 - mask) * plate`` inside the
            square, ``plate`` elsewhere (parts of the square outside the plate are dropped).
        """
        crop_img = np.asarray(crop_img)
        if crop_img.shape[:2] != (self.out_size, self.out_size):
            raise ValueError(f"crop image must be {self.out_size}x{self.out_size}, got {crop_img.shape[:2]}")
        height, width = plate.shape[:2]
        if (width, height) != (self.image_width, self.image_height):
            raise ValueError(f"plate is {width}x{height}, the crop was made for "
                             f"{self.image_width}x{self.image_height}")
        big = resize_image(crop_img, self.size, self.size).astype(np.float32)
        if mask is None:
            weight = np.ones((self.size, self.size), np.float32)
        else:
            mask = np.asarray(mask, np.float32)
            if mask.shape != (self.out_size, self.out_size):
                raise ValueError(f"mask must be {self.out_size}x{self.out_size}, got {mask.shape}")
            weight = np.clip(resize_image(mask, self.size, self.size), 0.0, 1.0)
        left, top, _, _ = self.outside
        ix0, iy0 = max(0, self.x0), max(0, self.y0)
        ix1, iy1 = min(width, self.x0 + self.size), min(height, self.y0 + self.size)
        out = plate.copy()
        if ix1 <= ix0 or iy1 <= iy0:
            return out
        sub = (slice(top, top + iy1 - iy0), slice(left, left + ix1 - ix0))
        w = weight[sub]
        if plate.ndim == 3:
            w = w[..., None]
        src = big[sub] if big.ndim == plate.ndim else big[sub][..., None]
        blended = w * src + (1.0 - w) * plate[iy0:iy1, ix0:ix1].astype(np.float32)
        if np.issubdtype(plate.dtype, np.integer):
            blended = np.clip(np.rint(blended), np.iinfo(plate.dtype).min, np.iinfo(plate.dtype).max)
        out[iy0:iy1, ix0:ix1] = blended.astype(plate.dtype)
        return out

    # -- storage ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"x0": self.x0, "y0": self.y0, "size": self.size, "out_size": self.out_size,
                "image_width": self.image_width, "image_height": self.image_height,
                "outside": list(self.outside), "border": self.border}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CropTransform:
        try:
            return cls(x0=int(data["x0"]), y0=int(data["y0"]), size=int(data["size"]),
                       out_size=int(data["out_size"]), image_width=int(data["image_width"]),
                       image_height=int(data["image_height"]), border=str(data.get("border", "edge")))
        except KeyError as exc:
            raise ValueError(f"crop.json lacks the field {exc.args[0]!r}") from None

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write ``crop.json`` atomically (``extra`` fields are added, e.g. the config used)."""
        from core.workspace import atomic_write_json

        return atomic_write_json(path, {**self.to_json(), **extra})

    @classmethod
    def load(cls, path: str | Path) -> CropTransform:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (H, W) or (H, W, C) uint8/float images (Lanczos when shrinking, bicubic when enlarging).

    uint8 1/3/4-channel images go through PIL in one call; other images channel by channel in float.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr.copy()
    shrink = width * height < arr.shape[0] * arr.shape[1]
    method = Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC
    if arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] in (3, 4)):
        return np.asarray(Image.fromarray(arr).resize((width, height), method))
    if arr.ndim == 2:
        return np.asarray(Image.fromarray(arr.astype(np.float32)).resize((width, height), method))
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(arr[..., c], np.float32)).resize(
        (width, height), method)) for c in range(arr.shape[2])]
    out = np.stack(channels, axis=-1)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(arr.dtype)
    return out.astype(arr.dtype)


def padded_boxes(lmk68: np.ndarray, pad: float, pad_top: float) -> np.ndarray:
    """(N, 4) boxes (x0, y0, x1, y1) of each frame's 68 points, padded as :class:`CropConfig` says."""
    pts = np.asarray(lmk68, np.float64)
    lo, hi = pts.min(axis=1), pts.max(axis=1)
    extent = hi - lo
    return np.concatenate([lo - extent * [pad, pad + pad_top], hi + extent * pad], axis=1)


def stable_crop(lmk68: np.ndarray, image_size: tuple[int, int], config: CropConfig | None = None, *,
                usable: np.ndarray | None = None) -> CropTransform:
    """The clip's stable square crop (see the module docstring).

    Args:
        lmk68: (N, 68, 2) landmarks in pixels.
        image_size: (width, height) of the frames.
        config: padding, output size, border fill.
        usable: (N,) bool frames to use (default: all); e.g. ``~track.flagged``.
    """
    config = config or CropConfig()
    width, height = (int(v) for v in image_size)
    pts = np.asarray(lmk68, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2) or len(pts) == 0:
        raise ValueError(f"lmk68 must be (N, 68, 2) with N >= 1, got {pts.shape}")
    if usable is not None:
        usable = np.asarray(usable, bool)
        if usable.any():
            pts = pts[usable]
    pts = pts[np.all(np.isfinite(pts), axis=(1, 2))]
    if len(pts) == 0:
        raise ValueError("no frame with finite landmarks to place the crop")
    boxes = padded_boxes(pts, config.pad, config.pad_top) + 0.5  # edge coordinates: pixel i spans [i, i+1]
    # the union, clipped to the image, grown to whole pixels
    lo = np.floor(np.maximum(boxes[:, :2].min(axis=0), 0.0)).astype(int)
    hi = np.ceil(np.minimum(boxes[:, 2:].max(axis=0), [width, height])).astype(int)
    extent = hi - lo
    if np.any(extent <= 0):
        raise ValueError("the face boxes lie outside the image")
    size = max(8, int(extent.max()))
    # centre the square on the union along its shorter side, then move it inside the image where it
    # fits; where it cannot (size > image side), any position covers that whole side
    x0, y0 = (int(v) for v in lo - (size - extent) // 2)
    x0 = int(np.clip(x0, min(0, width - size), max(0, width - size)))
    y0 = int(np.clip(y0, min(0, height - size), max(0, height - size)))
    return CropTransform(x0=x0, y0=y0, size=int(size), out_size=int(config.out_size), image_width=width,
                         image_height=height, border=config.border)
