"""The agent portal in a real browser: Debian's headless Chromium driven by Playwright,
against the app on uvicorn on 127.0.0.1.

An agent logs in, goes on break and available (the state shown live, from the
event stream), changes hours (and is refused with the reason and [code]), sees
the caller's context for a call the real router core offered and the store
recorded the way the engine records it, never a secure value, nothing in the
browser's storage, and logs out. The router core (`routing.router.Router`) stands
in for the engine's router thread: it reads the agent's requests from the store
and saves its state there, as `homeline.engine` does (``_poll_store``,
``_save_changes``). Screenshots go to ``$HOMELINE_TEST_ARTIFACTS/screenshots``
(default ``test-artifacts/screenshots`` in the repository, git-ignored).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_kit import CHROMIUM, chromium_contexts, screenshot
from pg_kit import StoreMaker
from playwright.sync_api import expect
from web_testkit import USERS, Portal, running_portal

from homeline.paths import DIALPLANS_DIR
from homeline.stack import free_port
from ivr.loader import load_flow
from routing.events import (
    AgentEndedWrapUp,
    AgentRegistered,
    CallArrived,
    CallEnded,
    OfferAnswered,
)
from routing.router import Router
from store import CallRecord
from web import PhoneSettings

WED_EVENING = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)  # 18:30 in Paris: alice's window
SECURE_ACCOUNT = "40012345"  # what the caller typed at the flow's secure collect node
CALLER = "+33123456789"

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason="needs Debian's chromium (/usr/bin/chromium): "
                                       "scripts/bootstrap.sh installs it")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def vendor_dir() -> Path:
    from homeline.provision.browser_libs import ensure_browser_libs

    return ensure_browser_libs()  # `homeline setup` did it already: a stat or two


@pytest.fixture(scope="module")
def browser_factory() -> Iterator[Callable[[], Any]]:
    """New browser contexts, each in a Chromium of its own with a new, temporary
    user-data-dir; all closed and removed at the end."""
    with chromium_contexts() as new:
        yield new


class EngineRouter:
    """The router core fed and saved as the engine's router thread does it."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        directory = portal.store.apply_hours(portal.directory)
        self.router = Router(directory, now=portal.clock())
        self.hours_seq = portal.store.hours_seq()
        self.requests_seq = portal.store.agent_requests_seq()

    def handle(self, *events: Any) -> list[Any]:
        out = []
        for ev in events:
            out += self.router.handle(ev, self.portal.clock())
        self.portal.store.save_router_changes(self.router.snapshot_changes(self.portal.clock()))
        return out

    def poll(self, want: int = 1, timeout_s: float = 10.0) -> list[Any]:
        """Wait for ``want`` new agent requests in the store, then apply them (and any
        hours changes) as ``Engine._poll_store`` does."""
        deadline = time.monotonic() + timeout_s
        while self.portal.store.agent_requests_seq() < self.requests_seq + want:
            assert time.monotonic() < deadline, "the page's request never reached the store"
            time.sleep(0.05)
        hours, self.hours_seq = self.portal.store.hours_events_since(self.hours_seq)
        requests, self.requests_seq = self.portal.store.agent_requests_since(self.requests_seq)
        self.handle(*hours, *requests)
        return [*hours, *requests]


def shot(page: Any, name: str, taken: list[Path]) -> None:
    taken.append(screenshot(page, name))


def record_ivr(portal: Portal, call_id: str, at: datetime) -> None:
    """The IVR's part of the call record as `Engine._record_ivr` writes it: only the
    flow's record_variables, and the ivr-ended event with the path (node ids)."""
    flow = load_flow(DIALPLANS_DIR / "flows" / "support-line.yaml")
    variables = {"account": SECURE_ACCOUNT, "crm_tier": "Gold", "customer_tier": "gold",
                 "account_verified": "yes", "intent": "billing"}
    keep = set(flow.record_variables)
    assert "account" not in keep  # the flow loader refuses a secure record variable
    portal.store.record_call(CallRecord(
        call_id, caller=CALLER, arrived_at=at, intent="billing", language="fr",
        flow="support-line", flow_version="2",
        variables={k: v for k, v in variables.items() if k in keep}, queue_id="billing"))
    portal.store.add_call_event(call_id, at + timedelta(seconds=40), "ivr-ended", None, {
        "outcome": "routed", "path": ["welcome", "hours-check", "find-customer", "customer-tier",
                                      "mark-priority", "choose-language", "main-menu",
                                      "account-number", "verify-account", "account-ok",
                                      "billing"]})


def earlier_calls(portal: Portal) -> None:
    """Two earlier calls from the same number, one answered by alice, as the engine
    records them (its handled time also feeds the fairness figure)."""
    t = WED_EVENING - timedelta(days=2, hours=1)
    portal.store.record_call(CallRecord("c-01", queue_id="billing", agent_id="alice",
                                        caller=CALLER, arrived_at=t, answered_at=t + timedelta(
                                            seconds=30), ended_at=t + timedelta(minutes=6),
                                        outcome="completed", intent="payment-date",
                                        language="fr"))
    t2 = WED_EVENING - timedelta(days=1, hours=3)
    portal.store.record_call(CallRecord("c-02", queue_id="billing", caller=CALLER, arrived_at=t2,
                                        ended_at=t2 + timedelta(minutes=2), outcome="abandoned",
                                        intent="billing", language="fr"))


def forecast_csv(tmp_path: Path) -> Path:
    path = tmp_path / "forecast.csv"
    rows = ["interval,skill,calls,aht_s"]
    rows += [f"Thu {h:02d}:{m:02d},billing,40,240" for h in (10, 11) for m in (0, 30)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


# ---------------------------------------------------------------- the agent's day

def test_an_agent_works_a_shift_in_the_portal(tmp_path: Path, vendor_dir: Path,
                                              browser_factory: Callable[[], Any],
                                              make_store: StoreMaker) -> None:
    """The whole shift on each store (SQLite, PostgreSQL: `make_store`'s backend)."""
    taken: list[Path] = []
    prefix = "" if make_store.backend == "sqlite" else f"{make_store.backend}-"
    with running_portal(tmp_path, now=WED_EVENING, vendor_dir=vendor_dir, events_poll_s=0.2,
                        forecast=forecast_csv(tmp_path),
                        store_address=make_store.address()) as portal:
        engine = EngineRouter(portal)
        earlier_calls(portal)
        ctx = browser_factory()
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        problems: list[str] = []
        refused: list[tuple[int, str]] = []
        # a refused request is also a console error; those are checked one by one below
        page.on("console", lambda m: problems.append(m.text) if m.type == "error"
                and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: refused.append((r.status, r.url.removeprefix(portal.url)))
                if r.status >= 400 else None)

        # log in
        page.goto(portal.url + "/")
        assert page.url.endswith("/login")
        page.fill("input[name=user]", "alice")
        page.fill("input[name=password]", USERS["alice"][2])
        shot(page, prefix + "01-login", taken)
        page.click("button[type=submit]")
        page.wait_for_url("**/agent")
        assert "alice" in text(page, "#who")
        assert text(page, "#state-name") == "unknown"  # no engine state saved yet

        # the softphone registers: the router makes alice available, the page follows
        engine.handle(AgentRegistered("alice"))
        expect(page.locator("#state-name")).to_have_text("available")
        # break with a reason, then available again, through the page's buttons
        page.select_option("#break-reason", "lunch")
        page.click("button[data-state=break]")
        assert [type(e).__name__ for e in engine.poll()] == ["AgentWentOnBreak"]
        expect(page.locator("#state-name")).to_have_text("break")
        assert "break (lunch)" in text(page, "#state-asked")
        page.click("button[data-state=available]")
        engine.poll()
        expect(page.locator("#state-name")).to_have_text("available")
        # the timer counts on in the page
        expect(page.locator(".timer")).to_have_text(re.compile(r"^0:0[1-9]$"))
        shot(page, prefix + "02-available", taken)
        assert "not configured" in text(page, "#phone-status")  # no WebRTC endpoints yet

        # My hours: the week in her zone, the budget, open slots, fairness
        resp = page.goto(portal.url + "/agent/hours")
        assert resp is not None and resp.headers["cache-control"] == "no-store"
        assert "Wed 18:00-21:00" in text(page, "#windows")
        assert "18:00-21:00" in text(page, "#week td.today")
        assert text(page, "#weekly-hours") == "10"
        slots = text(page, "#open-slots")
        assert "billing" in slots and "Thu 10:00-12:00" in slots
        assert "min per signed-up hour" in text(page, "#fair-figure")
        # add a window
        page.select_option("#add-window select[name=day]", "Fri")
        page.fill("#add-window input[name=start]", "09:00")
        page.fill("#add-window input[name=end]", "12:00")
        page.click("#add-window button[type=submit]")
        page.wait_for_selector('#windows tr[data-window="Fri 09:00-12:00"]')
        assert text(page, "#weekly-hours") == "13"
        # move it (Fri 09:00-12:00 -> Fri 13:00-16:00)
        row = page.locator('#windows tr[data-window="Fri 09:00-12:00"]')
        row.locator("input[name=start]").fill("13:00")
        row.locator("input[name=end]").fill("16:00")
        row.locator("button[type=submit]").click()
        page.wait_for_selector('#windows tr[data-window="Fri 13:00-16:00"]')
        assert page.locator('#windows tr[data-window="Fri 09:00-12:00"]').count() == 0
        # cancel it
        page.locator('#windows tr[data-window="Fri 13:00-16:00"] button.cancel-window').click()
        page.wait_for_selector('#windows tr[data-window="Fri 13:00-16:00"]', state="detached")
        assert text(page, "#weekly-hours") == "10"
        # refused: over 30 h a week
        page.select_option("#add-window select[name=day]", "Sun")
        page.fill("#add-window input[name=start]", "00:00")
        page.fill("#add-window input[name=end]", "23:30")
        page.click("#add-window button[type=submit]")
        page.wait_for_selector("#hours-refusal:not([hidden])")
        refusal = text(page, "#refusal-problems")
        assert "[budget-over]" in refusal and "30" in refusal, refusal
        # refused: tonight's window is inside the 12 h notice
        page.locator('#windows tr[data-window="Wed 18:00-21:00"] button.cancel-window').click()
        expect(page.locator("#refusal-problems")).to_contain_text("[notice]")
        assert "notice" in text(page, "#refusal-problems")
        shot(page, prefix + "03-hours-refused", taken)
        assert [str(w) for w in portal.store.hours("alice")[0]] == [  # type: ignore[index]
            "Mon 18:00-21:00", "Wed 18:00-21:00", "Sat 09:00-13:00"]
        # sign up for the open slot the staffing plan shows
        page.click("button.sign-up")
        page.wait_for_selector('#windows tr[data-window="Thu 10:00-12:00"]')
        assert text(page, "#weekly-hours") == "12"
        engine.poll(want=0)  # the hours change reaches the router, as in the engine

        # a call: the IVR records, the router offers it to alice, she answers
        page.goto(portal.url + "/agent/caller")
        assert "No call for you" in text(page, "#caller-context")
        t = portal.clock()
        record_ivr(portal, "c-17", t - timedelta(seconds=50))
        decisions = engine.handle(CallArrived("c-17", "billing", "fr", "billing", CALLER,
                                              data=(("customer_tier", "gold"),)))
        assert any(type(d).__name__ == "OfferCall" and d.agent_id == "alice" for d in decisions)
        portal.clock.advance(5)
        engine.handle(OfferAnswered("c-17", "alice"))
        page.wait_for_selector("#caller-number")
        expect(page.locator("#state-name")).to_have_text("on a call")
        assert text(page, "#caller-number") == CALLER
        assert (text(page, "#caller-intent"), text(page, "#caller-language")) == ("billing", "fr")
        path = text(page, "#ivr-path")
        assert "find-customer" in path and "account-number" in path and "verify-account" in path
        data = text(page, "#caller-data")
        assert "customer_tier" in data and "gold" in data and "account_verified" in data
        previous = text(page, "#previous")
        assert "payment-date" in previous and "abandoned" in previous and "alice" in previous
        resp = page.reload()
        assert resp is not None and resp.headers["cache-control"] == "no-store"
        page.wait_for_selector("#caller-number")
        shot(page, prefix + "04-current-caller", taken)
        html = page.content()
        assert SECURE_ACCOUNT not in html and "account:" not in html
        assert page.evaluate("""async () => [localStorage.length, sessionStorage.length,
            (await indexedDB.databases()).length]""") == [0, 0, 0]

        # the call ends: wrap-up, ended from the page
        portal.clock.advance(240)
        engine.handle(CallEnded("c-17"))
        expect(page.locator("#state-name")).to_have_text("wrap-up")
        assert "No call for you" in text(page, "#caller-context")
        page.goto(portal.url + "/agent")
        page.click("button[data-state=end-wrap-up]")
        assert [type(e) for e in engine.poll()] == [AgentEndedWrapUp]
        expect(page.locator("#state-name")).to_have_text("available")
        shot(page, prefix + "05-after-wrap-up", taken)

        # log out: the session is gone from the store; pages and API refuse the old cookie
        cookies = ctx.cookies()
        page.click("#logout")
        page.wait_for_url("**/login")
        assert page.request.get(portal.url + "/api/me").status == 401
        page.goto(portal.url + "/agent/caller")
        assert page.url.endswith("/login")
        assert cookies  # the browser had the session cookie; it now resolves to nobody
        shot(page, prefix + "06-logged-out", taken)
        assert not problems, problems  # no CSP violation, no script error
        assert refused == [(404, "/api/agents/alice/phone"), (422, "/api/agents/alice/hours"),
                           (422, "/api/agents/alice/hours"), (404, "/api/agents/alice/phone")
                           ], refused

    for p in taken:
        assert p.is_file() and p.stat().st_size > 5000, p
    assert [p.name for p in taken] == [prefix + n for n in (
        "01-login.png", "02-available.png", "03-hours-refused.png", "04-current-caller.png",
        "05-after-wrap-up.png", "06-logged-out.png")]


def test_the_session_end_closes_the_pages_event_stream(tmp_path: Path, vendor_dir: Path,
                                                       browser_factory: Callable[[], Any]
                                                       ) -> None:
    """Logged out elsewhere (or idle too long): the open page goes to the login page."""
    with running_portal(tmp_path, now=WED_EVENING, vendor_dir=vendor_dir,
                        events_poll_s=0.2) as portal:
        page = browser_factory().new_page()
        page.set_default_timeout(10_000)
        page.goto(portal.url + "/login")
        page.fill("input[name=user]", "bruno")
        page.fill("input[name=password]", USERS["bruno"][2])
        page.click("button[type=submit]")
        page.wait_for_url("**/agent")
        # the event stream does not count as activity: the idle timeout ends the session
        portal.clock.advance(31 * 60)
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(page.locator("form#login")).to_be_visible()
        assert page.request.get(portal.url + "/api/me").status == 401


def test_the_page_phone_starts_jssip_against_the_configured_wss(
        tmp_path: Path, vendor_dir: Path, browser_factory: Callable[[], Any]) -> None:
    """With WebRTC endpoints configured, the page fetches its identity and JsSIP
    (from the npm cache) connects to the WSS URL; nothing listens there in this
    test (the Asterisk side lands from another branch), so it reports that."""
    port = free_port()
    phone = PhoneSettings(wss_url=f"wss://127.0.0.1:{port}/ws", sip_domain="127.0.0.1",
                          credentials=lambda agent: "sip-secret-alice" if agent == "alice"
                          else None)
    with running_portal(tmp_path, now=WED_EVENING, vendor_dir=vendor_dir, phone=phone) as portal:
        c, _ = portal.login("alice")
        body = c.get("/api/agents/alice/phone").json()
        assert body == {"wss_url": phone.wss_url, "sip_uri": "sip:alice@127.0.0.1",
                        "authorization_user": "alice", "password": "sip-secret-alice",
                        "ice_servers": []}
        page = browser_factory().new_page()
        page.set_default_timeout(10_000)
        page.goto(portal.url + "/login")
        page.fill("input[name=user]", "alice")
        page.fill("input[name=password]", USERS["alice"][2])
        page.click("button[type=submit]")
        page.wait_for_url("**/agent")
        expect(page.locator("#phone-status")).to_have_attribute("data-state", "disconnected")
        assert f"wss://127.0.0.1:{port}/ws" in text(page, "#phone-status")
        assert page.evaluate("typeof window.JsSIP.UA") == "function"
        assert page.locator("#phone-answer").is_disabled()
        # the CSP lets the page reach that WSS server and no other
        csp = page.request.get(portal.url + "/agent").headers["content-security-policy"]
        assert f"connect-src 'self' wss://127.0.0.1:{port};" in csp
