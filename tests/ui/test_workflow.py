"""The whole job in emodub studio with the real engine, on a tiny synthetic actor (pytest-qt): no command line.

The steps are :func:`ui.workflow.run_workflow` (the screenshots in docs/screenshots/ come from the same code):
new workspace, import the takes with their emotions, consent, train (tracking first), import the shot, dub audio,
key a curve, preview a frame, render, review the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.jobs import protocol as P

pytestmark = [pytest.mark.qt, pytest.mark.slow]


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Takes of a synthetic actor as a camera would name them, a shot and a dub audio (the engine's synth job)."""
    from core.synthetic.takes import camera_takes

    return camera_takes(tmp_path_factory.mktemp("footage"), size=64)


def test_an_editor_does_the_whole_job_in_the_app(qtbot, window, footage: Any, tmp_path: Path) -> None:
    from ui.workflow import WorkflowInputs, run_workflow

    inputs = WorkflowInputs(takes=footage.takes, shot_video=footage.shot_video, dub_audio=footage.dub_audio,
                            workspace=tmp_path / "ws",
                            actor="anna", a2e_iterations=20, renderer_iterations=6, track_iterations=0.3,
                            timeout_s=900)
    result = run_workflow(window, inputs)
    assert result.steps[-1] == "render + review"
    ws = window.workspace
    manifest = ws.read_manifest()
    clips = manifest["actors"]["anna"]["clips"]
    assert {name: clip["emotion"] for name, clip in clips.items()} == {
        "s000_neutral": {}, "s000_happy_3": {"happy": 1.0}, "s001_happy_3": {"happy": 1.0}}
    # one job from import to trained models: it tracked the takes first, its bar only grew and was never full
    train = result.jobs["train"]
    assert sorted(train.outputs["tracked_first"]) == sorted(clips)
    bar = result.bars["train"]
    assert bar and bar == sorted(bar) and max(bar) <= P.BAR_BEFORE_DONE and train.fraction == 1.0
    # the preview is the dub's frame; the render carries the curve the timeline keyed; Review shows its report
    frame = window.timeline._dub_frames[result.preview_frame]
    assert frame.is_file()
    dub = result.jobs["render"]
    assert dub.params["audio"] == str(inputs.dub_audio.resolve())
    from core.expression.emotions import EMOTIONS, EmotionCurves

    happy = EmotionCurves.from_json(dub.params["emotions"]).sample(60)[:, EMOTIONS.index("happy")]
    assert happy.max() == pytest.approx(0.9, abs=1e-3) and happy[0] == pytest.approx(0.0, abs=1e-3)
    assert Path(dub.outputs["video"]).is_file()
    report = window.review.report_text.text()
    assert "happy" in report and window.review.render_path == Path(dub.outputs["video"])
    problems = [m.text for m in window.notifier.messages if m.level == "error"]
    assert not problems, problems
