"""Where the rendered dub goes in the sequencer: aligned to the source strip, in a free channel.

Pure Python (no ``bpy``). Blender's movie strip model: the file's frame ``k`` is shown at scene frame
``frame_start - trim_start + k``; ``trim_start``/``trim_end`` (``animation_offset_*``) cut frames from
the file's ends, and the handles ``offset_start``/``offset_end`` (``frame_offset_*``) hide more. The
dub renders the whole shot (every frame of the file), so the new strip copies the source's
``frame_start``, trims and handles: it then shows the same frames at the same scene frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_CHANNEL = 128


@dataclass(frozen=True)
class StripSpan:
    """The timing of a movie strip, in scene frames.

    Attributes:
        name: strip name.
        channel: its channel.
        frame_start: scene frame of the first frame of its trimmed content.
        content_frames: frames of the trimmed content (``frame_duration``).
        trim_start, trim_end: frames cut from the file's start/end (``animation_offset_*``).
        offset_start, offset_end: handles (``frame_offset_*``).
    """

    name: str
    channel: int
    frame_start: float
    content_frames: int
    trim_start: int = 0
    trim_end: int = 0
    offset_start: int = 0
    offset_end: int = 0

    @property
    def final_start(self) -> float:
        return self.frame_start + self.offset_start

    @property
    def final_end(self) -> float:
        """First frame after the visible range."""
        return self.frame_start + self.content_frames - self.offset_end

    @property
    def shot_start(self) -> float:
        """Scene frame where the file's frame 0 is (before ``trim_start`` hides it)."""
        return self.frame_start - self.trim_start

    @property
    def shot_frames(self) -> int:
        """Frames in the whole file (the engine's shot)."""
        return self.content_frames + self.trim_start + self.trim_end


@dataclass(frozen=True)
class Occupant:
    """A strip's channel and visible range ``[final_start, final_end)``."""

    channel: int
    final_start: float
    final_end: float


@dataclass(frozen=True)
class OutputPlan:
    """How to add the rendered movie: ``new_movie(channel, frame_start)``, then trims and handles.

    ``final_start``/``final_end`` are what the new strip must show; ``warning`` is non-empty when the
    render's frame count differs from the source's.
    """

    channel: int
    frame_start: float
    trim_start: int
    trim_end: int
    offset_start: int
    offset_end: int
    final_start: float
    final_end: float
    warning: str = ""


def overlaps(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    return a_start < b_end and b_start < a_end


def first_free_channel(wanted: int, start: float, end: float, occupants: Iterable[Occupant],
                       max_channel: int = MAX_CHANNEL) -> int:
    """The lowest channel >= ``wanted`` with nothing in ``[start, end)``.

    Raises:
        ValueError: every channel from ``wanted`` to ``max_channel`` is taken there.
    """
    taken = {o.channel for o in occupants if overlaps(start, end, o.final_start, o.final_end)}
    for channel in range(max(1, wanted), max_channel + 1):
        if channel not in taken:
            return channel
    raise ValueError(f"no free channel from {wanted} to {max_channel} over frames {start:g}-{end:g}")


def plan_output_strip(source: StripSpan, rendered_frames: int, output_channel: int,
                      occupants: Iterable[Occupant]) -> OutputPlan:
    """Place a render of ``rendered_frames`` frames of the source's shot.

    Args:
        source: the source movie strip.
        rendered_frames: frames in the rendered file (its frame ``k`` is the shot's frame ``k``).
        output_channel: the wanted channel; 0 means "just above the source". When that channel is
            busy over the source's range, the next free channel above is used.
        occupants: the other strips (the source included).

    Raises:
        ValueError: the render is too short to show any of the source's visible frames.
    """
    if rendered_frames < 1:
        raise ValueError("the engine rendered no frames")
    visible_last = source.trim_start + source.content_frames - source.offset_end  # exclusive, file frames
    if rendered_frames <= source.trim_start + source.offset_start:
        raise ValueError(f"the render has {rendered_frames} frames; the source strip shows frames "
                         f"{source.trim_start + source.offset_start}-{visible_last - 1} of its shot")
    warning = ""
    if rendered_frames != source.shot_frames:
        warning = (f"the engine rendered {rendered_frames} frames but the source shot has "
                   f"{source.shot_frames}; the new strip may not cover the source strip exactly")
    trim_end = max(0, rendered_frames - source.trim_start - source.content_frames)
    content = rendered_frames - source.trim_start - trim_end
    # A shorter render ends earlier: the end handle shrinks by the missing frames (never below 0), so
    # the strip ends where the source does or where the render does, whichever comes first.
    offset_end = max(0, source.offset_end - (source.content_frames - content))
    final_start = source.frame_start + source.offset_start
    final_end = source.frame_start + content - offset_end
    wanted = output_channel if output_channel > 0 else source.channel + 1
    channel = first_free_channel(wanted, final_start, final_end, occupants)
    return OutputPlan(channel=channel, frame_start=source.frame_start, trim_start=source.trim_start,
                      trim_end=trim_end, offset_start=source.offset_start, offset_end=offset_end,
                      final_start=final_start, final_end=final_end, warning=warning)
