"""Declares the ``neural_texture`` variant (standard library only: read by ``emodub renderers``)."""

from core.renderers.spec import declare_variant

declare_variant(
    "neural_texture",
    "Audio-conditioned SIREN neural texture on the tracked mesh + UNet deferred renderer; fast on CPU",
    config="core.renderers.neural_texture.config:NeuralTextureConfig",
    model="core.renderers.neural_texture.model:NeuralTextureRenderer",
    paper="READ Avatars (Johnson et al. 2023), §3.3",
)
