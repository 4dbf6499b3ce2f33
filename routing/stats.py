"""Live statistics: per queue, skill, language and agent, for a period, from call
records, their queue_log-style events and the router's live state. Pure: no I/O,
``now`` is a parameter; the store's `CallRecord` / `CallEvent` (and anything with
the same fields) go in, a `Stats` value comes out.

Definitions (the README's "Live statistics" repeats them):

- A call counts when it **reached the router** (its ``queued_at``, the route
  request) within ``[since, now)``; calls that ended in the IVR are not queue
  calls. Its **wait** is from ``queued_at`` to the agent answering (or the caller
  hanging up, or leaving the queue): the caller's own wait, overflows included.
- **Per queue**, a call is a segment in each queue it was in: entered (``enter``)
  or overflowed in (``overflowed`` with a queue as target), and left by being
  answered, abandoned, overflowed out (to a queue or ``ext:...``), rejected, or
  by taking a callback. **Offered** = segments that left the queue in the period
  (a caller still waiting is not offered yet; see ``waiting_now``). Totals,
  skills and languages count each call once, in the queue where it ended.
- **Answered within T** / **abandoned within T**: wait <= T, where T is the
  queue's ``service_level.answer_s`` (the queue the call ended in, for totals).
- **Service level** (per queue, ``sl_definition`` in agents.yaml):
  ``answered_within_t_over_offered`` (default): answered within T / offered;
  ``answered_within_t_over_offered_minus_short_abandons``: answered within T /
  (offered - abandoned within T). Callers who took a **callback** are counted
  apart (``callbacks``) and are in neither numerator nor denominator: they did
  not wait on the line. For totals each call is judged by its own queue's rule.
- **ASA**: mean wait of answered calls (callbacks excluded). **Abandonment rate**:
  abandoned / offered.
- **Handle time** of an answered call = talk (answered -> ended) + wrap-up
  (``wrap_up_s``); **AHT** = mean handle time of answered calls that ended.
- **Occupancy** of an agent = (on call + wrap-up) / (available + ringing + missed
  cool-down + on call + wrap-up) time in the period, from the agent's state spans
  (break and offline excluded); ``None`` without spans.
- **Handled minutes per signed-up hour**: talk minutes / hours the agent's windows
  were open in the period (``routing.fairness``'s "per signed-up hour").
- **Longest wait now** / **waiting now**: from the router's snapshot, calls
  waiting or ringing an agent, ``now - arrival`` in their current queue's line.
- **Surveys**: mean score and count, by agent and by intent.

Text channels (SMS, Messenger: `compute_chat_stats`, ``Stats.chats``), from the
chat routes (`ChatFacts`, one per routing of a conversation to a person; a
transfer to another queue is a new route), per channel, per queue, per agent:

- A route counts when it was **routed** (``routed_at``) within ``[since, now)``:
  **offered** = those routes. **Accepted**: an agent accepted it (``accepted_at``).
  **Open now**: still waiting, offered or accepted (not finished: not abandoned
  either, whatever comes). **Finished** = offered - open now.
- **Abandoned before an agent replied**: the route ended or was rejected without
  any agent's reply (no ``first_reply_at``). Not abandoned: a route ended by a
  **transfer** (counted in ``transferred``; the conversation goes on in its next
  route, judged on its own, as an overflow for calls) and a route whose customer
  asked to be called back (``callbacks``). **Rejected**: nobody could serve it
  (also abandoned when nobody had replied). **Abandonment rate**: abandoned /
  finished.
- **First response time**: ``first_reply_at - routed_at`` (the customer's wait for
  a person's first words, from the hand-over to a person) of routes with a reply:
  mean, and the 90th percentile by nearest rank (the smallest value with at least
  90 % of them at or below it).
- **Handle time**: ``ended_at - accepted_at`` of accepted routes that ended: mean.
- **Per agent**: the figures of the chats the agent accepted, and their
  **concurrency**: over the time in ``[since, now)`` the agent held at least one
  accepted chat (``held_s``; a chat is held from ``accepted_at`` to ``ended_at``,
  still accepted: to ``now``; every such route, whenever routed), the
  time-weighted average number of accepted chats (``concurrency_avg``), and the
  most at once (``concurrency_max``; a chat ending as another begins does not
  overlap it).
- **Surveys** (the text survey after a chat, ``survey_score`` on its route): mean
  score and count per channel, queue, agent and intent of the routes counted.
- ``queue``: only routes in that queue.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from routing.directory import Directory
from routing.model import SL_DEFINITIONS, TEXT_CHANNELS, Queue
from routing.snapshot import RouterSnapshot
from routing.windows import Schedule, check_aware, load_zone

__all__ = ["CallFacts", "EventFacts", "AgentSpan", "Figures", "AgentFigures", "Stats",
           "compute_stats", "spans_from_changes", "DaySeries", "day_series", "BUSY_STATES",
           "STAFFED_STATES", "OUTCOMES", "start_of_day", "parse_since", "ChatFacts",
           "ChatFigures", "ChatAgentFigures", "ChatStats", "compute_chat_stats",
           "CHAT_OPEN_STATES"]

# the agent states (routing.states.AgentState values) that count for occupancy
BUSY_STATES = frozenset({"on_call", "wrap_up"})
STAFFED_STATES = BUSY_STATES | {"available", "reserved", "missed"}
# how a call's segment in a queue ended
OUTCOMES = ("answered", "abandoned", "overflowed", "rejected", "callback", "other")


class CallFacts(Protocol):
    """What `compute_stats` reads of a call record (`store.CallRecord` has it)."""

    @property
    def call_id(self) -> str: ...
    @property
    def queue_id(self) -> str | None: ...
    @property
    def agent_id(self) -> str | None: ...
    @property
    def queued_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def intent(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def wrap_up_s(self) -> float | None: ...
    @property
    def survey_score(self) -> int | None: ...


class EventFacts(Protocol):
    """What `compute_stats` reads of a queue_log-style event (`store.CallEvent`)."""

    @property
    def at(self) -> datetime: ...
    @property
    def event(self) -> str: ...
    @property
    def agent_id(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class AgentSpan:
    """An agent was in ``state`` from ``start`` to ``end`` (for occupancy)."""

    agent_id: str
    state: str
    start: datetime
    end: datetime


_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO time (aware, or UTC when it has no offset) or an age before ``now``
    (``90s``, ``30m``, ``2h``, ``7d``, ``1w``); ValueError naming both forms."""
    m = _AGO.match(text.strip())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: not an ISO time (2026-11-30T18:00+01:00) nor "
                         "an age (90s, 30m, 2h, 7d, 1w)") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def start_of_day(now: datetime, directory: Directory) -> datetime:
    """Midnight today in the centre's zone (``policy.week_zone``): what "today" means."""
    check_aware(now)
    local = now.astimezone(load_zone(directory.policy.week_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def spans_from_changes(changes: Iterable[tuple[str, str, datetime]], now: datetime
                       ) -> list[AgentSpan]:
    """State spans from ``(agent, state, at)`` changes in order: each state lasts until
    the agent's next change, the last one until ``now``."""
    check_aware(now)
    open_: dict[str, tuple[str, datetime]] = {}
    out: list[AgentSpan] = []
    for agent, state, at in changes:
        if agent in open_:
            st, start = open_[agent]
            out.append(AgentSpan(agent, st, start, at))
        open_[agent] = (state, at)
    for agent, (st, start) in sorted(open_.items()):
        if start < now:
            out.append(AgentSpan(agent, st, start, now))
    return out


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


@dataclass
class Figures:
    """The figures of one queue, skill, language, or of everything."""

    answer_s: float | None = None  # T (None: mixed, for totals)
    sl_target: float | None = None
    sl_definition: str | None = None
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    abandoned_within_t: int = 0
    answered_within_t: int = 0
    overflowed: int = 0
    rejected: int = 0
    callbacks: int = 0
    other: int = 0
    sl_denominator: int = 0
    waits_answered: list[float] = field(default_factory=list)
    handle_s: list[float] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    waiting_now: int = 0
    longest_wait_now_s: float | None = None

    @property
    def service_level(self) -> float | None:
        return self.answered_within_t / self.sl_denominator if self.sl_denominator else None

    @property
    def asa_s(self) -> float | None:
        return _mean(self.waits_answered)

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    @property
    def aht_s(self) -> float | None:
        return _mean(self.handle_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
            "abandoned_within_t": self.abandoned_within_t,
            "answered_within_t": self.answered_within_t, "overflowed": self.overflowed,
            "rejected": self.rejected, "callbacks": self.callbacks, "other": self.other,
            "service_level": _r(self.service_level, 4), "sl_target": self.sl_target,
            "sl_answer_s": self.answer_s, "sl_definition": self.sl_definition,
            "asa_s": _r(self.asa_s, 1), "abandon_rate": _r(self.abandon_rate, 4),
            "aht_s": _r(self.aht_s, 1), "waiting_now": self.waiting_now,
            "longest_wait_now_s": _r(self.longest_wait_now_s, 1),
            "survey_count": len(self.scores), "survey_avg": _r(_mean(self.scores), 2),
        }


@dataclass
class AgentFigures:
    offers: int = 0
    missed: int = 0  # offers that rang out
    answered: int = 0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    handle_s: list[float] = field(default_factory=list)
    busy_s: float = 0.0  # from the state spans
    staffed_s: float = 0.0
    signed_h: float = 0.0
    scores: list[int] = field(default_factory=list)
    state_now: str | None = None

    @property
    def occupancy(self) -> float | None:
        return self.busy_s / self.staffed_s if self.staffed_s > 0 else None

    @property
    def handled_min_per_signed_h(self) -> float | None:
        return self.talk_s / 60 / self.signed_h if self.signed_h > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "offers": self.offers, "missed": self.missed, "answered": self.answered,
            "talk_s": round(self.talk_s, 1), "wrap_up_s": round(self.wrap_s, 1),
            "aht_s": _r(_mean(self.handle_s), 1), "occupancy": _r(self.occupancy, 4),
            "signed_up_h": round(self.signed_h, 3),
            "handled_min_per_signed_h": _r(self.handled_min_per_signed_h, 3),
            "survey_count": len(self.scores), "survey_avg": _r(_mean(self.scores), 2),
            "state_now": self.state_now,
        }


@dataclass
class Stats:
    since: datetime
    now: datetime
    total: Figures
    queues: dict[str, Figures]
    skills: dict[str, Figures]
    languages: dict[str, Figures]
    agents: dict[str, AgentFigures]
    intents: dict[str, list[int]]  # survey scores by intent
    agents_by_state: dict[str, int]
    snapshot_age_s: float | None  # how old the router's saved state is (engine health)
    chats: ChatStats | None = None  # the text channels (`compute_chat_stats`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(), "now": self.now.isoformat(),
            "total": self.total.to_dict(),
            "queues": {k: v.to_dict() for k, v in self.queues.items()},
            "skills": {k: v.to_dict() for k, v in sorted(self.skills.items())},
            "languages": {k: v.to_dict() for k, v in sorted(self.languages.items())},
            "agents": {k: v.to_dict() for k, v in sorted(self.agents.items())},
            "intents": {k: {"survey_count": len(v), "survey_avg": _r(_mean(v), 2)}
                        for k, v in sorted(self.intents.items())},
            "agents_by_state": dict(sorted(self.agents_by_state.items())),
            "snapshot_age_s": _r(self.snapshot_age_s, 3),
            "chats": None if self.chats is None else self.chats.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class _Segment:
    queue: str
    outcome: str  # one of OUTCOMES
    wait_s: float
    final: bool


def _secs(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def _segments(rec: CallFacts, events: Sequence[EventFacts], queues: Mapping[str, Queue]
              ) -> list[_Segment]:
    """The call's segments per queue, in order (see the module docstring)."""
    assert rec.queued_at is not None
    start = rec.queued_at
    path: list[tuple[str, datetime]] = []
    first = next((e for e in events if e.event == "enter"), None)
    path.append((str(first.data.get("queue")) if first is not None and first.data.get("queue")
                 else rec.queue_id or "", start))
    out: list[_Segment] = []
    ext_overflow: datetime | None = None
    for e in events:
        if e.event != "overflowed":
            continue
        target = str(e.data.get("target", ""))
        out.append(_Segment(path[-1][0], "overflowed", _secs(start, e.at), False))
        if target in queues:
            path.append((target, e.at))
        else:  # ext:voicemail, ext:NUMBER: the call leaves the router's queues
            ext_overflow = e.at
            break
    if ext_overflow is not None:  # the call ended with that overflow: its last segment
        last = out[-1]
        out[-1] = _Segment(last.queue, last.outcome, last.wait_s, True)
        return out
    queue = path[-1][0]
    kinds = {e.event for e in events}
    if "callback" in kinds:
        outcome, end = "callback", rec.answered_at or rec.ended_at
    elif rec.answered_at is not None:
        outcome, end = "answered", rec.answered_at
    elif rec.outcome == "abandoned" or "abandoned" in kinds:
        outcome, end = "abandoned", rec.ended_at
    elif (rec.outcome or "").startswith("rejected") or "rejected" in kinds:
        outcome, end = "rejected", rec.ended_at
    elif rec.ended_at is not None:
        outcome, end = "other", rec.ended_at
    else:
        return out  # still waiting: not offered yet
    out.append(_Segment(queue, outcome, _secs(start, end) if end is not None else 0.0, True))
    return out


def _count(f: Figures, seg: _Segment, q: Queue | None, handle: float | None,
           score: int | None) -> None:
    f.offered += 1
    t = q.sl_answer_s if q is not None else 0.0
    short_abandons_out = (q is not None and q.sl_definition == SL_DEFINITIONS[1])
    match seg.outcome:
        case "answered":
            f.answered += 1
            f.waits_answered.append(seg.wait_s)
            if seg.wait_s <= t:
                f.answered_within_t += 1
            if handle is not None:
                f.handle_s.append(handle)
        case "abandoned":
            f.abandoned += 1
            if seg.wait_s <= t:
                f.abandoned_within_t += 1
                if short_abandons_out:
                    f.sl_denominator -= 1
        case "overflowed":
            f.overflowed += 1
        case "rejected":
            f.rejected += 1
        case "callback":
            f.callbacks += 1
            f.sl_denominator -= 1
        case _:
            f.other += 1
    f.sl_denominator += 1
    if score is not None:
        f.scores.append(score)


def _for_queue(q: Queue | None) -> Figures:
    if q is None:
        return Figures()
    return Figures(answer_s=q.sl_answer_s, sl_target=q.sl_target, sl_definition=q.sl_definition)


def compute_stats(directory: Directory, records: Iterable[CallFacts],
                  events: Mapping[str, Sequence[EventFacts]], *, since: datetime,
                  now: datetime, snapshot: RouterSnapshot | None = None,
                  spans: Iterable[AgentSpan] = (), queue: str | None = None,
                  chats: Iterable[ChatFacts] = ()) -> Stats:
    """The figures of calls that reached the router in ``[since, now)`` (module docstring).

    ``queue``: only calls that were in that queue (totals, skills, languages and
    agents then cover those calls only). ``chats``: the chat routes, for the text
    channels' figures (`Stats.chats`, `compute_chat_stats`).
    """
    check_aware(now)
    check_aware(since, "since")
    queues = {q.id: q for q in directory.queues}
    total = Figures()
    by_queue: dict[str, Figures] = {q.id: _for_queue(q) for q in directory.queues
                                    if queue is None or q.id == queue}
    by_skill: dict[str, Figures] = {}
    by_lang: dict[str, Figures] = {}
    agents: dict[str, AgentFigures] = {a.id: AgentFigures() for a in directory.agents}
    intents: dict[str, list[int]] = {}
    for rec in records:
        if rec.queued_at is None or not since <= rec.queued_at < now:
            continue
        evs = sorted(events.get(rec.call_id, ()), key=lambda e: e.at)
        segs = _segments(rec, evs, queues)
        if queue is not None and all(s.queue != queue for s in segs) and rec.queue_id != queue:
            continue
        handle = None
        if rec.answered_at is not None and rec.ended_at is not None:
            talk = max(0.0, _secs(rec.answered_at, rec.ended_at))
            handle = talk + (rec.wrap_up_s or 0.0)
            if rec.agent_id is not None:
                af = agents.setdefault(rec.agent_id, AgentFigures())
                af.talk_s += talk
                af.wrap_s += rec.wrap_up_s or 0.0
                af.handle_s.append(handle)
        if rec.answered_at is not None and rec.agent_id is not None:
            agents.setdefault(rec.agent_id, AgentFigures()).answered += 1
        for e in evs:
            if e.agent_id is not None and e.event in ("offered", "ring-no-answer"):
                af = agents.setdefault(e.agent_id, AgentFigures())
                if e.event == "offered":
                    af.offers += 1
                else:
                    af.missed += 1
        score = rec.survey_score
        if score is not None:
            if rec.agent_id is not None:
                agents.setdefault(rec.agent_id, AgentFigures()).scores.append(score)
            intents.setdefault(rec.intent or "-", []).append(score)
        for seg in segs:
            q = queues.get(seg.queue)
            if seg.queue in by_queue or (queue is None and seg.queue):
                fq = by_queue.setdefault(seg.queue, _for_queue(q))
                _count(fq, seg, q, handle if seg.final else None,
                       score if seg.final else None)
            if not seg.final:
                continue
            _count(total, seg, q, handle, score)
            skills = sorted(q.skills) if q is not None and q.skills else ["any"]
            for sk in skills:
                _count(by_skill.setdefault(sk, Figures()), seg, q, handle, score)
            _count(by_lang.setdefault(rec.language or "-", Figures()), seg, q, handle, score)
    # occupancy from the state spans, signed-up hours from the windows
    for sp in spans:
        a, b = max(sp.start, since), min(sp.end, now)
        if b <= a or sp.state not in STAFFED_STATES:
            continue
        af = agents.setdefault(sp.agent_id, AgentFigures())
        af.staffed_s += _secs(a, b)
        if sp.state in BUSY_STATES:
            af.busy_s += _secs(a, b)
    for agent in directory.agents:
        sched = Schedule(load_zone(agent.zone), agent.windows, agent.changes)
        agents[agent.id].signed_h = sum(max(0.0, _secs(max(s, since), min(e, now)))
                                        for s, e in sched.intervals(since, now)) / 3600
    by_state: dict[str, int] = {}
    age = None
    if snapshot is not None:
        ts = now.timestamp()
        age = max(0.0, ts - snapshot.taken_at)
        for ag in snapshot.agents:
            by_state[ag.state] = by_state.get(ag.state, 0) + 1
            if ag.agent_id in agents:
                agents[ag.agent_id].state_now = ag.state
        for c in snapshot.calls:
            if c.phase not in ("waiting", "ringing"):
                continue
            wait = max(0.0, ts - c.arrived)
            for f in ([by_queue[c.queue]] if c.queue in by_queue else []) + (
                    [total] if queue is None or c.queue == queue else []):
                f.waiting_now += 1
                f.longest_wait_now_s = max(f.longest_wait_now_s or 0.0, wait)
    text = compute_chat_stats(directory, chats, since=since, now=now, queue=queue)
    return Stats(since, now, total, by_queue, by_skill, by_lang, agents, intents, by_state, age,
                 text)


@dataclass(frozen=True, slots=True)
class DaySeries:
    """The day in intervals of ``step_s`` from ``since``: for each, the service level
    and number of the calls that reached the router in it (every queue, each call by
    its own queue's rule, as `Stats.total`), and the most calls waiting at once."""

    step_s: float
    starts: tuple[datetime, ...]
    offered: tuple[int, ...]
    service_level: tuple[float | None, ...]
    max_waiting: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"step_s": self.step_s, "starts": [t.isoformat() for t in self.starts],
                "t": [t.timestamp() for t in self.starts], "offered": list(self.offered),
                "service_level": [_r(x, 4) for x in self.service_level],
                "max_waiting": list(self.max_waiting)}


def day_series(directory: Directory, records: Iterable[CallFacts],
               events: Mapping[str, Sequence[EventFacts]], *, since: datetime,
               now: datetime, step_s: float = 900.0) -> DaySeries:
    """`DaySeries` of ``[since, now)``. A call waits from ``queued_at`` until an agent
    answers, it ends, or it takes a callback (still waiting: until ``now``)."""
    check_aware(now)
    check_aware(since, "since")
    if step_s <= 0:
        raise ValueError("step_s must be > 0")
    n = max(1, int(-(-_secs(since, now) // step_s)))
    starts = tuple(since + timedelta(seconds=i * step_s) for i in range(n))
    by_bucket: list[list[CallFacts]] = [[] for _ in range(n)]
    points: list[tuple[float, int]] = []  # (seconds after since, +1 / -1); ends sort first
    for rec in records:
        q = rec.queued_at
        if q is None or not since <= q < now:
            continue
        by_bucket[min(n - 1, int(_secs(since, q) // step_s))].append(rec)
        cb = next((e.at for e in events.get(rec.call_id, ()) if e.event == "callback"), None)
        end = min(t for t in (rec.answered_at, rec.ended_at, cb, now) if t is not None)
        points.append((_secs(since, q), 1))
        points.append((max(_secs(since, q), _secs(since, end)), -1))
    points.sort()
    sls: list[float | None] = []
    offered: list[int] = []
    for i, recs in enumerate(by_bucket):
        tot = compute_stats(directory, recs, events, since=starts[i],
                            now=starts[i] + timedelta(seconds=step_s)).total
        sls.append(tot.service_level)
        offered.append(tot.offered)
    most = [0] * n
    cur = 0
    k = 0
    for i in range(n):
        lo, hi = i * step_s, (i + 1) * step_s
        while k < len(points) and points[k][0] < lo:
            cur += points[k][1]
            k += 1
        peak = cur
        while k < len(points) and points[k][0] < hi:
            cur += points[k][1]
            k += 1
            peak = max(peak, cur)
        most[i] = peak
    return DaySeries(step_s, starts, tuple(offered), tuple(sls), tuple(most))


# ------------------------------------------------------------------ text channels
class ChatFacts(Protocol):
    """What `compute_chat_stats` reads of a chat route (`store.chats.ChatRoute` has it):
    one routing of a text conversation to a person."""

    @property
    def route_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def queue_id(self) -> str: ...
    @property
    def agent_id(self) -> str | None: ...
    @property
    def intent(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def routed_at(self) -> datetime: ...
    @property
    def accepted_at(self) -> datetime | None: ...
    @property
    def first_reply_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def ended_by(self) -> str | None: ...
    @property
    def survey_score(self) -> int | None: ...


# a chat route still in these states is open: neither finished nor abandoned yet
CHAT_OPEN_STATES = frozenset({"waiting", "offered", "accepted"})


def _p90(xs: Sequence[float]) -> float | None:
    """The nearest-rank 90th percentile: the smallest value with at least 90 % of the
    values at or below it."""
    if not xs:
        return None
    ordered = sorted(xs)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


@dataclass
class ChatFigures:
    """The text figures of one channel, queue, agent, or of every text channel."""

    offered: int = 0
    accepted: int = 0
    abandoned: int = 0
    rejected: int = 0
    transferred: int = 0
    callbacks: int = 0
    open_now: int = 0
    first_response_s: list[float] = field(default_factory=list)
    handle_s: list[float] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return self.offered - self.open_now

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.finished if self.finished else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "offered": self.offered, "accepted": self.accepted, "abandoned": self.abandoned,
            "rejected": self.rejected, "transferred": self.transferred,
            "callbacks": self.callbacks, "open_now": self.open_now,
            "abandon_rate": _r(self.abandon_rate, 4),
            "replied": len(self.first_response_s),
            "first_response_avg_s": _r(_mean(self.first_response_s), 1),
            "first_response_p90_s": _r(_p90(self.first_response_s), 1),
            "handle_avg_s": _r(_mean(self.handle_s), 1),
            "survey_count": len(self.scores), "survey_avg": _r(_mean(self.scores), 2),
        }


@dataclass
class ChatAgentFigures(ChatFigures):
    """An agent's text figures (of the chats they accepted) and concurrency."""

    held_s: float = 0.0  # time with at least one accepted chat
    chat_s: float = 0.0  # the integral of the number of accepted chats over time
    concurrency_max: int = 0

    @property
    def concurrency_avg(self) -> float | None:
        return self.chat_s / self.held_s if self.held_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "held_s": round(self.held_s, 1),
                "concurrency_avg": _r(self.concurrency_avg, 3),
                "concurrency_max": self.concurrency_max}


@dataclass
class ChatStats:
    total: ChatFigures
    channels: dict[str, ChatFigures]
    queues: dict[str, ChatFigures]
    agents: dict[str, ChatAgentFigures]
    intents: dict[str, list[int]]  # survey scores by intent

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total.to_dict(),
            "channels": {k: v.to_dict() for k, v in self.channels.items()},
            "queues": {k: v.to_dict() for k, v in sorted(self.queues.items())},
            "agents": {k: v.to_dict() for k, v in sorted(self.agents.items())},
            "intents": {k: {"survey_count": len(v), "survey_avg": _r(_mean(v), 2)}
                        for k, v in sorted(self.intents.items())},
        }


def _count_chat(f: ChatFigures, r: ChatFacts) -> None:
    f.offered += 1
    if r.accepted_at is not None:
        f.accepted += 1
    if r.state in CHAT_OPEN_STATES:
        f.open_now += 1
    elif r.state == "callback":
        f.callbacks += 1
    elif r.state == "ended" and r.ended_by == "transfer":
        f.transferred += 1
    elif r.state in ("ended", "rejected") and r.first_reply_at is None:
        f.abandoned += 1
    if r.state == "rejected":
        f.rejected += 1
    if r.first_reply_at is not None:
        f.first_response_s.append(max(0.0, _secs(r.routed_at, r.first_reply_at)))
    if r.accepted_at is not None and r.ended_at is not None:
        f.handle_s.append(max(0.0, _secs(r.accepted_at, r.ended_at)))
    if r.survey_score is not None:
        f.scores.append(r.survey_score)


def _held(r: ChatFacts, since: datetime, now: datetime) -> tuple[datetime, datetime] | None:
    """The part of ``[since, now)`` the route's agent held it (accepted to ended)."""
    if r.accepted_at is None or r.agent_id is None:
        return None
    end = r.ended_at if r.ended_at is not None else (now if r.state == "accepted"
                                                      else r.accepted_at)
    a, b = max(r.accepted_at, since), min(end, now)
    return (a, b) if a < b else None


def _concurrency(f: ChatAgentFigures, spans: Sequence[tuple[datetime, datetime]]) -> None:
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])  # ends first
    cur = 0
    prev: datetime | None = None
    for t, step in points:
        if prev is not None and cur > 0:
            dt = _secs(prev, t)
            f.held_s += dt
            f.chat_s += cur * dt
        cur += step
        f.concurrency_max = max(f.concurrency_max, cur)
        prev = t


def compute_chat_stats(directory: Directory, routes: Iterable[ChatFacts], *, since: datetime,
                       now: datetime, queue: str | None = None) -> ChatStats:
    """The text channels' figures of chat routes routed in ``[since, now)`` (concurrency:
    of every route held in that time); ``queue``: only routes in that queue. The
    definitions are in the module docstring ("Text channels")."""
    check_aware(now)
    check_aware(since, "since")
    total = ChatFigures()
    channels: dict[str, ChatFigures] = {c: ChatFigures() for c in TEXT_CHANNELS}
    queues: dict[str, ChatFigures] = {
        q.id: ChatFigures() for q in directory.queues
        if set(q.channels) & set(TEXT_CHANNELS) and (queue is None or q.id == queue)}
    agents: dict[str, ChatAgentFigures] = {a.id: ChatAgentFigures() for a in directory.agents
                                           if a.max_chats > 0}
    intents: dict[str, list[int]] = {}
    held: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in routes:
        if queue is not None and r.queue_id != queue:
            continue
        span = _held(r, since, now)
        if span is not None and r.agent_id is not None:
            held.setdefault(r.agent_id, []).append(span)
        if not since <= r.routed_at < now:
            continue
        for f in (total, channels.setdefault(r.channel, ChatFigures()),
                  queues.setdefault(r.queue_id, ChatFigures())):
            _count_chat(f, r)
        if r.agent_id is not None and r.accepted_at is not None:
            _count_chat(agents.setdefault(r.agent_id, ChatAgentFigures()), r)
        if r.survey_score is not None:
            intents.setdefault(r.intent or "-", []).append(r.survey_score)
    for agent_id, spans in held.items():
        _concurrency(agents.setdefault(agent_id, ChatAgentFigures()), spans)
    return ChatStats(total, channels, queues, agents, intents)
