"""Options of LipNeRF (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.renderers.nerf.config import NeRFOptions


@dataclass
class LipNeRFConfig(NeRFOptions):
    """LipNeRF's field F(e, v, x, d) -> (c, sigma) (§III-B, C, E) and the NeRF core's sampling options.

    Attributes:
        encoding: position encoding: ``frequency`` (the paper's, 10 octaves), ``triplane`` (dense
            multi-resolution feature planes, fast on a CPU) or ``hash`` (a 3D hash grid).
        position_freqs: octaves of the frequency encoding of x (paper: 10).
        triplane_resolutions: plane sides of the tri-plane levels.
        triplane_features: channels per tri-plane and level.
        hash_levels: levels of the hash grid.
        width: hidden width of the field MLP (paper: 128).
        depth: hidden layers of the field MLP (paper: 8).
        colour_width: hidden width of the colour branch.
        latent_dim: size of the learned per-frame latent code v (paper: 32; 0 disables it).
        lambda_latent: weight of the latent codes' L2 norm (paper: 0.01).
        use_jaw: the jaw pose joins the expression coefficients in e (our face models open the mouth with the
            jaw, which the paper's 3DMM folds into its expression basis).
        grid_lr_scale: learning-rate multiplier of the tri-plane / hash-grid features (grids learn with larger
            steps than the MLP).
    """

    encoding: str = "triplane"
    position_freqs: int = 10
    triplane_resolutions: tuple[int, ...] = (32, 64, 128)
    triplane_features: int = 8
    hash_levels: int = 12
    width: int = 64
    depth: int = 3
    colour_width: int = 32
    latent_dim: int = 32
    lambda_latent: float = 0.01
    use_jaw: bool = True
    grid_lr_scale: float = 20.0


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"description": "the paper's network: frequency encoding, 8 x 128 MLP, coarse + fine sampling "
                             "(64 + 64), 2048 rays per step, 256 px; for GPUs",
              "options": {"encoding": "frequency", "width": 128, "depth": 8, "colour_width": 64,
                          "hierarchical": True, "samples": 64, "fine_samples": 64, "rays_per_step": 2048,
                          "render_size": 256, "chunk_rays": 8192},
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
