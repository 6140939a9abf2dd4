"""JEAN's three encoders (§3.1, §3.2) and the contrastive loss.

* :class:`LandmarkAutoencoder` — 51 landmarks -> a 64-D eye-nose embedding and a 64-D mouth embedding ->
  landmarks. Trained with the mouth embeddings of two frames swapped (probability 0.8) and the targets
  swapped with them (Eq. 1), so the mouth embedding holds the mouth and nothing else.
* :class:`AudioEncoder` — a 1-D CNN over one frame's audio-feature window -> a 64-D embedding aligned with
  the mouth embedding by InfoNCE (Eq. 2, :func:`info_nce`).
* :class:`ExpressionTransformer` — windows of ``window`` frames of emotion features (mapped to 128-D by two
  linear layers) -> a transformer encoder (3 layers, 8 heads) whose 128-D output splits into speech-specific
  features e_l and expression features e_e (64-D each), and an autoregressive transformer decoder back to the
  features. Trained on DTW-aligned takes of one sentence in two emotions (Eq. 4): with probability 0.8 the two
  takes' e_l are exchanged (same sentence, so the speech part should not care) while each reconstruction keeps
  its own take's e_e and target. **Deviation**: e_e is the mean of the encoder's expression half over the
  window, one vector per window. An expression is slow (the paper calls it long-range); pooling keeps e_e from
  carrying the per-frame mouth motion our substitute features contain (the landmarks, the jaw), which is what
  made the paper's 3DMM-input variant (d) fail to disentangle.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .features import EYE_NOSE, MOUTH, N_POINTS

EMBED_DIM = 64


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class Standardiser(nn.Module):
    """x -> (x - mean) / std with statistics fitted once on training data (buffers: saved with the weights)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """x: (N, dim); a dimension that never moves gets scale 0 (it carries nothing)."""
        std = x.std(0) if len(x) > 1 else torch.zeros(x.shape[1])
        self.mean.copy_(x.mean(0))
        self.scale.copy_(torch.where(std > 1e-6, 1.0 / std.clamp_min(1e-6), torch.zeros_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.scale


class LandmarkAutoencoder(nn.Module):
    """LE / LD of §3.1 on (B, 51, 2) landmarks."""

    def __init__(self, dim: int = EMBED_DIM, hidden: int = 256) -> None:
        super().__init__()
        self.norm = Standardiser(N_POINTS * 2)
        self.encoder = mlp([N_POINTS * 2, hidden, hidden, 2 * dim])
        self.decoder = mlp([2 * dim, hidden, hidden, N_POINTS * 2])
        self.dim = dim

    def encode(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 51, 2) -> eye-nose (B, 64) and mouth (B, 64) embeddings."""
        z = self.encoder(self.norm(landmarks.flatten(1)))
        return z[:, :self.dim], z[:, self.dim:]

    def decode(self, eye_nose: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        """Embeddings -> (B, 102) standardised landmarks."""
        return self.decoder(torch.cat([eye_nose, mouth], 1))

    def swap_loss(self, a: torch.Tensor, b: torch.Tensor, swap_probability: float = 0.8) -> torch.Tensor:
        """Eq. 1 on frame pairs (a, b), each (B, 51, 2): mouths swapped with the given probability, targets with
        them; L1 on standardised coordinates."""
        fa, ma = self.encode(a)
        fb, mb = self.encode(b)
        swap = (torch.rand(len(a), 1, device=a.device) < swap_probability).to(a)
        ma2, mb2 = swap * mb + (1 - swap) * ma, swap * ma + (1 - swap) * mb
        ta, tb = self.norm(a.flatten(1)).view_as(a), self.norm(b.flatten(1)).view_as(b)
        mixed = swap[:, :, None].bool()
        target_a = torch.cat([ta[:, EYE_NOSE], torch.where(mixed, tb[:, MOUTH], ta[:, MOUTH])], 1).flatten(1)
        target_b = torch.cat([tb[:, EYE_NOSE], torch.where(mixed, ta[:, MOUTH], tb[:, MOUTH])], 1).flatten(1)
        return (F.l1_loss(self.decode(fa, ma2), target_a) + F.l1_loss(self.decode(fb, mb2), target_b))


class AudioEncoder(nn.Module):
    """AE of §3.1: (B, T, D) audio-feature windows -> (B, 64) embeddings (a 1-D CNN over time)."""

    def __init__(self, feature_dim: int, dim: int = EMBED_DIM, channels: int = 128) -> None:
        super().__init__()
        self.norm = Standardiser(feature_dim)
        self.conv = nn.Sequential(
            nn.Conv1d(feature_dim, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(channels, channels, 3, padding=1, stride=2), nn.LeakyReLU(0.2),
            nn.Conv1d(channels, channels, 3, padding=1, stride=2), nn.LeakyReLU(0.2))
        self.head = mlp([channels, channels, dim])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.norm(audio).transpose(1, 2)  # (B, D, T)
        return self.head(self.conv(x).mean(2))


def info_nce(queries: torch.Tensor, keys: torch.Tensor, valid_negative: torch.Tensor | None = None,
             temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE (Eq. 2) with the batch's other keys as negatives.

    Args:
        queries: (B, C) mouth embeddings; keys: (B, C) audio embeddings, key i the positive of query i.
        valid_negative: (B, B) bool, False where key j must not serve as a negative of query i (too close in
            time in the same clip: the same mouth shape); the diagonal is always the positive.
        temperature: tau of the cosine similarity d(x, y) = <x, y> / (tau |x| |y|).
    """
    logits = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature
    if valid_negative is not None:
        eye = torch.eye(len(queries), dtype=torch.bool, device=queries.device)
        logits = logits.masked_fill(~(valid_negative | eye), float("-inf"))
    target = torch.arange(len(queries), device=queries.device)
    return F.cross_entropy(logits, target)


class ExpressionTransformer(nn.Module):
    """EE / ED of §3.2 on (B, window, D) emotion-feature windows (module docstring)."""

    def __init__(self, feature_dim: int, window: int = 8, d_model: int = 128, heads: int = 8, layers: int = 3,
                 dim: int = EMBED_DIM) -> None:
        super().__init__()
        if d_model != 2 * dim:
            raise ValueError("d_model must be twice the embedding size (the output splits into e_l and e_e)")
        self.window = window
        self.dim = dim
        self.norm = Standardiser(feature_dim)
        self.project = mlp([feature_dim, d_model, d_model])
        self.position = nn.Parameter(torch.zeros(1, window, d_model))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True), layers)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True), layers)
        self.start = nn.Parameter(torch.zeros(1, 1, d_model))
        self.out = nn.Linear(d_model, feature_dim)

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, window, D) -> speech features e_l (B, window, 64) and expression features e_e (B, 64)."""
        h = self.encoder(self.project(self.norm(features)) + self.position)
        return h[..., :self.dim], h[..., self.dim:].mean(1)

    def decode(self, speech: torch.Tensor, expression: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Autoregressive reconstruction (teacher forcing on ``target``, (B, window, D) raw features) ->
        (B, window, D) standardised features."""
        memory = torch.cat([speech, expression[:, None].expand_as(speech)], 2)
        shifted = torch.cat([self.start.expand(len(target), -1, -1),
                             self.project(self.norm(target[:, :-1]))], 1) + self.position
        causal = nn.Transformer.generate_square_subsequent_mask(self.window, device=target.device)
        return self.out(self.decoder(shifted, memory, tgt_mask=causal))

    def swap_loss(self, a: torch.Tensor, b: torch.Tensor, swap_probability: float = 0.8) -> torch.Tensor:
        """Eq. 4 on DTW-aligned windows (a, b) of one sentence in two emotions, each (B, window, D)."""
        la, ea = self.encode(a)
        lb, eb = self.encode(b)
        swap = (torch.rand(len(a), 1, 1, device=a.device) < swap_probability).to(a)
        la2, lb2 = swap * lb + (1 - swap) * la, swap * la + (1 - swap) * lb
        return (F.l1_loss(self.decode(la2, ea, a), self.norm(a))
                + F.l1_loss(self.decode(lb2, eb, b), self.norm(b)))
