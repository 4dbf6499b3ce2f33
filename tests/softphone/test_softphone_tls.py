"""The pjsua2 wheel speaks TLS (OpenSSL) and SRTP, and the softphone checks the
server's certificate against the CA it was given before it sends a byte of SIP."""
from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from homeline.certs import tls_files
from softphone import AgentPhone, RegistrationError, SoftphoneHost

pytestmark = pytest.mark.pjsua2


def test_the_wheel_has_tls_and_srtp(host: SoftphoneHost, tmp_path: Path) -> None:
    _cert, _key, ca = tls_files(tmp_path, ["127.0.0.1"])
    tid, port = host.call(lambda: host.tls_transport(ca))
    assert tid >= 0 and port > 0
    info = host.call(lambda: str(host.endpoint.transportGetInfo(tid).typeName))
    assert info.upper().startswith("TLS")
    pj = host.pj
    assert {pj.PJMEDIA_SRTP_KEYING_SDES, pj.PJMEDIA_SRTP_KEYING_DTLS_SRTP}
    assert host.call(lambda: list(host.endpoint.utilSslGetAvailableCiphers()))


def test_a_server_certificate_from_another_ca_is_refused(host: SoftphoneHost,
                                                         tmp_path: Path) -> None:
    cert, key, _their_ca = tls_files(tmp_path / "server", ["127.0.0.1"])
    _c, _k, our_ca = tls_files(tmp_path / "ours", ["127.0.0.1"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    received: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(3)
                received.append(tls.recv(4096))
        except (ssl.SSLError, OSError):
            pass  # the client aborts the handshake

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        phone = AgentPhone(host, "amy", server=f"127.0.0.1:{listener.getsockname()[1]}",
                           password="pw", tls_ca_file=our_ca)
        with pytest.raises(RegistrationError):
            phone.wait_registered(10)
        phone.close()
    finally:
        thread.join(10)
        listener.close()
    assert not any(b"REGISTER" in chunk for chunk in received), received
