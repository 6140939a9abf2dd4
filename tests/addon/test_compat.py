"""The compatibility module against plain objects shaped like Blender 4.2 LTS and 5.x.

The shapes mirror the real APIs: 4.2 ``sequence_editor.sequences``/``sequences_all`` and
``action.fcurves``; 5.0 ``strips``/``strips_all`` and layered actions (``layers[i].strips[j]
.channelbag(slot).fcurves``, no ``action.fcurves``); 5.1 ``content_trim_*``. The same functions run
against the real bpy 5.0 module in ``test_blender_addon.py`` (and bpy 4.2 when available).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from addon import compat


class FakeCollection(list):
    def new_movie(self, name: str, filepath: str, channel: int, frame_start: int) -> SimpleNamespace:
        strip = movie(name, channel, frame_start, 30, filepath=filepath)
        self.append(strip)
        return strip


def movie(name: str, channel: int, frame_start: float, duration: int, *, filepath: str = "/v.mp4",
          select: bool = False, trims: tuple[int, int] = (0, 0), offsets: tuple[int, int] = (0, 0),
          new_trim_names: bool = False) -> SimpleNamespace:
    strip = SimpleNamespace(name=name, type="MOVIE", channel=channel, frame_start=frame_start,
                            frame_duration=duration, frame_offset_start=offsets[0],
                            frame_offset_end=offsets[1], frame_final_start=frame_start + offsets[0],
                            frame_final_end=frame_start + duration - offsets[1], select=select,
                            filepath=filepath)
    if new_trim_names:
        strip.content_trim_start, strip.content_trim_end = trims
        strip.animation_offset_start = strip.animation_offset_end = -1  # deprecated: must not be read
    else:
        strip.animation_offset_start, strip.animation_offset_end = trims
    return strip


def sound_strip(name: str, channel: int, start: float, end: float, select: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, type="SOUND", channel=channel, frame_start=start,
                           frame_final_start=start, frame_final_end=end, select=select,
                           animation_offset_start=2, animation_offset_end=0, sound_offset=0.05, volume=0.8,
                           sound=SimpleNamespace(filepath="//audio/dub.wav", library=None, packed_file=None))


def editor_42(top: list[Any], inner: list[Any] = ()) -> SimpleNamespace:
    return SimpleNamespace(sequences=FakeCollection(top), sequences_all=[*top, *inner], active_strip=None)


def editor_50(top: list[Any], inner: list[Any] = ()) -> SimpleNamespace:
    return SimpleNamespace(strips=FakeCollection(top), strips_all=[*top, *inner], active_strip=None)


@pytest.mark.parametrize("make_editor", [editor_42, editor_50], ids=["blender-4.2", "blender-5.0"])
def test_sequencer_access_on_both_apis(make_editor: Any) -> None:
    src = movie("take1", 1, 11, 40, select=True)
    dub = sound_strip("dub", 2, 11, 61, select=True)
    nested = sound_strip("in-meta", 5, 0, 10, select=True)
    editor = make_editor([src, dub], [nested])
    assert compat.find_strip(editor, "in-meta") is nested and compat.find_strip(editor, "nope") is None
    assert compat.selected_strips(editor, "SOUND") == [dub, nested]
    assert compat.strips_of_type(editor, "MOVIE") == [src]
    assert [o.channel for o in compat.occupants(editor)] == [1, 2]  # top level only
    assert [o.channel for o in compat.occupants(editor, exclude_names=["dub"])] == [1]
    new = compat.new_movie(editor, "take1.dub", "/r.mp4", 3, 11)
    assert new in compat.top_strips(editor) and (new.channel, new.frame_start) == (3, 11)
    info = compat.sound_strip_info(dub, abspath=lambda p, library=None: p.replace("//", "/blend/"))
    assert (info.filepath, info.trim_start, info.sound_offset_s, info.volume) == (
        "/blend/audio/dub.wav", 2, 0.05, 0.8)
    assert not compat.sound_is_packed(dub)


@pytest.mark.parametrize("new_names", [False, True], ids=["animation_offset", "content_trim"])
def test_trims_and_span_with_old_and_new_names(new_names: bool) -> None:
    strip = movie("take1", 2, 100, 40, trims=(3, 7), offsets=(2, 4), new_trim_names=new_names)
    assert compat.content_trim(strip) == (3, 7)
    span = compat.strip_span(strip)
    assert (span.shot_start, span.shot_frames, span.final_start, span.final_end) == (97, 50, 102, 136)
    compat.set_content_trim(strip, 1, 2)
    assert compat.content_trim(strip) == (1, 2)
    if new_names:
        assert (strip.animation_offset_start, strip.animation_offset_end) == (-1, -1)


class KeyPoints(list):
    def remove(self, point: Any, fast: bool = False) -> None:  # bpy's signature
        super().remove(point)


def fcurve(path: str, keys: list[tuple[float, float]], index: int = 0) -> SimpleNamespace:
    points = KeyPoints(SimpleNamespace(co=(f, v)) for f, v in keys)
    return SimpleNamespace(data_path=path, array_index=index, keyframe_points=points, mute=False,
                           update=lambda: None, evaluate=lambda frame: frame)


def scene_42(curves: list[Any]) -> SimpleNamespace:
    return SimpleNamespace(animation_data=SimpleNamespace(action=SimpleNamespace(fcurves=curves)))


def scene_50(curves: list[Any], other_slot_curves: list[Any] = ()) -> SimpleNamespace:
    mine, other = object(), object()
    bags = {id(mine): SimpleNamespace(fcurves=curves),
            id(other): SimpleNamespace(fcurves=list(other_slot_curves))}
    strip = SimpleNamespace(channelbag=lambda slot: bags.get(id(slot)),
                            channelbags=[bags[id(other)], bags[id(mine)]])
    action = SimpleNamespace(layers=[SimpleNamespace(strips=[strip])], slots=[other, mine])  # no .fcurves
    return SimpleNamespace(animation_data=SimpleNamespace(action=action, action_slot=mine))


@pytest.mark.parametrize("make_scene", [scene_42, scene_50], ids=["blender-4.2", "blender-5.0"])
def test_fcurves_on_both_apis(make_scene: Any) -> None:
    happy = fcurve("emodub.happy", [(11, 0.0), (31, 1.0)])
    sad = fcurve("emodub.sad", [(11, 0.5)])
    scene = make_scene([happy, sad])
    assert compat.id_fcurves(scene) == [happy, sad]
    assert compat.find_fcurve(scene, "emodub.sad") is sad
    assert compat.find_fcurve(scene, "emodub.sad", index=1) is None
    assert compat.find_fcurve(scene, "emodub.fear") is None
    assert compat.remove_keyframes_between(happy, 10, 20) == 1
    assert [p.co for p in happy.keyframe_points] == [(31, 1.0)]


def test_layered_action_reads_only_the_scenes_slot() -> None:
    theirs = fcurve("emodub.happy", [(0, 1.0)])
    scene = scene_50([], other_slot_curves=[theirs])
    assert compat.id_fcurves(scene) == []  # another ID's curves in the same action are not ours
    assert compat.action_fcurves(scene.animation_data.action) == [theirs]  # no slot: the first bag


def test_no_animation() -> None:
    assert compat.id_fcurves(SimpleNamespace(animation_data=None)) == []
    assert compat.id_fcurves(SimpleNamespace(animation_data=SimpleNamespace(action=None))) == []
    assert compat.action_fcurves(SimpleNamespace(layers=[], fcurves=[1])) == [1]  # 4.4: empty layered view
