"""Secrets that must never be in the repository: agents' SIP passwords and the
engine's AMI secret. Generated on first use, stored as JSON with 0600
permissions in the state directory."""
from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

__all__ = ["SecretStore", "SecretStoreError"]


class SecretStoreError(Exception):
    """The secrets file exists but cannot be used."""


class SecretStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecretStoreError(
                f"{self.path}: permissions {oct(mode)} let others read the secrets; "
                "expected 0600 (chmod 600 it)"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SecretStoreError(f"{self.path}: not a readable JSON secrets file: {exc}") from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise SecretStoreError(f"{self.path}: expected a JSON object of name -> secret strings")
        return data

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def get(self, name: str) -> str:
        """The secret called ``name``, generated and stored the first time it is asked for."""
        with self._lock:
            data = self._read()
            if name not in data:
                data[name] = secrets.token_urlsafe(18)
                self._write(data)
            return data[name]

    def lookup(self, name: str) -> str | None:
        """The secret called ``name`` if an admin set it (never generated: a provider's
        token only means something when it is the provider's)."""
        with self._lock:
            return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` as the secret ``name`` (``homeline secrets set NAME``)."""
        if not value:
            raise SecretStoreError(f"{name}: an empty secret is not stored")
        with self._lock:
            data = self._read()
            data[name] = value
            self._write(data)
