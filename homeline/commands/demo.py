"""`homeline demo`: real calls through a real Asterisk to registered softphones."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "demo",
        help="live demo: agents register, callers dial, the router picks, audio is verified",
        description=__doc__,
    )
    parser.add_argument("--json", action="store_true",
                        help="print only the result as JSON (the portal's address and "
                        "login included)")
    parser.add_argument("--portal-port", type=int, default=8080, metavar="PORT",
                        help="the agent portal's port on 127.0.0.1 (default 8080; any free "
                        "port when it is taken; 0: any free port)")
    parser.add_argument("--keep-open", type=float, default=0.0, metavar="S",
                        help="keep the PBX, the engine and the portal up S seconds after "
                        "the calls (Ctrl-C ends sooner)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from homeline.demo import main

    return main(as_json=args.json, portal_port=args.portal_port, keep_open_s=args.keep_open)
