"""The procedural head: build time, size, forward-pass speed, and (``--render DIR``) a contact sheet.

Prints one JSON object per line, ``{"name", "value", "unit", "config"}``:

* ``build_s`` per resolution — a cold :func:`build_procedural_head` (cache cleared), best of ``--repeats``;
* ``vertices`` / ``faces`` per resolution;
* ``forward_ms`` — :class:`MorphableModel` forward for a batch of ``--batch`` random parameter sets.

``--render DIR`` writes ``procedural_views.png`` (neutral head from five directions with the default
camera's 50 mm lens, jaw open, eyes turned) and ``procedural_expressions.png`` (every expression at 1.0,
face close-up) rendered with :func:`core.render.shading.render_mesh`, to check the head by eye.

    OMP_NUM_THREADS=1 .venv/bin/python bench/procedural_head.py --render /tmp/procedural
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from core.morphable.model import MorphableModel
from core.morphable.procedural import PROCEDURAL_RESOLUTIONS, _build_cached, build_procedural_head
from core.render.camera import PerspectiveCamera
from core.render.shading import render_mesh, sh_directional


def emit(name: str, value: float, unit: str, **config: object) -> None:
    print(json.dumps({"name": name, "value": round(float(value), 4), "unit": unit, "config": config}), flush=True)


def orbit_cameras(yaw_pitch: list[tuple[float, float]], target: tuple[float, float, float], distance: float,
                  size: tuple[int, int], focal_mm: float) -> PerspectiveCamera:
    """Cameras on a sphere around ``target`` (yaw about y from +z, pitch up), looking at it."""
    eyes = []
    for yaw, pitch in yaw_pitch:
        a, b = math.radians(yaw), math.radians(pitch)
        eyes.append([target[0] + distance * math.sin(a) * math.cos(b), target[1] + distance * math.sin(b),
                     target[2] + distance * math.cos(a) * math.cos(b)])
    return PerspectiveCamera.from_look_at(torch.tensor(eyes), torch.tensor(target), size,
                                          fx=focal_mm / 36.0 * size[1])


def render(model: MorphableModel, vertices: torch.Tensor, camera: PerspectiveCamera) -> np.ndarray:
    """(B, H, W, 3) uint8 shaded renders on a grey-blue background."""
    sh = sh_directional((0.3, 0.5, 1.0), intensity=0.8, ambient=0.35, batch=vertices.shape[0])
    texture = model.albedo.permute(2, 0, 1)[None]
    image, _ = render_mesh(vertices, model.faces, camera, model.uvs, model.uv_faces, texture, sh,
                           background=torch.tensor([0.5, 0.55, 0.6]))
    return (image.clamp(0, 1).numpy() * 255).astype(np.uint8)


def contact_sheets(out: Path) -> list[Path]:
    import imageio.v2 as imageio

    model = MorphableModel(build_procedural_head())
    out.mkdir(parents=True, exist_ok=True)
    views = [(0, 0), (35, 0), (90, 0), (150, 5), (20, -30)]
    params = model.zero_params(len(views) + 2)
    params.jaw_pose[len(views), 0] = 0.25
    params.eye_pose[len(views) + 1] = torch.tensor([0.15, 0.35, 0.0, 0.15, 0.35, 0.0])
    vertices = model(params).vertices
    cams = orbit_cameras([*views, (0, 0), (0, 0)], (0.0, -0.02, 0.0), 0.6, (360, 300), 50.0 * 1.7)
    row = np.concatenate(list(render(model, vertices, cams)), 1)
    paths = [out / "procedural_views.png"]
    imageio.imwrite(paths[0], row)
    # every expression at 1.0
    n = model.n_expr
    params = model.zero_params(n + 1)
    params.expression[1:] = torch.eye(n)
    vertices = model(params).vertices
    cams = orbit_cameras([(10, 0)] * (n + 1), (0.0, -0.015, 0.07), 0.5, (200, 170), 125.0)
    tiles = render(model, vertices, cams)
    cols = 10
    blank = np.full_like(tiles[0], 255)
    tiles = list(tiles) + [blank] * (-len(tiles) % cols)
    sheet = np.concatenate([np.concatenate(tiles[r:r + cols], 1) for r in range(0, len(tiles), cols)], 0)
    paths.append(out / "procedural_expressions.png")
    imageio.imwrite(paths[1], sheet)
    names = ["neutral", *model.expr_names]
    (out / "procedural_expressions.txt").write_text(
        "tiles left to right, top to bottom:\n" + "\n".join(names) + "\n")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--render", type=Path, default=None, help="write contact sheets (PNG) to this folder")
    args = parser.parse_args()
    for name, config in PROCEDURAL_RESOLUTIONS.items():
        times = []
        for _ in range(args.repeats):
            _build_cached.cache_clear()
            start = time.perf_counter()
            data = build_procedural_head(config)
            times.append(time.perf_counter() - start)
        emit("build_s", min(times), "s", resolution=name, median_s=round(statistics.median(times), 4))
        emit("vertices", data.n_vertices, "count", resolution=name)
        emit("faces", len(data.faces), "count", resolution=name)
    model = MorphableModel(build_procedural_head())
    params = model.zero_params(args.batch)
    generator = torch.Generator().manual_seed(0)
    params.shape.copy_(torch.randn(params.shape.shape, generator=generator))
    params.expression.copy_(torch.rand(params.expression.shape, generator=generator) * 0.5)
    params.jaw_pose[:, 0] = 0.1
    with torch.no_grad():
        model(params)
        times = []
        for _ in range(max(args.repeats, 5)):
            start = time.perf_counter()
            model(params)
            times.append((time.perf_counter() - start) * 1000.0)
    emit("forward_ms", min(times), "ms", batch=args.batch, threads=torch.get_num_threads(),
         median_ms=round(statistics.median(times), 3))
    if args.render is not None:
        for path in contact_sheets(args.render):
            emit("contact_sheet", 1, "file", path=str(path))


if __name__ == "__main__":
    main()
