"""Conditional radiance fields: (position encoding, condition, view direction) -> (density, colour).

:class:`ConditionedMLP` is AD-NeRF's field (LipNeRF §III-E: 8 linear layers of width 128 with ReLU, the input
concatenated again halfway, a density head, and a colour branch that also sees the encoded view direction),
with the per-frame condition (expression, latent code...) concatenated to the encoded position.

:class:`AttentionGatedField` is ER-NeRF's small field for grid encodings: a region attention computed from the
encoded position gates each channel of the per-frame condition (audio, landmarks, eyes), so every part of the
head learns which conditions move it (the mouth the landmarks and audio, the lids the eye condition, the scalp
none); a shallow density MLP and a colour MLP on its geometric feature and the view direction.

:class:`ConditionedDeformation` moves canonical points by a condition-dependent offset before any field reads them
(the bending of D-NeRF and Nerfies, conditioned on the frame's condition instead of time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encodings import FrequencyEncoding


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


class AttentionGatedField(nn.Module):
    """F(f_x, c, enc(d)) -> (sigma, rgb) with the condition gated per point: ``a(x) = sigmoid(W f_x + b)`` (one
    gate per condition channel, ER-NeRF's region attention), density MLP on ``[f_x, a(x) * c]``, colour MLP on
    ``[its geometric feature, enc(d)]``.

    The first layer of each MLP is two matrices (``W [u, v] = W_u u + W_v v``) rather than one on a
    concatenation: the same function without copying every sample's inputs into a new tensor.

    Args:
        position_dim: size of the encoded position f_x.
        condition_dim: C, the per-frame condition (0: an unconditioned field).
        direction_dim: size of the encoded view direction.
        width: hidden width of the density MLP.
        depth: hidden layers of the density MLP (>= 1).
        geo_dim: geometric feature passed from the density to the colour MLP.
        colour_width: hidden width of the colour MLP.
        colour_depth: hidden layers of the colour MLP (>= 1).
    """

    def __init__(self, position_dim: int, condition_dim: int, direction_dim: int, width: int = 64, depth: int = 2,
                 geo_dim: int = 15, colour_width: int = 64, colour_depth: int = 1) -> None:
        super().__init__()
        if depth < 1 or colour_depth < 1:
            raise ValueError("the density and colour MLPs need at least one hidden layer each")
        self.condition_dim = condition_dim
        self.attention = nn.Linear(position_dim, condition_dim) if condition_dim else None
        self.position_in = nn.Linear(position_dim, width)
        self.condition_in = nn.Linear(condition_dim, width, bias=False) if condition_dim else None
        density: list[nn.Module] = []
        for _ in range(depth - 1):
            density += [nn.Linear(width, width), nn.ReLU()]
        density.append(nn.Linear(width, 1 + geo_dim))
        self.density = nn.Sequential(*density)
        self.geo_in = nn.Linear(geo_dim, colour_width)
        self.direction_in = nn.Linear(direction_dim, colour_width, bias=False)
        colour: list[nn.Module] = []
        for _ in range(colour_depth - 1):
            colour += [nn.Linear(colour_width, colour_width), nn.ReLU()]
        colour.append(nn.Linear(colour_width, 3))
        self.colour = nn.Sequential(*colour)

    def gates(self, position: torch.Tensor) -> torch.Tensor:
        """(P, position_dim) -> (P, C) attention in (0, 1) of each condition channel at each point."""
        assert self.attention is not None
        return torch.sigmoid(self.attention(position))

    def forward(self, position: torch.Tensor, condition: torch.Tensor, direction: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, *) inputs -> (P,) density >= 0 and (P, 3) colour in [0, 1]."""
        h = self.position_in(position)
        if self.condition_in is not None:
            h = h + self.condition_in(condition * self.gates(position))
        h = self.density(F.relu(h))
        sigma = F.softplus(h[..., 0] - 1.0)  # shifted like ConditionedMLP: empty space starts nearly transparent
        rgb = torch.sigmoid(self.colour(F.relu(self.geo_in(h[..., 1:]) + self.direction_in(direction))))
        return sigma, rgb


class ConditionedDeformation(nn.Module):
    """x' = x + scale * tanh(MLP([enc(x), c])): per point and frame, where to read the static field.

    The last layer starts at zero, so training starts from the undeformed field.

    Args:
        condition_dim: size of the per-point condition vector.
        width: hidden width of the two-layer MLP.
        scale: the largest offset per axis (units of the normalised canonical box, [0, 1]^3).
        freqs: octaves of the frequency encoding of x (few: the offset is smooth over the head).
    """

    def __init__(self, condition_dim: int, width: int = 64, scale: float = 0.05, freqs: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.encoding = FrequencyEncoding(3, freqs)
        self.mlp = nn.Sequential(nn.Linear(self.encoding.out_dim + condition_dim, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 3))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, points: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(P, 3) normalised points and (P, C) conditions -> (P, 3) moved points."""
        offset = torch.tanh(self.mlp(torch.cat([self.encoding(points), condition], -1)))
        return points + self.scale * offset
