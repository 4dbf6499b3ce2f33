"""`homeline demo`: real calls through a real Asterisk to registered softphones."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "demo",
        help="live demo: agents register, callers dial, the router picks, audio is verified",
        description=__doc__,
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from homeline.demo import main

    return main(as_json=args.json)
