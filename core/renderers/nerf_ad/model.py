"""NeRF-AD (Bi et al. 2024) on the shared NeRF core.

F(l, d, f_id, f_aud) -> (c, sigma) (Eq. 7):

* **Attention** (§2.1): G_M of the AU-attention module (trained in :meth:`NeRFAD.prepare`, then frozen;
  :mod:`.pretrain`) splits the frame's face crop into the speech region (weight 1 - A) and the rest (A).
* f_id (64-D): the identity face A I (the speech region blanked) through an image encoder learned with the NeRF.
* f_aud (64-D): the fused audio face through E_f (learned with the NeRF). The fused audio face is D's output
  from a *reference* frame's audio face (1 - A_r) I_r through E_a and the frame's audio window (E_a, the audio
  encoder and D trained in :meth:`NeRFAD.prepare`, then frozen). The references are ``references`` training
  frames kept in the checkpoint; training draws one at random per frame, everything else uses the first. The
  reference gives the mouth's appearance, the audio its shape: a dub's new audio drives the mouth, never the
  plate's own mouth.
* ``disentangle=False`` (the paper's "w/o att-d"): the whole crop is both the identity face and the audio face.

AU labels come from our tracking (:mod:`core.expression.action_units`) or imported OpenFace CSVs
(``action_units=NAME``).

**Keyframed emotion** (the paper has none). The identity face carries the upper face's expression, so emotion
enters through f_id: :meth:`NeRFAD.prepare` keeps identity faces of the actor's takes per emotion (up to 8 frames
each) and of its neutral takes. A driven batch adds, per emotion at intensity w, w times the difference between
the mean f_id of that emotion's references and of the neutral ones (through the identity encoder as trained, so
the offset follows it). An emotion none of the takes shows has no reference and no effect (training logs which):
a photographic reference cannot be made from the face model's prior.
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
from .networks import FEATURE_DIM, AttentionGenerator, FusionNet, ImageEncoder, resize
from .pretrain import face_set, speech_weights, train_attention, train_fusion, unit_error

N_EMOTIONS = 7
EMOTION_REFERENCES = 8


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
        if o.action_units != "tracked" and setup.frame_features.get(o.action_units, 0) < len(SPEECH_AUS):
            raise BadRendererOption(f"action_units={o.action_units!r}: no imported OpenFace features of that name "
                                    "with the speech AUs (import them for every clip: `emodub features import "
                                    f"--name {o.action_units} FILE.csv --columns 'AU*_r'`), or use 'tracked'")
        _, audio_dim = audio_shape(self.needs_for(o).audio)  # type: ignore[arg-type]
        self.generator = AttentionGenerator(len(MOUTH_AUS))
        self.classifier = ImageEncoder(len(SPEECH_AUS))
        self.fusion = FusionNet(audio_dim)
        self.identity_encoder = ImageEncoder(FEATURE_DIM)
        self.fused_encoder = ImageEncoder(FEATURE_DIM)
        S = o.face_size
        self.register_buffer("reference_faces", torch.zeros(o.references, 3, S, S))
        self.register_buffer("emotion_faces", torch.zeros(1 + N_EMOTIONS, EMOTION_REFERENCES, 3, S, S))
        self.register_buffer("emotion_known", torch.zeros(N_EMOTIONS))  # 1: the takes show it
        self.build_field(2 * FEATURE_DIM)
        self.pretrain_report: dict[str, Any] = {}
        self._attention_sheet: np.ndarray | None = None

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
        device = self.reference_faces.device
        faces = face_set(source, o.face_size, o.action_units)
        with torch.enable_grad():
            generator, classifier, attention = train_attention(
                faces, o.attention_steps, lambda_cycle=o.lambda_cycle, lambda_gp=o.lambda_gp,
                lambda_mask=o.lambda_mask, progress=self.stage_progress("AU attention"), device=str(device))
            fusion, fused = train_fusion(faces, generator if o.disentangle else None, classifier, o.fusion_steps,
                                         progress=self.stage_progress("audio-face fusion"), device=str(device))
        self.generator.load_state_dict(generator.state_dict())
        self.classifier.load_state_dict(classifier.state_dict())
        self.fusion.load_state_dict(fusion.state_dict())
        self.to(device)
        crops = faces.crops.to(device)
        speech = self.speech_weights(crops)
        picks = torch.linspace(0, len(crops) - 1, o.references).round().long()
        self.reference_faces.copy_(speech[picks] * crops[picks])
        emotions = self._keep_emotion_references(crops, speech, faces.emotion.to(device))
        shown = torch.linspace(0, len(crops) - 1, 6).round().long()
        self._attention_sheet = attention_sheet(crops[shown], speech[shown])
        self.pretrain_report = {"attention": {"steps": o.attention_steps, **attention},
                                "fusion": {"steps": o.fusion_steps, **fused},
                                "classifier_training_frames": unit_error(self.classifier, crops,
                                                                         faces.units.to(device)),
                                "emotions": emotions}
        if self.log is not None:
            self.log(f"nerf_ad networks: {json.dumps(self.pretrain_report)}")

    def prepare_report(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The networks' final losses and the attention picture (``attention.png``)."""
        pictures = {} if self._attention_sheet is None else {"attention": self._attention_sheet}
        return self.pretrain_report, pictures

    @torch.no_grad()
    def _keep_emotion_references(self, crops: torch.Tensor, speech: torch.Tensor, labels: torch.Tensor
                                 ) -> dict[str, str]:
        """Identity faces of the neutral frames and of each emotion's (label >= 0.5), up to 8 each."""
        from core.expression.emotions import EMOTIONS

        identity = self.identity_faces(crops, speech)
        neutral = (labels.max(1).values <= 0).nonzero()[:, 0]
        if not len(neutral):
            neutral = torch.arange(len(crops), device=crops.device)
        groups = [neutral] + [(labels[:, e] >= 0.5).nonzero()[:, 0] for e in range(N_EMOTIONS)]
        known = torch.zeros(N_EMOTIONS)
        for slot, members in enumerate(groups):
            if not len(members):
                continue
            pick = members[torch.linspace(0, len(members) - 1, EMOTION_REFERENCES).round().long()]
            self.emotion_faces[slot].copy_(identity[pick])
            if slot:
                known[slot - 1] = 1.0
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

    def emotion_offsets(self) -> torch.Tensor:
        """(7, 64) per emotion: mean f_id of its references minus the neutral ones' (zero where none)."""
        S = self.options.face_size
        codes = self.identity_encoder(self.emotion_faces.reshape(-1, 3, S, S)).reshape(1 + N_EMOTIONS,
                                                                                      EMOTION_REFERENCES, -1).mean(1)
        return (codes[1:] - codes[:1]) * self.emotion_known[:, None]

    # -- conditions -----------------------------------------------------------------------------------------
    def conditions(self, batch: RendererBatch) -> torch.Tensor:
        if batch.audio is None:
            raise ValueError("NeRF-AD needs the audio window of every frame (RendererNeeds.audio)")
        crops = resize(batch.frames, self.options.face_size)
        with torch.no_grad():
            speech = self.speech_weights(crops)
        f_id = self.identity_encoder(self.identity_faces(crops, speech))
        if batch.driven and bool((batch.emotion > 0).any()):
            f_id = f_id + batch.emotion @ self.emotion_offsets()
        if self.training:
            reference = torch.randint(len(self.reference_faces), (batch.size,), device=crops.device)
        else:
            reference = torch.zeros(batch.size, dtype=torch.long, device=crops.device)
        with torch.no_grad():
            fused = self.fusion(self.reference_faces[reference], batch.audio)
        return torch.cat([f_id, self.fused_encoder(fused)], 1)

    @torch.no_grad()
    def fused_faces(self, batch: RendererBatch) -> torch.Tensor:
        """(B, 3, S, S) D's fused audio face for each frame's audio (from the first reference), for reports."""
        reference = self.reference_faces[:1].expand(batch.size, -1, -1, -1)
        return self.fusion(reference, batch.audio)


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
