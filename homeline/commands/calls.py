"""`homeline calls`: one record per call, with its queue_log-style events."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from homeline.paths import STORE_HELP

_FIELDS = ("call_id", "arrived_at", "queued_at", "answered_at", "ended_at", "caller", "intent",
           "language", "flow", "flow_version", "queue_id", "agent_id", "outcome", "reason",
           "wrap_up_s", "survey_score", "survey_comment", "variables")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("calls", help="call records: times, outcome, agent, events")
    p.add_argument("--since", default=None,
                   help="ISO time (2026-11-30T18:00+01:00) or an age (90s, 30m, 2h, 7d, 1w)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON, with each call's events")
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per call")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--db", default=None, help=STORE_HELP)
    p.add_argument("--now", default=None, help=argparse.SUPPRESS)  # ISO, for tests
    p.set_defaults(func=run)


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO time (aware, or UTC when it has no offset) or an age before ``now``."""
    from routing.stats import parse_since as parse  # the one parser (also /api/stats)

    return parse(text, now)


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if v is not None and not isinstance(v, str | int | float | bool):
        return dict(v)
    return v


def run(args: argparse.Namespace) -> int:
    from homeline.paths import store_address
    from store import StoreError, open_store

    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    try:
        since = parse_since(args.since, now) if args.since else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        with open_store(store_address(args.db)) as store:
            records = store.calls(since=since, limit=args.limit)
            events = store.call_events([r.call_id for r in records])
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    rows = [{f: _plain(getattr(r, f)) for f in _FIELDS} for r in records]
    try:
        if args.json:
            for row in rows:
                row["events"] = [{"seq": e.seq, "at": e.at.isoformat(), "event": e.event,
                                  "agent_id": e.agent_id, "data": dict(e.data)}
                                 for e in events[row["call_id"]]]
            print(json.dumps(rows, indent=1))
        elif args.csv:
            w = csv.DictWriter(sys.stdout, fieldnames=_FIELDS)
            w.writeheader()
            for row in rows:
                row["variables"] = json.dumps(row["variables"]) if row["variables"] else ""
                w.writerow(row)
        else:
            for row in rows:
                t = row["arrived_at"] or row["queued_at"] or row["ended_at"] or "-"
                print(f"{t:<32} {row['call_id']:<14} {row['caller'] or '-':<14} "
                      f"{row['queue_id'] or '-':<10} {row['agent_id'] or '-':<10} "
                      f"{row['outcome'] or '-'}")
                # what supervisors did on the call (listen/whisper/barge, hands, states)
                for e in events[row["call_id"]]:
                    if e.event == "supervisor":
                        d = dict(e.data)
                        extra = f" ({d['result']})" if d.get("result") else ""
                        print(f"    {e.at.isoformat(timespec='seconds')} supervisor "
                              f"{d.get('by', '?')}: {d.get('action', '?')}"
                              f"{' ' + str(e.agent_id) if e.agent_id else ''}{extra}")
            if not rows:
                print("no calls" + (f" since {since.isoformat()}" if since else ""))
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (| head): say nothing more; Python's own advice,
        # https://docs.python.org/3/library/signal.html#note-on-sigpipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0
