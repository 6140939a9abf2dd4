"""Options of the neural-texture renderer (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass
class NeuralTextureConfig:
    """Architecture and loss weights of the neural-texture renderer (READ §3.3-3.4).

    Attributes:
        texture_channels: channels of the neural texture (READ: 16).
        temporal_window: W_R, neighbouring frames whose UVs are extra UNet inputs (0 disables).
        audio_dim: per-frame audio feature size D_a (MFCCs); 0 makes the static-texture ablation.
        audio_window: T_a, audio frames per window centred on the target frame (a multiple of 4).
        audio_code: N_a, size of the encoded audio vector a_enc.
        siren_hidden: width of the SIREN texture MLP.
        siren_layers: hidden layers of the SIREN.
        siren_w0: frequency of the first SIREN layer (Sitzmann et al.: 30).
        unet_base: channels of the UNet's first level (doubling per level); 16 renders 256 px crops at
            >= 5 frames/s on a 2-core CPU, 32 costs 3x the compute.
        unet_depth: UNet down-sampling levels.
        mask_expand_px: pixels by which the face mask is grown to make the blend mask.
        texture_grid: side of the finest level of a learnable feature pyramid in UV space whose bilinear samples
            are added to the SIREN's texture (Deferred Neural Rendering's texture, levels halving in side);
            0: the SIREN alone. Fine static detail (stubble, pores, the jaw line) costs the SIREN capacity
            it shares with the audio, a texel stores it; it starts at zero, so training begins as the SIREN.
        texture_grid_levels: levels of that pyramid (coarse levels fill texels the fine ones rarely see).
        texture_grid_lr_scale: its learning rate over the rest's (a texel gets a gradient only from the
            pixels that sample it).
        normal_input: also give the UNet the mesh's camera-space normals (3 channels): how each surface
            patch faces the fixed light and camera, for head poses the training frames did not show.
        eye_balanced_share: share of the training steps whose frame is drawn evenly over the eye openness the
            footage shows (:func:`core.renderers.triplane.eyes.eye_balanced_weights`), the rest uniform. A blink
            closes the lids on a few percent of the frames, so with uniform draws the renderer draws open eyes
            over closed lids. 0: uniform.
        lambda_l1: weight of the L1 photometric loss.
        lambda_style: weight of the style / perceptual loss (VGG-19 Gram when its weights exist).
        lambda_gan: weight of the LSGAN loss (PatchGAN discriminator).
        gan_start: iteration from which the adversarial term is used (at most a quarter of the run).
    """

    texture_channels: int = 16
    temporal_window: int = 2
    audio_dim: int = 13
    audio_window: int = 16
    audio_code: int = 32
    siren_hidden: int = 128
    siren_layers: int = 3
    siren_w0: float = 30.0
    unet_base: int = 16
    unet_depth: int = 4
    mask_expand_px: int = 6
    texture_grid: int = 0
    texture_grid_levels: int = 4
    texture_grid_lr_scale: float = 10.0
    normal_input: bool = True
    eye_balanced_share: float = 0.0
    lambda_l1: float = 1.0
    lambda_style: float = 1.0
    lambda_gan: float = 0.01
    gan_start: int = 200

    # Options added after models were trained without them, and the value such a checkpoint was trained with
    # (the registry fills them in when it loads one; a new model gets the default above).
    PREDATING_VALUES: ClassVar[dict[str, Any]] = {"normal_input": False, "texture_grid": 0,
                                                     "eye_balanced_share": 0.0}

    @property
    def audio_conditioned(self) -> bool:
        return self.audio_dim > 0

    @property
    def unet_in_channels(self) -> int:
        return self.texture_channels + 2 * self.temporal_window + 3 * self.normal_input + 3


PRESETS: dict[str, dict[str, Any]] = {
    "default": {"description": "READ's renderer, audio-conditioned, UNet base 16", "options": {}},
    "static": {"description": "ablation: a static texture (no audio conditioning)", "options": {"audio_dim": 0}},
    # Measured on an H200 (bench/records/2026-12-04_h200_neural_texture_6min.jsonl): 6 minutes, ~3,200 steps,
    # held-out face 31.7 dB on the office clip and 28.8 on the French one, against 29.6 and 26.4 for the
    # old default (Adam 1e-4, constant) at the same step count (the new default: 30.3 and 27.3 at ~3,000 steps).
    # One step costs ~12x the default's, so it is for GPUs.
    "gpu": {"description": "for GPUs: UNet base 32, 4 frames per step, Adam 2e-4 decaying to 2e-5",
            "options": {"unet_base": 32}, "train": {"batch_size": 4, "lr": 2e-4, "lr_final": 2e-5}},
}
DEFAULT_PRESET = "default"
# READ: Adam 1e-4 (betas 0.5, 0.999), batch 1. Twice that rate decaying to 2e-5 over the run gave +0.7 dB held-out face
# on both long real clips at ~3,000 steps (bench/records/2026-12-04_h200_neural_texture_lr_5min.jsonl) at no cost per
# step. No bf16 autocast: the SIREN's sin(30 x) loses its detail in bf16.
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 2e-4, "lr_final": 2e-5, "betas": (0.5, 0.999), "batch_size": 1,
                                  "iterations": 3000, "autocast": False}
# `emodub demo` at each of its scales (train.renderer params), and the ablation it runs beside (static texture).
# The demo's short runs keep a constant rate (lr_final = lr), as their figures were measured.
DEMO: dict[str, dict[str, Any]] = {
    "smoke": {"iterations": 4, "lr": 5e-4, "lr_final": 5e-4, "options": {"unet_base": 8}},
    "quick": {"iterations": 300, "lr": 5e-4, "lr_final": 5e-4, "options": {"unet_base": 16}},
    "full": {"iterations": 500, "lr": 5e-4, "lr_final": 5e-4, "options": {"unet_base": 16}},
}
DEMO_ABLATIONS = ("static",)
