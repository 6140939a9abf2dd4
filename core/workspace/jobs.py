"""The job kind that creates a workspace (``emodub workspace init PATH``), so that a front-end can make one too."""

from __future__ import annotations

from typing import Any

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import Arg, job_kind


@job_kind("workspace.init", help="create a new workspace folder (new, or empty)",
          args=[Arg("path", help="the folder to create the workspace in")], needs_workspace=False)
def run_workspace_init(ctx: JobContext) -> dict[str, Any]:
    from . import Workspace, WorkspaceError

    try:
        ws = Workspace.create(ctx.params["path"])
    except WorkspaceError as exc:
        raise JobFailed(str(exc), hint=exc.hint, code=exc.code) from None
    ctx.log(f"created workspace {ws.root}")
    return {"workspace": str(ws.root)}
