"""Declares the ``nerf_ad`` variant (standard library only: read by ``emodub renderers``)."""

from core.renderers.spec import declare_variant

declare_variant(
    "nerf_ad",
    "NeRF conditioned on an identity face and an audio face that action-unit attention splits apart, and on the "
    "emotion; keyframed emotions are that input and blend the actor's own per-emotion audio-face references; "
    "presets cpu and paper (GPU)",
    config="core.renderers.nerf_ad.config:NeRFADConfig",
    model="core.renderers.nerf_ad.model:NeRFAD",
    paper="NeRF-AD: Neural Radiance Field with Attention-based Disentanglement for Talking Face Synthesis "
          "(Bi et al. 2024)",
)
