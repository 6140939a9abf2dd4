"""The synthetic actor on screen: clips that read back right, landmarks where the model says, emotions
that move the right parameters, determinism for a seed, chunked rendering and anti-aliasing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from core.expression.emotions import EMOTIONS, mead_emotion_vector
from core.io.video import iter_frames, probe
from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.synthetic.actor import (
    ActorConfig,
    SyntheticActor,
    background_texture,
    build_corpus,
    head_pose,
    read_ground_truth,
    render_clip,
)
from core.synthetic.corpus import build_param_corpus, synthesize_clip
from core.synthetic.phonemes import random_sentence
from core.workspace import Workspace

SIZE, FPS, SR = 64, 25.0, 16000
PARAM_KEYS = ("expression", "jaw_pose", "neck_pose", "eye_pose", "rotation", "translation")


@pytest.fixture(scope="module")
def actor() -> SyntheticActor:
    return SyntheticActor(ActorConfig(size=SIZE))


def _clip(seed: int = 0, emotion: str = "happy", level: int = 3, words: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    sentence = random_sentence(rng, words)
    return synthesize_clip(sentence, mead_emotion_vector(emotion, level), FPS, rng, SR)


def _params(clip: dict, identity: np.ndarray | None = None) -> dict[str, np.ndarray]:
    params = {k: clip[k] for k in PARAM_KEYS}
    n = clip["n_frames"]
    params["shape"] = np.zeros((n, 0), np.float32) if identity is None else np.repeat(identity[None], n, 0)
    return params


def test_clip_reads_back_with_right_frames_duration_and_rate(tmp_path: Path, actor: SyntheticActor) -> None:
    clip = _clip()
    params = _params(clip, actor.identity)
    ws = Workspace.create(tmp_path / "ws")
    vec = mead_emotion_vector("happy", 3)
    record = render_clip(ws, actor, "synthetic", "take1", params, clip["wave"], SR, clip["timing"], vec)
    n = clip["n_frames"]
    assert ws.validate() == []
    folder = ws.clip_dir("synthetic", "take1")
    for rel in ("video.mp4", "audio.wav", "ground_truth/params.npz", "ground_truth/landmarks.npz",
                "ground_truth/phonemes.json", "ground_truth/camera.json", "ground_truth/emotion.npy"):
        assert (folder / rel).is_file(), rel
    info = probe(folder / "video.mp4")
    assert info.frames_exact and info.frames == n == record["frames"]
    assert info.fps == pytest.approx(FPS) and (info.width, info.height) == (SIZE, SIZE)
    assert info.has_audio and info.audio_sample_rate == SR
    wav = sf.info(str(folder / "audio.wav"))
    assert (wav.samplerate, wav.channels, wav.subtype) == (SR, 1, "PCM_16")
    # n = ceil(duration * fps): the video covers the audio and ends within one frame after it.
    assert 0.0 <= n / FPS - wav.duration < 1.0 / FPS
    assert record["duration_s"] == pytest.approx(wav.duration, abs=1e-6)
    assert record["emotion"] == {"happy": pytest.approx(1.0)} and record["synthetic"] is True
    decoded = list(iter_frames(folder / "video.mp4"))
    assert len(decoded) == n
    reference = actor.render_chunk({k: v[:1] for k, v in params.items()}).frames[0]
    assert np.abs(decoded[0].astype(float) - reference).mean() < 4.0  # H.264 at crf 17
    gt = read_ground_truth(folder)
    assert gt["emotion"].shape == (n, len(EMOTIONS)) and np.allclose(gt["emotion"], vec)
    assert gt["lmk68"].shape == (n, 68, 2) and gt["visible"].shape == (n, 68)
    assert gt["phonemes"][-1][1] == pytest.approx(clip["timing"].duration)
    assert np.array_equal(gt["params"]["shape"], params["shape"])
    assert np.allclose(gt["actor"]["identity"], actor.identity)
    assert np.allclose(gt["actor"]["sh"], actor.sh[0].numpy(), atol=1e-6)


def test_landmarks_project_where_the_model_says(tmp_path: Path, actor: SyntheticActor) -> None:
    clip = _clip(seed=3, emotion="surprised", words=2)
    params = _params(clip, actor.identity)
    ws = Workspace.create(tmp_path / "ws")
    render_clip(ws, actor, "synthetic", "lm", params, clip["wave"], SR, clip["timing"],
                mead_emotion_vector("surprised", 3))
    gt = read_ground_truth(ws.clip_dir("synthetic", "lm"))
    cam = gt["camera"]
    assert (cam["width"], cam["height"]) == (SIZE, SIZE)
    # Independent pinhole projection of the model's 3D landmarks with camera.json (its principal point puts
    # pixel centres at +0.5; landmarks.npz uses the detectors' convention, centres at integers).
    points = actor.model(actor.face_params(gt["params"])).landmarks.double().numpy()  # (N, 68, 3)
    R, t = np.asarray(cam["R"]), np.asarray(cam["t"])
    p_cam = points @ R.T + t
    assert (p_cam[..., 2] > 0).all()
    u = cam["fx"] * p_cam[..., 0] / p_cam[..., 2] + cam["cx"]
    v = cam["fy"] * p_cam[..., 1] / p_cam[..., 2] + cam["cy"]
    assert np.abs(np.stack([u, v], -1) - 0.5 - gt["lmk68"]).max() < 1e-3
    # Visible landmarks sit on the rendered head (coverage > 0 at their pixel), inside the frame.
    n = len(gt["lmk68"])
    coverage = np.concatenate([c.coverage for c in actor.iter_chunks(gt["params"], chunk=8)])
    lm = gt["lmk68"]
    vis = gt["visible"]
    cols, rows = np.floor(lm[..., 0] + 0.5).astype(int), np.floor(lm[..., 1] + 0.5).astype(int)
    frame = np.repeat(np.arange(n)[:, None], 68, 1)
    assert coverage[frame[vis], rows[vis], cols[vis]].min() > 0
    assert vis[:, 30].all() and vis[:, 36:48].all()  # nose tip and eyes face the camera


def test_turning_the_head_hides_the_far_side(actor: SyntheticActor) -> None:
    params = actor.neutral_params(2)
    params.rotation[1] = torch.as_tensor(head_pose(yaw_deg=45.0))  # face turns to its left (image right)
    rendered = actor.render_chunk(params)
    front, turned = rendered.visible
    # iBUG 42..47 is the face's left eye, 36..41 the right: at 45 degrees the left eye is turned away,
    # the right eye still faces the camera; the nose tip shifts towards the image's right.
    assert front[36:48].all()
    assert turned[36:42].all() and turned[42:48].sum() < 6
    assert rendered.landmarks[1, 30, 0] > rendered.landmarks[0, 30, 0] + 5


def test_emotions_move_the_parameters_they_should(tmp_path: Path, actor: SyntheticActor) -> None:
    ws = Workspace.create(tmp_path / "ws")
    emotions = ("neutral", "happy", "sad", "angry", "surprised")
    build_param_corpus(ws, "synthetic", 1, emotions=emotions, intensities=(1.0,), seed=5,
                       identity=actor.identity)
    idx = {name: i for i, name in enumerate(PROCEDURAL_EXPRESSIONS)}
    clips = {e: read_ground_truth(ws.clip_dir("synthetic", f"s000_{e}" if e == "neutral" else f"s000_{e}_3"))
             for e in emotions}
    mean = {e: c["params"]["expression"].mean(0) for e, c in clips.items()}

    def gain(emotion: str, *names: str) -> float:
        return float(min(mean[emotion][idx[n]] - mean["neutral"][idx[n]] for n in names))

    assert gain("happy", "smile_left", "smile_right", "cheek_raise_left", "cheek_raise_right") > 0.4
    assert gain("sad", "frown_left", "frown_right", "brow_inner_up") > 0.4
    assert gain("angry", "brow_down_left", "brow_down_right", "squint_left", "squint_right") > 0.3
    assert gain("surprised", "brow_up_left", "brow_up_right", "eye_wide_left") > 0.3
    assert mean["happy"][idx["frown_left"]] <= mean["neutral"][idx["frown_left"]] + 1e-6
    assert np.allclose(clips["angry"]["emotion"][:, EMOTIONS.index("angry")], 1.0)
    # ... and the geometry follows: brows rise with surprise, mouth corners rise with a smile (image y down),
    # measured against the eyes so head motion and speech do not matter.
    lm = {e: actor.landmarks_2d(c["params"]) for e, c in clips.items()}

    def brow_height(e: str) -> float:
        return float((lm[e][:, 36:48, 1].mean(1) - lm[e][:, 17:27, 1].mean(1)).mean())

    def corner_height(e: str) -> float:
        return float((lm[e][:, 36:48, 1].mean(1) - lm[e][:, [48, 54], 1].mean(1)).mean())

    assert brow_height("surprised") > brow_height("neutral") + 0.3
    assert brow_height("angry") < brow_height("neutral") - 0.1
    assert corner_height("happy") > corner_height("neutral") + 0.1


def test_same_seed_same_corpus_other_seed_other_corpus(tmp_path: Path, actor: SyntheticActor) -> None:
    def build(name: str, seed: int) -> Path:
        ws = Workspace.create(tmp_path / name)
        clips = build_corpus(ws, actor, n_sentences=1, emotions=("fear",), intensities=(0.66,), seed=seed,
                             words=(1, 2))
        return ws.clip_dir("synthetic", clips[0].name)

    a, b, c = build("a", 11), build("b", 11), build("c", 12)
    gt_a, gt_b, gt_c = (read_ground_truth(p) for p in (a, b, c))
    for key in PARAM_KEYS + ("shape",):
        assert np.array_equal(gt_a["params"][key], gt_b["params"][key]), key
    assert np.array_equal(gt_a["lmk68"], gt_b["lmk68"])
    assert np.array_equal(sf.read(a / "audio.wav")[0], sf.read(b / "audio.wav")[0])
    first_a = next(iter_frames(a / "video.mp4"))
    assert np.array_equal(first_a, next(iter_frames(b / "video.mp4")))
    assert gt_a["phonemes"] != gt_c["phonemes"] or not np.array_equal(gt_a["params"]["rotation"],
                                                                       gt_c["params"]["rotation"])
    # The actor itself is deterministic: a second instance renders the same pixels.
    again = SyntheticActor(ActorConfig(size=SIZE))
    params = gt_a["params"]
    first = {k: v[:2] for k, v in params.items() if k != "expr_names"}
    assert np.array_equal(actor.render_chunk(first).frames, again.render_chunk(first).frames)
    assert json.loads((a / "ground_truth" / "camera.json").read_text()) == actor.camera_json()


def test_chunked_rendering_matches_one_batch(actor: SyntheticActor) -> None:
    params = _params(_clip(seed=7, emotion="sad", level=2, words=1), actor.identity)
    params = {k: v[:7] for k, v in params.items()}
    whole = actor.render_chunk(params).frames
    streamed = np.stack(list(actor.render_frames(params, chunk=3)))
    assert streamed.shape == (7, SIZE, SIZE, 3) and streamed.dtype == np.uint8
    assert np.abs(streamed.astype(int) - whole).max() <= 1
    assert not np.array_equal(whole[0], whole[-1])  # the face moves


def test_supersampling_softens_the_silhouette(actor: SyntheticActor) -> None:
    rendered = actor.render_chunk(actor.neutral_params(1))
    coverage = rendered.coverage[0]
    partial = (coverage > 0.05) & (coverage < 0.95)
    assert partial.sum() > 40  # anti-aliased edge pixels along the outline
    assert (coverage > 0.95).mean() > 0.15  # the head fills a good part of the frame
    aliased = SyntheticActor(ActorConfig(size=SIZE, supersample=1)).render_chunk(actor.neutral_params(1))
    assert set(np.unique(aliased.coverage)) <= {0.0, 1.0}


def test_background_is_textured_static_and_seeded() -> None:
    a, b, c = background_texture(64, 0), background_texture(64, 0), background_texture(64, 1)
    assert a.shape == (64, 64, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, b) and not np.allclose(a, c)
    # Texture, not a flat gradient: detail left after removing each row's mean.
    assert (a - a.mean(1, keepdims=True)).std() > 0.01
    # The same pattern at another size.
    big = background_texture(128, 0).reshape(64, 2, 64, 2, 3).mean((1, 3))
    assert np.abs(big - a).mean() < 0.02


def test_bad_input_is_refused_clearly(actor: SyntheticActor) -> None:
    with pytest.raises(ValueError, match="even"):
        SyntheticActor(ActorConfig(size=63))
    with pytest.raises(ValueError, match="columns"):
        actor.render_chunk({"expression": np.zeros((2, 5), np.float32)})
    with pytest.raises(ValueError, match="rotation"):
        actor.render_chunk({"expression": np.zeros((2, len(PROCEDURAL_EXPRESSIONS)), np.float32),
                            "rotation": np.zeros((3, 3), np.float32)})
