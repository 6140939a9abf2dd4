"""Imported per-frame features: reading .npy / .csv files, the import job, and the data layer's batches."""

from __future__ import annotations

import numpy as np
import pytest

from core.jobs import protocol as P
from core.jobs.runner import run_job
from core.renderers.base import RendererNeeds
from core.renderers.data import actor_sources
from core.renderers.frame_features import FrameFeatureError, read_feature_file


def _run(spec: P.JobSpec) -> list[P.Event]:
    events: list[P.Event] = []
    run_job(spec, events.append)
    return events


def test_read_npy_and_openface_style_csv(tmp_path) -> None:
    array = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.save(tmp_path / "f.npy", array)
    read, names = read_feature_file(tmp_path / "f.npy")
    assert read.dtype == np.float32 and np.allclose(read, array) and names == ["f0", "f1", "f2"]
    # OpenFace writes ", "-separated headers; patterns pick the intensity columns only.
    rows = ["frame, face_id, timestamp, AU12_r, AU25_r, AU12_c", "1, 0, 0.00, 1.5, 0.2, 1", "2, 0, 0.04, 0.5, 2.0, 0"]
    (tmp_path / "of.csv").write_text("\n".join(rows) + "\n")
    read, names = read_feature_file(tmp_path / "of.csv", "AU*_r")
    assert names == ["AU12_r", "AU25_r"] and np.allclose(read, [[1.5, 0.2], [0.5, 2.0]])
    read, names = read_feature_file(tmp_path / "of.csv")  # every numeric column
    assert read.shape == (2, 6)


@pytest.mark.parametrize("case, needle", [
    ("pickle", "not a plain numeric"), ("nan", "NaN"), ("flat", "2-D array"), ("txt", ".npy or .csv"),
    ("nocolumn", "no column"), ("words", "other than a number"), ("missing", "does not exist")])
def test_bad_feature_files_say_what_is_wrong(tmp_path, case: str, needle: str) -> None:
    path, columns = tmp_path / "f.npy", None
    if case == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "nan":
        np.save(path, np.array([[1.0, np.nan]]))
    elif case == "flat":
        np.save(path, np.zeros(5))
    elif case == "txt":
        path = tmp_path / "f.txt"
        path.write_text("1 2 3")
    elif case in ("nocolumn", "words"):
        path = tmp_path / "f.csv"
        path.write_text("AU12_r,name\n1.0,x\n")
        columns = "AU99_r" if case == "nocolumn" else "name"
    elif case == "missing":
        path = tmp_path / "absent.npy"
    with pytest.raises(FrameFeatureError, match=needle):
        read_feature_file(path, columns)


def test_import_job_and_batches_carry_each_frames_features(tracked_workspace, tmp_path) -> None:
    ws = tracked_workspace(n_frames=10, size=32, clips=2)
    for k, clip in enumerate(("c0", "c1")):
        # Row f of clip k is (k, f, f^2): a batch's rows must be its own frames'.
        f = np.arange(10.0)
        np.save(tmp_path / f"{clip}.npy", np.stack([np.full(10, k), f, f * f], 1))
        done = _run(P.JobSpec("features.import", {"file": str(tmp_path / f"{clip}.npy"), "actor": "a",
                                                  "clip": clip, "name": "net"}, str(ws.root)))[-1]
        assert isinstance(done, P.Done) and done.outputs["width"] == 3, done
    needs = RendererNeeds(context_frames=2, frame_features=("net",))
    train, held, _ = actor_sources(ws, "a", needs, holdout=0.2)
    assert train.feature_widths() == {"net": 3}
    from core.renderers.frame_features import feature_columns

    assert feature_columns(ws.clip_dir("a", "c0"), "net") == ["f0", "f1", "f2"]
    batch = held.batch([0, 2])  # c0 frame 8 and c1 frame 8
    assert np.allclose(batch.features["net"].numpy(), [[0, 8, 64], [1, 8, 64]])
    context = batch.context
    assert context is not None
    rows = context.features["net"][context.neighbours]  # (B, W, 3): each frame's neighbours' own rows
    assert np.allclose(rows[:, :, 0].numpy(), [[0, 0], [1, 1]])
    assert np.allclose(rows[:, :, 2].numpy(), rows[:, :, 1].numpy() ** 2)
    assert np.allclose(batch[0:1].features["net"].numpy(), [[0, 8, 64]])  # slicing keeps them


def test_import_refusals_and_a_clip_without_the_features(tracked_workspace, tmp_path) -> None:
    ws = tracked_workspace(n_frames=10, size=32, clips=2)
    np.save(tmp_path / "short.npy", np.zeros((7, 2)))
    for params, needle in (({"clip": "c0", "file": str(tmp_path / "short.npy")}, "7 rows of features for a clip of 10"),
                           ({"clip": "nope", "file": str(tmp_path / "short.npy")}, "no clip 'nope'"),
                           ({"clip": "c0", "file": str(tmp_path / "short.npy"), "name": "../x"}, "feature name")):
        error = _run(P.JobSpec("features.import", {"actor": "a", "name": "net", **params}, str(ws.root)))[-1]
        assert isinstance(error, P.Error) and error.code == "bad_params" and needle in error.message, error
    np.save(tmp_path / "ok.npy", np.zeros((10, 2)))
    _run(P.JobSpec("features.import", {"actor": "a", "clip": "c0", "name": "net", "file": str(tmp_path / "ok.npy")},
                   str(ws.root)))
    from core.jobs.context import JobFailed

    with pytest.raises(JobFailed, match="clip 'c1' has no features 'net'") as caught:
        actor_sources(ws, "a", RendererNeeds(frame_features=("net",)), holdout=0.2)
    assert caught.value.code == "no_data"
