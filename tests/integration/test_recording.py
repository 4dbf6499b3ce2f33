"""Recorded calls on a real Asterisk: MixMonitor when the queue says so, the
recording kept under the state directory with the call's pointer to it in the
store, served to supervisors (never agents) over real HTTP, and removed by the
retention sweep."""
from __future__ import annotations

import re
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeline.demo import _probe_wav
from homeline.paths import DIALPLANS_DIR
from ivr.loader import load_flow
from prompts.dtmf import detect_file
from web import Passwords

from .conftest import Live, dial_and_press, wait_for

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2]

USERS = {"sam": ("supervisor", None), "ada": ("admin", None), "amy": ("agent", "amy")}
PASSWORD = "a-long-test-password"


def recorded_call(live: Live, caller_id: str) -> tuple[str, Path]:
    """A call to amy in the recorded billing queue; the caller plays probe 1397, then
    amy plays 2580 (one after the other: the recording mixes both directions)."""
    amy = live.phones["amy"]
    caller, leg = dial_and_press(live, caller_id, "1")
    with caller:
        agent_leg = amy.wait_call(25)
        agent_leg.wait_confirmed(10)
        timeline = wait_for(lambda: (t := live.timeline_of(caller_id)) and t.answered and t, 10)
        assert timeline, "the call was never answered"
        time.sleep(0.5)
        time.sleep(leg.play(_probe_wav(live.work, "1397")) + 0.5)
        time.sleep(agent_leg.play(_probe_wav(live.work, "2580")) + 0.5)
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)
    assert live.store is not None
    rec = wait_for(lambda: live.store.recording(timeline.call_id), 15)
    assert rec is not None, "no recording was kept for the call"
    return timeline.call_id, Path(rec.path)


def add_users(live: Live) -> None:
    assert live.store is not None
    pw = Passwords().hash(PASSWORD)
    for name, (role, agent) in USERS.items():
        live.store.add_user(name, role, agent, pw, datetime.now(UTC))


def login(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=10.0)
    r = c.post("/api/session", json={"user": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return c


def test_recorded_queue_keeps_the_conversation_and_only_supervisors_hear_it(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}}, queues={"billing": {"record": True}})
    live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    call_id, path = recorded_call(live, "+15550701")

    # kept under the state directory, readable by Homeline only, found by the detector
    assert path.parent == live.stack.state_dir / "recordings" and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    heard = detect_file(path)
    print(f"\nrecording {path.name}: {path.stat().st_size} bytes, DTMF heard {heard.digits!r}")
    squeezed = re.sub(r"(.)\1+", r"\1", heard.digits)  # a tone split in two under load
    assert "1397" in squeezed and "2580" in squeezed, heard.digits
    assert not list((live.stack.instance.spool_dir / "monitor").glob("*.wav"))

    # over real HTTP: supervisors and admins get the WAV, played not downloaded; agents 403
    assert live.store is not None
    add_users(live)
    web = live.stack.start_web(live.store, https=False)
    clients: list[httpx.Client] = []
    try:
        anon = httpx.Client(base_url=web.url, timeout=10.0)
        clients.append(anon)
        assert anon.get(f"/api/calls/{call_id}/recording").status_code == 401
        for name in ("sam", "ada"):
            c = login(web.url, name)
            clients.append(c)
            r = c.get(f"/api/calls/{call_id}/recording")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "audio/wav"
            assert "content-disposition" not in r.headers
            assert r.headers["cache-control"] == "no-store"
            assert r.content == path.read_bytes()
            page = c.get(f"/supervisor/calls/{call_id}")
            assert page.status_code == 200
            assert '<audio id="recording" controls' in page.text
            assert f'src="/api/calls/{call_id}/recording"' in page.text
            assert "download" not in page.text.replace("nodownload", "")
            listing = c.get("/supervisor/calls")
            assert listing.status_code == 200 and call_id in listing.text
        agent = login(web.url, "amy")
        clients.append(agent)
        r = agent.get(f"/api/calls/{call_id}/recording")
        assert r.status_code == 403 and r.headers["cache-control"] == "no-store"
        assert agent.get(f"/supervisor/calls/{call_id}").status_code == 403
        assert agent.get("/supervisor/calls").status_code == 403
        clients.append(sam := login(web.url, "sam"))
        assert sam.get("/api/calls/nope/recording").status_code == 404
    finally:
        for c in clients:
            c.close()
        live.stack.stop_web()


def test_an_unrecorded_queue_leaves_no_file(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}})
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    caller, leg = dial_and_press(live, "+15550702", "1")
    with caller:
        agent_leg = amy.wait_call(25)
        agent_leg.wait_confirmed(10)
        time.sleep(1.0)
        leg.hangup()
        leg.wait_disconnected(10)
    timeline = live.timeline_of("+15550702")
    assert timeline is not None and timeline.answered
    time.sleep(2.5)
    assert live.store is not None and live.store.recording(timeline.call_id) is None
    assert not list((live.stack.instance.spool_dir / "monitor").glob("*.wav"))
    assert not (live.stack.state_dir / "recordings").exists() or not list(
        (live.stack.state_dir / "recordings").iterdir())


def test_retention_sweep_removes_recordings_older_than_the_admins_period(live_factory):
    live = live_factory({"amy": {"skills": {"billing": 3}}}, queues={"billing": {"record": True}},
                        policy={"recording_retention_days": 2})
    live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    call_id, path = recorded_call(live, "+15550703")
    assert live.store is not None
    keeper: Any = live.engine._keeper
    stored = live.store.recording(call_id)
    assert stored is not None
    # a day and a half later the recording is still kept; past two days it goes
    assert keeper.sweep(stored.stored_at + timedelta(days=1.5)) == []
    assert path.is_file()
    later = stored.stored_at + timedelta(days=2, seconds=1)
    assert keeper.sweep(later) == [call_id]
    assert not path.exists()
    gone = live.store.recording(call_id)
    assert gone is not None and gone.removed_at == later
    add_users(live)
    web = live.stack.start_web(live.store, https=False)
    try:
        c = login(web.url, "sam")
        assert c.get(f"/api/calls/{call_id}/recording").status_code == 404
        page = c.get(f"/supervisor/calls/{call_id}")
        assert page.status_code == 200 and 'id="recording-removed"' in page.text
        c.close()
    finally:
        live.stack.stop_web()


def test_survey_score_and_recorded_comment_show_on_the_call_record(live_factory, tmp_path):
    """A real post-call survey (support-line's survey node, after the agent hangs up):
    score 4 and a spoken comment, stored with the call, listed and played for
    supervisors; the comment's audio is refused to agents like the recording."""
    from routing import Router

    live = live_factory({"amy": {"skills": {"billing": 3}}}, engine=False)
    assert live.store is not None and live.directory is not None
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    survey = load_flow(DIALPLANS_DIR / "flows" / "support-line.yaml")
    router = Router(live.store.apply_hours(live.directory), now=datetime.now(UTC))
    live.engine = live.stack.start_engine(router, lambda: flow, store=live.store,
                                          survey_flow=survey)
    amy = live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    caller, leg = dial_and_press(live, "+15550704", "1")
    with caller:
        agent_leg = amy.wait_call(25)
        agent_leg.wait_confirmed(10)
        time.sleep(1.0)
        agent_leg.hangup()  # the agent ends the call: the caller gets the survey
        agent_leg.wait_disconnected(10)
        time.sleep(2.0)
        leg.send_dtmf("4")
        time.sleep(6.0)  # the comment prompt, then the beep
        time.sleep(leg.play(_probe_wav(live.work, "1397")) + 0.3)
        leg.send_dtmf("#")
        rec = wait_for(lambda: (r := live.store.call_record(  # type: ignore[union-attr]
            live.timeline_of("+15550704").call_id)) and r.survey_score is not None and r, 20)
        leg.hangup()
        leg.wait_disconnected(10)
    assert rec and rec.survey_score == 4, rec
    assert rec.survey_comment and Path(rec.survey_comment).is_file(), rec
    assert rec.agent_id == "amy" and rec.intent == "billing"
    add_users(live)
    web = live.stack.start_web(live.store, https=False)
    clients = []
    try:
        clients.append(sam := login(web.url, "sam"))
        listing = sam.get("/supervisor/calls").text
        row = listing[listing.index(f'data-call="{rec.call_id}"'):]
        assert '<td class="survey">4</td>' in row[:row.index("</tr>")]
        page = sam.get(f"/supervisor/calls/{rec.call_id}").text
        assert '<strong id="survey-score">4</strong>' in page
        assert f'src="/api/calls/{rec.call_id}/survey-comment"' in page
        r = sam.get(f"/api/calls/{rec.call_id}/survey-comment")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert "content-disposition" not in r.headers
        heard = re.sub(r"(.)\1+", r"\1", detect_file(rec.survey_comment).digits)
        assert "1397" in heard  # the caller's own audio
        clients.append(agent := login(web.url, "amy"))
        assert agent.get(f"/api/calls/{rec.call_id}/survey-comment").status_code == 403
    finally:
        for c in clients:
            c.close()
        live.stack.stop_web()


def test_the_engine_runs_the_retention_sweep_itself(live_factory):
    """Retention 0 days: the engine's own recordings thread removes the file at its
    next sweep after keeping it (the sweep period shortened from a minute)."""
    live = live_factory({"amy": {"skills": {"billing": 3}}}, queues={"billing": {"record": True}},
                        policy={"recording_retention_days": 0})
    live.engine._keeper.SWEEP_EVERY_S = 0.5
    live.agent("amy", answer_delay=0.3)
    live.wait_registered("amy")
    call_id, path = recorded_call(live, "+15550705")
    assert live.store is not None
    gone = wait_for(lambda: (r := live.store.recording(call_id)) and r.removed_at and r, 10)
    assert gone, "the engine never swept the expired recording"
    assert not path.exists()
    assert gone.removed_at >= gone.stored_at
