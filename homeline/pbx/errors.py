"""Exceptions of ``homeline.pbx``: one root, one subclass per kind of fault."""
from __future__ import annotations

__all__ = ["PbxError", "SandboxError", "AsteriskError", "AsteriskStartError", "AsteriskCliError"]


class PbxError(Exception):
    """Root of every error raised by ``homeline.pbx``."""


class SandboxError(PbxError):
    """Provisioning the Asterisk root failed; the message names the step and its log."""


class AsteriskError(PbxError):
    """A running (or supposedly running) Asterisk instance misbehaved."""


class AsteriskStartError(AsteriskError):
    """Asterisk exited or did not reach FullyBooted; the message carries its last log lines."""


class AsteriskCliError(AsteriskError):
    """``asterisk -rx`` could not reach the instance or did not answer in time."""
