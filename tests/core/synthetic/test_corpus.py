"""The synthetic parameter corpus in a workspace: layout, manifest, exact ground truth, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from core.expression.emotions import EMOTIONS
from core.morphable.data import PROCEDURAL_EXPRESSIONS, FaceParams
from core.synthetic.corpus import build_param_corpus, clip_name, corpus_emotion_matrix
from core.synthetic.emotion_faces import emotion_expression
from core.synthetic.phonemes import PhonemeTiming
from core.synthetic.visemes import viseme_track
from core.workspace import Workspace


def _build(root: Path, **kw: Any) -> tuple[Workspace, list[Any]]:
    ws = Workspace.create(root)
    args = dict(emotions=("neutral", "happy", "sad"), intensities=(0.33, 1.0), seed=3, words=(2, 3))
    args.update(kw)
    return ws, build_param_corpus(ws, "actor", 2, **args)


def test_layout_manifest_and_ground_truth(tmp_path: Path) -> None:
    calls: list[str] = []

    def render(clip_dir: Path, params: dict[str, np.ndarray], record: dict[str, Any]) -> dict[str, Any]:
        calls.append(clip_dir.name)
        assert params["expression"].shape[0] == record["frames"]
        return {"stages": {**record["stages"], "rendered": True}}

    ws, clips = _build(tmp_path / "ws", render=render)
    names = [c.name for c in clips]
    assert names[:5] == ["s000_neutral", "s000_happy_1", "s000_happy_3", "s000_sad_1", "s000_sad_3"]
    assert len(names) == 10 and calls == names
    assert ws.validate() == []
    for clip in clips:
        rec = ws.clip("actor", clip.name)
        d = ws.clip_dir("actor", clip.name)
        assert rec["synthetic"] is True and rec["video"] is None and rec["fps"] == 25.0
        assert rec["stages"]["rendered"] is True and rec["sentence"] == clip.sentence
        assert rec["emotion"] == ({} if clip.emotion == "neutral" else {clip.emotion: clip.intensity})
        wave, sr = sf.read(d / rec["audio"].split("/")[-1])
        assert sr == 16000 and wave.ndim == 1 and sf.info(d / "audio.wav").subtype == "PCM_16"
        assert rec["frames"] == int(np.ceil(len(wave) / sr * 25 - 1e-6))
        params = FaceParams.load(d / "ground_truth" / "params.npz")
        assert params.batch_size == rec["frames"]
        assert params.expression.shape[1] == len(PROCEDURAL_EXPRESSIONS)
        with np.load(d / "ground_truth" / "params.npz") as data:
            assert list(data["expr_names"]) == list(PROCEDURAL_EXPRESSIONS)
        emo = np.load(d / "ground_truth" / "emotion.npy")
        assert emo.shape == (rec["frames"], 7)
        if clip.emotion != "neutral":
            assert np.allclose(emo[:, EMOTIONS.index(clip.emotion)], clip.intensity)
        timing = PhonemeTiming.from_json(json.loads((d / "ground_truth" / "phonemes.json").read_text()))
        # The jaw opening is the viseme track of the spoken timing (+ the emotion's jaw offset, 0 here).
        _, jaw = viseme_track(timing, 25.0, rec["frames"])
        np.testing.assert_allclose(params.jaw_pose[:, 0].numpy(), jaw, atol=1e-6)
        assert np.allclose(params.jaw_pose[:, 1:].numpy(), 0)
    # The emotion moves the face the way the generator says: happy at 1.0 raises the smile.
    smile = PROCEDURAL_EXPRESSIONS.index("smile_left")
    happy = FaceParams.load(ws.clip_dir("actor", "s000_happy_3") / "ground_truth" / "params.npz")
    neutral = FaceParams.load(ws.clip_dir("actor", "s000_neutral") / "ground_truth" / "params.npz")
    assert happy.expression[:, smile].mean() > neutral.expression[:, smile].mean() + 0.5
    np.testing.assert_allclose(corpus_emotion_matrix()[EMOTIONS.index("happy")],
                               emotion_expression(np.eye(7)[EMOTIONS.index("happy")])[0])


def test_deterministic_and_resumable(tmp_path: Path) -> None:
    ws_a, clips_a = _build(tmp_path / "a")
    ws_b, clips_b = _build(tmp_path / "b")
    for a, b in zip(clips_a, clips_b, strict=True):
        da, db = ws_a.clip_dir("actor", a.name), ws_b.clip_dir("actor", b.name)
        assert (da / "audio.wav").read_bytes() == (db / "audio.wav").read_bytes()
        with np.load(da / "ground_truth" / "params.npz") as pa, np.load(db / "ground_truth" / "params.npz") as pb:
            for key in pa.files:
                np.testing.assert_array_equal(pa[key], pb[key])
    # Same sentence, different emotion: same phonemes, different timing/prosody.
    ph = [json.loads((ws_a.clip_dir("actor", n) / "ground_truth" / "phonemes.json").read_text())
          for n in ("s000_neutral", "s000_sad_3")]
    assert [r[2] for r in ph[0]] == [r[2] for r in ph[1]] and ph[0] != ph[1]
    # Rebuilding keeps existing clips untouched (an interrupted build resumes).
    stamp = (ws_a.clip_dir("actor", "s000_neutral") / "audio.wav").stat().st_mtime_ns
    again = build_param_corpus(ws_a, "actor", 2, emotions=("neutral", "happy", "sad"), intensities=(0.33, 1.0),
                               seed=3, words=(2, 3))
    assert [c.name for c in again] == [c.name for c in clips_a]
    assert (ws_a.clip_dir("actor", "s000_neutral") / "audio.wav").stat().st_mtime_ns == stamp


def test_bad_arguments(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ValueError, match="unknown emotion"):
        build_param_corpus(ws, "actor", 1, emotions=("joyful",))
    with pytest.raises(ValueError, match="intensities"):
        build_param_corpus(ws, "actor", 1, emotions=("happy",), intensities=(1.5,))
    with pytest.raises(ValueError, match="n_sentences"):
        build_param_corpus(ws, "actor", 0)
    assert clip_name(7, "happy", 0.5) == "s007_happy_050"
