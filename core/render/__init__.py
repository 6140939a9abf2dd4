"""Rendering primitives: a batched perspective camera, a pure-PyTorch differentiable triangle
rasterizer, spherical-harmonics shading, texture sampling and numpy overlay drawing.

Conventions: world space is metres with y up (heads face +z, see :mod:`core.morphable.data`); camera
space is OpenCV's (x right, y down, z forward; visible points have z > 0); pixel coordinates have x to
the right, y down, the image's top-left corner at (0, 0) and pixel centres at integer + 0.5.
"""

from core.render.camera import PerspectiveCamera, default_head_camera, look_at
from core.render.meshes import uv_sphere
from core.render.raster import (
    CoveredPixels,
    Fragments,
    interpolate,
    interpolate_covered,
    interpolate_vertex_attrs,
    pytorch3d_available,
    rasterize,
    rasterize_reference,
    scatter_channels,
)
from core.render.shading import (
    draw_points,
    draw_wireframe,
    face_normals,
    render_mesh,
    sample_texture,
    sh_basis,
    sh_directional,
    sh_irradiance,
    shade,
    vertex_normals,
)

__all__ = [
    "CoveredPixels",
    "Fragments",
    "PerspectiveCamera",
    "default_head_camera",
    "draw_points",
    "draw_wireframe",
    "face_normals",
    "interpolate",
    "interpolate_covered",
    "interpolate_vertex_attrs",
    "look_at",
    "pytorch3d_available",
    "rasterize",
    "rasterize_reference",
    "render_mesh",
    "sample_texture",
    "scatter_channels",
    "sh_basis",
    "sh_directional",
    "sh_irradiance",
    "shade",
    "uv_sphere",
    "vertex_normals",
]
