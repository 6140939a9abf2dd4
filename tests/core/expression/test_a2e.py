"""Audio-to-expression GAN: smoke training on a tiny synthetic corpus, checkpoint + resume, prediction,
bad input, the job kinds and the eval report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio.io import AudioError, load_audio
from core.expression.a2e import A2EConfig, A2EModel, a2e_feature_config, chunked_forward, emotion_frames, predict
from core.expression.a2e_train import train_a2e
from core.expression.emotions import EmotionCurves, curves_from, ramp_in
from core.io.checkpoint import load_checkpoint
from core.jobs import protocol as P
from core.jobs.context import JobCancelled
from core.jobs.runner import run_job
from core.morphable.data import PROCEDURAL_EXPRESSIONS, FaceParams
from core.synthetic.corpus import build_param_corpus
from core.workspace import Workspace

ACTOR = "synth"
TINY = dict(encoder_hidden=32, lstm_hidden=32, decoder_hidden=32, disc_hidden=16, batch_size=8, seq_len=16,
            iterations=30, log_every=5, checkpoint_every=10, val_every=10, lr=3e-3, val_fraction=0.3)


class Recorder:
    """A reporter that records progress and can cancel at a given iteration (like Ctrl-C)."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.cancel_at = cancel_at
        self.progress_done: list[int] = []
        self.artifacts: list[tuple[str, str]] = []

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        if stage.startswith("train"):
            self.progress_done.append(done)
            if self.cancel_at is not None and done >= self.cancel_at:
                raise JobCancelled("test cancel")

    def log(self, message: str, level: str = "info") -> None:
        pass

    def artifact(self, path: str | Path, kind: str) -> None:
        self.artifacts.append((str(path), kind))

    def check_cancelled(self) -> None:
        pass


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    torch.set_num_threads(1)
    ws = Workspace.create(tmp_path_factory.mktemp("a2e") / "ws")
    build_param_corpus(ws, ACTOR, 3, emotions=("neutral", "happy"), intensities=(1.0,), seed=1, words=(2, 3))
    return ws


@pytest.fixture(scope="module")
def trained(workspace: Workspace) -> tuple[Workspace, dict[str, Any]]:
    out = train_a2e(workspace, ACTOR, A2EConfig(**TINY), model_name="full", reporter=Recorder())
    return workspace, out


def test_smoke_train_lowers_the_loss_and_writes_its_outputs(trained: tuple[Workspace, dict[str, Any]]) -> None:
    ws, out = trained
    model_dir = ws.model_dir(ACTOR, "full")
    for name in ("checkpoint.pt", "config.json", "losses.json", "loss.png"):
        assert (model_dir / name).is_file(), name
    import json

    history = json.loads((model_dir / "losses.json").read_text())
    assert history["step"] == [5, 10, 15, 20, 25, 30]
    assert history["l1"][-1] < history["l1"][0]
    assert history["total"][-1] < history["total"][0]
    assert all(v > 0 for v in history["gan_d"])         # the discriminator was trained
    assert history["val_step"] == [10, 20, 30]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["params_source"] == "ground_truth"      # synthetic clips: no tracking yet
    assert set(config["split"]["val"]).isdisjoint(config["split"]["train"])
    # Held-out clips are whole sentences: every rendition of a held-out sentence is held out.
    sentences = {n.split("_")[0] for n in config["split"]["val"]}
    assert not any(n.split("_")[0] in sentences for n in config["split"]["train"])
    assert ws.manifest["actors"][ACTOR]["models"]["full"]["iteration"] == 30
    assert out["iteration"] == 30


def test_interrupted_training_resumes_with_an_unbroken_history(trained: tuple[Workspace, dict[str, Any]]) -> None:
    ws, _ = trained
    config = A2EConfig(**TINY)
    cut = Recorder(cancel_at=15)
    with pytest.raises(JobCancelled):
        train_a2e(ws, ACTOR, config, model_name="cut", reporter=cut)
    state = load_checkpoint(ws.model_dir(ACTOR, "cut") / "checkpoint.pt")
    assert state["iteration"] == 15 and state["history"]["step"] == [5, 10, 15]
    resumed = Recorder()
    out = train_a2e(ws, ACTOR, config, model_name="cut", reporter=resumed)
    assert out["iteration"] == 30 and resumed.progress_done[0] == 15
    full = load_checkpoint(ws.model_dir(ACTOR, "full") / "checkpoint.pt")["history"]
    cont = load_checkpoint(ws.model_dir(ACTOR, "cut") / "checkpoint.pt")["history"]
    assert cont["step"] == full["step"]
    # Same batches, same optimiser states: the resumed run computes what the uninterrupted one did.
    for key in ("l1", "vel", "gan_g", "gan_d", "val_l1"):
        np.testing.assert_allclose(cont[key], full[key], rtol=1e-4, atol=1e-6)
    # Training longer continues from the end instead of starting again.
    longer = train_a2e(ws, ACTOR, A2EConfig(**{**TINY, "iterations": 35}), model_name="cut", reporter=Recorder())
    assert longer["iteration"] == 35


def test_predict_shapes_emotion_forms_and_saved_params(trained: tuple[Workspace, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    ws, _ = trained
    model = A2EModel.load(ws.model_dir(ACTOR, "full"))
    clip = ws.clip(ACTOR, model.info["split"]["val"][0])
    wave, sr = load_audio(ws.root / clip["audio"])
    n = clip["frames"]
    E = len(PROCEDURAL_EXPRESSIONS)
    neutral = predict(model, wave, sr)
    assert neutral.expression.shape == (n, E) and neutral.jaw_pose.shape == (n, 3)
    assert np.isfinite(neutral.expression).all()
    curves = curves_from([ramp_in("happy", 0, n - 1, interpolation="linear")], fps=25)
    forms = ["happy:0.5", {"happy": 0.5}, curves, np.full(7, 0.0), np.zeros((n, 7))]
    for form in forms:
        assert predict(model, wave, sr, form).expression.shape == (n, E)
    ramp = predict(model, wave, sr, curves)
    np.testing.assert_allclose(ramp.emotion[:, 4], np.linspace(0, 1, n), atol=0.02)  # happy is index 4
    raw = predict(model, wave, sr, smooth=False)
    assert not np.allclose(raw.expression, neutral.expression)
    # Stereo at another rate, a forced frame count, another frame rate.
    stereo = np.stack([wave, wave], 1)
    from core.audio.io import prepare_wave

    stereo44 = np.stack([prepare_wave(wave, sr, 44100)] * 2, 1)
    np.testing.assert_allclose(predict(model, stereo, sr).jaw_pose, neutral.jaw_pose, atol=1e-5)
    assert predict(model, stereo44, 44100).expression.shape == (n, E)
    assert predict(model, wave, sr, n_frames=n + 7).n_frames == n + 7
    p30 = predict(model, wave, sr, fps=30)
    assert p30.fps == 30 and abs(p30.n_frames - n * 30 / 25) <= 2
    path = neutral.save(tmp_path / "params.npz", model.defaults)
    params = FaceParams.load(path)
    assert params.batch_size == n and params.expression.shape == (n, E)
    torch.testing.assert_close(params.jaw_pose, torch.as_tensor(neutral.jaw_pose))


def test_predict_bad_input_is_refused_or_clamped(trained: tuple[Workspace, dict[str, Any]]) -> None:
    ws, _ = trained
    model = A2EModel.load(ws.model_dir(ACTOR, "full"))
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    with pytest.raises(ValueError, match="unknown emotion 'joyful'"):
        predict(model, wave, 16000, "joyful:0.5")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict(model, wave, 16000, "happy:1.5")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        predict(model, wave, 16000, np.full((25, 7), -0.2))
    with pytest.raises(ValueError, match="rows"):
        predict(model, wave, 16000, np.zeros((3, 7)))
    clamped = predict(model, wave, 16000, "happy:1.5", clamp=True)
    np.testing.assert_allclose(clamped.expression, predict(model, wave, 16000, "happy:1").expression)
    assert emotion_frames(np.full((2, 7), 2.0), 2, 25, clamp=True).max() == 1.0
    short = predict(model, wave[:1600], 16000)           # 0.1 s: padded, 3 frames
    assert short.n_frames == 3 and np.isfinite(short.expression).all()
    with pytest.raises(AudioError, match="no samples"):
        predict(model, np.zeros(0, np.float32), 16000)


def test_chunked_inference_matches_a_single_chunk_where_it_fits() -> None:
    torch.manual_seed(0)
    from core.expression.a2e import A2EGenerator

    gen = A2EGenerator(10, 4, A2EConfig(encoder_hidden=8, lstm_hidden=8, decoder_hidden=8)).eval()
    audio, emo = torch.randn(2, 16, 10), torch.rand(2, 16, 7)
    with torch.no_grad():
        torch.testing.assert_close(chunked_forward(gen, audio, emo, 16), gen(audio, emo))
        long = chunked_forward(gen, torch.randn(1, 101, 10), torch.rand(1, 101, 7), 16)
    assert long.shape == (1, 101, 4) and torch.isfinite(long).all()


def _job(ws: Workspace, kind: str, **params: Any) -> tuple[int, list[P.Event]]:
    events: list[P.Event] = []
    code = run_job(P.JobSpec(kind=kind, params={"device": "cpu", **params}, workspace=str(ws.root)),
                   events.append)
    return code, events


def test_a_feature_without_its_weights_is_a_user_error(trained: tuple[Workspace, dict[str, Any]], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import core.audio.speech_encoder as speech_encoder

    ws, _ = trained
    monkeypatch.setattr(speech_encoder, "SPEECH_ENCODER_FILE", tmp_path / "absent.pt")
    code, events = _job(ws, "train.a2e", actor=ACTOR, name="speech", iterations=2, feature="speech")
    assert code != P.EXIT_OK and events[-1].code == "feature_not_available"
    assert "bench speech_encoder --save" in events[-1].message and "--feature mfcc" in events[-1].hint
    assert not (ws.model_dir(ACTOR, "speech") / "checkpoint.pt").exists()


def test_job_kinds_train_predict_eval(trained: tuple[Workspace, dict[str, Any]], tmp_path: Path) -> None:
    ws, _ = trained
    code, events = _job(ws, "train.a2e", actor=ACTOR, name="job", iterations=3, batch_size=4)
    assert code == P.EXIT_OK, events[-1]
    assert {e.kind for e in events if isinstance(e, P.Artifact)} >= {"checkpoint", "losses", "plot"}
    model = A2EModel.load(ws.model_dir(ACTOR, "job"))
    assert model.feature_config.utterance_norm and model.config.voice_warps == [0.85, 0.92, 1.08, 1.18]
    code, events = _job(ws, "train.a2e", actor=ACTOR, name="plain", iterations=2, batch_size=4, voice_warps="none",
                        no_utterance_norm=True, dropout=0.0)
    assert code == P.EXIT_OK, events[-1]
    plain = A2EModel.load(ws.model_dir(ACTOR, "plain"))
    assert not plain.feature_config.utterance_norm and plain.config.voice_warps == [] and plain.config.dropout == 0
    assert not a2e_feature_config(speech_prior=40).utterance_norm  # the synthetic prior is not normalised
    gain = model.stats.articulation_gain  # fitted when training ended, saved with the model
    assert gain is not None and gain.shape == (len(model.target_names),) and 1.0 <= gain.min() <= gain.max() <= 3.0
    code, events = _job(ws, "train.a2e", actor=ACTOR, name="bad", iterations=2, voice_warps="0.9,3")
    assert code != P.EXIT_OK and events[-1].code == "bad_params" and "voice_warps" in events[-1].message
    # A model saved before these settings existed keeps what it was trained with.
    legacy = {k: v for k, v in model.config.to_dict().items() if k not in ("dropout", "voice_warps")}
    assert A2EConfig.from_dict(legacy).dropout == 0.0 and A2EConfig.from_dict(legacy).voice_warps == []
    clip = ws.clip(ACTOR, "s000_neutral")
    out = tmp_path / "pred.npz"
    code, events = _job(ws, "a2e.predict", actor=ACTOR, name="job", audio=str(ws.root / clip["audio"]),
                        out=str(out), emotion="happy:0.66")
    assert code == P.EXIT_OK and events[-1].outputs["frames"] == clip["frames"]
    assert FaceParams.load(out).batch_size == clip["frames"]

    code, events = _job(ws, "eval.a2e", actor=ACTOR, name="full")
    assert code == P.EXIT_OK, events[-1]
    report = events[-1].outputs
    for key in ("jaw_corr", "mouth_l1", "emotion_direction_ok", "emotion_monotonic", "emotion_mixed",
                "ablation", "checks", "emotion_sweep"):
        assert key in report, key
    assert set(report["emotion_direction_ok"]) == {"happy", "sad", "angry", "surprised"}
    assert -1.0 <= report["jaw_corr"] <= 1.0 and report["mouth_l1"] > 0
    assert "upper_face_var_ratio" in report["ablation"]["full"]
    assert Path(report["report"]).is_file()


def test_predict_job_bad_inputs(trained: tuple[Workspace, dict[str, Any]], tmp_path: Path) -> None:
    ws, _ = trained
    audio = str(ws.root / ws.clip(ACTOR, "s000_neutral")["audio"])
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    wave, _ = load_audio(audio)
    sf.write(tmp_path / "short.wav", wave[4000:5600], 16000)      # 0.1 s
    out = str(tmp_path / "p.npz")
    cases = [({"audio": str(tmp_path / "silent.wav")}, "silent_audio"),
             ({"audio": str(tmp_path / "empty.wav")}, "bad_audio"),
             ({"audio": str(tmp_path / "missing.wav")}, "bad_audio"),
             ({"audio": audio, "emotion": "joy:0.5"}, "bad_input"),
             ({"audio": audio, "emotion": "happy:1.4"}, "bad_input"),
             ({"audio": audio, "emotions": str(tmp_path / "nope.json")}, "bad_emotions"),
             ({"audio": audio, "name": "no_such_model"}, "no_model")]
    for params, expected in cases:
        code, events = _job(ws, "a2e.predict", actor=ACTOR, name=params.pop("name", "full"), out=out, **params)
        assert code == P.EXIT_ERROR and events[-1].code == expected, (params, events[-1])
        assert events[-1].message
    code, events = _job(ws, "a2e.predict", actor=ACTOR, name="full", out=out,
                        audio=str(tmp_path / "silent.wav"), allow_silence=True)
    assert code == P.EXIT_OK
    code, events = _job(ws, "a2e.predict", actor=ACTOR, name="full", out=out, audio=audio, emotion="happy:1.4",
                        clamp=True)
    assert code == P.EXIT_OK
    code, events = _job(ws, "a2e.predict", actor=ACTOR, name="full", out=out, audio=str(tmp_path / "short.wav"))
    assert code == P.EXIT_OK and events[-1].outputs["frames"] == 3
    curves = EmotionCurves.constant("sad:0.5").to_json()
    code, events = _job(ws, "a2e.predict", actor=ACTOR, name="full", out=out, audio=audio, emotions=curves)
    assert code == P.EXIT_OK
    code, events = _job(ws, "train.a2e", actor="nobody")
    assert code == P.EXIT_ERROR and events[-1].code == "no_data"


def test_params_source_and_short_clip_sampling(workspace: Workspace) -> None:
    from core.audio.features import make_extractor
    from core.expression.a2e_data import A2EDataError, ClipData, SequenceSampler, load_actor_clips

    ex = make_extractor("mfcc")
    clip = "s001_neutral"
    tracked = workspace.clip_dir(ACTOR, clip) / "tracking" / "params.npz"
    truth = FaceParams.load(workspace.clip_dir(ACTOR, clip) / "ground_truth" / "params.npz")
    try:
        truth.map(lambda t: t + 1.0).save(tracked)
        clips, names, used = load_actor_clips(workspace, ACTOR, ex, "auto", clips=[clip, "s000_neutral"])
        assert used == "mixed" and names == list(PROCEDURAL_EXPRESSIONS)
        assert clips[0].params_file == "tracking" and clips[1].params_file == "ground_truth"
        np.testing.assert_allclose(clips[0].targets[:, 0], truth.expression[:, 0].numpy() + 1.0)
        gt_only, _, used = load_actor_clips(workspace, ACTOR, ex, "ground_truth", clips=[clip])
        assert used == "ground_truth"
        np.testing.assert_allclose(gt_only[0].targets[:, 0], truth.expression[:, 0].numpy())
        with pytest.raises(A2EDataError, match="no clip with audio"):
            load_actor_clips(workspace, ACTOR, ex, "tracking", clips=["s000_neutral"])
    finally:
        tracked.unlink()
    short = ClipData("short", "g", np.ones((5, 16, 13), np.float32), np.ones((5, 40), np.float32),
                     np.zeros((5, 7), np.float32), {}, True, {})
    batch = SequenceSampler([short], seq_len=8).sample(np.random.default_rng(0), 3)
    assert batch["features"].shape == (3, 8, 16, 13)
    np.testing.assert_array_equal(batch["mask"], np.repeat([[1, 1, 1, 1, 1, 0, 0, 0]], 3, 0))
    assert batch["targets"][:, 5:].sum() == 0


def test_articulation_gain_scales_fast_motion_only_and_is_fitted_to_the_footage() -> None:
    from types import SimpleNamespace

    from core.expression.a2e import articulation
    from core.expression.a2e_data import ClipData
    from core.expression.a2e_train import calibrate_articulation

    fps, n = 25.0, 250
    t = np.arange(n) / fps
    ramp = np.clip(t / 2.0, 0, 1) * 0.8          # a keyframed emotion ramp (slow)
    speech = 0.3 * np.sin(2 * np.pi * 4.0 * t)   # articulation at 4 Hz
    tracks = np.stack([ramp + speech, np.full(n, 0.5)], 1).astype(np.float32)
    boosted = articulation(tracks, np.array([2.0, 3.0], np.float32), fps, axis=0)
    inner = slice(70, 230)  # half a second past the ramp's end and away from the clip's ends
    assert np.allclose(boosted[inner, 0] - ramp[inner], 2 * speech[inner], atol=0.03)  # the ramp kept, speech x2
    assert np.allclose(boosted[:, 1], 0.5)  # a constant (an emotion offset) is not touched
    assert articulation(tracks, None, fps, axis=0) is tracks

    # A model that moves at half the footage's amplitude gets a gain of about 2; one that never moves, or moves
    # out of step with the footage, 1 (its motion made larger would be noise made larger).
    noise = 0.1 * np.random.default_rng(0).standard_normal(n)
    tracks = np.stack([ramp + speech, np.full(n, 0.5), 0.2 * np.sin(2 * np.pi * 3.0 * t)], 1).astype(np.float32)
    clip = ClipData("c", "c", np.zeros((n, 4, 2), np.float32), tracks, np.zeros((n, 7), np.float32), {}, False, {})
    predicted = np.stack([ramp + 0.5 * speech, np.full(n, 0.5), noise], 1).astype(np.float32)
    model = SimpleNamespace(fps=fps, predict_features=lambda features, emotion, smooth=True: predicted)
    gain = calibrate_articulation(model, [clip])
    assert gain[0] == pytest.approx(2.0, abs=0.1) and gain[1] == pytest.approx(1.0) and gain[2] < 1.2
