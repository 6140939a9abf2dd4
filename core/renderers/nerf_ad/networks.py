"""NeRF-AD's image networks (§2.1, §2.2), small enough for a CPU at 64 px face crops.

* :class:`AttentionGenerator`: G_M and G_W share a body (Fig. 2's blue part); heads give the attention A (where
  the crop is kept) and the warped image I_W, both from the crop and a target AU code tiled over it.
* :class:`ImageEncoder`: a strided CNN to a vector: the AU classifier C (sigmoid outputs), the WGAN-GP critic W_D
  (one unbounded output, no normalisation: the gradient penalty needs per-sample gradients), the identity
  encoder and E_f.
* :class:`LowerFaceClassifier`: the AU classifier C, reading only a box around the mouth and jaw (why: see
  the class).
* :class:`FusionNet`: E_a (the audio face down to S/8), the audio encoder (a 1-D CNN over the audio window) and D
  (a U-Net decoder over E_a's levels, each level modulated by the audio vector, up to the fused audio face).

Images are (B, 3, S, S) in [0, 1] with S a multiple of 8.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FEATURE_DIM = 64


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1)]
    if norm:
        layers.append(nn.GroupNorm(min(8, cout), cout))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(cin, cout, 3, 1, 1), nn.GroupNorm(min(8, cout), cout), nn.LeakyReLU(0.2))


class AttentionGenerator(nn.Module):
    """(B, 3, S, S) crop, (B, n_au) target AU code in [0, 1] -> attention A (B, 1, S, S) in [0, 1] (1: keep the
    crop) and warped image I_W (B, 3, S, S) in [0, 1]."""

    def __init__(self, n_au: int, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(_down(3 + n_au, width), _down(width, 2 * width), _down(2 * width, 4 * width),
                                  _up(4 * width, 2 * width), _up(2 * width, width), _up(width, width))
        self.mask_head = nn.Conv2d(width, 1, 3, 1, 1)
        self.warp_head = nn.Conv2d(width, 3, 3, 1, 1)

    def forward(self, image: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tiled = code[:, :, None, None].expand(-1, -1, *image.shape[-2:])
        h = self.body(torch.cat([image * 2 - 1, tiled], 1))
        return torch.sigmoid(self.mask_head(h)), torch.sigmoid(self.warp_head(h))


class ImageEncoder(nn.Module):
    """(B, 3, S, S) -> (B, out_dim): three strided convolutions, pooling, a linear layer."""

    def __init__(self, out_dim: int, width: int = 32, norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Sequential(_down(3, width, norm), _down(width, 2 * width, norm),
                                  _down(2 * width, 4 * width, norm))
        self.head = nn.Linear(4 * width, out_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(image * 2 - 1).mean((2, 3)))


def box_mask(box: torch.Tensor, size: int) -> torch.Tensor:
    """(size, size) soft indicator (edges of about two pixels) of ``box`` = (top, bottom, left, right), fractions
    of a square crop."""
    at = (torch.arange(size, device=box.device, dtype=box.dtype) + 0.5) / size
    top, bottom, left, right = box
    sharp = 2.0 * size

    def inside(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((at - lo) * sharp) * torch.sigmoid((hi - at) * sharp)

    return inside(top, bottom)[:, None] * inside(left, right)[None, :]


class LowerFaceClassifier(nn.Module):
    """C: (B, 3, S, S) crop -> (B, n_au) logits of the mouth AUs, from the lower face's box only.

    Why only the lower face: in an actor's emotional takes the brows and eyes move with the mouth (surprise opens
    the jaw and lifts the brows), so a C that sees the whole crop learns them (and anything else that co-varies,
    the background of a take) as evidence for the mouth AUs, and the attention generator then meets its code loss
    by repainting the eyes, brows and background (measured: a band over both eyes, one on the hairline and a blob
    on the background). Outside ``box`` the crop is replaced by mid-grey, with soft edges of about two pixels, so C's
    gradient there is zero and the generator gains nothing by painting there. ``box`` is (top, bottom, left,
    right) as fractions of the crop: from the nose tip down past the chin, between the jaw's sides
    (:func:`.pretrain.lower_face_box`: medians over the training frames; the crops are stabilised).
    """

    def __init__(self, n_au: int, box: tuple[float, float, float, float] = (0.55, 1.0, 0.25, 0.75),
                 width: int = 32) -> None:
        super().__init__()
        self.encoder = ImageEncoder(n_au, width)
        self.register_buffer("box", torch.tensor(box, dtype=torch.float32))

    def lower_face(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) the crop, mid-grey outside the box."""
        keep = box_mask(self.box.to(image), image.shape[-1])
        return image * keep + 0.5 * (1 - keep)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.lower_face(image))


class AudioWindowEncoder(nn.Module):
    """(B, T, D) audio-feature window -> (B, out_dim), standardised with statistics fitted on the training audio."""

    def __init__(self, audio_dim: int, out_dim: int = FEATURE_DIM, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(audio_dim))
        self.register_buffer("scale", torch.ones(audio_dim))
        self.conv = nn.Sequential(nn.Conv1d(audio_dim, width, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv1d(width, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(width, out_dim)

    @torch.no_grad()
    def fit(self, frames: torch.Tensor) -> None:
        """frames: (N, D) audio features."""
        self.mean.copy_(frames.mean(0))
        self.scale.copy_(1.0 / frames.std(0).clamp_min(1e-4))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = ((audio - self.mean) * self.scale).transpose(1, 2)
        return self.head(self.conv(x).mean(2))


class FusionNet(nn.Module):
    """E_a, the audio encoder and D (§2.2): (B, 3, S, S) audio face of a reference frame, (B, T, D) audio window of
    the target frame -> (B, 3, S, S) the target's fused audio face in [0, 1].

    D is a U-Net over E_a: skips carry the reference's appearance (its lips, teeth, a smile's corners) past the
    S/8 bottleneck, and the audio vector scales and shifts (FiLM) every decoder level, so the mouth's shape can
    follow the audio at every resolution. Why: with the audio tiled onto the bottleneck alone, D (800 steps)
    put out one blurred lower-face blob for any audio and any reference (a neutral-to-happy reference change
    moved its output by 0.002; at 4,000 steps that was smaller still, and it drew a band across the lips for C),
    so neither the audio nor the emotion of the reference reached the NeRF.
    """

    def __init__(self, audio_dim: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.down = nn.ModuleList([_down(3, w), _down(w, 2 * w), _down(2 * w, 2 * w)])
        self.audio = AudioWindowEncoder(audio_dim)
        self.up = nn.ModuleList([_up(2 * w, 2 * w), _up(4 * w, w), _up(2 * w, w)])
        self.film = nn.ModuleList([nn.Linear(FEATURE_DIM, 2 * c) for c in (2 * w, w, w)])
        self.out = nn.Conv2d(w + 3, 3, 3, 1, 1)

    def forward(self, audio_face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        x = audio_face * 2 - 1
        skips, h = [], x
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        a = self.audio(audio)
        for level, (layer, film) in enumerate(zip(self.up, self.film, strict=True)):
            if level:
                h = torch.cat([h, skips[-1 - level]], 1)
            h = layer(h)
            scale, shift = film(a)[:, :, None, None].chunk(2, 1)
            h = h * (1 + scale) + shift
        return torch.sigmoid(self.out(torch.cat([h, x], 1)))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's (||grad W_D(x_hat)||_2 - 1)^2 at random points between real and generated images (Eq. 3)."""
    mix = torch.rand(len(real), 1, 1, 1, device=real.device)
    x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
    grad = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)[0]
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def au_loss(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Weighted BCE (Eq. 4) plus weighted multi-label Dice (Eq. 5); (B, n) predictions and targets in [0, 1]."""
    p = predicted.clamp(1e-6, 1 - 1e-6)
    bce = -(weights * (target * p.log() + (1 - target) * (1 - p).log())).mean()
    dice = (weights * (1 - (2 * target * p + eps) / (target ** 2 + p ** 2 + eps))).mean()
    return bce + dice


def occurrence_weights(targets: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """(n,) w_i = (n / r_i) / sum_j (1 / r_j) with r_i how often AU i occurs (target >= ``threshold``: 1 on
    OpenFace's 0-5 scale) in (N, n) targets (Eq. 4); an AU that never occurs counts as occurring once."""
    rate = ((targets >= threshold).float().sum(0) + 1.0) / (len(targets) + 1.0)
    inverse = 1.0 / rate
    return inverse * len(inverse) / inverse.sum()


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    return (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean() + (mask[..., 1:] - mask[..., :-1]).abs().mean()


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, size, size) by area averaging (a face crop is square)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")
