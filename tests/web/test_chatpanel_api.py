"""The agent portal's chat panel API over real HTTP (issue 11): uvicorn on loopback,
the real SQLite store, SMS in through the signed webhook, replies out to a local
server playing the provider. The router's side of each route (offered, timed
out) is written into the store as the engine's chat executor writes it
(chat_kit.offer / time_out); what the web app writes is checked in the store:
the route, the requests the engine reads, the text events."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_kit import OFFER_S, ChatStack, offer, path_of, running_chat_stack, time_out
from web_testkit import NOW

from store.chats import ChatRoute
from web.chatpanel import ACCEPT_MARGIN_S, MAX_REPLY

ANN, BOB = "+15550111", "+15550122"
CARD = "4111 1111 1111 1111"
SURVEY = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
CARD_DIGITS = re.compile(r"4111[ -]?1111[ -]?1111[ -]?1111")


@pytest.fixture()
def chats(tmp_path: Path) -> Iterator[ChatStack]:
    with running_chat_stack(tmp_path, idle_timeout_s=600, events_poll_s=0.1) as s:
        yield s


def waiting(chats: ChatStack, customer: str, text: str, sid: str) -> ChatRoute:
    chats.sms(text, sid, customer)
    return chats.waiting_route(customer)


def offered(chats: ChatStack, customer: str, agent: str = "emma",
            text: str = "agent please") -> ChatRoute:
    route = waiting(chats, customer, text, f"SM-{customer}")
    offer(chats.store, route.route_id, agent, chats.clock.now)
    got = chats.store.chat_route(route.route_id)
    assert got is not None
    return got


def post(c: httpx.Client, csrf: str, route_id: str, action: str,
         body: dict[str, Any] | None = None) -> httpx.Response:
    return c.post(path_of(route_id, action), json=body if body is not None else {},
                  headers={"X-CSRF-Token": csrf})


def requests_of(chats: ChatStack) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    reqs, _ = chats.store.chat_requests_since(0)
    return [(r.route_id, r.kind, r.agent_id, r.data) for r in reqs]


def snapshot(chats: ChatStack) -> dict[str, Any]:
    """Everything a refusal must leave as it was."""
    tables = ("chat_routes", "chat_requests", "text_messages", "text_events",
              "text_conversations")
    return {t: chats.store._read(f"SELECT * FROM {t} ORDER BY 1, 2")  # noqa: S608
            for t in tables} | {"sent": len(chats.provider.received)}


def test_an_agent_accepts_two_chats_replies_in_both_and_closes_one(chats: ChatStack) -> None:
    chats.sms("Where is my order 12345?", "SM-a0", ANN)  # self-service first, then a person
    a = offered(chats, ANN, text=f"agent, my card is {CARD}")
    b = offered(chats, BOB)
    emma, csrf = chats.login("emma")

    view = emma.get("/api/chats").json()
    assert view["takes_chats"] is True and view["max_chats"] == 3
    assert view["capacity"] == {"sms": 3, "messenger": 2}
    assert view["chats"] == []
    assert [o["route_id"] for o in view["offers"]] == [a.route_id, b.route_id]
    o = view["offers"][0]
    assert (o["channel"], o["customer"], o["language"], o["queue"]) == ("sms", ANN, "en",
                                                                        "general")
    assert datetime.fromisoformat(o["accept_by"]) == (
        NOW + timedelta(seconds=OFFER_S - ACCEPT_MARGIN_S))
    assert datetime.fromisoformat(view["server_now"]) == NOW
    lines = [(m["direction"], m["text"]) for m in o["transcript"]]
    assert lines[0] == ("in", "Where is my order 12345?")
    assert lines[1][1].startswith("Order 12345: shipped")
    # the card number the customer typed stays masked in what the panel shows
    assert not CARD_DIGITS.search(json.dumps(view))
    assert "agent, my card is" in lines[-3][1] and lines[-3][0] == "in"
    assert [q["id"] for q in o["transfer_queues"]] == ["billing", "general"]
    assert "Could you give me your order number, please?" in o["suggestions"]

    chats.clock.advance(5)
    for route in (a, b):
        r = post(emma, csrf, route.route_id, "accept")
        assert r.status_code == 200, r.text
        assert r.json() == {"route_id": route.route_id, "state": "accepted"}
    view = emma.get("/api/chats").json()
    assert view["offers"] == [] and [c["route_id"] for c in view["chats"]] == [
        a.route_id, b.route_id]
    got = chats.store.chat_route(a.route_id)
    assert got is not None and got.state == "accepted" and got.accepted_at == chats.clock.now

    sent_before = len(chats.provider.sent("/2010"))
    chats.clock.advance(3)
    for route, text in ((a, "Hello Ann, your parcel arrives Thursday."),
                        (b, f"Hi Bob! Never send {CARD} here.")):
        r = post(emma, csrf, route.route_id, "reply", {"text": text})
        assert r.status_code == 200, r.text
        assert r.json()["sent"] is True
    assert chats.sent_to(ANN)[-1] == "Hello Ann, your parcel arrives Thursday."
    bob_got = chats.sent_to(BOB)[-1]
    assert bob_got.startswith("Hi Bob! Never send ") and not CARD_DIGITS.search(bob_got)
    assert len(chats.provider.sent("/2010")) == sent_before + 2
    got = chats.store.chat_route(a.route_id)
    assert got is not None and got.first_reply_at == chats.clock.now
    view = emma.get("/api/chats").json()
    assert view["chats"][0]["transcript"][-1]["text"] == (
        "Hello Ann, your parcel arrives Thursday.")
    assert not CARD_DIGITS.search(json.dumps(view))

    chats.clock.advance(60)
    r = post(emma, csrf, a.route_id, "close",
             {"wrap_up": f"Parcel Thursday; customer typed card {CARD}"})
    assert r.status_code == 200, r.text
    ended = chats.store.chat_route(a.route_id)
    assert ended is not None
    assert (ended.state, ended.ended_by, ended.ended_at) == ("ended", "agent", chats.clock.now)
    assert ended.wrap_up is not None and ended.wrap_up.startswith("Parcel Thursday; customer")
    assert not CARD_DIGITS.search(ended.wrap_up)
    # the chat is over for the customer: the text survey's one question (text.yaml)
    conv = chats.store.open_conversation("sms", ANN)
    assert conv is not None and conv.id == a.conversation_id and conv.state == "survey"
    assert chats.sent_to(ANN)[-1] == SURVEY
    assert [c["route_id"] for c in emma.get("/api/chats").json()["chats"]] == [b.route_id]

    assert [(rid, kind, agent, data) for rid, kind, agent, data in requests_of(chats)
            if kind != "route"] == [
        (a.route_id, "accept", "emma", {}), (b.route_id, "accept", "emma", {}),
        (a.route_id, "end", "emma", {"by": "agent"})]
    events = [(e, d) for _, e, d in chats.store.text_events(a.conversation_id)]
    assert [e for e, _ in events] == ["handed-to-person", "accepted", "ended", "closed"]
    assert events[1][1] == {"route_id": a.route_id, "agent": "emma"}
    assert events[2][1]["by"] == "agent" and events[2][1]["wrap_up"] == ended.wrap_up
    assert events[3][1] == {"route_id": a.route_id, "by": "agent", "survey": True}


def test_an_offer_that_has_passed_cannot_be_accepted(chats: ChatStack) -> None:
    route = offered(chats, ANN)
    emma, csrf = chats.login("emma")
    chats.clock.advance(OFFER_S - ACCEPT_MARGIN_S)  # the last 2 s are the router's
    before = snapshot(chats)
    r = post(emma, csrf, route.route_id, "accept")
    assert r.status_code == 409 and "the offer has passed" in r.json()["error"]
    assert snapshot(chats) == before
    # the router timed the offer out: back to waiting, nobody's
    time_out(chats.store, route.route_id, chats.clock.now)
    before = snapshot(chats)
    for action in ("accept", "pass"):
        r = post(emma, csrf, route.route_id, action)
        assert r.status_code == 409 and "the offer has passed" in r.json()["error"], r.text
    assert snapshot(chats) == before


def test_pass_lets_the_offer_go_to_the_next_agent(chats: ChatStack) -> None:
    route = offered(chats, ANN)
    emma, csrf = chats.login("emma")
    r = post(emma, csrf, route.route_id, "pass")
    assert r.status_code == 200 and r.json()["state"] == "waiting"
    got = chats.store.chat_route(route.route_id)
    assert got is not None and (got.state, got.agent_id) == ("waiting", None)
    assert requests_of(chats)[-1] == (route.route_id, "pass", "emma", {})
    assert chats.store.text_events(route.conversation_id)[-1][1:] == (
        "passed", {"route_id": route.route_id, "agent": "emma"})
    assert emma.get("/api/chats").json()["offers"] == []
    # the router offers it to chloe next; she accepts
    offer(chats.store, route.route_id, "chloe", chats.clock.now)
    chloe, c_csrf = chats.login("chloe")
    assert post(chloe, c_csrf, route.route_id, "accept").status_code == 200


def test_transfer_to_a_queue_makes_a_new_route_of_the_conversation(chats: ChatStack) -> None:
    route = offered(chats, ANN, text="agent: a refund for my invoice")
    emma, csrf = chats.login("emma")
    assert post(emma, csrf, route.route_id, "accept").status_code == 200
    before = snapshot(chats)
    for queue, why in (("tech", "not a queue serving sms"), ("nope", "not a queue serving")):
        r = post(emma, csrf, route.route_id, "transfer", {"queue": queue})
        assert r.status_code == 400 and why in r.json()["error"], r.text
    assert snapshot(chats) == before

    chats.clock.advance(40)
    r = post(emma, csrf, route.route_id, "transfer", {"queue": "billing",
                                                      "wrap_up": "wants a refund"})
    assert r.status_code == 200, r.text
    second = f"{route.conversation_id}#2"
    assert r.json() == {"route_id": route.route_id, "state": "ended", "to_route": second,
                        "queue": "billing"}
    first = chats.store.chat_route(route.route_id)
    assert first is not None and (first.state, first.ended_by, first.wrap_up) == (
        "ended", "transfer", "wants a refund")
    new = chats.store.chat_route(second)
    assert new is not None and (new.state, new.queue_id, new.agent_id, new.customer) == (
        "waiting", "billing", None, ANN)
    assert (new.language, new.intent) == (route.language, route.intent)
    reqs = requests_of(chats)
    assert reqs[-2] == (route.route_id, "end", "emma", {"by": "transfer"})
    assert reqs[-1][:2] == (second, "route") and reqs[-1][3]["queue_id"] == "billing"
    # the conversation stays open: the customer is still being served
    conv = chats.store.open_conversation("sms", ANN)
    assert conv is not None and conv.id == route.conversation_id
    assert chats.store.text_events(route.conversation_id)[-1][1:] == (
        "transferred", {"route_id": route.route_id, "agent": "emma", "queue": "billing",
                        "to_route": second, "wrap_up": "wants a refund"})
    assert emma.get("/api/chats").json()["chats"] == []


def test_agents_act_only_on_their_own_routes(chats: ChatStack) -> None:
    mine = offered(chats, ANN, agent="emma")
    theirs = offered(chats, BOB, agent="chloe")
    emma, csrf = chats.login("emma")
    chloe, c_csrf = chats.login("chloe")
    assert post(chloe, c_csrf, theirs.route_id, "accept").status_code == 200
    before = snapshot(chats)
    # emma on chloe's chat: 403, whatever the action
    for action, body in (("accept", {}), ("pass", {}), ("reply", {"text": "hi"}),
                         ("close", {}), ("transfer", {"queue": "general"})):
        r = post(emma, csrf, theirs.route_id, action, body)
        assert r.status_code == 403, (action, r.text)
    r = post(emma, csrf, "sms:+1:20260101T000000000000#1", "accept")
    assert r.status_code == 404
    assert [c["route_id"] for c in emma.get("/api/chats").json()["offers"]] == [mine.route_id]
    assert chloe.get("/api/chats").json()["offers"] == []
    # a supervisor takes no chats; an agent without chat capacity sees none
    sam, s_csrf = chats.login("sam")
    assert sam.get("/api/chats").status_code == 403
    assert post(sam, s_csrf, mine.route_id, "accept").status_code == 403
    alice, _ = chats.login("alice")
    assert alice.get("/api/chats").json()["takes_chats"] is False
    # without a session, or without the CSRF token, or cross-site
    anon = httpx.Client(base_url=chats.url, timeout=10.0)
    try:
        assert anon.get("/api/chats").status_code == 401
        assert anon.post(path_of(mine.route_id, "accept"), json={}).status_code == 401
    finally:
        anon.close()
    assert emma.post(path_of(mine.route_id, "accept"), json={}).status_code == 403
    assert emma.post(path_of(mine.route_id, "accept"), json={}, headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"}).status_code == 403
    assert snapshot(chats) == before


def test_bad_bodies_are_refused_and_change_nothing(chats: ChatStack) -> None:
    route = offered(chats, ANN)
    emma, csrf = chats.login("emma")
    before = snapshot(chats)
    # a reply before the chat is accepted
    r = post(emma, csrf, route.route_id, "reply", {"text": "hello"})
    assert r.status_code == 409 and "accept it first" in r.json()["error"]
    assert post(emma, csrf, route.route_id, "close").status_code == 409
    assert snapshot(chats) == before
    assert post(emma, csrf, route.route_id, "accept").status_code == 200
    before = snapshot(chats)
    h = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    cases = [
        (b"{not json", h, 400), (b'{"text": 5}', h, 400), (b'{"text": "  "}', h, 400),
        (b'{"text": "a", "extra": 1}', h, 400), (b'[]', h, 400),
        (json.dumps({"text": "x" * (MAX_REPLY + 1)}).encode(), h, 413),
        (b"x" * (64 * 1024 + 1), h, 413),
        (b'{"text": "hello"}', {"X-CSRF-Token": csrf, "Content-Type": "text/plain"}, 415),
    ]
    for body, headers, status in cases:
        r = emma.post(path_of(route.route_id, "reply"), content=body, headers=headers)
        assert r.status_code == status, (body[:30], r.status_code, r.text)
        assert "error" in r.json()
    r = post(emma, csrf, route.route_id, "close", {"wrap_up": "n" * 501})
    assert r.status_code == 413
    r = post(emma, csrf, route.route_id, "transfer", {"wrap_up": "no queue"})
    assert r.status_code == 400 and r.json()["field"] == "queue"
    r = post(emma, csrf, route.route_id, "accept")
    assert r.status_code == 409 and "accepted it already" in r.json()["error"]
    assert snapshot(chats) == before
    # and once closed, nothing more
    assert post(emma, csrf, route.route_id, "close").status_code == 200
    before = snapshot(chats)
    for action, body in (("reply", {"text": "hi"}), ("close", {}),
                         ("transfer", {"queue": "general"})):
        r = post(emma, csrf, route.route_id, action, body)
        assert r.status_code == 409 and "it is ended" in r.json()["error"], r.text
    assert snapshot(chats) == before


def test_the_event_stream_sends_the_view_when_it_changes(chats: ChatStack) -> None:
    emma, csrf = chats.login("emma")
    seen: list[dict[str, Any]] = []
    with emma.stream("GET", "/agent/chats/events", timeout=10.0) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        event = None
        route: ChatRoute | None = None
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "chats":
                seen.append(json.loads(line.removeprefix("data: ")))
                if len(seen) == 1:
                    assert seen[0]["offers"] == [] and seen[0]["chats"] == []
                    route = offered(chats, ANN)  # the router offers a chat meanwhile
                elif len(seen) == 2:
                    assert route is not None
                    assert [o["route_id"] for o in seen[1]["offers"]] == [route.route_id]
                    assert post(emma, csrf, route.route_id, "accept").status_code == 200
                else:
                    assert route is not None
                    assert [c["route_id"] for c in seen[2]["chats"]] == [route.route_id]
                    break
    assert len(seen) == 3


def test_the_agent_page_has_the_panel_only_where_chats_are_served(chats: ChatStack,
                                                                  tmp_path: Path) -> None:
    from web_testkit import running_portal

    emma, _ = chats.login("emma")
    page = emma.get("/agent")
    assert page.status_code == 200
    assert 'id="chat-panel"' in page.text and "/static/chats.js" in page.text
    # a server without text channels: no panel, no chat API
    with running_portal(tmp_path / "no-text") as portal:
        alice, _ = portal.login("alice")
        page = alice.get("/agent")
        assert page.status_code == 200 and 'id="chat-panel"' not in page.text
        assert "/static/chats.js" not in page.text
        assert alice.get("/api/chats").status_code == 404
