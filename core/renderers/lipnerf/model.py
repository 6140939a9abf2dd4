"""LipNeRF (Chatziagapi et al. 2023) on the shared NeRF core.

F(e, v, x, d) -> (c, sigma) (Eq. 1): e is the frame's tracked expression coefficients with its jaw pose (our
face models open the mouth with the jaw); v a learned 32-D latent code per training frame (§III-C), kept small
by ``lambda_latent * ||v||_2`` (Eq. 3, lambda 0.01); x the canonical position (rays enter the head's own
frame through the tracked head pose, :mod:`core.renderers.nerf.rays`); d the view direction.

**Which latent a frame that was not trained on gets** (a held-out frame, every frame of a shot): the mean of the
training frames' latent codes. A shot's frames are not training frames, so no code of their own exists; the
mean is the actor's average appearance, the same for every frame (no flicker), and it is the value the L2 term
pulls all codes towards. At dub time e comes from our a2e (audio + keyframed emotion curves, Savitzky-Golay
smoothed, window 5, order 2) where the paper fitted a 3DMM to Wav2Lip's output; the shot keeps its own head pose
and blinks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.renderers.base import RendererBatch, RendererSetup, RenderOutput, TrainStep
from core.renderers.nerf.mlp_field import MLPFieldNeRF
from core.renderers.registry import register_renderer

from .config import LipNeRFConfig

E_CLAMP = 3.0  # standardised expression inputs are clamped to +-3 standard deviations of the training frames


@register_renderer("lipnerf")
class LipNeRF(MLPFieldNeRF):
    """The per-frame latent codes and the conditions of the shared :class:`MLPFieldNeRF`."""

    options: LipNeRFConfig
    frame_bound = True  # one latent code per training frame

    def __init__(self, options: LipNeRFConfig, setup: RendererSetup) -> None:
        super().__init__(options, setup)
        o = options
        self.build_field(setup.n_expression + (3 if o.use_jaw else 0) + o.latent_dim)
        self.latents = nn.Embedding(max(setup.train_frames, 1), o.latent_dim) if o.latent_dim else None
        if self.latents is not None:
            nn.init.normal_(self.latents.weight, std=0.01)
        # e is standardised with the training frames' statistics (prepare): a smile moves a few coefficients by
        # a few tenths while the jaw moves by radians; unit variance lets the MLP see both. Coefficients that
        # never moved in training get weight 0: the field cannot know what they look like.
        n_e = setup.n_expression + (3 if o.use_jaw else 0)
        self.register_buffer("e_mean", torch.zeros(n_e))
        self.register_buffer("e_scale", torch.ones(n_e))

    def latent_codes(self, frame_ids: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) codes: a training frame's own, the mean code for any other frame (module docstring)."""
        assert self.latents is not None
        known = frame_ids >= 0
        mean = self.latents.weight.mean(0, keepdim=True).expand(len(frame_ids), -1)
        own = self.latents(frame_ids.clamp(0, self.latents.num_embeddings - 1))
        return torch.where(known[:, None], own, mean)

    def expression_vector(self, params: Any) -> torch.Tensor:
        """(B, E [+ 3]) e before standardisation: the expression coefficients [and the jaw pose]."""
        expression = params.expression
        n = self.setup.n_expression
        if expression.shape[1] != n:  # pad or cut to the count the field was built for
            expression = torch.nn.functional.pad(expression, (0, max(0, n - expression.shape[1])))[:, :n]
        return torch.cat([expression, params.jaw_pose], 1) if self.options.use_jaw else expression

    @torch.no_grad()
    def prepare(self, source: Any) -> None:
        super().prepare(source)
        n = len(source)
        picks = torch.linspace(0, n - 1, min(n, 4000)).round().long().unique().tolist()
        e = self.expression_vector(source.params(picks)).to(self.e_mean.device)
        std = e.std(0) if len(e) > 1 else torch.zeros(e.shape[1])
        self.e_mean.copy_(e.mean(0))
        self.e_scale.copy_(torch.where(std > 1e-4, 1.0 / std.clamp_min(1e-4), torch.zeros_like(std)))

    def conditions(self, batch: RendererBatch) -> torch.Tensor:
        # Beyond 3 standard deviations of what the field saw, an expression saturates instead of feeding the MLP
        # inputs it was never trained on (an a2e prediction out of the actor's range would otherwise take over).
        z = ((self.expression_vector(batch.params) - self.e_mean) * self.e_scale).clamp(-E_CLAMP, E_CLAMP)
        parts = [z]
        if self.latents is not None:
            parts.append(self.latent_codes(batch.frame_ids))
        return torch.cat(parts, 1)

    def extra_losses(self, batch: RendererBatch, output: RenderOutput, step: TrainStep) -> dict[str, torch.Tensor]:
        if self.latents is None or not self.options.lambda_latent:
            return {}
        ids = batch.frame_ids[batch.frame_ids >= 0]
        if not len(ids):
            return {}
        return {"latent": self.options.lambda_latent * self.latents(ids).norm(dim=1).mean()}
