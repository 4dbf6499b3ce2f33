"""`homeline dialplan render`: write the Asterisk configuration from dialplans/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeline.paths import DIALPLANS_DIR

if TYPE_CHECKING:
    from homeline.stack import SecureAccess
    from routing import Directory


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("dialplan", help="Asterisk configuration from dialplans/templates")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    render = actions.add_parser(
        "render", help="write pjsip.conf, extensions.conf, manager.conf ... into a directory")
    render.add_argument("--agents", type=Path, default=DIALPLANS_DIR / "agents.yaml",
                        help="agent directory (default: dialplans/agents.yaml)")
    render.add_argument("--supervisors", type=Path, default=None,
                         help="who may listen/whisper/barge, from which endpoint "
                              "(default dialplans/supervisors.yaml; none without it)")
    render.add_argument("--out", type=Path, default=None,
                        help="where to write (default: <state dir>/asterisk-etc)")
    add_trunk_arguments(render)
    add_secure_arguments(render)
    render.set_defaults(func=run_render)


def add_secure_arguments(parser: argparse.ArgumentParser) -> None:
    """How agents reach the PBX from home: SIP over TLS, the browser's WSS."""
    parser.add_argument("--secure-bind", default="127.0.0.1", metavar="ADDR",
                        help="address for SIP over TLS (5061), WSS (8089) and the media of "
                        "tls/webrtc agents: the server's LAN or public address, 0.0.0.0 "
                        "for all (default 127.0.0.1; plain UDP SIP stays on loopback)")
    parser.add_argument("--cert-name", action="append", default=[], metavar="NAME",
                        help="a host name or address agents use, for the generated "
                        "certificate (repeatable)")
    parser.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                        help="the admin's certificate (chain) instead of a generated one")
    parser.add_argument("--tls-key", type=Path, default=None, metavar="PEM",
                        help="its private key (0600)")
    parser.add_argument("--tls-ca", type=Path, default=None, metavar="PEM",
                        help="the CA bundle agents should trust (default: --tls-cert)")


def secure_access(args: argparse.Namespace) -> SecureAccess:
    from homeline.stack import SecureAccess

    return SecureAccess(bind=args.secure_bind, names=tuple(args.cert_name),
                        cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)


def add_trunk_arguments(parser: argparse.ArgumentParser) -> None:
    """Where numbers outside go: overflow ext:NUMBER, transfer nodes, callbacks."""
    trunk = parser.add_mutually_exclusive_group()
    trunk.add_argument("--trunk-contact", default="", metavar="SIP_URI",
                       help="a static trunk to dial numbers outside through, e.g. "
                       "sip:192.0.2.10:5060 (rendered as the endpoint homeline-external)")
    trunk.add_argument("--trunk-endpoint", default="", metavar="NAME",
                       help="an existing PJSIP endpoint to dial numbers outside through")


def load_directory_or_report(path: Path) -> Directory | None:
    """The agent directory, or None after printing every problem in it."""
    from routing import DirectoryError, load_directory

    try:
        return load_directory(path)
    except DirectoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def load_supervisors_or_report(directory: Directory,
                               path: Path | None = None) -> tuple[Any, ...] | None:
    """The supervisors of ``path`` (default dialplans/supervisors.yaml; none without
    that file), or None after printing every problem in it."""
    from homeline.supervisors import SupervisorsError, load_supervisors

    try:
        return load_supervisors(path, agent_ids=[a.id for a in directory.agents])
    except SupervisorsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def run_render(args: argparse.Namespace) -> int:
    from homeline.paths import state_dir
    from homeline.pbx.render import RenderError, write_config
    from homeline.stack import PbxStack, Ports

    directory = load_directory_or_report(args.agents)
    if directory is None:
        return 1
    supervisors = load_supervisors_or_report(directory, args.supervisors)
    if supervisors is None:
        return 1
    from homeline.certs import CertificateError

    stack = PbxStack("main", directory, state_dir(), Ports.standard(),
                     external_contact=args.trunk_contact, external_endpoint=args.trunk_endpoint,
                     secure=secure_access(args), supervisors=supervisors)
    try:
        files = stack.render()
        stack.tls_files()  # the admin's files are checked here too
    except (RenderError, CertificateError) as exc:
        print(exc, file=sys.stderr)
        return 1
    out = args.out or state_dir() / "asterisk-etc"
    for path in write_config(files, out):
        print(path)
    return 0
