"""The ``synth`` job through the job runner: a valid workspace, progress per clip, cancel between clips and
while rendering (finished clips kept, no half clip), resume, the contact sheet, bad parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.io.video import probe
from core.jobs import protocol as P
from core.jobs.context import CancelToken
from core.jobs.runner import run_job
from core.workspace import Workspace

SIZE = 64
# One short sentence, neutral + happy at MEAD level 3: two clips.
BASE = {"sentences": 1, "emotions": ["neutral", "happy"], "intensities": [3], "size": SIZE, "seed": 2,
        "device": "cpu"}


def run(params: dict, cancel_when=None) -> tuple[int, list[P.Event]]:
    events: list[P.Event] = []
    token = CancelToken()

    def sink(event: P.Event) -> None:
        events.append(event)
        if cancel_when is not None and cancel_when(event):
            token.cancel()

    code = run_job(P.JobSpec(kind="synth", params=params), sink, token)
    return code, events


def clip_records(root: Path) -> dict[str, dict]:
    return Workspace.open(root).read_manifest()["actors"].get("synthetic", {}).get("clips", {})


def test_synth_builds_a_valid_workspace_with_progress_per_clip(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    code, events = run({**BASE, "out": str(out)})
    assert code == P.EXIT_OK, [e for e in events if isinstance(e, P.Error)]
    ws = Workspace.open(out)
    assert ws.validate() == []
    records = clip_records(out)
    assert sorted(records) == ["s000_happy_3", "s000_neutral"]
    progress = [(e.done, e.total) for e in events if isinstance(e, P.Progress) and e.stage == "synth"]
    assert progress == [(0, 2), (1, 2), (2, 2)]
    done = events[-1]
    assert isinstance(done, P.Done) and done.outputs["clips"] == 2
    assert done.outputs["frames"] == sum(r["frames"] for r in records.values())
    for name, rec in records.items():
        folder = ws.clip_dir("synthetic", name)
        info = probe(out / rec["video"])
        assert info.frames == rec["frames"] and (info.width, info.height) == (SIZE, SIZE)
        assert rec["fps"] == 25.0 and rec["synthetic"] is True
        for rel in ("params.npz", "landmarks.npz", "phonemes.json", "camera.json", "emotion.npy"):
            assert (folder / "ground_truth" / rel).is_file()
    assert records["s000_happy_3"]["emotion"] == {"happy": 1.0} and records["s000_neutral"]["emotion"] == {}
    videos = [e.path for e in events if isinstance(e, P.Artifact) and e.kind == "video"]
    assert len(videos) == 2


def test_cancel_between_clips_keeps_finished_clips_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    code, events = run({**BASE, "out": str(out)},
                       cancel_when=lambda e: isinstance(e, P.Progress) and e.done == 1)
    assert code == P.EXIT_CANCELLED and isinstance(events[-1], P.Cancelled)
    ws = Workspace.open(out)
    assert ws.validate() == []
    records = clip_records(out)
    assert list(records) == ["s000_neutral"] and records["s000_neutral"]["video"]
    assert not ws.clip_dir("synthetic", "s000_happy_3").exists()
    first_video = out / records["s000_neutral"]["video"]
    stamp = first_video.stat().st_mtime_ns
    # Running again resumes: the finished clip is kept as it is, the missing one is built.
    code, _ = run({**BASE, "out": str(out)})
    assert code == P.EXIT_OK
    assert sorted(clip_records(out)) == ["s000_happy_3", "s000_neutral"]
    assert first_video.stat().st_mtime_ns == stamp
    assert Workspace.open(out).validate() == []


def test_cancel_while_rendering_leaves_no_half_clip(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    code, events = run({**BASE, "out": str(out)},
                       cancel_when=lambda e: isinstance(e, P.Log) and "s000_happy_3" in e.message)
    assert code == P.EXIT_CANCELLED
    ws = Workspace.open(out)
    assert ws.validate() == []
    assert list(clip_records(out)) == ["s000_neutral"]
    assert not ws.clip_dir("synthetic", "s000_happy_3").exists()  # its wav/params were removed too
    assert not list(out.rglob(".tmp-*"))


def test_contact_sheet_is_written_without_a_corpus(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "sheet"
    code, events = run({"out": str(out), "contact_sheet": True, "size": SIZE, "device": "cpu"})
    assert code == P.EXIT_OK
    path = out / "contact_sheet.png"
    assert events[-1].outputs["contact_sheet"] == str(path)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[1] > 5 * SIZE and image.shape[0] > 2 * SIZE  # 5 x 2 labelled tiles
    tiles = [image[4:4 + SIZE, 4 + c * (SIZE + 4):4 + c * (SIZE + 4) + SIZE].astype(float) for c in range(5)]
    assert all(np.abs(tiles[0] - t).mean() > 0.2 for t in tiles[1:])  # each pose differs from neutral
    assert not (out / "emodub.json").exists()


@pytest.mark.parametrize("change, message", [
    ({"emotions": ["joy"]}, "unknown emotion"),
    ({"size": 65}, "even"),
    ({"intensities": [5]}, "MEAD level"),
    ({"sentences": 0}, ">= 1"),
])
def test_bad_parameters_fail_clearly(tmp_path: Path, change: dict, message: str) -> None:
    code, events = run({**BASE, "out": str(tmp_path / "w"), **change})
    assert code == P.EXIT_ERROR
    error = events[-1]
    assert isinstance(error, P.Error) and error.code == "bad_params" and message in error.message


def test_cli_arguments_become_job_params() -> None:
    from core.cli import build_parser
    from core.jobs.registry import all_kinds

    kind = all_kinds()["synth"]
    args = build_parser().parse_args(["synth", "--out", "X", "--emotions", "neutral", "sad", "--intensities",
                                      "1", "3", "--size", "128", "--seed", "4"])
    params = kind.params_from_args(args)
    assert params["out"] == "X" and params["emotions"] == ["neutral", "sad"] and params["size"] == 128
    assert params["intensities"] == ["1", "3"] and params["seed"] == 4 and params["contact_sheet"] is False
