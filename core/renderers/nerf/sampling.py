"""Where along a ray to evaluate the field: stratified samples, an occupancy grid, hierarchical resampling.

* :func:`stratified` — N samples in ``[near, far]``, one per equal bin (jittered while training).
* :class:`OccupancyGrid` — a boolean voxel grid over the canonical head box. It starts from the tracked
  meshes of the training frames (every voxel a vertex of any training frame falls in, dilated);
  :meth:`OccupancyGrid.sample` places the samples of each ray between its first occupied voxel and at most
  ``depth`` behind it (the front of the head is what a camera sees), and the renderer gives no density to
  samples in unoccupied voxels.
* :func:`sample_pdf` — NeRF's hierarchical sampling: more samples where a coarse pass found weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def stratified(near: torch.Tensor, far: torch.Tensor, n: int, jitter: bool) -> torch.Tensor:
    """(R,) near/far -> (R, n) sample depths, one per bin of ``[near, far]`` (bin centres unless ``jitter``)."""
    u = torch.arange(n, device=near.device, dtype=near.dtype)
    offset = torch.rand(near.shape[0], n, device=near.device, dtype=near.dtype) if jitter else 0.5
    return near[:, None] + (far - near)[:, None] * (u + offset) / n


def intervals(t: torch.Tensor, far: torch.Tensor) -> torch.Tensor:
    """(R, n) increasing sample depths -> (R, n) lengths of the interval each sample stands for (the last one
    reaches ``far``)."""
    return torch.cat([t[:, 1:] - t[:, :-1], (far[:, None] - t[:, -1:]).clamp_min(0.0)], 1)


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n: int, jitter: bool) -> torch.Tensor:
    """Inverse-transform sampling of the piecewise-constant density ``weights`` over ``bins``.

    Args:
        bins: (R, M + 1) increasing bin edges.
        weights: (R, M) non-negative weights of the bins.
        n: samples per ray.
        jitter: random (training) or evenly spaced quantiles.

    Returns:
        (R, n) sorted depths.
    """
    w = weights + 1e-5  # no empty pdf
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), pdf.cumsum(-1)], -1).clamp_max(1.0)
    if jitter:
        u = torch.rand(cdf.shape[0], n, device=cdf.device, dtype=cdf.dtype)
    else:
        u = torch.linspace(0.5 / n, 1 - 0.5 / n, n, device=cdf.device, dtype=cdf.dtype).expand(cdf.shape[0], n)
    u = u.contiguous()
    above = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[1] - 1)
    below = above - 1
    c0, c1 = cdf.gather(1, below), cdf.gather(1, above)
    b0, b1 = bins.gather(1, below), bins.gather(1, above)
    frac = ((u - c0) / (c1 - c0).clamp_min(1e-8)).clamp(0, 1)
    return (b0 + frac * (b1 - b0)).sort(-1).values


class OccupancyGrid(nn.Module):
    """A ``resolution``^3 boolean grid over the box ``[lo, hi]`` of canonical head space (buffers, so it is saved
    with the model).

    Args:
        resolution: voxels per side.
    """

    def __init__(self, resolution: int = 48) -> None:
        super().__init__()
        self.resolution = resolution
        self.register_buffer("lo", torch.full((3,), -0.15))
        self.register_buffer("hi", torch.full((3,), 0.15))
        self.register_buffer("grid", torch.ones(resolution, resolution, resolution, dtype=torch.bool))

    @torch.no_grad()
    def fit_points(self, points: torch.Tensor, margin: float, dilate: int = 1) -> None:
        """Set the box to the points' bounds grown by ``margin`` (metres) and occupy every voxel a point falls
        in, grown by ``dilate`` voxels. ``points``: (N, 3) canonical coordinates."""
        lo, hi = points.amin(0) - margin, points.amax(0) + margin
        self.lo.copy_(lo)
        self.hi.copy_(hi)
        self.grid.zero_()
        self.mark(points, dilate)

    @torch.no_grad()
    def mark(self, points: torch.Tensor, dilate: int = 1) -> None:
        """Occupy the voxels of ``points`` (N, 3) (inside the box), grown by ``dilate`` voxels."""
        r = self.resolution
        ijk = ((points - self.lo) / (self.hi - self.lo) * r).floor().long()
        inside = ((ijk >= 0) & (ijk < r)).all(-1)
        ijk = ijk[inside]
        occupied = torch.zeros(r ** 3, device=points.device, dtype=torch.float32)
        occupied[(ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2]] = 1.0
        occupied = occupied.view(1, 1, r, r, r)
        if dilate > 0:
            occupied = F.max_pool3d(occupied, 2 * dilate + 1, stride=1, padding=dilate)
        self.grid |= occupied[0, 0] > 0

    def occupied(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) canonical points -> (...) bool: inside the box and in an occupied voxel."""
        r = self.resolution
        ijk = ((points - self.lo) / (self.hi - self.lo) * r).floor().long()
        inside = ((ijk >= 0) & (ijk < r)).all(-1)
        ijk = ijk.clamp(0, r - 1)
        return self.grid[ijk[..., 0], ijk[..., 1], ijk[..., 2]] & inside

    @property
    def voxel(self) -> float:
        return float(((self.hi - self.lo) / self.resolution).max())

    def sample(self, origins: torch.Tensor, directions: torch.Tensor, n: int, depth: float, jitter: bool,
               candidates: int = 96) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample depths of rays in occupied space.

        Each ray is probed at ``candidates`` evenly spaced points through the box; the samples fill
        ``[first occupied - 1 step, min(last occupied + 1 step, first occupied + depth)]``.

        Args:
            origins, directions: (R, 3) canonical rays.
            n: samples per ray.
            depth: how far behind the first occupied point to sample (metres).
            jitter: stratified jitter (training).

        Returns:
            t (R, n) depths, far (R,) the end of each ray's sampled interval, hit (R,) bool (rays that meet
            no occupied voxel get no weight).
        """
        from .rays import ray_box

        near, far, hit = ray_box(origins, directions, self.lo, self.hi)
        probe = stratified(near, torch.where(hit, far, near + 1e-3), candidates, jitter=False)  # (R, C)
        occupied = self.occupied(origins[:, None] + directions[:, None] * probe[..., None])
        occupied &= hit[:, None]
        any_hit = occupied.any(1)
        step = (far - near) / candidates
        index = torch.arange(candidates, device=probe.device)
        first = torch.where(occupied, index, candidates).amin(1).clamp_max(candidates - 1)
        last = torch.where(occupied, index, -1).amax(1).clamp_min(0)
        t0 = (probe.gather(1, first[:, None])[:, 0] - step).clamp_min(near)
        t1 = torch.minimum(torch.minimum(probe.gather(1, last[:, None])[:, 0] + step, t0 + depth), far)
        t1 = torch.where(any_hit, torch.maximum(t1, t0 + 1e-4), t0 + 1e-4)
        return stratified(t0, t1, n, jitter), t1, any_hit
