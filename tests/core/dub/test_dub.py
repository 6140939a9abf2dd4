"""The dubbing pipeline end to end on a tiny tracked actor: a2e + renderer trained for a few steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.dub.pipeline import colour_match, source_indices
from core.jobs import protocol as P
from core.jobs.runner import run_job
from core.render.masks import expand_mask, feather, region_mask


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
    from core.dub.pipeline import DubConfig, dub
    from core.io.audio import write_wav
    from core.io.video import iter_frames
    from core.render.masks import NON_FACE_REGIONS as PASTE_EXCLUDE
    from core.tracking.result import TrackedClip

    ws = trained_actor
    write_wav(tmp_path / "a.wav", (0.2 * np.sin(np.arange(12000) / 7.0)).astype(np.float32), 16000)
    outs = {mode: dub(ws, "a", "s", tmp_path / "a.wav", None, out=tmp_path / f"{mode}.mp4",
                      config=DubConfig(paste_region=mode, renderer_name="neural_texture"), render_name=mode)
            for mode in ("face", "head")}
    assert outs["face"]["paste_region"] == "face" and outs["head"]["paste_region"] == "head"
    shot = np.stack(list(iter_frames(ws.shot_dir("s") / "video.mp4"))).astype(float)
    clip = TrackedClip.load(ws.shot_dir("s"))
    model = clip.face_model()
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


def test_frames_without_a_face_keep_the_plate(trained_actor, tmp_path: Path) -> None:
    """Frames where the shot's face left the picture (flagged by the landmark stage) are the plate, counted in
    the report; frames with a face are dubbed."""
    from core.io.audio import write_wav
    from core.io.video import iter_frames

    ws = trained_actor
    flagged = np.zeros(24, bool)
    flagged[8:14] = True
    np.savez(ws.shot_dir("s") / "landmarks.npz", flagged=flagged)
    write_wav(tmp_path / "a.wav", (0.3 * np.sin(np.arange(15360) / 5.0)).astype(np.float32), 16000)
    done = run(P.JobSpec("dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "a.wav"), "length": "shot",
                                 "device": "cpu", "name": "gone"}, str(ws.root)))
    assert done.outputs["faceless_frames"] == 6
    assert json.loads(Path(done.outputs["report"]).read_text())["faceless_frames"] == 6
    from core.tracking.result import TrackedClip

    clip = TrackedClip.load(ws.shot_dir("s"))
    with torch.no_grad():
        face = region_mask(clip.face_model(), clip.params, clip.camera)[:, 0].numpy() > 0  # (24, 64, 64)
    dubbed = np.stack(list(iter_frames(done.outputs["video"]))).astype(float)
    plate = np.stack(list(iter_frames(ws.shot_dir("s") / "video.mp4"))).astype(float)
    inside = np.array([np.abs(dubbed[k] - plate[k]).mean(-1)[face[k]].mean() for k in range(24)])
    # the face region of a faceless frame is the plate up to H.264 re-encoding; a dubbed one is not
    assert inside[flagged].max() < 5.0
    assert inside[~flagged].min() > 2 * inside[flagged].max()


def test_render_names_do_not_collide_across_shots(trained_actor, tmp_path: Path) -> None:
    from core.io.audio import write_wav

    ws = trained_actor
    shutil.copytree(ws.clip_dir("a", "c0"), ws.shot_dir("s2"))
    ws.set_shot("s2", {"video": "shots/s2/video.mp4", "fps": 25, "frames": 24})
    write_wav(tmp_path / "a.wav", np.zeros(4000, np.float32), 16000)
    params = {"actor": "a", "audio": str(tmp_path / "a.wav"), "device": "cpu", "name": "take"}
    run(P.JobSpec("dub", {**params, "shot": "s"}, str(ws.root)))
    events: list[P.Event] = []
    assert run_job(P.JobSpec("dub", {**params, "shot": "s2"}, str(ws.root)), events.append) == P.EXIT_ERROR
    assert events[-1].code == "bad_params" and "already holds a dub of shot 's'" in events[-1].message
    assert ws.read_manifest()["renders"]["take"]["shot"] == "s"
    # unnamed dubs of the same shot in the same second get distinct names
    first = run(P.JobSpec("dub", {**params, "shot": "s2", "name": None}, str(ws.root))).outputs["render"]
    second = run(P.JobSpec("dub", {**params, "shot": "s2", "name": None}, str(ws.root))).outputs["render"]
    assert first != second and first.startswith("s2-") and second.startswith("s2-")


def test_the_same_shot_dubs_through_lipnerf_on_the_same_code_path(trained_actor, tmp_path: Path) -> None:
    """A second renderer variant trained on the same actor: --renderer picks it, the dub reports it, and the
    actor's best (no --renderer) is the one with the higher held-out face PSNR."""
    from core.io.audio import write_wav

    ws = trained_actor
    run(P.JobSpec("train.renderer", {"actor": "a", "renderer": "lipnerf", "iterations": 3, "device": "cpu",
                                     "options": {"render_size": 32, "rays_per_step": 128, "samples": 8}},
                  str(ws.root)))
    write_wav(tmp_path / "a.wav", (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), 16000)
    params = {"actor": "a", "shot": "s", "audio": str(tmp_path / "a.wav"), "device": "cpu"}
    lip = run(P.JobSpec("dub", {**params, "renderer": "lipnerf", "name": "lip"}, str(ws.root))).outputs
    assert lip["renderer"]["variant"] == "lipnerf" and lip["frames"] == 13
    assert 0 <= lip["chin_neck_gap_px"]["mean"] <= lip["chin_neck_gap_px"]["max"] <= 64  # pixels of a 64 px crop
    models = ws.read_manifest()["actors"]["a"]["models"]
    best = max(("neural_texture", "lipnerf"), key=lambda m: models[m]["held_out"]["face_psnr"])
    auto = run(P.JobSpec("dub", {**params, "name": "auto"}, str(ws.root))).outputs
    assert auto["renderer"]["model"] == best


@pytest.mark.parametrize("variant, options", [
    ("nerf_ad", {"face_size": 16, "attention_steps": 3, "fusion_steps": 3, "references": 2, "audio_window": 4}),
    ("jean", {"pretrain_steps": 5, "expression_steps": 2, "audio_window": 4}),
])
def test_the_audio_and_emotion_driven_nerfs_dub_with_keyframed_emotion(trained_actor, tmp_path: Path, variant: str,
                                                                        options: dict) -> None:
    """JEAN and NeRF-AD take their expression from the keyframed curves in a dub (driven batches)."""
    from core.io.audio import write_wav

    ws = trained_actor
    small = {"render_size": 32, "rays_per_step": 128, "samples": 8, "occupancy_resolution": 16,
             "triplane_resolutions": (8, 16), "width": 16, "depth": 2}
    run(P.JobSpec("train.renderer", {"actor": "a", "renderer": variant, "iterations": 2, "device": "cpu",
                                     "options": {**small, **options}}, str(ws.root)))
    write_wav(tmp_path / "a.wav", (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), 16000)
    out = run(P.JobSpec("dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "a.wav"), "device": "cpu",
                                "renderer": variant, "name": variant, "emotions": "happy:0.8"}, str(ws.root))).outputs
    assert out["renderer"]["variant"] == variant and out["frames"] == 13
