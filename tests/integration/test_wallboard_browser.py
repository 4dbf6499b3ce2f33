"""The wallboard in headless Chromium (Debian's, driven by Playwright) over a REAL call:
a real Asterisk, the engine, pjsua2 caller and agent, the web app beside the engine.

A supervisor watches the wallboard. amy is on break, so a real caller waits in
billing: the call appears on the board within 2 s of reaching the router (the
server-sent events, no reload), with its wait counting; amy comes back, answers,
and the call leaves the board within 2 s. The board's figures follow (one call
offered and answered today), and its charts are drawn (service level and waiting
calls over the day; this week's staffing from a forecast, needed vs signed up,
with the open slots). Screenshots: test-artifacts/screenshots/wallboard-*.png.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from homeline.agent_api import request_agent_state
from routing.events import AgentStateChanged
from web import Passwords, new_password

from .conftest import Live, dial_and_press, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]
REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("HOMELINE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "screenshots"
CALLER = "+15550501"


def _forecast(path: Path) -> Path:
    """Billing calls Mon-Fri 08:00-18:00 (the week_zone, UTC in the test directory):
    more than one signed-up agent can take, so the staffing chart has open slots."""
    rows = ["interval,skill,calls,aht_s"]
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        for h in range(8, 18):
            for m in (0, 30):
                calls = 12 if 10 <= h < 15 else 5
                rows.append(f"{day} {h:02d}:{m:02d},billing,{calls},240")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def _on_board(page: Any, call_id: str) -> bool:
    return page.query_selector(f'#wb-calls li[data-call-id="{call_id}"]') is not None


def _wait_page(page: Any, predicate: Any, timeout: float) -> float | None:
    """The wall-clock time at which ``predicate(page)`` first held (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(page):
            return time.time()
        page.wait_for_timeout(50)
    return None


def _on_break(live: Live, since: int) -> bool:
    return any(k == "decision" and isinstance(p, AgentStateChanged) and p.new == "break"
               for k, p in live.events[since:])


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium (/usr/bin/chromium)")
def test_a_real_call_appears_on_the_wallboard_and_leaves_it_when_answered(live_factory,
                                                                           tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from homeline.provision.browser_libs import ensure_browser_libs

    ensure_browser_libs()  # `homeline setup` did it already: a stat or two
    live = live_factory({"amy": {"skills": {"billing": 3}}})
    assert live.store is not None and live.directory is not None
    amy = live.agent("amy", answer_delay=0.5)
    live.wait_registered("amy")
    password = new_password()
    live.store.add_user("sam", "supervisor", None, Passwords().hash(password), datetime.now(UTC))
    web = live.stack.start_web(live.store, port=0, https=False,
                               forecast=_forecast(tmp_path / "forecast.csv"))
    mark = len(live.events)
    request_agent_state(live.store, live.directory, "amy", "break", datetime.now(UTC),
                        why="test")
    assert wait_for(lambda: _on_break(live, mark), 10)

    user_dir = Path(tempfile.mkdtemp(prefix="homeline-chromium-"))
    problems: list[str] = []
    refused: list[tuple[int, str]] = []
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(user_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 1000})
            try:
                page = ctx.new_page()
                page.on("pageerror", lambda e: problems.append(str(e)))
                # a refused request is a console error too: those are checked apart
                page.on("console", lambda m: problems.append(m.text) if m.type == "error"
                        and not m.text.startswith("Failed to load resource") else None)
                page.on("response", lambda r: refused.append(
                    (r.status, r.url.removeprefix(web.url))) if r.status >= 400 else None)
                page.goto(web.url + "/login")
                page.fill("input[name=user]", "sam")
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_url("**/supervisor")  # a supervisor lands on the desk
                page.goto(web.url + "/wallboard")
                expect(page.locator("#wb-live")).to_have_text("live", timeout=10_000)
                expect(page.locator("#q-billing .q-waiting")).to_have_text("0")
                expect(page.locator("#wb-agents li[data-agent=amy]")).to_have_attribute(
                    "data-state", "break")
                expect(page.locator("#q-billing .q-agents")).to_have_text("1 break")

                caller, leg = dial_and_press(live, CALLER, "1")
                with caller:
                    timeline = wait_for(lambda: (t := live.timeline_of(CALLER))
                                        and t.arrived_at and t, 20)
                    assert timeline, "the call never reached the router"
                    seen = _wait_page(page, lambda p: _on_board(p, timeline.call_id), 10)
                    assert seen is not None, "the waiting call never appeared on the board"
                    delay = seen - timeline.arrived_at.timestamp()
                    assert delay <= 2.0, f"on the board {delay:.2f} s after reaching the router"
                    expect(page.locator("#q-billing .q-waiting")).to_have_text("1")
                    expect(page.locator("#tot-waiting")).to_have_text("1")
                    # the wait counts on in the page between events
                    page.wait_for_timeout(2200)
                    wait_text = page.locator(f'#wb-calls li[data-call-id="{timeline.call_id}"] '
                                             ".wb-wait").inner_text()
                    waited = time.time() - timeline.arrived_at.timestamp()
                    assert wait_text in (f"0:{int(waited) - 1:02d}", f"0:{int(waited):02d}"), (
                        wait_text, waited)
                    _shot(page, "wallboard-call-waiting")

                    request_agent_state(live.store, live.directory, "amy", "available",
                                        datetime.now(UTC))
                    agent_leg = amy.wait_call(20)
                    agent_leg.wait_confirmed(10)
                    assert wait_for(lambda: live.timeline_of(CALLER).answered_at, 10)
                    gone = _wait_page(page, lambda p: not _on_board(p, timeline.call_id), 10)
                    assert gone is not None, "the answered call stayed on the board"
                    left = gone - live.timeline_of(CALLER).answered_at.timestamp()
                    assert left <= 2.0, f"left the board {left:.2f} s after the answer"
                    expect(page.locator("#q-billing .q-waiting")).to_have_text("0")
                    expect(page.locator("#wb-agents li[data-agent=amy]")).to_have_attribute(
                        "data-state", "on_call")
                    # today's figures follow: one call offered and answered, within T
                    expect(page.locator("#q-billing .q-answered")).to_have_text("1")
                    expect(page.locator("#q-billing .q-sl")).to_have_text("100%")
                    time.sleep(1.0)
                    agent_leg.hangup()
                    leg.wait_disconnected(10)
                # the charts: reload them with the finished call in the day's figures
                page.reload()
                expect(page.locator("#wb-live")).to_have_text("live", timeout=10_000)
                expect(page.locator("#chart-sl canvas")).to_have_count(1, timeout=10_000)
                expect(page.locator("#chart-waiting canvas")).to_have_count(1)
                expect(page.locator("#chart-staffing canvas")).to_have_count(1)
                expect(page.locator("#staffing-skill")).to_have_value("billing")
                assert page.locator("#open-slots li").count() > 0
                expect(page.locator("#tot-offered")).to_have_text("1")
                _shot(page, "wallboard-charts")
                page.set_viewport_size({"width": 1100, "height": 800})  # a laptop
                page.wait_for_timeout(300)
                _shot(page, "wallboard-laptop")
                # the charts' data, from the browser's session
                assert page.request.get(web.url + "/api/wallboard/day").status == 200
            finally:
                ctx.close()
    finally:
        shutil.rmtree(user_dir, ignore_errors=True)
    assert problems == [], problems
    # the only refusals: the agent page a supervisor has none of, and the browser's icon
    assert set(refused) <= {(403, "/agent"), (404, "/favicon.ico")}, refused
