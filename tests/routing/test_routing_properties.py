"""Property tests: windows (across DST in several zones), skills per step, budget, replay."""
from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from routing import (
    Agent,
    AgentHoursChanged,
    AgentMadeAvailable,
    AgentPutOnBreak,
    AgentRegistered,
    AgentUnregistered,
    AgentWentOnBreak,
    CallArrived,
    CallEnded,
    CallerAbandoned,
    CancelOffer,
    Directory,
    ExpansionStep,
    HoursError,
    HoursPolicy,
    HourWindow,
    OfferAnswered,
    OfferCall,
    OfferChat,
    OfferNotAnswered,
    Queue,
    RoutingPolicy,
    TimerFired,
)
from routing.hours import add_hours, cancel_hours, set_hours
from routing.journal import Recorder, replay
from routing.router import Router
from routing.windows import day_intervals, validate_weekly, week_minutes
from store import SqliteStore as Store

ZONES = ("Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
         "Europe/London", "America/Santiago")
# instants just before DST changes (tz database): EU spring/fall, US spring/fall,
# Sydney fall-back (5 Apr 2026) and spring-forward (4 Oct 2026), Chile (5 Apr / 6 Sep 2026)
STARTS = (datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
          datetime(2026, 3, 8, 6, 0, tzinfo=UTC), datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
          datetime(2026, 4, 4, 15, 0, tzinfo=UTC), datetime(2026, 10, 3, 15, 0, tzinfo=UTC),
          datetime(2026, 4, 5, 2, 0, tzinfo=UTC), datetime(2026, 9, 6, 3, 0, tzinfo=UTC))
SKILLS = ("billing", "tech")
LANGS = ("en", "es")
POLICY = RoutingPolicy(ring_timeout_s=15, max_misses=2, miss_cooldown_s=20,
                       hours=HoursPolicy(min_weekly_hours=0, max_weekly_hours=168,
                                         min_window_minutes=1, notice_hours=0))
QUEUES = (
    Queue("billing", skills={"billing": 4}, languages=("en", "es"), aht_s=600, wrap_up_s=20,
          expansion=(ExpansionStep(60, min_level=2), ExpansionStep(180, any_skill=True)),
          selection="fair-share", simple_intents=("easy",)),
    Queue("tech", skills={"tech": 3, "billing": 1}, languages=("en",), aht_s=300,
          wrap_up_s=0, expansion=(ExpansionStep(90, min_level=1),),
          selection="best-proficiency"),
    Queue("any", aht_s=120, wrap_up_s=5, selection="longest-idle"),
)


# the same queues serving text channels too (mixed runs), one with the automatic reply
MIXED_QUEUES = tuple(
    Queue(q.id, skills=q.skills, languages=q.languages, aht_s=q.aht_s, wrap_up_s=q.wrap_up_s,
          expansion=q.expansion, selection=q.selection, simple_intents=q.simple_intents,
          channels=chans, chat_reply_after_s=reply, callback_after_s=cb)
    for q, chans, reply, cb in zip(QUEUES, (("voice", "sms"), ("voice", "messenger"),
                                            ("voice", "sms", "messenger")),
                                   (120.0, None, 30.0), (60.0, None, None), strict=True))


def local_open(agent_windows: tuple[HourWindow, ...], zone: str, at: datetime) -> bool:
    """Reference: the agent's wall clock at ``at`` is inside one of their windows."""
    local = at.astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(s <= minute < e for s, e in day_intervals(agent_windows, (), local.date()))


def meets(agent: Agent, q: Queue, step: int, language: str | None) -> bool:
    """Reference requirement check written out from the issue's rules."""
    skills = dict(q.skills)
    if step:
        rule = q.expansion[step - 1]
        skills = {} if rule.any_skill else {k: min(v, rule.min_level or v)
                                            for k, v in skills.items()}
    lang = language if (not q.languages or language in q.languages) else q.languages[0]
    if lang is not None and agent.languages.get(lang, 0) < 1:
        return False
    return all(agent.skills.get(k, 0) >= v for k, v in skills.items())


@st.composite
def windows_for(draw: st.DrawFn, zone: str, start: datetime) -> tuple[HourWindow, ...]:
    local = start.astimezone(ZoneInfo(zone))
    days = [(local + timedelta(days=k)).weekday() for k in (-1, 0, 1)]
    out: list[HourWindow] = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            out.append(HourWindow(draw(st.sampled_from(days)), 0, 1440))
            continue
        s = draw(st.integers(0, 46)) * 30
        e = min(1440, s + draw(st.integers(1, 16)) * 30)
        out.append(HourWindow(draw(st.sampled_from(days)), s, e))
    kept: list[HourWindow] = []
    for w in out:  # keep windows valid for the policy: no overlaps, no DST-gap endpoints
        cand = [*kept, w]
        if not validate_weekly(cand, zone, POLICY.hours, now=start, check_budget=False):
            kept = cand
    return tuple(kept)


@st.composite
def directories(draw: st.DrawFn) -> tuple[Directory, datetime]:
    start = draw(st.sampled_from(STARTS)) + timedelta(minutes=draw(st.integers(-180, 60)))
    agents = []
    for i in range(draw(st.integers(1, 6))):
        zone = draw(st.sampled_from(ZONES))
        skills = {s: draw(st.integers(1, 5)) for s in SKILLS if draw(st.booleans())}
        langs = {lg: draw(st.integers(1, 5)) for lg in LANGS if draw(st.booleans())} or {"en": 3}
        agents.append(Agent(f"a{i}", skills=skills, languages=langs, zone=zone,
                            windows=draw(windows_for(zone, start)),
                            trainee=draw(st.booleans())))
    return Directory(tuple(agents), QUEUES, POLICY, "<prop>"), start


@st.composite
def mixed_directories(draw: st.DrawFn) -> tuple[Directory, datetime]:
    """Agents with a capacity per channel and a mix rule, queues serving chats too."""
    d, start = draw(directories())
    agents = []
    for a in d.agents:
        cap = {"voice": draw(st.integers(0, 1)), "sms": draw(st.integers(0, 3)),
               "messenger": draw(st.integers(0, 3))}
        if not any(cap.values()):
            cap["voice"] = 1
        text = cap["sms"] or cap["messenger"]
        # only what the directory file accepts (journals carry the directory as a file)
        mix = (draw(st.sampled_from(("one-channel", "voice-with-chats")))
               if text and cap["voice"] else "one-channel")
        agents.append(Agent(a.id, skills=a.skills, languages=a.languages, zone=a.zone,
                            windows=a.windows, trainee=a.trainee, capacity=cap,
                            max_chats=draw(st.integers(0, 3)) if text else 0,
                            mix=mix))  # type: ignore[arg-type]
    return Directory(tuple(agents), MIXED_QUEUES, POLICY, "<prop-mixed>"), start


def run_random_day(data: st.DataObject, directory: Directory, start: datetime,
                   record: io.StringIO | None = None,
                   mixed: bool = False) -> list[tuple[datetime, object]]:
    """A random day of events, checking every offer; ``mixed``: chats too (sms, messenger),
    and every offer then also keeps the agent's capacity per channel and mix rule."""
    router = Router(directory, now=start)
    handle = Recorder(router, record, start=start).handle if record is not None else router.handle
    agents = {a.id: a for a in directory.agents}
    queues = {q.id: q for q in directory.queues}
    windows = {a.id: a.windows for a in directory.agents}
    registered: set[str] = set()
    on_break: set[str] = set()
    busy: dict[str, str] = {}  # agent -> call it rings or talks on
    ringing: dict[str, str] = {}  # call -> agent
    connected: dict[str, str] = {}
    calls: dict[str, tuple[str, datetime, str | None]] = {}  # call -> queue, arrived, language
    channel_of: dict[str, str] = {}
    chats_of: dict[str, dict[str, str]] = {a: {} for a in agents}  # agent -> open chat -> channel
    now = start
    log: list[tuple[datetime, object]] = []
    n_calls = 0
    def check(decisions: list[object]) -> None:
        for d in decisions:
            log.append((now, d))
            if isinstance(d, CancelOffer):
                ringing.pop(d.call_id, None)
                if d.channel == "voice":
                    busy.pop(d.agent_id, None)
                else:
                    chats_of[d.agent_id].pop(d.call_id, None)
            elif isinstance(d, AgentPutOnBreak):
                on_break.add(d.agent_id)
            elif isinstance(d, OfferCall | OfferChat):
                agent = agents[d.agent_id]
                qid, arrived, lang = calls[d.call_id]
                q = queues[qid]
                step = q.step_at((now - arrived).total_seconds())
                # never outside the window (reference: the agent's wall clock), time left
                assert local_open(windows[d.agent_id], agent.zone, now), (
                    d.reason.text, now.astimezone(ZoneInfo(agent.zone)),
                    [str(w) for w in windows[d.agent_id]], router.agent_status(d.agent_id))
                later = now + timedelta(seconds=q.time_left_s - 1)
                assert local_open(windows[d.agent_id], agent.zone, later), (d, later)
                # never without the skill/language the current expansion step requires
                assert meets(agent, q, step, lang), (d, step)
                # only registered agents, not on break, not already busy
                assert d.agent_id in registered and d.agent_id not in on_break, (
                    d.reason.text, ev, router.agent_status(d.agent_id))
                assert d.agent_id not in busy, (d, busy)
                open_chats = chats_of[d.agent_id]
                if isinstance(d, OfferChat):  # capacity per channel, chats in all
                    assert channel_of[d.call_id] == d.channel
                    same = sum(1 for c in open_chats.values() if c == d.channel)
                    assert same < agent.capacity.get(d.channel, 0), (d, open_chats)
                    assert len(open_chats) < agent.max_chats, (d, open_chats)
                    open_chats[d.call_id] = d.channel
                else:  # the mix rule: no call beside chats (or beside a chat being offered)
                    assert channel_of[d.call_id] == "voice"
                    assert agent.capacity.get("voice", 0) >= 1, d
                    if agent.mix == "one-channel":
                        assert not open_chats, (d, open_chats)
                    else:
                        assert not any(c in ringing for c in open_chats), (d, open_chats)
                    busy[d.agent_id] = d.call_id
                ringing[d.call_id] = d.agent_id

    for aid in sorted(agents):
        if data.draw(st.integers(0, 3), label="registered at start"):
            registered.add(aid)
            check(handle(AgentRegistered(aid), now))
    for _ in range(data.draw(st.integers(5, 45), label="steps")):
        now = now + timedelta(seconds=data.draw(st.integers(0, 1500), label="dt"))
        aid = data.draw(st.sampled_from(sorted(agents)), label="agent")
        kind = data.draw(st.sampled_from(("reg", "reg", "unreg", "avail", "break", "call",
                                          "call", "call", "answer", "noanswer", "end",
                                          "abandon", "timer", "timer", "hours")), label="kind")
        ev: object
        if kind == "reg":
            ev = AgentRegistered(aid)
        elif kind == "unreg":
            ev = AgentUnregistered(aid)
        elif kind == "avail":
            ev = AgentMadeAvailable(aid)
        elif kind == "break":
            ev = AgentWentOnBreak(aid)
        elif kind == "call":
            n_calls += 1
            q = data.draw(st.sampled_from(sorted(queues)), label="queue")
            lang = data.draw(st.sampled_from(("en", "es", None)), label="lang")
            chan = (data.draw(st.sampled_from(("voice", "sms", "messenger")), label="channel")
                    if mixed else "voice")
            ev = CallArrived(f"c{n_calls}", q, lang, data.draw(st.sampled_from(("easy", "hard"))),
                             f"+{n_calls % 3}", data.draw(st.integers(0, 2), label="prio"),
                             channel=chan)
        elif kind in ("answer", "noanswer") and ringing:
            cid = data.draw(st.sampled_from(sorted(ringing)), label="ringing call")
            ev = (OfferAnswered(cid, ringing[cid]) if kind == "answer"
                  else OfferNotAnswered(cid, ringing[cid]))
        elif kind == "end" and connected:
            ev = CallEnded(data.draw(st.sampled_from(sorted(connected)), label="connected"))
        elif kind == "abandon" and calls:
            ev = CallerAbandoned(data.draw(st.sampled_from(sorted(calls)), label="call"))
        elif kind == "hours":
            a = agents[aid]
            new = data.draw(windows_for(a.zone, now), label="windows")
            ev = AgentHoursChanged(aid, new)
        else:
            ev = TimerFired()
        # timers due now first, so the decisions of ``ev`` are caused by ``ev`` alone
        check(handle(TimerFired(), now))
        if isinstance(ev, TimerFired):
            pass
        elif isinstance(ev, AgentHoursChanged):
            windows[aid] = ev.windows
        elif isinstance(ev, AgentRegistered):
            registered.add(aid)
        elif isinstance(ev, AgentUnregistered):
            registered.discard(aid)
        elif isinstance(ev, AgentMadeAvailable):
            on_break.discard(aid)
        elif isinstance(ev, AgentWentOnBreak):
            on_break.add(aid)
        elif isinstance(ev, CallArrived):
            calls[ev.call_id] = (ev.queue_id, now, ev.language)
            channel_of[ev.call_id] = ev.channel
        elif isinstance(ev, OfferAnswered | OfferNotAnswered):
            if ringing.get(ev.call_id) != ev.agent_id:
                pass  # the ring timed out in the timer batch: a stale event, to be ignored
            elif isinstance(ev, OfferAnswered):
                connected[ev.call_id] = ringing.pop(ev.call_id)
            elif channel_of[ev.call_id] == "voice":
                busy.pop(ringing.pop(ev.call_id), None)
            else:
                chats_of[ringing.pop(ev.call_id)].pop(ev.call_id, None)
        elif isinstance(ev, CallEnded | CallerAbandoned):
            calls.pop(ev.call_id, None)
            for table in (ringing, connected):
                agent = table.pop(ev.call_id, None)
                if agent is not None and channel_of[ev.call_id] == "voice":
                    busy.pop(agent, None)
                elif agent is not None:
                    chats_of[agent].pop(ev.call_id, None)
        if not isinstance(ev, TimerFired):
            check(handle(ev, now))  # type: ignore[arg-type]
    return log


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directories(), st.data())
def test_offers_respect_windows_skills_and_state(dd: tuple[Directory, datetime],
                                                 data: st.DataObject) -> None:
    directory, start = dd
    log = run_random_day(data, directory, start)
    event(f"offers: {min(3, sum(isinstance(d, OfferCall) for _, d in log))}+")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directories(), st.data())
def test_replay_is_identical(dd: tuple[Directory, datetime], data: st.DataObject) -> None:
    directory, start = dd
    buf = io.StringIO()
    log = run_random_day(data, directory, start, record=buf)
    res = replay(buf.getvalue().splitlines())
    assert res.identical, res.mismatches
    assert res.decisions == len(log)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_directories(), st.data())
def test_mixed_channel_offers_respect_capacity_mix_windows_and_skills(
        dd: tuple[Directory, datetime], data: st.DataObject) -> None:
    directory, start = dd
    log = run_random_day(data, directory, start, mixed=True)
    event(f"chat offers: {min(3, sum(isinstance(d, OfferChat) for _, d in log))}+")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_directories(), st.data())
def test_replay_is_identical_with_chats(dd: tuple[Directory, datetime],
                                        data: st.DataObject) -> None:
    directory, start = dd
    buf = io.StringIO()
    log = run_random_day(data, directory, start, record=buf, mixed=True)
    res = replay(buf.getvalue().splitlines())
    assert res.identical, res.mismatches
    assert res.decisions == len(log)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ZONES), st.lists(st.tuples(
    st.sampled_from(("set", "add", "cancel")), st.integers(0, 6), st.integers(0, 47),
    st.integers(1, 24), st.integers(0, 20)), min_size=1, max_size=12))
def test_weekly_budget_is_never_exceeded(zone: str, ops: list[tuple[str, int, int, int, int]]
                                         ) -> None:
    policy = RoutingPolicy(hours=HoursPolicy(min_weekly_hours=1, max_weekly_hours=12,
                                             min_window_minutes=30, notice_hours=0))
    agent = Agent("x", zone=zone, windows=(HourWindow(0, 600, 720),))
    directory = Directory((agent,), (), policy, "<budget>")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    with Store(":memory:") as store:
        for op, day, start_slot, length_slots, offset_days in ops:
            s = start_slot * 30
            e = min(1440, s + length_slots * 30)
            text = f"{e // 60:02d}:{e % 60:02d}"
            d = date(2026, 11, 26) + timedelta(days=offset_days)
            try:
                if op == "set":
                    w = HourWindow(day, s, e)
                    set_hours(store, directory, "x", [w, HourWindow((day + 3) % 7, s, e)], now)
                elif op == "add":
                    add_hours(store, directory, "x", d, f"{s // 60:02d}:{s % 60:02d}", text, now)
                else:
                    cancel_hours(store, directory, "x", d, None, None, now)
            except HoursError:
                pass
            stored = store.hours("x")
            ws, cs = stored if stored is not None else (agent.windows, ())
            assert sum(w.minutes for w in ws) <= 12 * 60
            monday = date(2026, 11, 23)
            for k in range(5):
                assert week_minutes(ws, cs, monday + timedelta(weeks=k)) <= 12 * 60
