"""Rasterizer and render_mesh speed: milliseconds per frame, forward and forward + backward.

Mesh: a head-sized latitude/longitude ellipsoid (0.16 x 0.22 x 0.20 m, 10,080 triangles) seen by
``default_head_camera`` at a 75 mm equivalent focal length, so it covers about a third of the image like a
face crop. Prints one JSON object per line: {"name", "value", "unit", "config"}; ``value`` is the best of
``--repeats`` timed runs (the machine may be shared), ``config.median_ms`` the typical one.

Cases: ``raster_forward`` = :func:`rasterize` with back-face culling, no autograd;
``raster_forward_backward`` = rasterize + interpolate the UVs + backward to the screen vertices;
``render_mesh_forward`` / ``render_mesh_forward_backward`` = the full textured, SH-lit render (256x256
texture), backward to the vertices and the texture.

    OMP_NUM_THREADS=1 .venv/bin/python bench/raster.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from core.render.camera import default_head_camera
from core.render.meshes import uv_sphere
from core.render.raster import interpolate_vertex_attrs, rasterize
from core.render.shading import render_mesh, sh_directional


def time_ms(fn: Callable[[], None], repeats: int, device: torch.device) -> list[float]:
    fn()  # warm-up (allocator, lazy init)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def cases(size: int, batch: int, focal_mm: float, device: torch.device
          ) -> tuple[dict[str, object], list[tuple[str, Callable[[], None]]]]:
    """The timed closures of one (size, batch) configuration and its description."""
    verts, faces, uvs = uv_sphere(71, 72, (0.08, 0.11, 0.1), device=device)
    texture = torch.rand(1, 3, 256, 256, device=device)
    cam = default_head_camera(batch, size, focal_mm_equiv=focal_mm, device=device)
    batch_verts = verts.unsqueeze(0).expand(batch, -1, -1).contiguous()
    screen = cam.to_screen(batch_verts)
    sh = sh_directional((0.3, 0.4, 1.0), intensity=0.7, ambient=0.4, batch=batch, device=device)
    coverage = float(rasterize(screen, faces, (size, size), cull_backfaces=True).mask.float().mean())
    config: dict[str, object] = {"size": size, "batch": batch, "faces": int(faces.shape[0]),
                                 "coverage": round(coverage, 3), "threads": torch.get_num_threads(),
                                 "device": str(device)}

    def raster_forward() -> None:
        with torch.no_grad():
            rasterize(screen, faces, (size, size), cull_backfaces=True)

    def raster_forward_backward() -> None:
        v = screen.detach().requires_grad_()
        frags = rasterize(v, faces, (size, size), cull_backfaces=True)
        interpolate_vertex_attrs(frags, faces, uvs).sum().backward()

    def render_forward() -> None:
        with torch.no_grad():
            render_mesh(batch_verts, faces, cam, uvs, faces, texture, sh)

    def render_forward_backward() -> None:
        v = batch_verts.detach().requires_grad_()
        tex = texture.detach().requires_grad_()
        image, _ = render_mesh(v, faces, cam, uvs, faces, tex, sh)
        image.square().mean().backward()

    return config, [("raster_forward", raster_forward), ("raster_forward_backward", raster_forward_backward),
                    ("render_mesh_forward", render_forward),
                    ("render_mesh_forward_backward", render_forward_backward)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--focal-mm", type=float, default=75.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for size in args.sizes:
        for batch in args.batches:
            config, timed = cases(size, batch, args.focal_mm, device)
            for name, fn in timed:
                per_frame = [t / batch for t in time_ms(fn, args.repeats, device)]
                record = {"name": f"{name}_ms_per_frame", "value": round(min(per_frame), 3), "unit": "ms",
                          "config": {**config, "repeats": args.repeats,
                                     "median_ms": round(statistics.median(per_frame), 3)}}
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
