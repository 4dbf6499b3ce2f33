"""The agent portal's chat panel in a real browser, on the real path (issue 11).

A real Asterisk, the engine with its chat executor, the web app with its text
channels, emma's real softphone registered (so the router has her available, in
her hours); two customers text "agent" through the SMS webhook (real HTTP, a
valid X-Twilio-Signature); the router offers both chats to emma (sms capacity 3,
as dialplans/agents.yaml gives her). In headless Chromium (Playwright) she accepts
both, replies in both from the reply box (one prefilled from a suggestion and
edited), and closes one with a wrap-up note. The local server playing the SMS
provider receives both replies; the store shows the route ended with the note, and
Ann is asked the text survey's question; the router (its saved snapshot) holds the
other chat.
Screenshots go to ``$HOMELINE_TEST_ARTIFACTS/screenshots``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from browser_kit import chromium_contexts, screenshot
from provider_kit import Provider, provider_text_config, start_provider, write_text_config

from homeline.paths import DIALPLANS_DIR
from routing import load_directory
from store.chats import ChatRoute
from web.webhooks import twilio_signature

from .conftest import Live, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

TOKEN = "twilio-auth-token-for-the-chat-panel"
SMS_OUT = "/2010-04-01/Accounts/"
PASSWORD = "emma-password-1"
ANN, BOB = "+15550311", "+15550322"
CARD = "4111 1111 1111 1111"
SURVEY = "How did we do? Reply with a number from 1 (poor) to 5 (great)."


def emma_spec() -> dict[str, Any]:
    """emma as dialplans/agents.yaml has her (languages, skills, chat capacity, mix);
    her hours are a window open now (the test runs on the real clock)."""
    emma = load_directory(DIALPLANS_DIR / "agents.yaml").agent("emma")
    assert emma.capacity.get("sms", 0) >= 2
    return {"skills": dict(emma.skills), "languages": dict(emma.languages),
            "capacity": dict(emma.capacity), "max_chats": emma.max_chats, "mix": emma.mix}


def text_config(tmp_path: Path, provider: Provider) -> Path:
    return write_text_config(provider_text_config(provider), tmp_path / "text.yaml")


@pytest.fixture
def provider() -> Iterator[Provider]:
    server, got = start_provider()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def sms(client: httpx.Client, url: str, sender: str, body: str, sid: str) -> None:
    params = {"From": sender, "To": "+15550100", "Body": body, "MessageSid": sid}
    sig = twilio_signature(TOKEN, f"{url}/webhooks/sms", list(params.items()))
    r = client.post("/webhooks/sms", content=urlencode(params),
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "X-Twilio-Signature": sig})
    assert r.status_code == 200, r.text


def replies_to(provider: Provider, customer: str) -> list[str]:
    return [r.form()["Body"] for r in provider.sent(SMS_OUT) if r.form().get("To") == customer]


def route_of(live: Live, customer: str) -> ChatRoute | None:
    assert live.store is not None
    got = [r for r in live.store.chat_routes() if r.customer == customer]
    return got[-1] if got else None


def test_an_agent_accepts_two_chats_replies_in_both_and_closes_one(
        live_factory: Callable[..., Live], provider: Provider, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from web import Passwords

    live = live_factory({"emma": emma_spec()}, ring_timeout_s=20,
                        queues={"general": {"channels": ["voice", "sms", "messenger"]}},
                        text_config=text_config(tmp_path, provider))
    live.stack.secrets.set("sms:auth_token", TOKEN)
    assert live.store is not None
    store = live.store
    store.add_user("emma", "agent", "emma", Passwords().hash(PASSWORD), datetime.now(UTC))
    web = live.stack.start_web(store, https=False, say=lambda _m: None)
    live.agent("emma")
    live.wait_registered("emma")
    taken: list[Path] = []
    problems: list[str] = []
    refused: list[tuple[int, str]] = []
    with chromium_contexts(viewport=(1400, 1000)) as new, \
            httpx.Client(base_url=web.url, timeout=10.0) as hooks:
        page = new().new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: refused.append((r.status, r.url.removeprefix(web.url)))
                if r.status >= 400 else None)
        page.goto(web.url + "/login")
        page.fill("input[name=user]", "emma")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/agent")
        expect(page.locator("#chat-panel")).to_be_visible()
        expect(page.locator("#state-name")).to_have_text("available")

        # two customers ask for a person; the router offers both chats to emma
        sms(hooks, web.url, ANN, "agent", "SM-ann-1")
        sms(hooks, web.url, BOB, f"I need a person, my card is {CARD}", "SM-bob-1")
        offers = page.locator("li.chat-offer")
        expect(offers).to_have_count(2)
        for who in (ANN, BOB):
            route = route_of(live, who)
            assert route is not None and (route.state, route.agent_id) == ("offered", "emma")
        expect(offers.first.locator(".countdown")).to_have_text(re.compile(r"^\d+ s to accept$"))
        bob_offer = offers.filter(has_text=BOB)
        expect(bob_offer).to_contain_text("[card number removed]")
        taken.append(screenshot(page, "chatpanel-01-two-offers"))

        # she accepts both: side by side, each with its transcript
        bob_offer.locator("button.accept").click()
        offers.filter(has_text=ANN).locator("button.accept").click()
        cards = page.locator("article.chat")
        expect(cards).to_have_count(2)
        expect(offers).to_have_count(0)
        ann, bob = cards.filter(has_text=ANN), cards.filter(has_text=BOB)
        expect(ann.locator("ol.transcript li.in").first).to_have_text(re.compile(r"agent$"))
        expect(bob.locator("ol.transcript")).to_contain_text("[card number removed]")
        assert "4111" not in bob.inner_text()

        # a reply in each: Bob's prefilled from a suggestion and edited first
        bob.locator("select.suggestion").select_option(
            "Hello, thanks for writing. Let me look into this for you.")
        box = bob.locator("textarea.reply-text")
        expect(box).to_have_value("Hello, thanks for writing. Let me look into this for you.")
        box.fill(box.input_value().replace("Hello,", "Hello Bob,"))
        bob.locator("button.send").click()
        ann.locator("textarea.reply-text").fill("Hi Ann, Emma here. How can I help?")
        ann.locator("button.send").click()
        expect(bob.locator("ol.transcript li.out").last).to_contain_text("Hello Bob, thanks")
        expect(ann.locator("ol.transcript li.out").last).to_contain_text("Emma here")
        assert wait_for(lambda: "Hi Ann, Emma here. How can I help?"
                        in replies_to(provider, ANN), 10), replies_to(provider, ANN)
        assert wait_for(lambda: "Hello Bob, thanks for writing. Let me look into this for you."
                        in replies_to(provider, BOB), 10), replies_to(provider, BOB)
        # chats are no call: the state above shows none (the phone is free)
        expect(page.locator("#state")).not_to_contain_text(ANN)
        expect(page.locator("#state")).not_to_contain_text(BOB)
        taken.append(screenshot(page, "chatpanel-02-two-chats-replied"))

        # the router holds both chats as emma's (the engine read her accepts)
        def connected() -> set[str]:
            snap = store.load_router_snapshot()
            return {c.arrival.caller for c in snap.calls
                    if c.agent == "emma" and c.phase == "connected"} if snap else set()
        assert wait_for(lambda: connected() == {ANN, BOB}, 10), connected()

        # she closes Ann's chat with a wrap-up note
        ann.locator("input.wrap-up").fill("Greeted; Ann will write again with her order")
        ann.locator("button.close-chat").click()
        expect(cards).to_have_count(1)
        expect(cards.first).to_contain_text(BOB)
        taken.append(screenshot(page, "chatpanel-03-one-closed"))

        ended = route_of(live, ANN)
        assert ended is not None
        assert (ended.state, ended.ended_by, ended.agent_id) == ("ended", "agent", "emma")
        assert ended.wrap_up == "Greeted; Ann will write again with her order"
        assert ended.accepted_at is not None and ended.first_reply_at is not None
        # the chat is over for Ann: the text survey's question (text.yaml), then closed
        conv = store.open_conversation("sms", ANN)
        assert conv is not None and conv.state == "survey"
        assert wait_for(lambda: replies_to(provider, ANN)[-1:] == [SURVEY], 10), \
            replies_to(provider, ANN)
        # the engine saw the end: Ann's chat leaves emma, Bob's stays
        assert wait_for(lambda: connected() == {BOB}, 10), connected()
        still = route_of(live, BOB)
        assert still is not None and still.state == "accepted"
        events = [e for _, e, _ in store.text_events(ended.conversation_id)]
        assert events[0] == "handed-to-person" and "offered" in events
        assert events.index("offered") < events.index("accepted") < events.index("ended")
        assert "offer-passed" not in events
    live.stack.stop_web()
    assert problems == [], problems
    # only the phone in the page (emma's is a udp softphone, no WebRTC endpoint)
    assert refused == [(404, "/api/agents/emma/phone")], refused
    for p in taken:
        assert p.is_file() and p.stat().st_size > 5000, p
