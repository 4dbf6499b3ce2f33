"""`homeline stats`: live statistics per queue, skill, language and agent, and the
text channels' per channel, queue and agent (`routing.stats`; the definitions
are in its docstring and the README)."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homeline.paths import DIALPLANS_DIR, STORE_HELP

# the CSV's columns: what a queue/skill/language/total row has, then an agent's
FIGURE_FIELDS = ("offered", "answered", "abandoned", "abandoned_within_t", "answered_within_t",
                 "overflowed", "rejected", "callbacks", "other", "service_level", "sl_target",
                 "sl_answer_s", "sl_definition", "asa_s", "abandon_rate", "aht_s",
                 "waiting_now", "longest_wait_now_s", "survey_count", "survey_avg")
AGENT_FIELDS = ("offers", "missed", "talk_s", "wrap_up_s", "occupancy", "signed_up_h",
                "handled_min_per_signed_h", "state_now")
# then the text channels' (rows channel, chat_queue, chat_total, chat_agent, chat_intent;
# offered, abandoned, rejected, callbacks, abandon_rate and surveys share the columns above)
CHAT_FIELDS = ("accepted", "transferred", "open_now", "replied", "first_response_avg_s",
               "first_response_p90_s", "handle_avg_s", "held_s", "concurrency_avg",
               "concurrency_max")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("stats", help="live statistics: SL, ASA, abandons, AHT, occupancy, "
                                     "surveys per queue, skill, language and agent")
    p.add_argument("--since", default=None,
                   help="ISO time or an age (30m, 2h, 7d); default: today, from midnight in "
                        "the policy's week_zone")
    p.add_argument("--queue", default=None, help="only calls that were in this queue")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON: every figure")
    fmt.add_argument("--csv", action="store_true",
                     help="CSV: one row per queue, skill, language, agent and the total, "
                          "and per text channel, chat queue and chat agent")
    p.add_argument("--db", default=None, help=STORE_HELP)
    p.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml",
                   help="agents.yaml: queues (T, target, sl_definition) and agents")
    p.add_argument("--now", default=None, help=argparse.SUPPRESS)  # ISO, for tests
    p.set_defaults(func=run)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _s(x: Any) -> str:
    return "-" if x is None else f"{x:.1f}s"


def text_report(d: dict[str, Any]) -> list[str]:
    """The figures as a table for people (the demo prints the same)."""
    lines = [f"statistics from {d['since']} to {d['now']}"]
    head = (f"{'queue':<14} {'offered':>7} {'answered':>8} {'abandon':>7} {'ab<=T':>5} "
            f"{'SL':>7} {'target':>7} {'T':>5} {'ASA':>7} {'AHT':>7} {'waiting':>7} "
            f"{'longest':>8}")
    lines.append(head)
    rows = [*d["queues"].items(), ("(all)", d["total"]),
            *((f"skill {k}", v) for k, v in d["skills"].items()),
            *((f"lang {k}", v) for k, v in d["languages"].items())]
    for name, f in rows:
        lines.append(
            f"{name:<14} {f['offered']:>7} {f['answered']:>8} {f['abandoned']:>7} "
            f"{f['abandoned_within_t']:>5} {_pct(f['service_level']):>7} "
            f"{_pct(f['sl_target']):>7} "
            f"{'-' if f['sl_answer_s'] is None else format(f['sl_answer_s'], 'g') + 's':>5} "
            f"{_s(f['asa_s']):>7} {_s(f['aht_s']):>7} {f['waiting_now']:>7} "
            f"{_s(f['longest_wait_now_s']):>8}")
    lines.append(f"{'agent':<14} {'state':>9} {'offers':>6} {'answered':>8} {'missed':>6} "
                 f"{'AHT':>7} {'occupancy':>9} {'min/signed h':>12} {'survey':>6}")
    for name, a in d["agents"].items():
        survey = "-" if a["survey_avg"] is None else f"{a['survey_avg']:.1f}"
        rate = a["handled_min_per_signed_h"]
        lines.append(f"{name:<14} {a['state_now'] or '-':>9} {a['offers']:>6} "
                     f"{a['answered']:>8} {a['missed']:>6} {_s(a['aht_s']):>7} "
                     f"{_pct(a['occupancy']):>9} "
                     f"{'-' if rate is None else format(rate, '.2f'):>12} {survey:>6}")
    if d["intents"]:
        lines.append("surveys by intent: " + ", ".join(
            f"{k} {v['survey_avg']:.1f} ({v['survey_count']})" for k, v in d["intents"].items()))
    by_state = ", ".join(f"{k} {v}" for k, v in d["agents_by_state"].items())
    lines.append(f"agents now: {by_state or 'no router state saved'}")
    if d.get("chats"):
        lines.extend(chat_report(d["chats"]))
    return lines


def _avg(x: Any) -> str:
    return "-" if x is None else f"{x:.1f}"


def chat_report(c: dict[str, Any]) -> list[str]:
    """The text channels' figures (SMS, Messenger) as a table (one line without chats)."""
    if not c["total"]["offered"] and not any(a["held_s"] for a in c["agents"].values()):
        return ["text channels: no chats routed in the period"]
    lines = [f"{'text channels':<18} {'offered':>7} {'accepted':>8} {'abandon':>7} "
             f"{'ab.rate':>7} {'open':>4} {'1st resp':>8} {'p90':>7} {'handle':>7} "
             f"{'survey':>6}"]
    rows = [*((f"channel {k}", v) for k, v in c["channels"].items()),
            *((f"queue {k}", v) for k, v in c["queues"].items()), ("(all texts)", c["total"])]
    for name, f in rows:
        lines.append(f"{name:<18} {f['offered']:>7} {f['accepted']:>8} {f['abandoned']:>7} "
                     f"{_pct(f['abandon_rate']):>7} {f['open_now']:>4} "
                     f"{_s(f['first_response_avg_s']):>8} {_s(f['first_response_p90_s']):>7} "
                     f"{_s(f['handle_avg_s']):>7} {_avg(f['survey_avg']):>6}")
    lines.append(f"{'chat agent':<18} {'accepted':>8} {'abandon':>7} {'1st resp':>8} "
                 f"{'handle':>7} {'held':>8} {'chats avg':>9} {'max':>3} {'survey':>6}")
    for name, a in c["agents"].items():
        conc = "-" if a["concurrency_avg"] is None else f"{a['concurrency_avg']:.2f}"
        lines.append(f"{name:<18} {a['accepted']:>8} {a['abandoned']:>7} "
                     f"{_s(a['first_response_avg_s']):>8} {_s(a['handle_avg_s']):>7} "
                     f"{_s(a['held_s']):>8} {conc:>9} {a['concurrency_max']:>3} "
                     f"{_avg(a['survey_avg']):>6}")
    if c["intents"]:
        lines.append("chat surveys by intent: " + ", ".join(
            f"{k} {v['survey_avg']:.1f} ({v['survey_count']})" for k, v in c["intents"].items()))
    return lines


def csv_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind in ("queues", "skills", "languages"):
        for name, f in d[kind].items():
            rows.append({"kind": kind[:-1], "name": name, **f})
    rows.append({"kind": "total", "name": "*", **d["total"]})
    for name, a in d["agents"].items():
        rows.append({"kind": "agent", "name": name, **a})
    for name, v in d["intents"].items():
        rows.append({"kind": "intent", "name": name, **v})
    c = d.get("chats")
    if c:
        for kind, key in (("channel", "channels"), ("chat_queue", "queues"),
                          ("chat_agent", "agents"), ("chat_intent", "intents")):
            for name, f in c[key].items():
                rows.append({"kind": kind, "name": name, **f})
        rows.append({"kind": "chat_total", "name": "*", **c["total"]})
    return rows


def run(args: argparse.Namespace) -> int:
    from homeline.commands.calls import parse_since
    from homeline.commands.dialplan import load_directory_or_report
    from homeline.paths import store_address
    from store import StoreError, open_store
    from store.reports import collect_stats

    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    try:
        since = parse_since(args.since, now) if args.since else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    if args.queue is not None and args.queue not in directory.queue_ids:
        print(f"--queue {args.queue!r}: not one of {', '.join(directory.queue_ids)}",
              file=sys.stderr)
        return 2
    try:
        with open_store(store_address(args.db)) as store:
            d = collect_stats(store, directory, now, since, args.queue).to_dict()
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        if args.json:
            print(json.dumps(d, indent=1))
        elif args.csv:
            w = csv.DictWriter(sys.stdout, fieldnames=("kind", "name", *FIGURE_FIELDS,
                                                        *AGENT_FIELDS, *CHAT_FIELDS),
                               extrasaction="ignore")
            w.writeheader()
            for row in csv_rows(d):
                w.writerow(row)
        else:
            print("\n".join(text_report(d)))
        sys.stdout.flush()
    except BrokenPipeError:
        # as `homeline calls`: the reader went away (| head)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0
