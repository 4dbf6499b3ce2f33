"""Pause for payment, the agent's side: "take payment" and its result.

- ``POST /api/agents/{id}/payment`` (the agent themselves, CSRF token): asks the
  engine, through the store's ``payments`` feed, to take a payment on the agent's
  connected call (`voice.payment.PaymentDesk` carries it out); ``{"seq", "status"}``.
- ``GET /api/agents/{id}/payment``: the agent's latest payment: ``{"seq",
  "status": requested|capturing|accepted|declined|failed, "detail", "call_id"}``
  or ``{"payment": null}``. Never a digit: the store has none.
"""
from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from web.api import Call, _agent, _endpoint
from web.context import WebContext
from web.portal import current_call

__all__ = ["payment_routes"]


def _json(p: Any) -> dict[str, Any]:
    return {"seq": p.seq, "status": p.status, "detail": p.detail, "call_id": p.call_id,
            "requested_at": p.requested_at.isoformat(), "updated_at": p.updated_at.isoformat()}


def post_payment(web: WebContext, call: Call) -> Response:
    agent_id = _agent(web, call, change=True)
    live = current_call(web, agent_id)["call"]
    if live is None or live["phase"] != "connected":
        return JSONResponse({"error": "no connected call to take a payment on"},
                            status_code=409)
    seq = web.store.request_payment(agent_id, live["call_id"], web.now())
    return JSONResponse({"seq": seq, "status": "requested", "call_id": live["call_id"]})


def get_payment(web: WebContext, call: Call) -> Response:
    agent_id = _agent(web, call, change=False)
    p = web.store.latest_payment(agent_id)
    return JSONResponse({"payment": _json(p) if p is not None else None})


def payment_routes(web: WebContext) -> list[Route]:
    return [Route("/api/agents/{agent_id}/payment", _endpoint(web, post_payment),
                  methods=["POST"]),
            Route("/api/agents/{agent_id}/payment", _endpoint(web, get_payment),
                  methods=["GET"])]
