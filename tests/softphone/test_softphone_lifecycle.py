"""SoftphoneHost lifecycle: one per process, clean shutdown, no leaked threads."""
from __future__ import annotations

import os
import threading
import time

import pytest

from softphone import (
    AgentPhone,
    CallError,
    SoftphoneError,
    SoftphoneHost,
    TestCaller,
)

pytestmark = pytest.mark.pjsua2


def pjsua2_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "softphone-pjsua2"]


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_close_with_calls_up_leaves_no_thread_and_is_idempotent() -> None:
    threads_before, os_before = set(threading.enumerate()), _os_threads()
    host = SoftphoneHost()
    assert len(pjsua2_threads()) == 1
    agent = AgentPhone(host, "agent")
    ringing = AgentPhone(host, "ringing", no_answer=True)
    caller = TestCaller(host, "alice")
    up = caller.call(agent.uri)
    up.wait_confirmed(5)
    rings = caller.call(ringing.uri)
    rings.wait_state("EARLY", 2)
    host.close()
    host.close()  # second close is a no-op
    assert up.ended and rings.ended  # close hung both up and saw them end
    assert set(threading.enumerate()) == threads_before
    # pjlib's own threads are gone too (an OS thread may still be exiting just
    # after Thread.join returned, hence the short poll)
    deadline = time.monotonic() + 2
    while _os_threads() > os_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _os_threads() == os_before
    with pytest.raises(SoftphoneError, match="closed"):
        caller.call(agent.uri)
    with pytest.raises(SoftphoneError, match="closed"):
        up.hangup()
    agent.close()  # closing accounts of a closed host is harmless


def test_one_host_per_process_then_a_new_one_after_close() -> None:
    with SoftphoneHost() as first:
        with pytest.raises(SoftphoneError, match="one\\s+Endpoint per process"):
            SoftphoneHost()
        assert not first.closed
    assert first.closed
    with SoftphoneHost() as second:  # pjsua2's Endpoint singleton was released
        agent = AgentPhone(second, "agent")
        leg = TestCaller(second, "bob").call(agent.uri)
        assert leg.wait_confirmed(5).status == 200


def test_account_close_hangs_up_and_frees_the_user(host: SoftphoneHost) -> None:
    agent = AgentPhone(host, "agent")
    caller = TestCaller(host, "alice")
    leg = caller.call(agent.uri)
    leg.wait_confirmed(5)
    with agent:
        pass  # context manager closes the account
    assert leg.wait_disconnected(3).status == 200
    with pytest.raises(SoftphoneError, match="already exists"):
        TestCaller(host, "alice")
    again = AgentPhone(host, "agent")  # the user name is free again
    assert again.port != 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user": "bad user"}, "invalid SIP user"),
        ({"user": "a", "server": "localhost"}, "HOST:PORT"),
        ({"user": "a", "play": "/nonexistent.wav"}, "no such WAV file"),
    ],
)
def test_bad_arguments_are_clear_errors(host: SoftphoneHost, kwargs: dict[str, str],
                                        message: str) -> None:
    with pytest.raises(SoftphoneError, match=message):
        AgentPhone(host, **kwargs)  # type: ignore[arg-type]


def test_bad_call_arguments(host: SoftphoneHost) -> None:
    caller = TestCaller(host, "alice")
    with pytest.raises(SoftphoneError, match="not a SIP URI"):
        caller.call("tel:+441234")
    leg = caller.call(f"sip:x@127.0.0.1:{caller.port}")
    with pytest.raises(CallError, match="unknown call state"):
        leg.wait_state("RINGING", 1)
    with pytest.raises(CallError, match="unknown DTMF method"):
        leg.send_dtmf("1", method="inband")
