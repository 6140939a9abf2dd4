"""The tri-plane hash NeRF with blink embedding and the dynamic landmark transformer, on the shared NeRF core.

**Field** (Eq. 4-5). ``f_x = H_XY(x, y) ⊕ H_YZ(y, z) ⊕ H_XZ(x, z)`` (:class:`~core.renderers.nerf.encodings.
TriPlaneHashEncoding`) at canonical head positions; the per-frame condition ``c = [landmark code, audio code,
eye condition]`` enters through ER-NeRF's region attention (:class:`~core.renderers.nerf.fields.
AttentionGatedField`: each channel of c is gated by a sigmoid of the position's features), then a one- or
two-layer density MLP and a colour MLP with the view direction.

**Conditions** (:meth:`TriPlaneNeRF.frame_conditions`), for frame i:

* landmarks: the 68 iBUG landmarks in canonical head space (:func:`~core.renderers.nerf.rays.
  canonical_landmarks`); the 56 outside the eyes, standardised per coordinate over the training frames (spread
  floored at 1% of the inter-ocular distance, so points that never move do not amplify noise) and clamped to 3
  spreads, go through a small MLP to the landmark code. The eyes' 12 are left out: the eye condition alone
  opens and closes the lids, so a dub's blinks come from one place.
  *Training frames*: the tracked face's landmarks (teacher forcing). *Other frames* (evaluation, dub):
  ``drive = "mesh"`` (default) -- the landmarks of the batch's parameters (evaluation: tracked, as every renderer
  is evaluated; dub: the a2e's expression and the emotion prior on the shot's pose, the same face the dub's
  head region and paste mask are made from); ``drive = "transformer"`` -- the dynamic landmark transformer's
  prediction from the frame's audio, emotion and eye state (the paper's inference). Both are trained; which
  gives the better dub is measured (``bench/triplane_landmarks.py``) before the default changes.
* audio: the transformer's smoothed audio feature A (Eq. 5's A), projected to ``field_audio_dim``; detached, so
  the photometric loss cannot make the audio path a per-frame code that memorises the training frames (the
  transformer's own losses train the audio encoder).
* eyes: each eye's openness (:mod:`.eyes`) through the mapping network. *Training frames*: the tracked eyes.
  *Other frames*: ``blinks = "shot"`` (default) -- the plate's own tracked eyes (``batch.plate_params``: a dub
  keeps the shot's blinks); ``blinks = "predicted"`` -- the eye predictor's openness from audio and emotion.

**The dynamic landmark transformer** (:mod:`.landmarks`) is trained jointly on every training step's frames: L1
on the tracked landmarks (Eq. 7, percent of the inter-ocular distance), the audio VAE's reconstruction and KL,
and the eye predictor's L1 on the tracked openness. **Emotion**: the transformer also reads the frame's emotion
vector (the clip's label). Emotions the actor was never filmed with are learned from the face model's emotion
prior (:mod:`core.expression.emotion_prior`): on ``emotion_augment`` of the steps a random such emotion at a
random intensity is added to the frame's expression (as the dub adds it) and to the transformer's emotion input,
and the target landmarks are those of the changed face; the image is not trained on these.

**Coarse-to-fine** (§III-D). Until ``fine_start`` of the training budget (iterations, or wall time with
``--minutes``): MSE on rays over the head (the coarse stage, Eq. 8). Then the fine stage: ``patches`` square
patches of ``patch_size`` rays centred in the mouth replace as many scattered rays, and the loss adds
``lambda_perceptual`` (0.001) times a perceptual distance between the rendered and real patches (Eq. 9):
LPIPS (VGG) when its weights are present, otherwise 1 - SSIM plus an image-gradient L1 on the patch
(:class:`core.renderers.losses.PatchPerceptual`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from core.landmarks.mapping import IBUG68_EYES
from core.renderers.base import AudioNeed, RendererBatch, RendererNeeds, RendererSetup, RenderOutput, TrainStep
from core.renderers.nerf.encodings import TriPlaneHashEncoding
from core.renderers.nerf.fields import AttentionGatedField
from core.renderers.nerf.head import HeadNeRF
from core.renderers.nerf.rays import canonical_landmarks
from core.renderers.registry import register_renderer

from .config import TriPlaneConfig
from .eyes import (
    EyeMapping,
    EyePredictor,
    eye_balanced_weights,
    eye_openness,
    open_eye_ratio,
    source_canonical_landmarks,
    source_eye_openness,
)
from .landmarks import N_LANDMARKS, DynamicLandmarkTransformer, landmark_l1, vae_loss

CLAMP = 3.0  # standardised landmark inputs are clamped to +-3 spreads of the training frames
EYE_POINTS = [i for eye in IBUG68_EYES for i in eye]
FACE_POINTS = [i for i in range(N_LANDMARKS) if i not in EYE_POINTS]  # what the landmark code is made of
OUTER_EYE_CORNERS = (36, 45)
CHOICES = {"drive": ("mesh", "transformer"), "blinks": ("shot", "predicted"),
           "perceptual": ("auto", "lpips", "ssim"), "audio_feature": ("mfcc", "mel", "wav2vec2")}


def check_options(o: TriPlaneConfig) -> None:
    """Refuse option values the renderer cannot run with (a clear message instead of a crash later)."""
    from core.renderers.spec import BadRendererOption

    for name, allowed in CHOICES.items():
        if getattr(o, name) not in allowed:
            raise BadRendererOption(f"{name} must be one of {', '.join(allowed)}, got {getattr(o, name)!r}")
    if o.audio_slots < 1 or o.audio_slots % 2 == 0:
        raise BadRendererOption(f"audio_slots must be odd (the frame in the middle), got {o.audio_slots}")
    if o.audio_frames < 1 or o.hash_levels < 1 or o.depth < 1 or o.colour_depth < 1 or o.landmark_dim < 1:
        raise BadRendererOption("audio_frames, hash_levels, depth, colour_depth and landmark_dim must be >= 1")
    if o.dlt_width % o.dlt_heads:
        raise BadRendererOption(f"dlt_width ({o.dlt_width}) must be a multiple of dlt_heads ({o.dlt_heads})")
    if not all(0.0 <= value <= 1.0 for value in (o.fine_start, o.emotion_augment, o.eye_balanced_share)):
        raise BadRendererOption("fine_start, emotion_augment and eye_balanced_share are fractions in [0, 1]")
    if o.patch_size < 2 or o.patches < 0:
        raise BadRendererOption("patch_size must be >= 2 and patches >= 0")
    if o.audio_feature == "wav2vec2" and not o.phoneme_model:
        raise BadRendererOption("audio_feature=wav2vec2 needs phoneme_model (a local Wav2Vec2-CTC checkpoint folder)")


@register_renderer("triplane")
class TriPlaneNeRF(HeadNeRF):
    """Tri-plane hash field, landmark/audio/eye conditions, the landmark transformer and the eye module."""

    options: TriPlaneConfig

    def __init__(self, options: TriPlaneConfig, setup: RendererSetup) -> None:
        from core.renderers.data import audio_shape

        super().__init__(options, setup)
        o = options
        check_options(o)
        need = self.needs_for(o).audio
        assert need is not None
        window, audio_dim = audio_shape(need)
        k = window // (o.audio_slots - 1 + o.audio_frames)  # audio frames per video frame
        self.encoding = TriPlaneHashEncoding(o.hash_levels, o.hash_features, o.hash_log2_table, o.hash_base,
                                             o.hash_finest)
        condition_dim = o.landmark_dim + o.field_audio_dim + o.eye_dim
        self.field_mlp = AttentionGatedField(self.encoding.out_dim, condition_dim, self.direction_encoding.out_dim,
                                             o.width, o.depth, o.geo_dim, o.colour_width, o.colour_depth)
        self.landmark_encoder = nn.Sequential(nn.Linear(3 * len(FACE_POINTS), 64), nn.ReLU(),
                                              nn.Linear(64, o.landmark_dim))
        self.audio_code = nn.Linear(o.dlt_width, o.field_audio_dim) if o.field_audio_dim else None
        self.eye_mapping = EyeMapping(o.eye_dim)
        self.transformer = DynamicLandmarkTransformer(audio_dim, o.audio_slots, k * o.audio_frames, o.dlt_width,
                                                      o.dlt_layers, o.dlt_heads, o.vae_dim)
        self.eye_predictor = EyePredictor(o.dlt_width)
        # Statistics of the training frames (prepare), saved with the weights: they define the inputs' units.
        self.register_buffer("audio_mean", torch.zeros(audio_dim))
        self.register_buffer("audio_scale", torch.ones(audio_dim))
        self.register_buffer("landmark_mean", torch.zeros(N_LANDMARKS, 3))
        self.register_buffer("landmark_spread", torch.ones(N_LANDMARKS, 3))
        self.register_buffer("landmark_unit", torch.tensor(1.0))  # 1% of the mean face's inter-ocular distance
        self.register_buffer("eye_open", torch.full((2,), 0.3))  # open-eye aspect ratio per eye (EAR ~ 0.3)
        self.register_buffer("emotion_coverage", torch.zeros(7))
        self.register_buffer("prior_expression", torch.zeros(7, setup.n_expression))
        self.register_buffer("prior_jaw", torch.zeros(7))
        self.fine = False  # the coarse-to-fine stage of the current training step (before_step)

    @classmethod
    def needs_for(cls, options: TriPlaneConfig) -> RendererNeeds:
        o = options
        # the window covers the audio_slots neighbouring frames' sub-windows of audio_frames frames each
        window = o.audio_slots - 1 + o.audio_frames
        return RendererNeeds(audio=AudioNeed(o.audio_feature, {"window_video_frames": window}, o.phoneme_model))

    # -- statistics of the training frames ---------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, source: Any) -> None:
        """Occupancy (the core), then the units of the conditions: audio mean and spread, the mean landmarks
        and their spread, the open-eye ratio, which emotions the footage covers, and the face model's prior."""
        from core.expression.emotion_prior import EmotionPrior

        super().prepare(source)
        device = self.landmark_mean.device
        n = len(source)
        picks = torch.linspace(0, n - 1, min(n, 2000)).round().long().unique().tolist()
        landmarks = source_canonical_landmarks(source, picks, chunk=64).to(device)                  # (N, 68, 3)
        mean = landmarks.mean(0)
        unit = (mean[OUTER_EYE_CORNERS[1]] - mean[OUTER_EYE_CORNERS[0]]).norm() / 100.0
        spread = landmarks.std(0) if len(landmarks) > 1 else torch.zeros_like(mean)
        self.landmark_mean.copy_(mean)
        self.landmark_unit.copy_(unit.clamp_min(1e-9))
        self.landmark_spread.copy_(spread.clamp_min(float(unit)))
        self.eye_open.copy_(open_eye_ratio(landmarks))
        audio = source.audio_windows(picks)
        if audio is not None:
            flat = torch.from_numpy(audio.reshape(-1, audio.shape[-1])).to(device)
            self.audio_mean.copy_(flat.mean(0))
            self.audio_scale.copy_(1.0 / flat.std(0).clamp_min(1e-3))
        self.emotion_coverage.copy_(torch.from_numpy(source.emotions(range(n)).max(0)).to(device))
        prior = EmotionPrior.for_expressions(source.face_model("cpu").expr_names)
        if prior is not None:
            columns = min(prior.expression.shape[1], self.prior_expression.shape[1])
            self.prior_expression.zero_()
            self.prior_expression[:, :columns] = torch.from_numpy(prior.expression[:, :columns]).to(device)
            self.prior_jaw.copy_(torch.from_numpy(prior.jaw).to(device))

    @torch.no_grad()
    def frame_weights(self, source: Any) -> np.ndarray | None:
        """Draw ``eye_balanced_share`` of the frames evenly over eye openness (:mod:`.eyes`)."""
        if not self.options.eye_balanced_share:
            return None
        return eye_balanced_weights(source_eye_openness(source, self.eye_open), self.options.eye_balanced_share)

    # -- conditions ---------------------------------------------------------------------------------------
    def standardised_audio(self, batch: RendererBatch) -> torch.Tensor:
        """(B, T, D) the batch's audio windows in units of the training frames' spread."""
        if batch.audio is None:
            raise ValueError("the triplane renderer needs the audio window of every frame (RendererNeeds.audio)")
        return (batch.audio - self.audio_mean) * self.audio_scale

    def landmark_code_input(self, landmarks: torch.Tensor) -> torch.Tensor:
        """(B, 68, 3) canonical landmarks -> (B, 168) standardised, clamped coordinates of the 56 outside the eyes."""
        z = (landmarks - self.landmark_mean) / self.landmark_spread
        return z[:, FACE_POINTS].clamp(-CLAMP, CLAMP).flatten(1)

    def transformer_landmarks(self, offsets: torch.Tensor) -> torch.Tensor:
        """(B, 68, 3) the transformer's standardised offsets -> canonical landmarks."""
        return self.landmark_mean + offsets * self.landmark_spread

    @torch.no_grad()
    def predict_landmarks(self, batch: RendererBatch, eyes: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 68, 3) canonical landmarks the transformer predicts from the batch's audio and emotion (eye state:
        ``eyes`` (B, 2), else the plate's tracked eyes). Place them in the picture with the frame's head pose
        (:func:`~core.renderers.nerf.rays.from_canonical`) and camera."""
        if eyes is None:
            eyes = eye_openness(canonical_landmarks(batch.face_model, batch.plate_params), self.eye_open)
        out = self.transformer(self.standardised_audio(batch), batch.emotion, eyes)
        return self.transformer_landmarks(out["offsets"])

    def _emotion_augmented(self, batch: RendererBatch, tracked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(target landmarks, transformer emotion input) of a training batch: on ``emotion_augment`` of the frames
        an emotion the footage never showed, at a random intensity, added through the face model's prior."""
        from core.expression.emotion_prior import EmotionPrior, apply_prior

        has_prior = (self.prior_expression.abs().sum(1) > 0) | (self.prior_jaw != 0)
        uncovered = ((self.emotion_coverage <= 0) & has_prior).nonzero()[:, 0]
        if not self.options.emotion_augment or not len(uncovered):
            return tracked, batch.emotion
        B = batch.size
        chosen = torch.rand(B) < self.options.emotion_augment
        if not chosen.any():
            return tracked, batch.emotion
        which = uncovered.cpu()[torch.randint(len(uncovered), (B,))]
        to_prior = torch.zeros(B, 7)
        to_prior[torch.arange(B), which] = torch.rand(B) * chosen
        prior = EmotionPrior(self.prior_expression.cpu().numpy(), self.prior_jaw.cpu().numpy())
        params = batch.params
        expression, jaw = apply_prior(params.expression.detach().cpu().numpy(), params.jaw_pose.detach().cpu().numpy(),
                                      to_prior.numpy(), prior)
        changed = dataclasses.replace(params, expression=torch.from_numpy(expression).to(params.expression),
                                      jaw_pose=torch.from_numpy(jaw).to(params.jaw_pose))
        with torch.no_grad():
            targets = canonical_landmarks(batch.face_model, changed)
        keep = ~chosen.to(tracked.device)
        targets = torch.where(keep[:, None, None], tracked, targets)
        return targets, batch.emotion + to_prior.to(batch.emotion)

    def frame_conditions(self, batch: RendererBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        """(B, C) conditions (module docstring) and extras: ``landmarks`` (B, 68, 3) and ``eye_openness`` (B, 2)
        that drove the field; in training also the transformer's and the eye predictor's outputs and targets."""
        o = self.options
        with torch.no_grad():
            tracked = canonical_landmarks(batch.face_model, batch.params)
            plate = tracked if batch.plate_params is batch.params else canonical_landmarks(batch.face_model,
                                                                                          batch.plate_params)
            shot_eyes = eye_openness(plate, self.eye_open)
        audio = self.standardised_audio(batch)
        trained_on = (batch.frame_ids >= 0)[:, None]
        extras: dict[str, Any] = {}
        with self.network_autocast():
            if self.training:
                targets, emotion = self._emotion_augmented(batch, tracked)
                dlt = self.transformer(audio, emotion, shot_eyes, sample=True)
                smoothed = dlt["smoothed"]
                extras.update({"dlt": dlt, "landmark_target": targets, "landmark_emotion": emotion,
                               "eye_target": shot_eyes,
                               "eye_predicted": self.eye_predictor(smoothed.detach(), batch.emotion)})
                landmarks, eyes = tracked, shot_eyes
            else:
                smoothed = self.transformer.audio_features(audio)[0]
                eyes = shot_eyes
                if o.blinks == "predicted":
                    eyes = torch.where(trained_on, shot_eyes, self.eye_predictor(smoothed, batch.emotion).float())
                landmarks = tracked
                if o.drive == "transformer":
                    predicted = self.transformer_landmarks(self.transformer(audio, batch.emotion, eyes)["offsets"])
                    landmarks = torch.where(trained_on[:, :, None], tracked, predicted.float())
            parts = [self.landmark_encoder(self.landmark_code_input(landmarks))]
            if self.audio_code is not None:
                parts.append(self.audio_code(smoothed.detach()))
            parts.append(self.eye_mapping(eyes))
            conditions = torch.cat(parts, 1).float()
        extras.update({"landmarks": landmarks, "eye_openness": eyes})
        return conditions, extras

    def conditions(self, batch: RendererBatch) -> torch.Tensor:
        return self.frame_conditions(batch)[0]

    def field(self, points: torch.Tensor, condition: torch.Tensor, directions: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.field_mlp(self.encoding(points), condition, directions)

    # -- coarse to fine ---------------------------------------------------------------------------------------
    def before_step(self, step: TrainStep) -> None:
        self.fine = self.options.fine_start < 1.0 and step.fraction >= self.options.fine_start

    def ray_patches(self) -> tuple[int, int]:
        if not (self.training and self.fine and self.options.patches):
            return 0, 0
        return self.options.patches, min(self.options.patch_size, self.options.render_size)

    def criteria(self) -> nn.ModuleDict:
        from core.renderers.losses import PatchPerceptual

        o = self.options
        if o.fine_start >= 1.0 or not o.patches or not o.lambda_perceptual:
            return nn.ModuleDict()
        return nn.ModuleDict({"perceptual": PatchPerceptual(o.perceptual)})

    # -- losses -------------------------------------------------------------------------------------------
    def losses(self, batch: RendererBatch, output: RenderOutput, criteria: nn.ModuleDict,
               step: TrainStep) -> dict[str, torch.Tensor]:
        terms = super().losses(batch, output, criteria, step)
        count, side = output.extras["patches"]
        if count and "perceptual" in criteria:
            n = count * side * side
            pred = output.extras["rgb"][:n].reshape(count, side, side, 3).permute(0, 3, 1, 2)
            real = output.extras["target"][:n].reshape(count, side, side, 3).permute(0, 3, 1, 2)
            terms["perceptual"] = self.options.lambda_perceptual * criteria["perceptual"](pred, real)
        return terms

    def extra_losses(self, batch: RendererBatch, output: RenderOutput, step: TrainStep) -> dict[str, torch.Tensor]:
        e, o = output.extras, self.options
        dlt = e["dlt"]
        predicted = self.transformer_landmarks(dlt["offsets"].float())
        return {"landmark": o.lambda_landmark * landmark_l1(predicted, e["landmark_target"], self.landmark_unit),
                "vae": o.lambda_vae * vae_loss({k: v.float() for k, v in dlt.items()}),
                "eye": o.lambda_eye * (e["eye_predicted"].float() - e["eye_target"]).abs().mean()}

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        grid = list(self.encoding.parameters())
        grid_ids = {id(p) for p in grid}
        rest = [p for p in self.parameters() if id(p) not in grid_ids and p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": grid, "lr": lr * self.options.grid_lr_scale}]
