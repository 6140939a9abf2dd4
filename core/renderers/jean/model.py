"""JEAN (Chatziagapi et al. 2024) on the shared NeRF core.

F(e_in, d, x) -> (c, sigma) (Eq. 5) with e_in = [e_a, e_e]:

* e_a (64-D): the audio encoder's embedding of the frame's audio window (§3.1). ``contrastive``: trained in
  :meth:`JEAN.prepare`, before the NeRF, to match the mouth embedding of a landmark autoencoder (or loaded
  from ``audio_encoder_weights``), then frozen. ``joint`` (ablation): the same CNN learned with the NeRF.
* e_e (64-D): expression features. ``transformer``: the expression transformer's pooled expression half over
  the 8-frame window around the frame (§3.2), trained in :meth:`JEAN.prepare` on DTW-aligned takes of one
  sentence in different emotions, then frozen. ``mlp`` (ablation): the frame's emotion features through a thin
  MLP learned with the NeRF. The emotion features are the tracked-face substitute of :mod:`.features`, or, with
  ``emotion_network=NAME``, a pretrained emotion network's features that the user computed for every clip and
  imported (:mod:`core.renderers.frame_features`): the paper's input, for users who have such a network.

**Keyframed emotion.** A dub has no expression source video: when a batch is ``driven`` the features come from
the batch's emotion intensities. :meth:`JEAN.prepare` fits, over the training frames, a linear map from a
frame's emotion label (7 intensities) to its features: an intercept (the actor's neutral) plus one offset per
emotion, learned from the actor's own takes in that emotion. An emotion none of the takes shows gets its
offset from the face model's generic prior instead: the prior's expression is added to the training frames'
tracked faces, passed through the same feature extractor and encoder, and the mean change is the offset. (With
imported emotion-network features the prior cannot be passed through the user's network: such an emotion gets no
offset, and training logs which.) A
curve at intensity w then adds w times that emotion's offset (several emotions add up). The ``mlp`` ablation
blends the raw emotion features the same way and passes them through its MLP.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.renderers.base import AudioNeed, RendererBatch, RendererNeeds, RendererSetup
from core.renderers.nerf.mlp_field import MLPFieldNeRF
from core.renderers.registry import register_renderer

from .config import JEANConfig
from .features import emotion_dim, emotion_features
from .networks import EMBED_DIM, AudioEncoder, ExpressionTransformer, LandmarkAutoencoder, Standardiser, mlp
from .pretrain import series_of_source, train_audio_encoder, train_expression_transformer, train_landmark_autoencoder

N_EMOTIONS = 7
AUDIO_MODES = ("contrastive", "joint")
EXPRESSION_MODES = ("transformer", "mlp")


def load_audio_encoder(path: str | Path) -> tuple[LandmarkAutoencoder, AudioEncoder, dict[str, Any]]:
    """A multi-speaker landmark autoencoder + audio encoder saved by :func:`save_audio_encoder` (tensors only).

    Raises:
        ValueError: the file is not such an encoder (the message says what it expected).
    """
    from core.io.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("kind") != "jean-audio-encoder":
        raise ValueError(f"{path} is not a JEAN audio encoder (save one with bench/jean_retrieval.py --save)")
    landmark_ae = LandmarkAutoencoder()
    landmark_ae.load_state_dict(state["landmark_autoencoder"])
    audio = AudioEncoder(int(state["feature_dim"]))
    audio.load_state_dict(state["audio_encoder"])
    return landmark_ae.eval(), audio.eval(), json.loads(state.get("info", "{}"))


def save_audio_encoder(path: str | Path, landmark_ae: LandmarkAutoencoder, audio: AudioEncoder,
                       info: dict[str, Any]) -> Path:
    from core.io.checkpoint import save_checkpoint

    feature_dim = int(audio.conv[0].in_channels)
    return save_checkpoint({"kind": "jean-audio-encoder", "feature_dim": feature_dim,
                            "landmark_autoencoder": landmark_ae.state_dict(), "audio_encoder": audio.state_dict(),
                            "info": json.dumps(info)}, path)


@register_renderer("jean")
class JEAN(MLPFieldNeRF):
    """The encoders, the per-emotion feature map and the conditions of the shared :class:`MLPFieldNeRF`."""

    options: JEANConfig

    def __init__(self, options: JEANConfig, setup: RendererSetup) -> None:
        from core.renderers.data import audio_shape
        from core.renderers.spec import BadRendererOption

        super().__init__(options, setup)
        o = options
        if o.audio_encoder not in AUDIO_MODES:
            raise BadRendererOption(f"audio_encoder is one of {', '.join(AUDIO_MODES)}, got {o.audio_encoder!r}")
        if o.expression_features not in EXPRESSION_MODES:
            raise BadRendererOption(f"expression_features is one of {', '.join(EXPRESSION_MODES)}, "
                                    f"got {o.expression_features!r}")
        if o.expression_window < 2 or o.audio_window < 1:
            raise BadRendererOption("expression_window must be >= 2 and audio_window >= 1")
        _, audio_dim = audio_shape(self.needs_for(o).audio)  # type: ignore[arg-type]
        if o.emotion_network:
            n_features = int(setup.frame_features.get(o.emotion_network, 0))
            if n_features < 1:
                raise BadRendererOption(f"emotion_network={o.emotion_network!r}: no imported features of that name "
                                        "(import them for every clip: `emodub features import --name "
                                        f"{o.emotion_network}`)")
        else:
            n_features = emotion_dim(setup.n_expression)
        self.audio_encoder = AudioEncoder(audio_dim)
        self.landmark_autoencoder = LandmarkAutoencoder()  # kept for the training report and retrieval checks
        if o.expression_features == "transformer":
            self.expression_encoder: nn.Module = ExpressionTransformer(n_features, o.expression_window)
        else:
            self.expression_encoder = nn.Sequential(Standardiser(n_features), mlp([n_features, 128, EMBED_DIM]))
        # Driven batches: features = codes[0] + emotion @ codes[1:] (module docstring), in e_e space for the
        # transformer and in emotion-feature space for the MLP.
        code_dim = EMBED_DIM if o.expression_features == "transformer" else n_features
        self.register_buffer("emotion_codes", torch.zeros(1 + N_EMOTIONS, code_dim))
        self.register_buffer("code_source", torch.zeros(N_EMOTIONS))  # 1: the actor's takes, 2: the prior, 0: none
        self.build_field(2 * EMBED_DIM)
        self.pretrain_report: dict[str, Any] = {}

    @classmethod
    def needs_for(cls, options: JEANConfig | None) -> RendererNeeds:
        o = options or JEANConfig()
        # The transformer sees a window of frames around each: W - 1 neighbours (W/2 - 1 before, W/2 after).
        context = o.expression_window - 1 if o.expression_features == "transformer" else 0
        return RendererNeeds(audio=AudioNeed("mfcc", {"window_video_frames": o.audio_window}),
                             context_frames=context,
                             frame_features=(o.emotion_network,) if o.emotion_network else ())

    # -- encoders -----------------------------------------------------------------------------------------
    def frozen_modules(self) -> list[nn.Module]:
        """The encoders trained before the NeRF (kept out of its optimiser)."""
        parts: list[nn.Module] = [self.landmark_autoencoder]
        if self.options.audio_encoder == "contrastive":
            parts.append(self.audio_encoder)
        if self.options.expression_features == "transformer":
            parts.append(self.expression_encoder)
        return parts

    def prepare(self, source: Any) -> None:
        """Occupancy (the core), then the encoders (module docstring) and the per-emotion feature map."""
        super().prepare(source)
        o = self.options
        device = self.emotion_codes.device
        series = series_of_source(source, self.setup.n_expression, emotion_network=o.emotion_network)
        steps = o.pretrain_steps
        report: dict[str, Any] = {}
        progress = self.stage_progress
        if o.audio_encoder_weights:
            from core.renderers.spec import BadRendererOption

            try:
                landmark_ae, audio, info = load_audio_encoder(o.audio_encoder_weights)
            except (FileNotFoundError, ValueError) as exc:
                raise BadRendererOption(f"audio_encoder_weights: {exc}") from None
            if int(audio.conv[0].in_channels) != int(self.audio_encoder.conv[0].in_channels):
                raise BadRendererOption(f"audio_encoder_weights: {o.audio_encoder_weights} was trained on other "
                                        f"audio features ({audio.conv[0].in_channels}-D; this renderer uses "
                                        f"{self.audio_encoder.conv[0].in_channels}-D)")
            self.landmark_autoencoder.load_state_dict(landmark_ae.state_dict())
            self.audio_encoder.load_state_dict(audio.state_dict())
            report["audio_encoder"] = {"from": str(o.audio_encoder_weights), **info}
        elif o.audio_encoder == "contrastive":
            with torch.enable_grad():
                landmark_ae, loss = train_landmark_autoencoder(series, steps, swap_probability=o.swap_probability,
                                                               progress=progress("landmark autoencoder"),
                                                               device=str(device))
            self.landmark_autoencoder.load_state_dict(landmark_ae.state_dict())
            report["landmark_autoencoder"] = {"steps": steps, "loss": loss}
            with torch.enable_grad():
                audio, loss = train_audio_encoder(series, landmark_ae, steps, temperature=o.temperature,
                                                  progress=progress("audio encoder"), device=str(device))
            self.audio_encoder.load_state_dict(audio.state_dict())
            report["audio_encoder"] = {"steps": steps, "loss": loss}
        if o.audio_encoder == "joint":  # only its input units come from the data
            audio_frames = torch.cat([s.audio for s in series if s.audio is not None]).flatten(0, 1)
            self.audio_encoder.norm.fit(audio_frames.to(device))
        if o.expression_features == "transformer":
            with torch.enable_grad():
                transformer, info = train_expression_transformer(series, o.expression_steps, o.expression_window,
                                                                 swap_probability=o.swap_probability,
                                                                 progress=progress("expression transformer"),
                                                                 device=str(device))
            self.expression_encoder.load_state_dict(transformer.state_dict())
            report["expression_transformer"] = {"steps": o.expression_steps, **info}
        else:
            self.expression_encoder[0].fit(torch.cat([s.emotion for s in series]).to(device))
        self.to(device)
        report["emotion_codes"] = self._fit_emotion_codes(source, series)
        self.pretrain_report = report
        if self.log is not None:
            self.log(f"jean encoders: {json.dumps(report)}")

    def prepare_report(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.pretrain_report, {}

    @torch.no_grad()
    def _series_codes(self, emotion: torch.Tensor) -> torch.Tensor:
        """(N, F) one clip's emotion features in order -> (N, code_dim) what the emotion map is fitted on."""
        if self.options.expression_features == "mlp":
            return emotion
        index = torch.as_tensor(self.window_rows(np.arange(len(emotion)), len(emotion)))
        return self.expression_encoder.encode(emotion[index])[1]

    def window_rows(self, rows: np.ndarray, n: int) -> np.ndarray:
        """(B, W) frame indices of the expression window around each of ``rows`` (clamped to [0, n))."""
        from core.renderers.data import context_rows

        W = self.options.expression_window
        neighbours = context_rows(rows, W - 1, n)
        before = (W - 1) // 2
        return np.concatenate([neighbours[:, :before], rows[:, None], neighbours[:, before:]], 1)

    @torch.no_grad()
    def _fit_emotion_codes(self, source: Any, series: list) -> dict[str, Any]:
        """Least squares of the training frames' features on [1, emotion label] (module docstring); emotions no
        take shows from the face model's prior."""
        from core.expression.emotion_prior import EmotionPrior, apply_prior
        from core.expression.emotions import EMOTIONS

        device = self.emotion_codes.device
        codes = torch.cat([self._series_codes(s.emotion.to(device)) for s in series])
        labels = torch.from_numpy(np.concatenate([np.repeat(s.label[None], len(s), 0) for s in series])).float()
        covered = labels.max(0).values > 0
        design = torch.cat([torch.ones(len(labels), 1), labels[:, covered]], 1).to(device)
        # A little ridge keeps the fit defined when two emotions share their takes' frames.
        gram = design.T @ design + 1e-4 * torch.eye(design.shape[1], device=device)
        solution = torch.linalg.solve(gram, design.T @ codes)
        table = torch.zeros_like(self.emotion_codes)
        table[0] = solution[0]
        table[1 + covered.nonzero()[:, 0].to(device)] = solution[1:]
        source_kind = covered.float() * 1.0
        model = source.face_model("cpu")
        # The prior's faces cannot go through a user's emotion network (module docstring).
        prior = None if self.options.emotion_network else EmotionPrior.for_expressions(model.expr_names)
        if prior is not None and (~covered).any():
            # Neutral-labelled frames (all frames if none) with each missing emotion added at full intensity.
            neutral = [s for s in series if not s.label.any()] or list(series)
            for k in (~covered).nonzero()[:, 0].tolist():
                changes = []
                for s in neutral:
                    params = source_params(s, source)
                    to_prior = np.zeros((len(s), N_EMOTIONS), np.float32)
                    to_prior[:, k] = 1.0
                    expression, jaw = apply_prior(params.expression.numpy().copy(), params.jaw_pose.numpy(),
                                                  to_prior, prior)
                    moved = dataclasses.replace(params, expression=torch.from_numpy(expression),
                                                jaw_pose=torch.from_numpy(jaw))
                    after = emotion_features(model, moved, self.setup.n_expression)
                    changes.append(self._series_codes(after.to(device)) - self._series_codes(s.emotion.to(device)))
                table[1 + k] = torch.cat(changes).mean(0)
                source_kind[k] = 2.0
        self.emotion_codes.copy_(table)
        self.code_source.copy_(source_kind.to(device))
        names = {0.0: "none", 1.0: "takes", 2.0: "prior"}
        return {name: names[float(v)] for name, v in zip(EMOTIONS, source_kind.tolist(), strict=True)}

    # -- conditions -----------------------------------------------------------------------------------------
    def driven_features(self, emotion: torch.Tensor) -> torch.Tensor:
        """(B, 7) intensities -> (B, code_dim) blended per-emotion features."""
        return self.emotion_codes[0] + emotion @ self.emotion_codes[1:]

    def expression_features(self, batch: RendererBatch) -> torch.Tensor:
        """(B, 64) e_e of the batch's frames (module docstring)."""
        o = self.options
        if o.expression_features == "mlp":
            if batch.driven:
                features = self.driven_features(batch.emotion)
            elif o.emotion_network:
                features = self._imported(batch.features, "batch")
            else:
                with torch.no_grad():
                    features = emotion_features(batch.face_model, batch.params, self.setup.n_expression)
            return self.expression_encoder(features)
        if batch.driven:
            return self.driven_features(batch.emotion)
        context = batch.context
        if context is None:
            raise ValueError("JEAN's expression transformer needs each frame's neighbours (RendererNeeds.context)")
        with torch.no_grad():
            if o.emotion_network:
                features = self._imported(context.features, "context")
            else:
                features = emotion_features(batch.face_model, context.params, self.setup.n_expression)  # (M, F)
            before = (o.expression_window - 1) // 2
            rows = torch.cat([context.neighbours[:, :before], context.rows[:, None], context.neighbours[:, before:]], 1)
            return self.expression_encoder.encode(features[rows])[1]

    def _imported(self, features: dict[str, torch.Tensor], where: str) -> torch.Tensor:
        name = self.options.emotion_network
        if name not in features:
            raise ValueError(f"JEAN was trained on the imported features {name!r}; the {where} has none "
                             "(RendererNeeds.frame_features)")
        return features[name]

    def conditions(self, batch: RendererBatch) -> torch.Tensor:
        if batch.audio is None:
            raise ValueError("JEAN needs the audio window of every frame (RendererNeeds.audio)")
        if self.options.audio_encoder == "contrastive":
            # InfoNCE fixes only the embedding's direction (cosine): scaled to unit variance per component.
            with torch.no_grad():
                audio = torch.nn.functional.normalize(self.audio_encoder(batch.audio), dim=1) * EMBED_DIM ** 0.5
        else:
            audio = self.audio_encoder(batch.audio)
        return torch.cat([audio, self.expression_features(batch)], 1)


def source_params(series: Any, source: Any) -> Any:
    """The tracked parameters of a :class:`~.pretrain.Series`' frames (CPU)."""
    for clip in source.clips:
        if clip.name == series.name:
            return clip.clip.params[torch.as_tensor(series.frames)]
    raise KeyError(series.name)
