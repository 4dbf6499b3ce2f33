"""Live statistics over HTTP: ``GET /api/stats`` (JSON, supervisors and admins) and
``GET /metrics`` (Prometheus text format, prometheus-client).

Both compute the figures of `routing.stats` from the store (through
`store.reports.collect_stats`, as ``homeline stats`` does), so they are the
same figures whether the app runs inside the engine or in ``homeline serve``.

``/metrics`` carries operational data (queue depth, agents by state, service
level): it answers only a request with ``Authorization: Bearer <token>``, the
token being ``web:metrics`` in the state directory's ``secrets.json`` (0600),
generated on first use (`WebSettings.metrics_token`; Prometheus:
``authorization: {type: Bearer, credentials_file: ...}`` in the scrape config).
No token configured: 404. A wrong or missing token: 401, compared in constant time.
The text channels (``chats`` in the JSON) are gauges per ``channel`` there too.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from routing.states import AgentState
from routing.stats import OUTCOMES, parse_since
from store.reports import collect_stats
from web.api import Call, _endpoint
from web.context import WebContext
from web.errors import ApiError

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

__all__ = ["stats_routes", "require_supervisor", "metric_families", "chat_families"]

SUPERVISOR_ROLES = ("supervisor", "admin")


def require_supervisor(call: Call) -> None:
    if call.who.role not in SUPERVISOR_ROLES:
        raise ApiError(403, f"statistics are for supervisors and admins (you are "
                            f"{call.who.name!r}, role {call.who.role})")


def stats_json(web: WebContext, since: datetime | None, queue: str | None) -> dict[str, Any]:
    return collect_stats(web.store, web.directory, web.now(), since, queue).to_dict()


def get_stats(web: WebContext, call: Call) -> Response:
    """``GET /api/stats?since=2h&queue=billing``: what ``homeline stats --json`` prints."""
    require_supervisor(call)
    q = call.request.query_params
    for key in q:
        if key not in ("since", "queue"):
            raise ApiError(400, f"{key}: unknown parameter (allowed: since, queue)", field=key)
    now = web.now()
    since = None
    if q.get("since"):
        try:
            since = parse_since(q["since"], now)
        except ValueError as exc:
            raise ApiError(400, str(exc), field="since") from exc
    queue = q.get("queue") or None
    if queue is not None and queue not in web.directory.queue_ids:
        raise ApiError(400, f"queue {queue!r}: not one of {', '.join(web.directory.queue_ids)}",
                       field="queue")
    return JSONResponse(stats_json(web, since, queue))


def metric_families(web: WebContext) -> Iterator[GaugeMetricFamily]:
    """The figures as Prometheus gauges, computed at each scrape (today, from the
    store; nothing is kept between scrapes, so several app processes agree)."""
    from prometheus_client.core import GaugeMetricFamily

    d = stats_json(web, None, None)
    depth = GaugeMetricFamily("homeline_queue_waiting_calls",
                              "Calls waiting in the queue now (on hold or ringing an agent)",
                              labels=["queue"])
    longest = GaugeMetricFamily("homeline_queue_longest_wait_seconds",
                                "Longest wait of a call waiting in the queue now",
                                labels=["queue"])
    sl = GaugeMetricFamily("homeline_queue_service_level_ratio",
                           "Service level today by the queue's sl_definition",
                           labels=["queue"])
    target = GaugeMetricFamily("homeline_queue_service_level_target_ratio",
                               "The queue's service level target", labels=["queue"])
    asa = GaugeMetricFamily("homeline_queue_asa_seconds",
                            "Average speed of answer today", labels=["queue"])
    calls = GaugeMetricFamily("homeline_queue_calls_today",
                              "Calls that left the queue today, by outcome (resets at "
                              "midnight in policy.week_zone)", labels=["queue", "outcome"])
    for qid, f in d["queues"].items():
        depth.add_metric([qid], f["waiting_now"])
        longest.add_metric([qid], f["longest_wait_now_s"] or 0.0)
        if f["service_level"] is not None:
            sl.add_metric([qid], f["service_level"])
        target.add_metric([qid], f["sl_target"])
        if f["asa_s"] is not None:
            asa.add_metric([qid], f["asa_s"])
        for outcome in OUTCOMES:
            key = {"callback": "callbacks"}.get(outcome, outcome)
            calls.add_metric([qid, outcome], f[key])
    agents = GaugeMetricFamily("homeline_agents", "Agents by state, as the router last "
                               "saved them", labels=["state"])
    for state in AgentState:
        agents.add_metric([state.value], d["agents_by_state"].get(state.value, 0))
    saved = GaugeMetricFamily("homeline_router_state_saved",
                              "1 when an engine has saved its router state to the store")
    saved.add_metric([], 0 if d["snapshot_age_s"] is None else 1)
    age = GaugeMetricFamily("homeline_router_state_age_seconds",
                            "Seconds since the engine last saved its router state (it "
                            "saves on every change: grows while idle or down)")
    if d["snapshot_age_s"] is not None:
        age.add_metric([], d["snapshot_age_s"])
    yield from (depth, longest, sl, target, asa, calls, agents, saved, age)
    if d.get("chats"):
        yield from chat_families(d["chats"])


def chat_families(c: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The text channels' figures of today per channel (sms, messenger)."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=["channel", *labels])

    offered = gauge("homeline_channel_chats_offered_today",
                    "Chat routes routed to a person today (a transfer is a new route)")
    accepted = gauge("homeline_channel_chats_accepted_today",
                     "Chat routes of today an agent accepted")
    abandoned = gauge("homeline_channel_chats_abandoned_today",
                      "Chat routes of today that ended or were rejected before any agent's "
                      "reply (transfers and callbacks excluded)")
    open_now = gauge("homeline_channel_chats_open",
                     "Chat routes of today still waiting, offered or accepted")
    first = gauge("homeline_channel_first_response_seconds",
                  "First response time today (routed to the agent's first reply): avg, p90",
                  "stat")
    handle = gauge("homeline_channel_handle_seconds",
                   "Mean handle time of chats today (accepted to ended)")
    survey = gauge("homeline_channel_survey_score",
                   "Mean score of the text surveys after today's chats")
    for ch, f in c["channels"].items():
        offered.add_metric([ch], f["offered"])
        accepted.add_metric([ch], f["accepted"])
        abandoned.add_metric([ch], f["abandoned"])
        open_now.add_metric([ch], f["open_now"])
        for stat in ("avg", "p90"):
            if f[f"first_response_{stat}_s"] is not None:
                first.add_metric([ch, stat], f[f"first_response_{stat}_s"])
        if f["handle_avg_s"] is not None:
            handle.add_metric([ch], f["handle_avg_s"])
        if f["survey_avg"] is not None:
            survey.add_metric([ch], f["survey_avg"])
    yield from (offered, accepted, abandoned, open_now, first, handle, survey)


def stats_routes(web: WebContext) -> list[Route]:
    token = web.settings.metrics_token
    registry: Any = None

    def scrape() -> bytes:
        # imported at the first scrape: prometheus-client is only needed for /metrics
        nonlocal registry
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.registry import Collector

        class _Figures(Collector):
            def collect(self) -> Iterator[GaugeMetricFamily]:
                return metric_families(web)

        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Figures())
        return bytes(generate_latest(registry))

    async def metrics(request: Request) -> Response:
        if token is None:
            return PlainTextResponse("metrics are not configured on this server",
                                     status_code=404)
        sent = request.headers.get("authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.encode()):
            return PlainTextResponse(
                "send Authorization: Bearer <web:metrics of secrets.json>", status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="homeline-metrics"'})
        body = await run_in_threadpool(scrape)
        # prometheus_client.CONTENT_TYPE_LATEST: the text exposition format 0.0.4
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return [Route("/api/stats", _endpoint(web, get_stats), methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]
