"""The pieces of studio delivery without a dub: the exact paste, the plate's crop on the source, exact rates,
face association and picking, consent records."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core.jobs import protocol as P


def test_composite_keeps_every_pixel_outside_the_matte_exact() -> None:
    from core.delivery.composite import composite
    from core.landmarks.crop import CropTransform

    rng = np.random.default_rng(0)
    plate = rng.integers(0, 65536, (40, 60, 3), dtype=np.uint16)  # a 16-bit plate
    crop = CropTransform(x0=-4, y0=10, size=36, out_size=16, image_width=60, image_height=40)  # partly outside
    mask = np.zeros((16, 16), np.float32)
    mask[4:12, 5:11] = 1.0  # a hard-edged mask: Lanczos rings around it when it is enlarged
    face = rng.random((16, 16, 3)).astype(np.float32)
    out, matte = composite(crop, face, mask, plate)
    assert out.dtype == np.uint16 and matte.dtype == np.uint16
    outside = matte == 0
    assert 0.5 < outside.mean() < 1.0
    assert np.array_equal(out[outside], plate[outside])
    assert (out[matte == 65535] != plate[matte == 65535]).any()
    assert not matte[:, :1].any() and not matte[:9].any()  # nothing beyond the crop square
    empty_out, empty = composite(crop, face, np.zeros((16, 16), np.float32), plate)
    assert not empty.any() and np.array_equal(empty_out, plate)


def test_crop_on_source_maps_a_region_and_a_downscale() -> None:
    from core.delivery.plate import crop_on_source
    from core.landmarks.crop import CropTransform

    crop = CropTransform(x0=10, y0=20, size=100, out_size=64, image_width=400, image_height=300)
    region = crop_on_source(crop, {"source_region": {"x": 1000, "y": 500}, "source_scale": [1.0, 1.0]},
                            3840, 2160)
    assert (region.x0, region.y0, region.size, region.image_width) == (1010, 520, 100, 3840)
    down = crop_on_source(crop, {"source_region": {"x": 0, "y": 0}, "source_scale": [0.5, 0.5]}, 800, 600)
    assert (down.x0, down.y0, down.size, down.out_size) == (20, 40, 200, 64)


def test_exact_rates_and_records() -> None:
    from core.io.ffmpeg import fps_fraction, fps_of, fps_record
    from core.io.video import exact_rate, pix_fmt_depth

    assert fps_fraction(23.98) == Fraction(24000, 1001) and fps_fraction(59.94) == Fraction(60000, 1001)
    assert fps_fraction(29.97) == Fraction(30000, 1001) and fps_fraction(24) == 24
    times = np.arange(50) * 1001 / 30000
    assert exact_rate(29.97, times) == Fraction(30000, 1001)
    assert exact_rate(25.0, np.arange(50) / 30.0) == 30  # the timestamps overrule a wrong nominal rate
    assert fps_record(Fraction(24000, 1001)) == {"fps": 24000 / 1001, "fps_num": 24000, "fps_den": 1001}
    assert fps_of({"fps": 23.976023976, "fps_num": 24000, "fps_den": 1001}) == Fraction(24000, 1001)
    assert fps_of({"fps": 29.97}) == Fraction(30000, 1001) and fps_of({}) == 25
    assert [pix_fmt_depth(f) for f in ("yuv420p", "yuv422p10le", "yuva444p12le", "rgb48le", "gbrp16le",
                                       "p010le", "gbrpf32le")] == [8, 10, 12, 16, 16, 10, 32]


def test_faces_keep_their_ids_across_frames_and_clicks_find_them(tmp_path: Path) -> None:
    from core.landmarks.detector import MultiGroundTruthDetector
    from core.landmarks.faces import FaceChoiceError, MultiTrackBuilder, face_at_working, face_folder, faces_document

    n = 12
    base = np.stack(np.meshgrid(np.linspace(0, 20, 17), np.linspace(0, 24, 4)), -1).reshape(-1, 2)[:68]
    left = np.stack([base + [10 + k, 20] for k in range(n)]).astype(np.float32)
    right = np.stack([base + [70 - k, 22] for k in range(n)]).astype(np.float32)
    right[3:10] = np.nan  # the right face leaves for seven frames (longer than a gap that is interpolated)
    # the detector lists the faces in an order that changes over time
    detector = MultiGroundTruthDetector([right, left])
    builder = MultiTrackBuilder(detector, max_faces=2)
    frame = np.zeros((60, 100, 3), np.uint8)
    for k in range(n):
        if k % 2:
            detector.faces.reverse()
        builder.add(frame)
        if k % 2:
            detector.faces.reverse()
    tracks = builder.finish()
    assert len(tracks) == 2
    assert np.allclose(tracks[0].lmk68, left) and np.allclose(tracks[1].lmk68[~np.isnan(right[:, 0, 0])],
                                                              right[~np.isnan(right[:, 0, 0])])
    assert tracks[1].flagged[3:10].all() and not tracks[1].flagged[10:].any() and tracks[0].detected.all()
    # a working copy that is the right half... of a 200x120 source, downscaled by 2
    record = {"width": 100, "height": 60, "source_region": {"x": 0, "y": 0}, "source_scale": [0.5, 0.5],
              "source_size": [200, 120]}
    doc = faces_document(tracks, record, (200, 120))
    assert doc["width"] == 200 and [f["id"] for f in doc["faces"]] == [0, 1]
    assert face_at_working(doc, record, 0, 0.2, 0.55) == 0 and face_at_working(doc, record, 0, 0.8, 0.6) == 1
    assert face_at_working(doc, record, 4, 0.8, 0.6) is None  # face 1 is not in frame 4
    assert face_at_working(doc, record, 11, 0.6, 0.6) == 1  # it came back (it moved left), with its id
    assert P.face_at(doc, 99, 0.2, 0.55) == 0  # past the end: the last frame
    assert "face 0: left" in P.describe_faces(doc) and "face 1: right" in P.describe_faces(doc)
    shot = tmp_path / "shot"
    shot.mkdir()
    (shot / "faces.json").write_text(__import__("json").dumps(doc))
    with pytest.raises(FaceChoiceError, match="shows 2 faces"):
        face_folder(shot, None)
    with pytest.raises(FaceChoiceError, match="no face 5"):
        face_folder(shot, 5)
    assert face_folder(shot, 1) == shot / "faces" / "1" and face_folder(tmp_path / "single", None) == tmp_path / \
        "single"


def test_consent_records_are_checked(tmp_path: Path) -> None:
    from core.consent import ConsentError, make_record, read_consent, require_consent, save_consent
    from core.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ConsentError) as missing:
        require_consent(ws, "anna")
    assert missing.value.code == P.NO_CONSENT == "no_consent" and "emodub actor consent" in missing.value.hint
    with pytest.raises(ConsentError, match="future"):
        make_record("anna", consented_by="Anna", scope="x", document="d", date="2999-01-01")
    with pytest.raises(ConsentError, match="'scope' is empty"):
        make_record("anna", consented_by="Anna", scope=" ", document="d")
    first = save_consent(ws, "anna", make_record("anna", consented_by="Anna A", scope="DE dub", document="doc-1",
                                                 date="2026-01-02", recorded_by="ed"))
    assert require_consent(ws, "anna")["id"] == first["id"] and first["id"].startswith("consent-")
    assert ws.read_manifest()["actors"]["anna"]["consent"]["id"] == first["id"]
    second = save_consent(ws, "anna", make_record("anna", consented_by="Anna A", scope="DE+FR dub",
                                                  document="doc-2", recorded_by="ed"), replace=True)
    assert read_consent(ws, "anna")["previous"][0]["id"] == first["id"] and second["id"] != first["id"]
    (ws.actor_dir("anna") / "consent.json").write_text('{"format": "emodub-consent", "actor": "anna"}')
    with pytest.raises(ConsentError, match="not valid"):
        require_consent(ws, "anna")
