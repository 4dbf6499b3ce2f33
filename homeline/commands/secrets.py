"""`homeline secrets set NAME`: store a provider's secret, read from stdin.

The text channels' secrets (issue 11) come from the providers, so they are set
by an admin rather than generated: ``sms:auth_token`` (Twilio's auth token: the
key of ``X-Twilio-Signature``), ``messenger:app_secret`` (the key of
``X-Hub-Signature-256``), ``messenger:verify_token`` (the webhook handshake) and
``messenger:page_token`` (sending replies); ``node:trunk`` is the secret the
trunks between several nodes share (homeline/nodefile.py: the same value on
every node, at least 16 characters). They go to ``secrets.json`` (0600) of
the state directory (or ``--stack DIR``), beside the SIP and AMI secrets. The
value is read from stdin (one line; never an argument, which ``ps`` and shell
history would show) and never printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "SETTABLE"]

SETTABLE = ("sms:auth_token", "messenger:app_secret", "messenger:verify_token",
            "messenger:page_token", "node:trunk")
MAX_SECRET = 4096


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("secrets", help="set a provider's secret (read from stdin)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="secrets_command", metavar="ACTION")
    s.required = True
    st = s.add_parser("set", help="store NAME's value read from stdin")
    st.add_argument("name", choices=SETTABLE, metavar="NAME", help=", ".join(SETTABLE))
    st.add_argument("--stack", type=Path, default=None, metavar="DIR",
                    help="state dir whose secrets.json keeps it (default: the state dir)")
    st.set_defaults(func=run_set)


def run_set(args: argparse.Namespace) -> int:
    from homeline.paths import state_dir
    from homeline.secrets import SecretStore, SecretStoreError

    if sys.stdin.isatty():
        print(f"type the value of {args.name} and press Enter:", file=sys.stderr)
    value = sys.stdin.readline(MAX_SECRET + 2).rstrip("\r\n")
    if not value.strip():
        print(f"secrets: no value for {args.name} on stdin; nothing stored", file=sys.stderr)
        return 2
    if len(value) > MAX_SECRET:
        print(f"secrets: a value of at most {MAX_SECRET} characters", file=sys.stderr)
        return 2
    path = (args.stack or state_dir()) / "secrets.json"
    try:
        SecretStore(path).set(args.name, value)
    except (SecretStoreError, OSError) as exc:
        print(f"secrets: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} stored in {path}")
    return 0
