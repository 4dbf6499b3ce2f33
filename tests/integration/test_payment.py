"""Pause for payment on a real, recorded call: the agent asks for a payment in the
portal (real HTTP), the caller's scripted phone types a test card number as RFC
4733 DTMF and plays it as in-band tones into the IVR's secure capture, a local
payment service takes it, the agent sees accepted / declined. Then the digits
are looked for everywhere: the recording (DTMF detector), the agent's audio
during the capture, every file Asterisk and Homeline wrote (logs, CDR, journal),
the AMI stream, the store, the pages."""
from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import soundfile as sf
from browser_kit import chromium_contexts, screenshot

from homeline.demo import _probe_wav
from homeline.paths import DIALPLANS_DIR
from homeline.stack import AMI_USER
from ivr.loader import load_flow
from prompts.dtmf import detect_file, generate, to_int16
from routing import Router
from softphone import TestCaller
from voice.ami import AmiConnection, AmiEvent
from web import Passwords

from .conftest import Live, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

CARD = "4111111111111111"  # the usual test Visa number: the service accepts it
BAD_CARD = "4000000000000002"  # declined
PASSWORD = "a-long-test-password"
FINAL = ("accepted", "declined", "failed")


class PaymentService:
    """A loopback payment endpoint: the flow's lookup GETs /payments?card=...; it
    answers {"status": "accepted"} for `CARD`, declined otherwise, and logs nothing."""

    def __init__(self) -> None:
        self.cards: list[str] = []
        seen = self.cards

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                q = parse_qs(urlsplit(self.path).query)
                card = q.get("card", [""])[0]
                seen.append(card)
                body = json.dumps({"status": "accepted" if card == CARD else "declined"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def service() -> Iterator[PaymentService]:
    s = PaymentService()
    yield s
    s.close()


@pytest.fixture
def browser() -> Iterator[Callable[[], Any]]:
    """New pages, each in a headless Chromium of its own (Debian's, a new temporary
    user-data-dir); all closed and removed at the end."""
    with chromium_contexts(["--autoplay-policy=no-user-gesture-required"]) as new:
        yield lambda: new().new_page()


def shot(page: Any, name: str) -> Path:
    return screenshot(page, name)


def _browser_login(page: Any, url: str, name: str, then: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=user]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    # agents land on their portal, supervisors on the desk (web/pages.py home)
    page.wait_for_url(re.compile(re.escape(url) + r"/(agent|supervisor)$"))
    page.goto(url + then)


def _payment_flow(tmp: Path, port: int) -> Any:
    text = (DIALPLANS_DIR / "flows" / "payment.yaml").read_text(encoding="utf-8")
    assert "127.0.0.1:8099" in text
    path = tmp / "payment.yaml"
    path.write_text(text.replace("127.0.0.1:8099", f"127.0.0.1:{port}"), encoding="utf-8")
    return load_flow(path)


def _tones(work: Path, digits: str) -> Path:
    """The card number as in-band DTMF (Q.23 tones), then a second of silence."""
    import numpy as np

    path = work / f"inband-{digits[:4]}.wav"
    samples = np.concatenate((generate(digits, 8000, tone_ms=90, gap_ms=90),
                              np.zeros(8000, np.float32)))
    sf.write(str(path), to_int16(samples), 8000, subtype="PCM_16")
    return path


def _start(live_factory: Any, service: PaymentService, tmp_path: Path) -> Live:
    live = live_factory({"amy": {"skills": {"billing": 3}}}, engine=False,
                        queues={"billing": {"record": True}})
    assert live.store is not None and live.directory is not None
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    router = Router(live.store.apply_hours(live.directory), now=datetime.now(UTC))
    live.engine = live.stack.start_engine(
        router, lambda: flow, store=live.store, journal_path=tmp_path / "journal.jsonl",
        payment_flow=_payment_flow(tmp_path, service.port))
    live.engine.subscribe(lambda kind, payload: live.events.append((kind, payload)))
    # Homeline's Asterisk registers no CDR backend; this instance writes CSV CDRs
    # (cdr_csv: astlogdir/cdr-csv/Master.csv), so the test can look into them
    (live.stack.instance.etc_dir / "cdr.conf").write_text(
        "[general]\nenable=yes\n[csv]\nusegmtime=yes\nloguniqueid=yes\nloguserfield=yes\n",
        encoding="utf-8")
    csv_dir = live.stack.instance.log_dir / "cdr-csv"  # cdr_csv opens, never creates, it
    csv_dir.mkdir(exist_ok=True)
    root = live.stack.instance.root
    os.chown(csv_dir, root.asterisk_uid, root.asterisk_gid)
    print(live.stack.instance.cli("module load cdr_csv.so").strip())
    pw = Passwords().hash(PASSWORD)
    live.store.add_user("amy", "agent", "amy", pw, datetime.now(UTC))
    live.store.add_user("sam", "supervisor", None, pw, datetime.now(UTC))
    return live


def _login(url: str, name: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=url, timeout=10.0)
    r = c.post("/api/session", json={"user": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return c, str(r.json()["csrf"])


def squeeze(digits: str) -> str:
    """Detected digits with repeats merged: under load a tone can reach a phone in two
    pieces (heard "25880" for the probe 2580). The probes repeat no digit, and any
    card digit between them would still show (a 4 follows neither 7 nor 0)."""
    return re.sub(r"(.)\1+", r"\1", digits)


def _take_payment(page: Any, portal: httpx.Client, leg: Any, card: str, work: Path,
                  name: str) -> tuple[dict[str, Any], str, float]:
    """The agent clicks "Take payment" in their portal page; the caller plays the card
    as in-band tones and types it (RFC 4733); returns the final status (from the API),
    what the page says, and how long the capture took."""
    started = time.time()
    before = (portal.get("/api/agents/amy/payment").json()["payment"] or {}).get("seq", 0)
    page.click("#take-payment")
    page.wait_for_selector("#payment-status[data-status=capturing]", timeout=10_000)
    shot(page, f"payment-{name}-capturing")

    def status() -> dict[str, Any] | None:
        p = portal.get("/api/agents/amy/payment").json()["payment"]
        return p if p and p["seq"] > before else None

    assert status() is not None and status()["status"] == "capturing"  # type: ignore[index]
    time.sleep(1.5)  # the secure collect's prompt starts
    time.sleep(leg.play(_tones(work, card)) + 0.3)  # in-band: heard by nobody, detected by none
    for digit in card + "#":
        leg.send_dtmf(digit)
        time.sleep(0.25)
    page.wait_for_selector("#payment-status[data-status=accepted], "
                           "#payment-status[data-status=declined], "
                           "#payment-status[data-status=failed]", timeout=25_000)
    shown = page.inner_text("#payment-status")
    shot(page, f"payment-{name}-result")
    final = status()
    assert final is not None and final["status"] in FINAL, final
    return final, shown, time.time() - started


def test_pause_for_payment_keeps_the_card_number_out_of_everything(
        live_factory: Any, service: PaymentService, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, browser: Callable[[], Any]) -> None:
    caplog.set_level(logging.DEBUG)
    live = _start(live_factory, service, tmp_path)
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    ami_events: list[AmiEvent] = []
    tap = AmiConnection("127.0.0.1", live.stack.ports.ami, AMI_USER, live.stack.ami_secret(),
                        on_event=ami_events.append)
    tap.start(wait_s=10)
    assert live.store is not None
    web = live.stack.start_web(live.store, https=False)
    portal, _csrf = _login(web.url, "amy")
    sam, _ = _login(web.url, "sam")
    agent_page = browser()
    _browser_login(agent_page, web.url, "amy", "/agent")
    try:
        with TestCaller(live.host, "+15550801") as caller:
            leg = caller.call(live.support_uri)
            leg.wait_confirmed(15)
            time.sleep(0.8)
            leg.send_dtmf("1")  # billing: a recorded queue
            agent_leg = amy.wait_call(25)
            agent_leg.wait_confirmed(10)
            timeline = wait_for(lambda: (t := live.timeline_of("+15550801")) and t.answered
                                and t, 10)
            assert timeline
            call_id = timeline.call_id
            time.sleep(0.8)
            time.sleep(leg.play(_probe_wav(live.work, "1397")) + 0.5)  # before: recorded

            agent_heard = agent_leg.record(tmp_path / "agent-during-payment.wav")
            accepted, shown, took = _take_payment(agent_page, portal, leg, CARD, tmp_path,
                                                  "accepted")
            time.sleep(0.5)
            agent_leg.stop_recording()
            print(f"\npayment 1: {accepted['status']} after {took:.1f} s, the agent's page "
                  f"says {shown!r}")
            assert accepted["status"] == "accepted", accepted
            assert shown == "Payment accepted"

            # back together: the agent's probe reaches the caller (and the recording)
            caller_heard = leg.record(tmp_path / "caller-after-payment.wav")
            time.sleep(0.5)
            time.sleep(agent_leg.play(_probe_wav(live.work, "2580")) + 0.5)
            leg.stop_recording()

            declined, shown, _ = _take_payment(agent_page, portal, leg, BAD_CARD, tmp_path,
                                               "declined")
            print(f"payment 2: {declined['status']}, the agent's page says {shown!r}")
            assert declined["status"] == "declined", declined
            assert shown == "Payment declined"
            time.sleep(1.0)
            time.sleep(leg.play(_probe_wav(live.work, "3690")) + 0.5)  # after: recorded
            page = agent_page.content()
            leg.hangup()
            leg.wait_disconnected(10)
            agent_leg.wait_disconnected(10)

        steps = [what for _t, what in live.engine.timeline(call_id).steps]
        print("timeline:", [w for w in steps if w.startswith("payment")])
        assert "payment 1: accepted, back with the agent" in steps
        assert "payment 2: declined, back with the agent" in steps
        assert service.cards == [CARD, BAD_CARD]  # the digits reached the payment service
        rec = wait_for(lambda: live.store.recording(call_id), 15)  # type: ignore[union-attr]
        assert rec is not None, "the call's recording was not kept"

        # the recording: the conversation before, between and after, no card digit
        in_recording = detect_file(rec.path)
        print(f"recording {Path(rec.path).name}: DTMF heard {in_recording.digits!r}")
        assert squeeze(in_recording.digits) == "139725803690", in_recording.digits
        # the agent's audio during the capture: silence, no tone
        during = detect_file(agent_heard)
        seconds = sf.info(str(agent_heard)).duration
        print(f"agent during the capture: {seconds:.1f} s, DTMF heard {during.digits!r}")
        assert seconds > 5 and during.digits == "", during.digits
        assert agent_leg.dtmf_received == ""  # no RFC 4733 event reached the agent either
        # bridged back: the agent's probe reaches the caller again
        assert "2580" in squeeze(detect_file(caller_heard).digits)
        assert any(e.name == "UserEvent" and e.get("UserEvent") == "HomelinePaymentDone"
                   for e in ami_events)

        # nowhere else either
        sup_page = sam.get(f"/supervisor/calls/{call_id}")
        assert sup_page.status_code == 200 and "accepted" in sup_page.text
        sup = browser()
        _browser_login(sup, web.url, "sam", f"/supervisor/calls/{call_id}")
        sup.wait_for_function("document.getElementById('recording').readyState >= 1",
                              timeout=10_000)
        duration = sup.evaluate("document.getElementById('recording').duration")
        print(f"the supervisor's page plays the recording: {duration:.1f} s")
        assert duration > 10
        shot(sup, "supervisor-call-record")
        outputs_page = sup.content()
        sup.close()
        outputs: dict[str, str] = {
            "homeline log": caplog.text,
            "AMI stream": repr([(e.name, dict(e.fields)) for e in ami_events]),
            "agent page": page,
            "supervisor page": sup_page.text,
            "supervisor page in the browser": outputs_page,
            "portal API": portal.get("/api/agents/amy/payment").text
            + portal.get("/api/agents/amy/current-call").text,
            "router events": repr(live.events),
            "timeline": repr(live.engine.timeline(call_id)),
        }
        con = sqlite3.connect(str(live.store.path))
        try:
            tables = [t[0] for t in con.execute(
                "select name from sqlite_master where type='table'")]
            outputs["store"] = repr([r for t in tables for r in con.execute(
                f"select * from {t}")])  # noqa: S608
        finally:
            con.close()
        searched = []
        for root in (live.stack.instance.dir, live.stack.state_dir, tmp_path):
            for f in sorted(p for p in root.rglob("*") if p.is_file()):
                if f.suffix == ".wav" and f.parent == tmp_path:
                    continue  # the test's own tone files
                outputs[str(f)] = f.read_bytes().decode("latin-1")
                searched.append(f)
        cdr = [f for f in searched if "cdr" in str(f).lower()]
        outputs["CDR engine"] = cdr_status = live.stack.instance.cli("cdr show status")
        assert "csv" in cdr_status.split("Registered Backends")[1], cdr_status
        master = [f for f in cdr if f.name == "Master.csv"]
        assert master and call_id in master[0].read_text(), "no CDR of the call was written"
        print("CDR:", master[0].read_text().strip().splitlines()[-1][:300])
        print(f"searched {len(outputs)} outputs, {len(searched)} files "
              f"(CDR: {[f.name for f in cdr]}), {len(ami_events)} AMI events")
        for name, text in outputs.items():
            for secret in (CARD, BAD_CARD, CARD[:10], BAD_CARD[:10]):
                assert secret not in text, f"card digits {secret} leaked into {name}"
        assert '"accepted"' in outputs["store"] or "'accepted'" in outputs["store"]
    finally:
        agent_page.close()  # ends its event stream before the web app stops
        portal.close()
        sam.close()
        tap.stop()
        live.stack.stop_web()


def test_a_caller_who_hangs_up_during_the_capture_ends_the_payment_and_the_call(
        live_factory: Any, service: PaymentService, tmp_path: Path) -> None:
    live = _start(live_factory, service, tmp_path)
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    assert live.store is not None
    web = live.stack.start_web(live.store, https=False)
    portal, csrf = _login(web.url, "amy")
    try:
        with TestCaller(live.host, "+15550802") as caller:
            leg = caller.call(live.support_uri)
            leg.wait_confirmed(15)
            time.sleep(0.8)
            leg.send_dtmf("1")
            agent_leg = amy.wait_call(25)
            agent_leg.wait_confirmed(10)
            assert wait_for(lambda: (t := live.timeline_of("+15550802")) and t.answered, 10)
            r = portal.post("/api/agents/amy/payment", json={},
                            headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200, r.text

            def status() -> str:
                return str(portal.get("/api/agents/amy/payment").json()["payment"]["status"])

            assert wait_for(lambda: status() == "capturing", 10), status()
            time.sleep(1.5)
            for digit in "4111":  # a few digits, then the caller gives up
                leg.send_dtmf(digit)
                time.sleep(0.25)
            leg.hangup()
            leg.wait_disconnected(10)
            agent_leg.wait_disconnected(10)  # the desk ends the agent's waiting leg
        assert wait_for(lambda: status() == "failed", 10), status()
        detail = portal.get("/api/agents/amy/payment").json()["payment"]["detail"]
        assert detail == "the caller hung up during the payment"
        assert service.cards == []  # nothing was sent to the payment service
        timeline = live.timeline_of("+15550802")
        assert wait_for(lambda: timeline.ended, 10), timeline.steps
        assert wait_for(lambda: live.channel_count() == 0, 10)
    finally:
        portal.close()
        live.stack.stop_web()


def test_an_agent_who_hangs_up_during_the_capture_leaves_the_payment_to_finish(
        live_factory: Any, service: PaymentService, tmp_path: Path) -> None:
    live = _start(live_factory, service, tmp_path)
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    assert live.store is not None
    web = live.stack.start_web(live.store, https=False)
    portal, csrf = _login(web.url, "amy")
    try:
        with TestCaller(live.host, "+15550803") as caller:
            leg = caller.call(live.support_uri)
            leg.wait_confirmed(15)
            time.sleep(0.8)
            leg.send_dtmf("1")
            agent_leg = amy.wait_call(25)
            agent_leg.wait_confirmed(10)
            assert wait_for(lambda: (t := live.timeline_of("+15550803")) and t.answered, 10)
            assert portal.post("/api/agents/amy/payment", json={},
                               headers={"X-CSRF-Token": csrf}).status_code == 200

            def payment() -> dict[str, Any]:
                return dict(portal.get("/api/agents/amy/payment").json()["payment"])

            assert wait_for(lambda: payment()["status"] == "capturing", 10), payment()
            agent_leg.hangup()  # the agent leaves; the caller is still typing
            agent_leg.wait_disconnected(10)
            time.sleep(1.0)
            for digit in CARD + "#":
                leg.send_dtmf(digit)
                time.sleep(0.25)
            assert wait_for(lambda: payment()["status"] in FINAL, 20), payment()
            # not bridged to anyone: the caller goes on at once and the call ends
            leg.wait_disconnected(15)
        p = payment()
        assert (p["status"], p["detail"]) == ("accepted", "the agent left during the payment")
        assert service.cards == [CARD]
        assert wait_for(lambda: live.channel_count() == 0, 10)
    finally:
        portal.close()
        live.stack.stop_web()
