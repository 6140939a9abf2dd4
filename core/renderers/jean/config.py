"""Options of JEAN (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.renderers.nerf.config import PAPER_MLP_FIELD, MLPFieldOptions


@dataclass
class JEANConfig(MLPFieldOptions):
    """JEAN's field F(e_in, d, x) -> (c, sigma) (§3.3, Eq. 5), its encoders (§3.1, §3.2), its MLP and encoding,
    and the NeRF core's sampling options.

    Attributes:
        audio_encoder: ``contrastive`` (§3.1: trained before the NeRF to match the mouth embedding of a landmark
            autoencoder, then frozen) or ``joint`` (Table 2's variant without it: the same CNN learned with the
            NeRF from the photometric loss alone).
        audio_encoder_weights: a multi-speaker audio encoder to use instead of one trained on the actor's own
            frames (a file saved by ``bench/jean_retrieval.py --save``; tensors only). Empty: train on the actor.
        expression_features: ``transformer`` (§3.2: the expression half of the expression transformer, trained
            before the NeRF on takes of one sentence in several emotions, then frozen) or ``mlp`` (Table 2's
            variant without it: the frame's emotion features through a thin MLP learned with the NeRF).
        emotion_network: the name of imported per-frame features from a pretrained emotion-recognition network
            (§3.2: the paper's 2048-D features), computed by the user for every clip and imported with ``emodub
            features import --name NAME``. Empty: the substitute built from the tracked face
            (:mod:`core.renderers.jean.features`).
        audio_window: video frames of audio features around each frame the audio encoder sees (8 = 320 ms).
        expression_window: frames per expression-transformer window (paper: 8).
        swap_probability: chance that two frames' mouth embeddings (§3.1) or two takes' speech features (§3.2)
            are exchanged in training (paper: 0.8 for both).
        temperature: tau of InfoNCE (paper: 0.1).
        pretrain_steps: optimisation steps of the landmark autoencoder and of the audio encoder before the NeRF
            trains.
        expression_steps: optimisation steps of the expression transformer before the NeRF trains (its steps cost
            about ten times an audio encoder's on a CPU).
    """

    audio_encoder: str = "contrastive"
    audio_encoder_weights: str = ""
    expression_features: str = "transformer"
    emotion_network: str = ""
    audio_window: int = 8
    expression_window: int = 8
    swap_probability: float = 0.8
    temperature: float = 0.1
    pretrain_steps: int = 1500
    expression_steps: int = 500


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"description": "the paper's NeRF: frequency encoding, 8 x 128 MLP, coarse + fine sampling (64 + 64), "
                             "2048 rays per step, 256 px; for GPUs",
              "options": {**PAPER_MLP_FIELD, "pretrain_steps": 5000, "expression_steps": 5000},
              "train": {"iterations": 200000}},
    "cpu": {"description": "for CPUs: 128 px, occupancy-grid sampling with 32 samples per ray, tri-plane encoding "
                           "and a 3 x 64 MLP; 1,500 steps for the audio encoder and its landmark autoencoder, "
                           "500 for the expression transformer",
            "options": {}, "train": {}},
}
DEFAULT_PRESET = "cpu"
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 5e-4, "lr_final": 5e-5, "betas": (0.9, 0.999), "batch_size": 1,
                                  "iterations": 3000}
# `emodub demo` at each of its scales (train.renderer params; `--nerf-minutes` trains for a time instead).
DEMO: dict[str, dict[str, Any]] = {
    "smoke": {"preset": "cpu", "iterations": 4, "options": {"render_size": 32, "rays_per_step": 256,
                                                            "pretrain_steps": 20, "expression_steps": 10}},
    "quick": {"preset": "cpu", "iterations": 600, "options": {"pretrain_steps": 500, "expression_steps": 200}},
    "full": {"preset": "cpu", "iterations": 2000},
}
