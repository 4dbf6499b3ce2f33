"""`homeline engine run`: the FastAGI IVR and the AMI router against the PBX
started by `homeline asterisk up`, until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from homeline.paths import DIALPLANS_DIR

if TYPE_CHECKING:
    from homeline.stack import PbxStack
    from routing.directory import Directory


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("engine", help="run the IVR and router against the running PBX")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="serve calls until Ctrl-C", description=__doc__)
    run.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml")
    run.add_argument("--flow", default="main-menu",
                     help="name of the flow in dialplans/flows/ that answers new calls")
    run.add_argument("--db", type=Path, default=None,
                     help="SQLite store: agents' own hours, call records (default: state dir)")
    run.add_argument("--survey-flow", type=Path, default=None,
                     help="flow whose survey node runs after the agent hangs up")
    run.add_argument("--stack", type=Path, default=None, metavar="DIR",
                     help="serve the Asterisk instance whose state dir is DIR (stack.json: "
                     "its name and ports; secrets.json) instead of the main one")
    run.add_argument("--fresh", action="store_true",
                     help="ignore the router state kept in the store (waiting callers, "
                     "agent states, fair-share totals) instead of adopting it")
    run.add_argument("--journal", type=Path, default=None,
                     help="write router events as JSON lines (for `homeline route replay`)")
    run.set_defaults(func=run_engine)


def run_engine(args: argparse.Namespace) -> int:
    import logging
    from datetime import UTC, datetime

    from homeline.commands.asterisk import INSTANCE, main_instance
    from homeline.commands.dialplan import load_directory_or_report
    from homeline.commands.flow import RELOAD_TRIGGER
    from homeline.paths import default_db_path, state_dir
    from homeline.stack import PbxStack, Ports
    from ivr.errors import IvrError
    from ivr.loader import load_flow
    from ivr.registry import FlowRegistry
    from routing.router import Router
    from store import SqliteStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    # `homeline flow reload` touches the trigger: new calls get the new version,
    # calls in progress keep theirs; an invalid file keeps the running version.
    registry = FlowRegistry(DIALPLANS_DIR / "flows", queues=directory.queue_ids,
                            trigger=state_dir() / RELOAD_TRIGGER)
    try:
        registry.current(args.flow)
        survey_flow = (load_flow(args.survey_flow, queues=directory.queue_ids)
                       if args.survey_flow else None)
    except (IvrError, KeyError) as exc:
        print(f"flow {args.flow!r}: {exc}", file=sys.stderr)
        for problems in registry.problems.values():  # flow name -> its problems
            for problem in problems:
                print(problem, file=sys.stderr)
        return 1
    if args.stack is not None:
        stack = _stack_from(args.stack, directory)
        if stack is None:
            return 1
    else:
        pbx = main_instance()
        if not pbx.running():
            print("Asterisk is not running: start it with `homeline asterisk up`",
                  file=sys.stderr)
            return 1
        stack = PbxStack(INSTANCE, directory, state_dir(), Ports.standard())
        stack.instance = pbx
    store = SqliteStore(args.db or default_db_path())
    store.sync_agents(directory)
    now = datetime.now(UTC)
    hours_applied = store.apply_hours(directory)
    snapshot = None if args.fresh else store.load_router_snapshot()
    router = Router(hours_applied, now=now)
    if snapshot is not None:
        print(f"adopting the stored router state of {len(snapshot.calls)} call(s) and "
              f"{len(snapshot.agents)} agent(s) (--fresh to ignore it)", file=sys.stderr)
    engine = stack.start_engine(router, lambda: registry.current(args.flow),
                                journal_path=args.journal, store=store,
                                survey_flow=survey_flow,
                                restore=(hours_applied, snapshot) if snapshot else None)
    from voice.ami import AmiError

    try:
        # beside the instance: it rewrites the instance's pjsip ACL file
        stack.start_guard()
    except (AmiError, OSError) as exc:
        print(f"SIP guard not started (failed registrations will not be blocked): {exc}",
              file=sys.stderr)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stopping.set())
    print(f"engine serving: FastAGI 127.0.0.1:{stack.ports.agi}, AMI 127.0.0.1:{stack.ports.ami}"
          " (Ctrl-C to stop)")
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if stack.guard is not None:
            stack.guard.stop()
        engine.stop()
        store.close()
    return 0


def _stack_from(state: Path, directory: Directory) -> PbxStack | None:
    """The stack of an instance started elsewhere (``PbxStack.start_pbx`` wrote its
    stack.json), or None after saying why."""
    import json

    from homeline.pbx.process import AsteriskInstance
    from homeline.pbx.sandbox import ensure_root
    from homeline.stack import PbxStack, Ports

    try:
        info = json.loads((state / "stack.json").read_text(encoding="utf-8"))
        ports = Ports(**info["ports"])
        name = str(info["name"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{state}/stack.json: not a Homeline stack ({exc})", file=sys.stderr)
        return None
    stack = PbxStack(name, directory, state, ports)
    stack.instance = AsteriskInstance(ensure_root(progress=lambda m: print(m, file=sys.stderr)),
                                      name)
    if not stack.instance.running():
        print(f"Asterisk instance {name!r} is not running", file=sys.stderr)
        return None
    return stack
