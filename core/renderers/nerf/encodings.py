"""Encodings of positions (and view directions) for the NeRF fields, pure PyTorch.

* :class:`FrequencyEncoding` — NeRF's positional encoding ``[x, sin(2^k pi x), cos(2^k pi x)]``, k < K.
* :class:`TriPlaneEncoding` — dense multi-resolution feature planes XY, YZ, XZ read with ``grid_sample``
  (bilinear), features of every plane and level concatenated: fast on a CPU.
* :class:`HashGridEncoding` — Instant-NGP's multi-resolution hash grid in 2 or 3 dimensions, vectorised
  (one gather for every level and corner); levels whose grid fits the table are indexed densely. ``groups``
  grids of one layout (each with its own tables) read their own coordinates in the same gather.
* :class:`TriPlaneHashEncoding` — ER-NeRF's tri-plane hash encoding: three 2D hash grids over the planes XY,
  YZ, XZ, features concatenated (Eq. 4 of the blink NeRF paper); one gather for all planes, levels and corners.

Grid encodings take coordinates in ``[0, 1]^d`` (the caller normalises by the head's box); points outside
are clamped to the border. Each has a slow per-point reference the tests compare against.
"""

from __future__ import annotations

import math
from typing import Any

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


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a (T, F) table and an integer index of any shape -> (*index.shape, F).

    ``index_select`` with int64 indices: its backward is an ``index_add``, several times faster on a CPU than
    the accumulating scatter of advanced indexing or ``embedding``'s backward (which sorts the indices)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])


class HashGridEncoding(nn.Module):
    """Multi-resolution hash encoding (Müller et al. 2022): (P, d) in [0, 1] -> (P, L F).

    Level l has resolution ``floor(base * b^l)`` with ``b`` such that the last level is ``finest``; a corner
    ``c`` of its grid indexes the level's table densely when the grid has at most ``2^log2_table`` corners, by
    ``(c_0 p_0 xor c_1 p_1 [xor c_2 p_2]) mod 2^log2_table`` otherwise. Features are interpolated
    (bi/trilinear) between the ``2^d`` corners of the cell.

    With ``groups`` G > 1 the module holds G independent grids of this layout (G L tables) and maps
    (P, G, d) -> (P, G L F), grid g reading coordinates ``x[:, g]``: the three planes of a tri-plane encoding
    in one gather instead of three.

    Args:
        dims: 2 or 3.
        levels: L.
        features: F per level.
        log2_table: table size per level (log2).
        base: coarsest resolution.
        finest: finest resolution.
        groups: G grids of this layout.
    """

    def __init__(self, dims: int = 3, levels: int = 16, features: int = 2, log2_table: int = 17,
                 base: int = 16, finest: int = 512, groups: int = 1) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"a hash grid has 2 or 3 dimensions, not {dims}")
        if groups < 1 or levels < 1 or base < 2:
            raise ValueError("a hash grid needs groups >= 1, levels >= 1 and base >= 2")
        self.dims, self.levels, self.features, self.groups = dims, levels, features, groups
        self.table_size = 2 ** log2_table
        growth = math.exp((math.log(finest) - math.log(base)) / max(levels - 1, 1))
        resolutions = [int(math.floor(base * growth ** level)) for level in range(levels)] * groups
        # one entry per table (group-major): group g's level l is table g L + l
        self.register_buffer("resolution", torch.tensor(resolutions, dtype=torch.long), persistent=False)
        dense = [r ** dims <= self.table_size for r in resolutions]
        self.register_buffer("dense", torch.tensor(dense), persistent=False)
        self.table = nn.Parameter(torch.empty(groups * levels, self.table_size, features).uniform_(-1e-4, 1e-4))
        corners = torch.tensor([[(k >> i) & 1 for i in range(dims)] for k in range(2 ** dims)], dtype=torch.long)
        self.register_buffer("corners", corners, persistent=False)  # (2^d, d)
        self.register_buffer("primes", torch.tensor(HASH_PRIMES[:dims], dtype=torch.long), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.groups * self.levels * self.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(P, d) (one group) or (P, G, d) -> (P, G L F), group-major (all levels of grid 0 first).

        A level indexed densely *is* a dense grid of side r (table row ``c_0 + c_1 r [+ c_2 r^2]``): it is read
        with ``grid_sample`` (one call for the G grids of the level), far cheaper than gathering 2^d corners;
        the hashed levels are gathered (:meth:`_hashed`)."""
        P = x.shape[0]
        if x.dim() == 2:
            x = x[:, None]
        if x.shape[1] != self.groups or x.shape[2] != self.dims:
            raise ValueError(f"expected points of shape (P, {self.groups}, {self.dims}), got {tuple(x.shape)}")
        x = x.clamp(0, 1)
        out: list[torch.Tensor] = []
        hashed = [level for level in range(self.levels) if not bool(self.dense[level])]
        gathered = self._hashed(x, hashed) if hashed else None              # (P, G, len(hashed), F)
        # grid_sample's sampling grid, the same for every dense level; contiguous, since grid_sample on a
        # strided grid takes a path ten times slower
        grid = (x.transpose(0, 1).to(self.table.dtype) * 2.0 - 1.0).contiguous()  # (G, P, d)
        for level in range(self.levels):
            if level in hashed:
                assert gathered is not None
                out.append(gathered[:, :, hashed.index(level)])
            else:
                out.append(self._dense(grid, level))                       # (P, G, F)
        return torch.stack(out, 2).reshape(P, -1)

    def _dense(self, grid: torch.Tensor, level: int) -> torch.Tensor:
        """(G, P, d) sampling grid (points in [-1, 1]) -> (P, G, F): level ``level`` of every group read as a
        dense grid (bi/trilinear, ``align_corners=True``: corner k sits at k / (r - 1), as in the hash grid)."""
        r, G, P = int(self.resolution[level]), self.groups, grid.shape[1]
        rows = self.table[level::self.levels, :r ** self.dims]                  # (G, r^d, F)
        if self.dims == 2:
            planes = rows.view(G, r, r, self.features).permute(0, 3, 1, 2)       # (G, F, c_1, c_0)
            sampled = F.grid_sample(planes, grid.view(G, P, 1, 2), mode="bilinear", align_corners=True,
                                    padding_mode="border")                   # (G, F, P, 1)
        else:
            volumes = rows.view(G, r, r, r, self.features).permute(0, 4, 1, 2, 3)  # (G, F, c_2, c_1, c_0)
            sampled = F.grid_sample(volumes, grid.view(G, P, 1, 1, 3), mode="bilinear", align_corners=True,
                                    padding_mode="border")
        return sampled.reshape(G, self.features, P).permute(2, 0, 1)

    def _hashed(self, x: torch.Tensor, levels: list[int]) -> torch.Tensor:
        """(P, G, d) -> (P, G, H, F): the H hashed ``levels`` of every group, one gather of every corner."""
        P, G, H = x.shape[0], self.groups, len(levels)
        pick = torch.tensor([g * self.levels + level for g in range(G) for level in levels], device=x.device)
        res = self.resolution[pick]                                             # (G H,)
        coords = x[:, :, None, :].expand(P, G, H, self.dims).reshape(P, G * H, self.dims)
        pos = coords * (res.to(x.dtype)[None, :, None] - 1)                     # (P, G H, d)
        base = pos.floor().clamp_max((res - 2).to(x.dtype)[None, :, None])
        frac = pos - base
        cell = base.long()
        offset = (pick * self.table_size).view(1, -1)
        mask = self.table_size - 1
        table = self.table.view(-1, self.features)
        if self.dims == 2:  # the four corners spelled out: a quarter of the generic path's integer work
            # (c_x p_0 xor c_y p_1) mod T = (c_x mod T) xor (c_y p_1 mod T) (T a power of two, p_0 = 1): each
            # term is reduced once per point and level. (The gather keeps int64 indices: index_select's backward
            # with int32 indices is ten times slower on a CPU.)
            hx0, hy0 = cell[..., 0] & mask, (cell[..., 1] * self.primes[1]) & mask
            hx1, hy1 = (cell[..., 0] + 1) & mask, ((cell[..., 1] + 1) * self.primes[1]) & mask
            index = torch.stack([hx0 ^ hy0, hx1 ^ hy0, hx0 ^ hy1, hx1 ^ hy1], -1) + offset[..., None]
            v = gather_rows(table, index)                                       # (P, G H, 4, F)
            fx, fy = frac[..., 0:1].to(v.dtype), frac[..., 1:2].to(v.dtype)
            bottom = v[:, :, 0] * (1 - fx) + v[:, :, 1] * fx
            top = v[:, :, 2] * (1 - fx) + v[:, :, 3] * fx
            value = bottom * (1 - fy) + top * fy
        else:
            corners = cell[:, :, None, :] + self.corners[None, None]            # (P, G H, 8, 3)
            h = ((corners[..., 0] * self.primes[0]) ^ (corners[..., 1] * self.primes[1])
                 ^ (corners[..., 2] * self.primes[2]))
            v = gather_rows(table, (h & mask) + offset[..., None])              # (P, G H, 8, F)
            c = self.corners.to(x.dtype)[None, None]
            weight = (c * frac[:, :, None] + (1 - c) * (1 - frac[:, :, None])).prod(-1)  # (P, G H, 8)
            value = (v * weight[..., None].to(v.dtype)).sum(2)
        return value.view(P, G, H, self.features)

    def reference(self, point: torch.Tensor) -> torch.Tensor:
        """Slow per-point reference of :meth:`forward` for one (d,) or (G, d) point: loops over groups, levels
        and corners."""
        groups = point.view(self.groups, self.dims)
        out = []
        for g in range(self.groups):
            for level in range(self.levels):
                r = int(self.resolution[g * self.levels + level])
                pos = [float(v) * (r - 1) for v in groups[g].clamp(0, 1)]
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
                    feature = feature + weight * self.table[g * self.levels + level, index]
                out.append(feature)
        return torch.cat(out)


class TriPlaneHashEncoding(nn.Module):
    """Tri-plane hash encoding (ER-NeRF; Eq. 4): ``f_x = H_XY(x, y) ⊕ H_YZ(y, z) ⊕ H_XZ(x, z)``, (P, 3) in
    [0, 1] -> (P, 3 L F) (the XY plane's levels first, then YZ, then XZ).

    Three 2D hash grids instead of one 3D grid: a 2D grid of side r has r^2 corners where a 3D grid has r^3, so
    the same table holds finer levels without collisions, and a lookup reads 3 x 4 corners instead of 8 per
    level with one gather for all of them (:class:`HashGridEncoding` with ``groups=3``).

    Args: as :class:`HashGridEncoding` (per plane).
    """

    def __init__(self, levels: int = 16, features: int = 2, log2_table: int = 16, base: int = 16,
                 finest: int = 512) -> None:
        super().__init__()
        self.grid = HashGridEncoding(2, levels, features, log2_table, base, finest, groups=len(PLANE_AXES))
        self.register_buffer("axes", torch.tensor(PLANE_AXES, dtype=torch.long), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.grid.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grid(x[:, self.axes])  # (P, 3 planes, 2)


def position_encoding(options: Any) -> nn.Module:
    """The encoding of canonical positions a variant's options name: ``options.encoding`` is ``frequency``
    (``position_freqs`` octaves), ``triplane`` (``triplane_resolutions`` x ``triplane_features``) or ``hash``
    (``hash_levels`` levels)."""
    if options.encoding == "frequency":
        return FrequencyEncoding(3, options.position_freqs)
    if options.encoding == "triplane":
        return TriPlaneEncoding(tuple(options.triplane_resolutions), options.triplane_features)
    if options.encoding == "hash":
        return HashGridEncoding(3, levels=options.hash_levels, features=2, log2_table=16, base=16, finest=512)
    raise ValueError(f"unknown encoding {options.encoding!r}: frequency, triplane or hash")
