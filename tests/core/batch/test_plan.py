"""Plans: the product of shots x tracks x emotion passes x renderers, ids, paths, and the mistakes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.batch.plan import MAX_NAME, PlanError, load_plan, parse_plan, render_name_for


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_plan_expands_into_one_item_per_shot_track_and_emotion(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path / "season.toml", """
name = "s01"
actor = "anna"
[options]
end = "hold"
[tracks]
de = "audio/de.wav"
fr = "audio/fr.wav"
[emotions]
neutral = ""
happy = "curves/happy.json"
[[shots]]
shot = "ep01_012"
[[shots]]
shot = "ep01_013"
[shots.tracks]
es = "/abs/es.wav"
[[items]]
shot = "ep01_014"
audio = "pickup.wav"
emotions = "sad:0.4"
language = "de"
"""))
    ids = [item.id for item in plan.items]
    assert ids == ["ep01_012.de.neutral", "ep01_012.de.happy", "ep01_012.fr.neutral", "ep01_012.fr.happy",
                   "ep01_013.es.neutral", "ep01_013.es.happy", "ep01_014.de.sad_0_4"]
    first, happy, _, _, own, _, explicit = plan.items
    assert first.params["audio"] == str(tmp_path / "audio" / "de.wav")  # relative to the plan's folder
    assert "emotions" not in first.params and first.params["end"] == "hold" and first.params["actor"] == "anna"
    assert happy.params["emotions"] == str(tmp_path / "curves" / "happy.json")
    assert own.params["audio"] == "/abs/es.wav"
    assert explicit.params["emotions"] == "sad:0.4"
    assert len({item.params["name"] for item in plan.items}) == len(plan.items)  # one render folder per item
    assert plan.name == "s01"


def test_a_json_plan_with_several_renderers_names_them_in_the_ids(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path / "p.json", json.dumps({
        "actor": "a", "renderers": ["neural_texture", "triplane"], "shots": ["s"], "tracks": {"en": "en.wav"}})))
    assert [i.id for i in plan.items] == ["s.en.neutral.neural_texture", "s.en.neutral.triplane"]
    assert plan.items[1].params["renderer"] == "triplane" and plan.name == "p"


@pytest.mark.parametrize(("text", "expected"), [
    ('{"actor": "a", "shots": ["s"], "tracks": {"en": "x.wav"}, "colour": 1}', "unknown key(s) colour"),
    ('{"actor": "a", "shots": ["s"], "tracks": {"en": "x.wav"}, "options": {"format": "avi"}}',
     "param 'format' of 'dub' must be one of"),
    ('{"actor": "a", "shots": ["s"], "tracks": {"en": "x.wav"}, "options": {"name": "mine"}}',
     "options may not set name"),
    ('{"shots": ["s"], "tracks": {"en": "x.wav"}}', "no actor"),
    ('{"actor": "a", "shots": ["s"]}', "no audio tracks"),
    ('{"actor": "a", "items": [{"shot": "s", "audio": "x.wav"}, {"shot": "s", "audio": "y.wav"}]}',
     "duplicate item id(s) s.dub.neutral"),
    ('{"actor": "a"}', "no items"),
    ('{"actor": "a", "shots": ["s"], "tracks": {"en": "x.wav"}, "options": {"audio_offset_s": -1}}',
     "must be >= 0"),
    ("[1, 2]", "must be an object"),
    ("{not json", "not valid JSON"),
], ids=["unknown-key", "bad-format", "owned-param", "no-actor", "no-tracks", "duplicates", "empty", "bounds",
        "not-object", "bad-json"])
def test_plan_mistakes_are_refused_with_where_they_are(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(write(tmp_path / "plan.json", text))
    assert expected in str(caught.value)


def test_a_missing_plan_file_and_bad_toml_say_so(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(tmp_path / "nope.toml")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(write(tmp_path / "bad.toml", "name = "))


def test_long_render_names_stay_valid_and_distinct() -> None:
    a = render_name_for("season-one-german-and-french", "episode_0001_shot_0012.de.happy.neural_texture")
    b = render_name_for("season-one-german-and-french", "episode_0001_shot_0012.de.happy.triplane_fast")
    assert len(a) <= MAX_NAME and len(b) <= MAX_NAME and a != b


def test_a_plan_object_from_a_front_end_resolves_paths_against_the_base(tmp_path: Path) -> None:
    plan = parse_plan({"actor": "a", "shots": [{"shot": "s", "tracks": {"de": "de.wav"}}]}, base=tmp_path,
                      name="from-app")
    assert plan.items[0].params["audio"] == str(tmp_path / "de.wav") and plan.name == "from-app"
