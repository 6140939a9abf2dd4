"""The variant list, options and presets, and the actor's trained renderers, known without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.renderers.catalog import best_renderer, trained_renderers
from core.renderers.spec import (
    BadRendererOption,
    UnknownRenderer,
    describe_variants,
    get_variant,
    preset_train_settings,
    resolve_options,
)


def test_variants_are_described_with_their_options_and_presets() -> None:
    described = {v["name"]: v for v in describe_variants()}
    assert {"neural_texture", "lipnerf", "triplane", "jean", "nerf_ad"} <= set(described)
    nt = described["neural_texture"]
    options = {o["name"]: o for o in nt["options"]}
    assert options["unet_base"]["type"] == "int" and options["unet_base"]["default"] == 16
    assert "UNet" in options["unet_base"]["help"]  # help comes from the config's docstring
    assert set(nt["presets"]) >= {"default", "static"} and nt["description"]
    assert all(o["help"] for v in described.values() for o in v["options"]), "every option is documented"


def test_presets_and_options_resolve_with_types_and_suggestions() -> None:
    assert resolve_options("neural_texture", "static")["audio_dim"] == 0
    assert resolve_options("neural_texture", None, {"unet_base": "32"})["unet_base"] == 32
    with pytest.raises(BadRendererOption, match="did you mean 'unet_base'"):
        resolve_options("neural_texture", None, {"unet_bass": 8})
    with pytest.raises(BadRendererOption, match="takes a int"):
        resolve_options("neural_texture", None, {"unet_base": "wide"})
    with pytest.raises(BadRendererOption, match="no preset"):
        resolve_options("neural_texture", "huge")
    with pytest.raises(UnknownRenderer, match="did you mean 'lipnerf'"):
        get_variant("lipnerv")
    default = preset_train_settings("neural_texture")
    assert default["batch_size"] == 1 and default["lr"] == pytest.approx(2e-4) and default["betas"] == (0.5, 0.999)
    gpu = preset_train_settings("neural_texture", "gpu")  # the preset's training settings override the defaults
    assert gpu["batch_size"] == 4 and gpu["lr"] == pytest.approx(2e-4) and gpu["lr_final"] == pytest.approx(2e-5)
    assert gpu["betas"] == (0.5, 0.999)  # and keep what the preset does not name
    assert resolve_options("neural_texture", "gpu")["unet_base"] == 32


def test_every_preset_and_demo_scale_names_only_real_options() -> None:
    """A preset's options go to the config dataclass as they are: a name it lacks would fail at build time (the
    lipnerf paper preset once carried one)."""
    import dataclasses

    from core.renderers.spec import variants

    for name, spec in variants().items():
        fields = {f.name for f in dataclasses.fields(spec.config_class())}
        for preset, body in spec.presets.items():
            assert set(body.get("options", {})) <= fields, (name, preset, set(body["options"]) - fields)
        for scale in ("smoke", "quick", "full"):
            assert set(spec.demo_params(scale).get("options", {})) <= fields, (name, scale)
        resolve_options(name, "paper" if "paper" in spec.presets else None)


def test_renderers_command_answers_without_torch(tmp_path) -> None:
    code = ("import sys, json, io, contextlib\n"
            "from core.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    rc = main(['renderers', '--json'])\n"
            "data = json.loads(out.getvalue())\n"
            "names = [v['name'] for v in data['variants']]\n"
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, 'names': names,"
            " 'default': data['default']}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["rc"] == 0 and not answer["torch"]
    assert {"neural_texture", "lipnerf", "triplane"} <= set(answer["names"]) and answer["default"] == "neural_texture"


def test_best_renderer_is_the_highest_held_out_face_psnr() -> None:
    manifest = {"actors": {"anna": {"models": {
        "a2e": {"kind": "a2e"},
        "renderer": {"kind": "renderer", "held_out": {"face_psnr": 27.0}},  # written before variants existed
        "lipnerf": {"kind": "renderer", "variant": "lipnerf", "held_out": {"face_psnr": 29.5}},
        "lipnerf_new": {"kind": "renderer", "variant": "lipnerf", "trained_at": "2026-12-01T10:00:00"},
    }}}}
    trained = trained_renderers(manifest, "anna")
    assert set(trained) == {"renderer", "lipnerf", "lipnerf_new"}
    assert trained["renderer"]["variant"] == "neural_texture"
    assert best_renderer(manifest, "anna") == "lipnerf"
    assert best_renderer(manifest, "anna", "neural_texture") == "renderer"
    assert best_renderer(manifest, "bob") is None
