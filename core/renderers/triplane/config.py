"""Options of the tri-plane hash NeRF (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.renderers.nerf.config import NeRFOptions


@dataclass
class TriPlaneConfig(NeRFOptions):
    """The tri-plane hash field F(x, d, A, landmarks, eyes) -> (c, sigma) (Eq. 4-5), the dynamic landmark
    transformer (Eq. 6-7), the eye module (§III-C), coarse-to-fine training (§III-D), and the NeRF core's
    sampling options.

    Attributes:
        hash_levels: levels L of each plane's hash grid (Eq. 4: XY, YZ and XZ grids, features concatenated).
        hash_features: features per level and plane.
        hash_log2_table: log2 of each level's table size; levels whose plane fits are indexed densely.
        hash_base: side of the coarsest level's plane.
        hash_finest: side of the finest level's plane.
        width: hidden width of the density MLP.
        depth: hidden layers of the density MLP.
        geo_dim: geometric feature the density MLP hands to the colour MLP.
        colour_width: hidden width of the colour MLP.
        colour_depth: hidden layers of the colour MLP.
        landmark_dim: size of the landmark code (from the 56 landmarks outside the eyes) the field sees.
        field_audio_dim: size of the audio code the field sees (the transformer's smoothed audio feature A,
            Eq. 5); 0 drives the field by landmarks and eyes alone.
        eye_dim: size of the eye condition (the mapping network's output, from each eye's openness).
        audio_feature: audio features: ``mfcc``, ``mel`` or ``wav2vec2`` (phoneme posteriors; needs
            ``phoneme_model``).
        phoneme_model: folder of a local Wav2Vec2-CTC checkpoint for ``audio_feature=wav2vec2``.
        audio_slots: neighbouring frames (odd) whose audio the temporal filter weighs into A (AD-NeRF: 8).
        audio_frames: video frames of audio each slot's encoder reads (4 = 160 ms at 25 fps).
        dlt_width: model width of the dynamic landmark transformer (and of the audio features).
        dlt_layers: decoder layers of the transformer.
        dlt_heads: attention heads of the transformer.
        vae_dim: size of the VAE latent of the audio.
        drive: what drives the field's landmarks on frames it never trained on (evaluation, dub): ``mesh`` --
            the 68 landmarks of the batch's face parameters (evaluation: the tracked face, like every renderer;
            dub: the a2e's expression with the emotion prior, on the shot's pose); ``transformer`` -- the
            transformer's prediction from the frame's audio, emotion and eye state (the paper's inference).
            Training frames always use their tracked landmarks.
        blinks: eye state on frames it never trained on: ``shot`` -- the openness of the plate's own tracked
            eyes (a dub keeps the shot's blinks); ``predicted`` -- the eye module's prediction from the audio
            and emotion.
        emotion_augment: share of training frames on which the transformer also learns an emotion the actor
            was never filmed with: the face model's emotion prior at a random intensity is added to the frame's
            expression and the target landmarks follow (the image is not trained on them).
        lambda_landmark: weight of the landmark L1 (Eq. 7, in percent of the inter-ocular distance).
        lambda_vae: weight of the audio VAE's reconstruction (plus 0.001 x its KL divergence).
        lambda_eye: weight of the eye prediction's L1 on the tracked openness.
        fine_start: fraction of training after which the fine stage (§III-D) starts (1: never).
        patch_size: side (pixels at render size) of the mouth patches of the fine stage.
        patches: mouth patches per fine step (they replace scattered rays; the step's ray count is kept).
        lambda_perceptual: weight of the patches' perceptual term (paper: 0.001).
        perceptual: ``auto`` (LPIPS when its weights are present, else ``ssim``), ``lpips`` (refused without
            weights) or ``ssim`` (the substitute: 1 - SSIM plus a gradient L1 on each patch).
        eye_balanced_share: share of the training steps whose frame is drawn evenly over the eye openness the
            footage shows (8 bins, :mod:`.eyes`), the rest uniformly: blinks are a few percent of the frames, too
            few for the eye condition to learn to close the lids.
        eye_ray_fraction: share of each step's rays drawn around the eyes (the NeRF core's option; 0.25 here).
        grid_lr_scale: learning-rate multiplier of the hash tables (ER-NeRF: 10x the networks').
    """

    render_size: int = 128
    samples: int = 24
    hash_levels: int = 6
    hash_features: int = 2
    hash_log2_table: int = 15
    hash_base: int = 16
    hash_finest: int = 256
    width: int = 64
    depth: int = 1
    geo_dim: int = 15
    colour_width: int = 32
    colour_depth: int = 1
    landmark_dim: int = 32
    field_audio_dim: int = 16
    eye_dim: int = 8
    audio_feature: str = "mfcc"
    phoneme_model: str | None = None
    audio_slots: int = 9
    audio_frames: int = 4
    dlt_width: int = 64
    dlt_layers: int = 2
    dlt_heads: int = 4
    vae_dim: int = 16
    drive: str = "mesh"
    blinks: str = "shot"
    emotion_augment: float = 0.5
    lambda_landmark: float = 0.01
    lambda_vae: float = 0.01
    lambda_eye: float = 0.01
    fine_start: float = 0.75
    patch_size: int = 16
    patches: int = 2
    lambda_perceptual: float = 0.001
    perceptual: str = "auto"
    eye_balanced_share: float = 0.6
    eye_ray_fraction: float = 0.25
    grid_lr_scale: float = 10.0


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"description": "for CPUs: 128 px, occupancy sampling with 24 samples per ray, 6 hash levels per plane "
                           "(2^15 entries, finest 256), a one-layer 64-wide density MLP and a 32-wide colour MLP",
            "options": {}, "train": {}},
    "paper": {"description": "GPU sizes (ER-NeRF's field): 512 px, 16 hash levels per plane (2^16 entries, finest "
                             "1024), 2 x 64 density and colour MLPs, 48 samples per ray, 4096 rays per step, two "
                             "32 px mouth patches in the fine stage",
              "options": {"render_size": 512, "samples": 48, "rays_per_step": 4096, "hash_levels": 16,
                          "hash_log2_table": 16, "hash_finest": 1024, "width": 64, "depth": 2, "geo_dim": 64,
                          "colour_width": 64, "colour_depth": 2, "patch_size": 32, "patches": 2,
                          "occupancy_resolution": 96, "occupancy_dilate": 3, "mask_margin_px": 6,
                          "chunk_points": 2**22},
              "train": {"iterations": 100000}},
}
DEFAULT_PRESET = "cpu"
# ER-NeRF: Adam, 1e-2 for the grids and 1e-3 for the networks, decaying by 10 over training.
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "lr_final": 1e-4, "betas": (0.9, 0.99), "batch_size": 1,
                                  "iterations": 3000}
# `emodub demo` at each of its scales (train.renderer params; `--nerf-minutes` trains for a time instead).
DEMO: dict[str, dict[str, Any]] = {
    "smoke": {"preset": "cpu", "iterations": 4, "options": {"render_size": 32, "rays_per_step": 256,
                                                            "patch_size": 8}},
    "quick": {"preset": "cpu", "iterations": 600},
    "full": {"preset": "cpu", "iterations": 2000},
}
