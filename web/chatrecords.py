"""Text conversations for supervisors, beside the call records (`web.records`):
the recent conversations, and one conversation whole.

- ``/supervisor/chats``: the conversations of the last `RECENT_DAYS`, newest
  first: channel, customer, language, intent, state, the agents who had it, the
  first response time and the survey score;
- ``/supervisor/chats/{conversation_id}``: its transcript (masked before it was
  stored: a card number never reaches this page), each routing of it through the
  router (queue, agent, when offered, accepted, first reply, ended, by whom, the
  wrap-up note, survey), every text event (queue_log-style: handed-to-person,
  queued, offered with the router's reason, accepted, ended ...), and the
  customer's earlier contacts, calls and chats, linked.

Supervisors and admins only, checked on the server from the session (agents 403).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from store.chats import ChatRoute
from web.context import WebContext
from web.records import RECENT_DAYS, RECENT_MAX, TEMPLATES, supervisor_refusal

__all__ = ["chat_record_routes", "recent_conversations", "conversation_detail"]


def _t(v: datetime | None) -> str:
    return v.strftime("%Y-%m-%d %H:%M:%S %Z") if v else ""


def _s(a: datetime | None, b: datetime | None) -> int | None:
    return round((b - a).total_seconds()) if a is not None and b is not None else None


def _route(r: ChatRoute) -> dict[str, Any]:
    return {"route_id": r.route_id, "queue": r.queue_id, "agent": r.agent_id or "",
            "state": r.state, "routed_at": _t(r.routed_at), "offered_at": _t(r.offered_at),
            "accepted_at": _t(r.accepted_at), "first_reply_at": _t(r.first_reply_at),
            "ended_at": _t(r.ended_at), "ended_by": r.ended_by or "",
            "first_response_s": _s(r.routed_at, r.first_reply_at),
            "handle_s": _s(r.accepted_at, r.ended_at), "wrap_up": r.wrap_up or "",
            "survey_score": r.survey_score, "survey_comment": r.survey_comment or ""}


def recent_conversations(web: WebContext) -> list[dict[str, Any]]:
    """Conversations of the last `RECENT_DAYS`, newest first (store I/O)."""
    store: Any = web.store
    since = web.now() - timedelta(days=RECENT_DAYS)
    convs = store.text_conversations(since=since)
    convs.reverse()
    routes: dict[str, list[ChatRoute]] = {}
    for r in store.chat_routes(since=since):
        routes.setdefault(r.conversation_id, []).append(r)
    out = []
    for c in convs[:RECENT_MAX]:
        rs = routes.get(c.id, [])
        first = next((r for r in rs if r.first_reply_at is not None), None)
        scores = [r.survey_score for r in rs if r.survey_score is not None]
        out.append({"id": c.id, "at": _t(c.started_at), "channel": c.channel,
                    "customer": c.customer, "language": c.language or "",
                    "intent": c.intent or "", "state": c.state,
                    "agents": ", ".join(dict.fromkeys(r.agent_id for r in rs
                                                      if r.agent_id and r.accepted_at)),
                    "first_response_s": (_s(first.routed_at, first.first_reply_at)
                                         if first else None),
                    "survey_score": scores[-1] if scores else None})
    return out


def conversation_detail(web: WebContext, conversation_id: str) -> dict[str, Any] | None:
    """One conversation: transcript, routes, events, earlier contacts (store I/O)."""
    store: Any = web.store
    conv = store.text_conversation(conversation_id)
    if conv is None:
        return None
    contacts = store.customer_contacts(conv.customer)
    return {
        "conversation": {"id": conv.id, "channel": conv.channel, "customer": conv.customer,
                         "language": conv.language or "", "intent": conv.intent or "",
                         "state": conv.state, "started_at": _t(conv.started_at),
                         "updated_at": _t(conv.updated_at)},
        "messages": [{"at": _t(m.at), "direction": m.direction, "text": m.text}
                     for m in store.text_messages(conv.id)],
        "routes": [_route(r) for r in store.chat_routes(conversation_id=conv.id)],
        "events": [{"at": _t(at), "event": event,
                    "data": json.dumps(data, sort_keys=True, ensure_ascii=False)}
                   for at, event, data in store.text_events(conv.id)],
        "earlier": {"conversations": [c for c in contacts["conversations"] if c != conv.id],
                    "calls": contacts["calls"]},
    }


def chat_record_routes(web: WebContext) -> list[Route]:
    templates = Jinja2Templates(directory=TEMPLATES)

    def base(request: Request, title: str) -> dict[str, Any] | Response:
        p = web.principal(request)
        refused = supervisor_refusal(p, api=False)
        if refused is not None:
            return refused
        assert p is not None
        return web.page(p, title, "chats")

    async def chats_page(request: Request) -> Response:
        ctx = await run_in_threadpool(base, request, "Conversations")
        if isinstance(ctx, Response):
            return ctx
        ctx |= {"conversations": await run_in_threadpool(recent_conversations, web),
                "days": RECENT_DAYS}
        return templates.TemplateResponse(request, "chats.html", ctx)

    async def chat_page(request: Request) -> Response:
        cid = request.path_params["conversation_id"]
        ctx = await run_in_threadpool(base, request, f"Conversation {cid}")
        if isinstance(ctx, Response):
            return ctx
        detail = await run_in_threadpool(conversation_detail, web, cid)
        if detail is None:
            return Response(f"no conversation {cid!r}", status_code=404,
                            media_type="text/plain")
        ctx |= {"d": detail}
        return templates.TemplateResponse(request, "chat.html", ctx)

    return [Route("/supervisor/chats", chats_page, methods=["GET"]),
            Route("/supervisor/chats/{conversation_id}", chat_page, methods=["GET"])]
