"""`homeline serve`: the web app (agent portal and its JSON API) on uvicorn.

HTTP on 127.0.0.1:8080 by default; HTTPS when ``--certfile`` and ``--keyfile``
are given (the cookie then gets the Secure flag). The session cookie's signing
secret is generated once and kept with the stack's other secrets
(``secrets.json`` in the state directory, or ``--stack DIR``). When that
directory holds a running stack's ``stack.json`` (``homeline asterisk up``), the
agents whose phone is ``webrtc`` get the phone in the page: JsSIP over
``wss://HOST:HTTPS_PORT/ws`` of that Asterisk. ``homeline engine run`` starts
the same app itself (``--no-web`` not to).
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from homeline.paths import DIALPLANS_DIR, STORE_HELP

if TYPE_CHECKING:
    from routing.directory import Directory
    from web import PhoneSettings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the web app (agent portal, JSON API)",
                       description=__doc__)
    p.add_argument("--stack", type=Path, default=None, metavar="DIR",
                   help="state dir whose secrets.json keeps the session secret "
                   "(default: the state dir)")
    p.add_argument("--db", default=None, help=STORE_HELP + ": users, sessions, hours")
    p.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml")
    p.add_argument("--supervisors", type=Path, default=None,
                    help="who may listen/whisper/barge, from which endpoint "
                         "(default dialplans/supervisors.yaml; none without it)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--certfile", type=Path, default=None, help="PEM certificate: serve HTTPS")
    p.add_argument("--keyfile", type=Path, default=None, help="PEM key of --certfile")
    p.add_argument("--idle-timeout", type=float, default=30 * 60.0, metavar="S",
                   help="end a session after S seconds without a request (default 1800)")
    p.add_argument("--forecast", type=Path, default=None, metavar="CSV",
                   help="staffing forecast (as `homeline staffing week --forecast`): "
                   "agents see next week's open slots on My hours")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from homeline.commands.dialplan import load_directory_or_report, load_supervisors_or_report
    from homeline.paths import state_dir, store_address
    from homeline.secrets import SecretStoreError
    from homeline.webapp import build_app
    from store import StoreError, open_store
    from web import WebError
    from web.server import uvicorn_config

    if (args.certfile is None) != (args.keyfile is None):
        print("--certfile and --keyfile go together (HTTPS needs both)", file=sys.stderr)
        return 2
    for f in (args.certfile, args.keyfile, args.forecast):
        if f is not None and not f.is_file():
            print(f"{f}: no such file", file=sys.stderr)
            return 2
    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    supervisors = load_supervisors_or_report(directory, args.supervisors)
    if supervisors is None:
        return 1
    try:
        store = open_store(store_address(args.db))
        store.sync_agents(directory)
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        state = args.stack or state_dir()
        app = build_app(store, directory, state,
                        https=args.certfile is not None, idle_timeout_s=args.idle_timeout,
                        forecast=args.forecast, phone=_phone_of(state, directory),
                        supervisors=tuple(s.id for s in supervisors))
        config = uvicorn_config(app, args.host, args.port, args.certfile, args.keyfile)
    except (SecretStoreError, WebError, ValueError) as exc:
        store.close()
        print(exc, file=sys.stderr)
        return 1
    scheme = "https" if args.certfile else "http"
    print(f"web app on {scheme}://{args.host}:{args.port}/ (Ctrl-C to stop); "
          "users: `homeline user add NAME --role agent`", flush=True)
    # uvicorn catches SIGINT/SIGTERM, shuts down gracefully, restores the handlers it
    # found and raises the signal again (uvicorn/server.py, Server.capture_signals):
    # with this SIGTERM handler and the KeyboardInterrupt below, a stop is exit 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def _phone_of(state: Path, directory: Directory) -> PhoneSettings | None:
    """The phone in the page for the stack described in ``state``/stack.json, or None
    (no stack there yet: the phone API answers 404, the page says so)."""
    from homeline.stack import PbxStack
    from homeline.webapp import phone_settings

    if not (state / "stack.json").is_file():
        return None
    try:
        stack = PbxStack.from_state(state, directory)
    except ValueError as exc:
        print(f"the phone in the page is off: {exc}", file=sys.stderr)
        return None
    return phone_settings(stack)
