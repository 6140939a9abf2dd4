"""Fuzzing the job-spec decoder and the params check: any input gives a spec or a clean error.

"Clean" means :class:`~core.jobs.protocol.ProtocolError` from the decoder and
:class:`~core.jobs.context.JobFailed` with code ``bad_spec`` or ``bad_params`` from the params check,
never another exception (RecursionError, OverflowError, TypeError...).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.jobs import protocol as P
from core.jobs.context import JobFailed
from core.jobs.registry import all_kinds

KINDS = all_kinds()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**320),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                           max_leaves=20)
param_names = st.one_of(st.sampled_from(sorted({a.dest() for k in KINDS.values() for a in k.args})),
                        st.text(max_size=12))
params = st.dictionaries(param_names, json_values, max_size=6)
specs = st.fixed_dictionaries(
    {"v": st.one_of(st.sampled_from([1, 2]), scalars), "kind": st.one_of(st.sampled_from(sorted(KINDS)), scalars)},
    optional={"params": st.one_of(params, json_values), "workspace": scalars, "id": scalars, "extra": scalars})


def _decode(text: str | bytes) -> P.JobSpec | None:
    try:
        return P.decode_spec(text)
    except P.ProtocolError:
        return None


def _check(spec: P.JobSpec) -> None:
    kind = KINDS.get(spec.kind)
    if kind is None:
        return
    try:
        warnings = kind.check_params(spec.params, strict=spec.strict)
    except JobFailed as exc:
        assert exc.code in (P.BAD_SPEC, P.BAD_PARAMS) and exc.message and exc.hint
        return
    assert all(isinstance(w, str) for w in warnings)
    assert spec.strict is False or not warnings


@FUZZ
@given(specs)
def test_any_spec_object_decodes_and_checks_cleanly(obj: dict[str, Any]) -> None:
    text = json.dumps(obj)  # NaN/Infinity stay in: Python's json writes and reads them
    spec = _decode(text)
    if spec is not None:
        assert spec.kind == obj["kind"] and spec.version in P.SUPPORTED_VERSIONS
        _check(spec)


@FUZZ
@given(st.one_of(st.text(), st.binary(),
                 st.builds(lambda n, s: "[" * n + s, st.integers(0, 20_000), st.text(max_size=4)),
                 st.builds(lambda n, s: '{"v": 2, "kind": "dub", "params": ' + '{"a": ' * n + s, st.integers(0, 3000),
                           st.text(max_size=4))))
def test_any_text_is_a_spec_or_a_protocol_error(text: str | bytes) -> None:
    spec = _decode(text)
    if spec is not None:
        _check(spec)


@FUZZ
@given(st.sampled_from(sorted(KINDS)), params)
def test_params_of_every_kind_are_checked_cleanly(kind: str, values: dict[str, Any]) -> None:
    _check(P.JobSpec(kind=kind, params=values))
    _check(P.JobSpec(kind=kind, params=values, version=1))
