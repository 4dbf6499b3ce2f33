"""The wallboard's rows per text channel: the live event stream over real HTTP and the
page in headless Chromium, from chat routes in a real store.

Today (NOW 06:00 UTC, the shipped directory: general serves voice, sms, messenger):
an SMS chat routed at 05:40, accepted by chloe 10 s later, first reply at 30 s, ended
at 5 min (handle 290 s); an SMS routed at 05:50 that ended unanswered (abandoned); a
Messenger chat routed at 05:55 still waiting (open).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_testkit import NOW, USERS, Portal, running_portal

from store import SqliteStore


def _fill(store: SqliteStore) -> None:
    t = NOW - timedelta(minutes=20)
    r = store.route_chat("sms:+15550123:1", "sms", "+15550123", "general", "en", None, t)
    assert store.update_chat_route(r.route_id, t + timedelta(seconds=10), state="accepted",
                                   agent_id="chloe", accepted_at=t + timedelta(seconds=10))
    assert store.update_chat_route(r.route_id, t + timedelta(seconds=30),
                                   first_reply_at=t + timedelta(seconds=30))
    assert store.update_chat_route(r.route_id, t + timedelta(seconds=300), state="ended",
                                   ended_at=t + timedelta(seconds=300), ended_by="agent")
    t2 = NOW - timedelta(minutes=10)
    r2 = store.route_chat("sms:+15550124:1", "sms", "+15550124", "general", "en", None, t2)
    assert store.update_chat_route(r2.route_id, t2 + timedelta(seconds=60), state="ended",
                                   ended_at=t2 + timedelta(seconds=60), ended_by="customer")
    store.route_chat("messenger:psid-1:1", "messenger", "psid-1", "general", "fr", None,
                     NOW - timedelta(minutes=5))


SMS = {"open_now": 0, "offered": 2, "accepted": 1, "abandoned": 1,
       "first_response_avg_s": 30.0, "first_response_p90_s": 30.0, "handle_avg_s": 290.0}
MESSENGER = {"open_now": 1, "offered": 1, "accepted": 0, "abandoned": 0,
             "first_response_avg_s": None, "first_response_p90_s": None, "handle_avg_s": None}


@pytest.fixture()
def portal(tmp_path: Path) -> Iterator[Portal]:
    with running_portal(tmp_path) as p:
        _fill(p.store)
        yield p


def _first_live(client: httpx.Client) -> dict[str, Any]:
    with client.stream("GET", "/wallboard/events", timeout=10.0) as r:
        assert r.status_code == 200
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "live":
                return dict(json.loads(line[6:]))
    raise AssertionError("no live event")


def test_the_live_events_carry_a_row_per_channel(portal: Portal) -> None:
    sup, _ = portal.login("sam")
    r = sup.get("/wallboard")
    assert r.status_code == 200 and 'id="ch-sms"' in r.text and 'id="ch-messenger"' in r.text
    view = _first_live(sup)
    assert view["channels"] == {"sms": SMS, "messenger": MESSENGER}


def test_the_board_shows_the_channels_in_a_browser(portal: Portal) -> None:
    from browser_kit import chromium_contexts, screenshot
    from playwright.sync_api import expect

    problems: list[str] = []
    with chromium_contexts(viewport=(1600, 1000)) as new:
        page = new().new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(portal.url + "/login")
        page.fill("input[name=user]", "sam")
        page.fill("input[name=password]", USERS["sam"][2])
        page.click("button[type=submit]")
        page.wait_for_url("**/supervisor")
        page.goto(portal.url + "/wallboard")
        expect(page.locator("#wb-live")).to_have_text("live", timeout=10_000)
        sms, msg = page.locator("#ch-sms"), page.locator("#ch-messenger")
        expect(sms.locator("th")).to_have_text("SMS")
        expect(sms.locator(".c-offered")).to_have_text("2")
        expect(sms.locator(".c-accepted")).to_have_text("1")
        expect(sms.locator(".c-abandoned")).to_have_text("1")
        expect(sms.locator(".c-first")).to_have_text("0:30")
        expect(sms.locator(".c-handle")).to_have_text("4:50")
        expect(msg.locator(".c-open")).to_have_text("1")
        expect(msg.locator(".c-first")).to_have_text("-")
        time.sleep(0.2)  # let the layout settle for the picture
        shot = screenshot(page, "wallboard-text-channels")
        assert shot.stat().st_size > 10_000
    assert problems == []
