"""`homeline asterisk up|down|status|cli`: the PBX admins and the engine use.

`up` renders the configuration from dialplans/ (agents, templates, generated
secrets) and starts Asterisk from its sandbox root on the standard ports (SIP
5060, AMI 5038 on 127.0.0.1); `down` stops it and leaves no process or mount.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeline.paths import DIALPLANS_DIR

if TYPE_CHECKING:
    from homeline.pbx.process import AsteriskInstance

INSTANCE = "main"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("asterisk", help="run the PBX (up, down, status, cli)",
                            description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("up", help="render the configuration and start Asterisk")
    up.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml")
    up.add_argument("--supervisors", type=Path, default=None,
                     help="who may listen/whisper/barge, from which endpoint "
                          "(default dialplans/supervisors.yaml; none without it)")
    from homeline.commands.dialplan import add_secure_arguments, add_trunk_arguments

    add_trunk_arguments(up)
    add_secure_arguments(up)
    up.add_argument("--node", default=None, metavar="NAME",
                    help="this Asterisk is node NAME of several sharing one router: a SIP "
                    "trunk to every other node of --nodes (`homeline engine run --node NAME`)")
    up.add_argument("--nodes", type=Path, default=None, metavar="FILE",
                    help="the nodes and their SIP addresses (default dialplans/nodes.yaml)")
    up.set_defaults(func=run_up)
    actions.add_parser("down", help="stop Asterisk").set_defaults(func=run_down)
    status = actions.add_parser("status", help="is it running, which version, which ports")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)
    cli = actions.add_parser("cli", help="run one Asterisk CLI command, e.g. 'pjsip show contacts'")
    cli.add_argument("words", nargs="+")
    cli.set_defaults(func=run_cli)


def main_instance() -> AsteriskInstance:
    from homeline.pbx.process import AsteriskInstance
    from homeline.pbx.sandbox import ensure_root

    return AsteriskInstance(ensure_root(progress=lambda m: print(m, file=sys.stderr)), INSTANCE)


def run_up(args: argparse.Namespace) -> int:
    from homeline.certs import CertificateError
    from homeline.commands.dialplan import (
        load_directory_or_report,
        load_supervisors_or_report,
        secure_access,
    )
    from homeline.paths import state_dir
    from homeline.pbx.errors import PbxError
    from homeline.pbx.render import RenderError
    from homeline.stack import PbxStack, Ports

    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    supervisors = load_supervisors_or_report(directory, args.supervisors)
    if supervisors is None:
        return 1
    peers = _peers(args)
    if peers is None:
        return 1
    stack = PbxStack(INSTANCE, directory, state_dir(), Ports.standard(),
                     progress=lambda m: print(m, file=sys.stderr),
                     external_contact=args.trunk_contact, external_endpoint=args.trunk_endpoint,
                     secure=secure_access(args), supervisors=supervisors,
                     node=args.node or "", peers=peers)
    try:
        instance = stack.start_pbx()
    except (PbxError, RenderError, RuntimeError, CertificateError) as exc:
        print(f"asterisk up: {exc}", file=sys.stderr)
        return 1
    secure = stack.secure.bind
    print(f"Asterisk is up (pid {instance.pid()}): SIP 127.0.0.1:{stack.ports.sip} (UDP, "
          f"loopback), SIP over TLS {secure}:{stack.ports.tls}, WSS "
          f"wss://{secure}:{stack.ports.https}/ws, AMI 127.0.0.1:{stack.ports.ami}, "
          f"FastAGI expected on 127.0.0.1:{stack.ports.agi}")
    print(f"agents' phones trust {stack.tls_files().cafile}")
    print("next: `homeline engine run`; stop with `homeline asterisk down`")
    return 0


def _peers(args: argparse.Namespace) -> tuple[Any, ...] | None:
    """The trunks ``--node`` needs (every other node of the nodes file, with the shared
    secret); () for one node; None after saying what is wrong."""
    from homeline.nodefile import TRUNK_SECRET, NodesError, load_nodes
    from homeline.paths import state_dir
    from homeline.pbx.render import NodePeer
    from homeline.secrets import SecretStore

    if args.node is None:
        return ()
    try:
        nodes = load_nodes(args.nodes if args.nodes is not None else None)
    except NodesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    names = [n.name for n in nodes]
    if args.node not in names:
        print(f"asterisk up: --node {args.node}: not a node of the nodes file (nodes: "
              f"{', '.join(names) or 'none: write dialplans/nodes.yaml'})", file=sys.stderr)
        return None
    secret = SecretStore(state_dir() / "secrets.json").lookup(TRUNK_SECRET)
    if not secret or len(secret) < 16:
        print(f"asterisk up: no trunk secret of 16+ characters: set the same one on every "
              f"node with `homeline secrets set {TRUNK_SECRET}`", file=sys.stderr)
        return None
    return tuple(NodePeer(n.name, n.host, n.port, secret) for n in nodes
                 if n.name != args.node)


def run_down(args: argparse.Namespace) -> int:
    instance = main_instance()
    was_running = instance.running()
    instance.stop()
    print("Asterisk stopped" if was_running else "Asterisk was not running")
    return 0


def run_status(args: argparse.Namespace) -> int:
    status = main_instance().status()
    if args.json:
        print(json.dumps(status, default=str, indent=1))
    else:
        for key, value in status.items():
            print(f"{key}: {value}")
    return 0 if status.get("running") else 3


def run_cli(args: argparse.Namespace) -> int:
    from homeline.pbx.errors import AsteriskCliError

    instance = main_instance()
    if not instance.running():
        print("Asterisk is not running: `homeline asterisk up`", file=sys.stderr)
        return 1
    try:
        print(instance.cli(" ".join(args.words)))
    except AsteriskCliError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
