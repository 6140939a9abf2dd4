"""Studio delivery end to end on the tiny trained actor: native NTSC timing and timecode from ingest to output,
PNG-sequence exactness outside the matte (8- and 10-bit plates), ProRes and EXR outputs that decode, a two-face
shot dubbed on the chosen face only, and the consent gate with the provenance it writes."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.jobs import protocol as P
from core.jobs.runner import run_job

torch.set_num_threads(1)
N_FRAMES, SIZE = 24, 64


# -- helpers ---------------------------------------------------------------------------------------

def run(ws: Any, kind: str, params: dict[str, Any]) -> tuple[int, list[P.Event]]:
    events: list[P.Event] = []
    code = run_job(P.JobSpec(kind, params, str(ws.root)), events.append)
    return code, events


def outputs(ws: Any, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    code, events = run(ws, kind, params)
    assert code == P.EXIT_OK, events[-1]
    return events[-1].outputs


def error(ws: Any, kind: str, params: dict[str, Any]) -> P.Error:
    code, events = run(ws, kind, params)
    assert code != P.EXIT_OK and isinstance(events[-1], P.Error), events[-1]
    return events[-1]


def dub_audio(path: Path, seconds: float, rate: int = 48000, subtype: str = "PCM_24") -> Path:
    """The new dialogue: a pulsing tone at ``rate`` Hz, ``subtype`` depth."""
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    sf.write(str(path), wave.astype(np.float32), rate, subtype=subtype)
    return path


def known_source(folder: Path, rate: Fraction, seed: int = 1, timecode: str | None = None) -> Path:
    """A known (tracked) clip at ``rate``: its ``video.mp4`` stands in for the camera file of a shot."""
    from core.synthetic.known_clip import render_known_clip

    render_known_clip(folder, N_FRAMES, SIZE, seed=seed, fps=rate, timecode=timecode)
    return folder


def adopt_tracking(known: Path, target: Path, crop: Any = None) -> None:
    """Stands in for tracking an ingested shot (or one face of it): the known clip's parameters and camera, and
    its crop (or ``crop``)."""
    shutil.copytree(known / "tracking", target / "tracking", dirs_exist_ok=True)
    if crop is not None:
        crop.save(target / "crop.json")
    else:
        shutil.copyfile(known / "crop.json", target / "crop.json")


def decode_sequence(folder: Path, pix_fmt: str = "rgb48le") -> np.ndarray:
    """Every frame of the image sequence ``folder/NAME.%06d.ext`` (ffmpeg decodes), as uint16 arrays."""
    from core.io.ffmpeg import run_ffmpeg
    from core.io.video import probe

    ext = next(p.suffix for p in sorted(folder.iterdir()) if p.suffix in (".png", ".exr"))
    first = sorted(folder.glob(f"*{ext}"))[0]
    info = probe(first, count_frames=False)
    proc = run_ffmpeg(["-v", "error", "-start_number", first.stem.rsplit(".", 1)[1], "-i",
                       str(folder / f"{folder.name}.%06d{ext}"), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
    channels = {"rgb48le": 3, "rgba64le": 4, "gray16le": 1}[pix_fmt]
    data = np.frombuffer(proc.stdout, "<u2").astype(np.uint16)
    return data.reshape((-1, info.height, info.width, channels)[:4 if channels > 1 else 3])


def ingest_shot(ws: Any, shot: str, video: Path, **config: Any) -> dict[str, Any]:
    from core.ingest.ingest import IngestConfig, ingest

    detector = config.pop("detector", None)
    return ingest(ws, video, shot=shot, config=IngestConfig(preset="ultrafast", **config), detector=detector).record


# -- timing ----------------------------------------------------------------------------------------

def test_ntsc_shots_keep_rate_frame_count_and_timecode(shared_trained_actor, tmp_path: Path) -> None:
    """A 30000/1001 shot (10-bit ProRes camera file, drop-frame timecode) and a 24000/1001 one (H.264), ingested
    and dubbed: same exact rate, same frame count, timecode carried; the 10-bit plate is exact in 16-bit PNG."""
    from core.io.video import VideoWriter, iter_frames, probe
    from core.tracking.result import TrackedClip

    ws = shared_trained_actor
    audio = dub_audio(tmp_path / "line.wav", 1.2)
    # 30000/1001: a 10-bit ProRes 422 HQ camera file made from a known clip
    known30 = known_source(tmp_path / "k30", Fraction(30000, 1001), timecode="01:00:00;00")
    camera30 = tmp_path / "cam30.mov"
    with VideoWriter(camera30, Fraction(30000, 1001), codec="prores422hq", timecode="01:00:00;00") as writer:
        for frame in iter_frames(known30 / "video.mp4"):
            writer.write(frame.astype(np.uint16) * 257)
    assert probe(camera30).bit_depth == 10
    rec30 = ingest_shot(ws, "ntsc30", camera30, landmarks=False)
    assert (rec30["fps_num"], rec30["fps_den"], rec30["frames"]) == (30000, 1001, N_FRAMES)
    assert rec30["timecode"] == "01:00:00;00" and rec30["source_frames"]
    adopt_tracking(known30, ws.shot_dir("ntsc30"))
    assert TrackedClip.load(ws.shot_dir("ntsc30")).rate == Fraction(30000, 1001)
    out30 = outputs(ws, "dub", {"actor": "a", "shot": "ntsc30", "audio": str(audio), "length": "shot",
                                "format": "png16", "matte": "sequence", "device": "cpu", "name": "ntsc30"})
    assert (out30["fps_num"], out30["fps_den"], out30["frames"], out30["timecode"]) == (30000, 1001, N_FRAMES,
                                                                                        "01:00:00;00")
    assert out30["plate"]["kind"] == "source" and out30["plate"]["depth"] == 16
    seq = Path(out30["delivery"])
    side = json.loads((seq / f"{seq.name}.json").read_text())
    assert (side["fps_num"], side["fps_den"], side["frames"], side["timecode"]) == (30000, 1001, N_FRAMES,
                                                                                    "01:00:00;00")
    frames, matte = decode_sequence(seq), decode_sequence(Path(out30["matte"]), "gray16le")
    plate = np.stack(list(iter_frames(camera30, depth=16)))  # the 10-bit plate at full precision
    assert frames.shape == plate.shape == (N_FRAMES, SIZE, SIZE, 3) and matte.shape == (N_FRAMES, SIZE, SIZE)
    outside = matte == 0
    assert 0.2 < outside.mean() < 0.98  # a face was pasted, and not everywhere
    assert np.array_equal(frames[outside], plate[outside])  # bit-exact outside the matte
    assert (frames[matte == 65535] != plate[matte == 65535]).any()
    review = probe(out30["video"])
    assert (review.rate, review.frames, review.timecode) == (Fraction(30000, 1001), N_FRAMES, "01:00:00;00")

    # 24000/1001: an H.264 camera file, dubbed to ProRes 422 HQ with the dub audio's 48 kHz / 24-bit PCM
    known24 = known_source(tmp_path / "k24", Fraction(24000, 1001), seed=0, timecode="00:59:58:00")
    rec24 = ingest_shot(ws, "ntsc24", known24 / "video.mp4", landmarks=False)
    assert (rec24["fps_num"], rec24["fps_den"], rec24["frames"], rec24["timecode"]) == (24000, 1001, N_FRAMES,
                                                                                        "00:59:58:00")
    adopt_tracking(known24, ws.shot_dir("ntsc24"))
    out24 = outputs(ws, "dub", {"actor": "a", "shot": "ntsc24", "audio": str(audio), "length": "shot",
                                "format": "prores422hq", "device": "cpu", "name": "ntsc24"})
    for path in (out24["delivery"], out24["video"]):
        info = probe(path)
        assert (info.rate, info.frames, info.timecode) == (Fraction(24000, 1001), N_FRAMES, "00:59:58:00"), path
    mov = probe(out24["delivery"])
    assert (mov.codec, mov.pix_fmt, mov.audio_codec, mov.audio_sample_rate) == ("prores", "yuv422p10le",
                                                                                "pcm_s24le", 48000)
    assert len(list(iter_frames(out24["delivery"], depth=16))) == N_FRAMES  # it decodes


# -- formats, exactness, mattes --------------------------------------------------------------------

def test_png16_exr_and_prores4444_from_an_8bit_plate(shared_trained_actor, tmp_path: Path) -> None:
    """On the fixture's shot (its H.264 working copy is the plate: no source file): a 16-bit PNG sequence equals
    the plate bit-exactly outside its alpha matte; EXR and ProRes 4444 with the matte as alpha decode."""
    from core.delivery.writer import enable_openexr
    from core.io.video import iter_frames, probe

    ws = shared_trained_actor
    audio = dub_audio(tmp_path / "line.wav", 0.9, rate=44100, subtype="PCM_16")
    plate = np.stack(list(iter_frames(ws.shot_dir("s") / "video.mp4")))
    common = {"actor": "a", "shot": "s", "audio": str(audio), "length": "shot", "device": "cpu"}

    png = outputs(ws, "dub", {**common, "format": "png16", "matte": "alpha", "name": "png"})
    assert png["plate"]["kind"] == "working" and "working copy" in png["plate"]["note"]
    rgba = decode_sequence(Path(png["delivery"]), "rgba64le")
    assert rgba.shape == (N_FRAMES, SIZE, SIZE, 4)
    outside = rgba[..., 3] == 0
    assert 0.2 < outside.mean() < 0.98
    assert np.array_equal(rgba[..., :3][outside], plate.astype(np.uint16)[outside] * 257)
    assert (Path(png["delivery"]) / "dubbed.wav").is_file() and Path(png["delivery"]).name == "dubbed"

    exr = outputs(ws, "dub", {**common, "format": "exr", "matte": "alpha", "name": "exr"})
    cv2 = enable_openexr()
    files = sorted(Path(exr["delivery"]).glob("*.exr"))
    assert len(files) == N_FRAMES
    first = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.float32 and first.shape == (SIZE, SIZE, 4)
    rgb, alpha = first[..., 2::-1], first[..., 3]
    assert np.array_equal(rgb[alpha == 0], plate[0][alpha == 0].astype(np.float32) / 255)
    assert decode_sequence(Path(exr["delivery"])).shape == (N_FRAMES, SIZE, SIZE, 3)  # ffmpeg decodes it too

    pro = outputs(ws, "dub", {**common, "format": "prores4444", "matte": "alpha", "name": "p4444"})
    info = probe(pro["delivery"])
    assert info.codec == "prores" and info.pix_fmt.startswith("yuva444p") and info.frames == N_FRAMES
    assert info.audio_codec == "pcm_s16le" and info.audio_sample_rate == 44100
    assert len(list(iter_frames(pro["delivery"]))) == N_FRAMES

    bad = error(ws, "dub", {**common, "format": "prores422hq", "matte": "alpha"})
    assert bad.code == "bad_params" and "alpha" in bad.message


# -- which face ------------------------------------------------------------------------------------

def test_two_face_shot_dubs_only_the_chosen_face(shared_trained_actor, tmp_path: Path) -> None:
    from core.io.video import VideoWriter, iter_frames
    from core.landmarks.crop import CropTransform
    from core.landmarks.detector import MultiGroundTruthDetector
    from core.synthetic.known_clip import known_clip_landmarks

    ws = shared_trained_actor
    left, right = known_source(tmp_path / "left", Fraction(25), seed=0), known_source(tmp_path / "right",
                                                                                       Fraction(25), seed=1)
    two = tmp_path / "two.mp4"
    with VideoWriter(two, 25, crf=10, preset="ultrafast") as writer:
        for a, b in zip(iter_frames(left / "video.mp4"), iter_frames(right / "video.mp4"), strict=True):
            writer.write(np.concatenate([a, b], axis=1))
    lmk_left, lmk_right = known_clip_landmarks(left), known_clip_landmarks(right) + np.float32([SIZE, 0])
    detector = MultiGroundTruthDetector([lmk_right, lmk_left])  # detection order is not the id order
    rec = ingest_shot(ws, "two", two, max_faces=2, detector=detector)
    assert [f["id"] for f in rec["faces"]] == [0, 1] and "landmarks" not in rec
    shot_dir = ws.shot_dir("two")
    faces = json.loads((shot_dir / "faces.json").read_text())
    assert P.face_at(faces, 5, 0.25, 0.5) == 0 and P.face_at(faces, 5, 0.75, 0.5) == 1  # left to right
    assert P.face_at(faces, 5, 0.5, 0.02) is None
    # "track" face 1 (the right one): the known clip's parameters in the right half's crop
    adopt_tracking(right, shot_dir / "faces" / "1", CropTransform(SIZE, 0, SIZE, SIZE, 2 * SIZE, SIZE))
    audio = dub_audio(tmp_path / "line.wav", 0.9)
    common = {"actor": "a", "shot": "two", "audio": str(audio), "length": "shot", "device": "cpu"}
    choose = error(ws, "dub", common)
    assert choose.code == "face_choice" and "face 0" in choose.message and "face 1" in choose.message
    assert "--face" in choose.hint
    assert error(ws, "dub", {**common, "face": 0}).code == "missing_input"  # face 0 was not tracked
    out = outputs(ws, "dub", {**common, "face": 1, "format": "png16", "name": "two-r"})
    frames = decode_sequence(Path(out["delivery"]))
    plate = np.stack(list(iter_frames(two))).astype(np.uint16) * 257
    assert np.array_equal(frames[:, :, :SIZE], plate[:, :, :SIZE])  # the other face: the plate, bit for bit
    assert not np.array_equal(frames[:, :, SIZE:], plate[:, :, SIZE:])  # the chosen face was dubbed


# -- consent and provenance ------------------------------------------------------------------------

def test_dub_needs_consent_and_records_provenance(shared_trained_actor, tmp_path: Path) -> None:
    from core.delivery.provenance import file_sha256, read_metadata

    ws = shared_trained_actor
    shutil.copytree(ws.actor_dir("a") / "models", ws.actor_dir("b") / "models")  # b: a's models, no consent
    manifest = ws.read_manifest()
    ws.update(lambda m: m["actors"].__setitem__("b", {"clips": manifest["actors"]["a"]["clips"],
                                                      "models": manifest["actors"]["a"]["models"]}))
    audio = dub_audio(tmp_path / "line.wav", 0.6)
    params = {"actor": "b", "shot": "s", "audio": str(audio), "device": "cpu", "name": "b1"}
    refused = error(ws, "dub", params)
    assert refused.code == "no_consent" and P.is_user_error(refused.code)
    assert "consent" in refused.message and "emodub actor consent" in refused.hint and "--actor b" in refused.hint
    assert "b1" not in ws.read_manifest()["renders"] and not ws.render_dir("b1").exists()

    document = tmp_path / "release-b.pdf"
    document.write_bytes(b"%PDF signed release")
    consent = outputs(ws, "actor.consent", {"actor": "b", "consented_by": "Bea Example", "date": "2026-11-30",
                                            "scope": "German dub of the test film", "document": str(document)})
    assert consent["document_sha256"] == file_sha256(document)
    assert error(ws, "actor.consent", {"actor": "b", "consented_by": "X", "scope": "y",
                                       "document": "z"}).code == "exists"
    out = outputs(ws, "dub", params)
    report = json.loads(Path(out["report"]).read_text())
    prov = report["provenance"]
    from core import __version__

    assert prov["engine_version"] == __version__ and prov["actor"] == "b"
    assert prov["consent"]["id"] == consent["consent"] and prov["consent"]["consented_by"] == "Bea Example"
    models = ws.actor_dir("b") / "models"
    assert prov["models"]["a2e"]["sha256"] == file_sha256(models / "a2e" / "checkpoint.pt")
    renderer = prov["models"]["renderer"]
    assert renderer["sha256"] == file_sha256(models / renderer["name"] / "checkpoint.pt")
    assert consent["consent"] in (Path(out["report"]).parent / "report.md").read_text()
    tags = read_metadata(out["video"])
    assert tags["emodub_version"] == __version__ and tags["emodub_actor"] == "b"
    assert json.loads(tags["emodub_consent"])["id"] == consent["consent"]
    assert json.loads(tags["emodub_models"])["renderer"] == renderer["sha256"]
