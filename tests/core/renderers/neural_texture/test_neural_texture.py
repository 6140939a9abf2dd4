from __future__ import annotations

import numpy as np
import pytest
import torch

from core.render.masks import expand_mask
from core.renderers.neural_texture.config import NeuralTextureConfig
from core.renderers.neural_texture.model import NeuralTextureRenderer, blend

SIZE = 32
TINY = NeuralTextureConfig(temporal_window=1, audio_dim=4, audio_window=8, audio_code=8, siren_hidden=32,
                           siren_layers=2, unet_base=8, unet_depth=2, mask_expand_px=2, normal_input=False)


class DiskFace:
    """A disk 'face' whose UVs are its normalised coordinates; its colour is a function of uv, and a
    'mouth' band brightens with the audio level, so audio conditioning has something to learn."""

    def __init__(self, n: int = 8) -> None:
        g = torch.linspace(0, 1, SIZE)
        yy, xx = torch.meshgrid(g, g, indexing="ij")
        self.alpha = (((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < 0.16).float()[None]
        self.uv = torch.stack([xx, yy]) * self.alpha
        self.levels = torch.linspace(0, 1, n)
        self.background = torch.stack([xx * 0.2, yy * 0.3, torch.full_like(xx, 0.4)])

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        level = self.levels[i]
        u, v = self.uv
        face = torch.stack([0.6 + 0.3 * u, 0.4 + 0.2 * v, 0.3 + 0 * u])
        mouth = ((v > 0.6) & (v < 0.7)).float() * level
        face = (face + mouth).clamp(0, 1)
        frame = self.alpha * face + (1 - self.alpha) * self.background
        return {"frame": frame, "uv": self.uv, "alpha": self.alpha, "uv_window": self.uv.clone(),
                "audio": torch.full((8, 4), float(level))}


def test_forward_shapes_and_blend_keeps_background() -> None:
    model = NeuralTextureRenderer(TINY)
    sample = DiskFace()[3]
    batch = {k: v[None] for k, v in sample.items()}
    out = model.render_uv(batch["uv"], batch["alpha"], batch["frame"], batch["uv_window"], batch["audio"])
    assert out["image"].shape == (1, 3, SIZE, SIZE)
    outside = out["alpha_expanded"] == 0
    assert torch.equal(out["image"][outside.expand(-1, 3, -1, -1)],
                       batch["frame"][outside.expand(-1, 3, -1, -1)])  # the plate is untouched
    assert (expand_mask(batch["alpha"], 2) >= batch["alpha"]).all()
    assert torch.allclose(blend(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2)),
                          torch.ones(1, 3, 2, 2))


def test_audio_changes_the_texture_and_static_variant_ignores_it() -> None:
    torch.manual_seed(0)
    model = NeuralTextureRenderer(TINY)
    with torch.no_grad():  # as after training (the audio weights start at zero)
        model.texture.body[0].linear.weight[:, 2:].uniform_(-0.1, 0.1)
    s = DiskFace()[0]
    uv, alpha = s["uv"][None], s["alpha"][None]
    t0 = model.neural_texture(uv, alpha, torch.zeros(1, 8, 4))
    t1 = model.neural_texture(uv, alpha, torch.ones(1, 8, 4))
    assert not torch.allclose(t0, t1)
    assert (t0[:, :, alpha[0, 0] == 0] == 0).all()  # features only on covered pixels
    static = NeuralTextureRenderer(NeuralTextureConfig(**{**TINY.__dict__, "audio_dim": 0}))
    assert static.audio_encoder is None
    with pytest.raises(ValueError, match="audio-conditioned"):
        model.neural_texture(uv, alpha, None)


def test_audio_enters_the_texture_from_zero() -> None:
    """At initialisation the audio-conditioned texture ignores the audio (its SIREN weights start at 0),
    so it starts as the static variant; one optimiser step on a loss that needs audio makes it listen."""
    torch.manual_seed(0)
    model = NeuralTextureRenderer(TINY)
    face = DiskFace()
    quiet, loud = face[0], face[len(face) - 1]
    uv, alpha = quiet["uv"][None], quiet["alpha"][None]
    with torch.no_grad():
        a = model.neural_texture(uv, alpha, quiet["audio"][None])
        b = model.neural_texture(uv, alpha, loud["audio"][None])
    assert torch.equal(a, b)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = (model.neural_texture(uv, alpha, loud["audio"][None]) - 1).abs().mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        a = model.neural_texture(uv, alpha, quiet["audio"][None])
        b = model.neural_texture(uv, alpha, loud["audio"][None])
    assert not torch.equal(a, b)


def test_normal_input_reaches_the_decoder_through_the_contract(tracked_workspace) -> None:
    """With ``normal_input`` the renderer rasterizes camera-space normals itself and the UNet reads them."""
    from core.renderers.data import actor_sources

    torch.manual_seed(0)
    options = NeuralTextureConfig(**{**TINY.__dict__, "normal_input": True, "audio_dim": 5})
    model = NeuralTextureRenderer(options).eval()
    assert model.decoder.stem[0].in_channels == TINY.unet_in_channels + 3
    ws = tracked_workspace(n_frames=6, size=64)
    source, _, _ = actor_sources(ws, "a", model.needs, holdout=0.0)
    batch = source.batch([1, 2])
    inputs = model.rasterize(batch)
    normals = inputs["normals"]
    assert normals is not None and normals.shape == (2, 3, 64, 64)
    assert inputs["uv_window"] is not None and inputs["uv_window"].shape == (2, 2, 64, 64)
    with torch.no_grad():
        out = model(batch)
        assert out.image is not None and out.image.shape == (2, 3, 64, 64)
        args = inputs | {"frame": batch.frames, "audio": batch.audio}
        flipped = model.render_uv(**(args | {"normals": -normals}))["decoded"]
        assert not torch.allclose(flipped, out.extras["decoded"], atol=1e-4)
    with pytest.raises(ValueError, match="normals"):
        model.render_uv(**(args | {"normals": None}))


def test_eye_balanced_share_draws_frames_evenly_over_eye_openness(tracked_workspace, monkeypatch) -> None:
    """Blinks are rare: with ``eye_balanced_share`` the trainer's frame weights favour the few closed-eye frames."""
    from core.renderers.data import actor_sources
    from core.renderers.triplane import eyes

    model = NeuralTextureRenderer(NeuralTextureConfig(**{**TINY.__dict__, "eye_balanced_share": 0.5}))
    ws = tracked_workspace(n_frames=6, size=32)
    source, _, _ = actor_sources(ws, "a", model.needs, holdout=0.0)
    openness = eyes.source_eye_openness(source)
    assert openness.shape == (6, 2) and np.isfinite(openness).all() and (openness > 0).all()

    # Nine open-eyed frames and one blink: half the draws go evenly to the two occupied bins of openness.
    level = np.r_[np.ones(9), 0.1][:, None].repeat(2, 1)
    monkeypatch.setattr(eyes, "source_eye_openness", lambda source: level)
    weights = model.frame_weights(source)
    chance = weights / weights.sum()
    assert chance[9] == pytest.approx(0.5 / 10 + 0.5 / 2) and chance[0] == pytest.approx(0.5 / 10 + 0.5 / 18)
    assert NeuralTextureRenderer(TINY).frame_weights(source) is None  # the default draws uniformly
    with pytest.raises(ValueError, match="eye_balanced_share"):
        NeuralTextureRenderer(NeuralTextureConfig(**{**TINY.__dict__, "eye_balanced_share": 1.5}))


def _bilinear_reference(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Slow reference: (C, S, S) texture at (P, 2) coordinates in [-1, 1] (x = u, y = v; texel centres at
    (i + 0.5) / S, edges clamped), interpolated by hand -> (P, C)."""
    C, S, _ = texture.shape
    x = ((uv[:, 0] + 1) * S - 1) / 2
    y = ((uv[:, 1] + 1) * S - 1) / 2
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0

    def texel(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return texture[:, yi.clamp(0, S - 1).long(), xi.clamp(0, S - 1).long()].T

    return (texel(y0, x0) * ((1 - fx) * (1 - fy))[:, None] + texel(y0, x0 + 1) * (fx * (1 - fy))[:, None]
            + texel(y0 + 1, x0) * ((1 - fx) * fy)[:, None] + texel(y0 + 1, x0 + 1) * (fx * fy)[:, None])


def test_texture_pyramid_matches_a_slow_bilinear_reference() -> None:
    from core.renderers.neural_texture.model import TexturePyramid

    torch.manual_seed(0)
    pyramid = TexturePyramid(channels=3, side=16, levels=3)
    assert [m.shape[-1] for m in pyramid.maps] == [16, 8, 4]
    with torch.no_grad():
        for m in pyramid.maps:
            m.normal_()
    uv = torch.rand(200, 2) * 1.8 - 0.9
    expected = sum(_bilinear_reference(m[0], uv) for m in pyramid.maps)
    assert torch.allclose(pyramid(uv), expected, atol=1e-5)


def test_texture_grid_starts_at_zero_learns_detail_and_trains_faster() -> None:
    """The texture grid adds nothing at initialisation (the renderer starts as the SIREN alone), gets its own
    learning rate, and a few steps on a pattern of random texels (detail without structure) fit it better than the
    SIREN alone."""
    torch.manual_seed(0)
    face = DiskFace()[0]
    uv, alpha = face["uv"][None], face["alpha"][None]
    options = NeuralTextureConfig(**{**TINY.__dict__, "audio_dim": 0, "texture_grid": 32, "texture_grid_levels": 2})
    with_grid = NeuralTextureRenderer(options)
    torch.manual_seed(0)
    plain = NeuralTextureRenderer(NeuralTextureConfig(**{**TINY.__dict__, "audio_dim": 0}))
    with torch.no_grad():
        assert torch.allclose(with_grid.neural_texture(uv, alpha, None), plain.neural_texture(uv, alpha, None))
    groups = with_grid.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [pytest.approx(1e-3), pytest.approx(1e-3 * options.texture_grid_lr_scale)]
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in with_grid.parameters())
    texels = torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    cell = (uv * (SIZE - 1)).round().long()                                                 # (1, 2, S, S)
    pattern = texels[cell[:, 1], cell[:, 0]][:, None] * alpha                              # (1, 1, S, S)

    def fit(model: NeuralTextureRenderer) -> float:
        opt = torch.optim.Adam(model.param_groups(1e-3))
        for _ in range(60):
            loss = (model.neural_texture(uv, alpha, None)[:, :1] - pattern).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss)

    assert fit(with_grid) < 0.5 * fit(plain)
