"""The chat panel in a real browser (headless Chromium, Playwright), over the app on
uvicorn with its text channels, SMS in through the signed webhook and replies out
to the local provider server; the router's side of the routes is written into the
store as the engine's chat executor writes it (chat_kit.offer)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_kit import CHROMIUM, chromium_contexts, screenshot
from chat_kit import ChatStack, offer, running_chat_stack

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium")

ANN, BOB = "+15550111", "+15550122"
CARD = "4111 1111 1111 1111"


@pytest.fixture()
def vendor_dir() -> Path:
    from homeline.provision.browser_libs import ensure_browser_libs

    return ensure_browser_libs()


@pytest.fixture()
def chats(tmp_path: Path, vendor_dir: Path) -> Iterator[ChatStack]:
    with running_chat_stack(tmp_path, idle_timeout_s=600, events_poll_s=0.2,
                            vendor_dir=vendor_dir) as s:
        yield s


def test_an_agent_takes_two_chats_in_the_browser(chats: ChatStack) -> None:
    from playwright.sync_api import expect

    taken: list[Path] = []
    problems: list[str] = []
    refused: list[tuple[int, str]] = []
    with chromium_contexts(viewport=(1400, 1000)) as new:
        page = new().new_page()
        page.set_default_timeout(10_000)
        # refused requests are console errors too: those are checked one by one
        page.on("console", lambda m: problems.append(m.text) if m.type == "error"
                and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: refused.append((r.status, r.url.removeprefix(chats.url)))
                if r.status >= 400 else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(chats.url + "/login")
        page.fill("input[name=user]", "emma")
        page.fill("input[name=password]", "emma-password")
        page.click("button[type=submit]")
        page.wait_for_url("**/agent")
        expect(page.locator("#chat-panel")).to_be_visible()
        expect(page.locator("#no-offers")).to_be_visible()

        chats.sms("agent", "SM-ann", ANN)
        chats.sms(f"agent please, card {CARD}", "SM-bob", BOB)
        for customer in (ANN, BOB):
            offer(chats.store, chats.waiting_route(customer).route_id, "emma", chats.clock.now)
        offers = page.locator("li.chat-offer")
        expect(offers).to_have_count(2)
        expect(offers.nth(0).locator(".countdown")).to_have_text(re.compile(r"^\d+ s to accept$"))
        expect(offers.nth(1)).to_contain_text("card")
        taken.append(screenshot(page, "chat-01-two-offers"))
        for _ in range(2):
            page.locator("li.chat-offer button.accept").first.click()
        cards = page.locator("article.chat")
        expect(cards).to_have_count(2)
        expect(offers).to_have_count(0)
        ann = page.locator("article.chat").filter(has_text=ANN)
        bob = page.locator("article.chat").filter(has_text=BOB)
        bob.locator("select.suggestion").select_option(index=1)
        bob.locator("textarea.reply-text").fill(
            bob.locator("textarea.reply-text").input_value() + " (Bob)")
        bob.locator("button.send").click()
        ann.locator("textarea.reply-text").fill("Hello Ann, how can I help?")
        ann.locator("button.send").click()
        expect(ann.locator("ol.transcript li.out").last).to_contain_text("Hello Ann")
        expect(bob.locator("ol.transcript li.out").last).to_contain_text("(Bob)")
        assert "4111" not in bob.inner_text()
        taken.append(screenshot(page, "chat-02-two-chats"))
        ann.locator("input.wrap-up").fill("Greeted, nothing else needed")
        ann.locator("button.close-chat").click()
        expect(cards).to_have_count(1)
        taken.append(screenshot(page, "chat-03-one-closed"))
    assert chats.sent_to(ANN)[-2:] == ["Hello Ann, how can I help?",
                                       "This conversation is closed. Write again any time."]
    assert chats.sent_to(BOB)[-1].endswith("(Bob)")
    assert problems == [], problems
    assert refused == [(404, "/api/agents/emma/phone")], refused  # no WebRTC phone here
