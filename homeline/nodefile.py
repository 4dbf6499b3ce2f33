"""The nodes of a centre that runs several Asterisks sharing one router
(``dialplans/nodes.yaml``, issue 13). Without the file there is one node.

```yaml
nodes:
  a:
    sip: 10.0.0.1:5060   # where the other nodes' Asterisks reach this one's SIP
  b:
    sip: 10.0.0.2:5060
```

`homeline asterisk up --node a` renders a PJSIP trunk to every other node listed
(dialplans/templates/pjsip-node.conf.tmpl); every trunk answers with the one
secret the nodes share (``homeline secrets set node:trunk`` on each node, the
same value). The file is admin-edited, hence untrusted: read through
`adminfiles.read_yaml`, every problem reported at once as
``file:node:key: message [code]``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adminfiles import (
    MISSING_KEY,
    OUT_OF_RANGE,
    WRONG_TYPE,
    Problem,
    read_yaml,
    unknown_key,
    wrong_type,
)
from homeline.paths import DIALPLANS_DIR

__all__ = ["Node", "NodesError", "load_nodes", "nodes_from_dict", "DEFAULT_NODES_FILE",
           "TRUNK_SECRET"]

DEFAULT_NODES_FILE = DIALPLANS_DIR / "nodes.yaml"
TRUNK_SECRET = "node:trunk"  # secrets.json: the trunks' shared secret (`homeline secrets`)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # it names the trunk endpoint
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$")
_KEYS = ("sip",)
_MAX_BYTES = 64 * 1024
_MAX_NODES = 64


class NodesError(ValueError):
    """``nodes.yaml`` is invalid; carries every problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    host: str
    port: int


def _locate(path: tuple[str | int, ...]) -> tuple[str, str]:
    if len(path) >= 2 and path[0] == "nodes":
        return f"node/{path[1]}", ".".join(str(p) for p in path[2:]) or "-"
    return "-", ".".join(str(p) for p in path) or "-"


def _address(file: str, node: str, value: Any) -> tuple[Node | None, list[Problem]]:
    if not isinstance(value, str):
        return None, [wrong_type(file, f"node/{node}", "sip", "host:port text", value)]
    host, sep, port = value.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit():
        return None, [Problem(file, f"node/{node}", "sip", f"{value!r} is not host:port",
                              WRONG_TYPE)]
    if not 1 <= int(port) <= 65535:
        return None, [Problem(file, f"node/{node}", "sip", f"port {port} is not 1-65535",
                              OUT_OF_RANGE)]
    return Node(node, host.strip("[]"), int(port)), []


def nodes_from_dict(data: Any, file: str = "nodes.yaml") -> tuple[Node, ...]:
    """The nodes of a parsed ``nodes.yaml``; `NodesError` with every problem."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise NodesError([wrong_type(file, "-", "-", "a mapping with 'nodes'", data)])
    for key in data:
        if key != "nodes":
            problems.append(unknown_key(file, "-", str(key), ("nodes",)))
    listed = data.get("nodes")
    if listed is None:
        raise NodesError([*problems, Problem(file, "-", "nodes", "no 'nodes' mapping",
                                             MISSING_KEY)])
    if not isinstance(listed, dict):
        raise NodesError([*problems, wrong_type(file, "-", "nodes", "a mapping", listed)])
    if not 2 <= len(listed) <= _MAX_NODES:
        problems.append(Problem(file, "-", "nodes", f"{len(listed)} node(s): list 2 to "
                                f"{_MAX_NODES} (one node needs no file)", OUT_OF_RANGE))
    out: list[Node] = []
    seen: dict[tuple[str, int], str] = {}
    for name, spec in listed.items():
        where = f"node/{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(Problem(file, where, "-", "a node name is 1-40 of a-z, 0-9, '_' "
                                    "and '-' (it names the trunk endpoint)", WRONG_TYPE))
            continue
        if not isinstance(spec, dict):
            problems.append(wrong_type(file, where, "-", "a mapping with 'sip'", spec))
            continue
        for key in spec:
            if key not in _KEYS:
                problems.append(unknown_key(file, where, str(key), _KEYS))
        if "sip" not in spec:
            problems.append(Problem(file, where, "sip", "no 'sip' (host:port)", MISSING_KEY))
            continue
        node, found = _address(file, name, spec["sip"])
        problems += found
        if node is None:
            continue
        if (node.host, node.port) in seen:
            problems.append(Problem(file, where, "sip", f"the same address as node "
                                    f"{seen[(node.host, node.port)]}", OUT_OF_RANGE))
        seen[(node.host, node.port)] = name
        out.append(node)
    if problems:
        raise NodesError(problems)
    return tuple(sorted(out, key=lambda n: n.name))


def load_nodes(path: str | Path | None = None) -> tuple[Node, ...]:
    """The nodes of ``path`` (default ``dialplans/nodes.yaml``; none when that default
    file does not exist: one node)."""
    file = Path(path) if path is not None else DEFAULT_NODES_FILE
    if path is None and not file.exists():
        return ()
    data, problems = read_yaml(file, what="nodes file", max_bytes=_MAX_BYTES, locate=_locate)
    if data is None or problems:
        extra: list[Problem] = []
        if data is not None:
            try:
                nodes_from_dict(data, str(file))
            except NodesError as err:
                extra = list(err.problems)
        raise NodesError([*problems, *extra])
    return nodes_from_dict(data, str(file))
