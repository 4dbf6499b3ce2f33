"""`homeline user add|passwd|remove|list`: who may log in to the web app.

A password comes from standard input when it is piped (its first line), else
one is generated and printed once; only its argon2 hash is stored, and no
command prints a hash. An agent user is the directory agent of the same name
unless ``--agent`` says which.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from homeline.paths import STORE_HELP

if TYPE_CHECKING:
    from store import SqlStore


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("user", help="web app users: agents, supervisors, admins")
    s = p.add_subparsers(dest="user_cmd", metavar="SUBCOMMAND")
    s.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", default=None, help=STORE_HELP)

    add = s.add_parser("add", help="add a user (password from stdin, or generated and shown)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("agent", "supervisor", "admin"))
    add.add_argument("--agent", default=None, metavar="AGENT_ID",
                     help="the directory agent this user is (agents: default NAME)")
    add.add_argument("--directory", default=None, help="agents.yaml (default: dialplans/)")
    common(add)
    add.set_defaults(func=_add)
    pw = s.add_parser("passwd", help="set a new password (ends the user's sessions)")
    pw.add_argument("name")
    common(pw)
    pw.set_defaults(func=_passwd)
    rm = s.add_parser("remove", help="remove a user (ends their sessions)")
    rm.add_argument("name")
    common(rm)
    rm.set_defaults(func=_remove)
    ls = s.add_parser("list", help="users with their role and agent (never a hash)")
    common(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)


def _store(args: argparse.Namespace) -> SqlStore:
    from homeline.paths import store_address
    from store import open_store

    return open_store(store_address(args.db))


def _password() -> tuple[str, bool]:
    """(password, generated): stdin's first line when piped, else a new one."""
    from web import new_password

    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if line:
            return line, False
    return new_password(), True


def _hash() -> tuple[str, str | None]:
    """(hash, the generated password to show, if any); ValueError when too short/long."""
    from web import Passwords

    password, generated = _password()
    return Passwords().hash(password), password if generated else None


def _show_generated(name: str, password: str | None) -> None:
    if password is not None:
        print(f"password for {name} (shown once, not stored; keep it now): {password}")


def _add(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from homeline.paths import DIALPLANS_DIR
    from routing.directory import load_directory
    from routing.errors import RoutingError
    from store import StoreError

    agent_id = args.agent if args.agent is not None else (
        args.name if args.role == "agent" else None)
    if agent_id is not None:
        try:
            directory = load_directory(args.directory or DIALPLANS_DIR / "agents.yaml")
        except RoutingError as exc:
            print(exc, file=sys.stderr)
            return 2
        known = [a.id for a in directory.agents]
        if agent_id not in known:
            how = "--agent" if args.agent is not None else "an agent user's name (or --agent)"
            print(f"{directory.source}: unknown agent {agent_id!r} given as {how}; known: "
                  f"{', '.join(known) or '(none)'}", file=sys.stderr)
            return 2
    try:
        hashed, shown = _hash()
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    try:
        with _store(args) as store:
            store.add_user(args.name, args.role, agent_id, hashed, datetime.now(UTC))
    except StoreError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    link = f", agent {agent_id}" if agent_id else ""
    print(f"user {args.name} added ({args.role}{link})")
    _show_generated(args.name, shown)
    return 0


def _passwd(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from store import StoreError

    try:
        with _store(args) as store:
            if store.user(args.name) is None:
                print(f"no user {args.name!r} (see `homeline user list`)", file=sys.stderr)
                return 2
            try:
                hashed, shown = _hash()
            except ValueError as exc:
                print(f"refused: {exc}", file=sys.stderr)
                return 2
            store.set_password_hash(args.name, hashed, datetime.now(UTC))
    except StoreError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"password of {args.name} changed; their sessions are ended")
    _show_generated(args.name, shown)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from store import StoreError

    try:
        with _store(args) as store:
            removed = store.remove_user(args.name)
    except StoreError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    if not removed:
        print(f"no user {args.name!r} (see `homeline user list`)", file=sys.stderr)
        return 2
    print(f"user {args.name} removed; their sessions are ended")
    return 0


def _list(args: argparse.Namespace) -> int:
    from store import StoreError

    try:
        with _store(args) as store:
            users = store.users()
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    rows = [{"name": u.name, "role": u.role, "agent": u.agent_id,
             "created_at": u.created_at.isoformat(timespec="seconds"),
             "password_changed_at": u.updated_at.isoformat(timespec="seconds")} for u in users]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']:<16} {r['role']:<11} {r['agent'] or '-':<12} "
                  f"added {r['created_at']}")
    return 0
