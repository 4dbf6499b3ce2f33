"""IVR flows on real calls: pjsua2 caller -> real Asterisk -> FastAGI -> engine.

One Asterisk + engine for the module; the engine takes each new call's flow from a
FlowRegistry over a temporary flow directory, so tests can change the flow file
between (and during) calls exactly as an admin would.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ivr_testkit import FLOWS

from ivr.registry import FlowRegistry

pytestmark = [pytest.mark.asterisk, pytest.mark.pjsua2, pytest.mark.slow,
              pytest.mark.timeout(180)]

CARD = "4539148803436467"


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


class Rig:
    def __init__(self, work: Path):
        from homeline.stack import PbxStack
        from routing import Directory, Router
        from softphone import SoftphoneHost
        from store import SqliteStore

        self.work = work
        self.flows = work / "flows"
        self.flows.mkdir()
        shutil.copy(FLOWS / "main-menu.yaml", self.flows / "main-menu.yaml")
        self.registry = FlowRegistry(self.flows, queues=("billing", "tech", "general"),
                                     check_interval_s=0.0)
        self.flow_name = "main-menu"
        queue = {"aht_s": 60, "wrap_up_s": 1, "languages": ["en", "es", "fr"]}
        directory = Directory.from_dict({
            "policy": {"ring_timeout_s": 4, "max_misses": 3, "week_zone": "UTC",
                       "hours": {"notice_hours": 0, "min_weekly_hours": 1,
                                 "max_weekly_hours": 30, "min_window_minutes": 30}},
            "queues": {q: {**queue, "skills": ({q: 1} if q != "general" else {}),
                           "selection": "longest-idle"} for q in ("billing", "tech", "general")},
            "agents": {},
        }, source="<ivr test directory>")
        now = datetime.now(UTC)
        self.stack = PbxStack(f"ivr{os.getpid()}", directory, work / "pbx")
        self.store = SqliteStore(work / "calls.sqlite3")
        self.host = None
        try:
            self.stack.start_pbx()
            router = Router(self.store.apply_hours(directory), now=now)
            self.journal = work / "journal.jsonl"
            self.engine = self.stack.start_engine(
                router, lambda: self.registry.current(self.flow_name), store=self.store,
                journal_path=self.journal)
            self.host = SoftphoneHost()
            # recordings must be writable by the asterisk user inside the sandbox
            spool = self.stack.instance.spool_dir / "homeline"
            spool.mkdir(parents=True, exist_ok=True)
            os.chown(spool, self.stack.instance.root.asterisk_uid,
                     self.stack.instance.root.asterisk_gid)
        except BaseException:
            self.close()
            raise

    @property
    def uri(self) -> str:
        return f"sip:100@127.0.0.1:{self.stack.ports.sip}"

    def write_flow(self, name: str, text: str) -> None:
        path = self.flows / f"{name}.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: the registry never reads half a file

    def dial(self, caller_id: str):
        from softphone import TestCaller

        caller = TestCaller(self.host, caller_id)
        leg = caller.call(self.uri)
        leg.wait_confirmed(15)
        return caller, leg

    def timeline(self, caller_id: str):
        return next((t for t in self.engine.timelines() if t.caller == caller_id), None)

    def close(self) -> None:
        if self.host is not None:
            self.host.close()
        self.stack.stop(remove=True)
        self.store.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("ivr-real"))
    yield r
    r.close()
    assert r.engine.errors == []


def results(caplog) -> dict[str, dict]:
    """CallResult.loggable() of every finished IVR call, by caller."""
    out = {}
    for rec in caplog.records:
        m = re.match(r"call \S+: (\{.*\})$", rec.getMessage())
        if m:
            doc = json.loads(m.group(1))
            out[doc["caller"]] = doc
    return out


def press(leg, digits, gap=0.35):
    for d in digits:
        leg.send_dtmf(d)
        time.sleep(gap)


def hang_up(caller, leg):
    with caller:
        leg.hangup()
        leg.wait_disconnected(10)


def test_menu_choice_after_no_input_and_invalid_digit(rig, caplog):
    caplog.set_level(logging.INFO)
    # the shipped menu with a 2 s timeout, so the test need not wait 5 s of silence
    rig.write_flow("main-menu", (FLOWS / "main-menu.yaml").read_text()
                   .replace("timeout: 5", "timeout: 2", 1))  # the main menu's
    try:
        caller, leg = rig.dial("+15550301")
        time.sleep(15)        # greeting + menu + 2 s of silence: reprompted
        press(leg, "9")
        time.sleep(1.0)
        press(leg, "1")
        assert wait_for(lambda: results(caplog).get("+15550301"), 15)
        hang_up(caller, leg)
    finally:
        shutil.copy(FLOWS / "main-menu.yaml", rig.flows / "main-menu.yaml")
    doc = wait_for(lambda: results(caplog).get("+15550301"), 10)
    assert doc["inputs"] == ["main:timeout", "main:9", "main:1"], doc
    assert doc["outcome"] == "routed" and doc["route"]["queue"] == "billing"
    assert doc["route"]["intent"] == "billing" and doc["route"]["language"] == "en"


def test_no_input_until_exhaustion_goes_to_the_general_queue(rig, caplog):
    caplog.set_level(logging.INFO)
    text = (FLOWS / "main-menu.yaml").read_text().replace("timeout: 5", "timeout: 1")
    rig.write_flow("main-menu", text.replace("    barge_in: true\n", "    barge_in: true\n", 1))
    try:
        caller, leg = rig.dial("+15550302")
        doc = wait_for(lambda: results(caplog).get("+15550302"), 60)
        hang_up(caller, leg)
    finally:
        shutil.copy(FLOWS / "main-menu.yaml", rig.flows / "main-menu.yaml")
    assert doc["inputs"] == ["main:timeout"] * 3, doc
    assert doc["route"]["queue"] == "general" and doc["outcome"] == "routed"


def _best_match(recording: np.ndarray, prompt: np.ndarray) -> float:
    """Peak normalised cross-correlation of the prompt's first second in the recording."""
    p = prompt[:8000].astype(float)
    p -= p.mean()
    r = recording.astype(float)
    n = len(r) + len(p)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(p, size)), size)[:len(r)]
    window = np.convolve(r ** 2, np.ones(len(p)), mode="full")[len(p) - 1:len(p) - 1 + len(r)]
    score = corr / (np.sqrt(np.maximum(window, 1e-9)) * np.sqrt((p ** 2).sum()))
    return float(score.max())


def _prompt(lang: str, pid: str) -> np.ndarray:
    from homeline.pbx.sandbox import sounds_dir

    data, rate = sf.read(str(sounds_dir() / lang / "homeline" / f"{pid}.wav"), dtype="int16")
    assert rate == 8000
    return data


def test_language_switch_changes_the_prompts_actually_played(rig, caplog, tmp_path):
    caplog.set_level(logging.INFO)
    caller, leg = rig.dial("+15550303")
    wav = leg.record(tmp_path / "heard.wav")
    time.sleep(1.5)
    press(leg, "3", 1.5)      # language menu (barges in on the greeting)
    press(leg, "2", 0)        # Spanish
    time.sleep(6)             # the main menu again, now in Spanish
    leg.stop_recording()
    press(leg, "2")
    assert wait_for(lambda: results(caplog).get("+15550303"), 15)
    hang_up(caller, leg)
    heard, rate = sf.read(str(wav), dtype="int16")
    assert rate == 8000
    es, en = _best_match(heard, _prompt("es", "main-menu")), _best_match(
        heard, _prompt("en", "main-menu"))
    print(f"\nheard after choosing Spanish: es main-menu match {es:.2f}, en {en:.2f}")
    assert es > 0.6 and es > en + 0.2
    doc = results(caplog)["+15550303"]
    assert doc["language"] == "es" and doc["route"] == {**doc["route"], "queue": "tech",
                                                       "language": "es"}


SECURE_FLOW = """\
flow: main-menu
languages: [en, es, fr]
start: card
nodes:
  card:
    type: collect
    prompt: enter-card-number
    variable: card
    secure: true
    min_length: 16
    max_length: 16
    terminator: "#"
    timeout: 8
    inter_digit_timeout: 3
    no_input_prompt: no-input
    no_match_prompt: invalid-option
    exhausted: general
    next: billing
  billing: {type: route, queue: billing, intent: billing}
  general: {type: route, queue: general}
"""


def test_secure_digits_appear_in_no_log_event_or_call_record(rig, caplog):
    caplog.set_level(logging.DEBUG)
    rig.write_flow("main-menu", SECURE_FLOW)
    try:
        caller, leg = rig.dial("+15550304")
        time.sleep(1.0)
        press(leg, CARD + "#")
        doc = wait_for(lambda: results(caplog).get("+15550304"), 20)
        hang_up(caller, leg)
    finally:
        shutil.copy(FLOWS / "main-menu.yaml", rig.flows / "main-menu.yaml")
    assert doc and doc["outcome"] == "routed" and doc["route"]["queue"] == "billing", doc
    assert doc["inputs"] == ["card:[secure: 16 digits]"]
    time.sleep(1.0)
    outputs = {"homeline log": caplog.text,
               "engine journal": rig.journal.read_text(errors="replace")
               if rig.journal.exists() else "",
               "router events": repr(rig.engine.timelines())}
    con = sqlite3.connect(str(rig.work / "calls.sqlite3"))
    try:
        outputs["call records"] = repr([r for t in con.execute(
            "select name from sqlite_master where type='table'") for r in
            con.execute(f"select * from {t[0]}")])
    finally:
        con.close()
    for name, text in outputs.items():
        assert CARD not in text, f"the card number leaked into the {name}"
    assert "+15550304" in outputs["call records"]


def test_reloaded_flow_applies_to_new_calls_while_the_live_call_keeps_its_version(rig, caplog):
    caplog.set_level(logging.INFO)
    v1 = rig.registry.current("main-menu").version
    first, first_leg = rig.dial("+15550305")
    time.sleep(1.0)
    text = (FLOWS / "main-menu.yaml").read_text()
    rig.write_flow("main-menu", text.replace('"1": billing', '"1": tech')
                   .replace('"2": tech', '"2": billing'))
    try:
        second, second_leg = rig.dial("+15550306")
        time.sleep(1.0)
        press(first_leg, "1")
        press(second_leg, "1")
        both = wait_for(lambda: {"+15550305", "+15550306"} <= set(results(caplog)), 20)
        hang_up(first, first_leg)
        hang_up(second, second_leg)
    finally:
        shutil.copy(FLOWS / "main-menu.yaml", rig.flows / "main-menu.yaml")
    assert both
    docs = results(caplog)
    old, new = docs["+15550305"], docs["+15550306"]
    assert old["flow_version"] == v1 and old["route"]["queue"] == "billing"
    assert new["flow_version"] != v1 and new["route"]["queue"] == "tech"


SPEECH_FLOW = """\
flow: main-menu
languages: [en, es, fr]
start: reason
speech:
  mode: grammar
  threshold: 0.5
  intents:
    internet: [internet, broadband, internet connection]
    email: [email account, mailbox, email address, email]
    billing: [invoice, billing, payment]
nodes:
  reason:
    type: speech
    prompt: thank-you
    intents: {internet: tech, email: tech, billing: billing}
    max_seconds: 6
    silence_seconds: 1.5
    max_retries: 0
    no_input_prompt: no-input
    no_match_prompt: please-try-again
    fallback: keypad
  keypad:
    type: menu
    prompt: main-menu
    options: {"1": billing, "2": tech}
    timeout: 2
    max_retries: 0
    no_input_prompt: no-input
    no_match_prompt: invalid-option
    exhausted: general
  billing: {type: route, queue: billing}
  tech: {type: route, queue: tech}
  general: {type: route, queue: general}
"""


def _spoken_8k(text: str, path: Path) -> Path:
    """espeak-ng speech at the telephone rate (8 kHz), with a little silence first."""
    import subprocess

    from ivr.speech import _resample

    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us+klatt3", "-s", "150", "-w", str(raw), text],
                   check=True, timeout=30)
    data, rate = sf.read(str(raw), dtype="float64")
    x = _resample(data * 32767.0, rate) if rate == 16000 else data * 32767.0
    n = int(round(len(x) * 8000 / rate))
    spec = np.fft.rfft(x)
    out = np.zeros(n // 2 + 1, dtype=complex)
    k = min(len(spec), len(out))
    out[:k] = spec[:k]
    y = np.fft.irfft(out, n) * (n / len(x))
    y = np.concatenate([np.zeros(2400), y, np.zeros(4000)])
    sf.write(str(path), np.clip(y, -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
    return path


@pytest.mark.espeak
def test_speech_intent_on_a_real_call(rig, caplog, tmp_path):
    caplog.set_level(logging.INFO)
    rig.write_flow("main-menu", SPEECH_FLOW)
    try:
        said = _spoken_8k("my email account is not working", tmp_path / "email.wav")
        caller, leg = rig.dial("+15550307")
        time.sleep(2.5)                     # the prompt, then the beep
        leg.play(said)
        doc = wait_for(lambda: results(caplog).get("+15550307"), 25)
        hang_up(caller, leg)
        mumble = _spoken_8k("what is the weather like today", tmp_path / "weather.wav")
        caller, leg = rig.dial("+15550308")
        time.sleep(2.5)
        leg.play(mumble)
        time.sleep(6)
        press(leg, "1")                     # the keypad fallback menu
        other = wait_for(lambda: results(caplog).get("+15550308"), 25)
        hang_up(caller, leg)
    finally:
        shutil.copy(FLOWS / "main-menu.yaml", rig.flows / "main-menu.yaml")
    assert doc and doc["route"]["queue"] == "tech" and doc["intent"] == "email", doc
    assert other and other["path"][:2] == ["reason", "keypad"], other
    assert other["route"]["queue"] == "billing"
