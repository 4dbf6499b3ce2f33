"""`homeline agent` sub-commands: agents manage their own hours and state."""
from __future__ import annotations

import argparse
import json
import sys

from homeline.paths import STORE_HELP


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agent", help="home agents: list them, their own hours and state")
    s = p.add_subparsers(dest="agent_cmd", metavar="SUBCOMMAND")
    s.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", default=None, help=STORE_HELP)
        q.add_argument("--directory", default=None, help="agents.yaml (default: dialplans/)")
        q.add_argument("--now", default=None, help=argparse.SUPPRESS)  # ISO, for tests
        q.add_argument("--json", action="store_true")

    lst = s.add_parser("list", help="agents in the directory with their hours")
    common(lst)
    lst.set_defaults(func=_list)

    h = s.add_parser("hours", help="show or change an agent's hours")
    hs = h.add_subparsers(dest="hours_cmd", metavar="ACTION")
    hs.required = True
    show = hs.add_parser("show", help="the agent's hours and whether they are open now")
    show.add_argument("agent")
    common(show)
    show.set_defaults(func=_show)
    st = hs.add_parser("set", help="replace the weekly hours, e.g. 'Mon 18:00-21:00'")
    st.add_argument("agent")
    st.add_argument("windows", nargs="+", metavar="WINDOW")
    common(st)
    st.set_defaults(func=_set)
    add = hs.add_parser("add", help="add one-off hours on a date")
    add.add_argument("agent")
    add.add_argument("date", help="YYYY-MM-DD (agent's local date)")
    add.add_argument("start", help="HH:MM")
    add.add_argument("end", help="HH:MM")
    common(add)
    add.set_defaults(func=_add)
    cancel = hs.add_parser("cancel", help="cancel hours on a date (whole day without times)")
    cancel.add_argument("agent")
    cancel.add_argument("date")
    cancel.add_argument("start", nargs="?")
    cancel.add_argument("end", nargs="?")
    common(cancel)
    cancel.set_defaults(func=_cancel)

    state = s.add_parser("state", help="set your state: available, break, or end wrap-up")
    state.add_argument("agent")
    state.add_argument("action", choices=("available", "break", "end-wrap-up"))
    state.add_argument("--why", default="", help="the reason (shown to supervisors)")
    common(state)
    state.set_defaults(func=_state)


def _ctx(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from homeline.paths import DIALPLANS_DIR, store_address
    from routing.directory import load_directory
    from store import open_store

    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    directory = load_directory(args.directory or DIALPLANS_DIR / "agents.yaml")
    store = open_store(store_address(args.db))
    store.sync_agents(directory)
    return directory, store, now


def _run(args: argparse.Namespace, op) -> int:  # type: ignore[no-untyped-def]
    from routing.errors import RoutingError
    from store import StoreError

    try:
        directory, store, now = _ctx(args)
    except (RoutingError, StoreError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return int(op(directory, store, now))
    except (RoutingError, StoreError) as exc:
        print(f"refused:\n{exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _print_view(args: argparse.Namespace, view) -> None:  # type: ignore[no-untyped-def]
    if args.json:
        print(json.dumps(view.as_dict()))
    else:
        print("\n".join(view.lines()))


def _show(args: argparse.Namespace) -> int:
    from routing.hours import show_hours

    def op(directory, store, now):  # type: ignore[no-untyped-def]
        _print_view(args, show_hours(store, directory, args.agent, now))
        return 0
    return _run(args, op)


def _after_change(args: argparse.Namespace, directory, store, now) -> int:  # type: ignore[no-untyped-def]
    from routing.hours import show_hours

    if not args.json:
        print("saved; a running engine applies it at once")
    _print_view(args, show_hours(store, directory, args.agent, now))
    return 0


def _set(args: argparse.Namespace) -> int:
    from routing.hours import set_hours

    def op(directory, store, now):  # type: ignore[no-untyped-def]
        set_hours(store, directory, args.agent, args.windows, now)
        return _after_change(args, directory, store, now)
    return _run(args, op)


def _add(args: argparse.Namespace) -> int:
    from routing.hours import add_hours

    def op(directory, store, now):  # type: ignore[no-untyped-def]
        add_hours(store, directory, args.agent, args.date, args.start, args.end, now)
        return _after_change(args, directory, store, now)
    return _run(args, op)


def _cancel(args: argparse.Namespace) -> int:
    from routing.hours import cancel_hours

    def op(directory, store, now):  # type: ignore[no-untyped-def]
        cancel_hours(store, directory, args.agent, args.date, args.start, args.end, now)
        return _after_change(args, directory, store, now)
    return _run(args, op)


def _list(args: argparse.Namespace) -> int:
    from routing.hours import show_hours

    def op(directory, store, now):  # type: ignore[no-untyped-def]
        rows = []
        for a in directory.agents:
            v = show_hours(store, directory, a.id, now)
            rows.append({"agent": a.id, "name": a.name, "zone": a.zone,
                         "skills": dict(a.skills), "languages": dict(a.languages),
                         "trainee": a.trainee, "weekly_hours": v.weekly_hours,
                         "open_now": v.open_now})
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                skills = ",".join(f"{k}:{v}" for k, v in r["skills"].items())
                langs = ",".join(f"{k}:{v}" for k, v in r["languages"].items())
                print(f"{r['agent']:<12} {r['zone']:<20} {skills:<22} {langs:<10} "
                      f"{r['weekly_hours']:>5g} h  {'open' if r['open_now'] else 'closed'}"
                      f"{'  trainee' if r['trainee'] else ''}")
        return 0
    return _run(args, op)


def _state(args: argparse.Namespace) -> int:
    from homeline.agent_api import UnknownAgentError, request_agent_state

    def op(directory, store, now):  # type: ignore[no-untyped-def]
        try:
            req = request_agent_state(store, directory, args.agent, args.action, now, args.why)
        except UnknownAgentError as exc:
            print(exc, file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({"agent": req.agent_id, "state": req.action, "why": req.why,
                              "seq": req.seq}))
        else:
            why = f" ({req.why})" if req.why else ""
            print(f"{req.agent_id}: {req.action}{why} saved; a running engine applies it at once")
        return 0
    return _run(args, op)
