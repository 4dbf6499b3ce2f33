"""Router state across a restart: snapshot, incremental changes, restore, same decisions."""
from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from routing_testkit import at, offers, router_for, small_directory
from test_routing_properties import directories, windows_for

from routing import (
    AgentEndedWrapUp,
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentRegistered,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
    CallbackNotAnswered,
    CallEnded,
    CallerAbandoned,
    CallQueued,
    CancelOffer,
    Directory,
    Event,
    OfferAnswered,
    OfferCall,
    OfferNotAnswered,
    TimerFired,
)
from routing.router import Router
from routing.snapshot import RouterChanges, RouterSnapshot

KINDS = ("reg", "reg", "unreg", "avail", "break", "endwrap", "call", "call", "call", "answer",
         "answer", "noanswer", "end", "end", "abandon", "callback", "timer", "timer", "hours",
         "cbmiss")


class Stored:
    """What a store holds after applying each RouterChanges (the composition under test)."""

    def __init__(self) -> None:
        self.agents: dict[str, object] = {}
        self.calls: dict[str, object] = {}
        self.last: dict[str, object] = {}
        self.as_of = 0.0
        self.seq = 0
        self.fairness: object = None

    def apply(self, ch: RouterChanges) -> None:
        if ch.full:
            self.agents.clear()
            self.calls.clear()
            self.last.clear()
        self.agents.update({a.agent_id: a for a in ch.agents})
        self.calls.update({c.call_id: c for c in ch.calls})
        for gone in ch.gone_calls:
            self.calls.pop(gone, None)
        self.last.update({x.caller: x for x in ch.last_agent})
        self.as_of, self.seq = ch.as_of, ch.seq
        self.fairness = ch.fairness

    def snapshot(self, taken_at: float) -> RouterSnapshot:
        return RouterSnapshot(
            self.as_of, taken_at, self.seq,
            tuple(self.agents[a] for a in sorted(self.agents)),  # type: ignore[misc]
            tuple(sorted(self.calls.values(), key=lambda c: c.seq)),  # type: ignore[attr-defined]
            tuple(self.last[c] for c in sorted(self.last)),  # type: ignore[misc]
            fairness=self.fairness)  # type: ignore[arg-type]


class World:
    """The outside as the router's decisions describe it, to draw meaningful events."""

    def __init__(self, directory: Directory) -> None:
        self.agents = sorted(a.id for a in directory.agents)
        self.hours = {a.id: a.windows for a in directory.agents}
        self.ringing: dict[str, str] = {}
        self.connected: set[str] = set()
        self.calls: set[str] = set()
        self.n = 0

    def saw(self, decisions: list[object]) -> None:
        for d in decisions:
            if isinstance(d, OfferCall):
                self.ringing[d.call_id] = d.agent_id
            elif isinstance(d, CancelOffer):
                self.ringing.pop(d.call_id, None)

    def draw(self, data: st.DataObject, now: datetime) -> Event:
        aid = data.draw(st.sampled_from(self.agents), label="agent")
        kind = data.draw(st.sampled_from(KINDS), label="kind")
        if kind == "reg":
            return AgentRegistered(aid)
        if kind == "unreg":
            return AgentUnregistered(aid)
        if kind == "avail":
            return AgentMadeAvailable(aid)
        if kind == "break":
            return AgentWentOnBreak(aid, "tea")
        if kind == "endwrap":
            return AgentEndedWrapUp(aid)
        if kind == "call":
            self.n += 1
            self.calls.add(f"c{self.n}")
            return CallArrived(f"c{self.n}", data.draw(st.sampled_from(("billing", "tech", "any"))),
                               data.draw(st.sampled_from(("en", "es", None))),
                               data.draw(st.sampled_from(("easy", "hard"))), f"+{self.n % 3}",
                               data.draw(st.integers(0, 2)),
                               data.draw(st.sampled_from(((), (("tech", 2),)))),
                               data.draw(st.sampled_from(((), ("tech",)))),
                               (("tier", "gold"),) if self.n % 2 else ())
        if kind in ("answer", "noanswer") and self.ringing:
            cid = data.draw(st.sampled_from(sorted(self.ringing)), label="ringing")
            agent = self.ringing.pop(cid)
            if kind == "answer":
                self.connected.add(cid)
                return OfferAnswered(cid, agent)
            return OfferNotAnswered(cid, agent)
        if kind == "end" and self.connected:
            cid = data.draw(st.sampled_from(sorted(self.connected)), label="connected")
            self.connected.discard(cid)
            return CallEnded(cid)
        if kind == "cbmiss" and self.connected:  # ignored unless the call is a callback
            cid = data.draw(st.sampled_from(sorted(self.connected)), label="connected")
            self.connected.discard(cid)
            return CallbackNotAnswered(cid)
        if kind in ("abandon", "callback") and self.calls:
            cid = data.draw(st.sampled_from(sorted(self.calls)), label="call")
            if kind == "callback":
                return CallbackAccepted(cid)
            self.calls.discard(cid)
            self.ringing.pop(cid, None)
            return CallerAbandoned(cid)
        if kind == "hours":
            zone = "UTC"
            new = data.draw(windows_for(zone, now), label="windows")
            self.hours[aid] = new
            return AgentHoursChanged(aid, new)
        return TimerFired()

    def directory(self, base: Directory) -> Directory:
        """The directory as the store would give it after a restart (hours applied)."""
        d = base
        for a in base.agents:
            d = d.with_agent(a.with_hours(self.hours[a.id]))
        return d


def restored_twin(a: Router, stored: Stored, world: World, base: Directory,
                  now: datetime) -> Router:
    """Router B from what was stored, adopted with every ringing call bridged; router A
    is told the same (those calls were answered) so both should now be equal."""
    snap = RouterSnapshot.from_json(stored.snapshot(now.timestamp()).to_json())
    ringing = [c.call_id for c in snap.calls if c.phase == "ringing"]
    b, _ = Router.restore(world.directory(base), snap, now=now, bridged=set(ringing))
    for cid in ringing:
        a.handle(OfferAnswered(cid, world.ringing[cid]), now)
        world.connected.add(world.ringing.pop(cid))
    a.handle(TimerFired(), now)
    a.take_dirty()
    return b


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directories(), st.data())
def test_restored_router_decides_like_the_original(dd: tuple[Directory, datetime],
                                                   data: st.DataObject) -> None:
    base, start = dd
    a = Router(base, now=start)
    world = World(base)
    stored = Stored()
    stored.apply(a.snapshot(start).as_changes())
    a.take_dirty()
    now = start
    steps = data.draw(st.integers(2, 40), label="steps")
    cut = data.draw(st.integers(0, steps - 1), label="restart after")
    b: Router | None = None
    compared = 0
    for i in range(steps):
        now = now + timedelta(seconds=data.draw(st.integers(0, 900), label="dt"))
        ev = world.draw(data, now)
        da = a.handle(ev, now)
        world.saw(da)
        if b is None:
            stored.apply(a.snapshot_changes(now))
            # the changes, applied one after another, are the whole state
            assert stored.snapshot(now.timestamp()) == a.snapshot(now), (i, ev)
            if i == cut:
                b = restored_twin(a, stored, world, base, now)
                assert b.snapshot(now) == a.snapshot(now)
        else:
            db = b.handle(ev, now)
            assert da == db, (i, ev)
            compared += len(da)
    if b is not None:
        sa, sb = a.snapshot(now), b.snapshot(now)
        for x, y in zip(sa.agents, sb.agents, strict=True):
            assert x == y, [(f, getattr(x, f), getattr(y, f)) for f in x.__slots__
                            if getattr(x, f) != getattr(y, f)]
        assert sb == sa
    event(f"decisions compared after restart: {min(compared, 20) // 5 * 5}+")


def test_ringing_calls_go_back_to_their_place_and_connected_agents_stay_busy() -> None:
    """The issue's restart: callers waiting and ringing, one connected; after a restart
    with nothing bridged, the ringing caller is first in line again, the busy agent is
    offered nothing, and fair-share totals are unchanged."""
    directory = small_directory(wrap_up_s=0, skills={"billing": 2})
    a = router_for(directory)
    for agent in ("alice", "bob"):
        a.handle(AgentRegistered(agent), at())
    (o1,) = offers(a.handle(CallArrived("c1", "billing", "en", caller="+1"), at(seconds=1)))
    a.handle(OfferAnswered("c1", o1.agent_id), at(seconds=2))
    a.handle(CallEnded("c1"), at(minutes=2))  # fair share: 118 s handled
    (o2,) = offers(a.handle(CallArrived("c2", "billing", "en"), at(minutes=3)))
    a.handle(OfferAnswered("c2", o2.agent_id), at(minutes=3, seconds=2))
    (o3,) = offers(a.handle(CallArrived("c3", "billing", "en"), at(minutes=4)))
    assert {o2.agent_id, o3.agent_id} == {"alice", "bob"}  # c2 connected, c3 ringing
    for k, cid in enumerate(("c4", "c5", "c6")):  # within c3's 15 s of ringing
        (q,) = [d for d in a.handle(CallArrived(cid, "billing", "en"),
                                    at(minutes=4, seconds=1 + k)) if isinstance(d, CallQueued)]
        assert q.position == k + 1
    snap = RouterSnapshot.from_json(a.snapshot(at(minutes=4, seconds=4)).to_json())
    before = {x: a.agent_status(x)["handled_s"] for x in ("alice", "bob")}
    assert before[o1.agent_id] == 118

    b, ds = Router.restore(directory, snap, now=at(minutes=4, seconds=10))
    assert CancelOffer("c3", o3.agent_id, "the engine restarted while this rang; back in line"
                       ) in ds
    # c3 arrived first: the freed agent takes it again, c4-c6 keep their order
    (again,) = offers(ds)
    assert (again.call_id, again.agent_id) == ("c3", o3.agent_id)
    assert b.waiting_calls("billing") == ["c4", "c5", "c6"]
    assert b.agent_status(o2.agent_id)["state"] == "on_call"
    assert {x: b.agent_status(x)["handled_s"] for x in ("alice", "bob")} == before
    # c2's agent gets no second offer until c2 ends; then the next in line
    b.handle(OfferAnswered("c3", o3.agent_id), at(minutes=4, seconds=12))
    assert offers(b.handle(TimerFired(), at(minutes=10))) == []
    (nxt,) = offers(b.handle(CallEnded("c2"), at(minutes=11)))
    assert (nxt.call_id, nxt.agent_id) == ("c4", o2.agent_id)


def test_a_bridged_ringing_call_is_connected_and_hours_edited_while_down_apply() -> None:
    directory = small_directory()
    a = router_for(directory)
    for agent in ("alice", "bob"):
        a.handle(AgentRegistered(agent), at())
    (o,) = offers(a.handle(CallArrived("c1", "billing", "fr"), at(seconds=1)))
    assert o.agent_id == "alice"
    snap = a.snapshot(at(seconds=2))
    # while the engine was down alice cancelled tonight and bob's hours ended
    alice = directory.agent("alice")
    edited = directory.with_agent(alice.with_hours(()))
    b, _ = Router.restore(edited, snap, now=at(seconds=30), bridged={"c1"})
    assert b.agent_status("alice")["state"] == "on_call"
    assert b.agent_status("alice")["in_window"] is False
    b.handle(CallEnded("c1"), at(minutes=2))
    b.handle(TimerFired(), at(minutes=3))
    # alice is outside her (new) hours: a French caller is not offered to her
    assert [x.agent_id for x in offers(b.handle(CallArrived("c2", "billing", "fr"),
                                                at(minutes=3)))] == []


def test_snapshot_is_json_both_ways_and_refuses_time_going_back() -> None:
    import pytest

    a = router_for(small_directory())
    a.handle(AgentRegistered("alice"), at())
    a.handle(CallArrived("c1", "billing", "fr", "billing", "+33", 1, (("billing", 2),)), at(1))
    snap = a.snapshot(at(2))
    assert RouterSnapshot.from_json(snap.to_json()) == snap
    assert snap.calls[0].arrival == CallArrived("c1", "billing", "fr", "billing", "+33", 1,
                                                (("billing", 2),))
    with pytest.raises(ValueError, match="before the router's last event"):
        a.snapshot(at(0))
    with pytest.raises(ValueError, match="before the snapshot's time"):
        Router.restore(small_directory(), snap, now=at(0))
