"""``camera.json`` (the workspace's camera contract) <-> :class:`PerspectiveCamera`.

Format: ``{"width", "height", "fx", "fy", "cx", "cy", "R": 3x3, "t": [3]}``; world -> camera in the
OpenCV convention. One camera per clip (per-frame head pose lives in the face parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.render.camera import PerspectiveCamera


def camera_to_json(camera: PerspectiveCamera, index: int = 0) -> dict[str, Any]:
    """The ``index``-th camera of a batch as the camera.json dict."""
    cam = camera[index].detach().to(device="cpu", dtype=torch.float64)
    return {"width": int(cam.width), "height": int(cam.height), "fx": float(cam.fx[0]), "fy": float(cam.fy[0]),
            "cx": float(cam.cx[0]), "cy": float(cam.cy[0]), "R": cam.R[0].tolist(), "t": cam.t[0].tolist()}


def camera_from_json(data: dict[str, Any], batch: int = 1, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> PerspectiveCamera:
    """A batch of ``batch`` identical cameras from a camera.json dict."""
    try:
        def vec(key: str) -> torch.Tensor:
            return torch.full((batch,), float(data[key]), device=device, dtype=dtype)

        R = torch.tensor(data["R"], device=device, dtype=dtype).reshape(1, 3, 3).expand(batch, 3, 3)
        t = torch.tensor(data["t"], device=device, dtype=dtype).reshape(1, 3).expand(batch, 3)
        return PerspectiveCamera(fx=vec("fx"), fy=vec("fy"), cx=vec("cx"), cy=vec("cy"),
                                 R=R.contiguous(), t=t.contiguous(),
                                 image_size=(int(data["height"]), int(data["width"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid camera.json ({exc}); expected width, height, fx, fy, cx, cy, R, t") from None


def save_camera(path: str | Path, camera: PerspectiveCamera, index: int = 0) -> Path:
    from core.workspace import atomic_write_json

    return atomic_write_json(path, camera_to_json(camera, index))


def load_camera(path: str | Path, batch: int = 1, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> PerspectiveCamera:
    import json

    return camera_from_json(json.loads(Path(path).read_text()), batch, device, dtype)
