"""Options of NeRF-AD (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from core.renderers.nerf.config import PAPER_MLP_FIELD, MLPFieldOptions


@dataclass
class NeRFADConfig(MLPFieldOptions):
    """NeRF-AD's field F(l, d, f_id, f_aud, e) -> (c, sigma) (§2.3, Eq. 7, plus the emotion e), its attention and
    fusion networks (§2.1, §2.2), its MLP and encoding, and the NeRF core's sampling options.

    Attributes:
        action_units: where the AU labels come from: ``tracked`` (estimated from our face tracking,
            :mod:`core.expression.action_units`) or the name of imported OpenFace features (``emodub features
            import --name NAME openface.csv --columns 'AU*_r'``).
        disentangle: the attention split (§2.1). ``False`` is the paper's ablation "w/o att-d": the whole face
            crop is both the identity face and the audio face.
        face_size: side of the face crops the attention and fusion networks see.
        attention_steps: optimisation steps of the AU-attention module (G_M, G_W, C, W_D) before the NeRF.
        fusion_steps: optimisation steps of the audio-face encoder E_a and decoder D before the NeRF.
        references: training frames kept as audio-face references (the mouth's appearance the decoder starts
            from) per emotion group: the neutral takes and each emotion the takes show.
        lambda_code: weight of the speech-AU code loss (Eq. 1's first term; squared error summed over the nine
            mouth AUs on 0-1). It has to dominate: at 1 the generator met the other terms by painting almost
            nothing (2.6% of a crop); GANimation, whose module §2.1 follows, also weighs its expression loss
            far above the rest.
        lambda_cycle: weight of the cycle identity loss (Eq. 2).
        lambda_gp: weight of WGAN-GP's gradient penalty (Eq. 3; paper: WGAN-GP's 10).
        lambda_mask: weight of the mask's size, mean(1 - A) (ours: without it the attention can take the whole
            face; GANimation regularises its attention the same way).
        mask_outside_weight: the mask-size term weighs speech weight outside the lower face's box (from under the
            nose to below the chin, between the jaw's sides; the box C reads) 1 + this times. Ours: the speech AUs
            are all in that box, but with an even penalty part of the weight settled on the hair, neck and collar.
        lambda_tv: weight of the mask's total variation (smoothness; GANimation's order of magnitude: a heavy TV
            term makes the mask one blob or nothing).
        lambda_fusion_au: weight of the AU loss in the fusion's training (Eqs. 4-5; the paper: 1). At 1 the
            decoder met it by painting a coloured band across the lips that C reads as the target AUs.
        fusion_box_weight: the fusion's L1 (Eq. 6) weighs the pixels of the lower face's box 1 + this times
            (the mouth is a few percent of a crop; unweighted, a blurred mean mouth meets the L1).
        identity_swap: probability that a training frame's identity face is one of the neutral takes' instead of
            its own, with ``disentangle`` only (:mod:`.model`: without it the field learns each frame's mouth
            from its own identity face and ignores the audio face; at 0.5 it used the audio face but the
            held-out mouth got worse).
        neutral_partner: probability that a training frame of an emotional take gets, as its identity face, that
            of the same moment of the same sentence in a neutral take (:func:`.pretrain.sentence_partners`; takes
            ingested with ``--sentence``), with ``disentangle`` only. A dub gives the plate's face, whatever
            emotion is keyframed: so trained, the field has to draw the emotion from its emotion input and the
            emotion's audio face, which its own identity face would otherwise say for it. Frames without a
            partner (no neutral take of their sentence) keep their own face. At 0.5 a happy ramp turned towards
            happy but not monotonically and the held-out mouth lost 1.9 dB (:mod:`.model`); at 1 (every
            partnered frame) alone no better (rho 0.3); at 1 with the deformation (``deform_width``) the ramp
            reached the picture (rho 0.9), so both are on.
        deform_width: as the NeRF core's (:class:`~core.renderers.nerf.config.MLPFieldOptions`), on here: without
            the deformation the tri-plane held one mean mouth and the conditions barely moved it (driving happy 1
            instead of 0 changed the mouth by 0.014, with it 0.040; :mod:`.model`).
        audio_window: video frames of audio features around each frame the fusion sees (8 = 320 ms).
        au_scale: ``"actor"``: each AU label is rescaled so the actor's own range over the training frames (2nd to
            98th percentile) spans 0-1 before the attention and fusion learn from it; ``"absolute"``: OpenFace's
            0-5 scale / 5, as the paper. A reserved speaker moves the mouth AUs little (the long office clip:
            AU25 / AU26 spread 0.26 / 0.22 against 1.3 on the synthetic actor), so on the absolute scale the code
            loss saw almost no difference between codes and the attention painted nothing.
    """

    action_units: str = "tracked"
    disentangle: bool = True
    face_size: int = 64
    attention_steps: int = 800
    fusion_steps: int = 800
    references: int = 8
    lambda_code: float = 100.0
    lambda_cycle: float = 10.0
    lambda_gp: float = 10.0
    lambda_mask: float = 5.0
    mask_outside_weight: float = 9.0
    lambda_tv: float = 1e-3
    lambda_fusion_au: float = 0.1
    fusion_box_weight: float = 9.0
    identity_swap: float = 0.0
    neutral_partner: float = 1.0
    deform_width: int = 64
    # Checkpoints written before an option existed were trained as if it were this (not today's default).
    PREDATING_VALUES: ClassVar[dict[str, Any]] = {"deform_width": 0}
    audio_window: int = 8
    au_scale: str = "actor"


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"description": "the paper's NeRF: frequency encoding, 8 x 128 MLP, coarse + fine sampling (64 + 64), "
                             "2048 rays per step, 256 px; 128 px face crops; for GPUs",
              "options": {**PAPER_MLP_FIELD, "face_size": 128, "attention_steps": 20000, "fusion_steps": 20000},
              "train": {"iterations": 200000}},
    "cpu": {"description": "for CPUs: 128 px, occupancy-grid sampling with 32 samples per ray, tri-plane encoding "
                           "and a 3 x 64 MLP; 64 px face crops, 800 steps each for the attention and the fusion",
            "options": {}, "train": {}},
}
DEFAULT_PRESET = "cpu"
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 5e-4, "lr_final": 5e-5, "betas": (0.9, 0.999), "batch_size": 1,
                                  "iterations": 3000}
# `emodub demo` at each of its scales (train.renderer params; `--nerf-minutes` trains for a time instead).
DEMO: dict[str, dict[str, Any]] = {
    "smoke": {"preset": "cpu", "iterations": 4, "options": {"render_size": 32, "rays_per_step": 256,
                                                            "face_size": 32, "attention_steps": 10,
                                                            "fusion_steps": 10, "references": 4}},
    "quick": {"preset": "cpu", "iterations": 600, "options": {"attention_steps": 300, "fusion_steps": 300}},
    "full": {"preset": "cpu", "iterations": 2000},
}
