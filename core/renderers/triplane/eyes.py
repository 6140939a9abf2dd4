"""The eye and blink module (§III-C) on our tracking.

**Eye state.** The paper reads blinks from OpenFace's AU45 intensity, which needs OpenFace (not available
offline). We measure each eye's openness from the six landmarks of its lids in our tracked face instead: the eye
aspect ratio (:func:`core.landmarks.mapping.eye_aspect_ratio`) of the canonical 3D landmarks (the head pose taken
out), divided by the actor's open-eye ratio (the 95th percentile over the training frames), so 1 is the actor's
eye wide open and 0 closed. The same measure on MediaPipe's landmarks of a rendered frame checks the renders
(``bench/blink_corr.py``).

**Mapping network.** The paper maps the six landmarks of each eye through convolutional and fully connected
layers to "the current size of the eyes" and then to an eye condition. The openness above *is* the size of the
eye from those six landmarks (in closed form), so the mapping network here is the fully connected part:
:class:`EyeMapping` takes both eyes' openness to the eye condition the field is gated by.

**Eye movement prediction.** :class:`EyePredictor` predicts the openness from the frame's smoothed audio feature
and its emotion (the paper combines the audio segment's temporal features with per-frame features and predicts
the next frame's eye state). We predict the frame's own state, not the next one from the previous: renderers
render frames independently and in any chunking, and an autoregressive roll-out would make a frame depend on
where a chunk started. What it can learn is the eyes' average behaviour under speech and emotion (sad lids
droop, surprised eyes widen); spontaneous blinks are not predictable from audio, which is why a dub keeps the
shot's blinks by default (``blinks = "shot"``).

**Training on blinks.** A spontaneous blink closes the lids on a few percent of the frames (2% of the synthetic
corpus's) and a small part of the picture, so with uniform frames and rays the photometric loss barely sees the
eye condition change and the field learns the eyes of the usual frame whatever it says. Two things make it learn
the lids: ``eye_ray_fraction`` of each step's rays are drawn around the eyes (the NeRF core), and
``eye_balanced_share`` of the steps draw their frame evenly over the range of eye openness the footage shows
(:func:`eye_balanced_weights`, the renderer's ``frame_weights``): closed, half-closed, drooping, open and
widened eyes get equal training time. Bins, not a blink threshold: what "open" is differs between takes (sad
lids droop, surprised eyes widen), and a dub's eye signal may ask for any level in between.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from core.landmarks.mapping import eye_aspect_ratio

OPEN_PERCENTILE = 0.95  # the actor's "wide open" eye aspect ratio (a blink or a squint is below it)
EYE_BINS = 8  # bins of eye openness over which the balanced share of training frames is spread
MAX_OPENNESS = 1.5  # a predicted openness is in (0, 1.5): widened eyes exceed the actor's usual open eye


def eye_balanced_weights(openness: np.ndarray, share: float, bins: int = EYE_BINS) -> np.ndarray | None:
    """(N,) chances of drawing each frame: ``share`` of the draws spread evenly over ``bins`` equal bins of eye
    openness (the more closed eye of each frame; within a bin, frames equally likely), the rest uniform. None
    when ``share`` is 0 or every frame has the same openness.

    Args:
        openness: (N, 2) each frame's eye openness.
    """
    level = np.asarray(openness, dtype=np.float64).min(1)
    lo, hi = float(level.min()), float(level.max())
    if share <= 0 or hi - lo < 1e-6:
        return None
    which = np.minimum(((level - lo) / (hi - lo) * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    return (1.0 - share) / len(level) + share / (np.count_nonzero(counts) * counts[which])


def open_eye_ratio(landmarks: torch.Tensor) -> torch.Tensor:
    """(2,) the actor's open-eye aspect ratio per eye: the OPEN_PERCENTILE of (N, 68, 3) canonical landmarks' ratios."""
    return torch.quantile(eye_aspect_ratio(landmarks), OPEN_PERCENTILE, dim=0).clamp_min(1e-3)


@torch.no_grad()
def source_canonical_landmarks(source: Any, frames: list[int] | None = None, chunk: int = 256) -> torch.Tensor:
    """(N, 68, 3) canonical landmarks (CPU) of ``frames`` (default every frame) of a frame source, ``chunk`` at a
    time (the face model's vertices of every frame at once would not fit in memory on a long clip)."""
    from core.renderers.nerf.rays import canonical_landmarks

    model = source.face_model("cpu")
    frames = list(range(len(source))) if frames is None else frames
    return torch.cat([canonical_landmarks(model, source.params(frames[i:i + chunk]))
                      for i in range(0, len(frames), chunk)])


def source_eye_openness(source: Any, open_ratio: torch.Tensor | None = None) -> np.ndarray:
    """(N, 2) eye openness of every frame of ``source`` (a frame source: its face model and tracked parameters);
    ``open_ratio`` (2,) defaults to the frames' own :func:`open_eye_ratio`."""
    landmarks = source_canonical_landmarks(source)
    ratio = open_eye_ratio(landmarks) if open_ratio is None else open_ratio.cpu()
    return eye_openness(landmarks, ratio).numpy()


def eye_openness(landmarks: torch.Tensor, open_ratio: torch.Tensor) -> torch.Tensor:
    """(B, 68, 3) canonical landmarks -> (B, 2) openness of the right and left eye (1 = the actor's open eye).

    Args:
        open_ratio: (2,) the actor's open-eye aspect ratio per eye.
    """
    return eye_aspect_ratio(landmarks) / open_ratio.clamp_min(1e-6)


class EyeMapping(nn.Module):
    """The mapping network: (B, 2) openness -> (B, eye_dim) eye condition."""

    def __init__(self, eye_dim: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, eye_dim))

    def forward(self, openness: torch.Tensor) -> torch.Tensor:
        return self.net(openness)


class EyePredictor(nn.Module):
    """Eye movement prediction: smoothed audio feature (B, W) and emotion (B, 7) -> (B, 2) openness."""

    def __init__(self, audio_width: int, emotions: int = 7, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(audio_width + emotions, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        nn.init.zeros_(self.net[-1].weight)
        # starts at openness 1 (sigmoid(b) * MAX_OPENNESS = 1): the open eye, the usual state
        nn.init.constant_(self.net[-1].bias, float(torch.logit(torch.tensor(1.0 / MAX_OPENNESS))))

    def forward(self, audio: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(torch.cat([audio, emotion], -1))) * MAX_OPENNESS
