"""Live statistics (routing.stats) against figures worked out by hand.

One hour, Tuesday 2026-12-01 10:00-11:00 UTC, two queues:
billing (T = 20 s, SL = answered within T / offered) and
sales (T = 15 s, SL = answered within T / (offered - abandoned within T)).

call  queue path            wait  outcome                 agent  talk  wrap  lang  intent  survey
c1    billing               10    answered (<= 20)        ana    120   20    en    balance 5
c2    billing               30    answered (> 20)         ben    60    10    es    balance 3
c3    billing               5     abandoned (short)       -                  en
c4    sales                 8     abandoned (short, 15)   -                  en
c5    sales                 12    answered (<= 15)        ana    180   30    en    buy     4
c6    sales                 40    abandoned               -                  en
c7    billing -> sales @30  50    answered in sales (>15) ana    60    0     fr    balance
c10   billing               60    callback                -                  en
c8    billing at 09:59: before the period; c9 waits in billing (snapshot only)
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing import CallArrived, Directory, DirectoryError
from routing.snapshot import AgentSnapshot, CallSnapshot, RouterSnapshot
from routing.stats import AgentSpan, compute_stats
from store import CallEvent, CallRecord

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday
NOW = T0 + timedelta(hours=1)


def s(sec: float) -> datetime:
    return T0 + timedelta(seconds=sec)


def directory() -> Directory:
    return Directory.from_dict({
        "policy": {"week_zone": "UTC", "hours": {"notice_hours": 0, "min_window_minutes": 30}},
        "queues": {
            "billing": {"skills": {"billing": 1}, "service_level": {"target": 0.8,
                                                                    "answer_s": 20}},
            "sales": {"skills": {"sales": 1}, "service_level": {"target": 0.9, "answer_s": 15},
                      "sl_definition": "answered_within_t_over_offered_minus_short_abandons"},
        },
        "agents": {
            "ana": {"skills": {"billing": 3, "sales": 3}, "windows": ["Tue 10:00-12:00"]},
            "ben": {"skills": {"billing": 3}, "windows": ["Tue 10:30-12:00"]},
        },
    })


def answered(cid: str, queue: str, q_at: float, wait: float, agent: str, talk: float,
             wrap: float, lang: str, intent: str, score: int | None = None,
             ) -> tuple[CallRecord, list[CallEvent]]:
    rec = CallRecord(cid, queue_id=queue, agent_id=agent, queued_at=s(q_at),
                     answered_at=s(q_at + wait), ended_at=s(q_at + wait + talk),
                     outcome="ended-by-caller", intent=intent, language=lang, wrap_up_s=wrap,
                     survey_score=score)
    evs = [CallEvent(cid, s(q_at), "enter", None, {"queue": queue}),
           CallEvent(cid, s(q_at + 1), "offered", agent),
           CallEvent(cid, s(q_at + wait), "connected", agent),
           CallEvent(cid, s(q_at + wait + talk), "completed", agent)]
    return rec, evs


def abandoned(cid: str, queue: str, q_at: float, wait: float, lang: str = "en"
              ) -> tuple[CallRecord, list[CallEvent]]:
    rec = CallRecord(cid, queue_id=queue, queued_at=s(q_at), ended_at=s(q_at + wait),
                     outcome="abandoned", language=lang)
    return rec, [CallEvent(cid, s(q_at), "enter", None, {"queue": queue}),
                 CallEvent(cid, s(q_at + wait), "abandoned")]


def calls() -> tuple[list[CallRecord], dict[str, list[CallEvent]]]:
    rows = [
        answered("c1", "billing", 0, 10, "ana", 120, 20, "en", "balance", 5),
        answered("c2", "billing", 300, 30, "ben", 60, 10, "es", "balance", 3),
        abandoned("c3", "billing", 600, 5),
        abandoned("c4", "sales", 1200, 8),
        answered("c5", "sales", 1800, 12, "ana", 180, 30, "en", "buy", 4),
        abandoned("c6", "sales", 2400, 40),
        answered("c7", "billing", 3000, 50, "ana", 60, 0, "fr", "balance"),
        answered("c8", "billing", -60, 5, "ben", 30, 0, "en", "balance", 1),
    ]
    recs = [r for r, _ in rows]
    events = {r.call_id: e for r, e in rows}
    # c2 rang ana first, who let it ring out
    events["c2"][1:2] = [CallEvent("c2", s(301), "offered", "ana"),
                         CallEvent("c2", s(316), "ring-no-answer", "ana", {"cause": "timeout"}),
                         CallEvent("c2", s(317), "offered", "ben")]
    # c7 overflowed from billing to sales after 30 s
    events["c7"].insert(1, CallEvent("c7", s(3030), "overflowed", None,
                                     {"from_queue": "billing", "target": "sales"}))
    # c10 took a callback after 60 s
    recs.append(CallRecord("c10", queue_id="billing", queued_at=s(900), ended_at=s(960),
                           outcome="ended-by-caller", language="en"))
    events["c10"] = [CallEvent("c10", s(900), "enter", None, {"queue": "billing"}),
                     CallEvent("c10", s(960), "callback")]
    # c9 is still waiting: no end, no answer
    recs.append(CallRecord("c9", queue_id="billing", queued_at=s(3480), language="en"))
    events["c9"] = [CallEvent("c9", s(3480), "enter", None, {"queue": "billing"})]
    return recs, events


def snapshot() -> RouterSnapshot:
    waiting = CallSnapshot(CallArrived("c9", "billing"), s(3480).timestamp(),
                           s(3480).timestamp(), 9, "billing", "waiting")
    ringing = CallSnapshot(CallArrived("c11", "sales"), s(3570).timestamp(),
                           s(3570).timestamp(), 11, "sales", "ringing", "ben")
    talking = CallSnapshot(CallArrived("c12", "sales"), s(3000).timestamp(),
                           s(3000).timestamp(), 12, "sales", "connected", "ana")
    return RouterSnapshot(NOW.timestamp() - 1, NOW.timestamp() - 0.5, 12,
                          (AgentSnapshot("ana", "on_call"), AgentSnapshot("ben", "reserved")),
                          (waiting, ringing, talking))


def spans() -> list[AgentSpan]:
    m = 60
    return [AgentSpan("ana", "offline", s(-3600), s(0)),
            AgentSpan("ana", "available", s(0), s(30 * m)),
            AgentSpan("ana", "on_call", s(30 * m), s(45 * m)),
            AgentSpan("ana", "wrap_up", s(45 * m), s(50 * m)),
            AgentSpan("ana", "break", s(50 * m), s(70 * m)),
            AgentSpan("ben", "available", s(30 * m), s(120 * m))]


def stats() -> dict:
    recs, events = calls()
    return compute_stats(directory(), recs, events, since=T0, now=NOW, snapshot=snapshot(),
                         spans=spans()).to_dict()


def test_billing_queue_by_hand() -> None:
    b = stats()["queues"]["billing"]
    # segments: c1 answered 10 s, c2 answered 30 s, c3 abandoned 5 s, c7 overflowed, c10 callback
    assert (b["offered"], b["answered"], b["abandoned"], b["abandoned_within_t"],
            b["answered_within_t"], b["overflowed"], b["callbacks"]) == (5, 2, 1, 1, 1, 1, 1)
    # answered within 20 s / offered (the callback excluded): 1 / 4
    assert b["service_level"] == 0.25
    assert b["sl_definition"] == "answered_within_t_over_offered"
    assert (b["sl_target"], b["sl_answer_s"]) == (0.8, 20)
    assert b["asa_s"] == 20.0  # (10 + 30) / 2
    assert b["abandon_rate"] == 0.2  # 1 / 5
    assert b["aht_s"] == 105.0  # (120 + 20 + 60 + 10) / 2
    assert (b["survey_count"], b["survey_avg"]) == (2, 4.0)  # 5 and 3
    assert (b["waiting_now"], b["longest_wait_now_s"]) == (1, 120.0)  # c9 since 10:58


def test_sales_queue_discounts_short_abandons() -> None:
    q = stats()["queues"]["sales"]
    # c4 abandoned 8 s (<= 15), c5 answered 12 s, c6 abandoned 40 s, c7 answered after 50 s
    assert (q["offered"], q["answered"], q["abandoned"], q["abandoned_within_t"],
            q["answered_within_t"]) == (4, 2, 2, 1, 1)
    assert q["service_level"] == round(1 / 3, 4)  # 1 / (4 - 1)
    assert q["asa_s"] == 31.0  # (12 + 50) / 2
    assert q["abandon_rate"] == 0.5
    assert q["aht_s"] == 135.0  # (180 + 30 + 60 + 0) / 2
    assert (q["waiting_now"], q["longest_wait_now_s"]) == (1, 30.0)  # c11 ringing ben


def test_totals_count_each_call_once_by_its_own_queue_rule() -> None:
    t = stats()["total"]
    # c1..c7 and c10 (c8 before the period, c9 still waiting)
    assert (t["offered"], t["answered"], t["abandoned"], t["abandoned_within_t"],
            t["answered_within_t"], t["overflowed"], t["callbacks"]) == (8, 4, 3, 2, 2, 0, 1)
    # c1 (10 <= 20) and c5 (12 <= 15) within T; denominator 8 - c10 - c4 (sales' rule) = 6
    assert t["service_level"] == round(2 / 6, 4)
    assert t["asa_s"] == 25.5  # (10 + 30 + 12 + 50) / 4
    assert t["abandon_rate"] == 0.375
    assert t["aht_s"] == 120.0  # (140 + 70 + 210 + 60) / 4
    assert (t["waiting_now"], t["longest_wait_now_s"]) == (2, 120.0)


def test_languages_and_skills() -> None:
    st = stats()
    en = st["languages"]["en"]
    # c1, c3, c4, c5, c6, c10: answered c1 and c5, both within T; 6 - c10 - c4 = 4
    assert (en["offered"], en["answered"], en["abandoned"], en["callbacks"]) == (6, 2, 3, 1)
    assert en["service_level"] == 0.5
    assert st["languages"]["fr"]["answered"] == 1 and st["languages"]["es"]["offered"] == 1
    billing = st["skills"]["billing"]  # calls that ended in billing: c1, c2, c3, c10
    assert (billing["offered"], billing["answered"], billing["service_level"]) == (
        4, 2, round(1 / 3, 4))
    sales = st["skills"]["sales"]  # c4, c5, c6, c7
    assert (sales["offered"], sales["answered"], sales["service_level"]) == (
        4, 2, round(1 / 3, 4))


def test_agents_by_hand() -> None:
    st = stats()
    ana, ben = st["agents"]["ana"], st["agents"]["ben"]
    assert (ana["offers"], ana["missed"], ana["answered"]) == (4, 1, 3)
    assert (ana["talk_s"], ana["wrap_up_s"]) == (360.0, 50.0)
    assert ana["aht_s"] == round((140 + 210 + 60) / 3, 1)
    # staffed 10:00-10:50 (50 min), busy on call + wrap-up 20 min; break excluded
    assert ana["occupancy"] == 0.4
    # 360 s talk = 6 min over her window's 1 h of the period
    assert (ana["signed_up_h"], ana["handled_min_per_signed_h"]) == (1.0, 6.0)
    assert (ana["survey_count"], ana["survey_avg"]) == (2, 4.5)  # 5 and 4
    assert ana["state_now"] == "on_call"
    assert (ben["offers"], ben["answered"], ben["talk_s"], ben["aht_s"]) == (1, 1, 60.0, 70.0)
    assert ben["occupancy"] == 0.0  # available 10:30-11:00, no call then (clipped at now)
    assert (ben["signed_up_h"], ben["handled_min_per_signed_h"]) == (0.5, 2.0)
    assert st["agents_by_state"] == {"on_call": 1, "reserved": 1}
    assert st["snapshot_age_s"] == 0.5
    assert st["intents"] == {"balance": {"survey_count": 2, "survey_avg": 4.0},
                             "buy": {"survey_count": 1, "survey_avg": 4.0}}


def test_one_queue_only() -> None:
    recs, events = calls()
    st = compute_stats(directory(), recs, events, since=T0, now=NOW, queue="sales").to_dict()
    assert list(st["queues"]) == ["sales"]
    # c4, c5, c6 and c7 (overflowed into sales) are the calls that were in sales
    assert st["total"]["offered"] == 4 and st["total"]["answered"] == 2
    assert st["agents"]["ben"]["answered"] == 0 and st["agents"]["ana"]["answered"] == 2


def test_no_calls_no_figures_and_naive_now_refused() -> None:
    st = compute_stats(directory(), [], {}, since=T0, now=NOW).to_dict()
    assert st["total"]["offered"] == 0 and st["total"]["service_level"] is None
    assert st["total"]["asa_s"] is None and st["agents"]["ana"]["occupancy"] is None
    with pytest.raises(ValueError, match="aware"):
        compute_stats(directory(), [], {}, since=T0, now=datetime(2026, 12, 1, 11))


def test_sl_definition_is_checked_with_the_allowed_list() -> None:
    with pytest.raises(DirectoryError) as err:
        Directory.from_dict({"queues": {"q": {"sl_definition": "whatever"}}})
    (p,) = err.value.problems
    assert (p.node, p.key, p.code) == ("queue/q", "sl_definition", "bad-choice")
    assert "answered_within_t_over_offered_minus_short_abandons" in p.message


def test_spans_from_state_changes_last_until_the_next_change_or_now() -> None:
    from routing.stats import spans_from_changes

    got = spans_from_changes([("ana", "available", s(0)), ("ben", "break", s(10)),
                              ("ana", "on_call", s(60))], NOW)
    assert got == [AgentSpan("ana", "available", s(0), s(60)),
                   AgentSpan("ana", "on_call", s(60), NOW),
                   AgentSpan("ben", "break", s(10), NOW)]


def test_day_series_in_quarter_hours_by_hand() -> None:
    from routing.stats import day_series

    recs, events = calls()
    d = day_series(directory(), recs, events, since=T0, now=NOW, step_s=900).to_dict()
    # 10:00-10:15: c1 (in T), c2 (not), c3 (abandoned 5 s, billing counts it): 1 / 3
    # 10:15-10:30: c10 (callback) and c4 (sales, short abandon): both out -> no SL
    # 10:30-10:45: c5 (in T), c6 (abandoned 40 s): 1 / 2
    # 10:45-11:00: c7 (50 s > sales' 15 s): 0 / 1; c9 still waiting: not offered
    assert d["offered"] == [3, 2, 2, 1]
    assert d["service_level"] == [round(1 / 3, 4), None, 0.5, 0.0]
    # waiting at once: c1 0-10 s, c2 300-330 s, c3 600-605 s, c10 900-960 s, c4, c5,
    # c6 alone; c7 3000-3050 s and c9 3480 s-now: never two together
    assert d["max_waiting"] == [1, 1, 1, 1]
    assert len(d["starts"]) == 4 and d["starts"][1] == "2026-12-01T10:15:00+00:00"


def test_day_series_counts_calls_waiting_together() -> None:
    from routing.stats import day_series

    recs = [CallRecord(f"w{i}", queue_id="billing", queued_at=s(10 * i),
                       answered_at=s(100 + i), ended_at=s(200)) for i in range(3)]
    d = day_series(directory(), recs, {}, since=T0, now=s(600), step_s=300)
    assert d.max_waiting == (3, 0) and d.offered == (3, 0)


def test_an_overflow_out_of_the_queues_is_the_calls_end() -> None:
    # billing -> sales after 30 s, then sales -> ext:voicemail after 90 s in all
    rec = CallRecord("v1", queue_id="billing", queued_at=s(0), ended_at=s(150),
                     outcome="ivr-voicemail", language="en")
    evs = [CallEvent("v1", s(0), "enter", None, {"queue": "billing"}),
           CallEvent("v1", s(30), "overflowed", None, {"from_queue": "billing",
                                                       "target": "sales"}),
           CallEvent("v1", s(90), "overflowed", None, {"from_queue": "sales",
                                                       "target": "ext:voicemail"})]
    st = compute_stats(directory(), [rec], {"v1": evs}, since=T0, now=NOW).to_dict()
    for q in ("billing", "sales"):
        f = st["queues"][q]
        assert (f["offered"], f["overflowed"], f["service_level"]) == (1, 1, 0.0)
    t = st["total"]  # counted once, where it left the queues
    assert (t["offered"], t["overflowed"], t["answered"], t["service_level"]) == (1, 1, 0, 0.0)
    assert st["skills"]["sales"]["offered"] == 1 and "billing" not in st["skills"]
