"""`homeline text check [FILE]`: check the text channels' file (dialplans/text.yaml)
as the web app does when it starts: every problem at once, exit 1 when any."""
from __future__ import annotations

import argparse
from pathlib import Path

from homeline.paths import DIALPLANS_DIR

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("text", help="tools for the text channels' file (SMS, Messenger)",
                       description=__doc__)
    s = p.add_subparsers(dest="text_command", metavar="ACTION")
    s.required = True
    ck = s.add_parser("check", help="check dialplans/text.yaml: every problem at once")
    ck.add_argument("file", nargs="?", type=Path, default=DIALPLANS_DIR / "text.yaml")
    ck.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from text import TextConfigError, load_text_config

    try:
        config = load_text_config(args.file)
    except TextConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    print(f"{args.file}: ok ({len(config.intents)} intents, languages "
          f"{', '.join(config.languages)})")
    return 0
