"""The text channels' statistics (routing.stats.compute_chat_stats) against figures
worked out by hand. One hour, 10:00-11:00 UTC; times are seconds after 10:00.

route  chan  queue    agent  routed accept reply  ended  state/by        survey intent
r0     sms   general  chloe  -600   -590   -580   50     ended agent     (before: held 0-50)
r1     sms   general  chloe  0      20     30     330    ended agent     5 billing
r2     sms   general  chloe  100    110    160    400    ended agent     3 billing
r3     msg   general  chloe  200    250    260    300    ended transfer
r4     msg   texts    emma   300    310    320    900    ended agent     4 order-status
r5     sms   general  -      500    -      -      560    ended customer  (abandoned)
r6     sms   general  -      600    -      -      600    rejected        (abandoned)
r7     sms   general  chloe  700    710    -      800    ended agent     (abandoned: no reply)
r8     sms   general  -      1000   -      -      -      waiting         (open)
r9     msg   general  -      1100   -      -      -      callback
r10    sms   general  chloe  3000   3100   3130   -      accepted        (open, held to 3600)
(msg: messenger)
sms:       offered 7, accepted 4, abandoned 3 (r5 r6 r7), rejected 1, open 2, finished 5,
           abandonment 3/5; first response 30, 60, 130: mean 73.3, p90 130; handle 310,
           290, 90: mean 230; survey 5, 3: 4.0.
messenger: offered 3, accepted 2, transferred 1, callbacks 1, abandoned 0 of 3; first
           response 60, 20: mean 40, p90 60; handle 50, 590: mean 320; survey 4.
chloe's concurrency (0-20: 1, 20-50: 2, 50-110: 1, 110-250: 2, 250-300: 3, 300-330: 2,
330-400: 1, 710-800: 1, 3100-3600: 1): held 990 s, chat-seconds 1290, average
1290/990 = 1.303, most at once 3.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from routing import Directory
from routing.stats import compute_chat_stats, compute_stats
from store.chats import ChatRoute

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def s(sec: float) -> datetime:
    return T0 + timedelta(seconds=sec)


def directory() -> Directory:
    return Directory.from_dict({
        "policy": {"week_zone": "UTC", "hours": {"notice_hours": 0, "min_window_minutes": 30}},
        "queues": {
            "billing": {"skills": {"billing": 1}},
            "general": {"skills": {"billing": 1}, "channels": ["voice", "sms", "messenger"]},
            "texts": {"skills": {"billing": 1}, "channels": ["sms", "messenger"]},
        },
        "agents": {
            "ana": {"skills": {"billing": 3}, "windows": ["Tue 10:00-12:00"]},
            "chloe": {"skills": {"billing": 3}, "windows": ["Tue 10:00-12:00"],
                      "capacity": {"voice": 1, "sms": 3, "messenger": 2}, "max_chats": 3},
            "emma": {"skills": {"billing": 3}, "windows": ["Tue 10:00-12:00"],
                     "capacity": {"sms": 2, "messenger": 2}},
        },
    })


def route(rid: str, channel: str, queue: str, routed: float, state: str, *,
          agent: str | None = None, accepted: float | None = None,
          reply: float | None = None, ended: float | None = None, by: str | None = None,
          score: int | None = None, intent: str | None = None) -> ChatRoute:
    t = {k: None if v is None else s(v) for k, v in
         (("accepted", accepted), ("reply", reply), ("ended", ended))}
    return ChatRoute(rid, f"conv-{rid}", channel, "+15550123", queue, "en", intent, state,
                     agent, s(routed), None, None, t["accepted"], t["reply"], t["ended"], by,
                     None, None, None, s(routed), score, None)


ROUTES = [
    route("r0", "sms", "general", -600, "ended", agent="chloe", accepted=-590, reply=-580,
          ended=50, by="agent"),
    route("r1", "sms", "general", 0, "ended", agent="chloe", accepted=20, reply=30, ended=330,
          by="agent", score=5, intent="billing"),
    route("r2", "sms", "general", 100, "ended", agent="chloe", accepted=110, reply=160,
          ended=400, by="agent", score=3, intent="billing"),
    route("r3", "messenger", "general", 200, "ended", agent="chloe", accepted=250, reply=260,
          ended=300, by="transfer"),
    route("r4", "messenger", "texts", 300, "ended", agent="emma", accepted=310, reply=320,
          ended=900, by="agent", score=4, intent="order-status"),
    route("r5", "sms", "general", 500, "ended", ended=560, by="customer"),
    route("r6", "sms", "general", 600, "rejected", ended=600, by="system"),
    route("r7", "sms", "general", 700, "ended", agent="chloe", accepted=710, ended=800,
          by="agent"),
    route("r8", "sms", "general", 1000, "waiting"),
    route("r9", "messenger", "general", 1100, "callback"),
    route("r10", "sms", "general", 3000, "accepted", agent="chloe", accepted=3100, reply=3130),
]


def test_per_channel_figures() -> None:
    d = compute_chat_stats(directory(), ROUTES, since=T0, now=NOW).to_dict()
    assert d["channels"]["sms"] == {
        "offered": 7, "accepted": 4, "abandoned": 3, "rejected": 1, "transferred": 0,
        "callbacks": 0, "open_now": 2, "abandon_rate": 0.6, "replied": 3,
        "first_response_avg_s": 73.3, "first_response_p90_s": 130.0, "handle_avg_s": 230.0,
        "survey_count": 2, "survey_avg": 4.0}
    assert d["channels"]["messenger"] == {
        "offered": 3, "accepted": 2, "abandoned": 0, "rejected": 0, "transferred": 1,
        "callbacks": 1, "open_now": 0, "abandon_rate": 0.0, "replied": 2,
        "first_response_avg_s": 40.0, "first_response_p90_s": 60.0, "handle_avg_s": 320.0,
        "survey_count": 1, "survey_avg": 4.0}
    tot = d["total"]
    assert (tot["offered"], tot["accepted"], tot["abandoned"], tot["open_now"],
            tot["abandon_rate"]) == (10, 6, 3, 2, 0.375)
    # first responses 20, 30, 60, 60, 130; handle 310, 290, 90, 50, 590
    assert (tot["first_response_avg_s"], tot["first_response_p90_s"], tot["handle_avg_s"],
            tot["survey_avg"], tot["survey_count"]) == (60.0, 130.0, 266.0, 4.0, 3)


def test_per_queue_agent_and_intent() -> None:
    d = compute_chat_stats(directory(), ROUTES, since=T0, now=NOW).to_dict()
    assert set(d["queues"]) == {"general", "texts"}  # billing serves voice only
    g = d["queues"]["general"]
    assert (g["offered"], g["accepted"], g["abandoned"], g["transferred"], g["callbacks"],
            g["open_now"], g["abandon_rate"]) == (9, 5, 3, 1, 1, 2, round(3 / 7, 4))
    assert (g["first_response_avg_s"], g["first_response_p90_s"], g["handle_avg_s"]) == (
        70.0, 130.0, 185.0)
    assert d["queues"]["texts"]["offered"] == 1
    assert set(d["agents"]) == {"chloe", "emma"}  # ana takes no chats
    chloe = d["agents"]["chloe"]
    assert (chloe["offered"], chloe["accepted"], chloe["abandoned"], chloe["transferred"],
            chloe["open_now"], chloe["abandon_rate"]) == (5, 5, 1, 1, 1, 0.25)
    assert (chloe["first_response_avg_s"], chloe["handle_avg_s"], chloe["survey_avg"]) == (
        70.0, 185.0, 4.0)
    assert (chloe["held_s"], chloe["concurrency_avg"], chloe["concurrency_max"]) == (
        990.0, round(1290 / 990, 3), 3)
    emma = d["agents"]["emma"]
    assert (emma["held_s"], emma["concurrency_avg"], emma["concurrency_max"],
            emma["survey_avg"], emma["first_response_avg_s"]) == (590.0, 1.0, 1, 4.0, 20.0)
    assert d["intents"] == {"billing": {"survey_count": 2, "survey_avg": 4.0},
                            "order-status": {"survey_count": 1, "survey_avg": 4.0}}


def test_one_queue_only() -> None:
    d = compute_chat_stats(directory(), ROUTES, since=T0, now=NOW, queue="texts").to_dict()
    assert set(d["queues"]) == {"texts"} and d["total"]["offered"] == 1
    assert d["channels"]["sms"]["offered"] == 0 and d["channels"]["messenger"]["offered"] == 1
    assert d["agents"]["chloe"]["held_s"] == 0.0 and d["agents"]["chloe"]["offered"] == 0
    assert d["agents"]["emma"]["held_s"] == 590.0


def test_back_to_back_chats_do_not_overlap_and_empty_is_none() -> None:
    a = route("a", "sms", "general", 0, "ended", agent="emma", accepted=0, reply=5, ended=60,
              by="agent")
    b = replace(a, route_id="b", accepted_at=s(60), first_reply_at=s(70), ended_at=s(100))
    emma = compute_chat_stats(directory(), [a, b], since=T0, now=NOW).to_dict()["agents"]["emma"]
    assert (emma["held_s"], emma["concurrency_avg"], emma["concurrency_max"]) == (100.0, 1.0, 1)
    empty = compute_chat_stats(directory(), [], since=T0, now=NOW).to_dict()
    assert empty["total"]["first_response_p90_s"] is None
    assert empty["total"]["abandon_rate"] is None
    assert empty["agents"]["chloe"]["concurrency_avg"] is None


def test_p90_is_the_nearest_rank() -> None:
    rs = [route(f"p{i}", "sms", "general", 0, "ended", agent="chloe", accepted=0, reply=i,
                ended=1000, by="agent") for i in range(1, 11)]
    d = compute_chat_stats(directory(), rs, since=T0, now=NOW).to_dict()["total"]
    assert (d["first_response_p90_s"], d["first_response_avg_s"]) == (9.0, 5.5)


def test_compute_stats_carries_the_chats_and_leaves_voice_alone() -> None:
    with_chats = compute_stats(directory(), [], {}, since=T0, now=NOW, chats=ROUTES).to_dict()
    without = compute_stats(directory(), [], {}, since=T0, now=NOW).to_dict()
    assert with_chats["chats"]["channels"]["sms"]["offered"] == 7
    assert without["chats"]["total"]["offered"] == 0
    del with_chats["chats"], without["chats"]
    assert with_chats == without
