"""The router core: ``Router.handle(event, now) -> list[Decision]``.

Pure: no I/O, no clock, no sleeping, no threads. ``now`` is an aware datetime
(naive -> ValueError); the router asks to be woken with `WakeAt` and expects
``handle(TimerFired(), at)`` then (any event also runs what is due). Call it
from one thread. Same events with the same ``now`` values give the same
decisions: every tie breaks on an explicit key ending with the agent id or an
arrival sequence number, never on dict or set order.

Channels. A routed item is an interaction on a channel (`routing.model.CHANNELS`):
a voice call or a text conversation (sms, messenger), told apart by
``CallArrived.channel`` and routed by the same code: queues (which say the
channels they serve), windows, skills, languages, priorities with aging,
expansion steps, the returning customer's last agent, wrap-up. Waiting lines
are per queue, language and channel (a text line's id is ``queue@channel``).

A multi-chat agent's state. The agent state (`routing.states`) stays the
agent's presence and phone; chats do not move it. Each chat the agent holds
(offered, connected, or wrapping up after it ended) takes a slot: the
agent's *load* per text channel is the number of their chats of that channel.
An agent is offerable for a channel when they are ``available``, registered,
in a window, and `Agent.admits` says their load leaves room: at most
``capacity[channel]`` of that channel, ``max_chats`` chats in all, and by the
mix rule no call while a chat is open (``one-channel``) or no call while a chat
is being offered (``voice-with-chats``). Chats are offered only to available
agents, so never during a call or its wrap-up. An agent whose load leaves room
for nothing leaves the heaps until a chat ends; one below capacity stays there
for more. A chat offer takes no cool-down unless it passes unaccepted
(``chat_missed``). Going on break or offline withdraws pending chat offers;
connected chats go on until their ``CallEnded``.

Fair share per channel: calls keep the share clocks above (talk time against
the fair share of each pool). Chats of a ``fair-share`` queue go to the agent
with the fewest chat minutes of that channel handled this week per signed-up
hour (`routing.fairness` "per signed-up hour"), then the longest idle; chat
minutes are kept apart from talk time, so calls' fair shares do not move.
A chat waiting ``chat_reply_after_s`` gets `ReplyWithWait` (and
`OfferChatCallback` when its wait exceeds ``callback_after_s``, the queue serves
voice and the channel has a number to call, `routing.model.CALLABLE_CHANNELS`);
`CallbackAccepted` turns it into a voice callback that keeps its
place in line.
"""
from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from routing.directory import Directory
from routing.events import (
    AgentEndedWrapUp,
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentPutOnBreak,
    AgentRegistered,
    AgentStateChanged,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
    CallbackNotAnswered,
    CallEnded,
    CallerAbandoned,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CancelOffer,
    Decision,
    Event,
    EventIgnored,
    OfferAnswered,
    OfferCall,
    OfferCallback,
    OfferChat,
    OfferChatCallback,
    OfferNotAnswered,
    Reason,
    ReplyWithWait,
    TimerFired,
    WakeAt,
)
from routing.model import (
    CALLABLE_CHANNELS,
    CHANNELS,
    VOICE,
    Agent,
    Queue,
    Requirement,
    RoutingPolicy,
)
from routing.pools import AgentPools, HeapEntry, PoolKey, WaitingLine
from routing.snapshot import (
    AgentSnapshot,
    CallSnapshot,
    FairnessSnapshot,
    LastAgent,
    RouterChanges,
    RouterSnapshot,
    ShareClockSnapshot,
    TimerSnapshot,
)
from routing.states import AgentState, next_state
from routing.windows import Schedule, check_aware, format_hhmm, load_zone

__all__ = ["Router"]

S = AgentState
_STAFFED = (S.AVAILABLE, S.RESERVED, S.ON_CALL, S.WRAP_UP, S.MISSED)


@dataclass(slots=True)
class _AgentRt:
    agent: Agent
    schedule: Schedule
    state: AgentState = S.OFFLINE
    registered: bool = False
    wants_break: bool = False
    pending_break: str | None = None
    idle_since: float = 0.0
    since: float = 0.0  # when the current state began
    misses: int = 0
    call_id: str | None = None
    handled_s: float = 0.0
    signed_h: float = 0.0
    week_ivs: list[tuple[float, float]] = field(default_factory=list)
    # fairness (README "Fairness"); all reset at the start of each week
    calls_handled: int = 0  # calls answered and ended this week (fewest-calls' key)
    # fair share owed this week = fair_offset_s + (while staffed) the clocks of the agent's
    # pools: leaving a pool banks its clock, joining subtracts it (`_ShareClock`)
    # (a restart snapshot keeps handled_s, calls_handled and the share owed, agent_status()
    # "fair_share_s"; it comes back as fair_offset_s of an agent not yet staffed)
    fair_offset_s: float = 0.0
    fair_key: float = 0.0  # fair-share heap key: share clock - deficit, when last routable
    free_seq: int = 0  # fair-share offers made before this agent last became routable
    version: int = 0
    in_window: bool = False
    window_until: float | None = None
    pooled: bool = False
    timer_token: int = 0
    staffed: bool = False
    window_token: int = 0  # only the window timer set last is valid
    # chats held (offered, connected or wrapping up): call id -> channel (the load)
    chats: dict[str, str] = field(default_factory=dict)
    chat_handled_s: dict[str, float] = field(default_factory=dict)  # per channel, this week
    serves: frozenset[str] = frozenset()  # the channels the agent takes at all
    room: frozenset[str] = frozenset()  # the channels with room for one more now (_refresh)
    room_kinds: frozenset[str] = frozenset()  # the same as heap-kind suffixes ("" = voice)


@dataclass(slots=True)
class _CallRt:
    ev: CallArrived
    queue: Queue
    arrived: float
    queued_at: float
    seq: int
    language: str | None
    skills: dict[str, int] | None
    phase: str = "waiting"  # waiting | ringing | connected | retry (callback, between tries)
    agent: str | None = None
    offer_token: int = 0
    answered_at: float = 0.0
    callback: bool = False
    callback_misses: int = 0
    missed_by: set[str] = field(default_factory=set)
    key: tuple[float, float, int, str] = (0.0, 0.0, 0, "")
    line: tuple[str, str] = ("", "")
    hops: int = 0
    reqs: dict[int, Requirement] = field(default_factory=dict)  # per step, for this queue
    share_pool: PoolKey | None = None  # whose fair shares this call's work counts in
    channel: str = VOICE
    replied: bool = False  # a waiting chat was told its expected wait


@dataclass(slots=True)
class _ShareClock:
    """Work per staffed agent of one pool so far this week, s (README "Fairness").

    Between changes, ``busy`` calls are handled while the pool has ``n`` staffed
    agents: each of them is owed ``dt * busy / n``. Advanced only when ``busy``
    or ``n`` changes (events), read anywhere without changing it, so reading
    (reasons, `agent_status`) never changes a later decision.
    """

    clock: float = 0.0
    busy: int = 0
    last: float = 0.0

    def at(self, staffed: int, now: float) -> float:
        if self.busy and staffed > 0 and now > self.last:
            return self.clock + (now - self.last) * self.busy / staffed
        return self.clock

    def advance(self, staffed: int, now: float) -> None:
        self.clock = self.at(staffed, now)
        self.last = max(self.last, now)


CallKey = tuple[float, float, int, str]  # (priority-aged arrival, arrival, sequence, call id)


def primary_skill(req: Requirement) -> str:
    """The skill best-proficiency ranks on: the highest required level, then the name."""
    if not req.skills:
        return "*"
    return min(req.skills, key=lambda s: (-s[1], s[0]))[0]


def _ts(now: datetime) -> float:
    return now.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Router:
    """Skills-based router over a `Directory`; see the module docstring for the contract."""

    def __init__(self, directory: Directory, *, now: datetime | None = None,
                 policy: RoutingPolicy | None = None) -> None:
        self.directory = directory
        self.policy = policy or directory.policy
        self._week_zone = load_zone(self.policy.week_zone)
        self._agents: dict[str, _AgentRt] = {}
        self._queues: dict[str, Queue] = {q.id: q for q in directory.queues}
        self._lines: dict[tuple[str, str], WaitingLine] = {}
        self._queue_all: dict[str, WaitingLine] = {
            _lid(q.id, ch): WaitingLine() for q in directory.queues for ch in (VOICE, *q.channels)}
        self._calls: dict[str, _CallRt] = {}
        self._special = WaitingLine()  # waiting calls with their own required skills
        self._pending: list[tuple[str, int]] = []  # routable agents not yet in the heaps
        self._timers: list[tuple[float, int, str, str, int]] = []  # due, seq, kind, id, token
        self._seq = 0
        self._last_agent: dict[str, tuple[str, float]] = {}
        self._staffed: dict[PoolKey, int] = {}
        # fair share: a clock per pool that calls' work is counted in, and one over all
        # staffed agents (the common drift of idle agents' deficits, for static heap keys)
        self._share: dict[PoolKey, _ShareClock] = {}
        self._share_of: dict[str, list[tuple[PoolKey, _ShareClock]]] = {}  # per agent
        self._share_all = _ShareClock()
        self._n_staffed = 0
        self._fair_offers = 0  # offers made by fair-share selection (starvation guard)
        self._keys_as_stored = False  # restore: index agents with the keys they had
        self._fair_in_use = any(q.selection == "fair-share" for q in directory.queues)
        self._serve_cache: dict[tuple[str, str | None, tuple[tuple[str, int], ...], str],
                                bool] = {}
        # per agent: (waiting line, queue, seconds of waiting before the agent qualifies,
        # the line's channel)
        self._agent_queues: dict[str, list[tuple[WaitingLine, Queue, float, str]]] = {}
        self._announced_wake: float | None = None
        self._week_start = -math.inf
        self._now = 0.0
        # what changed since the last take_dirty() (see "restart state" below)
        self._dirty_agents: set[str] = set()
        self._dirty_calls: set[str] = set()
        self._dirty_callers: set[str] = set()
        self._dirty_week = -math.inf
        self._week_end = -math.inf
        self.pools = AgentPools(self._key, lambda a: self._agents[a].version,
                                lambda a: self._agents[a].pooled, self._accepts)
        for a in directory.agents:
            self._add_agent(a)
        if now is not None:
            check_aware(now)
            self._roll_week(_ts(now))
        self._warm_pools()

    def _flush(self) -> None:
        """Index the agents that became routable and are still routable, as they are now.

        The fair-share key is computed here rather than in `_refresh`: most agents
        who free up get a waiting call at once and are never indexed. Every use of
        the heaps flushes first, and so within the same ``handle`` (same ``now``).
        """
        if self._pending:
            agents = self._agents
            now = self._now
            for aid, version in self._pending:
                rt = agents[aid]
                if rt.pooled and rt.version == version:
                    if self._fair_in_use and not self._keys_as_stored:
                        rt.fair_key = (self._share_all.at(self._n_staffed, now)
                                       - (self._fair_share_s(rt, now) - rt.handled_s))
                    self.pools.push(aid)
            self._pending.clear()

    def _warm_pools(self) -> None:
        """Create the heaps the queues will draw from, so no live decision pays for it."""
        self._flush()
        kinds: set[str] = {q.selection for q in self.directory.queues}
        if "fair-share" in kinds:
            kinds.add("fair-guard")
        for pool in self.pools.members:
            if pool[0] != "*" and pool[1] != "*":  # calls with their own required skills
                for kind in kinds:
                    self.pools.heap(pool, kind, True)
                    self.pools.heap(pool, kind, False)
        for q in self.directory.queues:
            for ch in q.channels:
                if ch != VOICE:
                    kinds.add(_kind(q, ch))
        for pool in self.pools.members:
            if pool[0] != "*" and pool[1] != "*":  # chats with their own required skills
                for kind in kinds:
                    if "@" in kind:
                        self.pools.heap(pool, kind, True)
                        self.pools.heap(pool, kind, False)
        for q in self.directory.queues:
            for lg in (q.languages or (None,)):
                # the clocks calls' work will count in, so no live decision creates one
                self._share_clock(self._select_pool(q.requirement(0, lg), "fair-share"),
                                  self._now)
                for step in range(len(q.expansion) + 1):
                    pool = self._select_pool(q.requirement(step, lg), q.selection)
                    for k in ((q.selection, "fair-guard") if q.selection == "fair-share"
                              else (q.selection,)):
                        self.pools.heap(pool, k, True)
                        self.pools.heap(pool, k, False)
                    for ch in q.channels:
                        if ch != VOICE:
                            k = _kind(q, ch)
                            cpool = self._select_pool(q.requirement(step, lg), k)
                            self.pools.heap(cpool, k, True)
                            self.pools.heap(cpool, k, False)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_directory(cls, directory: Directory, *, now: datetime | None = None,
                       policy: RoutingPolicy | None = None) -> Router:
        """A router for ``directory``. Stored hours are the caller's business: apply
        them to the directory first (``store.apply_hours(directory)``)."""
        return cls(directory, now=now, policy=policy)

    def _add_agent(self, agent: Agent) -> None:
        serves = frozenset(ch for ch in CHANNELS if agent.serves(ch))
        rt = _AgentRt(agent, Schedule(load_zone(agent.zone), agent.windows, agent.changes),
                      serves=serves, room=serves,
                      room_kinds=frozenset("" if ch == VOICE else ch for ch in serves))
        self._agents[agent.id] = rt
        self.pools.add_agent(agent.id, list(agent.skills), list(agent.languages), agent.trainee)
        serve: list[tuple[WaitingLine, Queue, float, str]] = []
        for q in self.directory.queues:
            chans = [ch for ch in q.channels if agent.serves(ch)]
            if not chans:
                continue
            if not q.skills.keys() <= agent.skills.keys() and not any(
                    s.any_skill for s in q.expansion):
                continue  # every step needs all of the queue's skills at level >= 1
            langs: list[str | None] = (list(q.languages) if q.languages
                                       else [*agent.languages, None])
            for lg in langs:
                if lg is not None and lg not in agent.languages:
                    continue
                for step in range(len(q.expansion) + 1):
                    if q.requirement(step, lg).met_by(agent):
                        wait = q.expansion[step - 1].after_s if step else 0.0
                        for ch in chans:
                            serve.append((self._line(_lid(q.id, ch), lg), q, wait, ch))
                        break
        self._agent_queues[agent.id] = serve
        self._share_of[agent.id] = []

    # ------------------------------------------------------------ keys & indexes
    def _key(self, agent_id: str, kind: str, skill: str) -> tuple[float, float]:
        rt = self._agents[agent_id]
        if kind == "best-proficiency":
            return (-float(rt.agent.skills.get(skill, 0)), rt.idle_since)
        if kind == "fair-share":
            return (rt.fair_key, rt.idle_since)
        if kind == "fewest-calls":
            return (float(rt.calls_handled), rt.idle_since)
        if kind == "fair-guard":  # who has been routable through the most fair-share offers
            return (float(rt.free_seq), rt.idle_since)
        if "@" in kind:  # a heap for chats of one channel
            kind, _, ch = kind.partition("@")
            if kind == "chat-share":  # chat minutes per signed-up hour, this channel
                return (rt.chat_handled_s.get(ch, 0.0) / 60 / max(rt.signed_h, 1 / 60),
                        rt.idle_since)
            return self._key(agent_id, kind, skill)
        return (rt.idle_since, 0.0)

    def _accepts(self, agent_id: str, kind: str) -> bool:
        """The agent belongs in heaps of ``kind`` now: routable, with room for its channel."""
        rt = self._agents[agent_id]
        return rt.pooled and kind.partition("@")[2] in rt.room_kinds

    def _routable(self, rt: _AgentRt) -> bool:
        return rt.state is S.AVAILABLE and rt.registered and rt.in_window and bool(rt.room)

    # ------------------------------------------------------------ channels & load
    def _load(self, rt: _AgentRt) -> dict[str, int]:
        load: dict[str, int] = {}
        for ch in rt.chats.values():
            load[ch] = load.get(ch, 0) + 1
        return load

    def _offering(self, rt: _AgentRt) -> bool:
        return any(self._calls[c].phase == "ringing" for c in rt.chats if c in self._calls)

    def _admits(self, rt: _AgentRt, channel: str) -> bool:
        """One more ``channel`` interaction may be offered to ``rt`` (capacity, mix rule)."""
        return channel in rt.room

    def _room(self, rt: _AgentRt) -> frozenset[str]:
        """The channels ``rt``'s chats leave room for (kept in ``rt.room`` by `_refresh`,
        which runs after every change of the agent's chats)."""
        if not rt.chats:
            return rt.serves
        load, offering = self._load(rt), self._offering(rt)
        return frozenset(ch for ch in rt.serves if rt.agent.admits(ch, load, offering))

    def _refresh(self, rt: _AgentRt) -> None:
        """Re-derive pool membership and staffed counts after any change of ``rt``.

        The fair-share key is taken when the agent is indexed (`_flush`, in the
        same ``handle``) and kept while they wait, so heap keys stay static. A
        waiting agent's deficit grows as their pools' clocks run; the key
        subtracts the deficit from the clock over all staffed agents, which runs
        at the average of those rates (exactly theirs when everyone serves the
        same calls), so the order of waiting agents stays that of their deficits.
        """
        self._dirty_agents.add(rt.agent.id)
        room = self._room(rt)
        if room is not rt.room:
            rt.room = room
            rt.room_kinds = frozenset("" if ch == VOICE else ch for ch in room)
        now = self._now
        staffed = rt.registered and rt.in_window and rt.state in _STAFFED
        if staffed != rt.staffed:
            rt.staffed = staffed
            d = 1 if staffed else -1
            self._share_all.advance(self._n_staffed, now)
            self._n_staffed += d
            staffed_in = self._staffed
            for p, c in self._share_of[rt.agent.id]:
                c.advance(staffed_in.get(p, 0), now)
                rt.fair_offset_s -= d * c.clock  # joining: owed from here on
            for p in self.pools.pools_of(rt.agent.id):
                staffed_in[p] = staffed_in.get(p, 0) + d
        want = self._routable(rt)
        if want and not rt.pooled:
            rt.free_seq = self._fair_offers
        if want or rt.pooled:
            rt.version += 1
        rt.pooled = want
        if want:
            # indexed lazily: an agent who frees up usually gets a call at once
            self._pending.append((rt.agent.id, rt.version))

    def _update_window(self, rt: _AgentRt, now: float) -> None:
        is_open, until = rt.schedule.state_at(_dt(now))
        rt.in_window = is_open
        rt.window_until = until.timestamp() if until is not None else None
        if rt.registered and rt.window_until is not None:
            rt.window_token += 1
            self._timer(rt.window_until, "window", rt.agent.id, rt.window_token)

    def _roll_week(self, now: float) -> None:
        if now < self._week_end:
            return
        local = _dt(now).astimezone(self._week_zone)
        monday = (local - timedelta(days=local.weekday())).date()
        start = datetime(monday.year, monday.month, monday.day, tzinfo=self._week_zone)
        end_d = monday + timedelta(days=7)
        end = datetime(end_d.year, end_d.month, end_d.day, tzinfo=self._week_zone)
        self._week_start, self._week_end = start.timestamp(), end.timestamp()
        for rt in self._agents.values():
            rt.handled_s = 0.0
            rt.calls_handled = 0
            rt.chat_handled_s = {}
            rt.fair_offset_s = 0.0  # staffed agents rejoin every clock at 0
            self._week_hours(rt)
        for c in (*self._share.values(), self._share_all):
            c.clock, c.last = 0.0, max(c.last, now)
        self.pools.reset()

    def _week_hours(self, rt: _AgentRt) -> None:
        s, e = self._week_start, self._week_end
        ivs = rt.schedule.intervals(_dt(s), _dt(e))
        rt.week_ivs = [(max(a.timestamp(), s), min(b.timestamp(), e)) for a, b in ivs]
        rt.signed_h = sum(b - a for a, b in rt.week_ivs) / 3600

    @staticmethod
    def _elapsed_h(rt: _AgentRt, now: float) -> float:
        """Signed-up hours of this week that have already begun by ``now``."""
        total = 0.0
        for a, b in rt.week_ivs:
            if a >= now:
                break
            total += min(b, now) - a
        return total / 3600

    def _fair_share_s(self, rt: _AgentRt, now: float) -> float:
        """The agent's fair share of this week's work so far, s (reads, changes nothing)."""
        fair = rt.fair_offset_s
        if rt.staffed:
            staffed = self._staffed
            for p, c in self._share_of[rt.agent.id]:  # _ShareClock.at, inlined: hot path
                fair += c.clock
                if c.busy and now > c.last:
                    n = staffed.get(p, 0)
                    if n > 0:
                        fair += (now - c.last) * c.busy / n
        return fair

    def _share_clock(self, pool: PoolKey, now: float) -> _ShareClock:
        c = self._share.get(pool)
        if c is None:  # staffed members join a new clock at 0: no offsets to adjust
            c = self._share[pool] = _ShareClock(last=now)
            for aid in self.pools.members.get(pool, ()):
                self._share_of[aid].append((pool, c))
        return c

    def _share_busy(self, pool: PoolKey, d: int, now: float) -> None:
        """A call counted in ``pool`` was answered (+1) or ended (-1)."""
        c = self._share_clock(pool, now)
        c.advance(self._staffed.get(pool, 0), now)
        c.busy += d
        self._share_all.advance(self._n_staffed, now)
        self._share_all.busy += d

    # ------------------------------------------------------------ timers
    def _timer(self, due: float, kind: str, ident: str, token: int) -> None:
        self._timer_touched(kind, ident)
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, ident, token))

    def _timer_valid(self, kind: str, ident: str, token: int, due: float) -> bool:
        if kind == "window":
            rt = self._agents.get(ident)
            return (rt is not None and rt.registered and rt.window_until == due
                    and rt.window_token == token)
        if kind in ("wrap", "cool"):
            rt = self._agents.get(ident)
            return rt is not None and rt.timer_token == token
        call = self._calls.get(ident)
        if call is None:
            return False
        if kind == "ring":
            return call.phase == "ringing" and call.offer_token == token
        if kind == "cbretry":
            return call.phase == "retry" and call.offer_token == token
        if kind == "chatwrap":
            return call.phase == "wrap" and call.offer_token == token
        return call.phase == "waiting" and call.offer_token == token  # step / maxwait / reply

    def _next_due(self) -> float | None:
        t = self._timers
        while t and not self._timer_valid(t[0][2], t[0][3], t[0][4], t[0][0]):
            heapq.heappop(t)
        return t[0][0] if t else None

    def _run_due(self, now: float, out: list[Decision]) -> None:
        t = self._timers
        # WakeAt carries microsecond datetimes; a float due may sit a hair after them
        while t and t[0][0] <= now + 1e-6:
            due, _, kind, ident, token = heapq.heappop(t)
            self._timer_touched(kind, ident)
            if not self._timer_valid(kind, ident, token, due):
                continue
            if kind == "window":
                rt = self._agents[ident]
                self._update_window(rt, max(now, due))
                self._refresh(rt)
                if rt.pooled:
                    self._agent_freed(rt, now, out)
            elif kind == "wrap":
                rt = self._agents[ident]
                self._end_wrap_up(rt, now, out)
                self._after_free(rt, now, out)
            elif kind == "cool":
                rt = self._agents[ident]
                self._move(rt, "cooled_down", now, out)
                self._after_free(rt, now, out)
            elif kind == "ring":
                call = self._calls[ident]
                aid = call.agent or ""
                out.append(CancelOffer(call.ev.call_id, aid,
                                       f"no answer within {self.policy.ring_timeout_s:g} s",
                                       call.channel))
                if call.channel == VOICE:
                    self._missed(call, aid, "no-answer", now, out)
                else:
                    self._chat_missed(call, aid, "no-answer", now, out)
            elif kind == "chatwrap":
                call = self._calls[ident]
                self._chat_done(call, self._agents[call.agent or ""], now, out)
            elif kind == "reply":
                self._reply_with_wait(self._calls[ident], out)
            elif kind == "step":
                self._step_reached(self._calls[ident], now, out)
            elif kind == "cbretry":
                call = self._calls[ident]
                call.phase = "waiting"
                self._route_call(call, now, out, requeue=False)
            elif kind == "maxwait":
                call = self._calls[ident]
                if call.callback and call.queue.overflow not in self._queues:
                    # the caller hung up for a callback: there is nobody on the line to
                    # send to voicemail, a number or a refusal, so the promise stands and
                    # the entry waits for an agent (it ends after ``callback_attempts``)
                    continue
                self._overflow(call, now, out,
                               f"waited {call.queue.max_wait_s:g} s (max wait)")

    # ------------------------------------------------------------ entry point
    def handle(self, event: Event, now: datetime) -> list[Decision]:
        """Apply ``event`` at ``now``; return the decisions (possibly none)."""
        check_aware(now)
        t = _ts(now)
        self._now = t
        out: list[Decision] = []
        if t >= self._week_end:
            self._roll_week(t)
            for rt in self._agents.values():
                if rt.pooled:
                    self._refresh(rt)
            self._warm_pools()
        self._run_due(t, out)
        self._note_before(event)
        self._dispatch(event, t, out)
        self._note_after(event, out)
        self._flush()
        due = self._next_due()
        if due is not None and (due != self._announced_wake or isinstance(event, TimerFired)):
            out.append(WakeAt(_dt(due)))
        self._announced_wake = due
        return out

    def _dispatch(self, ev: Event, now: float, out: list[Decision]) -> None:
        if isinstance(ev, CallArrived):
            self._call_arrived(ev, now, out)
        elif isinstance(ev, TimerFired):
            pass
        elif isinstance(ev, OfferAnswered | OfferNotAnswered):
            call = self._calls.get(ev.call_id)
            if call is None or call.phase != "ringing" or call.agent != ev.agent_id:
                out.append(EventIgnored(type(ev).__name__,
                                        f"call {ev.call_id} is not ringing {ev.agent_id}"))
            elif isinstance(ev, OfferAnswered):
                if call.channel == VOICE:
                    self._connected(call, self._agents[ev.agent_id], now, out)
                else:
                    call.phase, call.answered_at = "connected", now
                    crt = self._agents[ev.agent_id]
                    crt.misses = 0
                    self._refresh(crt)  # accepted: no chat being offered (the mix rule)
                    self._after_free(crt, now, out)
            elif call.channel == VOICE:
                self._missed(call, ev.agent_id, ev.cause, now, out)
            else:
                self._chat_missed(call, ev.agent_id, ev.cause, now, out)
        elif isinstance(ev, CallEnded | CallerAbandoned):
            self._call_gone(ev, now, out)
        elif isinstance(ev, CallbackNotAnswered):
            call = self._calls.get(ev.call_id)
            if call is None or call.phase != "connected" or not call.callback:
                out.append(EventIgnored("CallbackNotAnswered",
                                        f"call {ev.call_id} is not a connected callback"))
            else:
                self._callback_missed(call, ev.cause, now, out)
        elif isinstance(ev, CallbackAccepted):
            call = self._calls.get(ev.call_id)
            if call is None:
                out.append(EventIgnored("CallbackAccepted", f"unknown call {ev.call_id}"))
            elif call.channel != VOICE:
                self._chat_to_callback(call, now, out)
            else:
                call.callback = True
        elif isinstance(ev, AgentRegistered | AgentUnregistered | AgentMadeAvailable
                        | AgentWentOnBreak | AgentEndedWrapUp | AgentHoursChanged):
            art = self._agents.get(ev.agent_id)
            if art is None:
                out.append(EventIgnored(type(ev).__name__, f"unknown agent {ev.agent_id}"))
                return
            self._agent_event(ev, art, now, out)
        else:
            raise TypeError(f"not a routing event: {ev!r}")

    # ------------------------------------------------------------ agents
    def _move(self, rt: _AgentRt, trigger: str, now: float, out: list[Decision]) -> None:
        old = rt.state
        new = next_state(old, trigger)
        if new is not old:
            rt.state = new
            rt.since = now
            rt.timer_token += 1  # pending wrap-up / cool-down timers no longer apply
            if new is S.AVAILABLE:
                rt.idle_since = now
            out.append(AgentStateChanged(rt.agent.id, old.value, new.value, trigger))
        self._refresh(rt)

    def _after_free(self, rt: _AgentRt, now: float, out: list[Decision]) -> None:
        if rt.pooled:
            self._agent_freed(rt, now, out)

    def _agent_event(self, ev: Event, rt: _AgentRt, now: float, out: list[Decision]) -> None:
        if isinstance(ev, AgentRegistered):
            was = rt.registered
            rt.registered = True
            if not was:
                self._update_window(rt, now)
            if rt.state is S.OFFLINE:
                brk = rt.wants_break or not self.policy.available_on_register
                self._move(rt, "registered_on_break" if brk else "registered", now, out)
            else:
                self._move(rt, "registered", now, out)
        elif isinstance(ev, AgentUnregistered):
            rt.registered = False
            call = self._calls.get(rt.call_id or "")
            ringing = rt.state is S.RESERVED and call is not None
            self._move(rt, "unregistered", now, out)
            if ringing and call is not None:
                out.append(CancelOffer(call.ev.call_id, rt.agent.id, "agent unregistered"))
                self._back_to_queue(call, rt.agent.id, now, out)
            self._withdraw_chat_offers(rt, "agent unregistered", now, out)
        elif isinstance(ev, AgentMadeAvailable):
            rt.wants_break = False
            rt.pending_break = None
            rt.misses = 0
            self._move(rt, "made_available", now, out)
        elif isinstance(ev, AgentWentOnBreak):
            rt.wants_break = True
            call = self._calls.get(rt.call_id or "")
            ringing = rt.state is S.RESERVED and call is not None
            if rt.state is S.ON_CALL:
                rt.pending_break = ev.why or "asked for a break"
            self._move(rt, "went_on_break", now, out)
            if ringing and call is not None:
                out.append(CancelOffer(call.ev.call_id, rt.agent.id, "agent went on break"))
                self._back_to_queue(call, rt.agent.id, now, out)
            self._withdraw_chat_offers(rt, "agent went on break", now, out)
        elif isinstance(ev, AgentEndedWrapUp):
            wraps = [self._calls[c] for c in rt.chats if self._calls[c].phase == "wrap"]
            if rt.state is S.WRAP_UP:
                self._end_wrap_up(rt, now, out)
            elif not wraps:
                out.append(EventIgnored("AgentEndedWrapUp",
                                        f"{rt.agent.id} is {rt.state.value}, not in wrap-up"))
            for chat in wraps:  # chats' wrap-up ends too
                self._chat_done(chat, rt, now, out)
        elif isinstance(ev, AgentHoursChanged):
            self._set_hours(rt, ev.windows, ev.changes, now)
        self._after_free(rt, now, out)

    def _end_wrap_up(self, rt: _AgentRt, now: float, out: list[Decision]) -> None:
        """Wrap-up is over (its timer, or the agent said so): available, the break
        asked for during the call, or offline when the phone went away."""
        trig = ("wrap_done_offline" if not rt.registered else
                "wrap_done_break" if rt.pending_break is not None else "wrap_done")
        self._move(rt, trig, now, out)
        if rt.state is S.BREAK:
            out.append(AgentPutOnBreak(rt.agent.id, rt.pending_break or "asked for a break"))
            rt.pending_break = None

    def _set_hours(self, rt: _AgentRt, windows: Sequence[Any], changes: Sequence[Any],
                   now_ts: float) -> None:
        self._serve_cache.clear()
        rt.agent = rt.agent.with_hours(windows, changes)
        rt.schedule = Schedule(rt.schedule.zone, rt.agent.windows, rt.agent.changes)
        if math.isfinite(self._week_start):
            self._week_hours(rt)
        self._update_window(rt, now_ts)
        self._refresh(rt)

    def _missed(self, call: _CallRt, agent_id: str, cause: str, now: float,
                out: list[Decision]) -> None:
        rt = self._agents[agent_id]
        rt.misses += 1
        rt.call_id = None
        if rt.misses >= self.policy.max_misses:
            rt.wants_break = True  # stays on break across re-registration until made available
            self._move(rt, "missed_limit", now, out)
            out.append(AgentPutOnBreak(agent_id, f"missed {rt.misses} offers in a row "
                                       f"(last: {cause}); make yourself available to continue"))
        else:
            self._move(rt, "missed", now, out)
            rt.timer_token += 1
            self._timer(now + self.policy.miss_cooldown_s, "cool", agent_id, rt.timer_token)
        self._back_to_queue(call, agent_id, now, out, missed=True)

    def _back_to_queue(self, call: _CallRt, agent_id: str, now: float,
                       out: list[Decision], *, missed: bool = False) -> None:
        rt = self._agents[agent_id]
        rt.call_id = None
        if missed:
            call.missed_by.add(agent_id)
        call.phase, call.agent = "waiting", None
        self._route_call(call, now, out, requeue=True)

    # ------------------------------------------------------------ calls
    def _call_arrived(self, ev: CallArrived, now: float, out: list[Decision]) -> None:
        if ev.call_id in self._calls:
            out.append(EventIgnored("CallArrived", f"call {ev.call_id} is already known"))
            return
        q = self._queues.get(ev.queue_id)
        if q is None:
            out.append(CallRejected(ev.call_id, f"unknown queue {ev.queue_id!r} (known: "
                                    f"{', '.join(sorted(self._queues))})", "unknown-queue",
                                    ev.queue_id))
            return
        if ev.channel not in q.channels:
            out.append(CallRejected(ev.call_id, f"queue {q.id} does not serve {ev.channel!r} "
                                    f"(it serves: {', '.join(q.channels)})", "wrong-channel",
                                    q.id, ev.channel))
            return
        self._seq += 1
        skills = dict(ev.required_skills) if ev.required_skills else None
        extra = [s for s in ev.skills if s not in (skills if skills is not None else q.skills)]
        if extra:  # the flow asks for more than the queue does
            skills = {**(skills if skills is not None else q.skills), **dict.fromkeys(extra, 1)}
        call = _CallRt(ev, q, now, now, self._seq, q.language_for(ev.language), skills,
                       channel=ev.channel)
        self._calls[ev.call_id] = call
        self._route_call(call, now, out, requeue=False)

    def _call_gone(self, ev: CallEnded | CallerAbandoned, now: float,
                   out: list[Decision]) -> None:
        chat = self._calls.get(ev.call_id)
        if chat is not None and chat.channel != VOICE:
            self._chat_gone(chat, ev, now, out)
            return
        call = self._calls.pop(ev.call_id, None)
        if call is None:
            out.append(EventIgnored(type(ev).__name__, f"unknown call {ev.call_id}"))
            return
        if call.phase in ("waiting", "retry"):
            if call.callback and isinstance(ev, CallerAbandoned):
                self._calls[ev.call_id] = call  # the caller hung up for a callback: keep place
                return
            if call.phase == "waiting":
                self._unqueue(call)
        elif call.phase == "ringing":
            rt = self._agents[call.agent or ""]
            rt.call_id = None
            out.append(CancelOffer(call.ev.call_id, rt.agent.id, "caller hung up"))
            self._move(rt, "withdrawn", now, out)
            self._after_free(rt, now, out)
        else:
            rt = self._agents[call.agent or ""]
            rt.call_id = None
            rt.handled_s += max(0.0, now - call.answered_at)
            rt.calls_handled += 1
            if call.share_pool is not None:
                self._share_busy(call.share_pool, -1, now)
            if call.ev.caller:
                self._last_agent[call.ev.caller] = (rt.agent.id, now)
            self._move(rt, "ended", now, out)
            rt.timer_token += 1
            self._timer(now + call.queue.wrap_up_s, "wrap", rt.agent.id, rt.timer_token)
            if call.queue.wrap_up_s <= 0:
                self._run_due(now, out)

    # ------------------------------------------------------------ chats
    def _chat_missed(self, call: _CallRt, agent_id: str, cause: str, now: float,
                     out: list[Decision]) -> None:
        """A chat offer passed unaccepted: a miss like a call's (cool-down, or a break at
        the limit); the chat goes back to its place in line, for another agent."""
        rt = self._agents[agent_id]
        rt.chats.pop(call.ev.call_id, None)
        rt.misses += 1
        if rt.state in (S.AVAILABLE, S.MISSED):
            if rt.misses >= self.policy.max_misses:
                rt.wants_break = True
                self._move(rt, "chat_missed_limit", now, out)
                out.append(AgentPutOnBreak(agent_id, f"missed {rt.misses} offers in a row "
                                           f"(last: {call.channel} chat, {cause}); make "
                                           "yourself available to continue"))
            else:
                self._move(rt, "chat_missed", now, out)
                rt.timer_token += 1
                self._timer(now + self.policy.miss_cooldown_s, "cool", agent_id,
                            rt.timer_token)
        else:
            self._refresh(rt)
        call.missed_by.add(agent_id)
        call.phase, call.agent = "waiting", None
        self._route_call(call, now, out, requeue=True)
        if rt.state is S.BREAK:
            self._withdraw_chat_offers(rt, "agent put on break", now, out)

    def _withdraw_chat_offers(self, rt: _AgentRt, why: str, now: float,
                              out: list[Decision]) -> None:
        """The agent can take no new chat (break, offline): pending chat offers go back
        in line; open chats go on."""
        for cid in [c for c in rt.chats if self._calls[c].phase == "ringing"]:
            call = self._calls[cid]
            del rt.chats[cid]
            out.append(CancelOffer(cid, rt.agent.id, why, call.channel))
            call.phase, call.agent = "waiting", None
            self._refresh(rt)
            self._route_call(call, now, out, requeue=True)

    def _chat_gone(self, call: _CallRt, ev: CallEnded | CallerAbandoned, now: float,
                   out: list[Decision]) -> None:
        """A conversation closed: waiting or offered, it just goes; connected, its agent
        keeps the slot for the queue's wrap-up (then `_chat_done`)."""
        cid = call.ev.call_id
        rt = self._agents.get(call.agent or "")
        if call.phase == "wrap":
            out.append(EventIgnored(type(ev).__name__, f"conversation {cid} already ended "
                                    "(its agent is in wrap-up)"))
            return
        if call.phase != "connected" or rt is None:
            self._calls.pop(cid)
            if call.phase == "waiting":
                self._unqueue(call)
            elif rt is not None:  # offered
                rt.chats.pop(cid, None)
                out.append(CancelOffer(cid, rt.agent.id, "customer left", call.channel))
                self._refresh(rt)
                self._after_free(rt, now, out)
            return
        ch = call.channel
        rt.chat_handled_s[ch] = rt.chat_handled_s.get(ch, 0.0) + max(0.0, now - call.answered_at)
        if call.ev.caller:
            self._last_agent[call.ev.caller] = (rt.agent.id, now)
        call.phase = "wrap"
        call.offer_token += 1
        self._refresh(rt)  # the chat-share key changed
        if call.queue.wrap_up_s <= 0:
            self._chat_done(call, rt, now, out)
        else:
            self._timer(now + call.queue.wrap_up_s, "chatwrap", cid, call.offer_token)

    def _chat_done(self, call: _CallRt, rt: _AgentRt, now: float,
                   out: list[Decision]) -> None:
        """The chat's wrap-up is over: its slot is free."""
        cid = call.ev.call_id
        self._calls.pop(cid, None)
        self._dirty_calls.add(cid)
        rt.chats.pop(cid, None)
        self._refresh(rt)
        self._after_free(rt, now, out)

    def _reply_with_wait(self, call: _CallRt, out: list[Decision]) -> None:
        """The chat waited ``chat_reply_after_s``: tell the customer the expected wait,
        and offer a call back if that is longer than ``callback_after_s``."""
        call.replied = True
        q = call.queue
        position, expected, _ = self._place(
            call, self._requirement(call, q.step_at(self._now - call.queued_at)))
        out.append(ReplyWithWait(call.ev.call_id, call.channel, q.id, position, expected))
        if (q.callback_after_s is not None and expected > q.callback_after_s
                and VOICE in q.channels and call.channel in CALLABLE_CHANNELS):
            out.append(OfferChatCallback(call.ev.call_id, call.channel, expected))

    def _chat_to_callback(self, call: _CallRt, now: float, out: list[Decision]) -> None:
        """The waiting customer took the call back: the conversation becomes a voice
        callback in the same queue, keeping its place (the key is its arrival)."""
        if call.channel not in CALLABLE_CHANNELS:
            out.append(EventIgnored("CallbackAccepted", f"conversation {call.ev.call_id} is "
                                    f"on {call.channel}: no number to call back"))
            return
        if call.phase != "waiting" or VOICE not in call.queue.channels:
            out.append(EventIgnored("CallbackAccepted", f"conversation {call.ev.call_id} is "
                                    f"{call.phase} in {call.queue.id}, which "
                                    + ("serves voice" if VOICE in call.queue.channels
                                       else "does not serve voice")))
            return
        self._unqueue(call)
        call.channel, call.callback = VOICE, True
        self._route_call(call, now, out, requeue=False)

    def _callback_missed(self, call: _CallRt, cause: str, now: float,
                         out: list[Decision]) -> None:
        """The agent took the callback but the caller did not answer: the agent goes
        on (wrap-up, no miss counted against them); the call keeps its place and is
        tried again after ``callback_retry_s``, or ends after ``callback_attempts``."""
        rt = self._agents[call.agent or ""]
        rt.call_id = None
        self._move(rt, "ended", now, out)
        rt.timer_token += 1
        self._timer(now + call.queue.wrap_up_s, "wrap", rt.agent.id, rt.timer_token)
        call.agent = None
        call.callback_misses += 1
        pol = self.policy
        if call.callback_misses >= pol.callback_attempts:
            self._calls.pop(call.ev.call_id, None)
            out.append(CallRejected(call.ev.call_id, f"{call.queue.id}: the caller did not "
                                    f"answer {call.callback_misses} callbacks (last: {cause})",
                                    "callback-unanswered", call.queue.id))
        else:
            call.phase = "retry"
            call.offer_token += 1
            self._timer(now + pol.callback_retry_s, "cbretry", call.ev.call_id,
                        call.offer_token)
        if call.queue.wrap_up_s <= 0:
            self._run_due(now, out)

    def _requirement(self, call: _CallRt, step: int) -> Requirement:
        req = call.reqs.get(step)
        if req is None:
            req = call.reqs[step] = call.queue.requirement(step, call.language, call.skills)
        return req

    def _can_ever_serve(self, call: _CallRt) -> bool:
        q = call.queue
        last = len(q.expansion)
        req = self._requirement(call, last)
        ch = call.channel
        key = (q.id, req.language, req.skills, ch)
        hit = self._serve_cache.get(key)
        if hit is None:
            members = self.pools.members.get(self._select_pool(req, "longest-idle"), ())
            agents = self._agents
            hit = any(req.met_by(agents[a].agent) and agents[a].agent.serves(ch)
                      and bool(agents[a].agent.windows or agents[a].agent.changes)
                      for a in members)
            self._serve_cache[key] = hit
        return hit

    def _route_call(self, call: _CallRt, now: float, out: list[Decision], *,
                    requeue: bool) -> None:
        """Offer the call to the best eligible agent, or (re)queue it."""
        if requeue and call.line[0]:
            self._unqueue(call)
        if not self._can_ever_serve(call):
            self._overflow(call, now, out, "no agent in the directory has what this call needs")
            return
        q = call.queue
        step = q.step_at(now - call.queued_at)
        req = self._requirement(call, step)
        lid = _lid(q.id, call.channel)
        line = self._line(lid, req.language)
        waiting_before = len(self._queue_all[lid].keys)
        picked = self._select(call, req, step, now, waiting_before)
        if picked is not None:
            self._offer(call, picked[0], picked[1], now, out)
            return
        # wait: index the call and set its step / max-wait timers
        aging = self.policy.aging_s_per_priority
        vkey = call.arrived - (q.priority + call.ev.priority) * aging
        call.key = (vkey, call.arrived, call.seq, call.ev.call_id)
        call.line = (lid, req.language or "*")
        line.add(call.key)
        self._queue_all[lid].add(call.key)
        if call.skills is not None:
            self._special.add(call.key)
        call.offer_token += 1
        if step < len(q.expansion):
            self._timer(call.queued_at + q.expansion[step].after_s, "step",
                        call.ev.call_id, call.offer_token)
        if q.max_wait_s is not None:
            self._timer(call.queued_at + q.max_wait_s, "maxwait", call.ev.call_id,
                        call.offer_token)
        position, expected, staffed = self._place(call, req)
        text = (f"no eligible agent free for {q.id} ({req.describe()}, step {step}); "
                f"position {position}, expected wait {expected:.0f} s "
                f"({staffed} agent(s) staffed)")
        excluded = self._exclusions(req, call, now)
        if excluded:
            text += "; " + "; ".join(f"{a}: {w}" for a, w in excluded)
        out.append(CallQueued(call.ev.call_id, q.id, position, expected,
                              Reason("queued", text, queue_id=q.id, step=step,
                                     requirement=req.describe(), excluded=tuple(excluded)),
                              call.channel))
        if call.channel != VOICE:
            if q.chat_reply_after_s is not None and not call.replied:
                self._timer(call.arrived + q.chat_reply_after_s, "reply", call.ev.call_id,
                            call.offer_token)
            return
        if (not requeue and not call.callback and q.callback_after_s is not None
                and expected > q.callback_after_s):
            out.append(OfferCallback(call.ev.call_id, expected))

    def _step_reached(self, call: _CallRt, now: float, out: list[Decision]) -> None:
        """A waiting call reached its next expansion step: more agents may take it now.

        It keeps its place (the key does not change), so nothing is re-announced.
        """
        q = call.queue
        step = q.step_at(now - call.queued_at)
        req = self._requirement(call, step)
        picked = self._select(call, req, step, now,
                              len(self._queue_all[call.line[0]].keys) - 1)
        if picked is not None:
            self._offer(call, picked[0], picked[1], now, out)
        elif step < len(q.expansion):
            self._timer(call.queued_at + q.expansion[step].after_s, "step", call.ev.call_id,
                        call.offer_token)

    def _unqueue(self, call: _CallRt) -> None:
        qid, lang = call.line
        if qid:
            self._lines[(qid, lang)].remove(call.key)
            self._queue_all[qid].remove(call.key)
            if call.skills is not None:
                self._special.remove(call.key)
            call.line = ("", "")

    def _line(self, qid: str, lang: str | None) -> WaitingLine:
        k = (qid, lang or "*")
        line = self._lines.get(k)
        if line is None:
            line = self._lines[k] = WaitingLine()
        return line

    def _overflow(self, call: _CallRt, now: float, out: list[Decision], why: str) -> None:
        self._unqueue(call)
        q = call.queue
        target = q.overflow
        if target is None:
            self._calls.pop(call.ev.call_id, None)
            out.append(CallRejected(call.ev.call_id, f"{q.id}: {why}; no overflow target",
                                    "no-agent", q.id, call.channel))
            return
        nq = self._queues.get(target)
        if call.channel != VOICE and (nq is None or call.channel not in nq.channels):
            # an external target or a queue without this channel cannot take a chat
            self._calls.pop(call.ev.call_id, None)
            out.append(CallRejected(call.ev.call_id, f"{q.id}: {why}; overflow target "
                                    f"{target!r} does not serve {call.channel}",
                                    "wrong-channel", q.id, call.channel))
            return
        out.append(CallOverflowed(call.ev.call_id, q.id, target, why, call.channel))
        call.hops += 1
        if nq is None or call.hops > len(self._queues):
            self._calls.pop(call.ev.call_id, None)
            return
        call.queue, call.queued_at = nq, now
        call.language = nq.language_for(call.ev.language)
        call.skills = None
        call.reqs = {}
        call.offer_token += 1
        self._route_call(call, now, out, requeue=False)

    def _select_pool(self, req: Requirement, kind: str) -> PoolKey:
        """The pool to draw from: for best-proficiency the primary skill's (its level is
        the key), otherwise the smallest pool that covers the requirement."""
        lang = req.language or "*"
        if kind == "best-proficiency" or kind.startswith("best-proficiency@"):
            return (primary_skill(req), lang)
        pool: PoolKey = ("*", lang)
        best_n = len(self.pools.members.get(pool, ()))
        for s, _lv in req.skills:
            n = len(self.pools.members.get((s, lang), ()))
            if n < best_n:
                pool, best_n = (s, lang), n
        return pool

    @staticmethod
    def _pool_for(req: Requirement) -> PoolKey:
        skill = req.skills[0][0] if req.skills else "*"
        return (skill, req.language or "*")

    # ------------------------------------------------------------ selection
    def _eligible(self, rt: _AgentRt, req: Requirement, call: _CallRt, q: Queue,
                  now: float) -> str | None:
        """None when eligible, else why not (short)."""
        if not self._admits(rt, call.channel):
            return (f"no {call.channel} capacity free ({len(rt.chats)} chat(s) open)"
                    if rt.chats else f"takes no {call.channel}")
        if not req.met_by(rt.agent):
            return "lacks " + req.describe()
        if rt.agent.id in call.missed_by:
            return "already missed this call"
        if rt.window_until is not None and rt.window_until - now < q.time_left_s:
            return (f"window closes in {(rt.window_until - now) / 60:.0f} min, "
                    f"{q.time_left_s / 60:.0f} min needed")
        return None

    def _ordered(self, pool: PoolKey, kind: str, protect: bool, simple: bool
                 ) -> tuple[Iterator[str], Callable[[str | None], None]]:
        """Routable agents of ``pool``, best first by ``kind``; the trainee group that
        protection prefers comes first. The callback puts back what was looked at."""
        self._flush()
        popped: list[tuple[list[HeapEntry], HeapEntry]] = []
        heaps_t = self.pools.heap(pool, kind, True)
        heaps_n = self.pools.heap(pool, kind, False)
        if protect:
            first, second = (heaps_t, heaps_n) if simple else (heaps_n, heaps_t)
            it: Iterator[HeapEntry] = chain(self.pools.drain(first, popped),
                                            self.pools.drain(second, popped))
        else:
            it = heapq.merge(self.pools.drain(heaps_n, popped), self.pools.drain(heaps_t, popped))
        return (e[2] for e in it), lambda chosen: self.pools.restore(popped, chosen)

    def _select(self, call: _CallRt, req: Requirement, step: int, now: float,
                waiting_before: int) -> tuple[str, Reason] | None:
        q = call.queue
        kind = _kind(q, call.channel)
        pol = self.policy
        pool = self._select_pool(req, kind)
        low_load = waiting_before <= pol.trainee_low_load_waiting
        protect = low_load and self.pools.trainees_in.get(pool, 0) > 0
        simple = call.ev.intent in q.simple_intents
        starving = (self._starving(pool, req, call, q, now, protect, simple)
                    if kind == "fair-share" else None)
        it, restore = self._ordered(pool, kind, protect, simple)
        chosen: str | None = None
        others: list[str] = []
        excluded: list[tuple[str, str]] = []
        more = False
        for aid in it:
            rt = self._agents[aid]
            why = self._eligible(rt, req, call, q, now)
            if why is not None:
                if len(excluded) < 5:
                    excluded.append((rt.agent.id, why))
                continue
            if chosen is None:
                chosen = rt.agent.id
            elif len(others) < pol.runners_up:
                others.append(rt.agent.id)
            else:
                more = True
                break
        rule: str = kind.partition("@")[0]  # a chat heap's kind: rule@channel
        note = ""
        if starving is not None and starving != chosen and chosen is not None:
            others = [chosen, *[o for o in others if o != starving]][: pol.runners_up]
            note = (f"starvation guard: free through "
                    f"{self._fair_offers - self._agents[starving].free_seq} fair-share "
                    f"offers (limit {pol.fair_max_passed_over})")
            chosen = starving
        pref = self._preferred(call, req, q, now)
        if pref is not None and pref != chosen:
            if chosen is not None:
                others = [chosen, *[o for o in others if o != pref]][: pol.runners_up]
            chosen, rule, note = pref, "preferred-agent", ""
        elif pref is not None:
            rule = "preferred-agent"
        restore(chosen)
        if chosen is None:
            return None
        if kind == "fair-share":
            self._fair_offers += 1
        if protect and rule != "preferred-agent":
            if simple and self.pools.trainee[chosen]:
                rule = "trainee-protection"
                note = "; ".join(filter(None, (
                    note, f"low load: simple intent {call.ev.intent!r} goes to a trainee "
                          f"first, then {kind}")))
            elif not simple:
                note = "; ".join(filter(None, (
                    note, f"low load: intent {call.ev.intent!r} goes to non-trainees first")))
        return chosen, self._reason(rule, chosen, others, more, q, step, req, now, excluded,
                                    call, note)

    def _starving(self, pool: PoolKey, req: Requirement, call: _CallRt, q: Queue, now: float,
                  protect: bool, simple: bool) -> str | None:
        """The agent eligible for ``call`` who has been routable through the most fair-share
        offers, if that is at least ``policy.fair_max_passed_over``.

        Bound: an agent who stays free and eligible is passed over by at most that
        many fair-share offers, plus one per agent who was already waiting longer
        (they go first, in the order they became free).
        """
        if not self._guard_may_apply(pool):
            return None
        it, restore = self._ordered(pool, "fair-guard", protect, simple)
        found: str | None = None
        for aid in it:
            rt = self._agents[aid]
            if self._eligible(rt, req, call, q, now) is None:
                if self._fair_offers - rt.free_seq >= self.policy.fair_max_passed_over:
                    found = aid
                break
        restore(None)
        return found

    def _guard_may_apply(self, pool: PoolKey) -> bool:
        """False when no routable agent of ``pool`` has been through the limit of offers:
        the top of a heap is a lower bound of its entries, stale ones included (O(1))."""
        self._flush()
        limit = self._fair_offers - self.policy.fair_max_passed_over
        for trainee in (True, False):
            h = self.pools.heap(pool, "fair-guard", trainee)
            if h and h[0][0] <= limit:
                return True
        return False

    def _preferred(self, call: _CallRt, req: Requirement, q: Queue, now: float) -> str | None:
        last = self._last_agent.get(call.ev.caller) if call.ev.caller else None
        if last is None or now - last[1] > self.policy.returning_caller_h * 3600:
            return None
        rt = self._agents.get(last[0])
        if rt is None or not rt.pooled or self._eligible(rt, req, call, q, now) is not None:
            return None
        return rt.agent.id

    def _window_text(self, rt: _AgentRt, now: float) -> str:
        local = _dt(now).astimezone(rt.schedule.zone)
        from routing.windows import DAYS, day_intervals

        minute = local.hour * 60 + local.minute
        for s, e in day_intervals(rt.agent.windows, rt.agent.changes, local.date()):
            if s <= minute < e:
                return f"{DAYS[local.weekday()]} {format_hhmm(s)}-{format_hhmm(e)} {rt.agent.zone}"
        return f"open ({rt.agent.zone})"

    def _reason(self, rule: str, chosen: str, others: list[str], more: bool, q: Queue,
                step: int, req: Requirement, now: float, excluded: list[tuple[str, str]],
                call: _CallRt, note: str = "") -> Reason:
        rt = self._agents[chosen]
        idle = now - rt.idle_since
        win = self._window_text(rt, now)
        left = (rt.window_until - now) / 60 if rt.window_until is not None else 0.0
        kind = _kind(q, call.channel)
        if call.channel != VOICE and not kind.startswith("chat-share@"):
            kind = kind.partition("@")[0]  # the rule's own note
        key_note = f"idle {idle:.0f} s"
        if kind == "best-proficiency":
            key_note = f"proficiency {dict(rt.agent.skills)}, {key_note}"
        elif kind == "fair-share":
            key_note = f"{self._fair_note(rt, now)}, {key_note}"
        elif kind == "fewest-calls":
            key_note = f"{rt.calls_handled} calls this week, {key_note}"
        elif kind.startswith("chat-share@"):
            ch = call.channel
            key_note = (f"{rt.chat_handled_s.get(ch, 0.0) / 60:.1f} {ch} min handled this "
                        f"week over {rt.signed_h:g} h signed up, {key_note}")
        if call.channel != VOICE:
            load = self._load(rt)
            cap = rt.agent.capacity.get(call.channel, 0)
            key_note += (f"; {load.get(call.channel, 0)} of {cap}"
                         f" {call.channel} chat(s) open, {sum(load.values())} of "
                         f"{rt.agent.max_chats} in all")
        text = (f"{chosen} chosen by {rule} ({key_note}) for {q.id} step {step} "
                f"({req.describe()}); window {win}, {left:.0f} min left")
        if note:
            text += f"; {note}"
        if call.missed_by:
            text += f"; skipped after missing: {', '.join(sorted(call.missed_by))}"
        text += ("; also eligible: " + ", ".join(others) + (" and more" if more else "")
                 if others else "; no other eligible agent free")
        more_excl = excluded + self._exclusions(req, call, now, skip={chosen, *others})
        if more_excl:
            text += "; not eligible: " + "; ".join(f"{a}: {w}" for a, w in more_excl[:6])
        return Reason(rule, text, chosen, tuple(others), more, q.id, step, req.describe(), win,
                      _dt(rt.window_until) if rt.window_until is not None else None, idle,
                      tuple(more_excl[:6]))

    def _fair_note(self, rt: _AgentRt, now: float) -> str:
        fair = self._fair_share_s(rt, now)
        return (f"deficit {(fair - rt.handled_s) / 60:+.1f} min against fair share this week "
                f"({rt.handled_s / 60:.1f} min handled, {fair / 60:.1f} min owed for "
                f"{self._elapsed_h(rt, now):.1f} of {rt.signed_h:g} h signed up)")

    def _exclusions(self, req: Requirement, call: _CallRt, now: float,
                    skip: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Why the agents of a small directory were not eligible (the demo prints this)."""
        if len(self._agents) > 32:
            return []
        skip = set(skip)
        out: list[tuple[str, str]] = []
        for aid in sorted(self._agents):
            if aid in skip:
                continue
            rt = self._agents[aid]
            if not rt.registered:
                why = "offline"
            elif not rt.in_window:
                nxt = (_dt(rt.window_until).astimezone(rt.schedule.zone)
                       .strftime("%a %H:%M") if rt.window_until else "no hours this week")
                why = f"outside window (opens {nxt} {rt.agent.zone})"
            elif rt.state is not S.AVAILABLE:
                why = rt.state.value
            else:
                why = self._eligible(rt, req, call, call.queue, now) or ""
                if not why:
                    continue
            out.append((aid, why))
        return out

    def _offer(self, call: _CallRt, agent_id: str, reason: Reason, now: float,
               out: list[Decision]) -> None:
        rt = self._agents[agent_id]
        self._unqueue(call)
        call.phase, call.agent = "ringing", agent_id
        call.offer_token += 1
        if call.channel != VOICE:
            rt.chats[call.ev.call_id] = call.channel
            rt.idle_since = now  # the next chat goes to someone idle longer, if any
            self._refresh(rt)
            self._timer(now + self.policy.ring_timeout_s, "ring", call.ev.call_id,
                        call.offer_token)
            out.append(OfferChat(call.ev.call_id, agent_id, call.channel,
                                 self.policy.ring_timeout_s, reason, call.ev.caller))
            return
        rt.call_id = call.ev.call_id
        self._move(rt, "offered", now, out)
        self._timer(now + self.policy.ring_timeout_s, "ring", call.ev.call_id, call.offer_token)
        out.append(OfferCall(call.ev.call_id, agent_id, rt.agent.endpoint,
                             self.policy.ring_timeout_s, reason, call.callback, call.ev.caller))

    def _agent_freed(self, rt: _AgentRt, now: float, out: list[Decision]) -> None:
        """An agent became routable: give them the best waiting call they can take."""
        while rt.pooled:
            best = self._call_for(rt, now)
            if best is None:
                return
            self._offer_to_freed(rt, best[1], best[2], now, out)
            if best[1].channel == VOICE:
                return  # a chat: the agent may have room for more

    def _call_for(self, rt: _AgentRt, now: float) -> tuple[CallKey, _CallRt, int] | None:
        """The waiting call with the smallest key this agent may take now.

        Only the (queue, language) lines the agent can serve at some step are
        visited; in a line, a call is eligible once it reached the agent's first
        qualifying step, so the arrival heap skips a line where nobody has yet.
        Calls with their own required skills sit in one extra line, checked in full.
        """
        best: tuple[CallKey, _CallRt, int] | None = None
        left = math.inf if rt.window_until is None else rt.window_until - now
        room = rt.room
        for line, q, wait, ch in self._agent_queues[rt.agent.id]:
            if not line.keys or left < q.time_left_s or ch not in room:
                continue
            threshold = now - wait
            oldest = line.oldest_arrival()
            if oldest is None or oldest > threshold:
                continue
            for key in line.keys:
                if best is not None and key >= best[0]:
                    break
                call = self._calls[key[3]]
                if (call.skills is not None or call.queued_at > threshold
                        or rt.agent.id in call.missed_by):
                    continue
                best = (key, call, q.step_at(now - call.queued_at))
                break
        for key in self._special.keys:
            if best is not None and key >= best[0]:
                break
            call = self._calls[key[3]]
            found = self._eligible_call(rt, call, now)
            if found is not None:
                best = (key, call, found)
                break
        return best

    def _eligible_call(self, rt: _AgentRt, call: _CallRt, now: float) -> int | None:
        """The call's current step if ``rt`` may take it now, else None."""
        q = call.queue
        if rt.window_until is not None and rt.window_until - now < q.time_left_s:
            return None
        if rt.agent.id in call.missed_by or not self._admits(rt, call.channel):
            return None
        step = q.step_at(now - call.queued_at)
        return step if self._requirement(call, step).met_by(rt.agent) else None

    def _offer_to_freed(self, rt: _AgentRt, call: _CallRt, step: int, now: float,
                        out: list[Decision]) -> None:
        req = self._requirement(call, step)
        win = self._window_text(rt, now)
        waited = now - call.arrived
        text = (f"{rt.agent.id} became free and took the first call in line for it: "
                f"{call.queue.id} {call.ev.call_id} "
                f"(priority {call.queue.priority}+{call.ev.priority}, "
                f"waited {waited:.0f} s; priority aged by {self.policy.aging_s_per_priority:g} s "
                f"per level, then longest wait); window {win}, "
                f"idle {now - rt.idle_since:.0f} s")
        reason = Reason("call-selection", text, rt.agent.id, (), False, call.queue.id, step,
                        req.describe(), win,
                        _dt(rt.window_until) if rt.window_until is not None else None,
                        now - rt.idle_since)
        self._offer(call, rt.agent.id, reason, now, out)

    # ------------------------------------------------------------ inspection
    def agent_status(self, agent_id: str) -> dict[str, Any]:
        rt = self._agents[agent_id]
        return {"agent": agent_id, "state": rt.state.value,
                "state_since": _dt(rt.since).isoformat() if rt.since else None,
                "idle_since": _dt(rt.idle_since).isoformat() if rt.idle_since else None,
                "registered": rt.registered,
                "in_window": rt.in_window, "call": rt.call_id, "misses": rt.misses,
                "handled_s": rt.handled_s, "signed_h": rt.signed_h,
                "calls_handled": rt.calls_handled,
                "chats": dict(rt.chats), "load": self._load(rt),
                "chat_handled_s": dict(sorted(rt.chat_handled_s.items())),
                "fair_share_s": self._fair_share_s(rt, self._now),
                "window_boundary": _dt(rt.window_until).isoformat() if rt.window_until else None}

    def position(self, call_id: str) -> tuple[int, float] | None:
        """A waiting call's place in its queue (1 = next) and expected wait, as
        `CallQueued` announced them, or None when the call is not waiting."""
        call = self._calls.get(call_id)
        if call is None or call.phase != "waiting" or not call.line[0]:
            return None
        q = call.queue
        position, expected, _ = self._place(
            call, self._requirement(call, q.step_at(self._now - call.queued_at)))
        return position, expected

    def _place(self, call: _CallRt, req: Requirement) -> tuple[int, float, int]:
        """A waiting call's position in its queue, expected wait and staffed agents."""
        q = call.queue
        position = bisect.bisect_left(self._queue_all[call.line[0] or q.id].keys, call.key) + 1
        staffed = self._staffed.get(self._pool_for(req), 0)
        return position, position * q.aht_s / max(1, staffed), staffed

    def waiting_calls(self, queue_id: str, channel: str = VOICE) -> list[str]:
        line = self._queue_all.get(_lid(queue_id, channel))
        return [k[3] for k in line.keys] if line is not None else []

    def agent_ids(self) -> list[str]:
        return sorted(self._agents)

    # ------------------------------------------------------------ restart state
    # Router.snapshot / snapshot_changes / take_dirty / restore: the router's state
    # as plain values (routing.snapshot) that the store keeps, and back.

    def _timer_touched(self, kind: str, ident: str) -> None:
        (self._dirty_agents if kind in _AGENT_TIMERS else self._dirty_calls).add(ident)

    def _note_before(self, event: Event) -> None:
        if isinstance(event, CallEnded | CallerAbandoned):
            call = self._calls.get(event.call_id)
            if call is not None and call.ev.caller:
                self._dirty_callers.add(call.ev.caller)  # its last agent may change

    def _note_after(self, event: Event, out: list[Decision]) -> None:
        """Every call and agent the event or a decision names may have changed."""
        for x in chain((event,), out):
            cid = getattr(x, "call_id", None)
            if cid is not None:
                self._dirty_calls.add(cid)
            aid = getattr(x, "agent_id", None)
            if aid is not None and aid in self._agents:
                self._dirty_agents.add(aid)

    def take_dirty(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """(agent ids, call ids, callers) whose state may have changed since the last take.

        Kept where state changes (state moves, timers set or fired, the ids an
        event or decision names); a new week marks every agent (fair-share totals
        start again). Call ids may name calls the router no longer holds: gone.
        """
        if self._week_start != self._dirty_week:
            self._dirty_week = self._week_start
            self._dirty_agents.update(self._agents)
        out = (frozenset(self._dirty_agents), frozenset(self._dirty_calls),
               frozenset(self._dirty_callers))
        self._dirty_agents.clear()
        self._dirty_calls.clear()
        self._dirty_callers.clear()
        return out

    def _timer_snapshots(self, owners: Collection[str] | None = None
                         ) -> dict[str, list[TimerSnapshot]]:
        """The pending (still valid) timers of each agent or call, in firing order."""
        out: dict[str, list[TimerSnapshot]] = {}
        for due, seq, kind, ident, token in self._timers:
            if owners is not None and ident not in owners:
                continue
            if self._timer_valid(kind, ident, token, due):
                key = ("a:" if kind in _AGENT_TIMERS else "c:") + ident
                out.setdefault(key, []).append(TimerSnapshot(kind, due, seq))
        for ts in out.values():
            ts.sort(key=lambda x: (x.due, x.seq))
        return out

    def _agent_snapshot(self, rt: _AgentRt, timers: dict[str, list[TimerSnapshot]]
                        ) -> AgentSnapshot:
        kw = {name: getattr(rt, name) for name in _AGENT_COPIED}
        return AgentSnapshot(agent_id=rt.agent.id, state=rt.state.value,
                             handled_s=rt.handled_s, week_start=self._week_start,
                             calls_handled=rt.calls_handled,
                             fair_offset_s=rt.fair_offset_s,
                             sms_handled_s=rt.chat_handled_s.get("sms", 0.0),
                             messenger_handled_s=rt.chat_handled_s.get("messenger", 0.0),
                             sms_load=sum(1 for c in rt.chats.values() if c == "sms"),
                             messenger_load=sum(1 for c in rt.chats.values()
                                                if c == "messenger"),
                             in_window=rt.in_window, window_until=rt.window_until,
                             hours=_hours_of(rt.agent),
                             timers=tuple(timers.get("a:" + rt.agent.id, ())), **kw)

    @staticmethod
    def _call_snapshot(call: _CallRt, timers: dict[str, list[TimerSnapshot]]) -> CallSnapshot:
        skills = None if call.skills is None else tuple(sorted(call.skills.items()))
        return CallSnapshot(call.ev, call.arrived, call.queued_at, call.seq, call.queue.id,
                            call.phase, call.agent, call.answered_at, call.callback,
                            tuple(sorted(call.missed_by)), call.hops, skills, call.key,
                            call.line, tuple(timers.get("c:" + call.ev.call_id, ())),
                            call.callback_misses, call.share_pool, call.channel,
                            call.replied)

    def _as_of(self, now: datetime) -> tuple[float, float]:
        check_aware(now)
        t = _ts(now)
        if t < self._now:
            raise ValueError(f"snapshot at {now.isoformat()} is before the router's last "
                             f"event ({_dt(self._now).isoformat()})")
        return (self._now if self._now else t), t

    def snapshot(self, now: datetime) -> RouterSnapshot:
        """The whole state as of the last handled event (``now``: when it is taken)."""
        as_of, t = self._as_of(now)
        timers = self._timer_snapshots()
        return RouterSnapshot(
            as_of, t, self._seq,
            tuple(self._agent_snapshot(self._agents[a], timers) for a in sorted(self._agents)),
            tuple(self._call_snapshot(c, timers)
                  for c in sorted(self._calls.values(), key=lambda c: c.seq)),
            tuple(LastAgent(c, a, at) for c, (a, at) in sorted(self._last_agent.items())),
            fairness=self._fairness_snapshot())

    def _fairness_snapshot(self) -> FairnessSnapshot:
        # A clock with no work going on ignores ``last`` (the next advance sets it), and
        # one that never ran is the same as none: both are written in one form, so two
        # routers that would decide alike also snapshot alike.
        def one(skill: str, lang: str, c: _ShareClock) -> ShareClockSnapshot:
            return ShareClockSnapshot(skill, lang, c.clock, c.busy, c.last if c.busy else 0.0)

        return FairnessSnapshot(
            self._week_start,
            tuple(one(p[0], p[1], c) for p, c in sorted(self._share.items())
                  if c.clock or c.busy),
            one("", "", self._share_all), self._n_staffed, self._fair_offers)

    def _restore_fairness(self, f: FairnessSnapshot | None) -> None:
        """The share clocks and counters as they were (same week only: they restart
        with every week, like the agents' handled minutes)."""
        if f is None or f.week_start != self._week_start:
            return
        for c in f.clocks:  # in place: each agent holds its pools' clocks (_share_of)
            clock = self._share_clock((c.skill, c.language), c.last)
            clock.clock, clock.busy, clock.last = c.clock, c.busy, c.last
        a = f.all_agents
        self._share_all.clock, self._share_all.busy, self._share_all.last = (
            a.clock, a.busy, a.last)
        self._n_staffed, self._fair_offers = f.n_staffed, f.fair_offers

    def snapshot_changes(self, now: datetime) -> RouterChanges:
        """What changed since the last call (`take_dirty`), as values to write in one go."""
        as_of, t = self._as_of(now)
        agents, calls, callers = self.take_dirty()
        timers = self._timer_snapshots(agents | calls) if agents or calls else {}
        held = sorted((self._calls[c] for c in calls if c in self._calls), key=lambda c: c.seq)
        last = [LastAgent(c, *self._last_agent[c]) for c in sorted(callers)
                if c in self._last_agent]
        return RouterChanges(
            as_of, t, self._seq,
            tuple(self._agent_snapshot(self._agents[a], timers) for a in sorted(agents)),
            tuple(self._call_snapshot(c, timers) for c in held),
            tuple(sorted(c for c in calls if c not in self._calls)), tuple(last),
            fairness=self._fairness_snapshot())

    @classmethod
    def restore(cls, directory: Directory, snapshot: RouterSnapshot, *, now: datetime,
                bridged: Collection[str] = (), policy: RoutingPolicy | None = None
                ) -> tuple[Router, list[Decision]]:
        """A router in ``snapshot``'s state, adopted at ``now``, and its decisions.

        ``directory`` carries the hours as stored now (``store.apply_hours``).
        The state is rebuilt as of ``snapshot.as_of`` (timers keep their order),
        then what Asterisk still holds is adopted at ``now``: a call that was
        ringing an agent is connected to them if its id is in ``bridged``,
        otherwise it goes back to its place in line (the ring may have ended while
        the engine was down; `CancelOffer` tells the executor to stop it) and the
        agent is free again. Connected calls keep their agents on the call until
        their `CallEnded`; waiting callers keep their order and position. Then the
        timers that came due while the engine was down run, as in `handle`.
        Agents and queues gone from the directory are reported (`EventIgnored`,
        `CallRejected` for waiting calls whose queue is gone). Afterwards, write
        ``router.snapshot(now).as_changes()``: the store then matches this router.
        """
        check_aware(now)
        t = _ts(now)
        if t < snapshot.as_of:
            raise ValueError(f"restore at {now.isoformat()} is before the snapshot's time "
                             f"({_dt(snapshot.as_of).isoformat()})")
        r = cls(directory, now=_dt(snapshot.as_of), policy=policy)
        r._now = snapshot.as_of
        r._seq = max(r._seq, snapshot.seq)
        out: list[Decision] = []
        for a in snapshot.agents:
            rt = r._agents.get(a.agent_id)
            if rt is None:
                out.append(EventIgnored("restore", f"agent {a.agent_id} is no longer in the "
                                        "directory"))
            else:
                r._restore_agent(rt, a)
        lost: list[_CallRt] = []
        for c in sorted(snapshot.calls, key=lambda c: c.seq):
            r._restore_call(c, lost, out)
        for rt in r._agents.values():
            if rt.chats:  # their load is known now: offerable or not
                r._refresh(rt)
        for la in snapshot.last_agent:
            r._last_agent[la.caller] = (la.agent_id, la.at)
        r._restore_fairness(snapshot.fairness)
        r._keys_as_stored = True  # the heaps get the keys as they were taken, not anew
        r._flush()
        r._keys_as_stored = False
        r._now = t
        for call in lost:  # ringing when we stopped
            r._adopt_ringing(call, call.ev.call_id in bridged, t, out)
        out += r.handle(TimerFired(), now)
        r.take_dirty()
        return r, out

    def _restore_agent(self, rt: _AgentRt, a: AgentSnapshot) -> None:
        for name in _AGENT_COPIED:
            setattr(rt, name, getattr(a, name))
        rt.state = AgentState(a.state)
        same_week = a.week_start == self._week_start
        rt.handled_s = a.handled_s if same_week else 0.0
        rt.calls_handled = a.calls_handled if same_week else 0
        # restored with fresh (zero) share clocks, which `_restore_fairness` then sets
        rt.fair_offset_s = a.fair_offset_s if same_week else 0.0
        kept = (("messenger", a.messenger_handled_s), ("sms", a.sms_handled_s))
        rt.chat_handled_s = {ch: v for ch, v in kept if v} if same_week else {}
        same_hours = a.hours == _hours_of(rt.agent)
        if same_hours:
            rt.in_window, rt.window_until = a.in_window, a.window_until
        elif rt.registered:
            self._update_window(rt, self._now)  # hours edited while we were down
        self._refresh(rt)
        for name in _AGENT_COPIED:  # keys as they were taken (e.g. the fair-share standing)
            setattr(rt, name, getattr(a, name))
        for tm in a.timers:
            if tm.kind == "window" and not same_hours:
                continue
            token = rt.window_token if tm.kind == "window" else rt.timer_token
            heapq.heappush(self._timers, (tm.due, tm.seq, tm.kind, rt.agent.id, token))

    def _restore_call(self, c: CallSnapshot, lost: list[_CallRt], out: list[Decision]) -> None:
        cid = c.call_id
        rt = self._agents.get(c.agent or "")
        phase = c.phase
        if phase in ("ringing", "connected", "wrap") and rt is None:
            if phase == "wrap":
                return  # its agent is gone: nothing holds the slot
            if phase == "connected":
                out.append(EventIgnored("restore", f"call {cid} is connected to {c.agent}, "
                                        "who is no longer in the directory"))
                return
            phase = "lost"
        q = self._queues.get(c.queue)
        if q is None and phase in ("connected", "wrap"):
            q = Queue(c.queue)  # a stand-in, so that its CallEnded frees the agent
        if q is None:
            out.append(CallRejected(cid, f"queue {c.queue!r} is no longer in the directory",
                                    "unknown-queue"))
            if rt is not None and phase == "ringing":
                out.append(CancelOffer(cid, rt.agent.id, "its queue is gone"))
                self._move(rt, "withdrawn", self._now, out)
            return
        call = _CallRt(c.arrival, q, c.arrived, c.queued_at, c.seq,
                       q.language_for(c.arrival.language),
                       None if c.skills is None else dict(c.skills),
                       channel=c.channel, replied=c.replied)
        call.phase = "ringing" if phase == "lost" else phase
        call.agent = c.agent if rt is not None else None
        call.answered_at, call.callback = c.answered_at, c.callback
        call.missed_by, call.hops, call.key = set(c.missed_by), c.hops, c.key
        call.callback_misses = c.callback_misses
        call.share_pool = c.share_pool
        call.offer_token += 1
        self._calls[cid] = call
        if phase == "waiting":
            call.line = c.line
            self._line(*c.line).add(c.key)
            self._queue_all.setdefault(c.line[0], WaitingLine()).add(c.key)
            if call.skills is not None:
                self._special.add(c.key)
        elif rt is not None and call.channel != VOICE:
            rt.chats[cid] = call.channel  # an offer stands (the portal still shows it)
        elif rt is not None:
            rt.call_id = cid
        if call.phase == "ringing" and (call.channel == VOICE or rt is None):
            lost.append(call)
        for tm in c.timers:
            heapq.heappush(self._timers, (tm.due, tm.seq, tm.kind, cid, call.offer_token))

    def _connected(self, call: _CallRt, rt: _AgentRt, now: float, out: list[Decision]) -> None:
        """The agent answered the call (or was found bridged to it after a restart)."""
        call.phase, call.answered_at = "connected", now
        # its work is owed to the agents of the pool its base requirement draws from
        call.share_pool = self._select_pool(self._requirement(call, 0), "fair-share")
        self._share_busy(call.share_pool, 1, now)
        rt.misses = 0
        self._move(rt, "answered", now, out)

    def _adopt_ringing(self, call: _CallRt, bridged: bool, now: float,
                       out: list[Decision]) -> None:
        rt = self._agents.get(call.agent or "")
        if rt is not None and bridged:
            self._connected(call, rt, now, out)
            return
        call.phase, call.agent = "waiting", None
        if rt is not None:
            out.append(CancelOffer(call.ev.call_id, rt.agent.id,
                                   "the engine restarted while this rang; back in line"))
            rt.call_id = None
        self._route_call(call, now, out, requeue=True)
        if rt is not None:
            self._move(rt, "withdrawn", now, out)
            self._after_free(rt, now, out)


_AGENT_TIMERS = frozenset({"window", "wrap", "cool"})
# AgentSnapshot fields the router sets by hand; every other field of AgentSnapshot is
# an _AgentRt attribute of the same name, copied both ways (a new one: one line there)
_AGENT_FIELDS_BY_HAND = frozenset({"agent_id", "state", "handled_s", "week_start",
                                   "in_window", "window_until", "hours", "timers",
                                   "calls_handled", "fair_offset_s", "sms_handled_s",
                                   "messenger_handled_s", "sms_load", "messenger_load"})
_AGENT_COPIED = tuple(f.name for f in dataclasses.fields(AgentSnapshot)
                      if f.name not in _AGENT_FIELDS_BY_HAND)


def _lid(queue_id: str, channel: str) -> str:
    """A waiting line's queue part: the queue id for calls, ``queue@channel`` for chats."""
    return queue_id if channel == VOICE else f"{queue_id}@{channel}"


def _kind(q: Queue, channel: str) -> str:
    """The selection heap a queue's interactions of ``channel`` draw from
    (`routing.pools`: ``rule@channel`` for chats; chats' fair share is chat-share)."""
    if channel == VOICE:
        return q.selection
    return ("chat-share" if q.selection == "fair-share" else q.selection) + "@" + channel


def _hours_of(agent: Agent) -> tuple[str, ...]:
    return tuple(str(w) for w in agent.windows) + tuple(str(c) for c in agent.changes)
