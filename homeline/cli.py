"""The ``homeline`` command: one argparse tree, one sub-module per area.

Each module in ``homeline.commands`` exposes ``register(subparsers)``; it adds its
sub-commands and sets ``func`` (taking the parsed args, returning an exit code).
Heavy imports happen inside the handlers so ``homeline --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser", "EXIT_PIPE_CLOSED"]

# What a shell reports for a process killed by SIGPIPE (128 + 13), so that
# `homeline flow check ... | head -1` under `set -o pipefail` is told apart from
# "problems found" (1).
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE

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
    "stats",
    "staffing",
    "prompts",
    "dtmf",
    "user",
    "serve",
    "secrets",
    "text",
    "postgres",
    "cluster",
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
        code = int(args.func(args) or 0)
        # Flush inside the try: a reader that went away (`| head -1`) shows up here,
        # not as "Exception ignored ... BrokenPipeError" when Python exits.
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The Python docs' recipe (signal module, "Note on SIGPIPE"): point stdout at
        # devnull so the flush at interpreter exit cannot raise again, and exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED


if __name__ == "__main__":  # `python -m homeline.cli ...` as well as `python -m homeline`
    sys.exit(main())
