"""Holding out the end of every clip (``train a2e --holdout``): an actor filmed in one long take still gets a
held-out measure, and the mouth-opening correlation through the face model that the eval reports."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.expression.a2e import A2EConfig, A2EModel
from core.expression.a2e_data import TAIL, WARP_MARK, ClipData, cut_tails, load_actor_clips
from core.expression.a2e_eval import evaluate_a2e, mouth_open_corr
from core.expression.a2e_train import train_a2e
from core.morphable.data import PROCEDURAL_EXPRESSIONS, FaceParams
from core.synthetic.corpus import build_param_corpus
from core.workspace import Workspace


def _clip(n: int) -> ClipData:
    params = {"expression": np.arange(n, dtype=np.float32)[:, None].repeat(3, 1), "shape": np.zeros(5, np.float32)}
    return ClipData("c", "g", np.zeros((n, 4, 2), np.float32), np.arange(n, dtype=np.float32)[:, None],
                    np.zeros((n, 7), np.float32), {}, False, params)


def test_cut_tails_splits_every_frame_aligned_array_once() -> None:
    heads, tails = cut_tails([_clip(20)], 0.25)
    (head,), (tail,) = heads, tails
    assert (head.name, tail.name, tail.group) == ("c", "c" + TAIL, "g" + TAIL)
    assert head.n_frames == 15 and tail.n_frames == 5 and tail.targets[0, 0] == 15  # the last quarter, in order
    assert head.first_frame == 0 and tail.first_frame == 15  # where in the clip each part starts
    assert head.params["expression"].shape == (15, 3) and tail.params["expression"].shape == (5, 3)
    assert head.params["shape"].shape == (5,)  # not per frame: kept whole
    short_heads, short_tails = cut_tails([_clip(1)], 0.25)  # too short to give both: kept whole
    assert short_heads[0].n_frames == 1 and short_tails == []
    assert cut_tails([_clip(20)], 0.0)[1] == []


def test_training_holds_out_each_clips_end_and_the_eval_measures_it(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ws = Workspace.create(tmp_path / "ws")
    build_param_corpus(ws, "p", 2, emotions=("neutral",), intensities=(1.0,), seed=1, words=(2, 3))
    config = A2EConfig(encoder_hidden=16, lstm_hidden=16, decoder_hidden=16, disc_hidden=8, batch_size=4,
                       seq_len=8, iterations=3, checkpoint_every=3, val_every=3, tail_holdout=0.3)
    train_a2e(ws, "p", config)
    split = json.loads((ws.model_dir("p", "a2e") / "config.json").read_text())["split"]
    names = sorted(ws.read_manifest()["actors"]["p"]["clips"])
    assert sorted(n for n in split["train"] if WARP_MARK not in n) == names  # + their voice-warped copies
    assert sorted(split["val"]) == [n + TAIL for n in names]
    result = evaluate_a2e(ws, "p", ablation_name=None)
    model = A2EModel.load(ws.model_dir("p", "a2e"))
    whole, _, _ = load_actor_clips(ws, "p", model.extractor, "auto", False)
    expected = sum(c.n_frames - int(round(c.n_frames * 0.7)) for c in whole)
    assert result["frames"] == expected and np.isfinite(result["jaw_corr"])
    assert result["mouth_open_corr"] is None  # ground-truth parameters: no tracked face model to pose


def test_mouth_open_corr_is_one_for_the_truth_and_low_for_another_clips_mouth() -> None:
    from core.morphable.registry import load_model

    face_model = load_model("procedural", resolution="small")
    E = len(PROCEDURAL_EXPRESSIONS)
    rng = np.random.default_rng(0)
    n = 60
    params = FaceParams.zeros(n, face_model.n_shape, E).to_numpy()
    params["jaw_pose"][:, 0] = np.abs(np.sin(np.arange(n) / 3.0)) * 0.3  # the mouth opens and closes
    targets = np.concatenate([params["expression"], params["jaw_pose"]], 1)
    clip = ClipData("c", "c", np.zeros((n, 4, 2), np.float32), targets, np.zeros((n, 7), np.float32), {}, False,
                    params, "tracking")

    def oracle(predicted: np.ndarray) -> SimpleNamespace:
        model = SimpleNamespace(n_expr=E, config=SimpleNamespace(include_neck=False))
        model.predict_features = lambda features, emotion: predicted
        model.split_params = lambda raw: A2EModel.split_params(model, raw)
        return model

    assert mouth_open_corr(oracle(targets), [clip], face_model) == pytest.approx(1.0, abs=1e-6)
    shuffled = targets[rng.permutation(n)]
    assert abs(mouth_open_corr(oracle(shuffled), [clip], face_model)) < 0.5


def test_mouth_open_corr_detected_reads_the_held_out_rows_and_skips_undetected_frames(tmp_path: Path) -> None:
    from core.expression.a2e_eval import held_out_openings, mouth_open_corr_detected
    from core.landmarks.track import LandmarkTrack
    from core.morphable.registry import load_model

    face_model = load_model("procedural", resolution="small")
    E = len(PROCEDURAL_EXPRESSIONS)
    n, first = 60, 10
    params = FaceParams.zeros(n, face_model.n_shape, E).to_numpy()
    params["jaw_pose"][:, 0] = np.abs(np.sin(np.arange(n) / 3.0)) * 0.3
    targets = np.concatenate([params["expression"], params["jaw_pose"]], 1)
    clip = ClipData("c" + TAIL, "c", np.zeros((n, 4, 2), np.float32), targets, np.zeros((n, 7), np.float32), {},
                    False, params, "tracking", first_frame=first)
    # the "detected" landmarks: the true face seen from the front, the clip's rows after 10 others
    with torch.no_grad():
        seen = face_model(FaceParams.from_numpy(params)).landmarks[..., :2].numpy() * np.array([1.0, -1.0])
    lmk = np.zeros((first + n, 68, 2), np.float32)
    lmk[first:] = seen
    detected = np.ones(first + n, bool)
    lmk[first + 5:first + 8] = 50.0 * np.random.default_rng(0).random((3, 68, 2))  # garbage, not detected
    detected[first + 5:first + 8] = False
    folder = tmp_path / "clip"
    folder.mkdir()
    LandmarkTrack(lmk68=lmk, confidence=np.ones(first + n), detected=detected, interpolated=~detected,
                  flagged=np.zeros(first + n, bool), image_size=(256, 256)).save(folder / "landmarks.npz")
    ws = SimpleNamespace(clip_dir=lambda actor, name: folder if name == "c" else tmp_path / "missing")
    model = SimpleNamespace(n_expr=E, config=SimpleNamespace(include_neck=False))
    model.predict_features = lambda features, emotion: targets
    model.split_params = lambda raw: A2EModel.split_params(model, raw)
    result = mouth_open_corr_detected(ws, "a", [clip], held_out_openings(model, [clip], face_model))
    assert result is not None and result["predicted"] > 0.99 and result["tracked"] > 0.99
    model.predict_features = lambda features, emotion: targets[::-1].copy()
    reversed_openings = held_out_openings(model, [clip], face_model)
    assert mouth_open_corr_detected(ws, "a", [clip], reversed_openings)["predicted"] < 0.5
    lost = ClipData("d" + TAIL, "d", clip.features, targets, clip.emotion, {}, False, params, "tracking")
    assert mouth_open_corr_detected(ws, "a", [lost], reversed_openings) is None  # no landmarks.npz


def test_voice_shift_keeps_the_sped_up_audio_aligned_with_the_time_scaled_motion(tmp_path: Path) -> None:
    import soundfile as sf

    from core.audio.features import AudioFeatureConfig, make_extractor
    from core.expression.a2e_eval import voice_shift_corr
    from core.morphable.registry import load_model

    face_model = load_model("procedural", resolution="small")
    E, sr, fps, n = len(PROCEDURAL_EXPRESSIONS), 16000, 25.0, 200
    t = np.arange(int(n / fps * sr)) / sr
    envelope = lambda x: 0.55 + 0.45 * np.sin(2 * np.pi * 1.3 * x) * np.sin(2 * np.pi * 0.4 * x + 1.0)  # noqa: E731
    noise = np.random.default_rng(0).standard_normal(t.size)  # broadband: every band follows the loudness
    sf.write(tmp_path / "a.wav", (0.3 * envelope(t) * noise).astype(np.float32), sr)
    params = FaceParams.zeros(n, face_model.n_shape, E).to_numpy()
    params["jaw_pose"][:, 0] = 0.3 * envelope(np.arange(n) / fps)  # the mouth opens with the loudness
    clip = ClipData("c", "c", np.zeros((n, 16, 13), np.float32), np.zeros((n, E + 3), np.float32),
                    np.zeros((n, 7), np.float32), {}, False, params, "tracking")
    ws = SimpleNamespace(root=tmp_path, clip=lambda actor, name: {"fps": fps, "audio": "a.wav"})
    extractor = make_extractor("mfcc", AudioFeatureConfig(normalize_gain=False))
    model = SimpleNamespace(n_expr=E, config=SimpleNamespace(include_neck=False),
                            feature_config=extractor.config, extractor=extractor)

    def predict(features: np.ndarray, emotion: np.ndarray) -> np.ndarray:  # opens the jaw with the loudness
        amplitude = 10.0 ** (features[:, features.shape[1] // 2, 0] / np.sqrt(40) / 20.0)  # c0 -> mean level
        out = np.zeros((len(features), E + 3), np.float32)
        out[:, E] = 0.3 * amplitude / amplitude.max()
        return out

    model.predict_features = predict
    model.split_params = lambda raw: A2EModel.split_params(model, raw)
    # Off by the time-scaling, the faster audio would drift out of step (1.2 s by the end at 0.85).
    for speed, r in voice_shift_corr(ws, "p", model, [clip], face_model, (0.85, 1.0, 1.18)).items():
        assert r > 0.9, speed
