"""A batched pinhole camera in the OpenCV convention.

World space: metres, y up; a head at the origin faces +z. Camera space (OpenCV): x right, y down, z
forward, so visible points have z > 0. Pixels: x right, y down, the image's top-left corner at (0, 0)
and the centre of pixel (row i, column j) at (j + 0.5, i + 0.5); a principal point at (W/2, H/2) is
the image centre.

Every intrinsic and extrinsic is a tensor, so the tracker can optimise them (focal length included):
``cam.fx.requires_grad_()`` or build the camera from parameters that require grad.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

Tensor = torch.Tensor

# 35 mm-equivalent focal lengths are quoted for a 36 mm wide full-frame sensor.
FULL_FRAME_WIDTH_MM = 36.0


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    height, width = (int(s) for s in size)
    return (height, width)


def _per_camera(value: float | Tensor, batch: int, like: Tensor) -> Tensor:
    """A (B,) tensor from a float, a 0-d tensor or a (B,) tensor (gradients preserved)."""
    value = torch.as_tensor(value, device=like.device, dtype=like.dtype)
    if value.ndim == 0:
        return value.expand(batch)
    if value.shape != (batch,):
        raise ValueError(f"expected a scalar or a ({batch},) tensor, got shape {tuple(value.shape)}")
    return value


def look_at(eye: Tensor, target: Tensor, up: Tensor | tuple[float, float, float] = (0.0, 1.0, 0.0)
            ) -> tuple[Tensor, Tensor]:
    """World->camera rotation and translation of cameras at ``eye`` looking at ``target``.

    Args:
        eye: (B, 3) camera centres in world space.
        target: (B, 3) or (3,) points the cameras look at (they land on the principal point).
        up: (B, 3) or (3,) world direction that appears up in the image (camera -y).

    Returns:
        R: (B, 3, 3) rotation with rows = camera x (right), y (down), z (forward) axes in world space.
        t: (B, 3) translation, so that ``x_cam = R @ x_world + t`` (``t = -R @ eye``).
    """
    eye = torch.as_tensor(eye)
    if eye.ndim != 2 or eye.shape[-1] != 3:
        raise ValueError(f"eye must be (B, 3), got shape {tuple(eye.shape)}")
    target = torch.as_tensor(target, device=eye.device, dtype=eye.dtype).expand_as(eye)
    up = torch.as_tensor(up, device=eye.device, dtype=eye.dtype).expand_as(eye)
    forward = target - eye
    z_axis = forward / forward.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x_axis = torch.linalg.cross(-up, z_axis, dim=-1)  # right = down x forward
    x_norm = x_axis.norm(dim=-1, keepdim=True)
    if bool((x_norm < 1e-9).any()):
        raise ValueError("look_at: the up vector is parallel to the viewing direction; pick another up")
    x_axis = x_axis / x_norm
    y_axis = torch.linalg.cross(z_axis, x_axis, dim=-1)
    R = torch.stack([x_axis, y_axis, z_axis], dim=-2)
    t = -(R @ eye.unsqueeze(-1)).squeeze(-1)
    return R, t


@dataclass
class PerspectiveCamera:
    """B pinhole cameras sharing one image size (OpenCV convention, see the module docstring).

    Attributes:
        fx, fy: (B,) focal lengths in pixels.
        cx, cy: (B,) principal point in pixels (``W / 2, H / 2`` is the image centre).
        R: (B, 3, 3) world->camera rotation.
        t: (B, 3) world->camera translation: ``x_cam = R @ x_world + t``.
        image_size: (H, W) in pixels.
    """

    fx: Tensor
    fy: Tensor
    cx: Tensor
    cy: Tensor
    R: Tensor
    t: Tensor
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.image_size = _as_size(self.image_size)
        B = self.R.shape[0] if self.R.ndim == 3 else -1
        if self.R.shape != (B, 3, 3):
            raise ValueError(f"R must be (B, 3, 3), got shape {tuple(self.R.shape)}")
        if self.t.shape != (B, 3):
            raise ValueError(f"t must be ({B}, 3) to match R, got shape {tuple(self.t.shape)}")
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not isinstance(value, Tensor) or value.shape != (B,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"{name} must be a ({B},) tensor, got {shape}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_look_at(cls, eye: Tensor, target: Tensor, image_size: int | tuple[int, int],
                     fx: float | Tensor, fy: float | Tensor | None = None,
                     cx: float | Tensor | None = None, cy: float | Tensor | None = None,
                     up: Tensor | tuple[float, float, float] = (0.0, 1.0, 0.0)) -> PerspectiveCamera:
        """Cameras at ``eye`` (B, 3) looking at ``target`` (B, 3) or (3,); ``fy`` defaults to ``fx``
        (square pixels), the principal point to the image centre."""
        R, t = look_at(eye, target, up)
        H, W = _as_size(image_size)
        B = R.shape[0]
        fx_t = _per_camera(fx, B, R)
        return cls(fx=fx_t, fy=fx_t if fy is None else _per_camera(fy, B, R),
                   cx=_per_camera(W / 2 if cx is None else cx, B, R),
                   cy=_per_camera(H / 2 if cy is None else cy, B, R), R=R, t=t, image_size=(H, W))

    # ---------------------------------------------------------------- properties
    @property
    def batch_size(self) -> int:
        return int(self.R.shape[0])

    @property
    def device(self) -> torch.device:
        return self.R.device

    @property
    def dtype(self) -> torch.dtype:
        return self.R.dtype

    @property
    def height(self) -> int:
        return self.image_size[0]

    @property
    def width(self) -> int:
        return self.image_size[1]

    @property
    def center(self) -> Tensor:
        """(B, 3) camera centres in world space (``-R^T t``)."""
        return -(self.R.transpose(-1, -2) @ self.t.unsqueeze(-1)).squeeze(-1)

    def intrinsics(self) -> Tensor:
        """(B, 3, 3) matrix K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (differentiable)."""
        zero, one = torch.zeros_like(self.fx), torch.ones_like(self.fx)
        rows = [torch.stack([self.fx, zero, self.cx], -1), torch.stack([zero, self.fy, self.cy], -1),
                torch.stack([zero, zero, one], -1)]
        return torch.stack(rows, dim=-2)

    # ---------------------------------------------------------------- transforms
    def world_to_camera(self, points: Tensor) -> Tensor:
        """(B or 1, N, 3) world points -> (B, N, 3) camera-space points (OpenCV axes)."""
        return points @ self.R.transpose(-1, -2) + self.t.unsqueeze(-2)

    def camera_to_world(self, points: Tensor) -> Tensor:
        """(B or 1, N, 3) camera-space points -> (B, N, 3) world points."""
        return (points - self.t.unsqueeze(-2)) @ self.R

    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Project world points.

        Args:
            points: (B or 1, N, 3) world points.

        Returns:
            xy: (B, N, 2) pixel coordinates (x right, y down, pixel centres at integer + 0.5).
            depth: (B, N) camera-space z (positive in front of the camera). Points at z <= 0 get
                meaningless xy; the rasterizer drops triangles that touch them.
        """
        cam = self.world_to_camera(points)
        depth = cam[..., 2]
        # The clamp keeps points at/behind the camera finite (they are culled downstream anyway).
        inv_z = 1.0 / torch.where(depth.abs() < 1e-12, torch.full_like(depth, 1e-12), depth)
        x = self.fx.unsqueeze(-1) * cam[..., 0] * inv_z + self.cx.unsqueeze(-1)
        y = self.fy.unsqueeze(-1) * cam[..., 1] * inv_z + self.cy.unsqueeze(-1)
        return torch.stack([x, y], dim=-1), depth

    def to_screen(self, points: Tensor) -> Tensor:
        """(B or 1, N, 3) world points -> (B, N, 3) ``(x_pix, y_pix, z_cam)``, the rasterizer's input."""
        xy, depth = self.project(points)
        return torch.cat([xy, depth.unsqueeze(-1)], dim=-1)

    def unproject(self, xy: Tensor, depth: Tensor) -> Tensor:
        """Inverse of :meth:`project`: (B, N, 2) pixel coordinates and (B, N) camera depths ->
        (B, N, 3) world points."""
        x = (xy[..., 0] - self.cx.unsqueeze(-1)) / self.fx.unsqueeze(-1) * depth
        y = (xy[..., 1] - self.cy.unsqueeze(-1)) / self.fy.unsqueeze(-1) * depth
        return self.camera_to_world(torch.stack([x, y, depth], dim=-1))

    def rays(self, height: int | None = None, width: int | None = None) -> tuple[Tensor, Tensor]:
        """World-space rays through every pixel centre.

        Args:
            height, width: render the rays at another resolution of the same view (the intrinsics
                are rescaled as by :meth:`scaled`); defaults to ``image_size``.

        Returns:
            origins: (B, H, W, 3) camera centres.
            directions: (B, H, W, 3) unit directions; the point at camera depth z along the ray
                through pixel p is ``origin + direction * z / (direction . camera forward axis)``.
        """
        cam = self if height is None and width is None else self.scaled(
            height or self.height, width or self.width)
        H, W = cam.image_size
        u = torch.arange(W, device=self.device, dtype=self.dtype) + 0.5
        v = torch.arange(H, device=self.device, dtype=self.dtype) + 0.5
        xy = torch.stack(torch.meshgrid(u, v, indexing="xy"), -1).reshape(1, H * W, 2).expand(cam.batch_size, -1, -1)
        origins, directions = cam.pixel_rays(xy)
        return origins.view(-1, H, W, 3), directions.view(-1, H, W, 3)

    def pixel_rays(self, xy: Tensor) -> tuple[Tensor, Tensor]:
        """World-space rays through given pixel positions.

        Args:
            xy: (B, N, 2) pixel coordinates (x right, y down; pixel centres at integer + 0.5).

        Returns:
            origins (B, N, 3) camera centres and unit directions (B, N, 3).
        """
        x = (xy[..., 0] - self.cx[:, None]) / self.fx[:, None]
        y = (xy[..., 1] - self.cy[:, None]) / self.fy[:, None]
        d_world = torch.stack([x, y, torch.ones_like(x)], -1) @ self.R  # R^T d for each ray
        directions = d_world / d_world.norm(dim=-1, keepdim=True)
        return self.center[:, None].expand_as(directions), directions

    # ---------------------------------------------------------------- derived cameras
    def scaled(self, height: int, width: int) -> PerspectiveCamera:
        """The same view rendered at (height, width) pixels (intrinsics rescaled per axis)."""
        sy, sx = height / self.height, width / self.width
        return PerspectiveCamera(fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
                                 R=self.R, t=self.t, image_size=(height, width))

    def crop(self, x0: float | Tensor, y0: float | Tensor, size: int | tuple[int, int]) -> PerspectiveCamera:
        """The camera of the window whose top-left corner is pixel (x0, y0) and whose size is ``size``
        (an int for a square, or (H, W)). ``x0, y0`` are floats or (B,) tensors (per-frame crops); the
        window may extend past the image (the intrinsics stay valid)."""
        x0_t = _per_camera(x0, self.batch_size, self.cx)
        y0_t = _per_camera(y0, self.batch_size, self.cy)
        return PerspectiveCamera(fx=self.fx, fy=self.fy, cx=self.cx - x0_t, cy=self.cy - y0_t,
                                 R=self.R, t=self.t, image_size=_as_size(size))

    def _map(self, fn: object) -> PerspectiveCamera:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        mapped = {k: (fn(v) if isinstance(v, Tensor) else v) for k, v in values.items()}  # type: ignore[operator]
        return PerspectiveCamera(**mapped)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
           ) -> PerspectiveCamera:
        return self._map(lambda v: v.to(device=device, dtype=dtype))

    def detach(self) -> PerspectiveCamera:
        return self._map(lambda v: v.detach())

    def __getitem__(self, index: int | slice | Tensor) -> PerspectiveCamera:
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return self._map(lambda v: v[index])

    def expand(self, batch: int) -> PerspectiveCamera:
        """Repeat a single camera (B == 1) ``batch`` times."""
        if self.batch_size != 1:
            raise ValueError(f"expand needs a single camera, this one has batch {self.batch_size}")
        return self._map(lambda v: v.expand(batch, *v.shape[1:]))

    @classmethod
    def cat(cls, cameras: list[PerspectiveCamera]) -> PerspectiveCamera:
        sizes = {c.image_size for c in cameras}
        if len(sizes) != 1:
            raise ValueError(f"cameras to concatenate must share one image size, got {sorted(sizes)}")
        return cls(**{f.name: torch.cat([getattr(c, f.name) for c in cameras], 0)
                      for f in fields(cls) if f.name != "image_size"}, image_size=sizes.pop())


def default_head_camera(batch: int = 1, size: int | tuple[int, int] = 256, focal_mm_equiv: float = 50.0,
                        distance: float = 0.6, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> PerspectiveCamera:
    """Cameras on the world +z axis, ``distance`` metres from a head at the origin, looking at it.

    The head faces +z, so the camera sees the face upright (world +y is up in the image) with the
    head's left (+x) on the image's right. With the defaults (50 mm equivalent, 0.6 m), a 0.16 m wide
    face covers about 37% of the image width.

    Args:
        batch: B, the number of (identical) cameras.
        size: image size, an int for a square or (H, W).
        focal_mm_equiv: 35 mm-equivalent focal length (``fx = focal / 36 mm * W``); fy = fx.
        distance: metres from the camera centre to the origin.
    """
    H, W = _as_size(size)
    eye = torch.tensor([[0.0, 0.0, distance]], device=device, dtype=dtype).expand(batch, 3)
    target = torch.zeros(3, device=device, dtype=dtype)
    return PerspectiveCamera.from_look_at(eye, target, (H, W), fx=focal_mm_equiv / FULL_FRAME_WIDTH_MM * W)
