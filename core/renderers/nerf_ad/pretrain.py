"""Training of NeRF-AD's AU-attention module (§2.1) and audio-face fusion (§2.2) before its NeRF, and the
numbers that say where the attention lands.

Both train on a :class:`FaceSet`: face crops of (up to ``max_frames`` of) the training frames at ``face_size``,
their audio windows and their AU labels (0-5 intensities / 5).

**Attention** (Eqs. 1-3). A step draws real crops I with labels f_O and target codes f_t (the labels of other
frames: real speech-AU combinations); G gives A and I_W, I_G = A I + (1 - A) I_W. The critic W_D steps on
WGAN-GP (Eq. 3, gradient penalty at points between real and generated crops); the classifier C on
||C(I) - f_O||^2; the generator on lambda_code ||C(I_G) - f_t||^2 + lambda_cycle ||A_G I_G + (1 - A_G) I_GW -
I||_1 (Eq. 2) - W_D(I_G) + lambda_mask mean(1 - A) + lambda_tv TV(A). The mask terms are ours (GANimation's):
without them nothing stops the attention from giving the whole face to the warp. The code loss must dominate
(``lambda_code`` 100): at weight 1 the generator met the rest by painting almost nothing.

The target codes and C hold the mouth's AUs only (:data:`~core.expression.action_units.MOUTH_AUS`: the blink,
AU45, is not a speech movement, and asking the generator for it would pull the attention onto the eyes), and C
reads only a box around the mouth and jaw (:class:`~.networks.LowerFaceClassifier`): a C that reads the whole
crop takes the brows and eyes, which move with the mouth in emotional takes, as evidence for the mouth AUs, and
the generator then paints there. Measured on the synthetic actor (``bench/nerf_ad_attention.py``, 800 steps,
32 held-out frames; share of the speech weight on the lips, mouth interior and chin / on those plus the jaw
region / on the eyes): whole-crop C at code weight 1 (64 frames of a trained model), 7% / - / 0.3% (the mask
collapses to 2.6% of the crop); code weight 100, 5% / - / 1.4%; plus mask weight 2, 9% / - / 3.5% (bands over
the eyes and brows); the box C, 10% / 29% / 0.4%; with mask weight 5, 19% / 54% / 0.03% (mask weight 10:
14% / 41% / 0.2%); the README's 30-minute model (64 frames), 22% / 58% / 0.08%. The AUs on the actor's own
range (``au_scale`` "actor", 64 frames): 15% / 38% / 0.2% here, but on the long office clip, whose AUs barely move on
the absolute scale, 10% / 24% / 0.05% against 2% / 6% / 1.2% (mean speech weight 18.7% of a crop against 0.08%).
The mask-size term weighing speech weight outside the lower face's box 10 times (``mask_outside_weight`` 9, the
default since): synthetic 21% / 57% / 0.007%, office 16% / 44% / 0.13%; the sheets show one region over the lips,
chin and jaw reaching a little onto the neck and the cheeks beside the nose, and no blob on the hair.
Leaving the box's corners out as well (the ellipse inscribed in it) was no clear change: office 48% and synthetic
50% in the mouth and jaw, one run each.

**Which mask is used afterwards.** G_M needs a target code; at inference we ask for every mouth AU at half
intensity (:data:`MASK_CODE`): the region that would have to change to produce them, the speech region, whatever
the frame shows. The speech weight of a pixel is 1 - A.

**Fusion** (Eqs. 4-6). A step draws target frames t and reference frames r (another frame of the same clip): the
reference's audio face (1 - A_r) I_r through E_a, the target's audio window through the audio encoder, D to the
fused audio face; L1 against the target's audio face (1 - A_t) I_t (Eq. 6), and the AU loss (Eqs. 4-5: weighted
BCE + Dice, weights from each AU's occurrence) of C on the fused face pasted onto the target's identity face
A_t I_t (C reads the lower face's box of that composite).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.expression.action_units import AU_MAX, MOUTH_AUS, SPEECH_AUS

from .networks import (
    AttentionGenerator,
    FusionNet,
    ImageEncoder,
    LowerFaceClassifier,
    au_loss,
    box_mask,
    gradient_penalty,
    occurrence_weights,
    resize,
    total_variation,
)

Progress = Callable[[int, int], None] | None
MOUTH = [SPEECH_AUS.index(au) for au in MOUTH_AUS]  # columns of the labels the generator's codes hold
MASK_CODE = 0.5  # every speech AU at half intensity: the target code the inference mask is asked for


@dataclass
class FaceSet:
    """Training frames as NeRF-AD's image networks see them.

    Attributes:
        crops: (N, 3, S, S) float face crops in [0, 1].
        audio: (N, T, D) audio windows.
        units: (N, n_au) AU labels in [0, 1].
        clips: (N,) int64 clip number of each frame (references are drawn from the same clip).
        emotion: (N, 7) emotion labels.
        box: (top, bottom, left, right) fractions of the crop around the mouth and jaw: what C reads
            (:class:`~.networks.LowerFaceClassifier`, :func:`lower_face_box`).
    """

    crops: torch.Tensor
    audio: torch.Tensor
    units: torch.Tensor
    clips: torch.Tensor
    emotion: torch.Tensor
    box: tuple[float, float, float, float]
    unit_low: torch.Tensor
    unit_span: torch.Tensor

    def __len__(self) -> int:
        return len(self.crops)


def absolute_units(units: torch.Tensor, low: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """(..., 10) AU labels on a face set's scale (its ``unit_low`` / ``unit_span``) on OpenFace's 0-5 scale."""
    return (units * span.to(units) + low.to(units)) * AU_MAX


AU_SCALES: tuple[str, ...] = ("actor", "absolute")


def actor_scaled_units(units: torch.Tensor, low_q: float = 0.02, high_q: float = 0.98,
                       min_span: float = 0.02) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, K) AU labels in [0, 1] rescaled so each AU's range over these frames (``low_q`` to ``high_q``
    quantile) spans [0, 1]; returns them, the lows and the spans. An AU that moves less than ``min_span`` (0.1
    on the 0-5 scale) keeps that span: its noise is not blown up into a signal."""
    low = torch.quantile(units, low_q, dim=0)
    span = (torch.quantile(units, high_q, dim=0) - low).clamp_min(min_span)
    return ((units - low) / span).clamp(0, 1), low, span


def source_units(source: Any, indices: list[int], action_units: str) -> torch.Tensor:
    """(n, 10) AU labels in [0, 1] of a source's items: estimated from tracking, or imported OpenFace columns."""
    if action_units == "tracked":
        from core.expression.action_units import action_units as estimate

        return estimate(source.face_model("cpu"), source.params(indices)) / AU_MAX
    from core.expression.action_units import openface_columns
    from core.renderers.frame_features import feature_columns

    rows = []
    for i in indices:
        k, f, _ = source.locate(int(i))
        clip = source.clips[k]
        rows.append(np.asarray(clip.features[action_units][f]))
    columns = openface_columns(feature_columns(source.clips[0].clip.folder, action_units))
    return (torch.from_numpy(np.stack(rows)[:, columns]).float() / AU_MAX).clamp(0, 1)


@torch.no_grad()
def face_set(source: Any, size: int, action_units: str, au_scale: str = "actor", max_frames: int = 1200) -> FaceSet:
    """A :class:`FaceSet` of up to ``max_frames`` training frames spread over the source; AU labels on
    ``au_scale`` (:attr:`~.config.NeRFADConfig.au_scale`)."""
    n = len(source)
    picks = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int)).tolist()
    crops = source_crops(source, picks, size)
    clips = [source.locate(i)[0] for i in picks]
    audio = source.audio_windows(picks)
    units = source_units(source, picks, action_units)
    low, span = torch.zeros(units.shape[1]), torch.ones(units.shape[1])
    if au_scale == "actor":
        units, low, span = actor_scaled_units(units)
    return FaceSet(crops, torch.from_numpy(np.asarray(audio, np.float32)), units, torch.tensor(clips),
                   torch.from_numpy(source.emotions(picks)).float(), lower_face_box(source, picks), low, span)


@torch.no_grad()
def source_crops(source: Any, items: Sequence[int], size: int, chunk: int = 64) -> torch.Tensor:
    """(n, 3, size, size) float face crops in [0, 1] of a source's ``items``, read ``chunk`` at a time."""
    crops = [torch.zeros(0, 3, size, size)]
    for start in range(0, len(items), chunk):
        located = [source.locate(int(i)) for i in items[start:start + chunk]]
        raw = np.stack([source.crops_of(k)[f] for k, f, _ in located])
        crops.append(resize(torch.from_numpy(raw).permute(0, 3, 1, 2).float() / 255.0, size))
    return torch.cat(crops)


DTW_MAX_CELLS = 1_000_000  # frame pairs dynamic time warping aligns at most (~100 MB while its cost matrix is made)


def sentence_partners(source: Any) -> np.ndarray:
    """(N,) for each item of a source, the item showing the same moment of the same sentence in a neutral take:
    for the frames of an emotional take (label > 0) whose sentence (``ingest --sentence``) has a neutral take
    among the source's clips, else -1.

    The two takes are aligned by dynamic time warping of their audio features (the centre row of each frame's
    window, standardised over both takes): the same words at the emotion's own pace. Takes too long for that
    (more than :data:`DTW_MAX_CELLS` frame pairs: its cost matrix) are aligned in proportion to their lengths.
    With several neutral takes of a sentence the first is used.
    """
    from core.audio.align import dtw_path

    partners = np.full(len(source), -1, np.int64)
    neutral: dict[str, int] = {}
    for k, clip in enumerate(source.clips):
        if clip.sentence and clip.audio is not None and float(clip.emotion[clip.frames].max()) <= 0:
            neutral.setdefault(clip.sentence, k)
    for k, clip in enumerate(source.clips):
        other = neutral.get(clip.sentence or "")
        if other is None or other == k or clip.audio is None:
            continue
        mate = source.clips[other]
        a, b = clip.audio[clip.frames], mate.audio[mate.frames]  # (K, T, D) each
        a, b = a[:, a.shape[1] // 2], b[:, b.shape[1] // 2]
        if len(a) * len(b) <= DTW_MAX_CELLS:
            both = np.concatenate([a, b])
            mean, std = both.mean(0), both.std(0) + 1e-6
            i, j = dtw_path((a - mean) / std, (b - mean) / std)
            aligned = j[np.searchsorted(i, np.arange(len(a)))]  # i is sorted: each frame's first aligned partner
        else:
            aligned = np.round(np.arange(len(a)) * (len(b) - 1) / max(1, len(a) - 1)).astype(np.int64)
        emotional = clip.emotion[clip.frames].max(1) > 0
        mine = int(source.offsets[k]) + np.arange(len(clip))
        partners[mine[emotional]] = int(source.offsets[other]) + aligned[emotional]
    return partners


NOSE_TIP, CHIN, JAW_LEFT, JAW_RIGHT = 30, 8, 4, 12  # iBUG-68 indices


@torch.no_grad()
def lower_face_box(source: Any, picks: list[int]) -> tuple[float, float, float, float]:
    """(top, bottom, left, right) fractions of the crop that hold the mouth and jaw over items ``picks``: from the
    tracked nose tip's row to a quarter of the nose-chin height below the chin, between the jaw's sides at the
    mouth (landmarks 4 and 12); medians over the items."""
    from core.tracking.quality import projected_landmarks

    by_clip: dict[int, list[int]] = {}
    for i in picks:
        by_clip.setdefault(source.locate(i)[0], []).append(i)
    points = []
    for k, items in by_clip.items():
        camera = source.clips[k].clip.camera  # one camera per clip
        xy = projected_landmarks(source.face_model("cpu"), source.params(items), camera)
        points.append(xy / np.array([camera.image_size[1], camera.image_size[0]], np.float32))
    xy = np.median(np.concatenate(points), 0)
    top, chin = float(xy[NOSE_TIP, 1]), float(xy[CHIN, 1])
    bottom = min(1.0, chin + 0.25 * (chin - top))
    return top, bottom, float(xy[JAW_LEFT, 0]), float(xy[JAW_RIGHT, 0])


def mask_code(n: int, n_au: int, device: torch.device | str) -> torch.Tensor:
    return torch.full((n, n_au), MASK_CODE, device=device)


def train_attention(faces: FaceSet, steps: int, batch: int = 16, lr: float = 2e-4, lambda_code: float = 100.0,
                    lambda_cycle: float = 10.0, lambda_gp: float = 10.0, lambda_mask: float = 5.0,
                    lambda_tv: float = 1e-3, mask_outside_weight: float = 0.0, progress: Progress = None,
                    device: str = "cpu") -> tuple[AttentionGenerator, LowerFaceClassifier, dict[str, float]]:
    """The AU-attention module (module docstring): the generator (G_M + G_W) and the classifier C.
    ``mask_outside_weight``: the mask-size term weighs pixels outside the lower face's box 1 + this times."""
    generator = AttentionGenerator(len(MOUTH)).to(device)
    classifier = LowerFaceClassifier(len(MOUTH), faces.box).to(device)
    critic = ImageEncoder(1, norm=False).to(device)
    betas = (0.5, 0.999)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_c = torch.optim.Adam(classifier.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    crops, units = faces.crops.to(device), faces.units[:, MOUTH].to(device)
    size_weight = 1 + mask_outside_weight * (1 - box_mask(torch.tensor(faces.box, device=device), crops.shape[-1]))
    info: dict[str, float] = {}
    for step in range(steps):
        idx = torch.randint(len(crops), (batch,))
        real, f_o = crops[idx], units[idx]
        f_t = units[torch.randint(len(crops), (batch,))]
        A, warped = generator(real, f_t)
        fake = A * real + (1 - A) * warped
        # critic (Eq. 3) and classifier (Eq. 1's second term)
        d_loss = critic(fake.detach()).mean() - critic(real).mean() + lambda_gp * gradient_penalty(critic, real,
                                                                                                    fake.detach())
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        c_loss = ((torch.sigmoid(classifier(real)) - f_o) ** 2).sum(1).mean()
        opt_c.zero_grad()
        c_loss.backward()
        opt_c.step()
        # generator: code loss (Eq. 1's first term), cycle identity (Eq. 2), adversarial, mask size/smoothness
        A_back, warped_back = generator(fake, f_o)
        cycle = (A_back * fake + (1 - A_back) * warped_back - real).abs().mean()
        code = ((torch.sigmoid(classifier(fake)) - f_t) ** 2).sum(1).mean()
        g_loss = (lambda_code * code + lambda_cycle * cycle - critic(fake).mean()
                  + lambda_mask * ((1 - A) * size_weight).mean() + lambda_tv * total_variation(A))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        info = {name: float(value.detach()) for name, value in (("critic", d_loss), ("classifier", c_loss),
                                                                 ("code", code), ("cycle", cycle),
                                                                 ("speech_share", (1 - A).mean()))}
        if progress is not None:
            progress(step + 1, steps)
    return generator.eval(), classifier.eval(), info


def same_clip_references(clips: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """For each of ``idx``, a random frame of the same clip (any frame when the clip has one)."""
    out = torch.empty_like(idx)
    for i, k in enumerate(idx.tolist()):
        members = (clips == clips[k]).nonzero()[:, 0]
        out[i] = members[torch.randint(len(members), (1,))]
    return out


def train_fusion(faces: FaceSet, generator: AttentionGenerator | None, classifier: LowerFaceClassifier, steps: int,
                 batch: int = 16, lr: float = 5e-4, lambda_au: float = 0.1, box_weight: float = 9.0,
                 progress: Progress = None, device: str = "cpu") -> tuple[FusionNet, dict[str, float]]:
    """E_a, the audio encoder and D (module docstring); ``generator`` ``None``: no disentanglement (the whole crop
    is the audio face). The L1 term weighs the pixels of the lower face's box (``faces.box``) 1 + ``box_weight``
    times: the mouth is a few percent of a crop, and an unweighted L1 is met by a blurred mean mouth.
    ``lambda_au`` weighs the AU loss (the paper: 1); at 1, D painted a coloured band across the lips that C reads
    as the target AUs instead of a mouth."""
    fusion = FusionNet(faces.audio.shape[-1]).to(device)
    fusion.audio.fit(faces.audio.flatten(0, 1).to(device))
    optimiser = torch.optim.Adam(fusion.parameters(), lr=lr)
    crops, units, audio = faces.crops.to(device), faces.units.to(device), faces.audio.to(device)
    weights = occurrence_weights(units[:, MOUTH])
    speech = speech_weights(generator, crops)
    pixel_weight = 1 + box_weight * box_mask(torch.tensor(faces.box, device=device), crops.shape[-1])
    pixel_weight = pixel_weight / pixel_weight.mean()
    info: dict[str, float] = {}
    for step in range(steps):
        t = torch.randint(len(crops), (batch,))
        r = same_clip_references(faces.clips, t)
        reference_face, target_face = speech[r] * crops[r], speech[t] * crops[t]
        fused = fusion(reference_face, audio[t])
        rec = ((fused - target_face).abs() * pixel_weight).mean()
        composite = (1 - speech[t]) * crops[t] + fused if generator is not None else fused
        au = au_loss(torch.sigmoid(classifier(composite)), units[t][:, MOUTH], weights)
        loss = rec + lambda_au * au
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        info = {"reconstruction": float(rec.detach()), "au": float(au.detach())}
        if progress is not None:
            progress(step + 1, steps)
    return fusion.eval(), info


@torch.no_grad()
def speech_weights(generator: AttentionGenerator | None, crops: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """(N, 1, S, S) 1 - A of each crop under :data:`MASK_CODE` (ones without a generator: no disentanglement)."""
    if generator is None:
        return torch.ones(len(crops), 1, *crops.shape[-2:], device=crops.device)
    return torch.cat([1 - generator(part, mask_code(len(part), len(MOUTH), crops.device))[0]
                      for part in crops.split(chunk)])


def classifier_units(classifier: LowerFaceClassifier, crops: torch.Tensor, low: torch.Tensor,
                     span: torch.Tensor) -> torch.Tensor:
    """(N, len(MOUTH)) C's mouth-AU intensities of ``crops`` on OpenFace's 0-5 scale (C learned the scale that
    ``low`` / ``span``, (10,) each, describe)."""
    with torch.no_grad():
        return absolute_units(torch.sigmoid(classifier(crops)), low[MOUTH], span[MOUTH])


def unit_error(classifier: LowerFaceClassifier, crops: torch.Tensor, faces: FaceSet) -> dict[str, float]:
    """Mean absolute error of C's mouth-AU intensities against the face set's labels, per AU and overall, on
    OpenFace's 0-5 scale whatever scale the set is on."""
    predicted = classifier_units(classifier, crops, faces.unit_low, faces.unit_span)
    truth = absolute_units(faces.units.to(crops), faces.unit_low, faces.unit_span)[:, MOUTH]
    error = (predicted - truth).abs().mean(0)
    return {"mae": float(error.mean()), **{au: float(e) for au, e in zip(MOUTH_AUS, error.tolist(), strict=True)}}
