"""READ Avatars' audio-conditioned neural-texture renderer (§3.3) behind the renderer contract.

Per frame t the network sees:

* ``uv`` (B, 2, H, W): the tracked mesh rasterized to UV coordinates, and its coverage mask
  ``alpha`` (B, 1, H, W);
* ``uv_window`` (B, 2 * W_R, H, W): the rasterized UVs of the W_R neighbouring frames (temporal
  window against jitter; the UNet input then has 16 + 2 W_R texture channels);
* ``audio`` (B, T_a, D_a): audio-feature frames in a window centred on frame t;
* ``background`` (B, 3, H, W): the real frame with the expanded mask zeroed (READ Fig. 4).

An audio encoder (1D temporal convolutions) makes ``a_enc``; a SIREN texture network maps
``(uv, a_enc)`` to a 16-channel neural texture on covered pixels; a UNet decodes texture +
window + background to RGB; the result is blended into the real frame (READ Eq. 2).

Blend: READ writes ``V* = α V̂ + (1 − α_exp) V``, which leaves the ring ``α_exp − α`` empty. The decoder
sees that ring as black pixels and learns to fill it, so we composite its output over the whole
expanded mask: ``V* = α_exp V̂ + (1 − α_exp) V``.

:class:`NeuralTextureRenderer` rasterizes the batch's face parameters (and their temporal neighbours,
each frame once) itself, so the data layer and the dub only hand it a :class:`~core.renderers.base.RendererBatch`.
Audio: READ conditions the texture on Wav2Vec2 phoneme posteriors; without those weights we use MFCC
windows centred on each video frame (the same features as the a2e network): the renderer only needs the
mouth-shape information they carry.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import nn

from core.render.masks import expand_mask, rasterize_uv_and_normals, rasterize_uv_and_region
from core.renderers.base import (
    AudioNeed,
    Renderer,
    RendererBatch,
    RendererNeeds,
    RendererSetup,
    RenderOutput,
    TrainStep,
)
from core.renderers.registry import register_renderer

from .config import NeuralTextureConfig


class AudioEncoder(nn.Module):
    """1D temporal convolutions over an audio-feature window: (B, T_a, D_a) -> (B, N_a)."""

    def __init__(self, audio_dim: int, window: int, code: int, hidden: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, length = audio_dim, window
        while length > 2:  # halve time until ~2 steps remain
            layers += [nn.Conv1d(channels, hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels, length = hidden, (length + 1) // 2
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(channels * length, code)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.convs(audio.transpose(1, 2))
        return torch.tanh(self.head(x.flatten(1)))


class SineLayer(nn.Module):
    """``sin(w0 · (W x + b))`` with SIREN's initialisation (Sitzmann et al. 2020)."""

    def __init__(self, n_in: int, n_out: int, w0: float, first: bool) -> None:
        super().__init__()
        self.w0 = w0
        self.linear = nn.Linear(n_in, n_out)
        bound = 1.0 / n_in if first else math.sqrt(6.0 / n_in) / w0
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place scaling: the same numbers as ``w0 * linear(x)`` without another (P, hidden) tensor;
        # autograd-safe (addmm's backward needs its inputs, not its output).
        return torch.sin(self.linear(x).mul_(self.w0))


class SirenTexture(nn.Module):
    """T(uv, a_enc): (P, 2 + N_a) -> (P, C) neural-texture features at P covered pixels."""

    def __init__(self, n_in: int, hidden: int, layers: int, out: int, w0: float) -> None:
        super().__init__()
        dims = [n_in] + [hidden] * layers
        self.body = nn.Sequential(*[SineLayer(a, b, w0, first=i == 0)
                                    for i, (a, b) in enumerate(itertools.pairwise(dims))])
        self.out = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class TexturePyramid(nn.Module):
    """Learnable UV-space feature maps of sides ``side, side / 2, ...``, sampled bilinearly and summed.

    Args:
        channels: C, features per texel.
        side: side of the finest map.
        levels: maps (each half the previous one's side, at least 4 texels).
    """

    def __init__(self, channels: int, side: int, levels: int) -> None:
        super().__init__()
        sides = [max(4, side >> level) for level in range(max(1, levels))]
        self.maps = nn.ParameterList([nn.Parameter(torch.zeros(1, channels, s, s)) for s in sides])

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """(P, 2) UVs in [-1, 1] -> (P, C)."""
        grid = coords.view(1, 1, -1, 2)
        total = sum(nn.functional.grid_sample(m, grid, mode="bilinear", padding_mode="border", align_corners=False)
                    for m in self.maps)
        return total[0, :, 0].transpose(0, 1)


class UNet(nn.Module):
    """A compact UNet: (B, C_in, H, W) -> (B, 3, H, W) in [0, 1]. H and W divisible by 2**depth."""

    def __init__(self, c_in: int, base: int, depth: int) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.InstanceNorm2d(b, affine=True),
                                 nn.LeakyReLU(0.2), nn.Conv2d(b, b, 3, padding=1),
                                 nn.InstanceNorm2d(b, affine=True), nn.LeakyReLU(0.2))

        widths = [base * 2**i for i in range(depth + 1)]
        self.stem = block(c_in, widths[0])
        self.downs = nn.ModuleList(block(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth)))
        self.merges = nn.ModuleList(block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], 3, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by {2**self.depth}")
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(max_pool_2x2(skips[-1])))
        y = skips.pop()
        for up, merge in zip(self.ups, self.merges, strict=True):
            y = merge(torch.cat([up(y), skips.pop()], 1))
        return torch.sigmoid(self.head(y))


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` for even H, W: (B, C, H, W) -> (B, C, H/2, W/2).

    Element-wise maxima of strided views give the same values ~10x faster on CPU than the pooling
    kernel (which also computes argmax indices); on exact ties the gradient is shared between the tied
    inputs instead of going to the first one.
    """
    pairs = torch.maximum(x[..., 0::2], x[..., 1::2])
    return torch.maximum(pairs[..., 0::2, :], pairs[..., 1::2, :])


def blend(rendered: torch.Tensor, frame: torch.Tensor, alpha_expanded: torch.Tensor) -> torch.Tensor:
    """Composite the decoder output over the real frame inside the expanded mask (module doc)."""
    return alpha_expanded * rendered + (1.0 - alpha_expanded) * frame


@register_renderer("neural_texture")
class NeuralTextureRenderer(Renderer):
    """Audio encoder + SIREN texture + UNet decoder (the static variant has no audio encoder)."""

    options: NeuralTextureConfig

    def __init__(self, options: NeuralTextureConfig, setup: RendererSetup | None = None) -> None:
        super().__init__(options, setup or RendererSetup(image_size=0, face_model={"model": "procedural"}))
        c = options
        if c.audio_conditioned and c.audio_window % 4:
            raise ValueError("audio_window must be a multiple of 4 (audio frames per video frame)")
        if not 0.0 <= c.eye_balanced_share <= 1.0:
            raise ValueError(f"eye_balanced_share is a fraction in [0, 1], got {c.eye_balanced_share}")
        self.audio_encoder = (AudioEncoder(c.audio_dim, c.audio_window, c.audio_code)
                              if c.audio_conditioned else None)
        n_in = 2 + (c.audio_code if c.audio_conditioned else 0)
        self.texture = SirenTexture(n_in, c.siren_hidden, c.siren_layers, c.texture_channels, c.siren_w0)
        if c.audio_conditioned:
            # The audio code's weights into the SIREN start at zero: the texture begins as a function of
            # uv alone (the static variant) and audio enters only as far as it lowers the loss. With random
            # weights every new audio window shifted the whole face's texture, and on held-out frames the
            # audio-conditioned renderer scored below the static one.
            with torch.no_grad():
                self.texture.body[0].linear.weight[:, 2:] = 0.0
        self.texture_grid = (TexturePyramid(c.texture_channels, c.texture_grid, c.texture_grid_levels)
                             if c.texture_grid > 0 else None)
        self.decoder = UNet(c.unet_in_channels, c.unet_base, c.unet_depth)

    @property
    def config(self) -> NeuralTextureConfig:
        return self.options

    @classmethod
    def needs_for(cls, options: NeuralTextureConfig) -> RendererNeeds:
        c = options
        audio = (AudioNeed("mfcc", {"n_mfcc": c.audio_dim, "window_video_frames": c.audio_window // 4})
                 if c.audio_conditioned else None)
        return RendererNeeds(audio=audio, context_frames=c.temporal_window)

    # -- the network on rasterized inputs --------------------------------------------------------------
    def neural_texture(self, uv: torch.Tensor, alpha: torch.Tensor,
                       audio: torch.Tensor | None) -> torch.Tensor:
        """The rasterized neural texture (B, C, H, W); zero where ``alpha`` is 0.

        Only covered pixels go through the SIREN (gathered, then scattered back).
        """
        B, _, H, W = uv.shape
        covered = alpha[:, 0] > 0.5                                   # (B, H, W)
        coords = uv.permute(0, 2, 3, 1)[covered] * 2.0 - 1.0           # (P, 2) in [-1, 1]
        inputs = [coords]
        if self.audio_encoder is not None:
            if audio is None:
                raise ValueError("this renderer is audio-conditioned: pass the audio window")
            code = self.audio_encoder(audio)                          # (B, N_a)
            batch_of_pixel = torch.arange(B, device=uv.device)[:, None, None].expand(B, H, W)[covered]
            inputs.append(code[batch_of_pixel])
        features = self.texture(torch.cat(inputs, 1))                 # (P, C)
        if self.texture_grid is not None:
            features = features + self.texture_grid(coords)
        texture = features.new_zeros(B, H, W, features.shape[1])
        texture[covered] = features
        return texture.permute(0, 3, 1, 2)

    def render_uv(self, uv: torch.Tensor, alpha: torch.Tensor, frame: torch.Tensor,
                  uv_window: torch.Tensor | None = None, audio: torch.Tensor | None = None,
                  normals: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Render from rasterized inputs.

        Args:
            uv: (B, 2, H, W) rasterized UVs in [0, 1] (0 off the mesh).
            alpha: (B, 1, H, W) mesh coverage.
            frame: (B, 3, H, W) the real frame in [0, 1] (its face is masked out here).
            uv_window: (B, 2 W_R, H, W) neighbours' UVs, required when W_R > 0.
            audio: (B, T_a, D_a) audio window, required when audio-conditioned.
            normals: (B, 3, H, W) camera-space normals, required with ``normal_input``.

        Returns:
            ``image`` (B, 3, H, W) the blended frame, ``decoded`` the raw decoder output,
            ``alpha_expanded`` (B, 1, H, W).
        """
        c = self.options
        alpha_exp = expand_mask(alpha, c.mask_expand_px)
        background = frame * (1.0 - alpha_exp)
        parts = [self.neural_texture(uv, alpha, audio)]
        if c.temporal_window:
            if uv_window is None or uv_window.shape[1] != 2 * c.temporal_window:
                raise ValueError(f"uv_window must have {2 * c.temporal_window} channels")
            parts.append(uv_window)
        if c.normal_input:
            if normals is None:
                raise ValueError("this renderer reads the mesh's normals: pass them")
            parts.append(normals)
        parts.append(background)
        decoded = self.decoder(torch.cat(parts, 1))
        return {"image": blend(decoded, frame, alpha_exp), "decoded": decoded, "alpha_expanded": alpha_exp}

    # -- the contract ----------------------------------------------------------------------------------
    def rasterize(self, batch: RendererBatch) -> dict[str, torch.Tensor | None]:
        """The mesh inputs of :meth:`render_uv` for the batch's frames: ``uv`` and ``alpha``, the neighbours'
        UVs ``uv_window`` (B, 2 W_R, H, W; each frame of the temporal context is rasterized once) and the
        camera-space ``normals`` (with ``normal_input``); a key the options leave out maps to ``None``."""
        c = self.options
        W = c.temporal_window
        params, camera = ((batch.context.params, batch.context.camera) if W and batch.context is not None
                          else (batch.params, batch.camera))
        if W and batch.context is None:
            raise ValueError(f"the neural-texture renderer needs {W} context frames per frame")
        with torch.no_grad():
            if c.normal_input:
                uv, alpha, normals = rasterize_uv_and_normals(batch.face_model, params, camera)
            else:
                (uv, alpha, _), normals = rasterize_uv_and_region(batch.face_model, params, camera), None
            window = None
            if W:
                rows = batch.context.rows
                window = uv[batch.context.neighbours.reshape(-1)].reshape(batch.size, 2 * W, *uv.shape[2:])
                uv, alpha = uv[rows], alpha[rows]
                normals = None if normals is None else normals[rows]
        return {"uv": uv, "alpha": alpha, "uv_window": window, "normals": normals}

    def forward(self, batch: RendererBatch) -> RenderOutput:
        inputs = self.rasterize(batch) | {"frame": batch.frames, "audio": batch.audio}
        if self.training or batch.device.type != "cpu":
            with self.network_autocast():
                out = self.render_uv(**inputs)
            out = {k: v.float() for k, v in out.items()}
        else:
            # On a CPU one frame at a time keeps a 256 px frame's UNet activations in cache: ~1.5x less time
            # per frame than 16 at once.
            parts = [self.render_uv(**{k: None if v is None else v[i:i + 1] for k, v in inputs.items()})
                     for i in range(batch.size)]
            out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return RenderOutput(out["image"], out["alpha_expanded"],
                            {"decoded": out["decoded"], "coverage": inputs["alpha"]})

    def frame_weights(self, source: Any) -> Any:
        """Draw ``eye_balanced_share`` of the frames evenly over eye openness (blinks are rare but must be drawn)."""
        if not self.options.eye_balanced_share:
            return None
        from core.renderers.triplane.eyes import eye_balanced_weights, source_eye_openness

        return eye_balanced_weights(source_eye_openness(source), self.options.eye_balanced_share)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        if self.texture_grid is None:
            return super().param_groups(lr)
        grid = list(self.texture_grid.parameters())
        grid_ids = {id(p) for p in grid}
        rest = [p for p in self.parameters() if id(p) not in grid_ids and p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": grid, "lr": lr * self.options.texture_grid_lr_scale}]

    def criteria(self) -> nn.ModuleDict:
        from core.renderers.losses import AdversarialLoss, StyleLoss

        modules: dict[str, nn.Module] = {"style": StyleLoss()}
        if self.options.lambda_gan > 0:
            modules["gan"] = AdversarialLoss()
        return nn.ModuleDict(modules)

    def _gan_active(self, step: TrainStep) -> bool:
        return self.options.lambda_gan > 0 and step.iteration > min(self.options.gan_start, step.total // 4)

    def adversarial_pairs(self, batch: RendererBatch, output: RenderOutput, step: TrainStep
                          ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        assert output.image is not None
        return {"gan": (batch.frames, output.image)} if self._gan_active(step) else {}

    def losses(self, batch: RendererBatch, output: RenderOutput, criteria: nn.ModuleDict,
               step: TrainStep) -> dict[str, torch.Tensor]:
        c = self.options
        pred, target = output.image, batch.frames
        assert pred is not None
        terms = {"l1": c.lambda_l1 * (pred - target).abs().mean(),
                 "style": c.lambda_style * criteria["style"](pred, target)}
        if self._gan_active(step):
            terms["gan_g"] = c.lambda_gan * criteria["gan"].generator_loss(pred)
        return terms

