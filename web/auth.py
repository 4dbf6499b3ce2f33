"""Who is asking: passwords, sessions, CSRF tokens and login throttling.

Sources for the choices made here:

- passwords: argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile),
  rehashed on login when those defaults change
  (https://argon2-cffi.readthedocs.io/en/stable/api.html);
- sessions (OWASP Session Management Cheat Sheet): a new random token at every
  login (no fixation), only a digest of it kept server-side, an idle timeout
  checked on the server from the session's last activity, an absolute lifetime,
  and logout, a password change or the user's removal ending it there;
- CSRF (OWASP CSRF Prevention Cheat Sheet): a per-session synchronizer token sent
  back in the ``X-CSRF-Token`` header on every state-changing request, compared
  in constant time, plus the Origin / Sec-Fetch-Site check as defence in depth
  and SameSite=Strict cookies;
- login throttling (OWASP Authentication Cheat Sheet, "Login Throttling"):
  failures counted per user name and per client address; past the limit both
  are refused with 429 and Retry-After for a while, whatever the password.
  Kept in memory: a restart forgets the counts.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from store import Store, User, WebSession

__all__ = ["Passwords", "Principal", "Sessions", "LoginThrottle", "csrf_matches",
           "new_password", "MIN_PASSWORD_LENGTH", "MAX_PASSWORD_LENGTH"]

# NIST SP 800-63B 5.1.1.2: at least 8 characters, at least 64 allowed
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def new_password() -> str:
    """A generated password (96 random bits, URL-safe text)."""
    return secrets.token_urlsafe(12)


class Passwords:
    """argon2id hashing and checking; one instance is safe to share between threads."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise ValueError(f"a password needs {MIN_PASSWORD_LENGTH} to "
                             f"{MAX_PASSWORD_LENGTH} characters (got {len(password)})")
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; an unknown user (``None``) costs the same time,
        so the answer's delay does not tell which user names exist."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
            stored_hash = self._dummy
            password = ""  # never matches the dummy
        try:
            return bool(self._hasher.verify(stored_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return bool(self._hasher.check_needs_rehash(stored_hash))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_matches(expected: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(expected.encode(), sent.encode())


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a request, with the session they came with."""

    user: User
    session: WebSession

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def agent_id(self) -> str | None:
        return self.user.agent_id

    def may_read(self, agent_id: str) -> bool:
        """Supervisors and admins read every agent; an agent only themself."""
        return self.role in ("supervisor", "admin") or self.agent_id == agent_id

    def may_change(self, agent_id: str) -> bool:
        """Only the agent changes their own hours and state."""
        return self.agent_id == agent_id


class Sessions:
    """Sessions kept in the store; the browser's cookie carries only the token."""

    def __init__(self, store: Store, idle_timeout_s: float, max_age_s: float) -> None:
        self.store = store
        self.idle = timedelta(seconds=idle_timeout_s)
        self.max_age = timedelta(seconds=max_age_s)

    def start(self, user: User, now: datetime) -> tuple[str, WebSession]:
        """A new session for ``user``: (the cookie's token, the stored session)."""
        token = secrets.token_urlsafe(32)
        session = WebSession(_digest(token), user.name, secrets.token_urlsafe(32), now, now)
        self.store.add_session(session)
        return token, session

    def resolve(self, token: str | None, now: datetime, *, touch: bool = True
                ) -> Principal | None:
        """The principal of a cookie's token, or None (no token, ended, idle too long);
        the session's last activity moves to ``now`` unless ``touch`` is False (a
        page's open event stream is not activity: the idle timeout still applies)."""
        if not token:
            return None
        sid = _digest(token)
        session = self.store.session(sid)
        if session is None:
            return None
        if now - session.last_seen > self.idle or now - session.created_at > self.max_age:
            self.store.remove_session(sid)
            return None
        user = self.store.user(session.user)
        if user is None:
            self.store.remove_session(sid)
            return None
        if touch:
            self.store.touch_session(sid, now)
        return Principal(user, session)

    def end(self, token: str | None) -> None:
        if token:
            self.store.remove_session(_digest(token))

    def sweep(self, now: datetime) -> int:
        """Forget sessions idle past the timeout (called now and then, at login)."""
        return self.store.remove_sessions_idle_since(now - self.idle)


class LoginThrottle:
    """Failed logins per key (``user:NAME``, ``addr:IP``) within a sliding window.

    ``max_failures`` failures within ``window_s`` lock the key for ``lockout_s``.
    At most ``max_keys`` keys are remembered (the oldest are forgotten first), so
    a flood of made-up names cannot grow it without bound.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 900.0,
                 lockout_s: float = 900.0, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self._fails: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str], now: float) -> float | None:
        """Seconds until the first locked key of ``keys`` opens again; None when none is."""
        with self._lock:
            waits = [until - now for k in keys
                     if (until := self._locked.get(k)) is not None and until > now]
        return max(waits) if waits else None

    def failed(self, keys: Iterable[str], now: float) -> None:
        with self._lock:
            for k in keys:
                q = self._fails.pop(k, None) or deque()
                q.append(now)
                while q and q[0] <= now - self.window_s:
                    q.popleft()
                if len(q) >= self.max_failures:
                    self._locked[k] = now + self.lockout_s
                    q.clear()
                self._fails[k] = q  # re-inserted: dict order is least recently failed first
            while len(self._fails) > self.max_keys:
                self._fails.pop(next(iter(self._fails)))
            for k in [k for k, until in self._locked.items() if until <= now]:
                del self._locked[k]
            while len(self._locked) > self.max_keys:
                self._locked.pop(next(iter(self._locked)))

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)
