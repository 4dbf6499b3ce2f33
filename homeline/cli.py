"""The ``homeline`` command: one argparse tree, one sub-module per area.

Each module in ``homeline.commands`` exposes ``register(subparsers)``; it adds its
sub-commands and sets ``func`` (taking the parsed args, returning an exit code).
Heavy imports happen inside the handlers so ``homeline --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

COMMAND_MODULES = (
    "setup",
    "asterisk",
    "dialplan",
    "engine",
    "demo",
    "softphone",
    "flow",
    "route",
    "agent",
    "calls",
    "staffing",
    "prompts",
    "dtmf",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeline",
        description="IVR and skills-based routing for home agents, on a real Asterisk.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"homeline.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
