"""Job params of the shared contract, shot names, the dub audio window and the mixdown plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from addon import jobspec, protocol
from addon import workspace as workspace_info
from core.workspace import Workspace, validate_name

FPS = 25.0


def sound(final_start: float, final_end: float, frame_start: float | None = None, trim_start: float = 0,
          offset: float = 0.0, name: str = "dub", path: str = "/a/dub.wav") -> jobspec.SoundStripInfo:
    return jobspec.SoundStripInfo(name=name, filepath=path, frame_start=final_start if frame_start is None
                                  else frame_start, final_start=final_start, final_end=final_end,
                                  trim_start=trim_start, sound_offset_s=offset)


def test_shot_names_are_valid_stable_and_distinct() -> None:
    a = jobspec.shot_name_for("/footage/day 1/Take #1 (final).mov")
    b = jobspec.shot_name_for("/footage/day 2/Take #1 (final).mov")
    assert a.startswith("Take_1_final-") and a != b
    assert a == jobspec.shot_name_for("/footage/day 1/Take #1 (final).mov")
    assert validate_name(a) == a and validate_name(b) == b  # the engine accepts them
    assert validate_name(jobspec.shot_name_for("/x/" + "é" * 90 + ".mp4"))
    assert jobspec.sanitize_name("...") == "shot"


def test_params_follow_the_contract() -> None:
    # no frame rate: the engine keeps the shot's own rate and frames
    assert jobspec.prepare_shot_params("/v/take1.mp4", "take1", "cpu") == {
        "video": "/v/take1.mp4", "shot": "take1", "device": "cpu"}
    assert jobspec.prepare_shot_params("/v/two.mp4", "two", "cpu", max_faces=2, face=1) == {
        "video": "/v/two.mp4", "shot": "two", "device": "cpu", "max_faces": 2, "face": 1}
    assert jobspec.train_actor_params("anna") == {"actor": "anna", "device": "auto"}
    emotions = {"format": "emodub-emotion-curves", "version": 1, "fps": 25.0, "per_frame": {"happy": [0.0]}}
    params = jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav", 1.5, 2.0),
                                emotions=emotions)
    assert params == {"actor": "anna", "shot": "take1", "audio": "/a.wav", "audio_offset_s": 1.5,
                      "audio_duration_s": 2.0, "emotions": emotions, "length": "shot", "device": "auto"}
    chosen = jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav"), emotions=emotions,
                                renderer="some_nerf", renderers=["some_nerf", "other"])
    assert chosen["renderer"] == "some_nerf"  # any variant the engine lists
    delivery = jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav"), emotions=emotions,
                                  format="prores4444", matte="alpha", face=1)
    assert (delivery["format"], delivery["matte"], delivery["face"]) == ("prores4444", "alpha", 1)
    assert "format" not in params and "matte" not in params and "face" not in params  # defaults are not sent
    assert "emotion_source" not in params
    generic = jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav"), emotions=emotions,
                                 emotion_source="prior")
    assert generic["emotion_source"] == "prior"
    with pytest.raises(jobspec.JobInputError, match="emotion source"):
        jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav"), emotions=emotions,
                           emotion_source="footage")
    spec = jobspec.make_spec("dub", params, "/ws")
    assert protocol.decode_spec(spec.to_json()) == spec  # a valid protocol spec
    json.dumps(spec.to_dict(), allow_nan=False)


def test_the_engine_takes_the_add_ons_params_under_the_strict_protocol() -> None:
    """From protocol version 2 the engine refuses params a job kind does not have; the add-on's must fit."""
    from core.jobs.registry import get_kind

    emotions = {"format": "emodub-emotion-curves", "version": 1, "fps": 25.0, "per_frame": {"happy": [0.0]}}
    for kind, params in (
            ("shot.prepare", jobspec.prepare_shot_params("/v/take1.mp4", "take1", "cpu", max_faces=2, face=0)),
            ("train.actor", jobspec.train_actor_params("anna", "cuda")),
            ("dub", jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav", 0.5, None),
                                       emotions=emotions, out="/o/dub.mp4")),
            ("dub", jobspec.dub_params(actor="anna", shot="take1", audio=jobspec.AudioSpan("/a.wav"),
                                       emotions=emotions, format="png16", matte="sequence", face=2,
                                       emotion_source="prior"))):
        spec = jobspec.make_spec(kind, params, "/ws")
        assert protocol.decode_spec(spec.to_json()).version == protocol.PROTOCOL_VERSION == 3
        assert get_kind(kind).check_params(spec.params, strict=True) == []


@pytest.mark.parametrize(("call", "message"), [
    (lambda: jobspec.train_actor_params(""), "no actor is set"),
    (lambda: jobspec.train_actor_params("anna smith"), "invalid actor"),
    (lambda: jobspec.train_actor_params("anna", "tpu"), "unknown device"),
    (lambda: jobspec.prepare_shot_params("", "take1"), "no movie file"),
    (lambda: jobspec.dub_params(actor="a", shot="s", audio=jobspec.AudioSpan(""), emotions={}),
     "no dub audio"),
    (lambda: jobspec.dub_params(actor="a", shot="s", audio=jobspec.AudioSpan("/a.wav"), emotions={},
                                renderer="pixels", renderers=["some_nerf"]), "the engine has no renderer"),
    (lambda: jobspec.dub_params(actor="a", shot="s", audio=jobspec.AudioSpan("/a.wav"), emotions={},
                                format="prores422hq", matte="alpha"), "no alpha channel"),
])
def test_bad_params_say_what_to_fix(call: object, message: str) -> None:
    with pytest.raises(jobspec.JobInputError) as err:
        call()  # type: ignore[operator]
    assert message in err.value.message and err.value.hint


def test_the_add_ons_formats_are_the_engines() -> None:
    from core.delivery.formats import FORMATS, MATTES

    assert [f[0] for f in jobspec.FORMATS] == list(FORMATS)
    assert [m[0] for m in jobspec.MATTES] == list(MATTES)
    assert set(jobspec.ALPHA_FORMATS) == {name for name, f in FORMATS.items() if f.alpha}


def test_job_keys() -> None:
    assert jobspec.job_keys(shot="take1", actor="anna") == {"shot:take1", "actor:anna"}
    assert jobspec.job_keys(actor="anna") == {"actor:anna"}
    assert jobspec.job_keys(clip="anna/take1", consent="anna", workspace="/ws") == {
        "clip:anna/take1", "consent:anna", "workspace:/ws"}


def test_sound_strip_under_the_shot_is_one_file_window() -> None:
    # Shot: file frames 0..39 at scene frames 11..50. Sound strip starts with it.
    span = jobspec.direct_audio_span(sound(11, 61), shot_start=11, shot_frames=40, fps=FPS)
    assert span == jobspec.AudioSpan("/a/dub.wav", 0.0, 1.6)
    # The sound started 25 frames earlier: its file is 1 s in when the shot starts; trimmed/offset too.
    span = jobspec.direct_audio_span(sound(0, 40, frame_start=-14, trim_start=5, offset=0.1), 11, 40, FPS)
    assert span == jobspec.AudioSpan("/a/dub.wav", round((11 + 14 + 5) / FPS + 0.1, 6), round(29 / FPS, 6))
    # It starts later than the shot: leading silence is needed -> no single window.
    assert jobspec.direct_audio_span(sound(20, 80), 11, 40, FPS) is None
    with pytest.raises(jobspec.JobInputError, match="does not overlap"):
        jobspec.direct_audio_span(sound(60, 90), 11, 40, FPS)


def test_mixdown_plan_places_each_strip_in_shot_time() -> None:
    strips = [sound(20, 80, name="late", path="/a/late.wav"),
              sound(0, 30, frame_start=-10, name="early", path="/a/early.wav"),
              sound(100, 120, name="after", path="/a/after.wav")]
    pieces = jobspec.mixdown_plan(strips, shot_start=11, shot_frames=40, fps=FPS)
    assert pieces == [jobspec.MixPiece("/a/late.wav", 0.0, 9 / FPS, 31 / FPS),
                      jobspec.MixPiece("/a/early.wav", 21 / FPS, 0.0, 19 / FPS)]
    with pytest.raises(jobspec.JobInputError, match="no sound strip is heard"):
        jobspec.mixdown_plan(strips[2:], 11, 40, FPS)
    # A negative sound offset: the file starts after the strip does.
    (piece,) = jobspec.mixdown_plan([sound(11, 51, offset=-0.2)], 11, 40, FPS)
    assert piece == jobspec.MixPiece("/a/dub.wav", 0.0, 0.2, 1.4)


def test_workspace_reader_lists_what_the_engine_wrote(tmp_path: Path) -> None:
    with pytest.raises(workspace_info.WorkspaceProblem, match="no workspace folder"):
        workspace_info.read_manifest("")
    with pytest.raises(workspace_info.WorkspaceProblem, match="not an emodub workspace") as err:
        workspace_info.read_manifest(tmp_path)
    assert "Create Workspace" in err.value.hint
    ws = Workspace.create(tmp_path / "ws")
    ws.add_actor("bob")
    ws.add_actor("anna")
    ws.set_model("anna", "renderer", {"checkpoint": "x"})
    ws.set_shot("take1", {"video": "shots/take1/video.mp4"})
    assert workspace_info.list_actors(ws.root) == ["anna", "bob"]
    assert workspace_info.list_shots(ws.root) == ["take1"]
    assert workspace_info.actor_models(ws.root, "anna") == ["renderer"]
    assert workspace_info.list_actors(tmp_path) == [] and workspace_info.actor_models(ws.root, "zed") == []
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "emodub.json").write_text("{not json")
    with pytest.raises(workspace_info.WorkspaceProblem, match="cannot read"):
        workspace_info.read_manifest(tmp_path / "bad")


def test_dub_languages_parse_and_mistakes_say_how_to_write_them() -> None:
    assert jobspec.parse_languages("de:5, fr:6;pt-BR:7") == [("de", 5), ("fr", 6), ("pt-BR", 7)]
    for text, expected in (("", "no dub languages"), ("de", "not LANGUAGE:CHANNEL"), ("de:0", "not LANGUAGE"),
                           ("de:5, fr:5", "its own channel"), ("de:5, de:6", "its own channel"),
                           ("d e:5", "not LANGUAGE")):
        with pytest.raises(jobspec.JobInputError, match=expected):
            jobspec.parse_languages(text)


def test_the_add_ons_batch_plan_passes_the_engines_plan_checks(tmp_path: Path) -> None:
    from core.batch.plan import parse_plan

    curves = tmp_path / "take.json"
    items = [jobspec.BatchItem("take.001", "take-abc123", lang, jobspec.AudioSpan(f"/a/{lang}.wav", 1.5, 2.0),
                               str(curves)) for lang in ("de", "fr")]
    raw = jobspec.batch_plan(name="Scene 1-anna", actor="anna", items=items, renderer="triplane", format="prores422hq")
    plan = parse_plan(json.loads(json.dumps(raw)), base=tmp_path, name="x")
    assert [i.id for i in plan.items] == ["take_001-de", "take_001-fr"] and plan.name == "Scene_1-anna"
    first = plan.items[0].params
    assert (first["audio"], first["audio_offset_s"], first["audio_duration_s"]) == ("/a/de.wav", 1.5, 2.0)
    assert (first["length"], first["format"], first["renderer"], first["emotions"]) == (
        "shot", "prores422hq", "triplane", str(curves))
    with pytest.raises(jobspec.JobInputError, match="same name"):
        jobspec.batch_plan(name="n", actor="anna", items=[items[0], items[0]])


def test_every_poll_reason_says_what_to_do() -> None:
    from addon import readiness
    from addon.readiness import SceneFacts

    ready = SceneFacts(source_type="MOVIE", active_type="MOVIE", actor="anna", has_dub_audio=True, selected_movies=2,
                       languages="de:5", jobs_running=1, last_report="/r/report.md", consent_filled=True,
                       workspace_set=True)
    checks = [readiness.prepare_shot, readiness.import_footage, readiness.train_actor, readiness.render_dub,
              readiness.pick_face, readiness.record_consent, readiness.create_workspace,
              readiness.dub_selected, readiness.cancel_job, readiness.emotion_preset, readiness.pick_active_strip,
              readiness.open_report]
    assert all(check(ready) is None for check in checks)
    empty = SceneFacts(has_sequencer=False)
    for check in checks:
        reason = check(empty)
        assert reason and reason[0].isupper() and "\n" not in reason and "`" not in reason, check.__name__
    assert readiness.render_dub(SceneFacts(source_type="MISSING", actor="anna")) == (
        "The chosen source strip no longer exists: pick it again")
    assert "sound" in readiness.render_dub(SceneFacts(source_type="MOVIE", actor="anna"))


@pytest.mark.parametrize("path", ["/footage/day 1/Take #1 (final).mov", "relative/shot_2s.mp4",
                                  "/x/" + "é" * 90 + ".mp4", "/a/..weird..name...MP4", "/a/.hidden"])
def test_the_add_on_names_a_shot_as_the_engine_does(path: str) -> None:
    from core.workspace import shot_name_for

    assert jobspec.shot_name_for(path) == shot_name_for(path)


def test_consent_and_training_params_are_what_the_engine_takes() -> None:
    from core.jobs.registry import get_kind

    consent = jobspec.consent_params("anna", " Anna Smith ", "season 2, all languages", "contracts/anna.pdf")
    assert consent["consented_by"] == "Anna Smith" and get_kind("actor.consent").check_params(consent) == []
    with pytest.raises(jobspec.JobInputError, match="Scope, Signed Document"):
        jobspec.consent_params("anna", "Anna", " ", "")
    assert jobspec.train_actor_params("anna", "cpu") == {"actor": "anna", "device": "cpu"}  # the engine's defaults
    quick = jobspec.train_actor_params("anna", "cpu", 20, 6, 0.3)
    assert quick == {"actor": "anna", "device": "cpu", "a2e_iterations": 20, "renderer_iterations": 6,
                     "track_iterations": 0.3} and get_kind("train.actor").check_params(quick) == []
    with pytest.raises(jobspec.JobInputError, match="negative"):
        jobspec.train_actor_params("anna", "cpu", -1)


def test_footage_params_label_the_clip_and_refuse_mistakes() -> None:
    assert jobspec.footage_params("/f/Take 1.mov", "anna") == {"video": "/f/Take 1.mov", "actor": "anna",
                                                                "clip": "Take_1", "emotion": "neutral"}
    assert jobspec.footage_params("/f/t.mov", "anna", "sad", 0.5)["emotion"] == "sad:0.5"
    assert jobspec.footage_params("/f/t.mov", "anna", "sad", 0.5, " s07 ")["sentence"] == "s07"
    assert "sentence" not in jobspec.footage_params("/f/t.mov", "anna", sentence="  ")
    for args, expected in ((("/f/t.mov", "anna", "joyful"), "unknown emotion"),
                           (("/f/t.mov", "anna", "sad", 0.0), "intensity"), (("", "anna"), "no movie file")):
        with pytest.raises(jobspec.JobInputError, match=expected):
            jobspec.footage_params(*args)
