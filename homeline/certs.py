"""TLS certificates for SIP over TLS, Asterisk's HTTPS/WSS server and the web app.

Either the admin gives a certificate and its key (and, optionally, the CA
bundle that signed it), or Homeline makes a private test CA and a server
certificate for the configured host names and addresses, once, in
``<state dir>/tls/``:

- ``ca.pem`` / ``ca-key.pem``: the test CA (10 years); softphones and browsers
  are told to trust ``ca.pem``;
- ``server.pem`` / ``server-key.pem``: the server certificate signed by it
  (397 days), with every name as a subjectAltName (RFC 5280 section 4.2.1.6:
  IP addresses as iPAddress entries, others as dNSName); made again when the
  names change or it is within 30 days of expiry; the CA is kept;
- keys are written 0600; nothing here is ever put into the repository.

Keys are ECDSA P-256 (OpenSSL, pjsip's ssl_sock_ossl and browsers all take
it). Built with the ``cryptography`` package; :func:`tls_files` is the one
call the other components need.
"""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["CertFiles", "CertificateError", "DEFAULT_NAMES", "ensure_certificates",
           "tls_files"]

DEFAULT_NAMES = ("localhost", "127.0.0.1")
CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a server certificate (CA/B Forum)
RENEW_BEFORE = timedelta(days=30)
_SUBDIR = "tls"


class CertificateError(Exception):
    """A certificate or key cannot be used; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class CertFiles:
    """PEM files: the server certificate (chain), its private key, and the CA to trust."""

    certfile: Path
    keyfile: Path
    cafile: Path
    generated: bool = False

    def as_tuple(self) -> tuple[Path, Path, Path]:
        return self.certfile, self.keyfile, self.cafile


def tls_files(state_dir: Path, names: Iterable[str] = DEFAULT_NAMES, *,
              cert: Path | None = None, key: Path | None = None,
              ca: Path | None = None) -> tuple[Path, Path, Path]:
    """``(certfile, keyfile, cafile)`` for ``names``: the admin's files, or generated ones."""
    return ensure_certificates(state_dir, names, cert=cert, key=key, ca=ca).as_tuple()


def ensure_certificates(state_dir: Path, names: Iterable[str] = DEFAULT_NAMES, *,
                        cert: Path | None = None, key: Path | None = None,
                        ca: Path | None = None, now: datetime | None = None) -> CertFiles:
    """The certificate files for ``names`` (host names and IP addresses).

    With ``cert`` and ``key`` (the admin's), they are checked (both load, the key
    belongs to the certificate, not expired) and returned as they are; ``ca``
    defaults to ``cert`` (a chain file, or a self-signed certificate). Without
    them, the test CA and a server certificate under ``state_dir/tls`` are made
    if missing or stale. Raises :class:`CertificateError`.
    """
    when = now or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    wanted = _normalise(names)
    if cert is not None or key is not None:
        if cert is None or key is None:
            raise CertificateError("a certificate needs its key and a key its certificate "
                                   f"(got cert={cert}, key={key})")
        _check_given(Path(cert), Path(key), when)
        return CertFiles(Path(cert), Path(key), Path(ca) if ca else Path(cert))
    directory = Path(state_dir) / _SUBDIR
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the stack and the web app may ask at once
        try:
            return _ensure_generated(directory, wanted, when)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- generated ---------------------------------------------------------------------


def _normalise(names: Iterable[str]) -> tuple[str, ...]:
    out: set[str] = set()
    for raw in names:
        name = raw.strip().lower()
        if not name or name in ("0.0.0.0", "::"):
            continue  # a wildcard bind is no name a client connects to
        try:
            name = str(ipaddress.ip_address(name.strip("[]")))
        except ValueError:
            if any(c in name for c in " /\\:@"):
                raise CertificateError(f"{raw!r}: not a host name or an IP address") from None
        out.add(name)
    if not out:
        raise CertificateError("no host name or address to put in the certificate")
    return tuple(sorted(out))


def _ensure_generated(directory: Path, names: tuple[str, ...], now: datetime) -> CertFiles:
    from cryptography import x509

    ca_pem, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    srv_pem, srv_key = directory / "server.pem", directory / "server-key.pem"
    meta_file = directory / "server.json"
    files = CertFiles(srv_pem, srv_key, ca_pem, generated=True)
    if not (ca_pem.exists() and ca_key.exists()) or _expiring(ca_pem, now, timedelta(days=365)):
        _make_ca(ca_pem, ca_key, now)
        srv_pem.unlink(missing_ok=True)
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    fresh = (srv_pem.exists() and srv_key.exists()
             and meta.get("names") == list(names)
             and meta.get("ca_serial") == ca_cert.serial_number
             and not _expiring(srv_pem, now, RENEW_BEFORE))
    if not fresh:
        _make_server(ca_pem, ca_key, srv_pem, srv_key, names, now)
        _write(meta_file, json.dumps({"names": list(names),
                                      "ca_serial": ca_cert.serial_number}).encode(), 0o644)
    return files


def _expiring(pem: Path, now: datetime, margin: timedelta) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
    except (OSError, ValueError):
        return True
    return cert.not_valid_after_utc - margin <= now


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    # traditional "EC PRIVATE KEY" PEM: what Asterisk's and pjsip's OpenSSL code
    # (SSL_CTX_use_PrivateKey_file) and Python's ssl module all read
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _make_ca(pem: Path, key_path: Path, now: datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Homeline"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Homeline test CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(pem, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _make_server(ca_pem: Path, ca_key_path: Path, pem: Path, key_path: Path,
                 names: Sequence[str], now: datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Homeline"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        # serverAuth for SIP/HTTPS servers; clientAuth too: Asterisk presents the
        # same certificate when it is the DTLS client of a WebRTC call (RFC 5763)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(pem, cert.public_bytes(serialization.Encoding.PEM), 0o644)


# -- given by the admin ------------------------------------------------------------


def _check_given(cert: Path, key: Path, now: datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"{cert}: not a readable PEM certificate: {exc}") from exc
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"{key}: not a readable, unencrypted PEM private key: {exc}") \
            from exc
    leaf = certs[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if (leaf.public_key().public_bytes(serialization.Encoding.DER, pub)
            != private.public_key().public_bytes(serialization.Encoding.DER, pub)):
        raise CertificateError(f"{key}: this key does not belong to the certificate in {cert}")
    if leaf.not_valid_after_utc <= now:
        raise CertificateError(f"{cert}: expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    if key.stat().st_mode & 0o077:
        raise CertificateError(f"{key}: others may read this private key; chmod 600 it")
