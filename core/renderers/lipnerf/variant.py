"""Declares the ``lipnerf`` variant (standard library only: read by ``emodub renderers``)."""

from core.renderers.spec import declare_variant

declare_variant(
    "lipnerf",
    "NeRF conditioned on the tracked expression + jaw and a per-frame latent code; presets paper (GPU) and cpu",
    config="core.renderers.lipnerf.config:LipNeRFConfig",
    model="core.renderers.lipnerf.model:LipNeRF",
    paper="LipNeRF: What is the right feature space to lip-sync a NeRF? (Chatziagapi et al. 2023)",
)
