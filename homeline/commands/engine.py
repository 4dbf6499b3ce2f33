"""`homeline engine run`: the FastAGI IVR and the AMI router against the PBX
started by `homeline asterisk up`, and the web app (agent portal, JSON API, the
phone in the page) beside them, until Ctrl-C or SIGTERM.

The web app answers HTTPS on 127.0.0.1:8080 by default with the stack's
certificate (homeline/certs.py: the one Asterisk's TLS and WSS use); ``--no-web``
leaves it out (run ``homeline serve`` elsewhere instead).

With a PostgreSQL store, several engines for the same Asterisk may run: each
first waits to be the router leader (``--node`` names it; store/leader.py), and
only the leader serves (FastAGI, AMI, the web app). A leader deposed (its lock
session gone: the server restarted, its backend terminated; or its save refused
for a newer epoch) stops serving and waits as a standby again, in the same
process; the standby that wins the lock adopts the stored state as a restart
does. While the database does not answer, a standby keeps asking.

Several nodes (one Asterisk each, ``homeline asterisk up --node NAME``: its
stack lists the other nodes) share one router: each node's engine serves its own
Asterisk from the start and follows the router leader (homeline/nodes.py), bids
for the leader lock, and on winning it routes for every node; deposed, it
follows again."""
from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeline.paths import DIALPLANS_DIR, STORE_HELP

if TYPE_CHECKING:
    from homeline.stack import PbxStack
    from ivr.registry import FlowRegistry
    from routing.directory import Directory
    from store import SqlStore
    from store.leader import Leadership


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("engine", help="run the IVR and router against the running PBX")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="serve calls until Ctrl-C", description=__doc__)
    run.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml")
    run.add_argument("--supervisors", type=Path, default=None,
                      help="who may listen/whisper/barge, from which endpoint "
                           "(default dialplans/supervisors.yaml; none without it)")
    run.add_argument("--flows", type=Path, default=DIALPLANS_DIR / "flows", metavar="DIR",
                     help="the folder of IVR flows (default dialplans/flows)")
    run.add_argument("--flow", default="main-menu",
                     help="name of the flow in --flows that answers new calls")
    run.add_argument("--db", default=None,
                     help=STORE_HELP + ": agents' own hours, call records, router state")
    run.add_argument("--survey-flow", type=Path, default=None,
                     help="flow whose survey node runs after the agent hangs up")
    run.add_argument("--payment-flow", type=Path,
                     default=DIALPLANS_DIR / "flows" / "payment.yaml", metavar="FILE",
                     help="flow the caller runs when an agent takes a payment (its secure "
                     "collect and lookup: dialplans/flows/payment.yaml)")
    run.add_argument("--no-payment", action="store_true",
                     help="agents cannot take payments (no secure capture during calls)")
    run.add_argument("--stack", type=Path, default=None, metavar="DIR",
                     help="serve the Asterisk instance whose state dir is DIR (stack.json: "
                     "its name and ports; secrets.json) instead of the main one")
    run.add_argument("--fresh", action="store_true",
                     help="ignore the router state kept in the store (waiting callers, "
                     "agent states, fair-share totals) instead of adopting it")
    run.add_argument("--node", default=socket.gethostname(), metavar="NAME",
                     help="this engine's name among those sharing a PostgreSQL store "
                     "(default: the host name); with such a store the engine waits to be "
                     "the router leader before it serves (`homeline cluster status`)")
    run.add_argument("--journal", type=Path, default=None,
                     help="write router events as JSON lines (for `homeline route replay`)")
    web = run.add_argument_group("the web app (as `homeline serve`)")
    web.add_argument("--no-web", action="store_true",
                     help="do not start the web app (agent portal and JSON API)")
    web.add_argument("--web-host", default="127.0.0.1", metavar="ADDR")
    web.add_argument("--web-port", type=int, default=8080, metavar="PORT")
    web.add_argument("--web-http", action="store_true",
                     help="plain HTTP instead of HTTPS with the stack's certificate "
                     "(only behind a TLS-terminating proxy on the same host)")
    web.add_argument("--idle-timeout", type=float, default=30 * 60.0, metavar="S",
                     help="end a web session after S seconds without a request")
    web.add_argument("--forecast", type=Path, default=None, metavar="CSV",
                     help="staffing forecast: agents see next week's open slots")
    run.set_defaults(func=run_engine)


def run_engine(args: argparse.Namespace) -> int:
    import logging

    from homeline.commands.asterisk import INSTANCE, main_instance
    from homeline.commands.dialplan import load_directory_or_report, load_supervisors_or_report
    from homeline.commands.flow import RELOAD_TRIGGER
    from homeline.paths import state_dir, store_address
    from homeline.stack import PbxStack, Ports
    from ivr.errors import IvrError
    from ivr.loader import load_flow
    from ivr.registry import FlowRegistry
    from store import StoreError, open_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    # `homeline flow reload` touches the trigger: new calls get the new version,
    # calls in progress keep theirs; an invalid file keeps the running version.
    registry = FlowRegistry(args.flows, queues=directory.queue_ids,
                            trigger=state_dir() / RELOAD_TRIGGER)
    try:
        registry.current(args.flow)
        survey_flow = (load_flow(args.survey_flow, queues=directory.queue_ids)
                       if args.survey_flow else None)
        payment_flow = (None if args.no_payment
                        else load_flow(args.payment_flow, queues=directory.queue_ids))
    except (IvrError, KeyError) as exc:
        print(f"flow {args.flow!r}: {exc}", file=sys.stderr)
        for problems in registry.problems.values():  # flow name -> its problems
            for problem in problems:
                print(problem, file=sys.stderr)
        return 1
    supervisors = load_supervisors_or_report(directory, args.supervisors)
    if supervisors is None:
        return 1
    if args.stack is not None:
        stack = _stack_from(args.stack, directory, supervisors)
        if stack is None:
            return 1
    else:
        pbx = main_instance()
        if not pbx.running():
            print("Asterisk is not running: start it with `homeline asterisk up`",
                  file=sys.stderr)
            return 1
        try:  # the ports and secure access `homeline asterisk up` started it with
            stack = PbxStack.from_state(state_dir(), directory, supervisors=supervisors)
        except ValueError:
            stack = PbxStack(INSTANCE, directory, state_dir(), Ports.standard(),
                             supervisors=supervisors)
        stack.instance = pbx
    if args.forecast is not None and not args.forecast.is_file():
        print(f"{args.forecast}: no such file", file=sys.stderr)
        return 2
    db = store_address(args.db)
    try:
        store = open_store(db)
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stopping.set())
    node = _Node(args, directory, registry, survey_flow, payment_flow, stack, db, store)
    rounds = 0
    try:
        if stack.peers:  # one of several nodes: serve this node's Asterisk at once
            return _serve_as_node(node, stopping)
        # a leader deposed (its lock session gone: the server restarted, its backend
        # terminated; or a newer epoch took over) stops serving and waits as a standby
        # again, in this process: only SIGTERM or Ctrl-C end it
        while True:
            leads, leadership = _lead(store, db, args.node, stopping,
                                      rebid_after_s=_REBID_AFTER_S if rounds else 0.0)
            if not leads:  # stopped while waiting to lead
                return 0
            rounds += 1
            # --fresh: the first time only; after that the stored state is this run's own
            why = _serve_until_deposed(node, leadership, stopping,
                                       fresh=args.fresh and rounds == 1)
            if why is None:
                return 0
            print(f"deposed as the router leader (node {args.node}): {_first_line(why)}",
                  file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 0
    except _WebNotStarted as exc:
        print(f"web app not started: {exc} (--no-web to run without it)", file=sys.stderr)
        return 1
    finally:
        store.close()


# a deposed leader lets the standby that was waiting bid first (it was deposed for a
# reason: its lock connection died), then bids again as any standby does
_REBID_AFTER_S = 1.0


@dataclass(frozen=True)
class _Node:
    """What an engine serves with, the same every time it leads."""

    args: argparse.Namespace
    directory: Directory
    registry: FlowRegistry
    survey_flow: Any
    payment_flow: Any
    stack: PbxStack
    db: str
    store: SqlStore


def _serve_until_deposed(node: _Node, leadership: Leadership | None,
                         stopping: threading.Event, *, fresh: bool) -> str | None:
    """Adopt the stored router state and serve (the engine, the SIP guard, the web
    app) until ``stopping`` is set (None) or this engine is deposed as the router
    leader (why): then stop all it started and give the lock up. A store that fails
    while taking over counts as deposed (another engine, or this one again, takes
    over from the store)."""
    from datetime import UTC, datetime

    from routing.router import Router
    from store import StoreError

    args, stack, store = node.args, node.stack, node.store
    deposed: list[str] = []

    def fenced(why: str) -> None:  # the router thread's save was refused: stop
        deposed.append(why)

    engine = None
    web_store = None
    try:
        try:
            store.sync_agents(node.directory)
            now = datetime.now(UTC)
            hours_applied = store.apply_hours(node.directory)
            snapshot = None if fresh else store.load_router_snapshot()
            router = Router(hours_applied, now=now)
            if snapshot is not None:
                print(f"adopting the stored router state of {len(snapshot.calls)} call(s) "
                      f"and {len(snapshot.agents)} agent(s) (--fresh to ignore it)",
                      file=sys.stderr, flush=True)
            engine = stack.start_engine(
                router, lambda: node.registry.current(args.flow), journal_path=args.journal,
                store=store, survey_flow=node.survey_flow, payment_flow=node.payment_flow,
                restore=(hours_applied, snapshot) if snapshot else None,
                on_fenced=fenced if leadership is not None else None)
        except StoreError as exc:
            if leadership is None:
                raise
            return f"the store failed while taking over: {exc}"
        web_store = _start_beside(node)
        while not stopping.wait(0.25):
            if deposed:
                return deposed[0]
            if leadership is not None and (why := leadership.check()) is not None:
                return why  # the lock's session is gone: another may lead now
        return None
    finally:
        _stop_beside(stack, web_store)
        if engine is not None:
            engine.stop()
        if leadership is not None:
            leadership.close()  # the lock is given up: a standby leads next


def _start_beside(node: _Node) -> SqlStore | None:
    """What serves beside the engine: the SIP guard and the web app (its store)."""
    from voice.ami import AmiError

    stack, args = node.stack, node.args
    try:
        # beside the instance: it rewrites the instance's pjsip ACL file
        stack.start_guard()
    except (AmiError, OSError) as exc:
        print(f"SIP guard not started (failed registrations will not be blocked): {exc}",
              file=sys.stderr)
    web_store = None
    if not args.no_web:
        web_store, url = _start_web(stack, node.db, args)
        print(f"web app on {url}/ (agent portal; users: `homeline user add NAME "
              "--role agent`)", flush=True)
    print(f"engine serving: FastAGI 127.0.0.1:{stack.ports.agi}, AMI "
          f"127.0.0.1:{stack.ports.ami} (Ctrl-C to stop)", flush=True)
    return web_store


def _stop_beside(stack: PbxStack, web_store: SqlStore | None) -> None:
    stack.stop_web()
    if web_store is not None:
        web_store.close()
    if stack.guard is not None:
        stack.guard.stop()
        stack.guard = None


def _serve_as_node(node: _Node, stopping: threading.Event) -> int:
    """One of several nodes (the stack lists peers: homeline/nodes.py): serve this
    node's Asterisk from the start, following the router leader; bid for the leader
    lock every 0.25 s, and on winning adopt the stored router state; deposed, follow
    again and bid anew. Until ``stopping``."""
    from datetime import UTC, datetime

    from homeline.nodes import NodeLink
    from routing.router import Router
    from store import StoreError
    from store.leader import Leadership
    from store.postgres import PostgresStore

    args, stack, store = node.args, node.stack, node.store
    name = stack.node or args.node
    if not isinstance(store, PostgresStore):
        print(f"{store.where}: this stack is one of several nodes (its stack.json lists "
              "peers): the nodes share a PostgreSQL store (--db postgresql://...)",
              file=sys.stderr)
        return 2
    lost: list[str] = []  # the router thread's save was refused: deposed
    store.sync_agents(node.directory)
    router = Router(store.apply_hours(node.directory), now=datetime.now(UTC))
    cluster = NodeLink(store, name, f"127.0.0.1:{stack.ports.sip}", lambda: datetime.now(UTC))
    leadership = Leadership(store, name)
    engine = None
    web_store = None
    try:
        engine = stack.start_engine(
            router, lambda: node.registry.current(args.flow), journal_path=args.journal,
            store=store, survey_flow=node.survey_flow, payment_flow=node.payment_flow,
            on_fenced=lost.append, cluster=cluster)
        web_store = _start_beside(node)
        said, fresh = "", args.fresh
        while not stopping.wait(0.25):
            if leadership.epoch is None:
                said = _bid(leadership, name, said, store)
                if leadership.epoch is not None:  # this node's engine routes for all now
                    try:
                        restore = _takeover(store, node.directory, fresh)
                    except StoreError as exc:  # as if deposed: the lock goes, a bid retakes it
                        print(f"the store failed while taking over (node {name}): "
                              f"{_first_line(str(exc))}; this node follows", flush=True)
                        leadership.close()
                        leadership, said = Leadership(store, name), ""
                        continue
                    engine.lead(restore)
                    fresh = False
            elif (why := lost.pop() if lost else leadership.check()) is not None:
                print(f"deposed as the router leader (node {name}): {_first_line(why)}; "
                      "this node follows", flush=True)
                engine.follow(why)
                leadership.close()
                leadership = Leadership(store, name)
                said = ""
        return 0
    finally:
        _stop_beside(stack, web_store)
        if engine is not None:
            engine.stop()
        leadership.close()


def _bid(lead: Leadership, name: str, said: str, store: SqlStore) -> str:
    """One bid of a node's engine for the leader lock; returns what it last said."""
    from datetime import UTC, datetime

    from store import StoreError

    try:
        epoch = lead.try_lead(datetime.now(UTC))
        problem = ""
    except StoreError as exc:
        epoch, problem = None, _first_line(str(exc))
    if epoch is not None:
        print(f"leading with epoch {epoch} (node {name})", flush=True)
        return ""
    if problem:  # said once per outage
        saying, line = "problem", ("following: the store does not answer, retrying: "
                                   f"{problem}")
    else:
        saying = line = ("following: this node serves its calls, another routes"
                         f"{_leader_text(store)}")
    if saying != said:
        print(f"{line} (node {name})", flush=True)
    return saying


def _takeover(store: SqlStore, directory: Directory, fresh: bool) -> tuple[Any, Any] | None:
    """What a node's engine that just won the leadership adopts: the hours as stored
    now and the router state the last leader left (None: none, or ``--fresh``)."""
    snapshot = None if fresh else store.load_router_snapshot()
    if snapshot is None:
        return None
    print(f"adopting the stored router state of {len(snapshot.calls)} call(s) and "
          f"{len(snapshot.agents)} agent(s)", file=sys.stderr, flush=True)
    return store.apply_hours(directory), snapshot


def _lead(store: SqlStore, db: str, node: str, stopping: threading.Event,
          rebid_after_s: float = 0.0) -> tuple[bool, Leadership | None]:
    """With a PostgreSQL store, wait until this engine is the router leader (the
    leader lock polled every 0.5 s, after ``rebid_after_s``) and fence the store with
    its epoch: (True, the `Leadership` to keep checking). An SQLite store is one
    engine's: (True, None), no election. (False, None) when stopped while waiting.

    While the database does not answer (a server restart), the wait goes on: the
    problem is said once, and the standby line again once the server answers."""
    from datetime import UTC, datetime

    from store import StoreError, is_postgres_url
    from store.leader import Leadership
    from store.postgres import PostgresStore

    if not is_postgres_url(db) or not isinstance(store, PostgresStore):
        return True, None
    lead = Leadership(store, node)
    if rebid_after_s and stopping.wait(rebid_after_s):
        return False, None
    said = ""
    while True:
        try:
            epoch = lead.try_lead(datetime.now(UTC))
            problem = ""
        except StoreError as exc:
            epoch, problem = None, str(exc)
        if epoch is not None:
            print(f"leading with epoch {epoch} (node {node})", flush=True)
            return True, lead
        if problem:  # said once per outage, however its wording changes
            saying, line = "problem", (f"standby: the store does not answer, retrying every "
                                       f"0.5 s: {_first_line(problem)}")
        else:  # said again when another leader took over
            saying = line = f"standby: waiting to lead{_leader_text(store)}"
        if saying != said:
            said = saying
            print(f"{line} (node {node})", flush=True)
        if stopping.wait(0.5):
            lead.close()
            return False, None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def _leader_text(store: SqlStore) -> str:
    from store import StoreError

    try:
        leader = store.router_leader()
    except StoreError:
        return ""
    return "" if leader is None else (f": node {leader.node} leads with epoch {leader.epoch} "
                                      f"since {leader.since.isoformat(timespec='seconds')}")


class _WebNotStarted(Exception):
    pass


def _start_web(stack: PbxStack, db: str, args: argparse.Namespace) -> tuple[SqlStore, str]:
    """The web app beside the engine, on a store connection of its own (the same
    file: SQLite in WAL mode lets the pages read while the engine writes)."""
    from homeline.certs import CertificateError
    from homeline.secrets import SecretStoreError
    from store import StoreError, open_store
    from web import WebError

    try:
        web_store = open_store(db)
    except StoreError as exc:
        raise _WebNotStarted(str(exc)) from exc
    try:
        server = stack.start_web(web_store, host=args.web_host, port=args.web_port,
                                 https=not args.web_http, idle_timeout_s=args.idle_timeout,
                                 forecast=args.forecast)
    except (WebError, CertificateError, SecretStoreError, ValueError, OSError) as exc:
        web_store.close()
        raise _WebNotStarted(str(exc)) from exc
    return web_store, str(server.url)


def _stack_from(state: Path, directory: Directory,
                supervisors: tuple[Any, ...] = ()) -> PbxStack | None:
    """The stack of an instance started elsewhere (``PbxStack.start_pbx`` wrote its
    stack.json), or None after saying why."""
    from homeline.pbx.process import AsteriskInstance
    from homeline.pbx.sandbox import ensure_root
    from homeline.stack import PbxStack

    try:
        stack = PbxStack.from_state(state, directory, supervisors=supervisors)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return None
    stack.instance = AsteriskInstance(ensure_root(progress=lambda m: print(m, file=sys.stderr)),
                                      stack.name)
    if not stack.instance.running():
        print(f"Asterisk instance {stack.name!r} is not running", file=sys.stderr)
        return None
    return stack
