"""Volume rendering (NeRF's quadrature of Eq. 2 of LipNeRF / Max 1995).

For samples ``i`` of a ray with density ``sigma_i``, colour ``c_i`` and interval length ``delta_i``::

    alpha_i = 1 - exp(-sigma_i delta_i)
    T_i     = prod_{j<i} (1 - alpha_j) = exp(-sum_{j<i} sigma_j delta_j)      (transmittance)
    w_i     = T_i alpha_i
    C = sum_i w_i c_i,   A = sum_i w_i (opacity),   D = sum_i w_i t_i / A (depth)

The colour is premultiplied by the opacity: compositing over a background ``B`` is ``C + (1 - A) B``. For a
constant density and colour over ``[t0, t1]`` this is exact: ``A = 1 - exp(-sigma (t1 - t0))``, ``C = c A``.
"""

from __future__ import annotations

import torch


def render_weights(sigma: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, N) densities and interval lengths -> (R, N) weights ``w_i`` and transmittances ``T_i``.

    The transmittance is the exponential of an exclusive cumulative sum (numerically stable, unlike a
    product of many factors close to 1)."""
    tau = sigma * deltas
    exclusive = torch.cat([torch.zeros_like(tau[:, :1]), tau[:, :-1]], 1).cumsum(1)
    transmittance = torch.exp(-exclusive)
    return transmittance * (1.0 - torch.exp(-tau)), transmittance


def volume_render(sigma: torch.Tensor, rgb: torch.Tensor, t: torch.Tensor, deltas: torch.Tensor
                  ) -> dict[str, torch.Tensor]:
    """Composite samples along rays.

    Args:
        sigma: (R, N) non-negative densities.
        rgb: (R, N, C) colours (or features).
        t: (R, N) sample depths.
        deltas: (R, N) interval lengths.

    Returns:
        ``rgb`` (R, C) premultiplied colour, ``acc`` (R,) opacity, ``depth`` (R,) expected depth (where the
        opacity is 0 it is 0), ``weights`` (R, N).
    """
    weights, _ = render_weights(sigma, deltas)
    acc = weights.sum(1)
    return {"rgb": (weights[..., None] * rgb).sum(1), "acc": acc,
            "depth": (weights * t).sum(1) / acc.clamp_min(1e-8), "weights": weights}


def volume_render_reference(sigma: torch.Tensor, rgb: torch.Tensor, deltas: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow reference of :func:`volume_render`: front-to-back compositing, one sample at a time.

    Returns (R, C) premultiplied colour and (R,) opacity."""
    out = torch.zeros(rgb.shape[0], rgb.shape[2], dtype=rgb.dtype)
    acc = torch.zeros(rgb.shape[0], dtype=rgb.dtype)
    for r in range(sigma.shape[0]):
        transmittance = 1.0
        for i in range(sigma.shape[1]):
            alpha = 1.0 - float(torch.exp(-sigma[r, i] * deltas[r, i]))
            out[r] += transmittance * alpha * rgb[r, i]
            acc[r] += transmittance * alpha
            transmittance *= 1.0 - alpha
    return out, acc
