"""A running Homeline: an Asterisk instance configured from the templates and
the agent directory, and the engine attached to it.

Used by ``homeline asterisk up``, ``homeline engine run``, the demo and the
integration tests; each gets its own instance name, state directory and free
loopback ports, so several can run side by side.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from homeline.pbx.render import AgentLine, NodePeer, RenderSettings, render_config, write_config
from homeline.secrets import SecretStore

__all__ = ["Ports", "PbxStack", "SecureAccess", "free_port", "free_rtp_range"]

AMI_USER = "homeline"
GUARD_USER = "homeline-guard"
# where the instance's TLS files live inside the Asterisk root (process.INSTANCES_DIR)
_INSTANCES_DIR = PurePosixPath("/srv/homeline")
_KEY_FILES = {"server.pem": "certfile", "server-key.pem": "keyfile", "ca.pem": "cafile"}


@dataclass(frozen=True, slots=True)
class SecureAccess:
    """How agents reach the PBX from home: SIP over TLS and the browser's WSS.

    ``bind``: the address TLS, WSS and the media of tls/webrtc agents listen on
    (the server's LAN or public address; ``0.0.0.0`` for all). ``names``: more
    host names/addresses for the certificate (the ones agents type).
    ``cert``/``key``/``ca``: the admin's certificate; otherwise homeline/certs.py
    makes one signed by a test CA kept in the state directory.
    """

    bind: str = "127.0.0.1"
    names: tuple[str, ...] = ()
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel just said is free on 127.0.0.1 (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_rtp_range(size: int = 200) -> tuple[int, int]:
    """An even-aligned UDP range whose first and last ports are free right now."""
    for _ in range(50):
        start = free_port(socket.SOCK_DGRAM) & ~1
        if start + size >= 65535 or start < 1024:
            continue
        try:
            for port in (start, start + size - 1):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return start, start + size - 1
    raise OSError("no free UDP range for RTP on 127.0.0.1")


@dataclass(frozen=True, slots=True)
class Ports:
    sip: int
    ami: int
    agi: int
    rtp_start: int
    rtp_end: int
    tls: int = 5061  # SIP over TLS (RFC 3261 section 26.2's default for sips)
    https: int = 8089  # Asterisk's HTTPS server: the WSS of the browser phone (/ws)

    @classmethod
    def free(cls) -> Ports:
        rtp_start, rtp_end = free_rtp_range()
        return cls(sip=free_port(socket.SOCK_DGRAM), ami=free_port(), agi=free_port(),
                   rtp_start=rtp_start, rtp_end=rtp_end, tls=free_port(), https=free_port())

    @classmethod
    def standard(cls) -> Ports:
        """The ports an admin expects: SIP 5060, TLS 5061, AMI 5038, FastAGI 4573,
        HTTPS (WSS) 8089."""
        return cls(sip=5060, ami=5038, agi=4573, rtp_start=10000, rtp_end=20000,
                   tls=5061, https=8089)


class PbxStack:
    """Asterisk instance ``name`` configured for the agents of ``directory``."""

    def __init__(self, name: str, directory: Any, state_dir: Path, ports: Ports | None = None,
                 progress: Callable[[str], None] = lambda _m: None,
                 flows_dir: Path | None = None, external_endpoint: str = "",
                 external_contact: str = "", secure: SecureAccess | None = None,
                 supervisors: tuple[Any, ...] = (), node: str = "",
                 peers: tuple[NodePeer, ...] = ()) -> None:
        """``supervisors``: homeline/supervisors.py `Supervisor` values; each gets an
        endpoint of their own, the one the engine rings for listen/whisper/barge.
        ``node``, ``peers``: this Asterisk is node ``node`` of several sharing the
        router (homeline/nodes.py), with a SIP trunk to each of ``peers``."""
        from homeline.paths import DIALPLANS_DIR

        self.name = name
        self.flows_dir = flows_dir or DIALPLANS_DIR / "flows"
        self.text_config = DIALPLANS_DIR / "text.yaml"  # the text channels (web and engine)
        self.external_endpoint = external_endpoint
        self.external_contact = external_contact
        self.secure = secure or SecureAccess()
        self.guard: Any = None
        self.directory = directory
        self.supervisors = tuple(supervisors)
        self.node = node
        self.peers = tuple(peers)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ports = ports or Ports.free()
        self.secrets = SecretStore(self.state_dir / "secrets.json")
        for peer in self.peers:  # the trunk's secret, for `from_state` in another process
            if self.secrets.lookup(f"node:{peer.name}") != peer.secret:
                self.secrets.set(f"node:{peer.name}", peer.secret)
        self._progress = progress
        self.instance: Any = None
        self.engine: Any = None
        self.web: Any = None

    # -- configuration -----------------------------------------------------------
    def agent_secret(self, agent_id: str) -> str:
        return self.secrets.get(f"sip:{agent_id}")

    def ami_secret(self) -> str:
        return self.secrets.get("ami:homeline")

    def guard_secret(self) -> str:
        return self.secrets.get(f"ami:{GUARD_USER}")

    def tls_files(self) -> Any:
        """The TLS certificate, key and CA (homeline/certs.py ``CertFiles``) for
        SIP over TLS and HTTPS: the admin's, or generated once for the names."""
        from homeline.certs import DEFAULT_NAMES, ensure_certificates

        sec = self.secure
        names = (sec.bind, *sec.names, *DEFAULT_NAMES)
        return ensure_certificates(self.state_dir, names, cert=sec.cert, key=sec.key, ca=sec.ca)

    def _keys_in_root(self) -> dict[str, str]:
        keys = _INSTANCES_DIR / self.name / "etc" / "keys"
        return {attr: str(keys / name) for name, attr in _KEY_FILES.items()}

    HOLD_MARGIN_S = 120  # on hold past the queue's max wait by this much: the engine is gone
    DEFAULT_HOLD_S = 1800

    def hold_s(self, queue_id: str) -> int:
        """How long a caller of ``queue_id`` may wait on hold with no word from the engine."""
        for q in self.directory.queues:
            if q.id == queue_id and q.max_wait_s is not None:
                return int(q.max_wait_s) + self.HOLD_MARGIN_S
        return self.DEFAULT_HOLD_S + self.HOLD_MARGIN_S

    def records(self, queue_id: str) -> bool:
        """Whether calls of ``queue_id`` to agents are recorded (``record: true``)."""
        return any(q.id == queue_id and q.record for q in self.directory.queues)

    @property
    def recordings_dir(self) -> Path:
        """Where kept recordings live: ``<state dir>/recordings/<call id>.wav``."""
        return self.state_dir / "recordings"

    def recording_keeper(self, store: Any, clock: Callable[[], Any] | None = None) -> Any:
        """Moves MixMonitor's files (the instance's ``spool/monitor``) to `recordings_dir`
        when calls end, and removes them after ``policy.recording_retention_days``."""
        from datetime import timedelta

        from voice.recording import MONITOR_SUBDIR, RecordingKeeper

        monitor = self.instance.spool_dir / MONITOR_SUBDIR
        monitor.mkdir(parents=True, exist_ok=True)
        os.chown(monitor, self.instance.root.asterisk_uid, self.instance.root.asterisk_gid)
        return RecordingKeeper(
            monitor, self.recordings_dir, store,
            retention=lambda: timedelta(days=self.directory.policy.recording_retention_days),
            clock=clock or (lambda: datetime.now(UTC)))

    def voicemail_boxes(self) -> tuple[str, ...]:
        """A box per queue (overflow to voicemail, rejected calls) and per flow voicemail node."""
        from ivr.errors import IvrError
        from ivr.flow import VoicemailNode
        from ivr.loader import load_flow

        boxes = {q.id for q in self.directory.queues}
        for path in sorted(self.flows_dir.glob("*.yaml")):
            try:
                flow = load_flow(path)
            except IvrError:
                continue  # `homeline flow check` reports it; the engine refuses to serve it
            boxes |= {n.box for n in flow.nodes.values() if isinstance(n, VoicemailNode)}
        return tuple(sorted(boxes))

    def render(self, moh_directory: str = "/usr/share/asterisk/moh") -> dict[str, str]:
        agents = [AgentLine(a.id, a.name, a.phone)
                  for a in self.directory.agents]
        supervisors = [AgentLine(s.id, s.name, s.phone) for s in self.supervisors]
        keys = self._keys_in_root()
        settings = RenderSettings(
            sip_port=self.ports.sip, ami_port=self.ports.ami, agi_port=self.ports.agi,
            rtp_start=self.ports.rtp_start, rtp_end=self.ports.rtp_end,
            ami_user=AMI_USER, ami_secret=self.ami_secret(), moh_directory=moh_directory,
            ring_timeout_s=int(round(self.directory.policy.ring_timeout_s)),
            agent_secrets={a.agent_id: self.agent_secret(a.agent_id)
                           for a in [*agents, *supervisors]},
            max_hold_s=self.DEFAULT_HOLD_S + self.HOLD_MARGIN_S,
            voicemail_boxes=self.voicemail_boxes(), external_endpoint=self.external_endpoint,
            external_contact=self.external_contact,
            secure_bind=self.secure.bind, tls_port=self.ports.tls, https_port=self.ports.https,
            tls_cert_file=keys["certfile"], tls_key_file=keys["keyfile"],
            tls_ca_file=keys["cafile"], guard_user=GUARD_USER, guard_secret=self.guard_secret(),
            node=self.node, node_peers=self.peers,
        )
        return render_config(settings, agents, supervisors=supervisors)

    def _install_tls(self, etc_dir: Path) -> None:
        """Copy the certificate files where Asterisk reads them (in its root, which
        sees nothing of the host): ``etc/keys``, root:asterisk 0640 (prepare())."""
        files = self.tls_files()
        keys = etc_dir / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        keys.chmod(0o750)
        for name, attr in _KEY_FILES.items():
            target = keys / name
            tmp = target.with_name(name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Path(getattr(files, attr)).read_bytes())
            tmp.replace(target)

    # -- the PBX -------------------------------------------------------------------
    def start_pbx(self) -> Any:
        from homeline.pbx.process import AsteriskInstance
        from homeline.pbx.sandbox import ensure_root

        root = ensure_root(progress=self._progress)
        self.instance = AsteriskInstance(root, self.name)
        if self.instance.running():
            raise RuntimeError(
                f"Asterisk instance {self.name!r} is already running (pid "
                f"{self.instance.pid()}); stop it with `homeline asterisk down`"
            )
        write_config(self.render(), self.instance.etc_dir)
        self._install_tls(self.instance.etc_dir)
        self._progress(f"starting Asterisk {root.version} as instance {self.name!r}")
        self.instance.start()
        self.save_state()
        return self.instance

    def save_state(self) -> Path:
        """Write ``state_dir/stack.json``: what `from_state` needs to attach to this
        stack from another process (``homeline engine run``, ``homeline serve``)."""
        sec = self.secure
        path = self.state_dir / "stack.json"
        path.write_text(
            json.dumps({"name": self.name, "ports": asdict(self.ports), "node": self.node,
                        # each trunk's secret is in secrets.json ("node:<peer>"), not here
                        "peers": [{"name": p.name, "host": p.host, "port": p.port}
                                  for p in self.peers],
                        "secure_bind": sec.bind, "secure_names": list(sec.names),
                        "tls": {k: str(v) if v else None
                                for k, v in (("cert", sec.cert), ("key", sec.key),
                                             ("ca", sec.ca))}}),
            encoding="utf-8")
        return path

    @classmethod
    def from_state(cls, state_dir: Path, directory: Any, **kw: Any) -> PbxStack:
        """The stack ``start_pbx`` described in ``state_dir/stack.json``: its instance
        name, ports and secure access (so the certificate asked for is the one
        Asterisk was given, not one for other names). Raises ``ValueError``."""
        path = Path(state_dir) / "stack.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            ports = Ports(**info["ports"])
            name = str(info["name"])
            tls = info.get("tls") or {}
            secure = SecureAccess(
                bind=str(info.get("secure_bind", "127.0.0.1")),
                names=tuple(str(n) for n in info.get("secure_names", ())),
                cert=Path(tls["cert"]) if tls.get("cert") else None,
                key=Path(tls["key"]) if tls.get("key") else None,
                ca=Path(tls["ca"]) if tls.get("ca") else None)
            kw.setdefault("node", str(info.get("node", "")))
            secrets = SecretStore(Path(state_dir) / "secrets.json")
            kw.setdefault("peers", tuple(
                NodePeer(str(p["name"]), str(p["host"]), int(p["port"]),
                         secrets.get(f"node:{p['name']}")) for p in info.get("peers", ())))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not a Homeline stack ({exc})") from exc
        return cls(name, directory, Path(state_dir), ports, secure=secure, **kw)

    # -- the SIP guard ---------------------------------------------------------------
    def start_guard(self, rules: Any = None) -> Any:
        """Block addresses with repeated failed registrations (homeline/sip_guard.py)."""
        from homeline.sip_guard import SipGuard

        if self.instance is None:
            raise RuntimeError("start the PBX before the SIP guard")
        self.guard = SipGuard(self.instance, ami_port=self.ports.ami, user=GUARD_USER,
                              secret=self.guard_secret(), rules=rules)
        self.guard.start()
        return self.guard

    # -- the web app ------------------------------------------------------------------
    def start_web(self, store: Any, **kw: Any) -> Any:
        """The agent portal for this stack's agents, with the phone in the page for
        those whose phone is ``webrtc`` (homeline/webapp.py ``start_web``)."""
        from homeline.webapp import start_web

        if self.web is not None:
            raise RuntimeError("the web app of this stack is already running")
        self.web = start_web(self, store, **kw)
        return self.web

    def stop_web(self) -> None:
        """Stop the web app (open requests finish, event streams end); no-op if none."""
        web, self.web = self.web, None
        if web is not None:
            web.stop()

    # -- the engine -------------------------------------------------------------------
    def start_engine(self, router: Any, flow_for_new_call: Callable[[], Any],
                     journal_path: Path | None = None, store: Any = None,
                     survey_flow: Any = None, clock: Callable[[], Any] | None = None,
                     restore: tuple[Any, Any] | None = None,
                     payment_flow: Any = None,
                     on_fenced: Callable[[str], None] | None = None,
                     cluster: Any = None) -> Any:
        from homeline.engine import Engine, EngineConfig

        if self.instance is None:
            raise RuntimeError("start the PBX before the engine")
        config = EngineConfig(
            ami_host="127.0.0.1", ami_port=self.ports.ami, ami_user=AMI_USER,
            ami_secret=self.ami_secret(), agi_port=self.ports.agi, journal_path=journal_path,
        )
        from voice.agi_runner import Recordings

        # Asterisk (user asterisk in the root) writes recordings here: speech, survey comments
        spool = self.instance.spool_dir / "homeline"
        spool.mkdir(parents=True, exist_ok=True)
        os.chown(spool, self.instance.root.asterisk_uid, self.instance.root.asterisk_gid)
        recordings = Recordings(
            host_dir=spool,
            to_chroot=lambda path: str(self.instance.to_chroot(path)),
            to_host=lambda path: str(self.instance.to_host(path)),
        )
        keeper = self.recording_keeper(store, clock) if store is not None else None
        chats = None
        if store is not None and hasattr(store, "chat_requests_since"):
            from homeline.textwiring import chat_executor

            chats = chat_executor(store, self.secrets, clock or (lambda: datetime.now(UTC)),
                                  self.directory, self.text_config, say=self._progress)
        self.engine = Engine(
            config, router, flow_for_new_call,
            agent_ids=[a.id for a in self.directory.agents],
            recordings=recordings, store=store, survey_flow=survey_flow,
            hold_s=self.hold_s, clock=clock or (lambda: datetime.now(UTC)), restore=restore,
            records=self.records, keeper=keeper, payment_flow=payment_flow,
            supervisors=tuple(s.id for s in self.supervisors), chats=chats,
            on_fenced=on_fenced, cluster=cluster,
        )
        self.engine.start()
        return self.engine

    def voicemail_messages(self, box: str) -> list[Path]:
        """The messages left in ``box`` (``msgNNNN.txt`` metadata files), oldest first."""
        inbox = self.instance.spool_dir / "voicemail" / "homeline" / box / "INBOX"
        return sorted(inbox.glob("msg*.txt")) if inbox.is_dir() else []

    def stop(self, remove: bool = False) -> None:
        """Stop the web app, the SIP guard, the engine and Asterisk; safe to call more
        than once.

        ``remove=True`` (tests, benchmarks, the demo: throw-away instances) also
        deletes the instance's directory inside the Asterisk root, after copying
        its logs to ``state_dir/asterisk-log`` so a failed run can still be read.
        """
        errors = []
        try:
            self.stop_web()
        except Exception as exc:  # keep going: the engine and Asterisk must stop too
            errors.append(exc)
        if self.guard is not None:
            try:
                self.guard.stop()
            except Exception as exc:  # keep going: Asterisk must stop too
                errors.append(exc)
            self.guard = None
        if self.engine is not None:
            try:
                self.engine.stop()
            except Exception as exc:  # keep going: Asterisk must stop too
                errors.append(exc)
            self.engine = None
        if self.instance is not None:
            self.instance.stop()
            if remove and self.instance.dir.exists():
                kept = self.state_dir / "asterisk-log"
                if self.instance.log_dir.is_dir():
                    shutil.copytree(self.instance.log_dir, kept, dirs_exist_ok=True)
                self.instance.remove()
        if errors:
            raise errors[0]

    def __enter__(self) -> PbxStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
