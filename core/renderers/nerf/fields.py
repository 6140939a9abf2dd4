"""Conditional radiance fields: (position encoding, condition, view direction) -> (density, colour).

:class:`ConditionedMLP` is AD-NeRF's field (LipNeRF §III-E: 8 linear layers of width 128 with ReLU, the input
concatenated again halfway, a density head, and a colour branch that also sees the encoded view direction),
with the per-frame condition (expression, latent code...) concatenated to the encoded position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConditionedMLP(nn.Module):
    """F(enc(x), cond, enc(d)) -> (sigma, rgb).

    Args:
        position_dim: size of the encoded position.
        condition_dim: size of the per-point condition vector.
        direction_dim: size of the encoded view direction.
        width: hidden width.
        depth: hidden layers before the density head.
        skips: layers whose input is concatenated with the network's input again.
        colour_width: hidden width of the colour branch.
    """

    def __init__(self, position_dim: int, condition_dim: int, direction_dim: int, width: int = 128,
                 depth: int = 8, skips: tuple[int, ...] = (4,), colour_width: int = 64) -> None:
        super().__init__()
        in_dim = position_dim + condition_dim
        self.skips = skips
        layers = []
        for i in range(depth):
            n_in = in_dim if i == 0 else width + (in_dim if i in skips else 0)
            layers.append(nn.Linear(n_in, width))
        self.layers = nn.ModuleList(layers)
        self.density = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.colour = nn.Sequential(nn.Linear(width + direction_dim, colour_width), nn.ReLU(),
                                    nn.Linear(colour_width, 3))

    def forward(self, position: torch.Tensor, condition: torch.Tensor, direction: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, *) inputs -> (P,) density >= 0 and (P, 3) colour in [0, 1]."""
        inputs = torch.cat([position, condition], -1)
        h = inputs
        for i, layer in enumerate(self.layers):
            if i in self.skips:
                h = torch.cat([h, inputs], -1)
            h = F.relu(layer(h))
        sigma = F.softplus(self.density(h)[..., 0] - 1.0)  # shifted: empty space starts nearly transparent
        rgb = torch.sigmoid(self.colour(torch.cat([self.feature(h), direction], -1)))
        return sigma, rgb
