"""Declares the ``triplane`` variant (standard library only: read by ``emodub renderers``)."""

from core.renderers.spec import declare_variant

declare_variant(
    "triplane",
    "Tri-plane hash NeRF driven by 68 landmarks, audio and an eye/blink condition (attention-gated), with a "
    "dynamic landmark transformer (audio + emotion -> landmarks); the fast NeRF; presets cpu and paper (GPU)",
    config="core.renderers.triplane.config:TriPlaneConfig",
    model="core.renderers.triplane.model:TriPlaneNeRF",
    paper="Audio-Driven Talking Face Generation with Blink Embedding and Hash Grid Landmarks Encoding "
          "(Zhang, Yu, Liang, Zhang 2024)",
)
