"""Small procedural meshes for tests, benchmarks and debug renders."""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def uv_sphere(n_lat: int = 32, n_lon: int = 64, radii: tuple[float, float, float] = (1.0, 1.0, 1.0),
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
              ) -> tuple[Tensor, Tensor, Tensor]:
    """A latitude/longitude ellipsoid centred at the origin with y as its polar axis.

    Args:
        n_lat: number of latitude bands (>= 2); n_lon: number of longitude segments (>= 3).
        radii: semi-axes along x, y, z (metres for a head-like ellipsoid, e.g. (0.08, 0.11, 0.1)).

    Returns:
        verts: (V, 3) with V = (n_lat - 1) * n_lon + 2 (the two poles last).
        faces: (F, 3) int64, counter-clockwise seen from outside, F = 2 * n_lon * (n_lat - 1).
        uvs: (V, 2) equirectangular coordinates (u = longitude / 2 pi, v = 1 at the north pole); the
            seam is not split, so use them for smooth attributes rather than for texturing.
    """
    if n_lat < 2 or n_lon < 3:
        raise ValueError("uv_sphere needs n_lat >= 2 and n_lon >= 3")
    lat = torch.arange(1, n_lat, dtype=torch.float64) / n_lat * math.pi  # polar angle from +y
    lon = torch.arange(n_lon, dtype=torch.float64) / n_lon * 2.0 * math.pi
    theta, phi = torch.meshgrid(lat, lon, indexing="ij")
    # Longitude 0 points to +z (the front), increasing towards +x.
    sin_t = torch.sin(theta)
    ring = torch.stack([sin_t * torch.sin(phi), torch.cos(theta), sin_t * torch.cos(phi)], -1)
    verts = torch.cat([ring.reshape(-1, 3), torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])], 0)
    verts = verts * torch.tensor(radii, dtype=torch.float64)
    n_ring = n_lat - 1
    north, south = n_ring * n_lon, n_ring * n_lon + 1
    i = torch.arange(n_ring - 1).view(-1, 1)
    j = torch.arange(n_lon).view(1, -1)
    a = i * n_lon + j  # (ring i, lon j)
    b = i * n_lon + (j + 1) % n_lon  # (ring i, lon j + 1)
    c = (i + 1) * n_lon + j  # one ring further south
    d = (i + 1) * n_lon + (j + 1) % n_lon
    # Seen from outside (x right, y up at the front), longitude grows to the right and rings go down, so
    # (a, c, b) and (b, c, d) are counter-clockwise.
    quads = torch.cat([torch.stack([a, c, b], -1).reshape(-1, 3),
                       torch.stack([b, c, d], -1).reshape(-1, 3)], 0)
    j1 = torch.arange(n_lon)
    cap_n = torch.stack([torch.full_like(j1, north), j1, (j1 + 1) % n_lon], -1)
    last = (n_ring - 1) * n_lon
    cap_s = torch.stack([torch.full_like(j1, south), last + (j1 + 1) % n_lon, last + j1], -1)
    faces = torch.cat([cap_n, quads, cap_s], 0)
    uv_ring = torch.stack([phi / (2.0 * math.pi), 1.0 - theta / math.pi], -1).reshape(-1, 2)
    uvs = torch.cat([uv_ring, torch.tensor([[0.5, 1.0], [0.5, 0.0]], dtype=torch.float64)], 0)
    return verts.to(device, dtype), faces.to(device), uvs.to(device, dtype)
