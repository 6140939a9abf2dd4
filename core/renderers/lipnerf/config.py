"""Options of LipNeRF (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.renderers.nerf.config import PAPER_MLP_FIELD, MLPFieldOptions


@dataclass
class LipNeRFConfig(MLPFieldOptions):
    """LipNeRF's field F(e, v, x, d) -> (c, sigma) (§III-B, C, E), its MLP and encoding, and the NeRF core's
    sampling options.

    Attributes:
        latent_dim: size of the learned per-frame latent code v (paper: 32; 0 disables it).
        lambda_latent: weight of the latent codes' L2 norm (paper: 0.01).
        use_jaw: the jaw pose joins the expression coefficients in e (our face models open the mouth with the
            jaw, which the paper's 3DMM folds into its expression basis).
    """

    latent_dim: int = 32
    lambda_latent: float = 0.01
    use_jaw: bool = True


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"description": "the paper's network: frequency encoding, 8 x 128 MLP, coarse + fine sampling "
                             "(64 + 64), 2048 rays per step, 256 px; for GPUs",
              "options": {**PAPER_MLP_FIELD},
              "train": {"iterations": 200000}},
    "cpu": {"description": "for CPUs: 128 px, rays only in the head mask, occupancy-grid sampling with 32 "
                           "samples per ray, tri-plane encoding and a 3 x 64 MLP",
            "options": {}, "train": {}},
}
DEFAULT_PRESET = "cpu"
# The paper: Adam, 5e-4 decaying exponentially to 5e-5.
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 5e-4, "lr_final": 5e-5, "betas": (0.9, 0.999), "batch_size": 1,
                                  "iterations": 3000}
# `emodub demo` at each of its scales (train.renderer params; `--nerf-minutes` trains for a time instead).
DEMO: dict[str, dict[str, Any]] = {
    "smoke": {"preset": "cpu", "iterations": 4, "options": {"render_size": 32, "rays_per_step": 256}},
    "quick": {"preset": "cpu", "iterations": 600},
    "full": {"preset": "cpu", "iterations": 2000},
}
