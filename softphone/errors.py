"""The softphone package's exceptions: one root, :class:`SoftphoneError`."""
from __future__ import annotations

__all__ = [
    "SoftphoneError",
    "SoftphoneUnavailable",
    "SoftphoneTimeout",
    "RegistrationError",
    "CallError",
]


class SoftphoneError(Exception):
    """Root of every error raised by :mod:`softphone`."""


class SoftphoneUnavailable(SoftphoneError):
    """The pjsua2 module is missing or cannot start (run ``homeline setup``)."""


class SoftphoneTimeout(SoftphoneError, TimeoutError):
    """Something awaited did not happen in time; the message says what."""


class RegistrationError(SoftphoneError):
    """The registrar refused the REGISTER (e.g. 401 wrong password, 403 forbidden)."""

    def __init__(self, user: str, status: int, reason: str, registrar: str) -> None:
        super().__init__(
            f"registration of {user!r} at {registrar} failed: {status} {reason}".rstrip()
        )
        self.user = user
        self.status = status
        self.reason = reason
        self.registrar = registrar


class CallError(SoftphoneError):
    """A call operation cannot be done, or a call ended where an answer was required."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
