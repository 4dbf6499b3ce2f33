"""Render the Asterisk configuration from the templates in ``dialplans/templates``.

Templates use ``{{name}}`` placeholders (Asterisk's own ``${VAR}`` syntax passes
through untouched). An unknown or missing placeholder is an error naming the
template file, the line and the placeholders that are known.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from homeline.paths import DIALPLANS_DIR
from homeline.pbx.errors import PbxError

__all__ = ["AgentLine", "NodePeer", "RenderSettings", "RenderError", "render_config",
           "write_config"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BOX = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# characters that would break out of a pjsip.conf / extensions.conf value
_UNSAFE_VALUE = re.compile(r"[\r\n;\[\]{}$]")


class RenderError(PbxError):
    """A template or an input value cannot be rendered; the message names the file and field."""


@dataclass(frozen=True, slots=True)
class AgentLine:
    """What the PBX needs of a home agent: the endpoint name, a display name, and
    how the phone connects (``udp``, ``tls`` or ``webrtc``: routing.model.PHONE_KINDS)."""

    agent_id: str
    name: str
    phone: str = "udp"


@dataclass(frozen=True, slots=True)
class NodePeer:
    """Another node sharing the router (homeline/nodes.py): its name, the SIP address
    its Asterisk listens on, and the secret this pair of nodes shares for the trunk."""

    name: str
    host: str
    port: int
    secret: str


# Per phone kind: the endpoint template (pjsip.conf.tmpl) an agent's endpoint inherits.
_AGENT_TEMPLATES = {"udp": "homeline-agent-endpoint", "tls": "homeline-agent-endpoint-tls",
                    "webrtc": "homeline-agent-endpoint-webrtc"}


@dataclass(frozen=True, slots=True)
class RenderSettings:
    sip_port: int
    ami_port: int
    agi_port: int
    ami_secret: str
    rtp_start: int = 10000
    rtp_end: int = 20000
    sip_bind: str = "127.0.0.1"
    ami_bind: str = "127.0.0.1"
    ami_permit: str = "127.0.0.1/255.255.255.255"
    ami_user: str = "homeline"
    agi_host: str = "127.0.0.1"
    caller_match: str = "127.0.0.1"
    support_number: str = "100"
    plain_menu_number: str = "200"
    ivr_bench_number: str = "300"
    default_language: str = "en"
    moh_class: str = "homeline"
    moh_directory: str = "/usr/share/asterisk/moh"
    fallback_ring_s: int = 30
    ring_timeout_s: int = 15
    max_hold_s: int = 1800  # hold bound when the engine did not set one (HOMELINE_HOLD_S)
    general_box: str = "general"
    external_endpoint: str = ""  # PJSIP endpoint (trunk) for numbers outside; "" = none
    external_contact: str = ""  # a static trunk contact (sip:host:port): renders the endpoint
    callback_ring_s: int = 30
    voicemail_boxes: tuple[str, ...] = ("general",)
    agent_secrets: Mapping[str, str] = field(default_factory=dict)
    # Secure access from home (pjsip-tls.conf.tmpl, http.conf.tmpl). TLS, WSS and the
    # media of tls/webrtc agents are on secure_bind (the address agents reach: set it
    # to the server's LAN/public address); UDP stays on sip_bind (loopback).
    # tls_cert_file/tls_key_file/tls_ca_file: paths as Asterisk sees them (in its
    # root); empty = no TLS transport and no HTTPS server (udp agents only).
    secure_bind: str = "127.0.0.1"
    tls_port: int = 5061
    https_port: int = 8089
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    # the AMI user of the SIP guard (homeline/sip_guard.py): reads security events only
    guard_user: str = "homeline-guard"
    guard_secret: str = ""
    # several nodes (homeline/nodes.py): this node's name and a trunk to each other node
    node: str = ""
    node_peers: tuple[NodePeer, ...] = ()


TEMPLATE_FILES = {
    "pjsip.conf": "pjsip.conf.tmpl",
    "extensions.conf": "extensions.conf.tmpl",
    "manager.conf": "manager.conf.tmpl",
    "rtp.conf": "rtp.conf.tmpl",
    "musiconhold.conf": "musiconhold.conf.tmpl",
    "voicemail.conf": "voicemail.conf.tmpl",
    "modules.conf": "modules.conf",
    "logger.conf": "logger.conf",
    "stasis.conf": "stasis.conf",
    "http.conf": "http.conf.tmpl",
    "pjsip-blocked.conf": "pjsip-blocked.conf.tmpl",
}


def _fill(template_path: Path, values: Mapping[str, object]) -> str:
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"{template_path}: cannot read template: {exc.strerror}") from exc
    problems: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            problems.append(
                f"{template_path}:{line}: unknown placeholder {{{{{name}}}}} "
                f"(known: {', '.join(sorted(values))})"
            )
            return match.group(0)
        return str(values[name])

    out = _PLACEHOLDER.sub(substitute, text)
    if problems:
        raise RenderError("\n".join(problems))
    return out


def _check_value(source: str, name: str, value: object) -> None:
    if isinstance(value, str) and _UNSAFE_VALUE.search(value):
        raise RenderError(
            f"{source}: {name}: {value!r} contains a character that would break the "
            "Asterisk configuration (newline, ';', brackets, braces or '$')"
        )


def render_config(
    settings: RenderSettings,
    agents: Iterable[AgentLine],
    templates_dir: Path | None = None,
    supervisors: Iterable[AgentLine] = (),
) -> dict[str, str]:
    """Return ``{file name: text}`` for every Asterisk configuration file Homeline owns.

    ``supervisors``: their own endpoints (homeline/supervisors.py), rendered like an
    agent's but never in the agents' dial contexts: only the engine rings them, for
    listen/whisper/barge ([homeline-supervise], voice/supervise.py)."""
    tdir = Path(templates_dir) if templates_dir else DIALPLANS_DIR / "templates"
    agent_list = sorted(agents, key=lambda a: a.agent_id)
    supervisor_list = sorted(supervisors, key=lambda a: a.agent_id)
    seen: set[str] = set()
    for agent in [*agent_list, *supervisor_list]:
        if not _AGENT_ID.match(agent.agent_id):
            raise RenderError(
                f"agents: {agent.agent_id!r}: id must be 1-40 of a-z, 0-9, '_' and '-' "
                "(it is also the PJSIP endpoint name)"
            )
        if agent.agent_id in seen or agent.agent_id.startswith("homeline"):
            raise RenderError(f"agents: {agent.agent_id!r}: duplicate or reserved agent id")
        seen.add(agent.agent_id)
        _check_value(f"agents: {agent.agent_id}", "name", agent.name)
        if agent.agent_id not in settings.agent_secrets:
            raise RenderError(f"agents: {agent.agent_id}: no SIP secret was provided")
    values = {k: v for k, v in asdict(settings).items()
              if k not in ("agent_secrets", "voicemail_boxes", "node_peers")}
    boxes = sorted({*settings.voicemail_boxes, settings.general_box})
    for box in boxes:
        if not _BOX.match(box):
            raise RenderError(f"voicemail: box {box!r}: must be 1-32 of A-Z, a-z, 0-9, '_', '-'")
    for key, value in values.items():
        _check_value("settings", key, value)
    for port_name in ("sip_port", "ami_port", "agi_port", "rtp_start", "rtp_end", "tls_port",
                      "https_port"):
        port = values[port_name]
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise RenderError(f"settings: {port_name}: {port!r} is not a port number 1-65535")
    if settings.rtp_end <= settings.rtp_start:
        raise RenderError(
            f"settings: rtp_end: {settings.rtp_end} must be above rtp_start {settings.rtp_start}"
        )

    secure = bool(settings.tls_cert_file)
    if secure and not (settings.tls_key_file and settings.tls_ca_file):
        raise RenderError("settings: tls_cert_file needs tls_key_file and tls_ca_file")
    values["guard_manager_user"] = (_fill(tdir / "manager-guard.conf.tmpl", values)
                                    if settings.guard_secret
                                    else "; (no SIP guard user: no guard_secret)")
    # a wildcard bind: RTP binds to every address and the SDP carries the one the
    # signalling used (res_pjsip's multihomed handling) instead of one media_address
    wildcard = settings.secure_bind in ("0.0.0.0", "::", "[::]")
    values["secure_media"] = ("; media: any address (secure_bind is a wildcard)" if wildcard
                              else f"media_address={settings.secure_bind}\n"
                                   "bind_rtp_to_media_address=yes")
    values["tls_transports"] = (_fill(tdir / "pjsip-tls.conf.tmpl", values) if secure
                                else "; (no TLS: no certificate was configured)")
    values["http_server"] = (_fill(tdir / "http-tls.conf.tmpl", values) if secure
                             else "enabled=no")
    endpoint_blocks = []
    extension_blocks = []
    for agent in [*agent_list, *supervisor_list]:
        secret = settings.agent_secrets[agent.agent_id]
        _check_value(f"secrets: {agent.agent_id}", "password", secret)
        if agent.phone not in _AGENT_TEMPLATES:
            raise RenderError(f"agents: {agent.agent_id}: phone {agent.phone!r} must be one of "
                              f"{', '.join(_AGENT_TEMPLATES)}")
        if agent.phone != "udp" and not secure:
            raise RenderError(f"agents: {agent.agent_id}: phone {agent.phone} needs a TLS "
                              "certificate (settings tls_cert_file, from homeline/certs.py)")
        one = {"agent_id": agent.agent_id, "agent_name": agent.name or agent.agent_id,
               "agent_secret": secret, "agent_template": _AGENT_TEMPLATES[agent.phone]}
        endpoint_blocks.append(_fill(tdir / "pjsip-agent.conf.tmpl", one))
        if agent in agent_list:
            extension_blocks.append(_fill(tdir / "extensions-agent.conf.tmpl", one))
    values["agent_endpoints"] = "\n".join(endpoint_blocks) or "; (no agents in the directory)"
    values["agent_extensions"] = "\n".join(extension_blocks) or "; (no agents in the directory)"
    values["fallback_dial"] = (
        "&".join(f"PJSIP/{a.agent_id}" for a in agent_list) or "Local/s@homeline-no-agent"
    )
    values["voicemail_boxes"] = "\n".join(f"{b} => ,{b}" for b in boxes)
    external = settings.external_endpoint or ("homeline-external"
                                              if settings.external_contact else "")
    values["external_trunk"] = (_fill(tdir / "pjsip-external.conf.tmpl", values)
                                if settings.external_contact else "; (no external trunk)")
    if external:
        # Dial's own status tells the ;1 leg of a callback whether the caller answered
        values["external_extensions"] = (
            f"exten => _[+0-9]X.,1,Dial(PJSIP/${{EXTEN}}@{external},60)\n"
            " same => n,Hangup()")
    else:
        values["external_extensions"] = (
            "exten => _[+0-9]X.,1,Log(WARNING,Homeline: no external_endpoint to dial ${EXTEN})\n"
            " same => n,Playback(homeline/no-agent-leave-message)\n"
            f" same => n,VoiceMail({settings.general_box}@homeline,s)\n"
            " same => n,Hangup()")
    values["plain_menu_context"] = _fill(tdir / "plain-menu.conf.tmpl", values)
    values["node_trunks"], values["node_extensions"] = _node_trunks(settings, agent_list, tdir)
    return {name: _fill(tdir / tmpl, values) for name, tmpl in TEMPLATE_FILES.items()}


def _node_trunks(settings: RenderSettings, agents: list[AgentLine], tdir: Path
                 ) -> tuple[str, str]:
    """The trunk endpoints to the other nodes (pjsip-node.conf.tmpl) and the
    [homeline-from-node] extensions: a call from another node rings one of our agents."""
    if not settings.node_peers:
        return "; (one node: no trunks to other nodes)", "; (one node)"
    if not _AGENT_ID.match(settings.node):
        raise RenderError(f"settings: node: {settings.node!r}: a node name must be 1-40 of "
                          "a-z, 0-9, '_' and '-' (it names the trunk endpoint)")
    blocks, seen = [], {settings.node}
    for peer in settings.node_peers:
        where = f"nodes: {peer.name}"
        if not _AGENT_ID.match(peer.name) or peer.name in seen:
            raise RenderError(f"{where}: a node name must be 1-40 of a-z, 0-9, '_' and '-', "
                              "unique, and not this node's own")
        seen.add(peer.name)
        if not 1 <= peer.port <= 65535:
            raise RenderError(f"{where}: port {peer.port!r} is not a port number 1-65535")
        for key, value in (("host", peer.host), ("secret", peer.secret)):
            _check_value(where, key, value)
        if len(peer.secret) < 16:
            raise RenderError(f"{where}: secret: at least 16 characters")
        blocks.append(_fill(tdir / "pjsip-node.conf.tmpl", {
            "node": settings.node, "peer": peer.name, "peer_host": peer.host,
            "peer_port": peer.port, "peer_secret": peer.secret, "sip_bind": settings.sip_bind}))
    extensions = "\n".join(f"exten => {a.agent_id},1,Dial(PJSIP/{a.agent_id})\n same => n,Hangup()"
                           for a in agents) or "; (no agents in the directory)"
    return "\n".join(blocks), extensions


def write_config(files: Mapping[str, str], etc_dir: Path) -> list[Path]:
    """Write rendered files into ``etc_dir`` (0640: pjsip.conf and manager.conf hold secrets)."""
    etc = Path(etc_dir)
    etc.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = etc / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o640)
        tmp.replace(path)
        written.append(path)
    return written
