"""Image metrics on (B, 3, H, W) tensors in [0, 1]: PSNR, SSIM (Wang et al. 2004), and masked variants."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (B,), optionally only where ``mask`` (B,1,H,W) > 0."""
    err = (pred - target) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        weight = mask.expand_as(err)
        mse = (err * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g


def ssim_map(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H', W') with a Gaussian window (valid convolution, as in Wang et al.)."""
    c = pred.shape[1]
    g = _gaussian_window(window, sigma, pred.device, pred.dtype)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
         window: int = 11) -> torch.Tensor:
    """Mean SSIM per image (B,), optionally averaged only where ``mask`` (B,1,H,W) > 0 (the mask is cropped to
    the valid region of the SSIM map, i.e. each value is a window centred on a masked pixel)."""
    values = ssim_map(pred, target, window)
    if mask is None:
        return values.flatten(1).mean(1)
    r = window // 2
    weight = mask[..., r:mask.shape[-2] - r, r:mask.shape[-1] - r].expand_as(values)
    return (values * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1.0)


def ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """1 − mean SSIM over ``scales`` dyadic scales (a differentiable structural loss)."""
    total = pred.new_zeros(())
    scales_used = 0
    for s in range(scales):
        if min(pred.shape[-2:]) < 16:
            break
        total = total + (1.0 - ssim_map(pred, target).mean())
        pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
        scales_used = s + 1
    return total / max(scales_used, 1)
