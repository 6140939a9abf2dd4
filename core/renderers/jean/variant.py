"""Declares the ``jean`` variant (standard library only: read by ``emodub renderers``)."""

from core.renderers.spec import declare_variant

declare_variant(
    "jean",
    "NeRF conditioned on a contrastive audio embedding and expression features disentangled from speech; "
    "keyframed emotions blend the actor's own per-emotion features; presets cpu and paper (GPU)",
    config="core.renderers.jean.config:JEANConfig",
    model="core.renderers.jean.model:JEAN",
    paper="JEAN: Joint Expression and Audio-guided NeRF-based Talking Face Generation (Chatziagapi et al. 2024)",
)
