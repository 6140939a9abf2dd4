"""The plate behind the head: background and torso come from the plate, and the region the head covered is
filled from its surroundings (push-pull), so the rendered head is composited over a plate without the old
head (LipNeRF §III-D), and wherever the new head is smaller than the old one (a closed jaw where the shot's was
open) the neck continues the plate's neck seamlessly instead of showing the old chin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fill_holes(image: torch.Tensor, known: torch.Tensor, min_size: int = 2) -> torch.Tensor:
    """Fill the pixels where ``known`` is 0 from their surroundings (push-pull over an image pyramid).

    Args:
        image: (B, C, H, W).
        known: (B, 1, H, W) in [0, 1] (1 = keep the pixel).
        min_size: the coarsest pyramid level's smaller side.

    Returns:
        (B, C, H, W): ``image`` where ``known`` is 1, a smooth continuation of the known pixels elsewhere.
    """
    premultiplied, weight = image * known, known
    levels = [(premultiplied, weight)]
    while min(premultiplied.shape[-2:]) >= 2 * min_size:
        premultiplied, weight = F.avg_pool2d(premultiplied, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)
        levels.append((premultiplied, weight))
    p, w = levels[-1]
    colour = p / w.clamp_min(1e-6)
    # where nothing at all is known at the coarsest level, use the mean known colour of the image
    mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1e-6)
    colour = torch.where(w > 0, colour, mean.expand_as(colour))
    for p, w in reversed(levels[:-1]):
        up = F.interpolate(colour, size=p.shape[-2:], mode="bilinear", align_corners=False)
        # p = w * (mean of the known pixels): a blend that keeps known pixels exactly where w = 1
        colour = p + (1.0 - w) * up
    return colour


def chin_gap_px(opacity: torch.Tensor, replaced: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B,) the largest number of pixels in one column where the old face is replaced but the rendered head is
    (nearly) transparent: the gap between the rendered chin and the plate's neck that the fill must cover.

    Args:
        opacity: (B, 1, H, W) the rendered head's opacity.
        replaced: (B, 1, H, W) the region of the plate's own face that the dub replaces.
    """
    gap = (replaced > 0.5) & (opacity < threshold)
    return gap.sum(2).amax((1, 2)).float()
