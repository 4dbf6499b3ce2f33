"""Chats in the router: capacity and the mix rule, languages and skills, the returning
customer, fair share per channel, wrap-up, the automatic reply and call back,
restore and journal replay with chats, the directory keys, the split by channel."""
from __future__ import annotations

import io
import json
from datetime import datetime

import pytest

from routing import (
    Agent,
    AgentEndedWrapUp,
    AgentMadeAvailable,
    AgentRegistered,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallbackAccepted,
    CallEnded,
    CallQueued,
    CallRejected,
    CancelOffer,
    Directory,
    DirectoryError,
    EventIgnored,
    ExpansionStep,
    HoursPolicy,
    OfferAnswered,
    OfferCall,
    OfferChat,
    OfferChatCallback,
    OfferNotAnswered,
    Queue,
    ReplyWithWait,
    RoutingPolicy,
    TimerFired,
    split_by_channel,
)
from routing.journal import Recorder, encode, replay
from routing.router import Router
from routing.snapshot import RouterSnapshot
from tests.routing.routing_testkit import MONDAY_18_UTC, all_week, at

POLICY = RoutingPolicy(ring_timeout_s=15, max_misses=3, miss_cooldown_s=5,
                       hours=HoursPolicy(notice_hours=0, max_weekly_hours=168))
CHAT_CAP = {"voice": 1, "sms": 3, "messenger": 3}


def agent(aid: str, *, skills: dict[str, int] | None = None,
          languages: dict[str, int] | None = None, capacity: dict[str, int] | None = None,
          max_chats: int = 0, mix: str = "one-channel") -> Agent:
    return Agent(aid, skills=skills or {"billing": 3}, languages=languages or {"en": 5},
                 windows=all_week(), capacity=capacity or CHAT_CAP, max_chats=max_chats,
                 mix=mix)  # type: ignore[arg-type]


def chat_queue(qid: str = "help", **kw: object) -> Queue:
    base: dict[str, object] = dict(skills={"billing": 1}, languages=("en", "es"),
                                   channels=("voice", "sms", "messenger"), wrap_up_s=10,
                                   aht_s=120)
    base.update(kw)
    return Queue(qid, **base)  # type: ignore[arg-type]


def router(*agents: Agent, queues: tuple[Queue, ...] | None = None) -> Router:
    d = Directory(agents, queues or (chat_queue(),), POLICY, "<chat>")
    r = Router(d, now=MONDAY_18_UTC)
    for a in agents:
        r.handle(AgentRegistered(a.id), MONDAY_18_UTC)
    return r


def chat(cid: str, *, channel: str = "sms", queue: str = "help", language: str = "en",
         customer: str = "", skills: tuple[str, ...] = ()) -> CallArrived:
    return CallArrived(cid, queue, language, caller=customer or f"+1{cid}", skills=skills,
                       channel=channel)


def of(kind: type, ds: list[object]) -> list:  # type: ignore[type-arg]
    return [d for d in ds if isinstance(d, kind)]


# ---------------------------------------------------------------- capacity and mix
def test_fourth_chat_waits_for_an_agent_with_capacity_three_and_no_call_while_chatting(
        ) -> None:
    r = router(agent("ana"))
    for i in range(3):
        out = r.handle(chat(f"s{i}", channel=("sms", "messenger")[i % 2]), at(0, i))
        (offer,) = of(OfferChat, out)
        assert offer.agent_id == "ana" and offer.call_id == f"s{i}"
        r.handle(OfferAnswered(f"s{i}", "ana"), at(0, i))
    st = r.agent_status("ana")
    assert st["state"] == "available" and st["load"] == {"sms": 2, "messenger": 1}
    out = r.handle(chat("s3"), at(0, 5))
    assert not of(OfferChat, out)
    (queued,) = of(CallQueued, out)
    assert queued.channel == "sms" and queued.position == 1
    assert "no sms capacity free (3 chat(s) open)" in queued.reason.text
    # no call offered beyond the mix rule (one-channel: no call while a chat is open)
    out = r.handle(CallArrived("v1", "help", "en", caller="+1v"), at(0, 6))
    assert not of(OfferCall, out) and of(CallQueued, out)[0].channel == "voice"
    # a chat ends: its slot is held for the queue's wrap-up (10 s), then the fourth goes
    out = r.handle(CallEnded("s0"), at(1))
    assert not of(OfferChat, out)
    out = r.handle(TimerFired(), at(1, 10))
    (offer,) = of(OfferChat, out)
    assert offer.call_id == "s3" and offer.agent_id == "ana"
    r.handle(OfferAnswered("s3", "ana"), at(1, 11))
    # the call waits until every chat (and its wrap-up) is over; the agent ends wrap-up early
    for cid in ("s1", "s2", "s3"):
        assert not of(OfferCall, r.handle(CallEnded(cid), at(2)))
    out = r.handle(AgentEndedWrapUp("ana"), at(2, 1))
    (voice,) = of(OfferCall, out)
    assert voice.call_id == "v1" and r.agent_status("ana")["state"] == "reserved"
    # during the call no chat is offered
    r.handle(OfferAnswered("v1", "ana"), at(2, 2))
    assert not of(OfferChat, r.handle(chat("s9"), at(2, 3)))


def test_voice_with_chats_allows_a_call_beside_open_chats_but_not_beside_an_offer() -> None:
    r = router(agent("ana", mix="voice-with-chats"))
    r.handle(chat("s1"), at(0))
    # a chat is being offered: no call yet
    out = r.handle(CallArrived("v1", "help", "en"), at(0, 1))
    assert not of(OfferCall, out)
    out = r.handle(OfferAnswered("s1", "ana"), at(0, 2))
    (voice,) = of(OfferCall, out)  # the chat is open, accepted: the call may come
    assert voice.call_id == "v1"
    r.handle(OfferAnswered("v1", "ana"), at(0, 3))
    assert not of(OfferChat, r.handle(chat("s2"), at(0, 4)))  # chats wait for the call


def test_agent_without_text_capacity_takes_no_chat_and_queue_without_channel_rejects() -> None:
    r = router(agent("vic", capacity={"voice": 1}), agent("sam", capacity={"sms": 2}),
               queues=(chat_queue(), chat_queue("phone", channels=("voice",))))
    (offer,) = of(OfferChat, r.handle(chat("s1"), at(0)))
    assert offer.agent_id == "sam"
    (call,) = of(OfferCall, r.handle(CallArrived("v1", "help", "en"), at(0, 1)))
    assert call.agent_id == "vic"  # sam takes no voice
    (rej,) = of(CallRejected, r.handle(chat("s2", queue="phone"), at(0, 2)))
    assert rej.code == "wrong-channel" and rej.channel == "sms"
    (rej,) = of(CallRejected, r.handle(chat("m1", channel="messenger"), at(0, 3)))
    assert rej.code == "no-agent"  # nobody in the directory takes messenger here


def test_missed_chat_offers_pass_on_and_break_withdraws_offers_keeps_open_chats() -> None:
    r = router(agent("ana"), agent("ben"))
    (o1,) = of(OfferChat, r.handle(chat("s1"), at(0)))
    first = o1.agent_id
    other = "ben" if first == "ana" else "ana"
    out = r.handle(OfferNotAnswered("s1", first), at(0, 3))
    (o2,) = of(OfferChat, out)
    assert o2.agent_id == other and r.agent_status(first)["state"] == "missed"
    r.handle(OfferAnswered("s1", other), at(0, 4))
    (o3,) = of(OfferChat, r.handle(chat("s2"), at(0, 5)))
    assert o3.agent_id == other  # the first agent is cooling down
    out = r.handle(AgentWentOnBreak(other), at(0, 6))
    (cancel,) = of(CancelOffer, out)
    assert cancel.call_id == "s2" and cancel.channel == "sms"
    st = r.agent_status(other)
    assert st["state"] == "break" and st["chats"] == {"s1": "sms"}  # the open chat goes on
    # s2 waits: other is on break, first missed it? no: first missed s1 only, but cools down
    out = r.handle(TimerFired(), at(0, 10))
    (o4,) = of(OfferChat, out)
    assert o4.call_id == "s2" and o4.agent_id == first


# ---------------------------------------------------------------- language, skill, customer
def test_chats_routed_by_language_and_skill() -> None:
    r = router(agent("ana", languages={"es": 5, "en": 2}),
               agent("ben", skills={"billing": 3, "tech": 4}),
               agent("cid"),
               queues=(chat_queue(), chat_queue("tech", skills={"tech": 3}, languages=("en",))))
    (es,) = of(OfferChat, r.handle(chat("s1", language="es"), at(0)))
    assert es.agent_id == "ana" and "language es" in es.reason.text
    (tech,) = of(OfferChat, r.handle(chat("m1", channel="messenger", queue="tech"), at(0, 1)))
    assert tech.agent_id == "ben" and tech.channel == "messenger"
    (extra,) = of(OfferChat, r.handle(chat("s2", skills=("tech",)), at(0, 2)))
    assert extra.agent_id == "ben"  # the flow asked for tech on top of the queue's skills
    assert r.agent_status("ben")["load"] == {"messenger": 1, "sms": 1}


def test_returning_customer_goes_to_the_same_agent_on_any_channel() -> None:
    r = router(agent("ana"), agent("ben"))
    (o,) = of(OfferChat, r.handle(chat("s1", customer="+33600"), at(0)))
    last = o.agent_id
    r.handle(OfferAnswered("s1", last), at(0, 1))
    r.handle(CallEnded("s1"), at(3))
    r.handle(TimerFired(), at(4))  # wrap-up over; the other agent has now idled longer
    (o2,) = of(OfferChat, r.handle(chat("m1", channel="messenger", customer="+33600"), at(5)))
    assert o2.agent_id == last and o2.reason.rule == "preferred-agent"
    (o3,) = of(OfferChat, r.handle(chat("s2"), at(5, 1)))
    assert o3.agent_id != last  # somebody else's chat goes by the rule


def test_priorities_with_aging_and_expansion_apply_to_chats() -> None:
    q = chat_queue(skills={"billing": 4}, languages=("en",),
                   expansion=(ExpansionStep(60, min_level=2),))
    r = router(agent("low", skills={"billing": 2}, capacity={"sms": 1}), queues=(q,))
    r.handle(AgentWentOnBreak("low"), at(0))
    out = r.handle(chat("s1"), at(0))
    assert not of(OfferChat, out)
    r.handle(CallArrived("s2", "help", "en", priority=2, channel="sms"), at(0, 30))
    # billing 4 needed at first, billing 2 after 60 s; s2 arrived later but priority 2
    # ages it 2 x 60 s ahead of s1
    out = r.handle(AgentMadeAvailable("low"), at(2))
    (o,) = of(OfferChat, out)
    assert o.call_id == "s2" and o.reason.step == 1, o.reason.text
    r.handle(OfferAnswered("s2", "low"), at(2, 1))
    r.handle(CallEnded("s2"), at(3))
    (o,) = of(OfferChat, r.handle(TimerFired(), at(3, 10)))  # after wrap-up
    assert o.call_id == "s1"


# ---------------------------------------------------------------- fair share per channel
def test_fair_share_per_channel_in_chat_minutes_per_signed_up_hour() -> None:
    q = chat_queue(selection="fair-share", wrap_up_s=0)
    r = router(agent("ana"), agent("ben"), queues=(q,))
    (o,) = of(OfferChat, r.handle(chat("s1"), at(0)))
    busy = o.agent_id
    idle = "ben" if busy == "ana" else "ana"
    r.handle(OfferAnswered("s1", busy), at(0, 1))
    r.handle(CallEnded("s1"), at(20, 1))  # 20 sms minutes for `busy`
    # `busy` became free later, `idle` has idled longer: longest-idle would pick `idle` too,
    # so let `idle` take and finish a short sms chat first, then compare again
    (o2,) = of(OfferChat, r.handle(chat("s2"), at(21)))
    assert o2.agent_id == idle and "0.0 sms min handled" in o2.reason.text
    r.handle(OfferAnswered("s2", idle), at(21))
    r.handle(CallEnded("s2"), at(22))  # 1 min for `idle`: now idle longer is `busy`
    (o3,) = of(OfferChat, r.handle(chat("s3"), at(23)))
    assert o3.agent_id == idle, o3.reason.text  # fewer sms minutes per signed-up hour
    # per channel: messenger minutes are apart from sms minutes
    (o4,) = of(OfferChat, r.handle(chat("m1", channel="messenger"), at(23, 1)))
    assert o4.agent_id == busy, o4.reason.text  # both have 0 messenger min; busy idled longer
    st_busy, st_idle = r.agent_status(busy), r.agent_status(idle)
    assert st_busy["chat_handled_s"] == {"sms": 1200.0}
    assert st_idle["chat_handled_s"] == {"sms": 60.0}
    assert st_busy["handled_s"] == 0.0  # chats do not move the calls' fair share


# ---------------------------------------------------------------- reply and call back
def test_waiting_chat_gets_reply_with_wait_and_a_call_back_that_keeps_its_place() -> None:
    q = chat_queue(chat_reply_after_s=60, callback_after_s=30)
    r = router(agent("ana", max_chats=1), queues=(q,))
    r.handle(chat("s1"), at(0))
    r.handle(OfferAnswered("s1", "ana"), at(0, 1))
    out = r.handle(chat("s2", customer="+15550001"), at(0, 10))
    assert of(CallQueued, out) and not of(ReplyWithWait, out)
    out = r.handle(TimerFired(), at(1, 10))
    (reply,) = of(ReplyWithWait, out)
    assert reply.call_id == "s2" and reply.position == 1 and reply.expected_wait_s == 120
    (cb,) = of(OfferChatCallback, out)
    assert cb.channel == "sms" and cb.expected_wait_s == 120
    assert not of(ReplyWithWait, r.handle(TimerFired(), at(3)))  # once
    out = r.handle(CallbackAccepted("s2"), at(3, 1))
    assert r.waiting_calls("help") == ["s2"] and r.waiting_calls("help", "sms") == []
    r.handle(CallEnded("s1"), at(4))
    out = r.handle(TimerFired(), at(4, 10))  # wrap-up over: the voice callback goes out
    (call,) = of(OfferCall, out)
    assert call.call_id == "s2" and call.callback and call.caller == "+15550001"


def test_a_messenger_chat_is_told_its_wait_but_offered_no_call_back() -> None:
    """A Messenger id is page-scoped: no number to call (CALLABLE_CHANNELS)."""
    q = chat_queue(chat_reply_after_s=60, callback_after_s=30)
    r = router(agent("ana", max_chats=1), queues=(q,))
    r.handle(chat("m1", channel="messenger"), at(0))
    r.handle(OfferAnswered("m1", "ana"), at(0, 1))
    r.handle(chat("m2", channel="messenger", customer="psid-2"), at(0, 10))
    out = r.handle(TimerFired(), at(1, 10))
    assert of(ReplyWithWait, out) and not of(OfferChatCallback, out)
    (ignored,) = of(EventIgnored, r.handle(CallbackAccepted("m2"), at(2)))
    assert "no number to call back" in ignored.why
    assert r.waiting_calls("help", "messenger") == ["m2"]


# ---------------------------------------------------------------- restore and journal
def _busy_mixed_router(buf: io.StringIO | None = None) -> tuple[Router, object]:
    d = Directory((agent("ana"), agent("ben", languages={"en": 5, "es": 3}),
                   agent("vic", capacity={"voice": 1})),
                  (chat_queue(selection="fair-share", chat_reply_after_s=40,
                              callback_after_s=10),),
                  POLICY, "<chat>")
    r = Router(d, now=MONDAY_18_UTC)
    rec = Recorder(r, buf, start=MONDAY_18_UTC) if buf is not None else None
    offered: dict[str, str] = {}

    def h(ev: object, t: datetime) -> list[object]:
        out = (rec.handle if rec is not None else r.handle)(ev, t)  # type: ignore[arg-type]
        for dd in out:
            if isinstance(dd, OfferChat | OfferCall):
                offered[dd.call_id] = dd.agent_id
        return list(out)

    for a in ("ana", "ben", "vic"):
        h(AgentRegistered(a), at(0))
    for i in range(8):
        h(chat(f"s{i}", channel=("sms", "messenger")[i % 2], language=("en", "es")[i % 3 == 0],
               customer=f"+{i % 4}"), at(0, i))
    for i in range(3):
        h(CallArrived(f"v{i}", "help", "en", caller=f"+{i}"), at(0, 10 + i))
    assert offered["s0"] and offered["v0"] == "vic"
    answered = sorted(c for c in offered if c.startswith("s"))[:4]
    for cid in answered:
        h(OfferAnswered(cid, offered[cid]), at(0, 9))
    h(OfferAnswered("v0", "vic"), at(0, 21))
    h(CallEnded(answered[1]), at(2))  # in wrap-up, its slot held
    h(TimerFired(), at(2, 5))
    h.offered = offered  # type: ignore[attr-defined]
    h.answered = answered  # type: ignore[attr-defined]
    return r, h


def test_restore_with_chats_decides_as_the_original() -> None:
    r, h = _busy_mixed_router()
    done, open_ = h.answered[1], h.answered[0]  # type: ignore[attr-defined]
    snap = r.snapshot(at(2, 6))
    data = json.loads(json.dumps(snap.to_dict()))
    phases = {c["arrival"]["call_id"]: c["phase"] for c in data["calls"]}
    chans = {c["arrival"]["call_id"]: c["channel"] for c in data["calls"]}
    assert phases[done] == "wrap" and phases[open_] == "connected"
    assert {"waiting", "ringing"} <= set(phases.values())
    assert {"sms", "messenger", "voice"} == set(chans.values())
    loads = {a["agent_id"]: (a["sms_load"], a["messenger_load"]) for a in data["agents"]}
    for a in ("ana", "ben", "vic"):
        load = r.agent_status(a)["load"]
        assert loads[a] == (load.get("sms", 0), load.get("messenger", 0)), a
    assert loads["vic"] == (0, 0) and sum(map(sum, loads.values())) >= 4
    r2, out = Router.restore(r.directory, RouterSnapshot.from_dict(data), now=at(2, 6),
                             bridged=["v0"])
    assert not of(OfferChat, out) and not of(CancelOffer, out)
    for a in ("ana", "ben", "vic"):
        s1, s2 = r.agent_status(a), r2.agent_status(a)
        assert s1["chats"] == s2["chats"] and s1["load"] == s2["load"], a
        assert s1["chat_handled_s"] == s2["chat_handled_s"] and s1["state"] == s2["state"]
    assert r2.snapshot(at(2, 6)).to_dict()["calls"] == snap.to_dict()["calls"]
    ringing = sorted(c for c, p in phases.items() if p == "ringing" and c.startswith("s"))
    later: list[tuple[object, datetime]] = [
        (CallEnded(open_), at(3)), (TimerFired(), at(3, 10)),
        (CallEnded("v0"), at(4)), (TimerFired(), at(5)),
        (CallEnded(h.answered[2]), at(6)), (TimerFired(), at(7)),  # type: ignore[attr-defined]
        (chat("s9", customer="+1"), at(8)), (TimerFired(), at(9))]
    if ringing:
        later.insert(2, (OfferAnswered(ringing[0], h.offered[ringing[0]]),  # type: ignore
                         at(3, 11)))
    for ev, t in later:
        a = [encode(d) for d in r.handle(ev, t)]  # type: ignore[arg-type]
        b = [encode(d) for d in r2.handle(ev, t)]  # type: ignore[arg-type]
        assert a == b, (ev, a, b)
    assert r.snapshot(at(9)).to_dict() == r2.snapshot(at(9)).to_dict()


def test_journal_with_chats_replays_identically() -> None:
    buf = io.StringIO()
    r, h = _busy_mixed_router(buf)
    h(CallEnded(h.answered[0]), at(3))  # type: ignore[attr-defined]
    h(TimerFired(), at(5))
    text = buf.getvalue()
    assert '"channel": "messenger"' in text and '"OfferChat"' in text
    res = replay(text.splitlines())
    assert res.identical, res.mismatches
    assert res.events == len(text.splitlines()) - 1 and res.decisions > 20
    # voice lines read as before channels: no "channel" key on voice events or decisions
    first_call = next(json.loads(x) for x in text.splitlines()[1:]
                      if json.loads(x)["event"].get("call_id") == "v0")
    assert "channel" not in first_call["event"]
    assert all("channel" not in d for d in first_call["decisions"])


# ---------------------------------------------------------------- directory and dispatch
def test_directory_keys_validated_with_every_problem_at_once() -> None:
    good = {"queues": {"help": {"channels": ["voice", "sms"], "chat_reply_after_s": 60}},
            "agents": {"ana": {"capacity": {"voice": 1, "sms": 3, "messenger": 2},
                               "max_chats": 3, "mix": "voice-with-chats",
                               "windows": ["Mon 09:00-17:00"]}}}
    d = Directory.from_dict(good)
    a = d.agent("ana")
    assert (dict(a.capacity), a.max_chats, a.mix) == (
        {"messenger": 2, "sms": 3, "voice": 1}, 3, "voice-with-chats")
    assert d.queue("help").channels == ("voice", "sms")
    assert Directory.from_dict(d.to_dict()).to_dict() == d.to_dict()
    assert Directory.from_dict({"agents": {"x": {"capacity": {"sms": 2},
                                                 "windows": ["Mon 09:00-17:00"]}}}).agent(
        "x").max_chats == 2  # default: the largest text capacity
    bad = {"queues": {"help": {"channels": ["voice", "fax", "voice"]},
                      "empty": {"channels": []}},
           "agents": {"ana": {"capacity": {"voice": 2, "pigeon": 1, "sms": -1},
                              "mix": "anything", "windows": ["Mon 09:00-17:00"]},
                      "ben": {"capacity": {"voice": 1}, "max_chats": 2,
                              "mix": "voice-with-chats", "windows": ["Mon 09:00-17:00"]}}}
    with pytest.raises(DirectoryError) as exc:
        Directory.from_dict(bad, "agents.yaml")
    text = str(exc.value)
    for piece in ("agents.yaml:queue/help:channels: 'fax' is not one of voice, sms, messenger",
                  "'voice' is named twice", "queue/empty:channels: a queue serves at least one",
                  "ana:capacity.voice: 2 must be between 0 and 1",
                  "ana:capacity: 'pigeon' is not one of", "ana:capacity.sms: -1 must be",
                  "ana:mix: 'anything' is not one of one-channel, voice-with-chats",
                  "ben:max_chats: max_chats needs a text channel",
                  "ben:mix: 'voice-with-chats' mixes calls and chats"):
        assert piece in text, (piece, text)
    assert "ana:capacity: the agent would take no interaction at all" in text
    assert len(exc.value.problems) == 10, text


def test_split_by_channel_keeps_chats_away_from_the_voice_executor() -> None:
    r = router(agent("ana"), agent("vic", capacity={"voice": 1}))
    out = r.handle(chat("s1"), at(0)) + r.handle(CallArrived("v1", "help", "en"), at(0, 1))
    out += r.handle(TimerFired(), at(0, 16))  # the chat offer passes unaccepted
    voice, text = split_by_channel(out)
    assert {type(d).__name__ for d in text} >= {"OfferChat", "CancelOffer"}
    assert all(getattr(d, "channel", "voice") == "voice" for d in voice)
    assert all(getattr(d, "call_id", "s") != "v1" for d in text)
    assert any(isinstance(d, OfferCall) for d in voice)


def test_chat_state_coherent_through_unregister() -> None:
    r = router(agent("ana"))
    r.handle(chat("s1"), at(0))
    r.handle(OfferAnswered("s1", "ana"), at(0, 1))
    r.handle(chat("s2"), at(0, 2))
    out = r.handle(AgentUnregistered("ana"), at(0, 3))
    assert [c.call_id for c in of(CancelOffer, out)] == ["s2"]
    st = r.agent_status("ana")
    assert st["state"] == "offline" and st["chats"] == {"s1": "sms"}
    assert r.waiting_calls("help", "sms") == ["s2"]
    r.handle(CallEnded("s1"), at(1))
    out = r.handle(AgentRegistered("ana"), at(1, 5))  # s1 wraps up: two slots are free
    assert [o.call_id for o in of(OfferChat, out)] == ["s2"]
    assert r.agent_status("ana")["load"] == {"sms": 2}
    r.handle(TimerFired(), at(1, 11))
    assert r.agent_status("ana")["chats"] == {"s2": "sms"}


def test_chat_overflow_only_to_a_queue_that_serves_its_channel_and_best_proficiency() -> None:
    qs = (chat_queue("help", max_wait_s=60, overflow="phone"),
          chat_queue("phone", channels=("voice",)),
          chat_queue("tech", skills={"tech": 1}, selection="best-proficiency", max_wait_s=60,
                     overflow="help"))
    r = router(agent("ana", skills={"tech": 2, "billing": 3}, max_chats=1),
               agent("ben", skills={"tech": 5}, capacity={"sms": 1}), queues=qs)
    (best,) = of(OfferChat, r.handle(chat("s1", queue="tech"), at(0)))
    assert best.agent_id == "ben" and best.reason.rule == "best-proficiency"
    (o,) = of(OfferChat, r.handle(chat("s2", queue="tech"), at(0, 1)))
    assert o.agent_id == "ana"
    r.handle(OfferAnswered("s1", "ben"), at(0, 2))
    r.handle(OfferAnswered("s2", "ana"), at(0, 3))
    r.handle(chat("s3"), at(0, 4))  # everybody full: waits in help
    (rej,) = of(CallRejected, r.handle(TimerFired(), at(1, 5)))  # max wait: to "phone"?
    assert rej.call_id == "s3" and rej.code == "wrong-channel" and rej.channel == "sms"
    assert "does not serve sms" in rej.why
    r.handle(chat("s4", queue="tech"), at(1, 6))
    out = r.handle(TimerFired(), at(2, 7))  # tech -> help serves sms: it overflows there
    assert [d.target for d in out if type(d).__name__ == "CallOverflowed"] == ["help"]
    assert r.waiting_calls("help", "sms") == ["s4"]
