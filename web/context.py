"""What every handler of the web app shares: the store, the directory, the clock,
the settings, and the sessions / passwords / throttle built from them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from routing.directory import Directory
from routing.windows import check_aware
from store import Store
from web.auth import LoginThrottle, Passwords, Principal, Sessions
from web.errors import ApiError

__all__ = ["WebSettings", "PhoneSettings", "WebContext", "SESSION_KEY"]

SESSION_KEY = "t"  # the token's key inside the signed cookie


@dataclass(frozen=True, slots=True)
class PhoneSettings:
    """The phone in the page: JsSIP over WSS to Asterisk's res_pjsip WebSocket transport.

    ``credentials(agent_id)`` gives the SIP password of the agent's WebRTC endpoint
    (the ``[agent-auth]`` of pjsip-agent.conf.tmpl: username = agent id), or None
    when that agent has no WebRTC endpoint. ``supervisor_credentials(user)`` the
    same for a supervisor's own endpoint (dialplans/supervisors.yaml, ``phone:
    webrtc``; username = supervisor id = web user name), None for any other: two
    functions, so an agent's lookup can never give a supervisor's password.
    """

    wss_url: str  # e.g. wss://pbx.example.org:8089/ws
    sip_domain: str  # the host part of the agents' SIP URIs
    credentials: Callable[[str], str | None]
    ice_servers: tuple[str, ...] = ()  # STUN/TURN URLs for RTCPeerConnection
    supervisor_credentials: Callable[[str], str | None] = lambda _user: None

    def __post_init__(self) -> None:
        if urlsplit(self.wss_url).scheme != "wss":
            raise ValueError(f"the phone's WebSocket URL must be wss:// (got {self.wss_url!r})")

    def registration(self, endpoint: str, password: str) -> dict[str, Any]:
        """What the page's JsSIP phone (web/static/phone.js) registers with."""
        return {"wss_url": self.wss_url, "sip_uri": f"sip:{endpoint}@{self.sip_domain}",
                "authorization_user": endpoint, "password": password,
                "ice_servers": [{"urls": u} for u in self.ice_servers]}

    @property
    def origin(self) -> str:
        u = urlsplit(self.wss_url)
        return f"{u.scheme}://{u.netloc}"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """How the web app runs. ``session_secret`` signs the session cookie: the
    composition root keeps it with the stack's other secrets (`homeline.secrets`)."""

    session_secret: str
    https: bool = False  # cookies get the Secure flag and the __Host- prefix
    idle_timeout_s: float = 30 * 60.0  # OWASP: 15-30 min for low-risk applications
    session_max_age_s: int = 12 * 3600  # absolute lifetime, whatever the activity
    login_max_failures: int = 5
    login_window_s: float = 15 * 60.0
    login_lockout_s: float = 15 * 60.0
    max_body_bytes: int = 64 * 1024
    vendor_dir: Path | None = None  # the npm cache of the browser libraries (homeline setup)
    forecast: Path | None = None  # staffing forecast CSV: open slots on "My hours"
    phone: PhoneSettings | None = None  # None: no WebRTC endpoints yet (GET .../phone is 404)
    events_poll_s: float = 1.0  # how often a page's event stream looks at the store
    metrics_token: str | None = None  # Bearer token of GET /metrics (None: /metrics is 404)
    # supervisors with a phone of their own (dialplans/supervisors.yaml): the users
    # the desk may ring for listen/whisper/barge
    supervisors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.session_secret) < 16:
            raise ValueError("the session secret needs at least 16 characters")
        if self.idle_timeout_s <= 0 or self.session_max_age_s <= 0:
            raise ValueError("session timeouts must be positive")

    @property
    def cookie_name(self) -> str:
        # the __Host- prefix: only over HTTPS, for this host only, path / (RFC 6265bis 4.1.3.2)
        return "__Host-homeline" if self.https else "homeline"


class WebContext:
    def __init__(self, store: Store, directory: Directory, clock: Callable[[], datetime],
                 settings: WebSettings, passwords: Passwords | None = None) -> None:
        self.store = store
        self.directory = directory
        self.clock = clock
        self.settings = settings
        self.passwords = passwords or Passwords()
        self.sessions = Sessions(store, settings.idle_timeout_s, settings.session_max_age_s)
        self.throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s,
                                      settings.login_lockout_s)
        self.chats = False  # the chat panel is served (text channels configured: web.app)

    def now(self) -> datetime:
        now = self.clock()
        check_aware(now)
        return now

    def agent_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.directory.agents)

    def principal(self, request: Request, *, touch: bool = True) -> Principal | None:
        """The logged-in user of ``request`` (store I/O: call it from a worker thread);
        ``touch=False`` checks the session without counting it as activity."""
        token = request.session.get(SESSION_KEY)
        return self.sessions.resolve(token if isinstance(token, str) else None, self.now(),
                                     touch=touch)

    def page(self, p: Principal | None, title: str, nav: str = "", *,
             vendor_missing: tuple[str, ...] | list[str] = (), setup_hint: str = ""
             ) -> dict[str, Any]:
        """What every page's template (base.html) needs: title, navigation, the user,
        the CSRF token, the idle timeout, and the browser libraries not installed."""
        return {"title": title, "nav": nav, "user": p.user if p else None,
                "csrf": p.session.csrf if p else None, "agent_id": p.agent_id if p else None,
                "vendor_missing": vendor_missing, "setup_hint": setup_hint,
                "idle_timeout_s": self.settings.idle_timeout_s}

    def require(self, request: Request) -> Principal:
        p = self.principal(request)
        if p is None:
            raise ApiError(401, "not logged in (or the session ended): POST /api/session "
                                "with {\"user\", \"password\"}")
        return p
