"""An actor's consent record: who consented to being dubbed, to what, when, and where the signed document is.

A dub of a real person's face is a likeness made without the person in the room; the seed papers (LipNeRF,
the blink NeRF) name misuse as the risk of this technology. So no model of an actor dubs until the actor
carries a consent record, and every dub names it (:mod:`core.delivery.provenance`).

The record is ``actors/<actor>/consent.json`` (and a summary under the actor in ``emodub.json``)::

    {"format": "emodub-consent", "version": 1,
     "id": "consent-3f9a0c21b7de",            # sha256 of the fields below (first 12 hex digits)
     "actor": "anna",
     "consented_by": "Anna Example",          # the person who consented (or their legal representative)
     "scope": "German and French dubs of 'Film X', all release windows",
     "date": "2026-11-30",                    # when consent was given (ISO date, not in the future)
     "document": "contracts/anna-2026-11-30.pdf",   # a reference to the signed document (path, archive id...)
     "document_sha256": "...",                # when the document is a file emodub can read, else null
     "recorded_by": "j.editor",               # who entered it into emodub
     "recorded_at": "2026-12-02T11:00:00Z",
     "synthetic": false,                      # true for the synthetic actor (no real person)
     "previous": [...]}                       # the records this one replaced, newest first

``emodub actor consent --actor anna --by "Anna Example" --scope "..." --document REF [--date 2026-11-30]``
writes it (``--replace`` replaces an existing one, which is kept in ``previous``). The synthetic actor that
emodub generates for tests and the demo gets a record saying so (:func:`record_synthetic_consent`): its scope
is "synthetic", its document the generator.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.delivery.provenance import file_sha256

if TYPE_CHECKING:
    from core.workspace import Workspace

CONSENT_FILE = "consent.json"
FORMAT = "emodub-consent"
VERSION = 1
NO_CONSENT = "no_consent"
_ID_FIELDS = ("actor", "consented_by", "scope", "date", "document", "document_sha256", "recorded_by",
              "recorded_at", "synthetic")


class ConsentError(Exception):
    """A missing or invalid consent record; ``code`` is the job protocol's error code, ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "", code: str = NO_CONSENT) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def consent_command(actor: str, workspace: str | Path | None = None) -> str:
    """The command that records ``actor``'s consent (for hints)."""
    where = f" -w {workspace}" if workspace else ""
    return (f"emodub actor consent{where} --actor {actor} --by \"NAME OF THE PERSON\" --scope \"WHAT THEY AGREED TO\" "
            "--document \"REFERENCE OF THE SIGNED DOCUMENT\" [--date YYYY-MM-DD]")


def consent_path(ws: Workspace, actor: str) -> Path:
    return ws.actor_dir(actor) / CONSENT_FILE


def _check_fields(record: dict[str, Any]) -> list[str]:
    problems = []
    for key in ("consented_by", "scope", "document", "recorded_by"):
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"'{key}' is empty")
    try:
        date = _dt.date.fromisoformat(str(record.get("date")))
    except ValueError:
        problems.append(f"'date' must be an ISO date such as 2026-11-30, got {record.get('date')!r}")
    else:
        if date > _dt.date.today() + _dt.timedelta(days=1):  # a day of slack for time zones
            problems.append(f"'date' {date} is in the future")
    return problems


def make_record(actor: str, *, consented_by: str, scope: str, document: str, date: str | None = None,
                recorded_by: str | None = None, synthetic: bool = False,
                document_base: Path | None = None) -> dict[str, Any]:
    """A new consent record (see the module docstring).

    Args:
        document_base: folder a relative ``document`` path is read from for its sha256 (default: the current one).

    Raises:
        ConsentError: ``bad_params`` for an empty field or a bad date.
    """
    import getpass

    record: dict[str, Any] = {
        "actor": actor, "consented_by": consented_by.strip(), "scope": scope.strip(),
        "date": date or _dt.date.today().isoformat(), "document": document.strip(), "document_sha256": None,
        "recorded_by": (recorded_by or "").strip() or getpass.getuser(),
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "synthetic": bool(synthetic)}
    problems = _check_fields(record)
    if problems:
        raise ConsentError("invalid consent record: " + "; ".join(problems), code="bad_params",
                           hint="give --by, --scope and --document (and --date as YYYY-MM-DD)")
    doc = Path(record["document"]).expanduser()
    if not doc.is_absolute() and document_base is not None:
        doc = document_base / doc
    try:
        if doc.is_file():
            record["document_sha256"] = file_sha256(doc)
    except OSError:
        pass
    canonical = json.dumps({k: record[k] for k in _ID_FIELDS}, sort_keys=True).encode()
    return {"format": FORMAT, "version": VERSION, "id": "consent-" + hashlib.sha256(canonical).hexdigest()[:12],
            **record}


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What reports and output metadata carry of a record."""
    return {k: record.get(k) for k in ("id", "consented_by", "scope", "date", "document", "document_sha256",
                                        "recorded_by", "synthetic")}


def save_consent(ws: Workspace, actor: str, record: dict[str, Any], replace: bool = False) -> dict[str, Any]:
    """Write ``record`` as ``actor``'s consent (and its summary into the manifest).

    Raises:
        ConsentError: ``exists`` when the actor has a record and not ``replace``.
    """
    from core.workspace import atomic_write_json

    path = consent_path(ws, actor)
    old = read_consent(ws, actor)
    if old is not None:
        if not replace:
            raise ConsentError(f"actor {actor!r} already has a consent record ({old.get('id')}, by "
                               f"{old.get('consented_by')!r}, {old.get('date')})", code="exists",
                               hint="pass --replace to replace it (the old record is kept in its 'previous' list)")
        earlier = old.pop("previous", [])
        record = {**record, "previous": [old, *earlier]}
    else:
        record = {**record, "previous": []}
    ws.add_actor(actor)
    atomic_write_json(path, record)
    ws.update(lambda m: m["actors"][actor].__setitem__("consent", {**summary(record), "file": ws.rel(path)}))
    return record


def read_consent(ws: Workspace, actor: str) -> dict[str, Any] | None:
    """``actor``'s consent record, or ``None`` when there is none."""
    path = consent_path(ws, actor)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": "unreadable"}
    return data if isinstance(data, dict) else {"format": "unreadable"}


def require_consent(ws: Workspace, actor: str) -> dict[str, Any]:
    """``actor``'s valid consent record.

    Raises:
        ConsentError: ``no_consent`` when there is none or it is not valid; the hint gives the command that adds one.
    """
    record = read_consent(ws, actor)
    command = consent_command(actor, ws.root)
    if record is None:
        raise ConsentError(f"actor {actor!r} has no consent record: emodub dubs a person's face only with a record of "
                           "their consent (who consented, to what, when, and the signed document)",
                           hint=f"record it with: {command}")
    problems = [] if record.get("format") == FORMAT else [f"{consent_path(ws, actor)} is not a consent record"]
    problems += _check_fields(record) if not problems else []
    if record.get("actor") not in (None, actor):
        problems.append(f"it is the record of actor {record.get('actor')!r}")
    if problems:
        raise ConsentError(f"the consent record of actor {actor!r} is not valid: " + "; ".join(problems),
                           hint=f"record it again with: {command} --replace")
    return record


def record_synthetic_consent(ws: Workspace, actor: str, generator: str) -> dict[str, Any]:
    """The consent record of an actor emodub generated itself (no real person), unless it has one already."""
    existing = read_consent(ws, actor)
    if existing is not None and existing.get("format") == FORMAT:
        return existing
    record = make_record(actor, consented_by="nobody: a synthetic actor (no real person)",
                         scope="synthetic: a procedurally generated face, for tests, demos and benchmarks",
                         document=f"synthetic:{generator}", recorded_by="emodub", synthetic=True)
    return save_consent(ws, actor, record, replace=existing is not None)
