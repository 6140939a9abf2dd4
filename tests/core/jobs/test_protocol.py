from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.jobs import protocol as P

text = st.text(max_size=40)
events = st.one_of(
    st.builds(P.Started, job_id=text, kind=text),
    st.builds(P.Progress, job_id=text, stage=text, done=st.integers(0, 10**6),
              total=st.integers(0, 10**6), message=text,
              eta_s=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))),
    st.builds(P.Log, job_id=text, level=st.sampled_from(P.LOG_LEVELS), message=text),
    st.builds(P.Artifact, job_id=text, path=text, kind=text),
    st.builds(P.Error, job_id=text, code=text, message=text, hint=text, traceback=text),
    st.builds(P.Done, job_id=text, outputs=st.dictionaries(text, st.one_of(st.integers(), text))),
    st.builds(P.Cancelled, job_id=text, message=text),
)


@given(events)
def test_event_round_trip(event: P.Event) -> None:
    line = P.encode_event(event)
    assert "\n" not in line
    assert P.decode_event(line) == event


def test_spec_round_trip() -> None:
    spec = P.JobSpec(kind="dub", params={"shot": "s1", "emotions": {"happy": [0.0, 0.5]}}, workspace="/w")
    assert P.decode_spec(spec.to_json()) == spec
    assert P.decode_spec(spec.to_json().encode()) == spec


@pytest.mark.parametrize("line, fragment", [
    ("", "empty"),
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"v": 1, "event": "explode", "job_id": "a"}', "unknown event 'explode'"),
    ('{"v": 2, "event": "done", "job_id": "a"}', "protocol version 2"),
    ('{"event": "done", "job_id": "a"}', "protocol version None"),
    ('{"v": 1, "event": "done"}', "no 'job_id'"),
    ('{"v": 1, "job_id": "a"}', "no 'event'"),
    ('{"v": 1, "event": "progress", "job_id": "a", "done": "3"}', "wrong type"),
    ('{"v": 1, "event": "progress", "job_id": "a", "done": true}', "wrong type"),
    ('{"v": 1, "event": "log", "job_id": "a", "level": "shout"}', "log level"),
    ('{"v": 1, "event": "done", "job_id": "a", "extra": 1}', "unexpected field"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_event_lines_are_rejected_clearly(line: str | bytes, fragment: str) -> None:
    with pytest.raises(P.ProtocolError, match=fragment.replace("(", r"\(")):
        P.decode_event(line)


@given(st.text())
def test_decoder_never_crashes_on_garbage(line: str) -> None:
    try:
        P.decode_event(line)
    except P.ProtocolError:
        pass


@pytest.mark.parametrize("spec, fragment", [
    ('{"v": 1}', "no 'kind'"),
    ('{"v": 1, "kind": "x", "params": []}', "'params' must be"),
    ('{"v": 1, "kind": "x", "workspace": 3}', "'workspace' must be"),
    ('{"v": 9, "kind": "x"}', "protocol version 9"),
    ('{"v": 1, "kind": "x", "colour": "red"}', "unexpected field"),
])
def test_bad_specs_are_rejected(spec: str, fragment: str) -> None:
    with pytest.raises(P.ProtocolError, match=fragment):
        P.decode_spec(spec)


def test_cancel_lines() -> None:
    assert P.is_cancel_line("cancel\n")
    assert P.is_cancel_line(P.encode_cancel())
    assert not P.is_cancel_line("cancelled")
    assert not P.is_cancel_line(json.dumps({"control": "pause"}))
