"""Where the rendered strip goes: same frames as the source strip, in a free channel."""

from __future__ import annotations

import pytest

from addon.placement import Occupant, StripSpan, first_free_channel, plan_output_strip


def test_untrimmed_source_maps_one_to_one() -> None:
    source = StripSpan("take1", channel=1, frame_start=11, content_frames=40)
    assert (source.shot_start, source.shot_frames, source.final_start, source.final_end) == (11, 40, 11, 51)
    plan = plan_output_strip(source, 40, 3, [Occupant(1, 11, 51), Occupant(2, 11, 61)])
    assert (plan.channel, plan.frame_start, plan.final_start, plan.final_end) == (3, 11, 11, 51)
    assert (plan.trim_start, plan.trim_end, plan.offset_start, plan.offset_end) == (0, 0, 0, 0)
    assert plan.warning == ""


def test_trimmed_source_keeps_its_trims_and_handles() -> None:
    # File of 50 frames: 3 cut at the start, 7 at the end, handles of 2 and 4 frames.
    source = StripSpan("take1", channel=2, frame_start=100, content_frames=40, trim_start=3, trim_end=7,
                       offset_start=2, offset_end=4)
    assert source.shot_start == 97 and source.shot_frames == 50
    plan = plan_output_strip(source, 50, 0, [])
    assert plan.channel == 3  # 0: just above the source
    assert (plan.frame_start, plan.trim_start, plan.trim_end, plan.offset_start, plan.offset_end) == (
        100, 3, 7, 2, 4)
    assert (plan.final_start, plan.final_end) == (source.final_start, source.final_end) == (102, 136)


def test_short_or_long_render_is_placed_and_flagged() -> None:
    source = StripSpan("take1", channel=1, frame_start=0, content_frames=40, offset_end=2)
    short = plan_output_strip(source, 30, 2, [])
    assert (short.final_start, short.final_end, short.offset_end) == (0, 30, 0)
    assert "30 frames" in short.warning
    long = plan_output_strip(source, 45, 2, [])
    assert (long.trim_end, long.final_end, long.offset_end) == (5, 38, 2) and "45 frames" in long.warning
    with pytest.raises(ValueError, match="shows frames"):
        plan_output_strip(StripSpan("t", 1, 0, 40, trim_start=10), 10, 2, [])
    with pytest.raises(ValueError, match="no frames"):
        plan_output_strip(source, 0, 2, [])


def test_busy_output_channel_moves_up_to_the_first_free_one() -> None:
    source = StripSpan("take1", channel=1, frame_start=11, content_frames=40)
    busy = [Occupant(1, 11, 51), Occupant(3, 0, 20), Occupant(4, 50, 60), Occupant(5, 100, 200)]
    assert plan_output_strip(source, 40, 3, busy).channel == 5
    assert first_free_channel(3, 11, 51, [Occupant(3, 51, 60)]) == 3  # touching ends do not overlap
    with pytest.raises(ValueError, match="no free channel"):
        first_free_channel(127, 0, 10, [Occupant(127, 0, 10), Occupant(128, 5, 6)])
