"""A small end-to-end learning check of the a2e GAN on the synthetic actor (slow: ~30 s on one core)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.expression.a2e import A2EConfig
from core.expression.a2e_eval import evaluate_a2e
from core.expression.a2e_train import train_a2e
from core.synthetic.corpus import build_param_corpus
from core.workspace import Workspace


@pytest.mark.slow
def test_learns_jaw_motion_and_emotion_control_on_held_out_sentences(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ws = Workspace.create(tmp_path / "ws")
    build_param_corpus(ws, "synth", 8, emotions=("neutral", "happy", "sad", "angry", "surprised"),
                       intensities=(1.0,), seed=5, words=(3, 5))
    config = A2EConfig(iterations=300, batch_size=16, lr=1e-3, val_fraction=0.25, val_every=300,
                       checkpoint_every=1000)
    train_a2e(ws, "synth", config)
    result = evaluate_a2e(ws, "synth")
    assert result["n_clips"] == 10                       # 2 held-out sentences x 5 emotions
    assert result["jaw_corr"] >= 0.8, result["jaw_corr"]
    assert result["mouth_l1"] < 0.5 * result["mouth_l1_mean_baseline"]
    assert all(result["emotion_direction_ok"].values()), result["emotion_sweep"]
    assert all(result["emotion_monotonic"].values()), result["emotion_sweep"]
    assert result["checks"]["emotion_mixed"]
