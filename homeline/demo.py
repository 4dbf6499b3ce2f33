"""The live demo: real calls through a real Asterisk to registered softphones.

Four home agents register their pjsua2 softphones; one of them is outside the
hours they chose, right now, and must never be offered a call. Scripted
callers dial the support number, choose menu options with RFC 4733 DTMF, and
are routed by the router; each call proves audio both ways by having each side
play a DTMF probe in-band that the other side records and detects.

The agent portal runs beside the engine (plain HTTP on 127.0.0.1: loopback
only, a throw-away store), with a user for one agent whose password is made up
for this run and printed, so a person can watch that agent's state and current
caller in a browser while the calls go through.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["DemoCall", "DemoResult", "demo_directory", "run_demo", "DEMO_CALLS"]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class DemoCall:
    caller: str
    digits: str
    expect_queue: str
    expect_language: str


# 1 billing; 2 technical support; 3 language -> 2 Spanish -> 2 technical support.
DEMO_CALLS = (
    DemoCall("+15550101", "1", "billing", "en"),
    DemoCall("+15550102", "2", "tech", "en"),
    DemoCall("+15550103", "322", "tech", "es"),
    DemoCall("+15550104", "1", "billing", "en"),
)


PORTAL_AGENT = "ana"  # the agent whose portal login the demo prints
PORTAL_PORT = 8080  # as `homeline serve`; any free port when it is taken


@dataclass
class DemoResult:
    calls: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    # {"url", "user", "password"}: the agent portal while the demo runs
    portal: dict[str, str] | None = None
    # the statistics of the demo's own calls (`routing.stats`, as `homeline stats --json`)
    stats: dict[str, Any] | None = None

    @property
    def failed(self) -> int:
        return sum(1 for c in self.calls if not c.get("ok"))

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "agents": self.agents, "portal": self.portal,
                "stats": stats_summary(self.stats), "failed": self.failed}


STATS_KEYS = ("offered", "answered", "abandoned", "asa_s", "service_level")


def stats_summary(stats: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """Per queue: offered, answered, abandoned, ASA and service level."""
    if stats is None:
        return None
    return {q: {k: f[k] for k in STATS_KEYS} for q, f in stats["queues"].items()}


def demo_stats(store: Any, directory: Any, since: datetime, call_ids: set[str]
               ) -> dict[str, Any]:
    """The figures of the demo's calls, once their records are complete in the store
    (the call log writes them off the router thread)."""
    from store.reports import collect_stats

    def complete() -> bool:
        recs = {r.call_id: r for r in store.calls(since=since)}
        return all(c in recs and recs[c].ended_at is not None
                   and (recs[c].answered_at is None or recs[c].wrap_up_s is not None)
                   for c in call_ids)

    _wait(complete, 10, 0.1)
    return dict(collect_stats(store, directory, datetime.now(UTC), since).to_dict())


def _window_around(now: datetime, zone: str, open_now: bool) -> str:
    """A weekly window in ``zone`` that contains ``now`` (or ended two hours ago)."""
    local = now.astimezone(ZoneInfo(zone))
    hour = local.hour
    if open_now:
        start, end = max(0, hour - 1), min(24, hour + 3)
        if end - hour < 2:  # too close to midnight: take the next day's early hours too
            start = max(0, hour - 1)
    else:
        start, end = hour - 5, hour - 2
        if start < 0:  # early in the day: a window later today is closed now as well
            start, end = hour + 3, min(24, hour + 6)
            if end - start < 1:
                start, end = 0, max(1, hour - 2)
    return f"{DAYS[local.weekday()]} {start:02d}:00-{end:02d}:00"


def demo_directory(now: datetime) -> Any:
    """Four agents in four time zones; ``dmitri`` is outside his window now."""
    from routing import Directory

    agents = {
        "ana": {"name": "Ana Lopez", "zone": "America/New_York",
                "skills": {"billing": 4}, "languages": {"en": 5, "es": 3}, "open": True},
        "ben": {"name": "Ben Okafor", "zone": "Europe/London",
                "skills": {"tech": 4}, "languages": {"en": 5}, "open": True},
        "carmen": {"name": "Carmen Ruiz", "zone": "Europe/Madrid",
                   "skills": {"tech": 3, "billing": 2}, "languages": {"es": 5, "en": 2},
                   "open": True},
        "dmitri": {"name": "Dmitri Ivanov", "zone": "Asia/Tokyo",
                   "skills": {"billing": 5, "tech": 5}, "languages": {"en": 5, "es": 5},
                   "open": False},
    }
    data = {
        "policy": {"ring_timeout_s": 12, "max_misses": 3, "week_zone": "UTC"},
        "queues": {
            "billing": {"name": "Billing", "skills": {"billing": 1}, "languages": ["en", "es"],
                        "aht_s": 60, "wrap_up_s": 1, "selection": "longest-idle"},
            "tech": {"name": "Technical support", "skills": {"tech": 1},
                     "languages": ["en", "es"], "aht_s": 60, "wrap_up_s": 1,
                     "selection": "best-proficiency"},
            "general": {"name": "General", "skills": {}, "languages": ["en", "es"],
                        "aht_s": 60, "wrap_up_s": 1, "selection": "longest-idle"},
        },
        "agents": {
            agent_id: {
                "name": a["name"], "zone": a["zone"], "skills": a["skills"],
                "languages": a["languages"],
                "windows": [_window_around(now, str(a["zone"]), bool(a["open"]))],
            }
            for agent_id, a in agents.items()
        },
    }
    return Directory.from_dict(data, source="<demo directory>")


def _wait(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def _ok(proof: Any) -> Any:
    return proof if proof.ok else None


def _probe_wav(work: Path, digits: str) -> Path:
    """The audio-proof probe, with one second of silence after it: pjmedia's WAV
    player stops at end of file without playing out its last buffer."""
    import numpy as np
    import soundfile as sf

    from prompts.audio_proof import probe_samples
    from prompts.dtmf import to_int16

    samples = np.concatenate((probe_samples(digits, 8000), np.zeros(8000, np.float32)))
    path = work / f"probe-{digits}.wav"
    sf.write(str(path), to_int16(samples), 8000, subtype="PCM_16")
    return path


def hear_each_other(leg: Any, agent_leg: Any, work: Path, tag: str,
                    probes: tuple[str, str] = ("1397", "2580")) -> tuple[Any, Any]:
    """Audio both ways on a connected call: each side records what it hears and plays
    its probe (DTMF digits, prompts/audio_proof.py) into the call. Returns what the
    agent heard of the caller's probe and what the caller heard of the agent's
    (`prompts.audio_proof.AudioProof`, ``.ok`` when the digits came through)."""
    from prompts.audio_proof import verify_heard

    caller_probe, agent_probe = probes
    caller_probe_wav = _probe_wav(work, caller_probe)
    agent_probe_wav = _probe_wav(work, agent_probe)
    heard_by_agent = agent_leg.record(work / f"{tag}-agent-heard.wav")
    heard_by_caller = leg.record(work / f"{tag}-caller-heard.wav")
    time.sleep(0.3)
    seconds = max(leg.play(caller_probe_wav), agent_leg.play(agent_probe_wav))
    time.sleep(seconds + 0.8)
    agent_leg.stop_recording()
    leg.stop_recording()
    # the recorder finishes its WAV file on pjsua2's thread shortly after stopping
    to_agent = _wait(lambda: _ok(verify_heard(heard_by_agent, caller_probe)), 3, 0.2)
    to_caller = _wait(lambda: _ok(verify_heard(heard_by_caller, agent_probe)), 3, 0.2)
    return (to_agent or verify_heard(heard_by_agent, caller_probe),
            to_caller or verify_heard(heard_by_caller, agent_probe))


def place_call(spec: DemoCall, host: Any, engine: Any, agents: dict[str, Any], sip_port: int,
                work: Path, seen: set[str]) -> dict[str, Any]:
    from softphone import TestCaller

    record: dict[str, Any] = {"caller": spec.caller, "digits": spec.digits, "intent": None,
                              "language": None, "agent": None, "reason": None,
                              "answered": False, "audio_verified": False, "ok": False,
                              "timeline": []}
    busy_before = {aid: len(phone.calls) for aid, phone in agents.items()}
    started = time.monotonic()
    with TestCaller(host, spec.caller) as caller:
        leg = caller.call(f"sip:100@127.0.0.1:{sip_port}")
        leg.wait_confirmed(15)
        time.sleep(1.0)
        for digit in spec.digits:
            leg.send_dtmf(digit)
            time.sleep(1.5)

        def answered() -> Any:
            for t in engine.timelines():
                if t.caller == spec.caller and t.answered and t.call_id not in seen:
                    return t
            return None

        timeline = _wait(answered, 45)
        if timeline is None:
            record["error"] = "no agent answered within 45 s"
            leg.hangup()
            leg.wait_disconnected(10)
            return record
        seen.add(timeline.call_id)
        agent_id = timeline.agent
        record.update(agent=agent_id, reason=timeline.reason, intent=timeline.intent,
                      language=timeline.language, answered=True)
        phone = agents[agent_id]
        agent_leg = phone.wait_call(10, index=busy_before[agent_id])
        agent_leg.wait_confirmed(10)
        to_agent, to_caller = hear_each_other(leg, agent_leg, work, timeline.call_id)
        record["audio_verified"] = bool(to_agent.ok and to_caller.ok)
        record["audio"] = {"caller_to_agent": to_agent.heard, "agent_to_caller": to_caller.heard}
        leg.hangup()
        leg.wait_disconnected(10)
        agent_leg.wait_disconnected(10)
        _wait(lambda: engine.timeline(timeline.call_id).ended, 10)
        offset = started + time.time() - time.monotonic()  # wall clock of the call's start
        lines = [(t - offset, what) for t, what in timeline.steps]
        lines.insert(1, (lines[0][0] + 0.01, f"caller pressed {spec.digits}"))
        audio = (f"audio both ways: caller->agent heard {to_agent.heard!r}, "
                 f"agent->caller heard {to_caller.heard!r}: "
                 f"{'verified' if record['audio_verified'] else 'NOT verified'}")
        at = next((i for i, (_t, w) in enumerate(lines) if w.startswith("hang-up")), len(lines))
        lines.insert(at, (lines[at - 1][0], audio))
        record["timeline"] = [f"+{max(0.0, t):5.1f}s {what}" for t, what in lines]
        record["ok"] = bool(record["answered"] and record["audio_verified"]
                            and timeline.queue == spec.expect_queue
                            and timeline.language == spec.expect_language)
        if timeline.queue != spec.expect_queue or timeline.language != spec.expect_language:
            record["error"] = (f"expected queue {spec.expect_queue}/{spec.expect_language}, "
                               f"got {timeline.queue}/{timeline.language}")
    return record



def start_portal(stack: Any, store: Any, now: datetime, port: int = PORTAL_PORT,
                 say: Callable[[str], None] = print) -> dict[str, str]:
    """The web app beside the demo's engine, and a user for `PORTAL_AGENT` with a
    password generated for this run: ``{"url", "user", "password"}``."""
    from web import Passwords, WebError, new_password

    password = new_password()
    store.add_user(PORTAL_AGENT, "agent", PORTAL_AGENT, Passwords().hash(password), now)
    try:
        web = stack.start_web(store, port=port, https=False, say=say)
    except WebError:
        if port == 0:
            raise
        web = stack.start_web(store, port=0, https=False, say=say)  # the port is taken
    return {"url": f"{web.url}/", "user": PORTAL_AGENT, "password": password}


def run_demo(say: Callable[[str], None] = print, calls: tuple[DemoCall, ...] = DEMO_CALLS,
             name: str = "demo", portal_port: int = PORTAL_PORT,
             keep_open_s: float = 0.0) -> DemoResult:
    """The demo; ``keep_open_s``: keep everything up that long after the calls (the
    portal stays open; Ctrl-C ends it sooner)."""
    from homeline.paths import DIALPLANS_DIR
    from homeline.stack import PbxStack
    from ivr.loader import load_flow
    from routing.router import Router
    from softphone import AgentPhone, SoftphoneHost
    from store import SqliteStore

    now = datetime.now(UTC)
    directory = demo_directory(now)
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    result = DemoResult()
    work = Path(tempfile.mkdtemp(prefix="homeline-demo-"))
    stack = PbxStack(name, directory, work / "state", progress=say)
    # the engine's records and router state, and the portal's users and sessions
    store = SqliteStore(work / "demo.sqlite3")
    host = None
    phones: dict[str, Any] = {}
    seen: set[str] = set()
    try:
        store.sync_agents(directory)
        stack.start_pbx()
        router = Router.from_directory(directory, now=now)
        engine = stack.start_engine(router, lambda: flow, journal_path=work / "journal.jsonl",
                                    store=store)
        say(f"engine up: FastAGI on 127.0.0.1:{stack.ports.agi}, AMI on 127.0.0.1:"
            f"{stack.ports.ami}, SIP on 127.0.0.1:{stack.ports.sip}")
        result.portal = start_portal(stack, store, now, portal_port, say)
        say(f"agent portal: {result.portal['url']} (loopback only) - log in as "
            f"{result.portal['user']}, password {result.portal['password']} (this run only)")
        host = SoftphoneHost()
        for agent in directory.agents:
            phone = AgentPhone(host, agent.id, server=f"127.0.0.1:{stack.ports.sip}",
                               password=stack.agent_secret(agent.id), answer_delay=0.5)
            phone.wait_registered(10)
            phones[agent.id] = phone
            window = agent.windows[0]
            result.agents.append({"agent": agent.id, "zone": agent.zone,
                                  "skills": dict(agent.skills),
                                  "languages": dict(agent.languages),
                                  "window": str(window)})
            say(f"agent {agent.id:7s} registered  zone={agent.zone:17s} "
                f"skills={dict(agent.skills)} languages={dict(agent.languages)} "
                f"hours={window}")
        if not _wait(lambda: set(phones) <= engine.registered_agents(), 10):
            raise RuntimeError(f"AMI saw only {sorted(engine.registered_agents())} registered")
        for spec in calls:
            say(f"call from {spec.caller}: menu keys {spec.digits}")
            record = place_call(spec, host, engine, phones, stack.ports.sip, work, seen)
            result.calls.append(record)
            for line in record.get("timeline", []):
                say(f"    {line}")
            say(f"  -> agent={record['agent']} answered={record['answered']} "
                f"audio_verified={record['audio_verified']} {record.get('error', '')}")
        result.stats = demo_stats(store, directory, now, seen)
        from homeline.commands.stats import text_report

        say("statistics of these calls (homeline stats):")
        for line in text_report(result.stats):
            say(f"    {line}")
        if engine.errors:
            say(f"engine errors: {engine.errors}")
        if keep_open_s > 0:
            say(f"the portal stays open for {keep_open_s:g} s (Ctrl-C to stop now)")
            try:
                time.sleep(keep_open_s)
            except KeyboardInterrupt:
                pass
    finally:
        for phone in phones.values():
            try:
                phone.close()
            except Exception as exc:  # keep stopping the rest
                say(f"closing {phone}: {exc}")
        if host is not None:
            host.close()
        stack.stop(remove=True)  # the portal first, then the engine and Asterisk
        store.close()
        # probes, recordings, secrets, the store and the journal of a throw-away demo
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(as_json: bool, portal_port: int = PORTAL_PORT, keep_open_s: float = 0.0) -> int:
    say: Callable[[str], None] = (lambda _m: None) if as_json else print
    result = run_demo(say=say, portal_port=portal_port, keep_open_s=keep_open_s)
    if as_json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print(f"{len(result.calls)} calls, {result.failed} failed")
    return 0 if result.failed == 0 else 1

