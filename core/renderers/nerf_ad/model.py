"""NeRF-AD (Bi et al. 2024) on the shared NeRF core.

F(l, d, f_id, f_aud, e) -> (c, sigma) (Eq. 7, plus the emotion e):

* **Attention** (§2.1): G_M of the AU-attention module (trained in :meth:`NeRFAD.prepare`, then frozen;
  :mod:`.pretrain`) splits the frame's face crop into the speech region (weight 1 - A) and the rest (A).
* f_id (64-D): the identity face A I (the speech region blanked) through an image encoder learned with the NeRF.
* f_aud (64-D): the fused audio face through E_f (learned with the NeRF). The fused audio face is D's output
  from a *reference* frame's audio face (1 - A_r) I_r through E_a and the frame's audio window (E_a, the audio
  encoder and D trained in :meth:`NeRFAD.prepare`, then frozen). The references are audio faces of training
  frames kept in the checkpoint, ``references`` per emotion group (the neutral takes and each emotion's takes):
  training draws one at random from the group of the frame's own emotion label, evaluation uses the group's
  first. The reference gives the mouth's appearance (a smiling mouth in the happy group), the audio its shape:
  a dub's new audio drives the mouth, never the plate's own mouth.
* ``disentangle=False`` (the paper's "w/o att-d"): the whole crop is both the identity face and the audio face.

AU labels come from our tracking (:mod:`core.expression.action_units`) or imported OpenFace CSVs
(``action_units=NAME``).

**Keyframed emotion** (the paper has none). It enters in two places, both learned from the actor's own labelled
takes (``ingest --emotion``):

* the emotion e itself (the 7 intensities) is a third condition of the field: training feeds each frame's own
  label, so the field learns what this actor's happy face looks like where the identity face cannot say it (the
  speech region is blanked there); a dub feeds the keyframed intensities;
* the mouth's appearance: :meth:`NeRFAD.prepare` keeps audio faces (``references``) per emotion group (the neutral
  takes and each emotion's); a driven batch with intensities w_e (scaled to sum at most 1) takes f_aud as the
  blend (1 - sum w) f_aud(neutral reference) + sum w_e f_aud(reference of e).

**The identity face can be swapped in training** (``identity_swap``, default 0). A frame's own identity face is
unique to it, so the field can learn each training frame's mouth from f_id alone and ignore f_aud and e: a model
trained so (30 CPU minutes) had E_f collapse to one vector (f_aud moved by 0.002 of its norm 9.2 between any two
frames or references), its held-out happy frames rendered without their smile, and zeroing their label changed
the image by 0.001. With probability ``identity_swap`` a training frame takes a neutral take's identity face
instead (kept in ``neutral_faces``), as a dub does (the plate's face, whatever emotion is keyframed). At 0.5, f_aud
varied 10-50 times more between frames, but e was still ignored and the held-out mouth got worse (14.6 against
17.8 dB with fewer steps), so it is off by default.

**Or its neutral partner** (``neutral_partner``, default 1): with that probability a training frame of an
emotional take gets the identity face of the same moment of the same sentence in a neutral take
(:func:`.pretrain.sentence_partners`), the situation of a dub (a neutral plate, a keyframed emotion) with a
photographic target. At 0.5 (30 CPU minutes, synthetic actor) a re-tracked happy ramp turned towards happy (cosine
0.47 with the actor's own direction) but not monotonically (rho 0.4); driving held-out frames with happy 1 instead
of 0 changed them by 0.015 around the mouth (0-1 scale), and the held-out mouth lost 1.9 dB (15.9 against 17.9).
At 1 the change stayed 0.014 and the ramp rho 0.3 (0.6 on the actor's own direction): the field could not draw
what it was asked. Its appearance lives in the tri-plane, a static grid, and the conditions reach only the small MLP
after it: it learned one mean mouth. With the NeRF core's deformation (``deform_width`` 64: the conditions move
where each sample reads the grid) the same change is 0.040, the ramp's rho 0.9 on the generic and the actor's own
happy direction (cosines 0.56 / 0.76) and the held-out face 26.1 dB (25.5 without), at 16.4 dB on the mouth
(17.9 for the model trained on its own identity faces). Both are on by default; one seed each.

An emotion none of the takes shows has no effect (its input is zeroed, its group repeats the neutral one;
training logs which): a photographic reference cannot be made from the face model's prior. Why e is an input:
the first design shifted f_id by the difference of the emotion's and the neutral identity references' mean f_id;
those shifts were small (norm 1.6 for happy against |f_id| ~ 7) and a happy ramp re-tracked from the dub went the
wrong way (Spearman rho -0.3).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from core.expression.action_units import MOUTH_AUS, SPEECH_AUS
from core.renderers.base import AudioNeed, RendererBatch, RendererNeeds, RendererSetup
from core.renderers.nerf.mlp_field import MLPFieldNeRF
from core.renderers.registry import register_renderer

from .config import NeRFADConfig
from .networks import FEATURE_DIM, AttentionGenerator, FusionNet, ImageEncoder, LowerFaceClassifier, resize
from .pretrain import (
    AU_SCALES,
    face_set,
    sentence_partners,
    source_crops,
    speech_weights,
    train_attention,
    train_fusion,
    unit_error,
)

N_EMOTIONS = 7
NEUTRAL_FACES = 8


@register_renderer("nerf_ad")
class NeRFAD(MLPFieldNeRF):
    """The attention, fusion and identity networks and the conditions of the shared :class:`MLPFieldNeRF`."""

    options: NeRFADConfig

    def __init__(self, options: NeRFADConfig, setup: RendererSetup) -> None:
        from core.renderers.data import audio_shape
        from core.renderers.spec import BadRendererOption

        super().__init__(options, setup)
        o = options
        if o.face_size < 16 or o.face_size % 8:
            raise BadRendererOption(f"face_size must be a multiple of 8 and at least 16, got {o.face_size}")
        if o.references < 1:
            raise BadRendererOption("references must be >= 1")
        if o.au_scale not in AU_SCALES:
            raise BadRendererOption(f"au_scale must be one of {', '.join(AU_SCALES)}, got {o.au_scale!r}")
        if o.mask_outside_weight < 0:
            raise BadRendererOption(f"mask_outside_weight must be >= 0, got {o.mask_outside_weight}")
        if not 0.0 <= o.identity_swap <= 1.0:
            raise BadRendererOption(f"identity_swap is a probability (0 to 1), got {o.identity_swap}")
        if not 0.0 <= o.neutral_partner <= 1.0:
            raise BadRendererOption(f"neutral_partner is a probability (0 to 1), got {o.neutral_partner}")
        if o.identity_swap > 0 and not o.disentangle:
            raise BadRendererOption("identity_swap swaps the identity face of the attention split: it needs "
                                    "disentangle=true (without the split the whole crop is the only face input)")
        if o.action_units != "tracked" and setup.frame_features.get(o.action_units, 0) < len(SPEECH_AUS):
            raise BadRendererOption(f"action_units={o.action_units!r}: no imported OpenFace features of that name "
                                    "with the speech AUs (import them for every clip: `emodub features import "
                                    f"--name {o.action_units} FILE.csv --columns 'AU*_r'`), or use 'tracked'")
        _, audio_dim = audio_shape(self.needs_for(o).audio)  # type: ignore[arg-type]
        self.generator = AttentionGenerator(len(MOUTH_AUS))
        self.classifier = LowerFaceClassifier(len(MOUTH_AUS))
        self.fusion = FusionNet(audio_dim)
        self.identity_encoder = ImageEncoder(FEATURE_DIM)
        self.fused_encoder = ImageEncoder(FEATURE_DIM)
        S = o.face_size
        self.register_buffer("audio_references", torch.zeros(1 + N_EMOTIONS, o.references, 3, S, S))
        self.register_buffer("emotion_known", torch.zeros(N_EMOTIONS))  # 1: the takes show it
        # The AU scale C learned (labels = (AU / 5 - low) / span): reports read its output on the 0-5 scale.
        self.register_buffer("au_low", torch.zeros(len(SPEECH_AUS)))
        self.register_buffer("au_span", torch.ones(len(SPEECH_AUS)))
        self.register_buffer("neutral_faces", torch.zeros(NEUTRAL_FACES, 3, S, S))  # identity faces (A I)
        self.build_field(2 * FEATURE_DIM + N_EMOTIONS)
        self.pretrain_report: dict[str, Any] = {}
        self._attention_sheet: np.ndarray | None = None
        # Training only, rebuilt on every start (attach_training_frames): frame id -> row of partner_faces, -1 none.
        self._partner_row: torch.Tensor | None = None
        self._partner_faces: torch.Tensor | None = None  # (P, 3, S, S) uint8 identity faces of neutral partners

    @classmethod
    def needs_for(cls, options: NeRFADConfig | None) -> RendererNeeds:
        o = options or NeRFADConfig()
        return RendererNeeds(audio=AudioNeed("mfcc", {"window_video_frames": o.audio_window}),
                             frame_features=() if o.action_units == "tracked" else (o.action_units,))

    def frozen_modules(self) -> list[torch.nn.Module]:
        """The networks trained before the NeRF (kept out of its optimiser)."""
        return [self.generator, self.classifier, self.fusion]

    # -- before the NeRF ------------------------------------------------------------------------------------
    def prepare(self, source: Any) -> None:
        """Occupancy (the core), the attention and the fusion (:mod:`.pretrain`), the references."""
        super().prepare(source)
        o = self.options
        device = self.audio_references.device
        faces = face_set(source, o.face_size, o.action_units, o.au_scale)
        self.au_low.copy_(faces.unit_low)
        self.au_span.copy_(faces.unit_span)
        with torch.enable_grad():
            generator, classifier, attention = train_attention(
                faces, o.attention_steps, lambda_code=o.lambda_code, lambda_cycle=o.lambda_cycle,
                lambda_gp=o.lambda_gp, lambda_mask=o.lambda_mask, lambda_tv=o.lambda_tv,
                mask_outside_weight=o.mask_outside_weight, progress=self.stage_progress("AU attention"),
                device=str(device))
            fusion, fused = train_fusion(faces, generator if o.disentangle else None, classifier, o.fusion_steps,
                                         lambda_au=o.lambda_fusion_au, box_weight=o.fusion_box_weight,
                                         progress=self.stage_progress("audio-face fusion"), device=str(device))
        self.generator.load_state_dict(generator.state_dict())
        self.classifier.load_state_dict(classifier.state_dict())
        self.fusion.load_state_dict(fusion.state_dict())
        self.to(device)
        crops = faces.crops.to(device)
        speech = self.speech_weights(crops)
        emotions = self._keep_audio_references(crops, speech, faces.emotion.to(device))
        shown = torch.linspace(0, len(crops) - 1, 6).round().long()
        self._attention_sheet = attention_sheet(crops[shown], speech[shown])
        self.pretrain_report = {"attention": {"steps": o.attention_steps, **attention},
                                "fusion": {"steps": o.fusion_steps, **fused},
                                "classifier_training_frames": unit_error(self.classifier, crops, faces),
                                "emotions": emotions}
        if self.log is not None:
            self.log(f"nerf_ad networks: {json.dumps(self.pretrain_report)}")

    @torch.no_grad()
    def attach_training_frames(self, source: Any) -> None:
        """The identity faces of the emotional frames' neutral partners (:func:`.pretrain.sentence_partners`), for
        ``neutral_partner``: made from the trained attention, so on every start and resume, never saved."""
        self._partner_row = self._partner_faces = None
        o = self.options
        if not (self.training and o.disentangle and o.neutral_partner > 0):
            return
        partners = sentence_partners(source)
        paired = np.flatnonzero(partners >= 0)
        if self.log is not None:
            self.log(f"nerf_ad: {len(paired)} of {len(partners)} training frames have a neutral partner (same "
                     "sentence, neutral take)" + ("" if len(paired) else ": ingest emotional takes with "
                                                                        "--sentence beside a neutral take"))
        if not len(paired):
            return
        device = self.audio_references.device
        mates, row_of_mate = np.unique(partners[paired], return_inverse=True)
        crops = source_crops(source, mates.tolist(), o.face_size).to(device)
        faces = self.identity_faces(crops, self.speech_weights(crops))
        self._partner_faces = (faces.clamp(0, 1) * 255).round().to(torch.uint8)
        row = torch.full((len(partners),), -1, dtype=torch.long)
        row[torch.from_numpy(paired)] = torch.from_numpy(row_of_mate.reshape(-1)).long()
        self._partner_row = row.to(device)

    def prepare_report(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The networks' final losses and the attention picture (``attention.png``)."""
        pictures = {} if self._attention_sheet is None else {"attention": self._attention_sheet}
        return self.pretrain_report, pictures

    @torch.no_grad()
    def _keep_audio_references(self, crops: torch.Tensor, speech: torch.Tensor, labels: torch.Tensor
                               ) -> dict[str, str]:
        """Audio faces (``references``) of the neutral frames and of each emotion's (label >= 0.5); an emotion
        without frames repeats the neutral group."""
        from core.expression.emotions import EMOTIONS

        audio = speech * crops
        identity = self.identity_faces(crops, speech)
        neutral = (labels.max(1).values <= 0).nonzero()[:, 0]
        if not len(neutral):
            neutral = torch.arange(len(crops), device=crops.device)
        groups = [neutral] + [(labels[:, e] >= 0.5).nonzero()[:, 0] for e in range(N_EMOTIONS)]
        known = torch.zeros(N_EMOTIONS)
        for slot, members in enumerate(groups):
            if slot and not len(members):
                members = neutral
            elif slot:
                known[slot - 1] = 1.0
            spread = torch.linspace(0, len(members) - 1, self.options.references).round().long()
            self.audio_references[slot].copy_(audio[members[spread]])
        spread = torch.linspace(0, len(neutral) - 1, NEUTRAL_FACES).round().long()
        self.neutral_faces.copy_(identity[neutral[spread]])
        self.emotion_known.copy_(known.to(self.emotion_known))
        return {name: "takes" if k else "none" for name, k in zip(EMOTIONS, known.tolist(), strict=True)}

    # -- the split ------------------------------------------------------------------------------------------
    def speech_weights(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) 1 - A: the speech region's weight (ones without disentanglement)."""
        return speech_weights(self.generator if self.options.disentangle else None, crops)

    def identity_faces(self, crops: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) A I: the face with its speech region blanked (the whole crop without disentanglement)."""
        return (1 - speech) * crops if self.options.disentangle else crops

    def attention_mask(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) the speech weight 1 - A of full-size frames (for reports), at the frames' size."""
        with torch.no_grad():
            speech = self.speech_weights(resize(frames, self.options.face_size))
        return torch.nn.functional.interpolate(speech, size=frames.shape[-2:], mode="bilinear", align_corners=False)

    # -- conditions -----------------------------------------------------------------------------------------
    def conditions(self, batch: RendererBatch) -> torch.Tensor:
        if batch.audio is None:
            raise ValueError("NeRF-AD needs the audio window of every frame (RendererNeeds.audio)")
        crops = resize(batch.frames, self.options.face_size)
        with torch.no_grad():
            speech = self.speech_weights(crops)
        identity = self.identity_faces(crops, speech)
        if self.training and self.options.disentangle and self.options.identity_swap > 0:
            swap = torch.rand(batch.size, device=crops.device) < self.options.identity_swap
            other = self.neutral_faces[torch.randint(NEUTRAL_FACES, (batch.size,), device=crops.device)]
            identity = torch.where(swap[:, None, None, None], other, identity)
        if self.training and self._partner_row is not None and self._partner_faces is not None:
            known = batch.frame_ids >= 0
            row = torch.where(known, self._partner_row[batch.frame_ids.clamp_min(0)], -1)
            use = (row >= 0) & (torch.rand(batch.size, device=crops.device) < self.options.neutral_partner)
            partner = self._partner_faces[row.clamp_min(0)].to(identity.dtype) / 255.0
            identity = torch.where(use[:, None, None, None], partner, identity)
        f_id = self.identity_encoder(identity)
        if self.training:
            reference = torch.randint(self.options.references, (batch.size,), device=crops.device)
        else:
            reference = torch.zeros(batch.size, dtype=torch.long, device=crops.device)
        groups = self.reference_weights(batch.emotion, batch.driven)
        f_aud = 0
        for slot in groups.sum(0).nonzero()[:, 0].tolist():
            with torch.no_grad():
                fused = self.fusion(self.audio_references[slot, reference], batch.audio)
            f_aud = f_aud + groups[:, slot:slot + 1] * self.fused_encoder(fused)
        return torch.cat([f_id, f_aud, self.filmed_emotions(batch.emotion)], 1)

    def filmed_emotions(self, emotion: torch.Tensor) -> torch.Tensor:
        """(B, 7) intensities in [0, 1], zero for every emotion none of the takes shows (it has no effect)."""
        return emotion.clamp(0, 1) * self.emotion_known

    def reference_weights(self, emotion: torch.Tensor, driven: bool) -> torch.Tensor:
        """(B, 1 + 7) weights of the reference groups (neutral, then each emotion) for (B, 7) emotion labels:
        driven, the keyframed intensities of the emotions the takes show, scaled to sum at most 1, and the rest
        neutral; otherwise one-hot on the frame's own label (its strongest emotion at >= 0.5, else neutral)."""
        if driven:
            w = self.filmed_emotions(emotion)
            w = w / w.sum(1, keepdim=True).clamp_min(1.0)
            return torch.cat([1 - w.sum(1, keepdim=True), w], 1)
        strongest, which = emotion.max(1)
        slot = torch.where(strongest >= 0.5, which + 1, torch.zeros_like(which))
        return torch.nn.functional.one_hot(slot, 1 + N_EMOTIONS).to(emotion.dtype)


def attention_sheet(crops: torch.Tensor, speech: torch.Tensor, scale: int = 3) -> np.ndarray:
    """(H, W, 3) uint8: one row per crop: the crop, its speech weight in red over it, the identity face A I and the
    audio face (1 - A) I, each ``scale`` times larger."""
    red = torch.tensor([1.0, 0.0, 0.0], device=crops.device)[:, None, None]
    rows = [torch.cat([c, c * (1 - 0.6 * w) + 0.6 * w * red, c * (1 - w), c * w], -1) for c, w in zip(crops, speech,
                                                                                                     strict=True)]
    sheet = torch.nn.functional.interpolate(torch.cat(rows, -2)[None], scale_factor=scale, mode="nearest")[0]
    return (sheet.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def region_shares(speech: torch.Tensor, regions: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of the total speech weight (B, 1, H, W) inside each region mask (B, 1, H, W)."""
    total = speech.sum().clamp_min(1e-8)
    return {name: float((speech * mask).sum() / total) for name, mask in regions.items()}
