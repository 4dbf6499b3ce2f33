"""FastAGI server and AGI runner, against the protocol test peer (see agi_peer.py).

These are parser/protocol tests only; the same code on real calls through a real
Asterisk is covered in tests/integration.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ivr_agi_peer import AgiPeer
from ivr_testkit import FLOWS, OPEN_NOW

from ivr.loader import load_flow
from voice.agi_runner import RouteAck, run_call, run_survey
from voice.fastagi import (
    AgiCallEnded,
    AgiChannel,
    AgiHangup,
    FastAGIServer,
    parse_reply,
    read_environment,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def flows(catalog):
    return {n: load_flow(FLOWS / f"{n}.yaml", catalog=catalog)
            for n in ("main-menu", "support-line")}


class Harness:
    def __init__(self, flows):
        self.flows = flows
        self.results = []
        self.routes = []
        self.events: list[AgiCallEnded] = []
        self.lookup = None

    def ivr(self, flow_name):
        async def handler(agi, env):
            async def on_route(route):
                self.routes.append(route)
                return RouteAck(position=2, expected_wait_s=90)
            kwargs = {"lookup": self.lookup} if self.lookup else {}
            kwargs["now"] = lambda: OPEN_NOW  # the support line is open
            self.results.append(await run_call(agi, self.flows[flow_name],
                                         call_id=env["agi_uniqueid"],
                                         caller=env["agi_callerid"], on_route=on_route,
                                         **kwargs))
        return handler


def serve(handlers, events):
    return FastAGIServer(handlers=handlers, on_event=events.append)


def test_menu_call_with_reprompts_and_language_switch(flows):
    h = Harness(flows)
    with serve({"ivr": h.ivr("main-menu")}, h.events) as srv:
        peer = AgiPeer(srv.port, keys=["", "9", "3", "2", "1"]).start()
        peer.join()
        _wait(lambda: h.events)
    (result,) = h.results
    assert result.outcome == "routed" and result.language == "es"
    assert result.digits == "9,3,2,1"
    # the IVR answers with its first prompt, in one Asterisk operation (no key lost
    # between two commands), and reads the key that stopped it
    assert peer.commands[:2] == ['EXEC Read "HOMELINE_FIRST_KEY,homeline/welcome,1,t,1,0.001"',
                                 'GET FULL VARIABLE "${HOMELINE_FIRST_KEY},${READSTATUS}"']
    streamed = [c.split('"')[1] for c in peer.commands if c.startswith("STREAM FILE")]
    assert streamed[:2] == ["homeline/main-menu", "homeline/no-input"]
    assert "homeline/invalid-option" in streamed
    assert 'SET VARIABLE "CHANNEL(language)" "es"' in peer.commands
    assert peer.variables["HOMELINE_QUEUE"] == "billing"
    assert peer.variables["HOMELINE_INTENT"] == "billing"
    assert peer.variables["HOMELINE_LANGUAGE"] == "es"
    assert peer.variables["HOMELINE_CALL_ID"] == "1764064800.1"
    assert peer.variables["HOMELINE_OUTCOME"] == "routed"
    assert h.routes[0].request.caller == "+15550100"
    assert h.events[0].reason == "completed"


def test_unknown_script_gets_a_clear_message_and_hangup(flows):
    events: list[AgiCallEnded] = []
    with serve({"ivr": Harness(flows).ivr("main-menu")}, events) as srv:
        peer = AgiPeer(srv.port, script="nosuch").start()
        peer.join()
        _wait(lambda: events)
    assert "unknown FastAGI script 'nosuch' (known: ivr)" in peer.commands[0]
    assert peer.commands[-1] == "HANGUP"
    assert events[0].reason == "unknown-script"


def test_caller_hang_up_ends_the_call_quietly(flows, caplog):
    caplog.set_level(logging.DEBUG)
    h = Harness(flows)

    async def raw(agi, env):  # a handler that does not catch the hang-up itself
        while True:
            await agi.command("WAIT FOR DIGIT", 1000)

    with serve({"ivr": h.ivr("main-menu"), "raw": raw}, h.events) as srv:
        AgiPeer(srv.port, keys=["HANGUP"]).start().join()
        AgiPeer(srv.port, script="raw", keys=["1", "HANGUP"]).start().join()
        _wait(lambda: len(h.events) == 2)
    assert h.results[0].outcome == "caller-hangup"
    assert sorted(e.reason for e in h.events) == ["completed", "hangup"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


class _Crm(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        _Crm.seen.append(self.path)
        body = json.dumps({"tier": "gold"} if "customers" in self.path else {"status": "ok"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_secure_digits_reach_no_log_no_command_no_result(flows, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    crm = ThreadingHTTPServer(("127.0.0.1", 0), _Crm)
    threading.Thread(target=crm.serve_forever, daemon=True).start()
    h = Harness(flows)
    base = f"http://127.0.0.1:{crm.server_address[1]}"

    def lookup(url, timeout_s):
        from voice.agi_runner import http_lookup
        return http_lookup(url.replace("http://127.0.0.1:8089", base), timeout_s)

    h.lookup = lookup
    card = "73914682"
    try:
        with serve({"ivr": h.ivr("support-line")}, h.events) as srv:
            keys = ["1", "1", *card, "#", ""]  # English, billing, account, no callback
            peer = AgiPeer(srv.port, keys=keys).start()
            peer.join()
            _wait(lambda: h.events)
    finally:
        crm.shutdown()
        crm.server_close()
    (result,) = h.results
    assert result.outcome == "routed", result
    assert any(card in p for p in _Crm.seen)          # the CRM dip got it
    assert result.variables["account_verified"] == "yes"
    everything = "\n".join(peer.commands) + caplog.text + json.dumps(result.loggable())
    everything += repr(result) + repr(h.routes) + json.dumps(peer.variables)
    assert card not in everything
    assert "[secure: 8 digits]" in json.dumps(result.loggable())


def test_survey_reads_call_id_and_returns_a_result(flows, tmp_path):
    results = []

    async def survey(agi, env):
        results.append(await run_survey(agi, flows["support-line"]))

    with serve({"survey": survey}, []) as srv:
        vars_ = {"HOMELINE_CALL_ID": "1764064800.7", "HOMELINE_AGENT": "alice",
                 "HOMELINE_INTENT": "tech", "CHANNEL(language)": "fr"}
        peer = AgiPeer(srv.port, script="survey", keys=["5"], variables=vars_).start()
        peer.join()
        _wait(lambda: results)
    (r,) = results
    assert (r.call_id, r.agent, r.intent, r.score, r.completed) == (
        "1764064800.7", "alice", "tech", 5, True)
    assert any("homeline/survey-thanks" in c for c in peer.commands)


def test_unsafe_caller_id_never_reaches_a_command(flows):
    h = Harness(flows)
    with serve({"ivr": h.ivr("main-menu")}, h.events) as srv:
        peer = AgiPeer(srv.port, keys=["1"], callerid='"Evil" <1"; HANGUP>').start()
        peer.join()
        _wait(lambda: h.events)
    assert h.results[0].caller == "Evil1HANGUP"
    assert all("Evil" not in c for c in peer.commands)


def test_stop_ends_calls_that_hang(flows):
    started = threading.Event()

    async def stuck(agi, env):
        started.set()
        await agi.command("WAIT FOR DIGIT", -1)  # the peer never answers below

    srv = FastAGIServer(handlers={"ivr": stuck}).start()
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(AgiPeer(srv.port).env().encode())
    assert started.wait(5)
    t0 = time.monotonic()
    srv.stop(timeout=0.3)
    assert time.monotonic() - t0 < 3
    assert srv.sessions() == 0
    sock.close()


def test_reply_parser():
    r = parse_reply("200 result=49 endpos=1234")
    assert (r.result, r.extras["endpos"]) == ("49", "1234")
    assert parse_reply("200 result=1 (hello world)").data == "hello world"
    from ivr.errors import AgiProtocolError
    for bad in ("510 Invalid or unknown command", "garbage", "520 End of proper usage."):
        with pytest.raises(AgiProtocolError):
            parse_reply(bad)
    for gone in ("HANGUP", "511 Command Not Permitted on a dead channel",
                 "200 result=-1 (hangup)"):
        with pytest.raises(AgiHangup):
            parse_reply(gone)


def test_environment_and_replies_byte_by_byte_over_a_socket():
    a, b = socket.socketpair()
    payload = (b"agi_network: yes\nagi_uniqueid: 1.2\n\n200 result= (timeout)\n"
               b"520-Invalid command syntax.  Proper usage follows:\n usage text\n"
               b"520 End of proper usage.\nHANGUP\n")

    def drip():
        for i in range(len(payload)):
            b.send(payload[i:i + 1])
            time.sleep(0.001)

    async def talk():
        reader, writer = await asyncio.open_connection(sock=a)
        env = await read_environment(reader)
        agi = AgiChannel(reader, writer, env)
        first = await agi.command("WAIT FOR DIGIT", 100)
        from ivr.errors import AgiProtocolError
        with pytest.raises(AgiProtocolError, match="520"):
            await agi.command("WAIT FOR DIGIT")
        with pytest.raises(AgiHangup):
            await agi.command("WAIT FOR DIGIT", 100)
        writer.close()
        return env, first

    t = threading.Thread(target=drip)
    t.start()
    env, first = asyncio.run(talk())
    t.join()
    b.close()
    assert env["agi_uniqueid"] == "1.2"
    assert (first.result, first.data) == ("", "timeout")


def test_a_command_with_a_line_break_is_refused_before_it_is_sent():
    a, b = socket.socketpair()

    async def talk():
        reader, writer = await asyncio.open_connection(sock=a)
        agi = AgiChannel(reader, writer, {})
        from ivr.errors import AgiProtocolError
        with pytest.raises(AgiProtocolError, match="line break"):
            await agi.command("VERBOSE", '"x\nHANGUP"')
        writer.close()

    asyncio.run(talk())
    b.settimeout(0.2)
    assert b.recv(100) == b""  # nothing was written before the socket closed
    b.close()


def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_a_peer_that_never_sends_the_environment_is_dropped():
    events: list[AgiCallEnded] = []
    with FastAGIServer(handlers={}, on_event=events.append, env_timeout_s=0.3) as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"agi_network: yes\n")   # ... and nothing more
            _wait(lambda: events, 5)
    assert events[0].reason == "hangup"


def _connect_with_env(port: int, uniqueid: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(AgiPeer(port, uniqueid=uniqueid).env().encode())
    return sock


def test_calls_over_the_cap_wait_unread_until_a_call_ends():
    release = asyncio.Event()
    started: list[str] = []

    async def held(agi, env):
        started.append(env["agi_uniqueid"])
        await release.wait()

    events: list[AgiCallEnded] = []
    srv = FastAGIServer(handlers={"ivr": held}, on_event=events.append, max_calls=2).start()
    socks = [_connect_with_env(srv.port, f"1.{n}") for n in range(3)]
    try:
        _wait(lambda: len(started) == 2)
        time.sleep(0.3)  # the third connection is accepted but not served
        assert sorted(started) == ["1.0", "1.1"]
        assert (srv.active_calls(), srv.sessions()) == (2, 3)
        srv.run_soon(_set(release))   # both calls end; the waiting call is served
        _wait(lambda: len(started) == 3 and len(events) == 3)
        assert started[2] == "1.2"
        assert [e.reason for e in events] == ["completed"] * 3
        _wait(lambda: srv.sessions() == 0)
    finally:
        for sock in socks:
            sock.close()
        srv.stop(timeout=1)


async def _set(event: asyncio.Event) -> None:
    event.set()


def test_hundreds_of_waiting_calls_cost_no_thread():
    """A call is a coroutine: 300 connections waiting on the IVR add no thread."""
    async def held(agi, env):
        await agi.command("WAIT FOR DIGIT", -1)  # never answered

    srv = FastAGIServer(handlers={"ivr": held}).start()
    before = threading.active_count()
    socks = [_connect_with_env(srv.port, f"4.{n}") for n in range(300)]
    try:
        _wait(lambda: srv.active_calls() == 300)
        assert threading.active_count() == before
    finally:
        for sock in socks:
            sock.close()
        _wait(lambda: srv.sessions() == 0)
        srv.stop(timeout=1)


def test_stop_ends_calls_that_wait_for_a_slot_too():
    async def held(agi, env):
        await agi.command("WAIT FOR DIGIT", -1)  # never answered: stop() ends it

    srv = FastAGIServer(handlers={"ivr": held}, max_calls=1).start()
    socks = [_connect_with_env(srv.port, f"3.{n}") for n in range(2)]
    try:
        _wait(lambda: srv.active_calls() == 1 and srv.sessions() == 2)
        t0 = time.monotonic()
        srv.stop(timeout=0.3)
        assert time.monotonic() - t0 < 3
        assert srv.sessions() == 0
        for sock in socks:   # Asterisk's side sees the script end (EOF)
            sock.settimeout(2)
            while sock.recv(4096):
                pass
    finally:
        for sock in socks:
            sock.close()


def test_server_limits_are_checked():
    with pytest.raises(ValueError, match="max_calls"):
        FastAGIServer(max_calls=0)
    with pytest.raises(ValueError, match="env_timeout_s"):
        FastAGIServer(env_timeout_s=0)


def test_a_port_in_use_is_a_clear_error():
    with FastAGIServer() as first:
        with pytest.raises(OSError):
            FastAGIServer(port=first.port).start()


def test_a_key_pressed_during_the_first_prompt_is_the_menu_choice(flows):
    """Read() answered and played the greeting and the caller pressed 1 in it: that
    key chooses billing, no further prompt or wait."""
    h = Harness(flows)
    with serve({"ivr": h.ivr("main-menu")}, h.events) as srv:
        peer = AgiPeer(srv.port, first_key="1").start()
        peer.join()
        _wait(lambda: h.events)
    (result,) = h.results
    assert (result.outcome, result.digits) == ("routed", "1")
    assert peer.variables["HOMELINE_QUEUE"] == "billing"
    assert not [c for c in peer.commands if c.startswith(("STREAM FILE", "WAIT FOR DIGIT"))]
