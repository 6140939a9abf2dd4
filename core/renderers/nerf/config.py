"""Options every NeRF variant shares (standard library only; variant configs inherit them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NeRFOptions:
    """Sampling and rendering options of the NeRF core.

    Attributes:
        render_size: side in pixels at which the head is rendered (then resized to the crop and composited
            over the full-resolution plate crop).
        rays_per_step: rays per training step (drawn inside the head mask of the step's frames).
        samples: samples per ray (occupancy sampling), or coarse samples (hierarchical sampling).
        fine_samples: extra samples per ray of the fine pass (hierarchical sampling only).
        hierarchical: NeRF's coarse + fine networks and resampling; otherwise one network and the occupancy grid.
        sample_depth: how far behind the first occupied voxel a ray is sampled (metres).
        occupancy_resolution: voxels per side of the occupancy grid.
        occupancy_dilate: voxels by which the meshes' occupied voxels are grown.
        box_margin: metres added around the training meshes' bounds.
        mask_margin_px: pixels (at render size) by which the head mask is grown for rays and the plate fill.
        chunk_points: sample points evaluated at once when rendering whole frames (bounds memory whatever
            the encoding and the samples per ray).
        mouth_ray_fraction: share of the training rays drawn around the mouth (lips and mouth interior grown
            by an eighth of the render size), the rest uniformly over the head: the mouth is a small part of the
            head but what lip sync and smiles are judged on.
        eye_ray_fraction: share of the training rays drawn around the eyes (a box around each eye's lid
            landmarks): a blink is a few percent of the frames over a small area, which uniform rays barely see.
        lambda_opacity: weight of the opacity term, the mean of (1 - A)^2 over rays that hit the tracked mesh:
            the head is opaque there. Without it the field may stay half transparent over a plate fill of the
            same colour, which then shows through wherever a dub moves the face.
    """

    render_size: int = 128
    rays_per_step: int = 1024
    samples: int = 32
    fine_samples: int = 0
    hierarchical: bool = False
    sample_depth: float = 0.1
    occupancy_resolution: int = 48
    occupancy_dilate: int = 2
    box_margin: float = 0.02
    mask_margin_px: int = 2
    chunk_points: int = 2**19
    mouth_ray_fraction: float = 0.25
    eye_ray_fraction: float = 0.0
    lambda_opacity: float = 0.01


@dataclass
class MLPFieldOptions(NeRFOptions):
    """A field that is one conditioned MLP over an encoding of the canonical position (LipNeRF, JEAN), with the
    NeRF core's sampling options.

    Attributes:
        encoding: position encoding of x: ``frequency`` (the original NeRF's), ``triplane`` (dense
            multi-resolution feature planes, fast on a CPU) or ``hash`` (a 3D hash grid).
        position_freqs: octaves of the frequency encoding of x (the papers': 10).
        triplane_resolutions: plane sides of the tri-plane levels.
        triplane_features: channels per tri-plane and level.
        hash_levels: levels of the hash grid.
        width: hidden width of the field MLP (the papers': 128).
        depth: hidden layers of the field MLP (the papers': 8).
        colour_width: hidden width of the colour branch.
        grid_lr_scale: learning-rate multiplier of the tri-plane / hash-grid features (grids learn with larger
            steps than the MLP).
        deform_width: hidden width of a deformation field that moves each sample point by a condition-dependent
            offset before the encoding (:class:`~.fields.ConditionedDeformation`; 0: none). A grid encoding holds
            the face's appearance in a static grid and the conditions reach only the small MLP after it, so a
            condition can recolour a point but hardly move a mouth corner; the offset lets it look up the grid
            elsewhere.
        deform_scale: the largest offset, as a fraction of the canonical box's side.
    """

    encoding: str = "triplane"
    position_freqs: int = 10
    triplane_resolutions: tuple[int, ...] = (32, 64, 128)
    triplane_features: int = 8
    hash_levels: int = 12
    width: int = 64
    depth: int = 3
    colour_width: int = 32
    grid_lr_scale: float = 20.0
    deform_width: int = 0
    deform_scale: float = 0.05


# The original NeRF's network and sampling, as LipNeRF, JEAN and NeRF-AD train it (their ``paper`` presets).
PAPER_MLP_FIELD: dict[str, object] = {"encoding": "frequency", "width": 128, "depth": 8, "colour_width": 64,
                                      "hierarchical": True, "samples": 64, "fine_samples": 64, "rays_per_step": 2048,
                                      "render_size": 256}
