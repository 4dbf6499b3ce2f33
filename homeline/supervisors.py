"""Supervisors: who may listen to, whisper to or barge in on agents' calls, and from
which phone (``dialplans/supervisors.yaml``).

A supervisor's id is three things at once: their PJSIP endpoint (rendered like an
agent's, with the same phone kinds ``udp``/``tls``/``webrtc``), the name of their
web user (``homeline user add ID --role supervisor``) and the one endpoint the
engine may ring for their listen/whisper/barge (voice/supervise.py checks it).

```yaml
supervisors:
  sam:
    name: Sam Lead
    phone: udp      # udp | tls | webrtc (routing.model.PHONE_KINDS)
```

The file is admin-edited, hence untrusted: read through `adminfiles.read_yaml`,
every problem reported at once as ``file:node:key: message [code]``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adminfiles import (
    BAD_CHOICE,
    MISSING_KEY,
    WRONG_TYPE,
    Problem,
    read_yaml,
    unknown_key,
    wrong_type,
)
from homeline.paths import DIALPLANS_DIR
from routing.model import PHONE_KINDS

__all__ = ["Supervisor", "SupervisorsError", "load_supervisors", "supervisors_from_dict",
           "DEFAULT_SUPERVISORS_FILE"]

DEFAULT_SUPERVISORS_FILE = DIALPLANS_DIR / "supervisors.yaml"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # as an agent id: it is an endpoint name
_KEYS = ("name", "phone")
_MAX_BYTES = 64 * 1024


class SupervisorsError(ValueError):
    """``supervisors.yaml`` is invalid; carries every problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Supervisor:
    id: str  # PJSIP endpoint and web user name
    name: str
    phone: str = "udp"


def _locate(path: tuple[str | int, ...]) -> tuple[str, str]:
    if len(path) >= 2 and path[0] == "supervisors":
        return str(path[1]), ".".join(str(p) for p in path[2:]) or "-"
    return "-", ".".join(str(p) for p in path) or "-"


def supervisors_from_dict(data: Any, source: str = "<dict>",
                          agent_ids: Iterable[str] = ()) -> tuple[Supervisor, ...]:
    """Validate the document; `SupervisorsError` lists every problem.

    ``agent_ids``: a supervisor's endpoint must not be an agent's."""
    problems: list[Problem] = []
    agents = set(agent_ids)
    if not isinstance(data, Mapping):
        raise SupervisorsError([wrong_type(source, "-", "-", "a mapping with supervisors",
                                           data)])
    for key in data:
        if key != "supervisors":
            problems.append(unknown_key(source, "-", str(key), ("supervisors",)))
    body = data.get("supervisors") or {}
    if not isinstance(body, Mapping):
        problems.append(wrong_type(source, "-", "supervisors",
                                   "a mapping of supervisor id to settings", body))
        body = {}
    out: list[Supervisor] = []
    for sid, spec in body.items():
        node = str(sid)
        if not isinstance(sid, str) or not _ID.match(sid) or sid.startswith("homeline"):
            problems.append(Problem(source, node, "-", "id must be 1-40 of a-z, 0-9, '_' and "
                                    "'-', not starting with 'homeline' (it is the PJSIP "
                                    "endpoint and the web user name)", "name"))
            continue
        if sid in agents:
            problems.append(Problem(source, node, "-", f"{sid!r} is also an agent id; a "
                                    "supervisor needs an endpoint of their own",
                                    "duplicate-endpoint"))
            continue
        if not isinstance(spec, Mapping):
            problems.append(wrong_type(source, node, "-", "a mapping (name, phone)", spec))
            continue
        for key in spec:
            if key not in _KEYS:
                problems.append(unknown_key(source, node, str(key), _KEYS))
        name = spec.get("name")
        if name is None:
            problems.append(Problem(source, node, "name", "a supervisor needs a name",
                                    MISSING_KEY))
            continue
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            problems.append(Problem(source, node, "name", "must be text of 1-80 characters",
                                    WRONG_TYPE))
            continue
        phone = spec.get("phone", "udp")
        if phone not in PHONE_KINDS:
            problems.append(Problem(source, node, "phone", f"{phone!r} is not one of "
                                    f"{', '.join(PHONE_KINDS)}", BAD_CHOICE))
            continue
        out.append(Supervisor(sid, name.strip(), str(phone)))
    if problems:
        raise SupervisorsError(problems)
    return tuple(sorted(out, key=lambda s: s.id))


def load_supervisors(path: str | Path | None = None,
                     agent_ids: Iterable[str] = ()) -> tuple[Supervisor, ...]:
    """The supervisors of ``path`` (default ``dialplans/supervisors.yaml``; none when
    that default file does not exist)."""
    file = Path(path) if path is not None else DEFAULT_SUPERVISORS_FILE
    if path is None and not file.exists():
        return ()
    data, problems = read_yaml(file, what="supervisors file", max_bytes=_MAX_BYTES,
                               locate=_locate)
    if data is None or problems:
        extra: list[Problem] = []
        if data is not None:
            try:
                supervisors_from_dict(data, str(file), agent_ids)
            except SupervisorsError as err:
                extra = list(err.problems)
        raise SupervisorsError([*problems, *extra])
    return supervisors_from_dict(data, str(file), agent_ids)
