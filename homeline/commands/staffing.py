"""`homeline staffing` sub-commands: Erlang C figures and the weekly staffing plan."""
from __future__ import annotations

import argparse
import json
import math
import sys

from homeline.paths import STORE_HELP


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("staffing", help="Erlang C staffing and the weekly plan vs sign-ups")
    s = p.add_subparsers(dest="staffing_cmd", metavar="SUBCOMMAND")
    s.required = True

    e = s.add_parser("erlang", help="agents needed for a forecast (or figures for --agents K)")
    e.add_argument("--calls", type=float, required=True, help="calls in the interval")
    e.add_argument("--interval-s", type=float, default=1800.0)
    e.add_argument("--aht-s", type=float, required=True, help="average handle time, seconds")
    e.add_argument("--sl-target", type=float, default=0.8)
    e.add_argument("--answer-s", type=float, default=20.0, help="service level threshold, s")
    e.add_argument("--agents", type=int, default=None)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_erlang)

    w = s.add_parser("week", help="per 30-min interval: agents needed vs signed up, open slots")
    w.add_argument("--forecast", required=True, help="CSV: interval,skill,calls,aht_s")
    w.add_argument("--directory", default=None, help="agents.yaml (default dialplans/)")
    w.add_argument("--db", default=None, help=STORE_HELP + " (agents' own hours)")
    w.add_argument("--week-of", default=None, help="a date in the week (default: next week)")
    w.add_argument("--zone", default=None, help="zone of the forecast (default policy.week_zone)")
    w.add_argument("--sl-target", type=float, default=0.8)
    w.add_argument("--answer-s", type=float, default=20.0)
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=_week)


def _erlang(args: argparse.Namespace) -> int:
    from routing.erlang import agents_needed, erlang_figures

    try:
        if args.agents is not None:
            r = erlang_figures(args.calls, args.interval_s, args.aht_s, args.agents,
                               args.answer_s)
        else:
            r = agents_needed(args.calls, args.interval_s, args.aht_s, args.sl_target,
                              args.answer_s)
    except ValueError as exc:
        print(f"homeline staffing erlang: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = {"agents": r.agents, "p_wait": round(r.p_wait, 4),
               "asa_s": round(r.asa_s, 2) if math.isfinite(r.asa_s) else None,
               "service_level": round(r.service_level, 4), "occupancy": round(r.occupancy, 4)}
        print(json.dumps(out))
    else:
        print(f"traffic        {r.traffic_erlangs:.2f} Erlang")
        print(f"agents         {r.agents}")
        print(f"P(wait)        {r.p_wait:.4f}")
        print(f"ASA            {r.asa_s:.2f} s")
        print(f"service level  {r.service_level:.4f} answered within {args.answer_s:g} s")
        print(f"occupancy      {r.occupancy:.4f}")
    return 0


def _week(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime, timedelta

    from homeline.paths import DIALPLANS_DIR, store_address
    from routing.directory import load_directory
    from routing.errors import RoutingError
    from routing.staffing import open_slots, read_forecast, week_staffing
    from store import StoreError, open_store

    try:
        directory = load_directory(args.directory or DIALPLANS_DIR / "agents.yaml")
        with open_store(store_address(args.db)) as store:
            directory = store.apply_hours(directory)
        rows = read_forecast(args.forecast)
    except (RoutingError, StoreError) as exc:
        print(exc, file=sys.stderr)
        return 2
    day = (date.fromisoformat(args.week_of) if args.week_of
           else datetime.now(UTC).date() + timedelta(days=7))
    monday = day - timedelta(days=day.weekday())
    zone = args.zone or directory.policy.week_zone
    plan = week_staffing(directory, rows, monday, zone=zone, sl_target=args.sl_target,
                         answer_s=args.answer_s)
    slots = open_slots(plan)
    if args.json:
        print(json.dumps({
            "week_of": monday.isoformat(), "zone": zone,
            "intervals": [{"interval": r.label, "skill": r.skill, "calls": r.calls,
                           "aht_s": r.aht_s, "needed": r.needed, "signed_up": r.signed_up,
                           "gap": r.gap} for r in plan],
            "open_slots": [{"skill": s.skill, "window": str(s.window), "agents": s.agents}
                           for s in slots]}))
        return 0
    print(f"week of {monday.isoformat()} ({zone}); target {args.sl_target:.0%} in "
          f"{args.answer_s:g} s")
    print(f"{'interval':<10} {'skill':<10} {'calls':>6} {'aht':>5} {'needed':>6} "
          f"{'signed':>6} {'gap':>4}  chart (# signed, . missing)")
    for r in plan:
        bar = "#" * min(r.signed_up, r.needed) + "." * r.gap + "+" * max(0, r.signed_up - r.needed)
        print(f"{r.label:<10} {r.skill:<10} {r.calls:>6g} {r.aht_s:>5g} {r.needed:>6} "
              f"{r.signed_up:>6} {r.gap:>4}  {bar[:60]}")
    print("open slots that would close the gap:" if slots else "no gaps: sign-ups cover it")
    for s in slots:
        print(f"  {s}")
    return 0
