"""The ``actor.consent`` job kind: ``emodub actor consent -w W --actor A --by NAME --scope TEXT --document REF``."""

from __future__ import annotations

from typing import Any

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import Arg, job_kind


@job_kind("actor.consent", help="record an actor's consent to be dubbed (required before any dub of the actor)",
          args=[Arg("--actor", required=True),
                Arg("--by", required=True, dest="consented_by",
                    help="the person who consented (or their legal representative)"),
                Arg("--scope", required=True, help="what they consented to (productions, languages, uses)"),
                Arg("--document", required=True,
                    help="a reference to the signed document (file path, archive or e-signature id)"),
                Arg("--date", default=None, help="when consent was given, YYYY-MM-DD (default today)"),
                Arg("--recorded-by", default=None, dest="recorded_by",
                    help="who records it (default: the user name)"),
                Arg("--replace", action="store_true", help="replace an existing record (kept in its history)")])
def run_consent(ctx: JobContext) -> dict[str, Any]:
    from core.workspace import WorkspaceError, validate_name

    from . import ConsentError, make_record, save_consent

    p = ctx.params
    try:
        validate_name(p["actor"], "actor name")
        record = make_record(p["actor"], consented_by=str(p["consented_by"]), scope=str(p["scope"]),
                             document=str(p["document"]), date=p.get("date"), recorded_by=p.get("recorded_by"),
                             document_base=ctx.workspace.root)
        record = save_consent(ctx.workspace, p["actor"], record, replace=bool(p.get("replace")))
    except ConsentError as exc:
        raise JobFailed(exc.message, code=exc.code, hint=exc.hint) from None
    except WorkspaceError as exc:
        raise JobFailed(str(exc), code=exc.code, hint=exc.hint) from None
    path = ctx.workspace.actor_dir(p["actor"]) / "consent.json"
    ctx.artifact(path, "consent")
    ctx.log(f"consent of actor {p['actor']!r} recorded as {record['id']} ({record['consented_by']}, {record['date']})")
    return {"actor": p["actor"], "consent": record["id"], "file": str(path),
            **{k: record[k] for k in ("consented_by", "scope", "date", "document", "document_sha256")}}
