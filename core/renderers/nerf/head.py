"""The shared NeRF head renderer: everything a NeRF variant needs except its field and its conditions.

A variant subclasses :class:`HeadNeRF` and provides

* :meth:`HeadNeRF.conditions` — a (B, C) condition vector per frame (LipNeRF: expression, jaw, latent code), or
  :meth:`HeadNeRF.frame_conditions` when computing them yields more (tensors for the losses or for reports, which
  land in ``RenderOutput.extras``);
* :meth:`HeadNeRF.field` — densities and colours at canonical points in [0, 1]^3 under those conditions
  (and :meth:`HeadNeRF.coarse_field` for hierarchical sampling);
* optionally more loss terms (:meth:`HeadNeRF.extra_losses`) and square ray patches per training step
  (:meth:`HeadNeRF.ray_patches`, e.g. for a perceptual term on the mouth).

What it does for every variant:

* **Masks from the tracked mesh** (no parsing network): the head region is the union of the mesh coverage of
  the parameters being rendered and of the plate's own, grown by ``mask_margin_px``. Rays are cast only there.
* **Plate behind the head**: the plate with that region filled from its surroundings
  (:func:`~.composite.fill_holes`); the head is composited over it, ``C + (1 - A) B``. In training the target
  is the real frame, so the field must explain every head pixel (the fill is not the answer).
* **Training**: ``rays_per_step`` random rays inside the head masks of the batch's frames, at ``render_size``;
  ``mouth_ray_fraction`` of them around the mouth and ``eye_ray_fraction`` around the eyes. The photometric
  loss is the mean squared error of the composited colour (LipNeRF Eq. 3).
* **Whole frames** (evaluation, dub): every ray of the head region at ``render_size``, in chunks of at most
  ``chunk_points`` sample points (bounded memory), resized to the crop and composited over the plate fill at
  crop resolution (the background stays sharp). ``extras["gap_px"]`` measures the chin-neck gap per frame.
* **Occupancy**: :meth:`prepare` fits the occupancy grid to the canonical meshes of the training frames;
  samples outside occupied voxels get no density, and the field is evaluated only at the occupied ones.
* **Patches**: when a variant asks for them, the first ``count * side^2`` training rays are square patches
  (row-major, patch after patch) centred in the mouth and lying inside the head region; the rest are drawn as
  above. ``extras["patches"]`` says how many and how large.
* **Precision**: under the trainer's bf16 autocast (CUDA) only the field runs in bf16; rays, skinning and
  compositing stay float32.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.landmarks.mapping import IBUG68_EYES
from core.render.masks import MOUTH_REGIONS, expand_mask, face_faces, rasterize_uv_and_region, region_faces
from core.renderers.base import Renderer, RendererBatch, RendererSetup, RenderOutput, TrainStep

from .composite import chin_gap_px, fill_holes
from .encodings import FrequencyEncoding
from .rays import canonical_rays, head_frames, to_canonical
from .sampling import OccupancyGrid, intervals, sample_pdf, stratified
from .volume import volume_render


class HeadNeRF(Renderer):
    """Base of the NeRF variants (module docstring). ``options`` must carry the fields of
    :class:`core.renderers.nerf.config.NeRFOptions`."""

    def __init__(self, options: Any, setup: RendererSetup) -> None:
        from core.renderers.spec import BadRendererOption

        super().__init__(options, setup)
        if options.hierarchical and options.fine_samples < 1:
            raise BadRendererOption("hierarchical sampling needs fine_samples >= 1 (the fine pass's samples)")
        if options.samples < 1 or options.rays_per_step < 1 or options.render_size < 8:
            raise BadRendererOption("samples and rays_per_step must be >= 1 and render_size >= 8")
        fractions = (options.mouth_ray_fraction, options.eye_ray_fraction)
        if min(fractions) < 0.0 or sum(fractions) > 1.0:
            raise BadRendererOption(f"mouth_ray_fraction and eye_ray_fraction are shares of the rays (>= 0, "
                                    f"together at most 1), got {fractions[0]} and {fractions[1]}")
        self.occupancy = OccupancyGrid(options.occupancy_resolution)
        self.direction_encoding = FrequencyEncoding(3, 4)

    # -- what a variant provides ------------------------------------------------------------------------
    def conditions(self, batch: RendererBatch) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, C) the condition vector of each frame."""
        raise NotImplementedError

    def frame_conditions(self, batch: RendererBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        """(B, C) conditions and extras to return with the output (default: :meth:`conditions`, none)."""
        return self.conditions(batch), {}

    def ray_patches(self) -> tuple[int, int]:
        """(count, side): square patches of rays this training step casts around the mouth (default none)."""
        return 0, 0

    def field(self, points: torch.Tensor, condition: torch.Tensor, directions: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        """Points (P, 3) in [0, 1]^3 (the head box), conditions (P, C), encoded directions (P, D) ->
        densities (P,) and colours (P, 3)."""
        raise NotImplementedError

    def coarse_field(self, points: torch.Tensor, condition: torch.Tensor, directions: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The coarse network of hierarchical sampling (default: the field itself)."""
        return self.field(points, condition, directions)

    def extra_losses(self, batch: RendererBatch, output: RenderOutput, step: TrainStep) -> dict[str, torch.Tensor]:
        return {}

    # -- geometry ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, source: Any) -> None:
        """Fit the occupancy grid to the canonical meshes of (up to 2,000 of) the training frames."""
        n = len(source)
        picks = torch.linspace(0, n - 1, min(n, 2000)).round().long().unique().tolist()
        model = source.face_model("cpu")
        chunks = []
        for start in range(0, len(picks), 64):
            R, t, verts = head_frames(model, source.params(picks[start:start + 64]))
            chunks.append(to_canonical(verts, R, t).reshape(-1, 3)[::3])
        points = torch.cat(chunks).to(self.occupancy.grid.device)
        self.occupancy.fit_points(points, self.options.box_margin, self.options.occupancy_dilate)

    def _normalise(self, points: torch.Tensor) -> torch.Tensor:
        return (points - self.occupancy.lo) / (self.occupancy.hi - self.occupancy.lo)

    def head_region(self, batch: RendererBatch, size: int) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """(B, 1, size, size) where rays are cast (the mesh coverage of the rendered and of the plate's own face,
        grown), the camera at that size, and the coverage of the rendered mesh alone."""
        camera = batch.camera if size == batch.frames.shape[-1] else batch.camera.scaled(size, size)
        with torch.no_grad():
            _, new, _ = rasterize_uv_and_region(batch.face_model, batch.params, camera)
            _, old, _ = rasterize_uv_and_region(batch.face_model, batch.plate_params, camera)
        margin = max(1, round(self.options.mask_margin_px * size / self.options.render_size))
        return expand_mask(torch.maximum(new, old), margin), camera, new

    # -- rays ------------------------------------------------------------------------------------------
    def render_rays(self, origins: torch.Tensor, directions: torch.Tensor, condition: torch.Tensor,
                    jitter: bool) -> dict[str, torch.Tensor]:
        """Render R canonical rays with per-ray conditions (R, C): ``rgb`` (R, 3) premultiplied, ``acc`` (R,),
        ``depth``; with hierarchical sampling also ``coarse_rgb``/``coarse_acc``."""
        o = self.options
        encoded_dirs = self.direction_encoding(directions)
        out: dict[str, torch.Tensor] = {}
        if o.hierarchical:
            from .rays import ray_box

            near, far, hit = ray_box(origins, directions, self.occupancy.lo, self.occupancy.hi)
            far = torch.where(hit, far, near + 1e-3)
            t = stratified(near, far, o.samples, jitter)
            coarse = self._march(origins, directions, encoded_dirs, condition, t, far, self.coarse_field)
            out["coarse_rgb"], out["coarse_acc"] = coarse["rgb"], coarse["acc"]
            mids = torch.cat([near[:, None], 0.5 * (t[:, 1:] + t[:, :-1]), far[:, None]], 1)
            fine = sample_pdf(mids, coarse["weights"].detach(), o.fine_samples, jitter)
            t = torch.cat([t, fine], 1).sort(1).values
            result = self._march(origins, directions, encoded_dirs, condition, t, far, self.field)
        else:
            t, far, _ = self.occupancy.sample(origins, directions, o.samples, o.sample_depth, jitter)
            result = self._march(origins, directions, encoded_dirs, condition, t, far, self.field, occupancy=True)
        out.update({k: result[k] for k in ("rgb", "acc", "depth")})
        return out

    def _march(self, origins: torch.Tensor, directions: torch.Tensor, encoded_dirs: torch.Tensor,
               condition: torch.Tensor, t: torch.Tensor, far: torch.Tensor, field: Any,
               occupancy: bool = False) -> dict[str, torch.Tensor]:
        R, N = t.shape
        points = origins[:, None] + directions[:, None] * t[..., None]               # (R, N, 3)
        if occupancy:
            # No density where no head can be (outside the occupied voxels): the field runs on the occupied
            # samples only (a sample elsewhere has weight 0 whatever its colour) and is scattered back.
            keep = self.occupancy.occupied(points).flatten().nonzero()[:, 0]
            ray = keep // N
            with self.network_autocast():
                sigma_kept, rgb_kept = field(self._normalise(points.reshape(-1, 3)[keep]), condition[ray],
                                             encoded_dirs[ray])
            sigma = points.new_zeros(R * N).index_put((keep,), sigma_kept.float())
            rgb = points.new_zeros(R * N, 3).index_put((keep,), rgb_kept.float())
        else:
            with self.network_autocast():
                sigma, rgb = field(self._normalise(points).reshape(-1, 3),
                                   condition[:, None].expand(R, N, condition.shape[-1]).reshape(R * N, -1),
                                   encoded_dirs[:, None].expand(R, N, encoded_dirs.shape[-1]).reshape(R * N, -1))
        return volume_render(sigma.view(R, N).float(), rgb.view(R, N, 3).float(), t, intervals(t, far))

    def _rays_of_pixels(self, batch: RendererBatch, camera: Any, frame: torch.Tensor, rows: torch.Tensor,
                        cols: torch.Tensor, conditions: torch.Tensor, frames_R: torch.Tensor,
                        frames_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xy = torch.stack([cols.to(frames_t.dtype) + 0.5, rows.to(frames_t.dtype) + 0.5], -1)
        cam = camera[frame] if camera.batch_size > 1 else camera.expand(len(frame))
        origins, directions = canonical_rays(cam, xy[:, None], frames_R[frame], frames_t[frame])
        return origins[:, 0], directions[:, 0], conditions[frame]

    # -- the contract -----------------------------------------------------------------------------------
    def forward(self, batch: RendererBatch) -> RenderOutput:
        return self._train_forward(batch) if self.training else self._render_frames(batch)

    def _train_forward(self, batch: RendererBatch) -> RenderOutput:
        S = self.options.render_size
        region, camera, coverage = self.head_region(batch, S)
        frames = batch.frames if S == batch.frames.shape[-1] else F.interpolate(batch.frames, size=(S, S),
                                                                                mode="area")
        with torch.no_grad():
            plate = fill_holes(frames, 1.0 - region)
        count, side = self.ray_patches()
        mouth = self.mouth_region(batch, camera)
        focus = [(self.options.mouth_ray_fraction, expand_mask(mouth, max(1, S // 8)))]
        if self.options.eye_ray_fraction:
            focus.append((self.options.eye_ray_fraction, self.eye_region(batch, camera)))
        pick = self._training_pixels(region, focus)
        if count:  # patches first (row-major, patch after patch), then as many scattered rays as are left
            patches = self.mouth_patch_pixels(region, mouth, count, side)
            pick = torch.cat([patches, pick[:max(0, len(pick) - len(patches))]])
        frame, rows, cols = pick // (S * S), (pick % (S * S)) // S, pick % S
        with torch.no_grad():
            R, t, _ = head_frames(batch.face_model, batch.params)
        conditions, condition_extras = self.frame_conditions(batch)
        origins, directions, cond = self._rays_of_pixels(batch, camera, frame, rows, cols, conditions, R, t)
        out = self.render_rays(origins, directions, cond, jitter=True)
        background = plate[frame, :, rows, cols]
        extras = {**condition_extras, "rgb": out["rgb"] + (1.0 - out["acc"][:, None]) * background,
                  "target": frames[frame, :, rows, cols], "acc": out["acc"], "frame": frame,
                  "on_mesh": coverage[frame, 0, rows, cols] > 0.5, "patches": (count, side)}
        if "coarse_rgb" in out:
            extras["coarse_rgb"] = out["coarse_rgb"] + (1.0 - out["coarse_acc"][:, None]) * background
        return RenderOutput(None, None, extras)

    @torch.no_grad()
    def mouth_region(self, batch: RendererBatch, camera: Any) -> torch.Tensor:
        """(B, 1, S, S) the lips and mouth interior of the parameters being rendered, at the camera's size
        (empty for a face model without those regions)."""
        S = int(camera.height)
        mouth_faces = region_faces(batch.face_model, include=MOUTH_REGIONS)
        if not mouth_faces.any():
            return batch.frames.new_zeros(batch.size, 1, S, S)
        _, _, lips = rasterize_uv_and_region(batch.face_model, batch.params, camera, mouth_faces)
        assert lips is not None
        return lips

    @torch.no_grad()
    def eye_region(self, batch: RendererBatch, camera: Any) -> torch.Tensor:
        """(B, 1, S, S) a box around each eye of the parameters being rendered: the six lid landmarks' bounds
        grown by half the eye's width up and down (lids, lashes, the crease) and a quarter sideways. From the
        landmarks, not the eyeball triangles, which a closed lid hides."""
        S = int(camera.height)
        xy, _ = camera.project(batch.face_model(batch.params).landmarks)                        # (B, 68, 2)
        pixel = torch.arange(S, device=xy.device, dtype=xy.dtype) + 0.5
        boxes = torch.zeros(batch.size, S, S, dtype=torch.bool, device=xy.device)
        for eye in IBUG68_EYES:
            points = xy[:, list(eye)]
            lo, hi = points.amin(1), points.amax(1)                                              # (B, 2)
            width = (hi[:, 0] - lo[:, 0]).clamp_min(1.0)
            x0, x1 = lo[:, 0] - width / 4, hi[:, 0] + width / 4
            y0, y1 = lo[:, 1] - width / 2, hi[:, 1] + width / 2
            inside_x = (pixel[None] >= x0[:, None]) & (pixel[None] <= x1[:, None])               # (B, S)
            inside_y = (pixel[None] >= y0[:, None]) & (pixel[None] <= y1[:, None])
            boxes |= inside_y[:, :, None] & inside_x[:, None, :]
        return boxes[:, None].to(batch.frames.dtype)

    @torch.no_grad()
    def _training_pixels(self, region: torch.Tensor, focus: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
        """(rays_per_step,) flat pixel indices over (B, S, S): for each ``(fraction, mask)`` of ``focus``, that
        share of them inside ``mask`` and the head region (none where they do not meet), the rest anywhere in
        the head region."""
        n = self.options.rays_per_step
        head = region[:, 0].flatten().nonzero()[:, 0]
        if not len(head):  # no face in any of the batch's frames: learn the (empty) whole picture instead
            head = torch.arange(region.numel(), device=region.device)
        picks = []
        for fraction, mask in focus:
            count = int(round(n * fraction))
            pool = (mask * region)[:, 0].flatten().nonzero()[:, 0] if count else head[:0]
            if len(pool):
                picks.append(pool[torch.randint(len(pool), (count,), device=pool.device)])
        taken = sum(len(p) for p in picks)
        picks.insert(0, head[torch.randint(len(head), (max(0, n - taken),), device=head.device)])
        return torch.cat(picks)

    @torch.no_grad()
    def mouth_patch_pixels(self, region: torch.Tensor, mouth: torch.Tensor, count: int, side: int) -> torch.Tensor:
        """(count * side^2,) flat pixel indices over (B, S, S) of ``count`` square patches, row-major, patch after
        patch.

        A patch lies wholly inside the head ``region`` (rays are only cast there at render time, so a patch
        reaching outside would learn pixels that are never rendered) and its centre pixel (row and column
        ``top + side // 2``) is in ``mouth``; the frame of each patch is random. Where no such patch exists the
        centre may leave the mouth; where no patch fits in the region at all, patches are centred on mouth
        pixels (or the region) and clamped to the picture.

        Args:
            region: (B, 1, S, S) where rays may be cast.
            mouth: (B, 1, S, S) lips and mouth interior.
        """
        B, S = region.shape[0], region.shape[-1]
        side = max(1, min(side, S))
        # top-left corners whose patch has no pixel outside the region
        fits = F.max_pool2d(1.0 - (region > 0.5).float(), side, stride=1)[:, 0] < 0.5  # (B, S-side+1, S-side+1)
        half, n_tl = side // 2, fits.shape[1]
        centred = (mouth[:, 0, half:half + n_tl, half:half + n_tl] > 0.5) & fits
        choices = next((c.flatten().nonzero()[:, 0] for c in (centred, fits) if c.any()), None)
        if choices is not None:
            corner = choices[torch.randint(len(choices), (count,), device=region.device)]
            frame, top, left = corner // (n_tl * n_tl), (corner % (n_tl * n_tl)) // n_tl, corner % n_tl
        else:  # nothing fits: centre on the mouth (or the region, or anything), clamped to the picture
            pool = next((m[:, 0].flatten().nonzero()[:, 0] for m in (mouth > 0.5, region > 0.5) if m.any()),
                        torch.arange(B * S * S, device=region.device))
            centre = pool[torch.randint(len(pool), (count,), device=region.device)]
            frame = centre // (S * S)
            top = ((centre % (S * S)) // S - half).clamp(0, S - side)
            left = (centre % S - half).clamp(0, S - side)
        offsets = torch.arange(side, device=region.device)
        rows = top[:, None, None] + offsets[None, :, None]                  # (count, side, 1)
        cols = left[:, None, None] + offsets[None, None, :]                 # (count, 1, side)
        return (frame[:, None, None] * S * S + rows * S + cols).reshape(-1)

    @torch.no_grad()
    def _render_frames(self, batch: RendererBatch) -> RenderOutput:
        S, H = self.options.render_size, batch.frames.shape[-1]
        region, camera, _ = self.head_region(batch, S)
        R, t, _ = head_frames(batch.face_model, batch.params)
        conditions, condition_extras = self.frame_conditions(batch)
        B = batch.size
        rgb = batch.frames.new_zeros(B, 3, S, S)
        acc = batch.frames.new_zeros(B, 1, S, S)
        pixels = region[:, 0].flatten().nonzero()[:, 0]
        per_ray = self.options.samples + (self.options.fine_samples if self.options.hierarchical else 0)
        chunk = max(1, self.options.chunk_points // per_ray)
        for start in range(0, len(pixels), chunk):
            pick = pixels[start:start + chunk]
            frame, rows, cols = pick // (S * S), (pick % (S * S)) // S, pick % S
            origins, directions, cond = self._rays_of_pixels(batch, camera, frame, rows, cols, conditions, R, t)
            out = self.render_rays(origins, directions, cond, jitter=False)
            rgb[frame, :, rows, cols] = out["rgb"].to(rgb.dtype)
            acc[frame, 0, rows, cols] = out["acc"].to(acc.dtype)
        if S != H:
            rgb = F.interpolate(rgb, size=(H, H), mode="bilinear", align_corners=False)
            acc = F.interpolate(acc, size=(H, H), mode="bilinear", align_corners=False).clamp(0, 1)
        region_crop = self.head_region(batch, H)[0] if S != H else region
        plate = fill_holes(batch.frames, 1.0 - region_crop)
        image = (rgb + (1.0 - acc) * plate).clamp(0, 1)
        image = region_crop * image + (1.0 - region_crop) * batch.frames  # outside the head: the plate itself
        _, _, old_face = rasterize_uv_and_region(batch.face_model, batch.plate_params, batch.camera,
                                                 face_faces(batch.face_model))
        assert old_face is not None
        return RenderOutput(image, region_crop, {**condition_extras, "acc": acc,
                                                 "gap_px": chin_gap_px(acc, old_face)})

    def losses(self, batch: RendererBatch, output: RenderOutput, criteria: nn.ModuleDict,
               step: TrainStep) -> dict[str, torch.Tensor]:
        e = output.extras
        terms = {"photo": ((e["rgb"] - e["target"]) ** 2).mean()}
        if "coarse_rgb" in e:
            terms["photo_coarse"] = ((e["coarse_rgb"] - e["target"]) ** 2).mean()
        if self.options.lambda_opacity and e["on_mesh"].any():
            terms["opacity"] = self.options.lambda_opacity * ((1.0 - e["acc"][e["on_mesh"]]) ** 2).mean()
        terms.update(self.extra_losses(batch, output, step))
        return terms
