"""The stable square crop (READ §3.4): coverage, borders, the transform and its inverse."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.landmarks.crop import CropConfig, CropTransform, padded_boxes, resize_image, stable_crop


def face_track(n: int, center: tuple[float, float], size: float, wobble: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    unit = rng.uniform(-0.5, 0.5, size=(68, 2))
    drift = rng.normal(0, wobble, size=(n, 1, 2))
    return (np.array(center) + unit[None] * size + drift).astype(np.float32)


def test_square_covers_the_union_of_padded_boxes() -> None:
    lmk = face_track(50, (320, 200), 120)
    config = CropConfig(pad=0.2, pad_top=0.3, out_size=256)
    crop = stable_crop(lmk, (640, 480), config)
    boxes = padded_boxes(lmk, config.pad, config.pad_top)
    # in edge coordinates the square spans [x0, x0 + size]; boxes are in pixel-centre coordinates
    assert crop.x0 <= boxes[:, 0].min() + 0.5 and crop.y0 <= boxes[:, 1].min() + 0.5
    assert crop.x0 + crop.size >= boxes[:, 2].max() + 0.5 and crop.y0 + crop.size >= boxes[:, 3].max() + 0.5
    union = max(boxes[:, 2].max() - boxes[:, 0].min(), boxes[:, 3].max() - boxes[:, 1].min())
    assert crop.size <= union + 2  # the smallest such square (up to whole pixels)
    assert crop.outside == (0, 0, 0, 0) and crop.out_size == 256
    assert crop.scale == pytest.approx(256 / crop.size)


def test_flagged_frames_do_not_move_the_crop() -> None:
    lmk = face_track(30, (320, 200), 100)
    moved = lmk.copy()
    moved[10:20] += 200  # held/garbage landmarks of flagged frames
    usable = np.ones(30, bool)
    usable[10:20] = False
    assert stable_crop(moved, (640, 480), usable=usable) == stable_crop(lmk[usable], (640, 480))


def test_square_moves_inside_the_frame_or_pads_when_too_big() -> None:
    near_edge = face_track(10, (40, 240), 100, wobble=2)
    crop = stable_crop(near_edge, (640, 480))
    assert crop.x0 == 0 and crop.outside == (0, 0, 0, 0)
    # a face filling a portrait frame's width: the square is wider than the frame
    big = face_track(10, (180, 320), 330, wobble=2)
    crop = stable_crop(big, (360, 640), CropConfig(border="constant"))
    assert crop.size > 360 and crop.outside[0] > 0 and crop.outside[2] > 0
    assert crop.outside[0] + crop.outside[2] == crop.size - 360
    frame = np.full((640, 360, 3), 200, np.uint8)
    out = crop.crop_image(frame)
    assert out.shape == (256, 256, 3)
    assert out[128, 0].max() < 30 and out[128, 128].min() > 190  # black padding, then the frame
    edge = dataclasses.replace(crop, border="edge")
    assert edge.crop_image(frame)[128, 0].min() > 190  # edge replication


def test_points_and_pixels_map_consistently() -> None:
    crop = CropTransform(x0=100, y0=50, size=200, out_size=256, image_width=640, image_height=480)
    pts = np.array([[100.0, 50.0], [299.0, 249.0], [150.3, 77.7]])
    np.testing.assert_allclose(crop.from_crop(crop.to_crop(pts)), pts, atol=1e-4)
    homog = crop.matrix() @ np.c_[pts, np.ones(3)].T
    np.testing.assert_allclose(homog[:2].T, crop.to_crop(pts), atol=1e-4)
    # a bright blob at a full-frame pixel lands where to_crop says
    frame = np.zeros((480, 640, 3), np.uint8)
    y, x = np.mgrid[0:480, 0:640]
    target = np.array([181.0, 140.0])
    blob = np.exp(-((x - target[0]) ** 2 + (y - target[1]) ** 2) / (2 * 6.0 ** 2))
    frame[..., 1] = (255 * blob).astype(np.uint8)
    out = crop.crop_image(frame)[..., 1].astype(np.float64)
    cy, cx = np.mgrid[0:256, 0:256]
    centroid = np.array([(out * cx).sum(), (out * cy).sum()]) / out.sum()
    np.testing.assert_allclose(centroid, crop.to_crop(target), atol=0.15)


def test_paste_inverts_crop_inside_the_square() -> None:
    rng = np.random.default_rng(0)
    plate = (rng.uniform(0, 1, (120, 160, 3)) * 255).astype(np.uint8)
    smooth = resize_image(resize_image(plate, 20, 15), 160, 120)  # low-frequency content survives resizing
    crop = CropTransform(x0=40, y0=-10, size=96, out_size=128, image_width=160, image_height=120)
    face = crop.crop_image(smooth)
    pasted = crop.paste(face, smooth)
    err = np.abs(pasted.astype(int) - smooth.astype(int))
    assert err.mean() < 2.0
    # with a mask: only the masked part changes
    red = np.zeros((128, 128, 3), np.uint8)
    red[..., 0] = 255
    mask = np.zeros((128, 128), np.float32)
    mask[32:96, 32:96] = 1.0
    out = crop.paste(red, plate, mask)
    cx, cy = crop.from_crop(np.array([64.0, 64.0]))
    assert tuple(out[int(cy), int(cx)]) == (255, 0, 0)
    np.testing.assert_array_equal(out[:, :30], plate[:, :30])  # left of the square: untouched
    assert out.dtype == np.uint8 and not np.shares_memory(out, plate)
    with pytest.raises(ValueError):
        crop.paste(red[:64], plate)


def test_json_roundtrip(tmp_path: Path) -> None:
    crop = stable_crop(face_track(5, (320, 200), 100), (640, 480), CropConfig(out_size=512))
    path = crop.save(tmp_path / "crop.json", note="x")
    assert CropTransform.load(path) == crop
    data = json.loads(path.read_text())
    assert {"x0", "y0", "size", "out_size"} <= set(data) and data["out_size"] == 512


@settings(max_examples=60, deadline=None)
@given(cx=st.floats(0, 640), cy=st.floats(0, 480), size=st.floats(20, 700), w=st.integers(64, 900),
       h=st.integers(64, 900))
def test_crop_always_covers_the_visible_union(cx: float, cy: float, size: float, w: int, h: int) -> None:
    lmk = face_track(4, (cx, cy), size, wobble=3)
    config = CropConfig()
    boxes = padded_boxes(lmk, config.pad, config.pad_top) + 0.5
    lo = np.maximum(boxes[:, :2].min(0), 0)
    hi = np.minimum(boxes[:, 2:].max(0), [w, h])
    try:
        crop = stable_crop(lmk, (w, h), config)
    except ValueError:
        assert np.any(hi <= lo)  # face entirely outside the picture
        return
    assert crop.x0 <= lo[0] and crop.y0 <= lo[1]
    assert crop.x0 + crop.size >= hi[0] and crop.y0 + crop.size >= hi[1]
    assert crop.size <= max(8, np.ceil(hi - lo).max() + 1)
    left, top, right, bottom = crop.outside
    if crop.size <= w:
        assert left == right == 0
    if crop.size <= h:
        assert top == bottom == 0
