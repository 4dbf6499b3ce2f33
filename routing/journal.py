"""Router journals: input events (and the decisions made) as JSON lines.

Line 1 is a header carrying the directory the router was built from, so a
journal replays on its own: ``{"journal": "homeline-router", "version": 1,
"start": ISO, "directory": {...}}``. Every further line is ``{"at": ISO,
"event": {"type": ..., ...}, "decisions": [...]}``, or, where an engine started
again and took over a stored router state, ``{"at": ISO, "restore": {"directory":
{...}, "snapshot": {...}, "bridged": [...]}, "decisions": [...]}``: from there the
router is `Router.restore` of that snapshot, as the engine's was. `replay` feeds
the events to a fresh `Router` and compares its decisions with the recorded ones.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from routing import events as ev_mod
from routing.directory import Directory
from routing.errors import RoutingError
from routing.events import Decision, Event
from routing.router import Router
from routing.snapshot import RouterSnapshot
from routing.windows import HoursChange, HourWindow

__all__ = ["encode", "decode_event", "decode_decision", "Recorder", "replay", "ReplayResult",
           "JOURNAL_FORMAT"]

JOURNAL_FORMAT = "homeline-router"
_EVENT_TYPES = {c.__name__: c for c in (
    ev_mod.AgentRegistered, ev_mod.AgentUnregistered, ev_mod.AgentMadeAvailable,
    ev_mod.AgentWentOnBreak, ev_mod.AgentEndedWrapUp, ev_mod.AgentHoursChanged,
    ev_mod.CallArrived, ev_mod.CallbackAccepted, ev_mod.CallbackNotAnswered,
    ev_mod.OfferAnswered, ev_mod.OfferNotAnswered, ev_mod.CallEnded,
    ev_mod.CallerAbandoned, ev_mod.TimerFired)}


def _plain(v: Any) -> Any:
    if isinstance(v, HourWindow | HoursChange):
        return str(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return encode(v)
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return v
    return v


def encode(obj: Any) -> dict[str, Any]:
    """An event or decision as a JSON-ready dict with its ``type``."""
    out: dict[str, Any] = {"type": type(obj).__name__}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name == "channel" and v == "voice" and f.default == "voice":
            continue  # voice is the default: voice lines read as they did before channels
        out[f.name] = _plain(v)
    return out


def decode_event(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    cls = _EVENT_TYPES.get(str(kind))
    if cls is None:
        raise RoutingError(f"journal: unknown event type {kind!r}; known: "
                           f"{', '.join(sorted(_EVENT_TYPES))}")
    kw = {k: v for k, v in data.items() if k != "type"}
    if cls is ev_mod.AgentHoursChanged:
        kw["windows"] = tuple(HourWindow.parse(s) for s in kw.get("windows", ()))
        chs = []
        for s in kw.get("changes", ()):
            kind_s, _, rest = s.partition(" ")
            chs.append(HoursChange.parse(rest, kind_s))
        kw["changes"] = tuple(chs)
    if cls is ev_mod.CallArrived:
        kw["required_skills"] = tuple((str(a), int(b)) for a, b in kw.get("required_skills", ()))
        kw["skills"] = tuple(str(a) for a in kw.get("skills", ()))
        kw["data"] = tuple((str(a), str(b)) for a, b in kw.get("data", ()))
    try:
        return cls(**kw)
    except TypeError as exc:
        raise RoutingError(f"journal: bad {kind} event {data!r}: {exc}") from exc


_DECISION_TYPES: dict[str, type] = {c.__name__: c for c in (
    ev_mod.OfferCall, ev_mod.CancelOffer, ev_mod.CallQueued, ev_mod.OfferCallback,
    ev_mod.AgentPutOnBreak, ev_mod.AgentStateChanged, ev_mod.WakeAt, ev_mod.CallOverflowed,
    ev_mod.CallRejected, ev_mod.EventIgnored, ev_mod.OfferChat, ev_mod.ReplyWithWait,
    ev_mod.OfferChatCallback)}
_TIME_FIELDS = frozenset({"at", "window_closes_at"})


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _reason(data: dict[str, Any]) -> ev_mod.Reason:
    kw = {k: _tuples(v) for k, v in data.items() if k != "type"}
    if kw.get("window_closes_at"):
        kw["window_closes_at"] = datetime.fromisoformat(kw["window_closes_at"])
    return ev_mod.Reason(**kw)


def decode_decision(data: dict[str, Any]) -> Decision:
    """A decision `encode` wrote (a leader's decision for another node, store/nodes.py)."""
    kind = str(data.get("type"))
    cls = _DECISION_TYPES.get(kind)
    if cls is None:
        raise RoutingError(f"decision: unknown type {kind!r}; known: "
                           f"{', '.join(sorted(_DECISION_TYPES))}")
    kw: dict[str, Any] = {}
    for k, v in data.items():
        if k == "type":
            continue
        if k == "reason" and isinstance(v, dict):
            kw[k] = _reason(v)
        elif k in _TIME_FIELDS and isinstance(v, str):
            kw[k] = datetime.fromisoformat(v)
        else:
            kw[k] = _tuples(v)
    try:
        decision: Decision = cls(**kw)
    except (TypeError, ValueError) as exc:
        raise RoutingError(f"decision: bad {kind} {data!r}: {exc}") from exc
    return decision


def _in_force(router: Router) -> Directory:
    # the policy in force may have been given to the router apart from the directory
    d = router.directory
    return Directory(d.agents, d.queues, router.policy, d.source)


class Recorder:
    """Wraps a router: ``handle`` passes through and appends a journal line to ``fp``."""

    def __init__(self, router: Router, fp: IO[str], *, start: datetime | None = None,
                 header: bool = True) -> None:
        """``header`` False: ``fp`` continues a journal that has one (an engine that
        started again appends; its first line will be `restored`)."""
        self.router = router
        self.fp = fp
        if header:
            head = {"journal": JOURNAL_FORMAT, "version": 1,
                    "start": start.isoformat() if start else None,
                    "directory": _in_force(router).to_dict()}
            fp.write(json.dumps(head, sort_keys=True) + "\n")
            fp.flush()

    def restored(self, router: Router, snapshot: RouterSnapshot, bridged: Iterable[str],
                 now: datetime, decisions: Sequence[Decision]) -> None:
        """From now on ``router``: `Router.restore` of ``snapshot`` at ``now`` (with the
        calls Asterisk still had bridged) gave it, and ``decisions``."""
        self.router = router
        line = {"at": now.isoformat(),
                "restore": {"directory": _in_force(router).to_dict(),
                            "snapshot": snapshot.to_dict(), "bridged": sorted(bridged)},
                "decisions": [encode(d) for d in decisions]}
        self.fp.write(json.dumps(line, sort_keys=True) + "\n")
        self.fp.flush()

    def handle(self, event: Event, now: datetime) -> list[Decision]:
        decisions = self.router.handle(event, now)
        line = {"at": now.isoformat(), "event": encode(event),
                "decisions": [encode(d) for d in decisions]}
        self.fp.write(json.dumps(line, sort_keys=True) + "\n")
        self.fp.flush()
        return decisions


@dataclass(frozen=True, slots=True)
class ReplayResult:
    events: int
    decisions: int
    mismatches: tuple[str, ...]
    produced: tuple[tuple[str, tuple[dict[str, Any], ...]], ...]  # (at, decisions) per event

    @property
    def identical(self) -> bool:
        return not self.mismatches


def replay(lines: Iterable[str], source: str = "<journal>") -> ReplayResult:
    """Re-run a journal; every recorded decision list must come out the same."""
    it = iter(lines)
    try:
        header = json.loads(next(it))
    except (StopIteration, json.JSONDecodeError) as exc:
        raise RoutingError(f"{source}:1: not a router journal header: {exc}") from exc
    if header.get("journal") != JOURNAL_FORMAT:
        raise RoutingError(f"{source}:1: not a {JOURNAL_FORMAT} journal")
    directory = Directory.from_dict(header["directory"], source=f"{source}:header",
                                    check_budget=False)
    start = datetime.fromisoformat(header["start"]) if header.get("start") else None
    router = Router(directory, now=start)
    mismatches: list[str] = []
    produced: list[tuple[str, tuple[dict[str, Any], ...]]] = []
    n_events = n_dec = 0
    for lineno, raw in enumerate(it, start=2):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            at = datetime.fromisoformat(rec["at"])
            if "restore" in rec:
                r = rec["restore"]
                restore = (Directory.from_dict(r["directory"], source=f"{source}:{lineno}",
                                               check_budget=False),
                           RouterSnapshot.from_dict(r["snapshot"]), tuple(r["bridged"]))
            else:
                restore = None
                event = decode_event(rec["event"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RoutingError(f"{source}:{lineno}: bad journal line: {exc}") from exc
        if restore is not None:
            router, made = Router.restore(restore[0], restore[1], now=at, bridged=restore[2])
            got = tuple(encode(d) for d in made)
            what = "restore"
        else:
            got = tuple(encode(d) for d in router.handle(event, at))
            n_events += 1
            what = str(rec["event"].get("type"))
        n_dec += len(got)
        produced.append((rec["at"], got))
        want = rec.get("decisions")
        if want is not None and _canon(want) != _canon(list(got)):
            mismatches.append(f"{source}:{lineno}: {what} at {rec['at']}: "
                              f"recorded {len(want)} decision(s), replay gave {len(got)}"
                              + _first_diff(want, list(got)))
    return ReplayResult(n_events, n_dec, tuple(mismatches), tuple(produced))


def _canon(x: Sequence[Any]) -> str:
    return json.dumps(x, sort_keys=True)


def _first_diff(a: Sequence[Any], b: Sequence[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if _canon([x]) != _canon([y]):
            return f"; first difference at #{i}: {json.dumps(x)[:160]} != {json.dumps(y)[:160]}"
    return ""
