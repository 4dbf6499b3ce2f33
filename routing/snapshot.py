"""Router state that survives a restart: plain, frozen values, JSON both ways.

`Router.snapshot(now)` returns a `RouterSnapshot`; `Router.snapshot_changes(now)`
returns the `RouterChanges` since the last call (what an engine writes to the
store after each event); `Router.restore(directory, snapshot, now=...)` builds a
router that makes the same decisions as the original for the same later events.

Times are seconds since the epoch (UTC) as floats, not ISO text: a float goes
through JSON unchanged (``repr`` round-trips), so ties and "due" comparisons
after a restore are exactly those before it. The store keeps ISO columns beside
the JSON for people and queries.

Adding a per-agent field of the router (``_AgentRt`` in `routing.router`): add
one line to `AgentSnapshot` with the same name, a plain JSON type (str, int,
float, bool or None) and a default (so older snapshots still load). The router
copies every `AgentSnapshot` field by name both ways except those named in
``routing.router._AGENT_FIELDS_BY_HAND``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from routing.events import CallArrived

__all__ = ["SNAPSHOT_FORMAT", "TimerSnapshot", "AgentSnapshot", "CallSnapshot", "LastAgent",
           "RouterSnapshot", "RouterChanges", "FairnessSnapshot", "ShareClockSnapshot",
           "to_datetime"]

SNAPSHOT_FORMAT = 1


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class TimerSnapshot:
    """A pending router timer: ``kind`` window/wrap/cool (an agent's) or ring/step/maxwait
    (a call's); timers due at the same time run in ``seq`` order."""

    kind: str
    due: float
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "due": self.due, "seq": self.seq}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimerSnapshot:
        return cls(str(d["kind"]), float(d["due"]), int(d["seq"]))


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One agent's routing state (field names are those of the router's ``_AgentRt``)."""

    agent_id: str
    state: str  # routing.states.AgentState value
    since: float = 0.0  # when the state began
    registered: bool = False
    wants_break: bool = False
    pending_break: str | None = None  # break asked for during a call, with its reason
    misses: int = 0  # consecutive offers missed
    idle_since: float = 0.0
    handled_s: float = 0.0  # talk seconds this week (fair share)
    week_start: float = 0.0  # the week handled_s belongs to
    fair_key: float = 0.0  # fair-share standing taken when the agent became routable
    in_window: bool = False
    window_until: float | None = None
    hours: tuple[str, ...] = ()  # the windows and changes the router had (to see edits)
    timers: tuple[TimerSnapshot, ...] = ()
    # new _AgentRt fields: one line each here (see the module docstring)
    calls_handled: int = 0  # calls answered and ended this week (fewest-calls)
    fair_offset_s: float = 0.0  # fair share owed = this + the pools' share clocks (fair-share)
    free_seq: int = 0  # fair-share offers made before the agent last became routable
    # chat minutes handled this week, per text channel (chats' fair share); the chats
    # themselves (offered, connected, wrapping up) are calls of the snapshot with this agent
    sms_handled_s: float = 0.0
    messenger_handled_s: float = 0.0
    # the agent's load when taken: chats held per text channel (for readers; a restore
    # rebuilds the load from the snapshot's calls, which hold each chat's phase)
    sms_load: int = 0
    messenger_load: int = 0

    @property
    def wrap_up_until(self) -> float | None:
        """When wrap-up ends (the pending wrap timer), if the agent is in wrap-up."""
        return next((t.due for t in self.timers if t.kind == "wrap"), None)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hours"] = list(self.hours)
        out["timers"] = [t.to_dict() for t in self.timers]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentSnapshot:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["hours"] = tuple(str(h) for h in d.get("hours", ()))
        kw["timers"] = tuple(TimerSnapshot.from_dict(t) for t in d.get("timers", ()))
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A call the router holds: waiting (``phase``), ringing an agent, or connected."""

    arrival: CallArrived  # the event as it came, with the original queue
    arrived: float
    queued_at: float  # arrival in the current queue (after an overflow)
    seq: int  # arrival sequence number: the last tie-break of the call order
    queue: str  # current queue
    phase: str  # waiting | ringing | connected | retry (a callback between dial-backs)
    #            | wrap (a chat that ended: its agent's slot is held for the queue's wrap-up)
    agent: str | None = None
    answered_at: float = 0.0
    callback: bool = False
    missed_by: tuple[str, ...] = ()
    hops: int = 0  # overflows so far
    skills: tuple[tuple[str, int], ...] | None = None  # own required skills, if any
    key: tuple[float, float, int, str] = (0.0, 0.0, 0, "")  # place in line when waiting
    line: tuple[str, str] = ("", "")  # (queue, language or "*") of that line
    timers: tuple[TimerSnapshot, ...] = ()
    callback_misses: int = 0  # dial-backs the caller did not answer
    share_pool: tuple[str, str] | None = None  # connected: the fair-share pool it counts in
    channel: str = "voice"  # now (a chat whose customer took a call back is voice now)
    replied: bool = False  # a waiting chat was told its expected wait (ReplyWithWait)

    @property
    def call_id(self) -> str:
        return self.arrival.call_id

    def to_dict(self) -> dict[str, Any]:
        a = self.arrival
        return {"arrival": {"call_id": a.call_id, "queue_id": a.queue_id,
                            "language": a.language, "intent": a.intent, "caller": a.caller,
                            "priority": a.priority,
                            "required_skills": [list(s) for s in a.required_skills],
                            "skills": list(a.skills), "data": [list(x) for x in a.data],
                            "channel": a.channel},
                "arrived": self.arrived, "queued_at": self.queued_at, "seq": self.seq,
                "queue": self.queue, "phase": self.phase, "agent": self.agent,
                "answered_at": self.answered_at, "callback": self.callback,
                "missed_by": list(self.missed_by), "hops": self.hops,
                "skills": None if self.skills is None else [list(s) for s in self.skills],
                "key": list(self.key), "line": list(self.line),
                "timers": [t.to_dict() for t in self.timers],
                "callback_misses": self.callback_misses,
                "share_pool": None if self.share_pool is None else list(self.share_pool),
                "channel": self.channel, "replied": self.replied}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallSnapshot:
        a = d["arrival"]
        arrival = CallArrived(str(a["call_id"]), str(a["queue_id"]), a.get("language"),
                              str(a.get("intent", "")), str(a.get("caller", "")),
                              int(a.get("priority", 0)),
                              tuple((str(s), int(lv)) for s, lv in a.get("required_skills", ())),
                              tuple(str(s) for s in a.get("skills", ())),
                              tuple((str(k), str(v)) for k, v in a.get("data", ())),
                              str(a.get("channel", "voice")))
        k = d["key"]
        skills = d.get("skills")
        return cls(arrival, float(d["arrived"]), float(d["queued_at"]), int(d["seq"]),
                   str(d["queue"]), str(d["phase"]), d.get("agent"),
                   float(d.get("answered_at", 0.0)), bool(d.get("callback", False)),
                   tuple(str(x) for x in d.get("missed_by", ())), int(d.get("hops", 0)),
                   None if skills is None else tuple((str(s), int(lv)) for s, lv in skills),
                   (float(k[0]), float(k[1]), int(k[2]), str(k[3])),
                   (str(d["line"][0]), str(d["line"][1])),
                   tuple(TimerSnapshot.from_dict(t) for t in d.get("timers", ())),
                   int(d.get("callback_misses", 0)),
                   None if d.get("share_pool") is None
                   else (str(d["share_pool"][0]), str(d["share_pool"][1])),
                   str(d.get("channel", "voice")), bool(d.get("replied", False)))


@dataclass(frozen=True, slots=True)
class LastAgent:
    """The agent who last talked with ``caller`` (returning callers prefer them)."""

    caller: str
    agent_id: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"caller": self.caller, "agent_id": self.agent_id, "at": self.at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LastAgent:
        return cls(str(d["caller"]), str(d["agent_id"]), float(d["at"]))


@dataclass(frozen=True, slots=True)
class ShareClockSnapshot:
    """One fair-share clock (routing.router._ShareClock): work per staffed agent so far."""

    skill: str  # the pool: skill ("*": any) and language ("*": any); "" for all agents
    language: str
    clock: float
    busy: int
    last: float

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "language": self.language, "clock": self.clock,
                "busy": self.busy, "last": self.last}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShareClockSnapshot:
        return cls(str(d["skill"]), str(d["language"]), float(d["clock"]), int(d["busy"]),
                   float(d["last"]))


@dataclass(frozen=True, slots=True)
class FairnessSnapshot:
    """The router-wide part of fair share: its clocks and counters, for one week."""

    week_start: float
    clocks: tuple[ShareClockSnapshot, ...]
    all_agents: ShareClockSnapshot
    n_staffed: int
    fair_offers: int

    def to_dict(self) -> dict[str, Any]:
        return {"week_start": self.week_start, "clocks": [c.to_dict() for c in self.clocks],
                "all_agents": self.all_agents.to_dict(), "n_staffed": self.n_staffed,
                "fair_offers": self.fair_offers}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FairnessSnapshot:
        return cls(float(d["week_start"]),
                   tuple(ShareClockSnapshot.from_dict(c) for c in d.get("clocks", ())),
                   ShareClockSnapshot.from_dict(d["all_agents"]), int(d["n_staffed"]),
                   int(d["fair_offers"]))


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    """The whole router state as of its last handled event (``as_of``)."""

    as_of: float  # the router's time: its last handled event
    taken_at: float  # when the snapshot was taken (>= as_of)
    seq: int  # the router's sequence counter (calls and timers)
    agents: tuple[AgentSnapshot, ...] = ()
    calls: tuple[CallSnapshot, ...] = ()
    last_agent: tuple[LastAgent, ...] = ()
    format: int = SNAPSHOT_FORMAT
    fairness: FairnessSnapshot | None = None

    def as_changes(self) -> RouterChanges:
        """This snapshot as a full change set (the store replaces what it had)."""
        return RouterChanges(self.as_of, self.taken_at, self.seq, self.agents, self.calls,
                             (), self.last_agent, full=True, format=self.format,
                             fairness=self.fairness)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "as_of": self.as_of, "taken_at": self.taken_at,
                "seq": self.seq, "agents": [a.to_dict() for a in self.agents],
                "calls": [c.to_dict() for c in self.calls],
                "last_agent": [x.to_dict() for x in self.last_agent],
                "fairness": None if self.fairness is None else self.fairness.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RouterSnapshot:
        fmt = int(d.get("format", SNAPSHOT_FORMAT))
        if fmt > SNAPSHOT_FORMAT:
            raise ValueError(f"router snapshot format {fmt} is newer than this router's "
                             f"({SNAPSHOT_FORMAT})")
        return cls(float(d["as_of"]), float(d["taken_at"]), int(d["seq"]),
                   tuple(AgentSnapshot.from_dict(a) for a in d.get("agents", ())),
                   tuple(CallSnapshot.from_dict(c) for c in d.get("calls", ())),
                   tuple(LastAgent.from_dict(x) for x in d.get("last_agent", ())), fmt,
                   None if d.get("fairness") is None
                   else FairnessSnapshot.from_dict(d["fairness"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RouterSnapshot:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class RouterChanges:
    """What changed since the previous `Router.snapshot_changes`: write it in one go.

    ``gone_calls`` are calls the router no longer holds (ended, abandoned,
    overflowed out, rejected). ``full``: this is everything (drop what was stored).
    """

    as_of: float
    taken_at: float
    seq: int
    agents: tuple[AgentSnapshot, ...] = ()
    calls: tuple[CallSnapshot, ...] = ()
    gone_calls: tuple[str, ...] = ()
    last_agent: tuple[LastAgent, ...] = ()
    full: bool = False
    format: int = SNAPSHOT_FORMAT
    fairness: FairnessSnapshot | None = None  # always the latest (it moves with all work)

    @property
    def empty(self) -> bool:
        return not (self.agents or self.calls or self.gone_calls or self.last_agent
                    or self.full)
