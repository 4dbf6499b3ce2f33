"""`homeline cluster status`: who routes for the engines sharing a store.

With a PostgreSQL store (``--db postgresql://...`` or ``$HOMELINE_STORE``): the
router leader's node, its fencing epoch and since when (`store.leader`), and
whether a live session holds the leader lock now (when none does, no engine
routes until a standby takes it); then the stored router state: the calls
waiting, in their order in line, and every agent's routing state. An SQLite
store is one engine's on one machine: no election, the same router state.
"""
from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from homeline.paths import STORE_HELP


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cluster", help="the router leader and the stored router state",
                       description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    status = actions.add_parser("status", help="leader node, epoch, waiting calls, agents",
                                description=__doc__)
    status.add_argument("--db", default=None, help=STORE_HELP)
    status.set_defaults(func=cluster_status)


def cluster_status(args: argparse.Namespace) -> int:
    from homeline.paths import store_address
    from store import StoreError, is_postgres_url, open_store
    from store.leader import lock_holder
    from store.postgres import redact

    db = store_address(args.db)
    try:
        store = open_store(db)
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    with store:
        try:
            leader = store.router_leader()
            snapshot = store.load_router_snapshot()
            holder = lock_holder(db) if is_postgres_url(db) else None
            nodes = store.nodes()
            agents_on = store.registered_agents_by_node()
        except StoreError as exc:
            print(exc, file=sys.stderr)
            return 1
    if is_postgres_url(db):
        print(f"store: {redact(db)} (PostgreSQL, shared)")
        if leader is None:
            print("leader: none yet (no engine has led on this store)")
        else:
            print(f"leader: node {leader.node}, epoch {leader.epoch}, since "
                  f"{leader.since.isoformat(timespec='seconds')}")
        if holder is None:
            print("leader lock: free (no engine leads now; a standby takes it within a second)")
        else:
            print(f"leader lock: held (server pid {holder[0]}, {holder[1] or 'unnamed'})")
        if nodes:  # several Asterisks share the router (homeline/nodes.py)
            print(f"nodes ({len(nodes)}):")
            for name, sip, seen in nodes:
                on = agents_on.get(name, [])
                print(f"  node {name} SIP {sip}, engine started "
                      f"{seen.isoformat(timespec='seconds')}; agents registered "
                      f"({len(on)}): {', '.join(on) or '-'}")
    else:
        print(f"store: {db} (SQLite, one machine)")
        print("leader: this machine's engine (SQLite: one engine, no election)")
    if snapshot is None:
        print("router state: none stored yet")
        return 0
    now = datetime.now(UTC).timestamp()
    saved = datetime.fromtimestamp(snapshot.taken_at, UTC).isoformat(timespec="seconds")
    waiting = sorted((c for c in snapshot.calls if c.phase == "waiting"),
                     key=lambda c: (c.key, c.seq))
    print(f"router state saved {saved}: {len(snapshot.calls)} call(s), "
          f"{len(waiting)} waiting, {len(snapshot.agents)} agent(s)")
    print(f"waiting calls ({len(waiting)}):")
    for i, c in enumerate(waiting, 1):
        print(f"  {i}. {c.call_id} queue {c.queue} caller {c.arrival.caller or '-'} "
              f"waiting {max(0.0, snapshot.as_of - c.queued_at):.0f} s "
              f"(as of the save, {max(0.0, now - snapshot.taken_at):.0f} s ago)")
    others = [c for c in snapshot.calls if c.phase != "waiting"]
    if others:
        print(f"other calls ({len(others)}):")
        for c in sorted(others, key=lambda c: (c.seq, c.call_id)):
            print(f"  {c.call_id} {c.phase} queue {c.queue} agent {c.agent or '-'}")
    print(f"agents ({len(snapshot.agents)}):")
    for a in snapshot.agents:
        print(f"  {a.agent_id} {a.state}{' registered' if a.registered else ''}")
    return 0
