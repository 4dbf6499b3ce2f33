"""The web app wired to a stack: the session secret and the phone in the page.

The composition root's part of the agent portal (`web/` is the adapter and knows
no stack): `build_app` gives the Starlette app its settings; `phone_settings`
decides, from the stack's directory and secrets, which agents get the page's
WebRTC phone and with which SIP identity; `start_web` serves it in a thread
(``homeline engine run``, the demo, tests). ``homeline serve`` uses the same.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from homeline.stack import PbxStack
    from routing.directory import Directory
    from store import Store
    from web import PhoneSettings, WebServer

__all__ = ["SESSION_SECRET", "METRICS_TOKEN", "build_app", "phone_settings", "start_web",
           "vendor_dir", "wss_host"]

SESSION_SECRET = "web:session"  # its name in secrets.json
METRICS_TOKEN = "web:metrics"  # the Bearer token of GET /metrics (web/stats.py)


def vendor_dir(say: Callable[[str], None] | None = None) -> Path | None:
    """The browser libraries' directory for this checkout's package-lock.json (it
    may not exist yet: the app then answers 503 for them, naming `homeline setup`)."""
    from homeline.provision.browser_libs import BrowserLibsError, browser_libs_dir
    from web.vendor import SETUP_HINT, missing_vendor_files

    tell = say or (lambda m: print(m, file=sys.stderr))
    try:
        where = browser_libs_dir()
    except BrowserLibsError as exc:
        tell(f"browser libraries: {exc}")
        return None
    missing = missing_vendor_files(where)
    if missing:
        tell(f"browser libraries missing under {where} ({', '.join(missing)}): {SETUP_HINT}")
    return where


def wss_host(stack: PbxStack) -> str:
    """The host name in the phone's ``wss://`` URL: the first name the admin gave for
    the certificate (what agents type), else the secure bind address; a wildcard
    bind with no name leaves 127.0.0.1 (in the generated certificate too)."""
    sec = stack.secure
    if sec.names:
        return sec.names[0]
    if sec.bind in ("0.0.0.0", "::", "[::]"):
        return "127.0.0.1"
    return f"[{sec.bind}]" if ":" in sec.bind else sec.bind


def phone_settings(stack: PbxStack) -> PhoneSettings | None:
    """The phone in the page for the agents and the supervisors whose ``phone:`` is
    ``webrtc``: JsSIP registers to Asterisk's HTTPS server (http.conf ``tlsbindaddr``,
    path ``/ws``: res_http_websocket, res_pjsip_transport_websocket) with the
    endpoint's own credentials (pjsip-agent.conf.tmpl: username = agent or supervisor
    id, the stack's secret). None when nobody has a WebRTC endpoint (the phone APIs
    then answer 404)."""
    from web import PhoneSettings

    webrtc = frozenset(a.id for a in stack.directory.agents if a.phone == "webrtc")
    desk = frozenset(s.id for s in stack.supervisors if s.phone == "webrtc")
    if not webrtc and not desk:
        return None
    host = wss_host(stack)

    # only a webrtc endpoint takes a WebSocket registration: a udp/tls agent's or
    # supervisor's password never reaches a browser; each lookup knows only its own kind
    def credentials(agent_id: str) -> str | None:
        return stack.agent_secret(agent_id) if agent_id in webrtc else None

    def supervisor_credentials(user: str) -> str | None:
        return stack.agent_secret(user) if user in desk else None

    return PhoneSettings(wss_url=f"wss://{host}:{stack.ports.https}/ws", sip_domain=host,
                         credentials=credentials,
                         supervisor_credentials=supervisor_credentials)


def build_app(store: Store, directory: Directory, state: Path, *, https: bool,
              idle_timeout_s: float = 30 * 60.0, forecast: Path | None = None,
              phone: PhoneSettings | None = None,
              clock: Callable[[], datetime] | None = None,
              say: Callable[[str], None] | None = None,
              supervisors: tuple[str, ...] = (), text_config: Path | None = None) -> Any:
    """The web app over ``store``, its session secret from ``state``/secrets.json.
    ``phone`` None: no WebRTC endpoints (``GET .../phone`` answers 404).
    ``supervisors``: those with an endpoint of their own (the desk rings them).
    ``text_config``: the text channels' file (default dialplans/text.yaml)."""
    from homeline.secrets import SecretStore
    from web import WebSettings, create_app

    secrets = SecretStore(state / "secrets.json")
    settings = WebSettings(session_secret=secrets.get(SESSION_SECRET), https=https,
                           idle_timeout_s=idle_timeout_s, vendor_dir=vendor_dir(say),
                           forecast=forecast, phone=phone,
                           metrics_token=secrets.get(METRICS_TOKEN), supervisors=supervisors)
    from homeline.textwiring import TEXT_CONFIG, text_channels
    from web.textexec import TextChatStore

    now = clock or (lambda: datetime.now(UTC))
    # the text tables are SqliteStore's (store.text.TextTables), as the desk's are
    text = text_channels(cast(TextChatStore, store), secrets, now, say=say,
                         directory=directory, path=text_config or TEXT_CONFIG)
    return create_app(store, directory, now, settings, text=text)


def start_web(stack: PbxStack, store: Store, *, host: str = "127.0.0.1", port: int = 0,
              https: bool = True, idle_timeout_s: float = 30 * 60.0,
              forecast: Path | None = None, clock: Callable[[], datetime] | None = None,
              say: Callable[[str], None] | None = None) -> WebServer:
    """Serve the portal for ``stack`` (its directory, its phone settings) in a thread;
    HTTPS with the stack's certificate (homeline/certs.py: the admin's or the test
    CA's, the one Asterisk's TLS and WSS use) unless ``https=False``."""
    from web import WebServer

    app = build_app(store, stack.directory, stack.state_dir, https=https,
                    idle_timeout_s=idle_timeout_s, forecast=forecast,
                    phone=phone_settings(stack), clock=clock, say=say,
                    supervisors=tuple(s.id for s in stack.supervisors),
                    text_config=stack.text_config)
    certfile = keyfile = None
    if https:
        files = stack.tls_files()
        certfile, keyfile = Path(files.certfile), Path(files.keyfile)
    return WebServer(app, host, port, certfile=certfile, keyfile=keyfile).start()
