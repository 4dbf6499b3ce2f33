"""Listen, whisper, barge: a supervisor's request carried out over AMI.

A supervisor asks on the desk (the store's ``supervise_requests`` feed, read by the
engine); this executor checks the request against what is live, then sends one
AMI Originate that rings the supervisor's own endpoint (``PJSIP/<supervisor>``)
into `SUPERVISE_CONTEXT`; when they answer, the dialplan runs ``ChanSpy`` on the
agent's leg of the call with the mode's options (extensions.conf.tmpl
``[homeline-supervise]``; ChanSpy's options from apps/app_chanspy.c):

- ``listen``: ``ChanSpy(<agent leg>,qEu)``: the supervisor hears both sides;
- ``whisper``: ``qEuw``: also talks to the agent's channel only (the caller does not hear);
- ``barge``: ``qEuB``: talks to both channels of the call.

The engine's AMI user holds the ``originate`` class (for callbacks too); every
Originate of this module passes `check_spy_originate` before it is sent: only a
known supervisor's own PJSIP endpoint, only into `SUPERVISE_CONTEXT`, only one of
the three extensions, no Application/Data, and the spied channel an agent's
``PJSIP/<agent>-<hex>`` leg, nothing that could add a ChanSpy argument.

Every outcome is recorded on the call (call event ``supervisor``: who, when,
which mode, and the result: ``ringing-supervisor`` when sent, then ``joined`` or
``not-reached`` from Asterisk's OriginateResponse, or ``refused``/``failed``).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, assert_never

from voice.ami import AmiReply

__all__ = ["SUPERVISE_CONTEXT", "SpyMode", "SpyAnswered", "SpyDone", "SpyRefused",
           "SpyStarted", "SuperviseExecutor", "check_spy_originate", "CHANSPY_OPTIONS"]

log = logging.getLogger("homeline.voice.supervise")

SUPERVISE_CONTEXT = "homeline-supervise"
SpyMode = Literal["listen", "whisper", "barge"]
# what [homeline-supervise] runs per mode (kept here so tests and docs name one table)
CHANSPY_OPTIONS: Mapping[str, str] = {"listen": "qEu", "whisper": "qEuw", "barge": "qEuB"}
_ENDPOINT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LEG = re.compile(r"^PJSIP/([a-z0-9][a-z0-9_-]{0,39})-[0-9a-f]{8}$")
_CALL_ID = re.compile(r"^[0-9]{1,20}\.[0-9]{1,10}$")  # Asterisk's Uniqueid: epoch.seq
RING_S = 30  # how long the supervisor's phone rings before the Originate gives up
_FIELDS = frozenset({"Channel", "Context", "Exten", "Priority", "Async", "Timeout", "CallerID",
                     "Variable", "ChannelId"})


def check_spy_originate(fields: Mapping[str, str], supervisors: Collection[str],
                        agents: Collection[str]) -> None:
    """The only Originate of this module; anything else raises ``ValueError``."""
    channel = fields.get("Channel", "")
    if not channel.startswith("PJSIP/") or channel[len("PJSIP/"):] not in supervisors:
        raise ValueError(f"Originate refused: channel {channel!r} is not a supervisor's "
                         f"own endpoint (PJSIP/<one of {', '.join(sorted(supervisors))}>)")
    if "Application" in fields or "Data" in fields:
        raise ValueError("Originate refused: no Application/Data, only the spy context")
    extra = set(fields) - _FIELDS
    if extra:
        raise ValueError(f"Originate refused: fields {sorted(extra)} are not the spy's "
                         f"(allowed: {', '.join(sorted(_FIELDS))})")
    if fields.get("Context") != SUPERVISE_CONTEXT:
        raise ValueError(f"Originate refused: context {fields.get('Context')!r} is not "
                         f"{SUPERVISE_CONTEXT}")
    if fields.get("Exten") not in CHANSPY_OPTIONS or fields.get("Priority") != "1":
        raise ValueError(f"Originate refused: extension {fields.get('Exten')!r} is not one "
                         f"of {', '.join(CHANSPY_OPTIONS)} at priority 1")
    variables = dict(v.split("=", 1) for v in fields.get("Variable", "").split(",") if "=" in v)
    leg = _LEG.match(variables.get("HOMELINE_SPY", ""))
    if leg is None or leg.group(1) not in agents:
        raise ValueError(f"Originate refused: spied channel {variables.get('HOMELINE_SPY')!r} "
                         "is not an agent's PJSIP/<agent>-<hex> leg")
    if set(variables) != {"HOMELINE_SPY", "HOMELINE_SUPERVISOR", "HOMELINE_CALL_ID"} \
            or variables["HOMELINE_SUPERVISOR"] != channel[len("PJSIP/"):] \
            or not _CALL_ID.match(variables["HOMELINE_CALL_ID"]):
        raise ValueError(f"Originate refused: variables {sorted(variables)} are not the "
                         "spy's own (HOMELINE_SPY, HOMELINE_SUPERVISOR, HOMELINE_CALL_ID)")


# -- what became of a request (recorded on the call) ------------------------------------
@dataclass(frozen=True, slots=True)
class SpyStarted:
    """Asterisk queued the Originate: the supervisor's phone rings."""

    supervisor: str
    agent_id: str
    call_id: str
    mode: SpyMode
    channel: str  # the agent's leg being spied on


@dataclass(frozen=True, slots=True)
class SpyRefused:
    """Not carried out; ``why`` says what was wrong (no such supervisor, call not live ...)."""

    supervisor: str
    agent_id: str
    call_id: str
    mode: str
    why: str


@dataclass(frozen=True, slots=True)
class SpyDone:
    """Asterisk's answer to the Originate (``ok`` False: it refused it)."""

    supervisor: str
    call_id: str
    mode: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class SpyAnswered:
    """Asterisk's OriginateResponse: the supervisor answered and joined (``ok``) or
    their phone was not reached or did not answer (``reason``: the AST_CONTROL code
    manager.c reports, e.g. 0 no such device, 5 busy, 8 congestion, 3 ringing too long)."""

    supervisor: str
    agent_id: str
    call_id: str
    mode: str
    ok: bool
    reason: str


SpyOutcome = SpyStarted | SpyRefused | SpyDone | SpyAnswered


class Sender(Protocol):
    def send(self, name: str, on_reply: Callable[[AmiReply], None] | None = None,
             **fields: str) -> None: ...


class Legs(Protocol):
    def agent_channel_of(self, call_id: str) -> tuple[str, str] | None: ...


class SuperviseExecutor:
    """Carries out supervise requests; call `carry_out` from the engine's router thread.

    ``record(call_id, at, agent_id, data)`` writes a ``supervisor`` call event;
    ``note(call_id, text)`` adds a line to the call's timeline. ``now`` is the
    engine's clock."""

    def __init__(self, ami: Sender, legs: Legs, *, supervisors: Collection[str],
                 agents: Collection[str],
                 record: Callable[[str, datetime, str | None, dict[str, Any]], None],
                 note: Callable[[str, str], None], now: Callable[[], datetime]) -> None:
        self._ami = ami
        self._legs = legs
        self._supervisors = frozenset(supervisors)
        self._agents = frozenset(agents)
        self._record = record
        self._note = note
        self._now = now
        self._count = 0
        # ChannelId of each Originate sent -> (supervisor, agent, call, mode), until
        # its OriginateResponse (manager.c fast_originate) says what became of it
        self._pending: dict[str, tuple[str, str, str, str]] = {}

    def carry_out(self, supervisor: str, agent_id: str, call_id: str, mode: str) -> SpyOutcome:
        outcome = self._start(supervisor, agent_id, call_id, mode)
        self._report(outcome)
        return outcome

    def _start(self, supervisor: str, agent_id: str, call_id: str, mode: str) -> SpyOutcome:
        if supervisor not in self._supervisors:
            return SpyRefused(supervisor, agent_id, call_id, mode,
                              f"{supervisor!r} has no supervisor endpoint (supervisors.yaml)")
        spy_mode: SpyMode
        match mode:
            case "listen" | "whisper" | "barge":
                spy_mode = mode
            case _:
                return SpyRefused(supervisor, agent_id, call_id, mode,
                                  f"mode {mode!r} is not one of {', '.join(CHANSPY_OPTIONS)}")
        live = self._legs.agent_channel_of(call_id)
        if live is None:
            return SpyRefused(supervisor, agent_id, call_id, mode,
                              "the call is not connected to an agent now")
        if live[0] != agent_id:
            return SpyRefused(supervisor, agent_id, call_id, mode,
                              f"the call is with {live[0]}, not {agent_id}")
        self._count += 1
        channel_id = f"hlspy-{call_id}-{self._count}"
        fields = {
            "Channel": f"PJSIP/{supervisor}", "Context": SUPERVISE_CONTEXT,
            # the Uniqueid of the supervisor's channel: its OriginateResponse names it
            "ChannelId": channel_id,
            "Exten": spy_mode, "Priority": "1", "Async": "true",
            "Timeout": str(RING_S * 1000),
            "CallerID": f'"{spy_mode.capitalize()}: {agent_id}" <{spy_mode}>',
            # several variables comma-separated (manager.c astman_get_variables_order)
            "Variable": (f"HOMELINE_SPY={live[1]},HOMELINE_SUPERVISOR={supervisor},"
                         f"HOMELINE_CALL_ID={call_id}"),
        }
        try:
            check_spy_originate(fields, self._supervisors, self._agents)
        except ValueError as exc:
            return SpyRefused(supervisor, agent_id, call_id, mode, str(exc))

        def answered(reply: AmiReply) -> None:  # AMI reader thread: record only
            if not reply.ok:
                self._pending.pop(channel_id, None)
            self._report(SpyDone(supervisor, call_id, spy_mode, reply.ok, reply.message))

        self._pending[channel_id] = (supervisor, agent_id, call_id, spy_mode)
        self._ami.send("Originate", answered, **fields)
        return SpyStarted(supervisor, agent_id, call_id, spy_mode, live[1])

    def originate_response(self, fields: Mapping[str, str]) -> SpyOutcome | None:
        """An ``OriginateResponse`` AMI event (router thread): one of ours is answered
        or failed. Others (a callback's) are not this executor's: None."""
        pending = self._pending.pop(fields.get("Uniqueid", ""), None)
        if pending is None:
            return None
        supervisor, agent_id, call_id, mode = pending
        outcome = SpyAnswered(supervisor, agent_id, call_id, mode,
                              fields.get("Response") == "Success", fields.get("Reason", ""))
        self._report(outcome)
        return outcome

    def _report(self, outcome: SpyOutcome) -> None:
        now = self._now()
        match outcome:
            case SpyStarted():
                self._note(outcome.call_id, f"supervisor {outcome.supervisor}: "
                           f"{outcome.mode} ({outcome.agent_id}'s leg {outcome.channel})")
                self._record(outcome.call_id, now, outcome.agent_id,
                             {"action": outcome.mode, "by": outcome.supervisor,
                              "result": "ringing-supervisor"})
            case SpyRefused():
                log.warning("supervise %s by %s on %s refused: %s", outcome.mode,
                            outcome.supervisor, outcome.call_id, outcome.why)
                self._note(outcome.call_id, f"supervisor {outcome.supervisor}: {outcome.mode} "
                           f"refused: {outcome.why}")
                self._record(outcome.call_id, now, outcome.agent_id or None,
                             {"action": outcome.mode, "by": outcome.supervisor,
                              "result": "refused", "why": outcome.why})
            case SpyDone():
                if outcome.ok:
                    return  # "Originate successfully queued": SpyStarted said it
                log.warning("supervise %s by %s on %s: Asterisk said %s", outcome.mode,
                            outcome.supervisor, outcome.call_id, outcome.message)
                self._note(outcome.call_id, f"supervisor {outcome.supervisor}: {outcome.mode} "
                           f"failed: {outcome.message}")
                self._record(outcome.call_id, now, None,
                             {"action": outcome.mode, "by": outcome.supervisor,
                              "result": "failed", "why": outcome.message})
            case SpyAnswered():
                what = "joined" if outcome.ok else "not-reached"
                self._note(outcome.call_id, f"supervisor {outcome.supervisor}: {outcome.mode} "
                           + ("joined" if outcome.ok else
                              f"not reached (their phone did not answer, reason "
                              f"{outcome.reason})"))
                self._record(outcome.call_id, now, outcome.agent_id,
                             {"action": outcome.mode, "by": outcome.supervisor,
                              "result": what}
                             | ({} if outcome.ok else {"why": f"reason {outcome.reason}"}))
            case _:
                assert_never(outcome)
