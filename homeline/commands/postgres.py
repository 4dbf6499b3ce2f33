"""`homeline postgres run`: a throw-away PostgreSQL server for trying the shared store.

Starts a cluster of its own (homeline/pgcluster.py: ``initdb`` + ``pg_ctl`` on a
new directory, a free loopback port and a socket dir of its own, as the
``postgres`` system user when run as root), creates the database ``homeline``,
prints its URL (for ``--db`` or ``HOMELINE_STORE``) and serves until Ctrl-C or
SIGTERM; then stops the server and removes the directory: nothing is kept. A
store meant to last belongs on a PostgreSQL server of its own
(``CREATE DATABASE homeline TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'``).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("postgres", help="a throw-away PostgreSQL server for the shared store",
                       description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="start it, print its URL, stop it on Ctrl-C",
                             description=__doc__)
    run.add_argument("--port", type=int, default=None, help="TCP port on 127.0.0.1 "
                     "(default: a free one)")
    run.add_argument("--no-fsync", action="store_true",
                     help="fsync off (faster; a crash loses the cluster, thrown away anyway)")
    run.set_defaults(func=run_postgres)


def run_postgres(args: argparse.Namespace) -> int:
    from homeline.pgcluster import PgCluster, PgClusterError

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stopping.set())
    cluster = PgCluster(durable=not args.no_fsync, port=args.port)
    try:
        cluster.start()
        url = cluster.create_database("homeline")
    except PgClusterError as exc:
        cluster.stop()
        print(exc, file=sys.stderr)
        return 1
    try:
        print(f"PostgreSQL {cluster.pid()} on 127.0.0.1:{cluster.port}, in {cluster.root} "
              "(removed when it stops)", flush=True)
        print(f"export HOMELINE_STORE={url}", flush=True)
        print("serving until Ctrl-C", flush=True)
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    print("stopped; its directory is removed", flush=True)
    return 0
