"""The supervisor desk in a real browser on a real call, proven by audio.

A caller reaches agent amy through the IVR (real Asterisk, pjsua2 phones, the
engine). In headless Chromium (Playwright), amy raises a hand in the portal with
a short text; supervisor sam's desk shows it with the call it is about; he picks
it up and replies (amy's page shows both), then clicks Whisper on the hand. The
engine rings sam's own softphone, ChanSpy joins him to amy's leg, and the DTMF
probes prove it: amy hears sam's probe, the caller does not. Then Listen (neither
hears him) and Barge (both do) from the agents table, on the same call. Every
action is in the call's record. Screenshots go to ``$HOMELINE_TEST_ARTIFACTS/screenshots``
(default ``test-artifacts/screenshots``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from browser_kit import chromium_contexts, screenshot

from homeline.supervisors import Supervisor

from .conftest import Live, wait_for
from .test_supervise import SUPERVISOR_PROBE, connected_call, probe_round

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"amy": "amy-password-1", "sam": "sam-password-1"}


@pytest.fixture()
def browser_factory() -> Iterator[Callable[[], Any]]:
    """Browser contexts, each a Chromium of its own with a temporary profile; all
    closed (Playwright waits for the processes) and removed at the end."""
    with chromium_contexts(viewport=(1280, 900)) as new:
        yield new


def shot(page: Any, name: str, taken: list[Path]) -> None:
    taken.append(screenshot(page, name))


def log_in(ctx: Any, url: str, user: str, watch: Callable[[Any], None]) -> Any:
    page = ctx.new_page()
    watch(page)
    page.set_default_timeout(15_000)
    page.goto(url + "/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url("**/supervisor" if user == "sam" else "**/agent")
    return page


def watch(page: Any, problems: list[str], refused: list[tuple[int, str]], url: str) -> None:
    """Script errors and CSP violations; refused requests are checked one by one."""
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: refused.append((r.status, r.url.removeprefix(url)))
            if r.status >= 400 else None)


def serve_desk(live: Live) -> Any:
    """amy (agent) and sam (supervisor) as web users; the web app of the stack over
    HTTP on 127.0.0.1 (a secure context for the browser all the same)."""
    from web import Passwords

    assert live.store is not None
    now = datetime.now(UTC)
    hasher = Passwords()
    live.store.add_user("amy", "agent", "amy", hasher.hash(PASSWORDS["amy"]), now)
    live.store.add_user("sam", "supervisor", None, hasher.hash(PASSWORDS["sam"]), now)
    return live.stack.start_web(live.store, port=0, https=False, say=lambda _m: None)


def test_a_raised_hand_becomes_a_whisper_the_agent_hears_and_the_caller_does_not(
        live_factory: Callable[..., Live], browser_factory: Callable[[], Any]) -> None:
    from playwright.sync_api import expect

    live = live_factory({"amy": {"skills": {"billing": 4}}},
                        supervisors=(Supervisor("sam", "Sam Lead"),))
    web = serve_desk(live)
    live.agent("amy", answer_delay=0.3)
    sam_phone = live.agent("sam", answer_delay=0.2)
    live.wait_registered("amy")
    taken: list[Path] = []
    problems: list[str] = []
    refused: list[tuple[int, str]] = []

    caller, leg, agent_leg, timeline = connected_call(live, "+15550311")
    call_id = timeline.call_id
    with caller:
        # amy, on the call, raises a hand in the portal
        def watching(page: Any) -> None:
            watch(page, problems, refused, web.url)

        amy = log_in(browser_factory(), web.url, "amy", watching)
        expect(amy.locator("#state-name")).to_have_text("on a call")
        expect(amy.locator("#hand-status")).to_have_text("No hand raised.")
        amy.fill("#hand-text", "Caller disputes a charge")
        amy.click("#raise-hand")
        expect(amy.locator("#hand-status")).to_contain_text("Waiting for a supervisor")
        expect(amy.locator("#hand-status")).to_contain_text("(about your call)")
        shot(amy, "desk-01-agent-raised-hand", taken)

        # sam's desk shows it, with the call it is about
        sam = log_in(browser_factory(), web.url, "sam", watching)
        hand = sam.locator('li.hand[data-agent="amy"]')
        expect(hand).to_contain_text("Caller disputes a charge")
        expect(hand.locator(".hand-call")).to_contain_text(call_id)
        expect(hand.locator(".hand-call")).to_contain_text("queue billing")
        expect(hand.locator(".hand-call")).to_contain_text("language en")
        expect(hand.locator(".hand-call")).to_contain_text("live: connected")
        expect(hand.locator(".agent-state")).to_have_text("(on a call)")
        row = sam.locator('#desk-agents tr[data-agent="amy"]')
        expect(row.locator(".agent-call")).to_contain_text("+15550311")
        expect(sam.locator("#my-phone")).to_contain_text("PJSIP/sam")
        shot(sam, "desk-02-supervisor-sees-hand", taken)

        # picked up and answered: amy's page shows both
        hand.locator("button.pick-up").click()
        expect(amy.locator("#hand-picked")).to_have_text("Picked up by sam")
        hand = sam.locator('li.hand[data-agent="amy"]')
        hand.locator("input.reply-text").fill("Listening in now, offer the voucher")
        hand.locator("button.reply").click()
        expect(amy.locator("#hand-reply")).to_contain_text("offer the voucher")
        shot(amy, "desk-03-agent-sees-reply", taken)

        # whisper, from the hand: sam's own phone rings and joins amy's leg
        sam.locator('li.hand[data-agent="amy"] button.spy[data-mode="whisper"]').click()
        expect(sam.locator("#desk-said")).to_contain_text("your phone (PJSIP/sam) rings")
        sam_leg = sam_phone.wait_call(15)
        sam_leg.wait_confirmed(10)
        wait_for(lambda: False, 1.0)  # ChanSpy attaches once the channel runs the app
        heard = probe_round(live.work, "browser-whisper",
                            {"supervisor": sam_leg, "caller": leg, "agent": agent_leg})
        detail = {who: {p: h.detail for p, h in got.items()} for who, got in heard.items()}
        assert heard["agent"]["supervisor"].ok, detail  # amy hears sam
        assert not heard["caller"]["supervisor"].ok, detail  # the caller does not
        assert not set(heard["caller"]["supervisor"].heard) & set(SUPERVISOR_PROBE), detail
        assert heard["supervisor"]["caller"].ok and heard["supervisor"]["agent"].ok, detail
        assert heard["caller"]["agent"].ok and heard["agent"]["caller"].ok, detail
        expect(sam.locator('#desk-agents tr[data-agent="amy"] .supervised')).to_contain_text(
            "whisper by sam")
        shot(sam, "desk-04-supervisor-whispering", taken)
        sam_leg.hangup()
        sam_leg.wait_disconnected(10)

        # listen and barge likewise, from the agents table, on the same call
        expect_heard = {"listen": (False, False), "barge": (True, True)}
        for index, mode in enumerate(("listen", "barge"), start=1):
            sam.locator(f'#desk-agents tr[data-agent="amy"] button.spy[data-mode="{mode}"]'
                        ).click()
            expect(sam.locator("#desk-said")).to_contain_text(f"{mode} on amy's call")
            sam_leg = sam_phone.wait_call(15, index=index)
            sam_leg.wait_confirmed(10)
            wait_for(lambda: False, 1.0)
            heard = probe_round(live.work, f"browser-{mode}",
                                {"supervisor": sam_leg, "caller": leg, "agent": agent_leg})
            detail = {who: {p: h.detail for p, h in got.items()}
                      for who, got in heard.items()}
            agent_hears, caller_hears = expect_heard[mode]
            assert heard["agent"]["supervisor"].ok is agent_hears, (mode, detail)
            assert heard["caller"]["supervisor"].ok is caller_hears, (mode, detail)
            assert heard["supervisor"]["caller"].ok and heard["supervisor"]["agent"].ok, \
                (mode, detail)
            expect(sam.locator('#desk-agents tr[data-agent="amy"] .supervised')
                   ).to_contain_text(f"{mode} by sam")
            sam_leg.hangup()
            sam_leg.wait_disconnected(10)
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)
        # the call leaves the desk
        expect(sam.locator('#desk-agents tr[data-agent="amy"] .agent-call')).to_have_text("-")
        shot(sam, "desk-05-call-over", taken)

    events = wait_for(lambda: [dict(e.data) for e in
                               live.store.call_events([call_id])[call_id]  # type: ignore[union-attr]
                               if e.event == "supervisor"], 5)
    assert [(e["action"], e["by"], e.get("result")) for e in events] == [
        ("hand-raised", "amy", None), ("hand-picked-up", "sam", None),
        ("hand-replied", "sam", None),
        *[(mode, "sam", result) for mode in ("whisper", "listen", "barge")
          for result in ("ringing-supervisor", "joined")]], events
    assert problems == [], problems
    # only the phone in amy's page (no WebRTC endpoint here: a udp softphone)
    assert refused == [(404, "/api/agents/amy/phone")], refused
    for p in taken:
        assert p.is_file() and p.stat().st_size > 5000, p
