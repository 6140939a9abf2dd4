"""The dubbing pipeline end to end on a tiny tracked actor: a2e + renderer trained for a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.dub.pipeline import colour_match, feather, source_indices
from core.jobs import protocol as P
from core.jobs.runner import run_job


def test_source_indices_loop_and_hold() -> None:
    assert source_indices(7, 3, "loop").tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert source_indices(5, 3, "hold").tolist() == [0, 1, 2, 2, 2]
    assert source_indices(2, 3, "hold").tolist() == [0, 1]


def test_feather_stays_inside_the_mask_and_colour_match_shifts_means() -> None:
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., 5:15, 5:15] = 1
    soft = feather(mask, 2)
    assert soft.max() == 1 and (soft[mask == 0] == 0).all() and 0 < soft[0, 0, 5, 10] < 1
    rendered, reference = torch.full((1, 3, 20, 20), 0.4), torch.full((1, 3, 20, 20), 0.45)
    assert torch.allclose(colour_match(rendered, reference, mask)[..., 10, 10], torch.full((1, 3), 0.45))


def run(spec: P.JobSpec) -> P.Event:
    events: list[P.Event] = []
    assert run_job(spec, events.append) == P.EXIT_OK, events[-1]
    return events[-1]


def test_dub_job_end_to_end(trained_actor, tmp_path: Path) -> None:
    from core.io.audio import write_wav
    from core.io.video import iter_frames, probe

    ws = trained_actor
    sr = 22050
    seconds = 1.5  # longer than the 24-frame shot: frames loop
    t = np.arange(int(seconds * sr)) / sr
    write_wav(tmp_path / "dub.wav", (0.3 * np.sin(2 * np.pi * 180 * t) * (t % 0.4 < 0.2)).astype(np.float32), sr)
    n = int(np.ceil(seconds * 25))
    curves = {"format": "emodub-emotion-curves", "version": 1, "fps": 25, "frame_start": 0,
              "per_frame": {"happy": np.linspace(0, 1, n).round(4).tolist()}}
    done = run(P.JobSpec("dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "dub.wav"),
                                 "emotions": curves, "device": "cpu", "name": "r1"}, str(ws.root)))
    out = done.outputs
    assert out["frames"] == n and out["shot_frames"] == 24
    info = probe(out["video"])
    assert info.has_audio and abs(info.duration_s - seconds) < 0.1
    frames = list(iter_frames(out["video"]))
    assert len(frames) == n and frames[0].shape == (64, 64, 3)
    # Outside the face the plate is untouched (up to H.264): compare a background corner with the shot.
    shot = list(iter_frames(ws.shot_dir("s") / "video.mp4"))
    for k in (0, 30):  # frame 30 shows shot frame 6 (loop)
        diff = np.abs(frames[k][:8, :8].astype(int) - shot[k % 24][:8, :8].astype(int))
        assert diff.mean() < 4
    report = json.loads(Path(out["report"]).read_text())
    assert report["emotions"]["happy"]["max"] == pytest.approx(1.0, abs=1e-3)
    assert {"peak_corr", "offset_frames"} <= set(report["lipsync_proxy"])
    # The fixture's clips carry no emotion label: happy has no footage and comes from the FACS prior.
    assert report["emotions"]["happy"]["source"] == "prior"
    assert out["emotion_sources"] == {"happy": "prior"}
    assert (Path(out["report"]).parent / "report.md").exists() and Path(report["plot"]).exists()
    assert ws.read_manifest()["renders"]["r1"]["frames"] == n


def test_dub_errors_are_clear(trained_actor, tmp_path: Path) -> None:
    ws = trained_actor
    events: list[P.Event] = []
    code = run_job(P.JobSpec("dub", {"actor": "a", "shot": "nope", "audio": str(tmp_path / "x.wav")},
                             str(ws.root)), events.append)
    assert code == P.EXIT_ERROR and "no shot 'nope'" in events[-1].message
    events.clear()
    code = run_job(P.JobSpec("dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "missing.wav"),
                                     "emotions": "joyful:0.5"}, str(ws.root)), events.append)
    assert code == P.EXIT_ERROR and events[-1].message
    events.clear()
    from core.io.audio import write_wav

    write_wav(tmp_path / "ok.wav", np.zeros(8000, np.float32), 16000)
    code = run_job(P.JobSpec("dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "ok.wav"),
                                     "renderer_model": "renderer_static"}, str(ws.root)), events.append)
    assert code == P.EXIT_ERROR and events[-1].code == "missing_input" and "renderer_static" in events[-1].message


def test_face_paste_keeps_the_plate_outside_the_face(trained_actor, tmp_path: Path) -> None:
    """paste_region "face" leaves scalp, ears and neck as the plate; "head" replaces them as well."""
    from core.dub.pipeline import PASTE_EXCLUDE, DubConfig, dub
    from core.io.audio import write_wav
    from core.io.video import iter_frames
    from core.neural_texture.data import TrackedClip
    from core.neural_texture.model import expand_mask
    from core.neural_texture.pipeline import face_model_for, region_mask

    ws = trained_actor
    write_wav(tmp_path / "a.wav", (0.2 * np.sin(np.arange(12000) / 7.0)).astype(np.float32), 16000)
    outs = {mode: dub(ws, "a", "s", tmp_path / "a.wav", None, out=tmp_path / f"{mode}.mp4",
                      config=DubConfig(paste_region=mode), render_name=mode)
            for mode in ("face", "head")}
    assert outs["face"]["paste_region"] == "face" and outs["head"]["paste_region"] == "head"
    shot = np.stack(list(iter_frames(ws.shot_dir("s") / "video.mp4"))).astype(float)
    clip = TrackedClip.load(ws.shot_dir("s"))
    model = face_model_for(ws.shot_dir("s"))
    # Pixels of scalp/ears/neck well away from the face (the face region grown by 8 px excluded).
    with torch.no_grad():
        face = region_mask(model, clip.params, clip.camera, exclude=PASTE_EXCLUDE)
        outer = region_mask(model, clip.params, clip.camera, include=PASTE_EXCLUDE) * (1 - expand_mask(face, 8))
    outer = outer[:, 0].numpy() > 0
    assert outer.sum() > 50
    error = {}
    for mode, result in outs.items():
        frames = np.stack(list(iter_frames(result["video"]))).astype(float)
        n = min(len(frames), len(shot))
        error[mode] = np.abs(frames[:n] - shot[:n]).mean(-1)[outer[:n]].mean()
    # Up to H.264 noise at 64 px (a few levels) in face mode; an untrained renderer's pixels in head mode.
    assert error["face"] < 6.0 and error["face"] < 0.1 * error["head"]
