"""The exact paste: the rendered face into the plate where the matte is above zero, the plate elsewhere.

:meth:`core.landmarks.crop.CropTransform.paste` blends every pixel of the crop square in float. Where its
weight is exactly 0 that returns the plate's value too, but a Lanczos-resized mask is rarely exactly 0 near its
edge, and a 16-bit plate would move by a code value or two there. Here:

1. the crop-space mask is resized to the square's size on the plate and **quantised to 16 bits**
   (``round(w * 65535) / 65535``): the matte written to disk is exactly the weight used;
2. only pixels whose quantised weight is above zero are blended (``w * face + (1 - w) * plate``, rounded to the
   plate's integer type); every other pixel is the plate's, copied, never converted.

So outside the matte the output *is* the decoded plate, whatever its depth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.landmarks.crop import CropTransform

MATTE_MAX = 65535


def _window(crop: CropTransform) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """(plate rows/cols, square rows/cols) of the part of the crop square inside the plate, or ``None``."""
    left, top, _, _ = crop.outside
    ix0, iy0 = max(0, crop.x0), max(0, crop.y0)
    ix1, iy1 = min(crop.image_width, crop.x0 + crop.size), min(crop.image_height, crop.y0 + crop.size)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return ((slice(iy0, iy1), slice(ix0, ix1)),
            (slice(top, top + iy1 - iy0), slice(left, left + ix1 - ix0)))


def quantise_matte(weight: np.ndarray) -> np.ndarray:
    """Weights in [0, 1] -> uint16 0..65535 (values below half a code become exactly 0)."""
    return np.rint(np.clip(weight, 0.0, 1.0) * MATTE_MAX).astype(np.uint16)


def square_matte(crop: CropTransform, mask: np.ndarray) -> np.ndarray:
    """The crop-space ``mask`` (out_size x out_size, [0, 1]) on the plate's square, quantised: (size, size) uint16."""
    from core.landmarks.crop import resize_image

    mask = np.asarray(mask, np.float32)
    if mask.shape != (crop.out_size, crop.out_size):
        raise ValueError(f"mask must be {crop.out_size}x{crop.out_size}, got {mask.shape}")
    return quantise_matte(resize_image(mask, crop.size, crop.size))


def composite(crop: CropTransform, face: np.ndarray, mask: np.ndarray,
              plate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``face`` into ``plate`` through ``crop`` with the feathered ``mask``.

    Args:
        crop: the square crop transform in the plate's pixels (``image_width``/``image_height`` = the plate's).
        face: (out_size, out_size, 3) float32 crop-space image in [0, 1].
        mask: (out_size, out_size) float weights in [0, 1] (1 = the face).
        plate: (H, W, 3) uint8 or uint16 frame (not modified).

    Returns:
        ``(frame, matte)``: the new frame (``plate``'s dtype; equal to ``plate`` wherever ``matte`` is 0) and the
        (H, W) uint16 matte (0..65535) that was used.
    """
    from core.landmarks.crop import resize_image

    height, width = plate.shape[:2]
    if (width, height) != (crop.image_width, crop.image_height):
        raise ValueError(f"plate is {width}x{height}, the crop was made for {crop.image_width}x{crop.image_height}")
    if not np.issubdtype(plate.dtype, np.integer):
        raise ValueError(f"the plate must be an integer image, got {plate.dtype}")
    top = float(np.iinfo(plate.dtype).max)
    out = plate.copy()
    matte = np.zeros((height, width), np.uint16)
    window = _window(crop)
    if window is None:
        return out, matte
    (prow, pcol), (srow, scol) = window
    weights = square_matte(crop, mask)[srow, scol]
    inside = weights > 0
    if not inside.any():
        return out, matte
    matte[prow, pcol] = weights
    big = resize_image(np.asarray(face, np.float32) * top, crop.size, crop.size)[srow, scol]
    w = weights[inside].astype(np.float32)[:, None] / MATTE_MAX
    region = out[prow, pcol]
    blended = w * big[inside] + (1.0 - w) * region[inside].astype(np.float32)
    region[inside] = np.clip(np.rint(blended), 0, top).astype(plate.dtype)
    out[prow, pcol] = region
    return out, matte
