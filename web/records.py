"""Call records for supervisors: the recent calls, one call's record with every event,
its survey and its recording, and the recording's audio.

- ``/supervisor/calls``: recent calls (newest first) with their survey score;
- ``/supervisor/calls/{call_id}``: the call's record, all its events whatever
  their kind (the router's, the IVR's, supervisors' actions), its payments
  (status only: no digit is ever stored), the survey score and comment, and
  the recording in an ``<audio>`` element;
- ``GET /api/calls/{call_id}/recording`` and ``.../survey-comment`` (the caller's
  recorded comment): the WAV, for supervisors and admins only (agents get 403).
  Played in the page, never offered as a download: no
  ``Content-Disposition: attachment``; ``Cache-Control: no-store`` like every
  answer (`web.app.SecurityHeaders`).

Role checks are on the server, for every page and call, from the session.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from store import CallRecord
from web.auth import Principal
from web.context import WebContext

__all__ = ["record_routes", "SUPERVISOR_ROLES", "call_detail", "recent_calls",
           "supervisor_refusal", "TEMPLATES", "RECENT_DAYS", "RECENT_MAX"]

SUPERVISOR_ROLES = ("supervisor", "admin")
RECENT_DAYS = 7
RECENT_MAX = 200
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _t(v: datetime | None) -> str:
    return v.strftime("%Y-%m-%d %H:%M:%S %Z") if v else ""


def _row(r: CallRecord) -> dict[str, Any]:
    talk = ((r.ended_at - r.answered_at).total_seconds()
            if r.answered_at and r.ended_at else None)
    return {"call_id": r.call_id, "at": _t(r.arrived_at or r.queued_at), "caller": r.caller,
            "queue": r.queue_id, "intent": r.intent, "agent": r.agent_id,
            "outcome": r.outcome, "talk_s": round(talk) if talk is not None else None,
            "survey_score": r.survey_score}


def recent_calls(web: WebContext) -> list[dict[str, Any]]:
    """The calls of the last `RECENT_DAYS`, newest first (store I/O)."""
    records = web.store.calls(since=web.now() - timedelta(days=RECENT_DAYS))
    records.reverse()
    return [_row(r) for r in records[:RECENT_MAX]]


def call_detail(web: WebContext, call_id: str) -> dict[str, Any] | None:
    """One call: record, events, payments, survey, recording (store I/O); None: unknown."""
    rec = web.store.call_record(call_id)
    if rec is None:
        return None
    events = web.store.call_events([call_id]).get(call_id, [])
    recording = web.store.recording(call_id)
    payments = web.store.call_payments(call_id)
    return {
        "record": _row(rec) | {"language": rec.language, "flow": rec.flow,
                               "flow_version": rec.flow_version, "reason": rec.reason,
                               "answered_at": _t(rec.answered_at), "ended_at": _t(rec.ended_at),
                               "wrap_up_s": rec.wrap_up_s,
                               "variables": dict(rec.variables or {})},
        "events": [{"seq": e.seq, "at": _t(e.at), "event": e.event, "agent": e.agent_id,
                    "data": json.dumps(dict(e.data), sort_keys=True) if e.data else ""}
                   for e in events],
        "payments": [{"at": _t(p.requested_at), "agent": p.agent_id, "status": p.status,
                      "detail": p.detail, "updated_at": _t(p.updated_at)} for p in payments],
        "survey": {"score": rec.survey_score,
                   "comment": bool(rec.survey_comment and Path(rec.survey_comment).is_file()),
                   "comment_url": f"/api/calls/{call_id}/survey-comment"},
        "recording": None if recording is None else {
            "kept": recording.removed_at is None and Path(recording.path).is_file(),
            "stored_at": _t(recording.stored_at), "removed_at": _t(recording.removed_at),
            "bytes": recording.bytes, "url": f"/api/calls/{call_id}/recording"},
    }


def supervisor_refusal(p: Principal | None, *, api: bool) -> Response | None:
    if p is None:
        if api:
            return JSONResponse({"error": "not logged in (or the session ended)"},
                                status_code=401)
        return RedirectResponse("/login", status_code=303)
    if p.role not in SUPERVISOR_ROLES:
        msg = f"{p.role} users may not see call and conversation records or recordings"
        return JSONResponse({"error": msg}, status_code=403) if api else Response(
            msg, status_code=403, media_type="text/plain")
    return None


def record_routes(web: WebContext) -> list[Route]:
    templates = Jinja2Templates(directory=TEMPLATES)

    async def who(request: Request) -> Principal | None:
        return await run_in_threadpool(web.principal, request)

    def base(p: Principal, title: str) -> dict[str, Any]:
        return web.page(p, title, "calls")

    async def calls_page(request: Request) -> Response:
        p = await who(request)
        refused = supervisor_refusal(p, api=False)
        if refused is not None:
            return refused
        assert p is not None
        ctx = base(p, "Calls") | {"calls": await run_in_threadpool(recent_calls, web),
                                   "days": RECENT_DAYS}
        return templates.TemplateResponse(request, "calls.html", ctx)

    async def call_page(request: Request) -> Response:
        p = await who(request)
        refused = supervisor_refusal(p, api=False)
        if refused is not None:
            return refused
        assert p is not None
        call_id = request.path_params["call_id"]
        detail = await run_in_threadpool(call_detail, web, call_id)
        if detail is None:
            return Response(f"no call {call_id!r}", status_code=404, media_type="text/plain")
        ctx = base(p, f"Call {call_id}") | {"call_id": call_id, "d": detail}
        return templates.TemplateResponse(request, "call.html", ctx)

    async def recording(request: Request) -> Response:
        p = await who(request)
        refused = supervisor_refusal(p, api=True)
        if refused is not None:
            return refused
        call_id = request.path_params["call_id"]
        rec = await run_in_threadpool(web.store.recording, call_id)
        if rec is None or rec.removed_at is not None or not Path(rec.path).is_file():
            return JSONResponse({"error": f"no recording kept for call {call_id!r}"},
                                status_code=404)
        # no filename: FileResponse then sends no Content-Disposition (played, not saved)
        return FileResponse(rec.path, media_type="audio/wav")

    async def survey_comment(request: Request) -> Response:
        p = await who(request)
        refused = supervisor_refusal(p, api=True)
        if refused is not None:
            return refused
        call_id = request.path_params["call_id"]
        rec = await run_in_threadpool(web.store.call_record, call_id)
        path = rec.survey_comment if rec is not None else None
        if not path or not Path(path).is_file():
            return JSONResponse({"error": f"no survey comment kept for call {call_id!r}"},
                                status_code=404)
        return FileResponse(path, media_type="audio/wav")

    return [Route("/supervisor/calls", calls_page, methods=["GET"]),
            Route("/api/calls/{call_id}/survey-comment", survey_comment, methods=["GET"]),
            Route("/supervisor/calls/{call_id}", call_page, methods=["GET"]),
            Route("/api/calls/{call_id}/recording", recording, methods=["GET"])]
