"""A contact sheet of the synthetic actor: the shaded procedural head at rest, in visemes, emotions, a blink
and two head poses, each tile labelled, in one PNG.

It is the picture to look at when the head, its blendshapes, the lighting or the renderer change::

    emodub synth --out DIR --contact-sheet          # DIR/contact_sheet.png
    .venv/bin/python -m core.synthetic.contact_sheet docs/images/contact_sheet.png

The tiles are rendered by :class:`~core.synthetic.actor.SyntheticActor` exactly as the corpus videos are
(same camera, lights, background), with the parameters of :data:`CONTACT_SHEET_POSES`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SheetPose:
    """One tile: a label and the parameters shown.

    Attributes:
        label: text under the tile.
        weights: expression name -> weight (names of ``PROCEDURAL_EXPRESSIONS``).
        emotion: optional ``(emotion, intensity)`` whose expression offsets (and jaw offset) are added.
        viseme: optional viseme class (``"aa"``, ``"U"``...) whose mouth shape and jaw opening are added.
        jaw: extra jaw opening in radians.
        yaw_deg, pitch_deg, roll_deg: head rotation (see :func:`core.synthetic.actor.head_pose`).
    """

    label: str
    weights: dict[str, float] = field(default_factory=dict)
    emotion: tuple[str, float] | None = None
    viseme: str | None = None
    jaw: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0


CONTACT_SHEET_POSES: tuple[SheetPose, ...] = (
    SheetPose("neutral"),
    SheetPose("viseme aa (open)", viseme="aa"),
    SheetPose("viseme uw (pucker)", viseme="U"),
    SheetPose("happy 3 (smile)", emotion=("happy", 1.0)),
    SheetPose("sad 3 (frown, brows)", emotion=("sad", 1.0)),
    SheetPose("angry 3", emotion=("angry", 1.0)),
    SheetPose("surprised 3", emotion=("surprised", 1.0)),
    SheetPose("blink", weights={"blink_left": 1.0, "blink_right": 1.0}),
    SheetPose("turned 30°, aa", viseme="aa", yaw_deg=30.0),
    SheetPose("tilted 15°, pitch -10°", roll_deg=15.0, pitch_deg=-10.0),
)


def pose_arrays(poses: Sequence[SheetPose]) -> dict[str, np.ndarray]:
    """The corpus-layout parameter arrays (``expression`` in ``PROCEDURAL_EXPRESSIONS`` order, ``jaw_pose``,
    ``rotation``) of the tiles, one row per pose."""
    from core.expression.emotions import emotion_vector
    from core.morphable.data import PROCEDURAL_EXPRESSIONS
    from core.synthetic.actor import head_pose
    from core.synthetic.emotion_faces import emotion_expression, emotion_jaw_offset
    from core.synthetic.visemes import VISEMES

    n = len(poses)
    expression = np.zeros((n, len(PROCEDURAL_EXPRESSIONS)), np.float32)
    jaw_pose = np.zeros((n, 3), np.float32)
    rotation = np.zeros((n, 3), np.float32)
    for i, pose in enumerate(poses):
        for name, value in pose.weights.items():
            expression[i, PROCEDURAL_EXPRESSIONS.index(name)] += value
        jaw = pose.jaw
        if pose.viseme is not None:
            viseme = VISEMES[pose.viseme]
            expression[i] += viseme.vector().astype(np.float32)
            jaw += viseme.jaw
        if pose.emotion is not None:
            vec = emotion_vector({pose.emotion[0]: pose.emotion[1]})
            expression[i] += emotion_expression(vec)[0]
            jaw += float(emotion_jaw_offset(vec)[0])
        jaw_pose[i, 0] = jaw
        rotation[i] = head_pose(pose.yaw_deg, pose.pitch_deg, pose.roll_deg)
    return {"expression": np.clip(expression, 0.0, 1.0), "jaw_pose": jaw_pose, "rotation": rotation}


def render_contact_sheet(path: str | Path | None = None, size: int = 256, columns: int = 5,
                         poses: Sequence[SheetPose] = CONTACT_SHEET_POSES, supersample: int = 3,
                         identity_seed: int = 0, device: str = "cpu", landmarks: bool = False,
                         palette: bool = True) -> np.ndarray:
    """Render the labelled grid and optionally write it as a PNG (atomically).

    Args:
        path: PNG to write (``None``: only return the image).
        size: tile side in pixels.
        columns: tiles per row.
        poses: the tiles.
        supersample: anti-aliasing factor of the tiles.
        identity_seed: the actor's identity.
        device: render device.
        landmarks: draw the ground-truth 2D landmarks (visible green, occluded red) on the tiles.
        palette: save the PNG with a dithered 256-colour palette (about a third of the size; keeps the
            README image small) instead of full RGB.

    Returns:
        (H, W, 3) uint8 image.
    """
    from PIL import Image, ImageDraw, ImageFont

    from core.synthetic.actor import ActorConfig, SyntheticActor

    actor = SyntheticActor(ActorConfig(size=size, supersample=supersample, identity_seed=identity_seed),
                           device=device)
    arrays = pose_arrays(poses)
    arrays["shape"] = actor.identity[None]
    rendered = actor.render_chunk(arrays)
    tiles = rendered.frames
    if landmarks:
        from core.render.shading import draw_points

        tiles = np.stack([
            draw_points(draw_points(tile, lm[~vis], (230, 40, 40), radius=1.2), lm[vis], (40, 230, 80),
                        radius=1.2)
            for tile, lm, vis in zip(tiles, rendered.landmarks, rendered.visible, strict=True)])
    label_h = max(18, size // 11)
    rows = -(-len(poses) // columns)
    margin = 4
    sheet = Image.new("RGB", (columns * (size + margin) + margin, rows * (size + label_h + margin) + margin),
                      (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, int(label_h * 0.68)))
    for i, (pose, tile) in enumerate(zip(poses, tiles, strict=True)):
        r, c = divmod(i, columns)
        x0 = margin + c * (size + margin)
        y0 = margin + r * (size + label_h + margin)
        sheet.paste(Image.fromarray(tile), (x0, y0))
        box = draw.textbbox((0, 0), pose.label, font=font)
        text_x = x0 + (size - (box[2] - box[0])) // 2
        text_y = y0 + size + (label_h - (box[3] - box[1])) // 2 - box[1]
        draw.text((text_x, text_y), pose.label, fill=(230, 230, 230), font=font)
    image = np.asarray(sheet)
    if path is not None:
        from core.workspace import atomic_path

        out = Path(path)
        with atomic_path(out, suffix=".png") as tmp:
            to_save = (sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                      dither=Image.Dither.FLOYDSTEINBERG) if palette else sheet)
            to_save.save(tmp, format="PNG", optimize=True)
    return image


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="render the synthetic actor's contact sheet PNG")
    parser.add_argument("out", nargs="?", default="docs/images/contact_sheet.png")
    parser.add_argument("--size", type=int, default=256, help="tile side in pixels (default 256)")
    parser.add_argument("--columns", type=int, default=5)
    parser.add_argument("--landmarks", action="store_true", help="overlay the ground-truth landmarks")
    parser.add_argument("--rgb", action="store_true", help="full RGB PNG instead of a 256-colour palette")
    args = parser.parse_args(argv)
    render_contact_sheet(args.out, size=args.size, columns=args.columns, landmarks=args.landmarks,
                         palette=not args.rgb)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
