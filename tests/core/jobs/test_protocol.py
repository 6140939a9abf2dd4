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
    ('{"v": 4, "event": "done", "job_id": "a"}', "protocol version 4"),
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


def test_specs_keep_their_version_and_newer_ones_are_refused() -> None:
    old = P.decode_spec('{"v": 1, "kind": "selftest", "params": {"step": 3}}')
    assert old.version == 1 and not old.strict
    new = P.decode_spec(P.JobSpec(kind="selftest").to_json())
    assert new.version == P.PROTOCOL_VERSION == 3 and new.strict
    assert json.loads(old.to_json())["v"] == 1  # re-encoded as it came
    with pytest.raises(P.ProtocolError, match="update emodub"):
        P.decode_spec('{"v": 4, "kind": "selftest"}')
    with pytest.raises(P.ProtocolError, match="protocol version True"):
        P.decode_spec('{"v": true, "kind": "selftest"}')
    # An engine answers a version-1 front-end in version 1, and front-ends read both.
    line = P.encode_event(P.Done("j"), version=1)
    assert json.loads(line)["v"] == 1 and P.decode_event(line) == P.Done("j", t=json.loads(line)["t"])


def test_older_front_ends_get_progress_without_the_fields_they_do_not_know() -> None:
    event = P.Progress("j", stage="render", done=3, total=10, overall=0.42, overall_eta_s=12.5)
    for version in (1, 2):
        payload = json.loads(P.encode_event(event, version=version))
        assert payload["v"] == version and "overall" not in payload and "overall_eta_s" not in payload
        assert P.decode_event(json.dumps(payload)).overall is None
    decoded = P.decode_event(P.encode_event(event))
    assert decoded.overall == pytest.approx(0.42) and decoded.overall_eta_s == pytest.approx(12.5)
    with pytest.raises(P.ProtocolError, match="'overall' has the wrong type"):
        P.decode_event('{"v": 3, "event": "progress", "job_id": "j", "overall": "half"}')


@pytest.mark.timeout(20)
@pytest.mark.parametrize("nested", ['{"v": 2, "kind": "x", "params": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}",
                                    "[" * 100_000, '{"v": 2, "kind": "x", "p": ' + '{"a": ' * 5000 + "1" + "}" * 5001])
def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error(nested: str) -> None:
    with pytest.raises(P.ProtocolError, match="nested|expected a JSON object"):
        P.decode_spec(nested)
    with pytest.raises(P.ProtocolError):
        P.decode_event(nested)
    assert not P.is_cancel_line(nested)


def test_spec_scanner_finds_the_end_of_a_spec_without_a_newline() -> None:
    spec = P.JobSpec(kind="selftest", params={"note": 'a "}" brace\\ and {"x": [1]}'}).to_json()
    scanner = P.SpecScanner()
    pieces = [spec[:7], spec[7:30], spec[30:]]
    ends = [scanner.feed(piece.encode()) for piece in pieces]
    assert ends[:2] == [None, None] and ends[2] == len(spec.encode())
    assert P.decode_spec(bytes(scanner.data[: ends[2]])) == P.decode_spec(spec)
    # a newline ends a spec line; text that is not an object ends at once
    assert P.SpecScanner().feed(b'{"v": 2,\ncancel\n') == 9
    assert P.SpecScanner().feed(b"  \n\t") is None
    assert P.SpecScanner().feed(b"hello") == 5
    deep = P.SpecScanner()
    assert deep.feed(b"{" + b"[" * 100) == P.MAX_JSON_DEPTH + 1


def test_error_codes_tell_user_errors_from_bugs() -> None:
    required = {"bad_input", "bad_params", "bad_spec", "busy", "read_only", "incompatible_checkpoint",
                "unsafe_file", "cancelled", "internal"}
    assert required <= set(P.ERROR_CODES)
    assert not P.is_user_error(P.INTERNAL)
    assert all(P.is_user_error(code) for code in required - {"internal"})
    assert P.is_user_error("missing_input")  # a kind's own code is the user's to fix too
