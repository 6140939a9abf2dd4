"""One place for the Blender API differences between 4.2 LTS and 5.x.

* Sequencer: 4.x has ``sequence_editor.sequences`` / ``sequences_all``; 5.0 renamed them ``strips`` /
  ``strips_all``. 5.1 renames the file trims ``animation_offset_start/end`` to
  ``content_trim_start/end`` (the old names stay, deprecated, until 6.0).
* Animation: 4.2 keeps F-curves in ``action.fcurves``; 4.4+ has layered actions (``action.layers`` ->
  ``strips`` -> ``channelbag(slot)`` -> ``fcurves``) with the ID's ``animation_data.action_slot``,
  and 5.0 removed ``action.fcurves``.

The functions only use attribute access (duck typing) and never import ``bpy``, so they are tested
with plain objects shaped like either API as well as with the real bpy module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .jobspec import SoundStripInfo
from .placement import Occupant, StripSpan

# --------------------------------------------------------------------------------------------------
# Sequencer
# --------------------------------------------------------------------------------------------------

def top_strips(editor: Any) -> Any:
    """The editor's top-level strip collection (has ``new_movie``/``new_sound``/``remove``)."""
    strips = getattr(editor, "strips", None)
    return strips if strips is not None else editor.sequences


def all_strips(editor: Any) -> list[Any]:
    """Every strip, including those inside meta strips."""
    strips = getattr(editor, "strips_all", None)
    return list(strips if strips is not None else editor.sequences_all)


def find_strip(editor: Any, name: str) -> Any | None:
    if editor is None or not name:
        return None
    return next((s for s in all_strips(editor) if s.name == name), None)


def selected_strips(editor: Any, kind: str | None = None) -> list[Any]:
    """Selected strips (of type ``kind`` such as ``"SOUND"`` when given)."""
    if editor is None:
        return []
    return [s for s in all_strips(editor) if s.select and (kind is None or s.type == kind)]


def strips_of_type(editor: Any, kind: str) -> list[Any]:
    return [] if editor is None else [s for s in all_strips(editor) if s.type == kind]


def _trim_names(strip: Any) -> tuple[str, str]:
    # Prefer the 5.1+ names; fall back to the 4.2-5.0 names.
    if hasattr(strip, "content_trim_start"):
        return "content_trim_start", "content_trim_end"
    return "animation_offset_start", "animation_offset_end"


def content_trim(strip: Any) -> tuple[int, int]:
    """Frames cut from the start and end of the strip's file."""
    start, end = _trim_names(strip)
    return int(getattr(strip, start, 0)), int(getattr(strip, end, 0))


def set_content_trim(strip: Any, start: int, end: int) -> None:
    start_name, end_name = _trim_names(strip)
    setattr(strip, start_name, int(start))
    setattr(strip, end_name, int(end))


def new_movie(editor: Any, name: str, filepath: str, channel: int, frame_start: int) -> Any:
    return top_strips(editor).new_movie(name=name, filepath=filepath, channel=int(channel),
                                         frame_start=int(frame_start))


def new_image(editor: Any, name: str, filepath: str, channel: int, frame_start: int) -> Any:
    """A one-frame image strip of ``filepath``."""
    strip = top_strips(editor).new_image(name=name, filepath=filepath, channel=int(channel),
                                         frame_start=int(frame_start))
    strip.frame_final_duration = 1
    return strip


def strip_span(strip: Any) -> StripSpan:
    """The timing of a movie strip as plain numbers."""
    trim_start, trim_end = content_trim(strip)
    return StripSpan(name=strip.name, channel=int(strip.channel), frame_start=float(strip.frame_start),
                     content_frames=int(strip.frame_duration), trim_start=trim_start, trim_end=trim_end,
                     offset_start=int(strip.frame_offset_start), offset_end=int(strip.frame_offset_end))


def occupants(editor: Any, exclude_names: Iterable[str] = ()) -> list[Occupant]:
    """Channel and visible range of every top-level strip (except ``exclude_names``)."""
    skip = set(exclude_names)
    return [Occupant(int(s.channel), float(s.frame_final_start), float(s.frame_final_end))
            for s in top_strips(editor) if s.name not in skip]


def sound_strip_info(strip: Any, abspath: Any = None) -> SoundStripInfo:
    """The numbers of a sound strip; ``abspath`` resolves Blender's ``//relative`` paths."""
    sound = getattr(strip, "sound", None)
    path = getattr(sound, "filepath", "") if sound is not None else ""
    if abspath is not None and path:
        path = abspath(path, library=getattr(sound, "library", None))
    trim_start, _ = content_trim(strip)
    return SoundStripInfo(name=strip.name, filepath=str(path), frame_start=float(strip.frame_start),
                          final_start=float(strip.frame_final_start), final_end=float(strip.frame_final_end),
                          trim_start=float(trim_start),
                          sound_offset_s=float(getattr(strip, "sound_offset", 0.0)),
                          volume=float(getattr(strip, "volume", 1.0)))


def sound_is_packed(strip: Any) -> bool:
    sound = getattr(strip, "sound", None)
    return sound is not None and getattr(sound, "packed_file", None) is not None


# --------------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------------

def action_fcurves(action: Any, slot: Any = None) -> list[Any]:
    """The F-curves of ``action`` for ``slot`` (layered actions) or all of them (4.2 actions)."""
    if action is None:
        return []
    layers = getattr(action, "layers", None)
    if layers is not None and len(layers) > 0:
        for layer in layers:
            for strip in layer.strips:
                if slot is not None:
                    bag = strip.channelbag(slot)
                    if bag is not None:
                        return list(bag.fcurves)
                else:
                    for bag in getattr(strip, "channelbags", ()):
                        return list(bag.fcurves)
        return []
    fcurves = getattr(action, "fcurves", None)  # 4.2 (and 4.4/4.5's legacy view)
    return list(fcurves) if fcurves is not None else []


def id_fcurves(id_data: Any) -> list[Any]:
    """The F-curves animating ``id_data`` (a scene here): its action, restricted to its slot."""
    anim = getattr(id_data, "animation_data", None)
    if anim is None or anim.action is None:
        return []
    return action_fcurves(anim.action, getattr(anim, "action_slot", None))


def find_fcurve(id_data: Any, data_path: str, index: int = 0) -> Any | None:
    return next((fc for fc in id_fcurves(id_data) if fc.data_path == data_path and fc.array_index == index),
                None)


def remove_keyframes_between(fcurve: Any, start: float, end: float) -> int:
    """Delete the keyframes of ``fcurve`` with ``start <= frame <= end``; returns how many."""
    points = fcurve.keyframe_points
    doomed = [p for p in points if start - 1e-6 <= p.co[0] <= end + 1e-6]
    for point in reversed(doomed):
        points.remove(point, fast=True)
    if doomed:
        fcurve.update()
    return len(doomed)
