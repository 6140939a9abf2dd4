"""Encodings of positions (and view directions) for the NeRF fields, pure PyTorch.

* :class:`FrequencyEncoding` — NeRF's positional encoding ``[x, sin(2^k pi x), cos(2^k pi x)]``, k < K.
* :class:`TriPlaneEncoding` — dense multi-resolution feature planes XY, YZ, XZ read with ``grid_sample``
  (bilinear), features of every plane and level concatenated: fast on a CPU.
* :class:`HashGridEncoding` — Instant-NGP's multi-resolution hash grid in 2 or 3 dimensions, vectorised
  (one gather for every level and corner); levels whose grid fits the table are indexed densely.

Grid encodings take coordinates in ``[0, 1]^d`` (the caller normalises by the head's box); points outside
are clamped to the border. Each has a slow per-point reference the tests compare against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

HASH_PRIMES = (1, 2654435761, 805459861)


class FrequencyEncoding(nn.Module):
    """(..., D) -> (..., D (1 + 2K)) with ``n_freqs`` = K octaves (``include_input`` keeps x itself)."""

    def __init__(self, in_dim: int, n_freqs: int, include_input: bool = True) -> None:
        super().__init__()
        self.in_dim, self.n_freqs, self.include_input = in_dim, n_freqs, include_input
        self.register_buffer("bands", (2.0 ** torch.arange(n_freqs)) * math.pi, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (2 * self.n_freqs + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (x[..., None, :] * self.bands[:, None]).flatten(-2)  # (..., K D)
        parts = [x] if self.include_input else []
        return torch.cat([*parts, torch.sin(scaled), torch.cos(scaled)], -1)


PLANE_AXES = ((0, 1), (1, 2), (0, 2))  # XY, YZ, XZ


class TriPlaneEncoding(nn.Module):
    """Dense multi-resolution tri-planes: (P, 3) in [0, 1] -> (P, 3 L F).

    Args:
        resolutions: side of each level's planes (L levels).
        features: F channels per plane and level.
        init_scale: half-width of the uniform initialisation.
    """

    def __init__(self, resolutions: tuple[int, ...] = (32, 64, 128), features: int = 8,
                 init_scale: float = 0.1) -> None:
        super().__init__()
        self.resolutions, self.features = tuple(resolutions), features
        self.planes = nn.ParameterList(
            nn.Parameter(torch.empty(1, features, r, r).uniform_(-init_scale, init_scale))
            for r in self.resolutions for _ in PLANE_AXES)

    @property
    def out_dim(self) -> int:
        return 3 * len(self.resolutions) * self.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = (x.clamp(0, 1) * 2.0 - 1.0)
        out = []
        for k, plane in enumerate(self.planes):
            a, b = PLANE_AXES[k % 3]
            # grid_sample's (x, y) index (width, height): plane column = first axis, row = second.
            coords = torch.stack([grid[:, a], grid[:, b]], -1).view(1, -1, 1, 2).to(plane.dtype)
            sampled = F.grid_sample(plane, coords, mode="bilinear", align_corners=True)  # (1, F, P, 1)
            out.append(sampled[0, :, :, 0].t())
        return torch.cat(out, -1)


def bilinear_reference(plane: torch.Tensor, u: float, v: float) -> torch.Tensor:
    """Slow reference of one ``grid_sample`` (align_corners=True) of a (F, R, R) plane at u (column) and v (row)
    in [0, 1]."""
    r = plane.shape[-1]
    x, y = u * (r - 1), v * (r - 1)
    x0, y0 = min(int(math.floor(x)), r - 2), min(int(math.floor(y)), r - 2)
    fx, fy = x - x0, y - y0
    return (plane[:, y0, x0] * (1 - fx) * (1 - fy) + plane[:, y0, x0 + 1] * fx * (1 - fy)
            + plane[:, y0 + 1, x0] * (1 - fx) * fy + plane[:, y0 + 1, x0 + 1] * fx * fy)


class HashGridEncoding(nn.Module):
    """Multi-resolution hash encoding (Müller et al. 2022): (P, d) in [0, 1] -> (P, L F).

    Level l has resolution ``floor(base * b^l)`` with ``b`` such that the last level is ``finest``; a corner
    ``c`` of its grid indexes the level's table densely when the grid has at most ``2^log2_table`` corners, by
    ``(c_0 p_0 xor c_1 p_1 [xor c_2 p_2]) mod 2^log2_table`` otherwise. Features are interpolated
    (bi/trilinear) between the ``2^d`` corners of the cell.

    Args:
        dims: 2 or 3.
        levels: L.
        features: F per level.
        log2_table: table size per level (log2).
        base: coarsest resolution.
        finest: finest resolution.
    """

    def __init__(self, dims: int = 3, levels: int = 16, features: int = 2, log2_table: int = 17,
                 base: int = 16, finest: int = 512) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"a hash grid has 2 or 3 dimensions, not {dims}")
        self.dims, self.levels, self.features = dims, levels, features
        self.table_size = 2 ** log2_table
        growth = math.exp((math.log(finest) - math.log(base)) / max(levels - 1, 1))
        resolutions = [int(math.floor(base * growth ** level)) for level in range(levels)]
        self.register_buffer("resolution", torch.tensor(resolutions, dtype=torch.long), persistent=False)
        dense = [r ** dims <= self.table_size for r in resolutions]
        self.register_buffer("dense", torch.tensor(dense), persistent=False)
        self.table = nn.Parameter(torch.empty(levels, self.table_size, features).uniform_(-1e-4, 1e-4))
        corners = torch.tensor([[(k >> i) & 1 for i in range(dims)] for k in range(2 ** dims)], dtype=torch.long)
        self.register_buffer("corners", corners, persistent=False)  # (2^d, d)
        self.register_buffer("primes", torch.tensor(HASH_PRIMES[:dims], dtype=torch.long), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.levels * self.features

    def corner_index(self, cell: torch.Tensor) -> torch.Tensor:
        """(P, L, 2^d, d) integer corner coordinates -> (P, L, 2^d) indices into each level's table."""
        res = self.resolution.view(1, -1, 1)
        if self.dims == 2:
            dense = cell[..., 0] + cell[..., 1] * res
            hashed = (cell[..., 0] * self.primes[0]) ^ (cell[..., 1] * self.primes[1])
        else:
            dense = cell[..., 0] + (cell[..., 1] + cell[..., 2] * res) * res
            hashed = (cell[..., 0] * self.primes[0]) ^ (cell[..., 1] * self.primes[1]) ^ (cell[..., 2] * self.primes[2])
        return torch.where(self.dense.view(1, -1, 1), dense, hashed & (self.table_size - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        P = x.shape[0]
        res = self.resolution.to(x.dtype)
        pos = x.clamp(0, 1)[:, None, :] * (res[None, :, None] - 1)          # (P, L, d)
        base = pos.floor().long().clamp_max((self.resolution - 2).view(1, -1, 1))
        frac = pos - base.to(x.dtype)                                     # (P, L, d)
        cell = base[:, :, None, :] + self.corners[None, None]             # (P, L, 2^d, d)
        index = self.corner_index(cell)                                   # (P, L, 2^d)
        flat = index + (torch.arange(self.levels, device=x.device) * self.table_size).view(1, -1, 1)
        values = self.table.view(-1, self.features)[flat.reshape(-1)].view(P, self.levels, -1, self.features)
        c = self.corners.to(x.dtype)[None, None]                          # (1, 1, 2^d, d)
        weight = (c * frac[:, :, None] + (1 - c) * (1 - frac[:, :, None])).prod(-1)  # (P, L, 2^d)
        return (values * weight[..., None].to(values.dtype)).sum(2).reshape(P, -1)

    def reference(self, point: torch.Tensor) -> torch.Tensor:
        """Slow per-point reference of :meth:`forward` for one (d,) point: loops over levels and corners."""
        out = []
        for level in range(self.levels):
            r = int(self.resolution[level])
            pos = [float(v) * (r - 1) for v in point.clamp(0, 1)]
            base = [min(int(math.floor(p)), r - 2) for p in pos]
            feature = torch.zeros(self.features, dtype=self.table.dtype)
            for k in range(2 ** self.dims):
                corner = [base[i] + ((k >> i) & 1) for i in range(self.dims)]
                weight = 1.0
                for i in range(self.dims):
                    f = pos[i] - base[i]
                    weight *= f if (k >> i) & 1 else 1 - f
                if r ** self.dims <= self.table_size:
                    index = corner[0] + corner[1] * r + (corner[2] * r * r if self.dims == 3 else 0)
                else:
                    h = 0
                    for i in range(self.dims):
                        h ^= corner[i] * HASH_PRIMES[i]
                    index = h % self.table_size
                feature = feature + weight * self.table[level, index]
            out.append(feature)
        return torch.cat(out)
