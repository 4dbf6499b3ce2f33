"""Fixtures for the softphone tests: real pjsua2, real SIP and RTP on loopback."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from softphone import SoftphoneHost


def pjsua2_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "softphone-pjsua2"]


@pytest.fixture
def host() -> Iterator[SoftphoneHost]:
    """A fresh SoftphoneHost per test; checks that closing it leaves no thread."""
    h = SoftphoneHost()
    try:
        yield h
    finally:
        h.close()
    assert pjsua2_threads() == []
    assert h.callback_errors == []


@pytest.fixture
def silent_udp_port() -> Iterator[int]:
    """A bound UDP port on 127.0.0.1 that never answers (a registrar that is down)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
