"""`homeline dialplan render`: write the Asterisk configuration from dialplans/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from homeline.paths import DIALPLANS_DIR

if TYPE_CHECKING:
    from routing import Directory


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("dialplan", help="Asterisk configuration from dialplans/templates")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    render = actions.add_parser(
        "render", help="write pjsip.conf, extensions.conf, manager.conf ... into a directory")
    render.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml",
                        help="agent directory (default: dialplans/agents.yaml)")
    render.add_argument("--out", type=Path, default=None,
                        help="where to write (default: <state dir>/asterisk-etc)")
    add_trunk_arguments(render)
    render.set_defaults(func=run_render)


def add_trunk_arguments(parser: argparse.ArgumentParser) -> None:
    """Where numbers outside go: overflow ext:NUMBER, transfer nodes, callbacks."""
    trunk = parser.add_mutually_exclusive_group()
    trunk.add_argument("--trunk-contact", default="", metavar="SIP_URI",
                       help="a static trunk to dial numbers outside through, e.g. "
                       "sip:192.0.2.10:5060 (rendered as the endpoint homeline-external)")
    trunk.add_argument("--trunk-endpoint", default="", metavar="NAME",
                       help="an existing PJSIP endpoint to dial numbers outside through")


def load_directory_or_report(path: Path) -> Directory | None:
    """The agent directory, or None after printing every problem in it."""
    from routing import DirectoryError, load_directory

    try:
        return load_directory(path)
    except DirectoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def run_render(args: argparse.Namespace) -> int:
    from homeline.paths import state_dir
    from homeline.pbx.render import RenderError, write_config
    from homeline.stack import PbxStack, Ports

    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    stack = PbxStack("main", directory, state_dir(), Ports.standard(),
                     external_contact=args.trunk_contact, external_endpoint=args.trunk_endpoint)
    try:
        files = stack.render()
    except RenderError as exc:
        print(exc, file=sys.stderr)
        return 1
    out = args.out or state_dir() / "asterisk-etc"
    for path in write_config(files, out):
        print(path)
    return 0
