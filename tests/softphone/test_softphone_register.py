"""Registration of an AgentPhone against real SIP registrars on loopback.

SIPp plays the registrar (UAS scenarios next to this file, with real digest
verification); a bound socket that never answers plays a registrar that is down.
Registration against a real Asterisk is covered by the integration tests.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from softphone import (
    AgentPhone,
    Registered,
    RegistrationError,
    SoftphoneHost,
    SoftphoneTimeout,
    Unregistered,
)

pytestmark = [pytest.mark.pjsua2, pytest.mark.sipp]

HERE = Path(__file__).resolve().parent


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


# Tests request this fixture before ``host`` so SIPp outlives the host and can
# answer the un-REGISTER sent when the host closes.
@pytest.fixture
def sipp_registrar(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start SIPp as a registrar with a scenario file; yields HOST:PORT."""
    sipp = shutil.which("sipp")
    assert sipp, "SIPp (Debian sip-tester) is not installed: run scripts/bootstrap.sh"
    procs: list[subprocess.Popen[bytes]] = []

    def start(scenario: str) -> str:
        for _ in range(5):
            port = _free_udp_port()
            proc = subprocess.Popen(
                [sipp, "-sf", str(HERE / scenario), "-i", "127.0.0.1", "-p", str(port),
                 "-nostdin", "-timeout", "60s", "-deadcall_wait", "0", "-trace_err",
                 "-error_file", str(tmp_path / "sipp-errors.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=tmp_path,
            )
            procs.append(proc)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and proc.poll() is None:
                if _udp_bound(port):
                    return f"127.0.0.1:{port}"
                time.sleep(0.02)
        raise AssertionError(f"SIPp did not start; see {tmp_path}")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait(5)


def test_registers_with_digest_auth_and_unregisters(
        sipp_registrar: Callable[[str], str], host: SoftphoneHost) -> None:
    server = sipp_registrar("sipp_registrar.xml")
    agent = AgentPhone(host, "agent1", server=server, password="s3cret")
    t0 = time.monotonic()
    registered = agent.wait_registered(5)
    print({"register_s": round(time.monotonic() - t0, 3), "expires": registered.expires})
    assert registered.status == 200 and registered.expires == 60
    assert agent.registered
    gone = agent.unregister(5)
    assert isinstance(gone, Unregistered) and gone.status == 200
    assert not agent.registered
    again = agent.register(5)
    assert isinstance(again, Registered)


def test_wrong_password_is_refused_with_403(
        sipp_registrar: Callable[[str], str], host: SoftphoneHost) -> None:
    server = sipp_registrar("sipp_registrar.xml")
    agent = AgentPhone(host, "agent1", server=server, password="wrong")
    with pytest.raises(RegistrationError, match=r"agent1.*403 Forbidden") as info:
        agent.wait_registered(5)
    assert (info.value.status, info.value.registrar) == (403, server)
    assert not agent.registered


def test_challenge_never_accepted_is_a_401_error(
        sipp_registrar: Callable[[str], str], host: SoftphoneHost) -> None:
    server = sipp_registrar("sipp_registrar_always_401.xml")
    agent = AgentPhone(host, "agent1", server=server, password="s3cret")
    with pytest.raises(RegistrationError, match="401") as info:
        agent.wait_registered(5)
    assert info.value.status == 401


def test_registrar_that_never_answers_times_out(host: SoftphoneHost,
                                                silent_udp_port: int) -> None:
    agent = AgentPhone(host, "agent1", server=f"127.0.0.1:{silent_udp_port}", password="x")
    t0 = time.monotonic()
    with pytest.raises(SoftphoneTimeout, match=r"REGISTER answer for agent1"):
        agent.wait_registered(1.0)
    assert 0.9 < time.monotonic() - t0 < 2.0
    # closing while the REGISTER transaction is pending must not hang
    t1 = time.monotonic()
    agent.close()
    assert time.monotonic() - t1 < 4.0
