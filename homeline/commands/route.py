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

    from routing.model import SELECTION_RULES

    sim = s.add_parser("simulate", help="a seeded simulated week: fairness to agents, service")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--rule", default="fair-share", choices=SELECTION_RULES)
    sim.add_argument("--agents", type=int, default=20)
    sim.add_argument("--compare", action="store_true",
                     help="every rule on the same seeded weeks; last line JSON")
    sim.add_argument("--seeds", type=_seed_range, default=None, metavar="A-B",
                     help="with --compare: the seeds, e.g. 1-5 or 3,7 (default: --seed)")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=_simulate)


def _seed_range(text: str) -> tuple[int, ...]:
    out: list[int] = []
    try:
        for part in text.split(","):
            a, sep, b = part.partition("-")
            out.extend(range(int(a), int(b) + 1) if sep else [int(a)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds as A-B or A,B,C") from None
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r}: no seeds")
    return tuple(out)


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

    if args.compare:
        from routing.sim_compare import compare_rules

        seeds = args.seeds or (args.seed,)
        cmp = compare_rules(seeds, n_agents=args.agents)
        if not args.json:
            print("\n".join(cmp.table()))
        print(json.dumps(cmp.to_json()))
        return 0
    r = simulate_week(args.seed, rule=args.rule, n_agents=args.agents)
    if args.json:
        print(json.dumps({"rule": r.rule, "seed": r.seed, "calls": r.calls,
                          "answered": r.answered, "abandoned": r.abandoned,
                          "service_level": r.service_level, "asa_s": r.asa_s,
                          "share_spread_pct": r.share_spread_pct,
                          "hourly_spread_pct": r.hourly_spread_pct,
                          "calls_per_h_spread_pct": r.calls_spread_pct,
                          "agents": [{"agent": a, "calls": n, "signed_h": h, "handled_min": m,
                                      "fair_share_min": f} for a, n, h, m, f in r.per_agent]}))
        return 0
    for a, n, h, m, f in r.per_agent:
        print(f"{a:<6} {n:>5} calls {h:>6.1f} h signed up {m / h if h else 0:>6.1f} min/h "
              f"{m:>7.0f} min handled, fair share {f:>7.0f} min ({m / f if f else 0:>5.1%})")
    for g in r.groups:
        print(f"group {g.group}: +-{g.share_spread_pct:.1f}% against fair share, "
              f"+-{g.hourly_spread_pct:.1f}% per signed-up hour")
    print(r.summary())
    return 0
