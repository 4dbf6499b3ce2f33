"""homeline/certs.py: the test CA and server certificate, made once and checked
with the real TLS stack (Python's ssl module, OpenSSL)."""
from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from homeline.certs import CertificateError, ensure_certificates, tls_files


def _san(pem: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(str(v) for v in ext.get_values_for_type(x509.DNSName)) + sorted(
        str(v) for v in ext.get_values_for_type(x509.IPAddress))


def test_generated_once_with_private_keys_and_every_name(tmp_path):
    files = ensure_certificates(tmp_path, ["pbx.example.org", "192.0.2.10", "127.0.0.1"])
    assert files.generated
    assert _san(files.certfile) == ["pbx.example.org", "127.0.0.1", "192.0.2.10"]
    for key in (files.keyfile, tmp_path / "tls" / "ca-key.pem"):
        assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    before = files.certfile.read_bytes(), files.cafile.read_bytes()
    again = ensure_certificates(tmp_path, ["127.0.0.1", "192.0.2.10", "PBX.example.org"])
    assert (again.certfile.read_bytes(), again.cafile.read_bytes()) == before  # cached

    # new names: a new server certificate from the same CA
    third = tls_files(tmp_path, ["127.0.0.1", "pbx2.example.org"])
    assert third[2].read_bytes() == before[1]
    assert third[0].read_bytes() != before[0]
    assert _san(third[0]) == ["pbx2.example.org", "127.0.0.1"]


def test_renewed_near_expiry(tmp_path):
    first = ensure_certificates(tmp_path, ["127.0.0.1"]).certfile.read_bytes()
    later = datetime.now(UTC) + timedelta(days=380)
    renewed = ensure_certificates(tmp_path, ["127.0.0.1"], now=later).certfile.read_bytes()
    assert renewed != first


def test_a_tls_client_trusting_the_ca_accepts_the_server_for_its_names_only(tmp_path):
    cert, key, ca = tls_files(tmp_path, ["127.0.0.1", "localhost"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello")
            except (ssl.SSLError, OSError):
                pass  # the second client refuses the certificate

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client_ctx = ssl.create_default_context(cafile=str(ca))
        with socket.create_connection(("127.0.0.1", port), 5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.recv(5) == b"hello"
        # a name the certificate does not carry: the same client refuses it
        with socket.create_connection(("127.0.0.1", port), 5) as raw:
            with pytest.raises(ssl.SSLCertVerificationError, match="match"):
                client_ctx.wrap_socket(raw, server_hostname="pbx.example.org")
    finally:
        thread.join(10)
        listener.close()


def test_the_admins_files_are_checked_and_used_as_given(tmp_path):
    made = ensure_certificates(tmp_path / "a", ["127.0.0.1"])
    other = ensure_certificates(tmp_path / "b", ["127.0.0.1"])
    given = ensure_certificates(tmp_path / "c", cert=made.certfile, key=made.keyfile,
                                ca=made.cafile)
    assert given.as_tuple() == (made.certfile, made.keyfile, made.cafile)
    assert not given.generated and not (tmp_path / "c" / "tls").exists()
    with pytest.raises(CertificateError, match="does not belong"):
        ensure_certificates(tmp_path / "c", cert=made.certfile, key=other.keyfile)
    with pytest.raises(CertificateError, match="needs its key"):
        ensure_certificates(tmp_path / "c", cert=made.certfile)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(CertificateError, match="not a readable PEM certificate"):
        ensure_certificates(tmp_path / "c", cert=bad, key=made.keyfile)
    made.keyfile.chmod(0o644)
    with pytest.raises(CertificateError, match="chmod 600"):
        ensure_certificates(tmp_path / "c", cert=made.certfile, key=made.keyfile)


def test_names_must_be_hosts_or_addresses(tmp_path):
    with pytest.raises(CertificateError, match="not a host name"):
        ensure_certificates(tmp_path, ["http://pbx/"])
    with pytest.raises(CertificateError, match="no host name"):
        ensure_certificates(tmp_path, ["0.0.0.0"])
