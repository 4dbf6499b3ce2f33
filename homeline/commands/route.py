"""`homeline route` sub-commands: check the directory, replay journals, states, simulate."""
from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("route", help="the router: check the directory, replay a journal ...")
    s = p.add_subparsers(dest="route_cmd", metavar="SUBCOMMAND")
    s.required = True

    c = s.add_parser("check", help="validate dialplans/agents.yaml (all problems at once)")
    c.add_argument("directory", nargs="?", default=None)
    c.set_defaults(func=_check)

    r = s.add_parser("replay", help="replay a JSON-lines journal and compare the decisions")
    r.add_argument("journal")
    r.add_argument("--print", action="store_true", help="print every decision")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_replay)

    st = s.add_parser("states", help="the agent state transition table")
    st.add_argument("--dot", action="store_true", help="graphviz dot instead of a table")
    st.set_defaults(func=_states)

    sim = s.add_parser("simulate", help="a seeded simulated week: calls per signed-up hour")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--rule", default="fair-share",
                     choices=("fair-share", "longest-idle", "best-proficiency"))
    sim.add_argument("--agents", type=int, default=20)
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=_simulate)


def _check(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from homeline.paths import DIALPLANS_DIR
    from routing.directory import load_directory
    from routing.errors import DirectoryError

    path = args.directory or DIALPLANS_DIR / "agents.yaml"
    try:
        d = load_directory(path, now=datetime.now(UTC))
    except DirectoryError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: {len(d.agents)} agents, {len(d.queues)} queues: OK")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from routing.errors import RoutingError
    from routing.journal import replay

    try:
        with open(args.journal, encoding="utf-8") as fp:
            res = replay(fp, source=args.journal)
    except (OSError, RoutingError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.print:
        for at, decisions in res.produced:
            for d in decisions:
                text = d.get("reason", {}).get("text") if isinstance(d.get("reason"), dict) else ""
                print(f"{at} {d['type']} {json.dumps(d) if not text else text}")
    summary = {"events": res.events, "decisions": res.decisions,
               "mismatches": len(res.mismatches), "identical": res.identical}
    for m in res.mismatches[:20]:
        print(m, file=sys.stderr)
    print(json.dumps(summary) if args.json else
          f"{res.events} events, {res.decisions} decisions, "
          f"{'identical' if res.identical else f'{len(res.mismatches)} mismatch(es)'}")
    return 0 if res.identical else 1


def _states(args: argparse.Namespace) -> int:
    from routing.states import TRANSITIONS, to_dot

    if args.dot:
        print(to_dot())
        return 0
    for (state, trigger), nxt in TRANSITIONS.items():
        print(f"{state.value:<10} --{trigger:<20}--> {nxt.value}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from routing.simulate import simulate_week

    r = simulate_week(args.seed, rule=args.rule, n_agents=args.agents)
    if args.json:
        print(json.dumps({"rule": r.rule, "calls": r.calls, "answered": r.answered,
                          "mean_calls_per_signed_h": r.mean_rate, "spread_pct": r.spread_pct,
                          "agents": [{"agent": a, "calls": n, "signed_h": h, "rate": x}
                                     for a, n, h, x in r.per_agent]}))
        return 0
    for a, n, h, x in r.per_agent:
        print(f"{a:<6} {n:>5} calls {h:>6.1f} h signed up {x:>6.2f} calls/h")
    print(r.summary())
    return 0
