"""The dynamic landmark transformer (§III-B): audio -> temporal filtering -> a VAE latent -> a transformer that
places the 68 landmarks of the frame (Eq. 6, ``P = DLT(A, V)``), with the frame's emotion as one more input (ours:
the paper has none) so keyframed emotion curves move the landmarks.

Audio. Each frame's window holds the audio of ``S`` neighbouring frames (``audio_slots``; the frame in the
middle): its ``k (S - 1 + w)`` audio frames (k per video frame) are cut into S overlapping sub-windows of
``k w`` audio frames, sub-window j centred on frame ``i + j - (S - 1) / 2`` (``w = audio_frames``, 4 = 160 ms).

1. :class:`SlotEncoder` (AD-NeRF's AudioNet): each sub-window -> a feature f_j (1D convolutions over time).
2. :class:`TemporalFilter` (AD-NeRF's AudioAttNet, the paper's "time filtering module" [7]): 1D convolutions
   over the S features -> softmax weights -> the smoothed feature ``A = sum_j w_j f_j`` (frame-to-frame
   consistency: neighbouring frames share most of their sub-windows and weights).
3. :class:`AudioVAE`: A -> (mu, log sigma^2) -> z; the decoder reconstructs the frame's own (standardised)
   sub-window from z, so the latent keeps what is audible rather than what a shortcut would keep.
4. :class:`DynamicLandmarkTransformer`: 68 learned landmark queries attend (transformer decoder) to memory tokens
   [z, emotion, eye state, f_1..f_S (with slot positions)]; each query's output is its landmark's offset from the
   actor's mean landmark, per coordinate in units of the training frames' spread.

Landmarks live in canonical head space (:func:`core.renderers.nerf.rays.canonical_landmarks`: 3D, the head
pose taken out), so the transformer predicts what speech and emotion do, and a frame's pose places them in the
picture (:func:`core.renderers.nerf.rays.from_canonical` + the clip camera) for a pixel error. The loss (Eq. 7)
is the L1 distance per landmark, averaged over landmarks and frames, in percent of the inter-ocular distance of
the actor's mean landmarks (the same number whatever the face model's units).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

N_LANDMARKS = 68


def audio_slots(window: torch.Tensor, slots: int, slot_frames: int) -> torch.Tensor:
    """(B, T, D) audio window -> (B, S, T_s, D): S overlapping sub-windows of ``T_s = T - (S - 1) k`` frames,
    one per neighbouring video frame, ``k = (T - T_s) / (S - 1)`` audio frames apart.

    Args:
        window: (B, T, D) the frame's audio window, centred on the frame.
        slots: S (odd, so the frame itself is the middle slot).
        slot_frames: T_s audio frames per sub-window.
    """
    B, T, D = window.shape
    if slots == 1:
        return window[:, None, (T - slot_frames) // 2:(T - slot_frames) // 2 + slot_frames]
    step = (T - slot_frames) // (slots - 1)
    if step < 1 or (slots - 1) * step + slot_frames != T:
        raise ValueError(f"an audio window of {T} frames does not split into {slots} sub-windows of {slot_frames}")
    return window.unfold(1, slot_frames, step).permute(0, 1, 3, 2)  # (B, S, T_s, D)


class SlotEncoder(nn.Module):
    """AD-NeRF's AudioNet: (N, T_s, D) audio frames -> (N, width) (strided 1D convolutions, mean over time)."""

    def __init__(self, in_dim: int, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_dim, width, 3, stride=2, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(width, width, 3, stride=1, padding=1), nn.LeakyReLU(0.02))
        self.out = nn.Linear(width, width)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(frames.transpose(1, 2)).mean(-1))


class TemporalFilter(nn.Module):
    """AD-NeRF's AudioAttNet: (B, S, W) slot features -> (B, W) their weighted sum and (B, S) the weights."""

    def __init__(self, width: int, slots: int) -> None:
        super().__init__()
        channels = (width, 16, 8, 4, 2, 1)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(channels):
            layers += [nn.Conv1d(a, b, 3, padding=1), nn.LeakyReLU(0.02)]
        self.convs = nn.Sequential(*layers[:-1])  # no activation after the last: the scores are logits
        self.mix = nn.Linear(slots, slots)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.mix(self.convs(features.transpose(1, 2))[:, 0])  # (B, S)
        weights = torch.softmax(scores, -1)
        return (weights[..., None] * features).sum(1), weights


class AudioVAE(nn.Module):
    """A (B, W) -> latent (mu, logvar) (B, Z) each; decoder z -> (B, out_dim) reconstruction.

    Args:
        width: W.
        latent: Z.
        out_dim: size of what the decoder reconstructs (the frame's flattened, standardised sub-window).
    """

    def __init__(self, width: int, latent: int, out_dim: int) -> None:
        super().__init__()
        self.encode = nn.Linear(width, 2 * latent)
        self.decode = nn.Sequential(nn.Linear(latent, width), nn.LeakyReLU(0.02), nn.Linear(width, out_dim))

    def forward(self, features: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, mu, logvar): z is a reparameterised sample while training (``sample``), the mean otherwise."""
        mu, logvar = self.encode(features).chunk(2, -1)
        logvar = logvar.clamp(-10.0, 10.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        return z, mu, logvar

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Mean KL divergence to N(0, I) per latent dimension."""
        return -0.5 * (1.0 + logvar - mu ** 2 - logvar.exp()).mean()


class DynamicLandmarkTransformer(nn.Module):
    """Audio window, emotion and eye state -> the 68 landmarks' standardised offsets (module docstring).

    Args:
        audio_dim: D, features per audio frame.
        slots: S sub-windows (odd).
        slot_frames: audio frames per sub-window.
        width: model width (slot features, tokens).
        layers, heads: of the transformer decoder.
        latent: VAE latent size.
        emotions: size of the emotion vector (7).
        eye_dim: size of the eye-state vector (2: each eye's openness).
    """

    def __init__(self, audio_dim: int, slots: int, slot_frames: int, width: int = 64, layers: int = 2,
                 heads: int = 4, latent: int = 16, emotions: int = 7, eye_dim: int = 2) -> None:
        super().__init__()
        if slots < 1 or slots % 2 == 0:
            raise ValueError(f"audio_slots must be odd (the frame in the middle), got {slots}")
        self.slots, self.slot_frames, self.audio_dim = slots, slot_frames, audio_dim
        self.slot_encoder = SlotEncoder(audio_dim, width)
        self.filter = TemporalFilter(width, slots)
        self.vae = AudioVAE(width, latent, slot_frames * audio_dim)
        self.latent_token = nn.Linear(latent, width)
        self.emotion_token = nn.Linear(emotions, width)
        self.eye_token = nn.Linear(eye_dim, width)
        self.slot_token = nn.Linear(width, width)
        self.slot_position = nn.Parameter(torch.randn(slots, width) * 0.02)
        self.queries = nn.Parameter(torch.randn(N_LANDMARKS, width) * 0.02)
        layer = nn.TransformerDecoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.head = nn.Linear(width, 3)
        nn.init.zeros_(self.head.weight)  # starts at the mean landmarks
        nn.init.zeros_(self.head.bias)

    def audio_features(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) standardised window -> A (B, W) the smoothed feature, (B, S, W) the slot features and
        (B, T_s D) the frame's own flattened sub-window (what the VAE reconstructs)."""
        B = audio.shape[0]
        slots = audio_slots(audio, self.slots, self.slot_frames)                 # (B, S, T_s, D)
        features = self.slot_encoder(slots.reshape(B * self.slots, self.slot_frames, -1)).view(B, self.slots, -1)
        smoothed, _ = self.filter(features)
        return smoothed, features, slots[:, self.slots // 2].reshape(B, -1)

    def forward(self, audio: torch.Tensor, emotion: torch.Tensor, eyes: torch.Tensor, sample: bool = False
                ) -> dict[str, torch.Tensor]:
        """Landmark offsets and what the losses need.

        Args:
            audio: (B, T, D) standardised audio window.
            emotion: (B, 7) intensities.
            eyes: (B, 2) eye openness.
            sample: draw the VAE latent (training) instead of taking its mean.

        Returns:
            ``offsets`` (B, 68, 3) standardised landmark offsets, ``smoothed`` (B, W) A, ``mu``/``logvar``
            (B, Z), ``reconstruction`` and ``target_audio`` (B, T_s D).
        """
        smoothed, features, own = self.audio_features(audio)
        z, mu, logvar = self.vae(smoothed, sample)
        memory = torch.cat([self.latent_token(z)[:, None], self.emotion_token(emotion)[:, None],
                            self.eye_token(eyes)[:, None], self.slot_token(features) + self.slot_position], 1)
        queries = self.queries.expand(audio.shape[0], -1, -1)
        offsets = self.head(self.decoder(queries, memory))                       # (B, 68, 3)
        return {"offsets": offsets, "smoothed": smoothed, "mu": mu, "logvar": logvar,
                "reconstruction": self.vae.decode(z), "target_audio": own}


def landmark_l1(predicted: torch.Tensor, target: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """Eq. 7: the L1 distance ``||p_hat - p||_1`` per landmark, averaged over the M landmarks and the frames, in
    ``unit`` (a scalar length: percent of the inter-ocular distance). (B, 68, 3) each -> scalar."""
    return ((predicted - target).abs().sum(-1) / unit).mean()


def vae_loss(out: dict[str, torch.Tensor], beta: float = 1e-3) -> torch.Tensor:
    """Reconstruction MSE of the frame's sub-window plus ``beta`` KL."""
    return F.mse_loss(out["reconstruction"], out["target_audio"]) + beta * AudioVAE.kl(out["mu"], out["logvar"])
