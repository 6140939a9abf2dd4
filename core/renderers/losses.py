"""Loss modules shared by the renderers: a style/perceptual term and an adversarial term (LSGAN with a
PatchGAN discriminator), as used by READ (Eq. 3: λ1 = λ_VGG = 1, λ_GAN = 0.01) and available to every
variant through :meth:`core.renderers.base.Renderer.criteria`.

The VGG style loss needs ImageNet VGG-19 weights, which cannot be downloaded at run time. When the
user has torchvision's ``vgg19-dcbb9e9d.pth`` (put it in ``~/.emodub/weights/`` or point
``EMODUB_VGG19`` at it) the real style loss (Gram matrices of relu1_2..relu4_4, Johnson et al.) is used.
Otherwise the documented substitute is a multi-scale SSIM loss plus an image-gradient L1 loss, both
of which reward matching local structure and texture rather than mean colour.

:class:`PatchPerceptual` is the perceptual term on small image patches (the tri-plane NeRF's mouth patches):
LPIPS (VGG) when its weights are present (:func:`core.eval.pretrained.load_lpips`), otherwise 1 - SSIM (one
scale, the window shrunk to fit the patch) plus the image-gradient L1.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.eval.image_metrics import ms_ssim_loss, ssim_map

VGG19_FILE = "vgg19-dcbb9e9d.pth"
# torchvision's VGG-19 "features" layout: conv channel sizes, "M" = max-pool.
_VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512)
_STYLE_LAYERS = (3, 8, 17, 26)  # indices of relu1_2, relu2_2, relu3_4, relu4_4 in `features`


def find_vgg19_weights() -> Path | None:
    env = os.environ.get("EMODUB_VGG19")
    candidates = [Path(env)] if env else []
    candidates.append(Path.home() / ".emodub" / "weights" / VGG19_FILE)
    return next((p for p in candidates if p.is_file()), None)


class VGG19Features(nn.Module):
    """VGG-19 conv layers with torchvision's parameter names (``features.<i>.weight``)."""

    def __init__(self) -> None:
        from core.eval.pretrained import vgg_features

        super().__init__()
        self.features = vgg_features(_VGG19_LAYOUT)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @classmethod
    def from_file(cls, path: Path) -> VGG19Features:
        model = cls()
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = {k: v for k, v in state.items() if k.startswith("features.") and
               int(k.split(".")[1]) < len(model.features)}
        model.load_state_dict({**own, "mean": model.mean, "std": model.std})
        return model.eval().requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        outputs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _STYLE_LAYERS:
                outputs.append(x)
        return outputs


def gram(features: torch.Tensor) -> torch.Tensor:
    b, c, h, w = features.shape
    f = features.flatten(2)
    return f @ f.transpose(1, 2) / (c * h * w)


def gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]

    (px, py), (tx, ty) = grads(pred), grads(target)
    return (px - tx).abs().mean() + (py - ty).abs().mean()


class StyleLoss(nn.Module):
    """VGG-19 Gram-matrix style loss when weights exist, else MS-SSIM + gradient L1 (module doc)."""

    def __init__(self, vgg_weights: Path | None = None) -> None:
        super().__init__()
        path = vgg_weights or find_vgg19_weights()
        self.vgg = VGG19Features.from_file(path) if path else None

    @property
    def kind(self) -> str:
        return "vgg19_style" if self.vgg is not None else "ms_ssim+gradient"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.vgg is not None:
            loss = pred.new_zeros(())
            for fp, ft in zip(self.vgg(pred), self.vgg(target), strict=True):
                loss = loss + F.l1_loss(gram(fp), gram(ft)) + F.l1_loss(fp, ft) * 0.1
            return loss
        return ms_ssim_loss(pred, target) + gradient_l1(pred, target)


class PatchPerceptual(nn.Module):
    """A perceptual distance between (N, 3, p, p) patches in [0, 1] -> scalar (mean over patches).

    Args:
        kind: ``auto`` (LPIPS when its weights are present and patches are at least 16 px, else the
            substitute), ``lpips`` (refused without the weights) or ``ssim`` (the substitute: 1 - SSIM with a
            Gaussian window of at most 11 px that fits the patch, plus the image-gradient L1).
    """

    MIN_LPIPS_SIDE = 16  # VGG's four poolings leave LPIPS's last tap 1 px wide at 16 px

    def __init__(self, kind: str = "auto") -> None:
        super().__init__()
        from core.eval.pretrained import load_lpips, lpips_unavailable

        if kind not in ("auto", "lpips", "ssim"):
            raise ValueError(f"perceptual term must be auto, lpips or ssim, not {kind!r}")
        self.lpips = load_lpips() if kind in ("auto", "lpips") else None
        if kind == "lpips" and self.lpips is None:
            why = lpips_unavailable()
            raise FileNotFoundError(f"LPIPS weights missing ({why['reason']}): {why['how_to_enable']}; or use "
                                    "perceptual=auto / ssim")

    @property
    def kind(self) -> str:
        return "lpips" if self.lpips is not None else "ssim+gradient"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        side = min(pred.shape[-2:])
        if self.lpips is not None and side >= self.MIN_LPIPS_SIDE:
            return self.lpips(pred, target).mean()
        window = max(3, min(11, side - (1 - side % 2)))  # odd, inside the patch
        structure = 1.0 - ssim_map(pred, target, window, sigma=1.5 * window / 11).mean()
        return structure + gradient_l1(pred, target)


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return ((fake_scores - 1.0) ** 2).mean()


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return 0.5 * (((real_scores - 1.0) ** 2).mean() + (fake_scores**2).mean())


class PatchDiscriminator(nn.Module):
    """A PatchGAN discriminator for the LSGAN loss: (B, 3, H, W) -> (B, 1, H/8, W/8) scores."""

    def __init__(self, base: int = 32, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, base, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = base
        for _ in range(layers - 1):
            mods += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.InstanceNorm2d(ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        mods.append(nn.Conv2d(ch, 1, 3, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image * 2.0 - 1.0)


class AdversarialLoss(nn.Module):
    """LSGAN with a PatchGAN discriminator. The shared trainer steps the discriminator with its own Adam on
    the pairs :meth:`core.renderers.base.Renderer.adversarial_pairs` returns; the renderer adds
    :meth:`generator_loss` to its terms."""

    def __init__(self, base: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.discriminator = PatchDiscriminator(base, layers)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return lsgan_discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()))

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return lsgan_generator_loss(self.discriminator(fake))

