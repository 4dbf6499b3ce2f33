"""`homeline flow check|simulate|graph|reload`: IVR flows admins can trust."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeline.paths import DIALPLANS_DIR

if TYPE_CHECKING:
    from adminfiles import Problem

RELOAD_TRIGGER = "flows.reload"
DEFAULT_AGENTS = DIALPLANS_DIR / "agents.yaml"
_AGENTS_HELP = ("agent directory whose queues route nodes may name "
                "(default: dialplans/agents.yaml)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("flow", help="check, simulate, graph and reload IVR flows",
                            description=__doc__)
    cmds = parser.add_subparsers(dest="flow_command", metavar="ACTION")
    cmds.required = True

    check = cmds.add_parser("check", help="report every problem of flow files; exit 1 if any")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                       help="flow files or directories of *.yaml flows")
    check.add_argument("--json", action="store_true", help="problems as JSON")
    check.add_argument("--catalog", type=Path, default=None,
                       help="prompt catalog (default: prompts/catalog.yaml)")
    check.add_argument("--agents", type=Path, default=DEFAULT_AGENTS, help=_AGENTS_HELP)
    check.set_defaults(func=_check)

    sim = cmds.add_parser("simulate", help="run a flow with scripted or typed caller input")
    sim.add_argument("flow", type=Path, metavar="FLOW")
    sim.add_argument("--input", default=None,
                     help='e.g. "1,timeout,#,say:billing"; without it, interactive')
    sim.add_argument("--json", action="store_true", help="the transcript as JSON")
    sim.add_argument("--caller", default="+15550100")
    sim.add_argument("--now", default=None,
                     help="ISO time with offset for opening hours (default: now)")
    sim.add_argument("--position", type=int, default=1, help="queue position to simulate")
    sim.add_argument("--wait", type=int, default=60, help="expected wait (s) to simulate")
    sim.add_argument("--after-call", action="store_true",
                     help="run the post-call survey (post_call) instead of the start")
    sim.set_defaults(func=_simulate)

    graph = cmds.add_parser("graph", help="write the flow as Graphviz DOT (+ SVG/PNG)")
    graph.add_argument("flow", type=Path, metavar="FLOW")
    graph.add_argument("-o", "--output", type=Path, default=None,
                       help="output path without extension (default: next to the flow)")
    graph.add_argument("--dot-only", action="store_true", help="only the .dot file")
    graph.set_defaults(func=_graph)

    reload = cmds.add_parser("reload", help="validate flows, then signal the running engine")
    reload.add_argument("directory", nargs="?", type=Path, default=None,
                        help="flow directory (default: dialplans/flows)")
    reload.add_argument("--agents", type=Path, default=DEFAULT_AGENTS, help=_AGENTS_HELP)
    reload.set_defaults(func=_reload)


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def _catalog(path: Path | None) -> tuple[Any, list[Any]]:
    from ivr.loader import load_prompt_catalog

    return load_prompt_catalog(path)


def check_flows(files: Sequence[Path], *, agents: Path = DEFAULT_AGENTS,
                catalog: Path | None = None) -> list[Problem]:
    """Every problem of the flow ``files`` checked as the engine loads them: prompts
    against the catalog, route queues against the agent directory ``agents``; the
    problems of those two files as well, in the same ``file:node:key`` form."""
    from ivr.loader import check_flow
    from routing import DirectoryError, load_directory

    prompt_catalog, problems = _catalog(catalog)
    queues: tuple[str, ...] | None
    try:
        queues = load_directory(agents).queue_ids
    except DirectoryError as exc:
        queues = None  # its problems say why; route queues cannot be checked
        problems.extend(exc.problems)
    for f in files:
        problems.extend(check_flow(f, catalog=prompt_catalog, queues=queues))
    return problems


def _check(args: argparse.Namespace) -> int:
    files = _expand(args.paths)
    problems = check_flows(files, agents=args.agents, catalog=args.catalog)
    if any(p.file == str(args.agents) for p in problems):
        print(f"route queues not checked: {args.agents} has problems", file=sys.stderr)
    if args.json:
        print(json.dumps({"files": [str(f) for f in files],
                          "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for p in problems:
            print(p)
    return 1 if problems or not files else 0


def _load(path: Path, catalog_path: Path | None = None) -> Any:
    from ivr.errors import FlowInvalid
    from ivr.loader import load_flow

    catalog, problems = _catalog(catalog_path)
    for p in problems:
        print(p, file=sys.stderr)
    try:
        return load_flow(path, catalog=catalog)
    except FlowInvalid as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        print(f"{path}: not loaded ({len(exc.problems)} problem(s))", file=sys.stderr)
        return None


def _now(text: str | None) -> datetime | None:
    if text is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        return None
    return now if now.tzinfo is not None else None


def _typed_inputs() -> Any:
    print("type the caller's input: keys (1, 1234#), timeout, say:<intent>[@conf], "
          "lookup:k=v;k=v, lookup:fail, hangup; an empty line ends", file=sys.stderr)
    while True:
        try:
            line = input("caller> ").strip()
        except EOFError:
            return
        if not line:
            return
        yield from (t.strip() for t in line.split(",") if t.strip())


def _simulate(args: argparse.Namespace) -> int:
    from ivr.errors import IvrError
    from ivr.simulate import parse_inputs, render, simulate

    flow = _load(args.flow)
    if flow is None:
        return 1
    now = _now(args.now)
    if now is None:
        print(f"--now {args.now!r}: give an ISO time with a UTC offset, "
              "e.g. 2026-11-25T10:00:00+00:00", file=sys.stderr)
        return 2
    entry = None
    if args.after_call:
        if flow.post_call is None:
            print(f"{args.flow}: the flow has no post_call survey", file=sys.stderr)
            return 2
        entry = flow.post_call
    try:
        inputs = parse_inputs(args.input) if args.input is not None else _typed_inputs()
        live = None if args.json else (lambda e: print(render(e), flush=True))
        transcript = simulate(flow, inputs, now=now, caller=args.caller, position=args.position,
                              wait_s=args.wait, entry=entry, on_step=live)
    except IvrError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(transcript.as_dict(), indent=2, default=str))
    else:
        print(f"outcome   {transcript.outcome or 'unfinished'}; variables "
              f"{json.dumps(transcript.variables, default=str)}")
    return 0


def _graph(args: argparse.Namespace) -> int:
    from ivr.graph import write_graph

    flow = _load(args.flow)
    if flow is None:
        return 1
    out = args.output or args.flow.with_suffix("")
    for path in write_graph(flow, out, formats=() if args.dot_only else ("svg", "png")):
        print(path)
    return 0


def _reload(args: argparse.Namespace) -> int:
    from homeline.paths import state_dir

    directory = args.directory or DIALPLANS_DIR / "flows"
    files = _expand([directory])
    problems = check_flows(files, agents=args.agents)
    for p in problems:
        print(p)
    trigger = state_dir() / RELOAD_TRIGGER
    trigger.touch()
    if problems:
        print(f"reload requested; files with problems keep their running version "
              f"({trigger})")
        return 1
    print(f"reload requested for {len(files)} flow(s): new calls get the new versions "
          f"({trigger})")
    return 0
