"""Runs a compiled flow on one live call: engine commands -> AGI commands -> engine events.

Every value written into an AGI command is either a constant, a catalog prompt id,
a validated identifier, or digits: nothing the caller sent is pasted in unchecked
(see ``_arg``). Digits of a ``secure`` collect never reach a log, a VERBOSE line, a
channel variable or the loggable result; only the session keeps them in memory.

AGI commands used (Asterisk docs, "AGI Commands"): STREAM FILE (escape digits =
barge-in), SAY NUMBER / SAY DIGITS, WAIT FOR DIGIT (collect; GET DATA has one
timeout for first and later digits and cannot play several prompts, so collect is
STREAM FILE + WAIT FOR DIGIT), RECORD FILE, SET VARIABLE (``CHANNEL(language)`` and
results), GET VARIABLE, HANGUP; EXEC Answer, EXEC MSet, and EXEC Read + GET FULL
VARIABLE to answer with the call's first prompts (``_Call.answer_playing``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, assert_never, get_args

from ivr.commands import (
    CallerHungUp,
    CollectDigits,
    Command,
    DigitsEntered,
    Event,
    Hangup,
    InputTimedOut,
    Lookup,
    LookupCompleted,
    LookupFailed,
    Play,
    PromptItem,
    PromptRef,
    RecordAudio,
    RecordingFinished,
    ReturnToDialplan,
    Route,
    RouteAccepted,
    RouteRequest,
    SayNumber,
    SetLanguage,
    SetVariable,
    SpeechRecognized,
    SurveyAnswered,
    Transfer,
    Voicemail,
)
from ivr.engine import CallSession
from ivr.errors import AgiProtocolError, IvrError
from ivr.flow import Flow
from voice.fastagi import AgiChannel, AgiHangup

__all__ = ["RouteAck", "Recordings", "CallResult", "SurveyResult", "run_call", "run_survey",
           "http_lookup", "DTMF_KEYS"]

DTMF_KEYS = "0123456789*#"
_SAFE_ARG = re.compile(r"[A-Za-z0-9_.:+@/-]{0,128}")
_LANG = re.compile(r"[a-z]{2}")
_VAR_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}|CHANNEL\(language\)")
_DIGIT_CHARS = set("0123456789*#ABCD")
_LOG = logging.getLogger("homeline.ivr.call")


def _arg(value: object) -> str:
    """A value allowed inside an AGI command line, quoted; anything else is refused."""
    text = str(value)
    if not _SAFE_ARG.fullmatch(text):
        raise AgiProtocolError(f"refusing to send unsafe AGI argument ({len(text)} chars)")
    return f'"{text}"'


def _name(name: str) -> str:
    if not _VAR_NAME.fullmatch(name):
        raise AgiProtocolError(f"refusing to use channel variable name {name[:40]!r}")
    return f'"{name}"'


@dataclass(frozen=True, slots=True)
class RouteAck:
    """The router's answer to a route request (for the optional announcement).

    ``hold_s``: how long the caller may wait on hold with no word from the
    engine before the dialplan takes its fallback path (0: the dialplan's default).
    ``record``: the queue records calls to agents (``record: true`` in agents.yaml):
    the dialplan tells the caller, then MixMonitor records the conversation.
    """

    position: int = 0
    expected_wait_s: int = 0
    hold_s: int = 0
    record: bool = False


@dataclass(frozen=True, slots=True)
class Recordings:
    """Where recordings go: ``host_dir`` on this host, seen by Asterisk as ``to_chroot(p)``."""

    host_dir: Path
    to_chroot: Callable[[str], str] = str
    to_host: Callable[[str], str] = str


IvrOutcome = Literal["routed", "callback", "transfer", "voicemail", "hangup", "caller-hangup",
                     "error"]
"""How a call left the IVR; the dialplan branches on ``HOMELINE_OUTCOME`` for each."""
IVR_OUTCOMES: frozenset[str] = frozenset(get_args(IvrOutcome))


@dataclass(frozen=True, slots=True)
class CallResult:
    call_id: str
    outcome: str
    flow: str
    flow_version: str
    caller: str
    language: str
    intent: str | None
    inputs: tuple[str, ...]
    path: tuple[str, ...]
    route: RouteRequest | None = None
    ack: RouteAck | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def digits(self) -> str:
        """The keys the caller pressed, per input, comma-separated (secure ones masked)."""
        values = [i.split(":", 1)[1] for i in self.inputs if ":" in i]
        keyed = [v for v in values
                 if v not in ("timeout", "silence", "recorded", "record-failed")
                 and not v.startswith("said:")]
        return ",".join(keyed)

    def loggable(self) -> dict[str, Any]:
        """JSON-ready, secure values already masked."""
        return {
            "call_id": self.call_id, "outcome": self.outcome, "flow": self.flow,
            "flow_version": self.flow_version, "caller": self.caller,
            "language": self.language, "intent": self.intent, "inputs": list(self.inputs),
            "digits": self.digits, "path": list(self.path),
            "route": None if self.route is None else {
                "queue": self.route.queue, "skills": list(self.route.skills),
                "priority": self.route.priority, "intent": self.route.intent,
                "language": self.route.language, "data": dict(self.route.data),
                "callback": self.route.callback},
            "ack": None if self.ack is None else {"position": self.ack.position,
                                                  "expected_wait_s": self.ack.expected_wait_s},
            "variables": {k: v for k, v in self.variables.items()},
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class SurveyResult:
    call_id: str
    agent: str
    intent: str
    score: int | None
    comment_path: str
    completed: bool
    flow_version: str = ""

    def loggable(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "agent": self.agent, "intent": self.intent,
                "score": self.score, "comment_path": self.comment_path,
                "completed": self.completed, "flow_version": self.flow_version}


def http_lookup(url: str, timeout_s: float) -> Mapping[str, str]:
    """GET ``url`` expecting a flat JSON object; raises OSError/ValueError on failure."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - admin URL
        body = resp.read(64 * 1024)
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("lookup answer is not a JSON object")
    return {str(k): str(v) for k, v in data.items() if isinstance(v, (str, int, float, bool))}


class _Call:
    """The AGI side of one call."""

    def __init__(self, agi: AgiChannel, session: CallSession, recordings: Recordings | None,
                 log: logging.Logger, recognizer: Any, lookup: Callable[[str, float],
                                                                       Mapping[str, str]]):
        self.agi, self.session, self.recordings = agi, session, recordings
        self.log, self.recognizer, self.lookup = log, recognizer, lookup
        self.pending = ""
        self.inputs: list[str] = []
        self.records = 0
        self.survey: SurveyAnswered | None = None
        self.ack: RouteAck | None = None
        self.answered = False
        # the pending key was read by Asterisk's Read() (answer_playing): it passed
        # through a channel variable, so it may never start a secure entry
        self.pending_via_read = False

    # -- primitives ---------------------------------------------------------

    async def stream(self, item: PromptItem, escape: str) -> str:
        """Play one item; returns the escape digit pressed or ''."""
        esc = f'"{escape}"'
        if isinstance(item, PromptRef):
            reply = await self.agi.command("STREAM FILE", _arg(f"homeline/{item.prompt_id}"), esc)
        elif isinstance(item, SayNumber):
            reply = await self.agi.command("SAY NUMBER", _arg(_digits_only(item.value)), esc)
        else:
            reply = await self.agi.command("SAY DIGITS", _arg(_digits_only(item.value)), esc)
        if reply.result == "-1":
            name = getattr(item, "prompt_id", "say")
            # STREAM FILE answers result=-1 in two cases (res_agi.c handle_streamfile):
            # the file could not be opened (endpos=0; Asterisk logs why), or
            # ast_waitstream_full() returned -1 because the channel hung up while the
            # prompt played, with endpos = how far it got. Asterisk 22.10, the caller's
            # BYE 5.7 s into main-menu: "200 result=-1 endpos=45600". The hang-up is
            # the caller's, not a missing prompt: it ends the call as a hang-up.
            if reply.extras.get("endpos", "0") not in ("", "0"):
                raise AgiHangup(f"caller hung up during prompt {name}")
            self.log.warning("call %s: prompt %s could not be played", self.session.call_id,
                             name)
            return ""
        return _dtmf(reply.result)

    async def play(self, items: tuple[PromptItem, ...], barge: bool) -> str:
        if not self.answered:  # only when run_call chose to answer with these prompts
            return await self.answer_playing(items)
        for item in items:
            d = await self.stream(item, DTMF_KEYS if barge else "")
            if d:
                return d
        return ""

    async def answer(self) -> None:
        """Answer the call from inside the IVR, right before its first prompt.

        res_agi reads and drops the channel's frames while it waits for the next
        command ("Idle the channel until we get a command", run_agi), so a key
        pressed between the answer and the first STREAM FILE would be lost. With
        the dialplan's Answer() that gap spanned the AGI connect and the
        environment; answered here, it is one command round trip. Answer's ``i``
        option answers without first waiting up to 500 ms for the caller's media
        (Answer() documentation; DTMF read during that wait would be handed to
        the idle loop above). On a channel that is already up it does nothing.
        """
        reply = await self.agi.command("EXEC", "Answer", '",i"')
        self.answered = True
        if reply.result == "-1":
            raise AgiHangup("Answer failed (channel gone)")

    async def answer_playing(self, items: tuple[PromptItem, ...]) -> str:
        """Answer and play the call's first prompts in one Asterisk operation;
        returns the key that stopped them, or ''.

        With Answer and the first STREAM FILE as two AGI commands, a key the caller
        presses between them is lost (res_agi reads and frees the channel's frames
        while it waits for the next command), and on a busy machine that gap passed
        the half second callers take to press their first key. Read() answers and
        plays in the channel's own thread (app_read.c: ast_answer, then
        ast_app_getdata_terminator, which stops the prompts at a key); while
        ast_answer waits for the caller's first media frame it queues every frame
        it read, keys included, back onto the channel (channel.c __ast_answer), so
        no key is lost. Options: one digit, ``t`` with no argument (no terminator:
        '#' is a key like any other), one attempt, and a 1 ms wait after the
        prompts (the flow's next node does its own waiting). READSTATUS says
        whether it played (ERROR: a prompt could not be played) or the caller left.
        Never used for a ``secure`` entry (see collect): the key passes through the
        channel variable HOMELINE_FIRST_KEY."""
        files = "&".join(f"homeline/{_prompt_id(i)}" for i in items)
        reply = await self.agi.command("EXEC", "Read", f'"HOMELINE_FIRST_KEY,{files},1,t,1,0.001"')
        self.answered = True
        if reply.result == "-1":
            raise AgiHangup("Read failed (channel gone)")
        got = await self.agi.command("GET FULL VARIABLE", '"${HOMELINE_FIRST_KEY},${READSTATUS}"')
        key, _, status = got.data.partition(",")
        if status == "HANGUP":
            raise AgiHangup("caller hung up during the first prompt")
        if status == "ERROR":
            self.log.warning("call %s: prompt %s could not be played", self.session.call_id,
                             "&".join(_prompt_id(i) for i in items))
        if len(key) != 1 or key not in _DIGIT_CHARS:
            return ""
        self.pending_via_read = True
        return key

    async def wait_digit(self, timeout_s: float) -> str:
        reply = await self.agi.command("WAIT FOR DIGIT", int(timeout_s * 1000))
        if reply.result == "-1":
            raise AgiHangup("WAIT FOR DIGIT failed (channel gone)")
        return _dtmf(reply.result)

    async def set_var(self, name: str, value: str) -> None:
        await self.agi.command("SET VARIABLE", _name(name), _arg(value))

    async def set_vars(self, values: Mapping[str, str]) -> None:
        """Several channel variables in one AGI round trip: ``EXEC MSet(a=1,b=2)``
        (Asterisk's MSet application). Names and values pass the same checks as
        SET VARIABLE, and neither may hold the ',' or '=' MSet splits on."""
        pairs = []
        for name, value in values.items():
            _name(name)
            _arg(value)
            if "," in value or "=" in value:
                raise AgiProtocolError(f"refusing to MSet a value with ',' or '=' ({name})")
            pairs.append(f"{name}={value}")
        reply = await self.agi.command("EXEC", "MSet", f'"{",".join(pairs)}"')
        if reply.result == "-2":  # EXEC answers -2 when the application does not exist
            for name, value in values.items():
                await self.set_var(name, value)

    # -- commands -----------------------------------------------------------

    async def collect(self, cmd: CollectDigits) -> Event:
        digits, self.pending = (self.pending if cmd.barge_in else ""), ""
        if cmd.secure and self.pending_via_read:
            digits = ""  # a key typed ahead through Read() never starts a secure entry
        self.pending_via_read = False
        if not digits:
            digits = await self.play(cmd.prompts, cmd.barge_in)
        if not digits:
            digits = await self.wait_digit(cmd.first_digit_timeout_s)
        if not digits:
            self.inputs.append(f"{cmd.node}:timeout")
            return InputTimedOut()
        while (len(digits) < cmd.max_digits
               and not (cmd.terminator and digits.endswith(cmd.terminator))):
            d = await self.wait_digit(cmd.inter_digit_timeout_s or cmd.first_digit_timeout_s)
            if not d:
                break
            digits += d
        if cmd.terminator and digits.endswith(cmd.terminator):
            digits = digits[: -len(cmd.terminator)]
        shown = f"[secure: {len(digits)} digits]" if cmd.secure else digits
        self.inputs.append(f"{cmd.node}:{shown}")
        return DigitsEntered(digits)

    async def record(self, cmd: RecordAudio) -> Event:
        await self.play(cmd.prompts, False)
        if self.recordings is None:
            self.log.error("call %s: no recordings directory configured", self.session.call_id)
            return InputTimedOut()
        self.records += 1
        self.recordings.host_dir.mkdir(parents=True, exist_ok=True)
        base = self.recordings.host_dir / f"{_safe(self.session.call_id)}-{cmd.node}-{self.records}"
        for_asterisk = self.recordings.to_chroot(str(base))
        # RECORD FILE <file> <format> <escape digits> <timeout ms> [offset] [BEEP] [s=<sec>]
        args: list[str | int] = [_arg(for_asterisk), "wav", '"#"', int(cmd.max_seconds * 1000)]
        if cmd.beep:
            args += [0, "BEEP"]
        args.append(f"s={max(1, round(cmd.silence_seconds))}")
        reply = await self.agi.command("RECORD FILE", *args)
        if reply.result == "-1":
            # res_agi answers -1 when the file cannot be written (a hang-up comes as
            # HANGUP/511 instead): treat it as nothing said, the flow reprompts/falls back.
            self.log.warning("call %s: RECORD FILE at node %s failed (is %s writable by "
                             "Asterisk?)", self.session.call_id, cmd.node, for_asterisk)
            self.inputs.append(f"{cmd.node}:record-failed")
            return InputTimedOut()
        wav = Path(f"{base}.wav")
        if not wav.exists() or wav.stat().st_size <= 44:
            self.inputs.append(f"{cmd.node}:silence")
            return InputTimedOut()
        if cmd.purpose == "comment":
            self.inputs.append(f"{cmd.node}:recorded")
            return RecordingFinished(str(wav), _duration(wav))
        # pocketsphinx decodes in C for a while: off the event loop
        result: SpeechRecognized = await asyncio.to_thread(self.recognizer.recognize, wav)
        self.inputs.append(f"{cmd.node}:said:{result.intent or '?'}:{result.confidence:.2f}")
        return result

    async def do_lookup(self, cmd: Lookup) -> Event:
        try:
            # a blocking HTTP request: on a worker thread, never on the event loop
            found = await asyncio.to_thread(self.lookup, cmd.url, cmd.timeout_s)
            return LookupCompleted(dict(found))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            # The URL may carry secure digits: name the node, never the URL.
            self.log.info("call %s: lookup at node %s failed (%s)", self.session.call_id,
                          cmd.node, exc.__class__.__name__)
            return LookupFailed(exc.__class__.__name__)


def _dtmf(result: str) -> str:
    """``result=<ascii code>`` of a DTMF key, or '' for 0 (no key)."""
    if not result.isdigit() or result == "0":
        return ""
    ch = chr(int(result)) if int(result) < 256 else ""
    if ch not in _DIGIT_CHARS:
        raise AgiProtocolError(f"AGI result {result!r} is not a DTMF key")
    return ch


def _opens_with_prompts(commands: list[Command]) -> bool:
    """Does the call start with prompts a key may stop (a barge-in Play, or a collect
    that is not ``secure``), catalog prompts only? Then Read() answers with them."""
    first = commands[0] if commands else None
    match first:
        case Play():
            items, barge = first.items, first.barge_in
        case CollectDigits() if not first.secure:
            items, barge = first.prompts, first.barge_in
        case _:
            return False
    return barge and bool(items) and all(isinstance(i, PromptRef) for i in items)


def _prompt_id(item: PromptItem) -> str:
    if not isinstance(item, PromptRef) or not _SAFE_ARG.fullmatch(item.prompt_id) \
            or "," in item.prompt_id or "&" in item.prompt_id:
        raise AgiProtocolError("refusing to pass an unsafe prompt name to Read()")
    return item.prompt_id


def _digits_only(value: str) -> str:
    if not value.isdigit():
        raise AgiProtocolError("SAY value is not digits")
    return value


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64]


def _duration(wav: Path) -> float:
    try:
        import soundfile

        info = soundfile.info(str(wav))
        return float(info.frames) / float(info.samplerate)
    except (RuntimeError, OSError):
        return 0.0


def _clean_caller(raw: str) -> str:
    return re.sub(r"[^0-9A-Za-z+*#._-]", "", raw)[:64]


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _drive(call: _Call, commands: list[Command], now: Callable[[], datetime],
           on_route: Callable[[Route], Awaitable[RouteAck]] | None) -> None:
    """Execute commands until the session finishes."""
    session, agi = call.session, call.agi
    while True:
        event: Event | None = None
        for cmd in commands:
            match cmd:
                case Play():
                    d = await call.play(cmd.items, cmd.barge_in)
                    call.pending = (call.pending + d) if d else call.pending
                case SetLanguage():
                    if not _LANG.fullmatch(cmd.language):
                        raise AgiProtocolError("language code is not two letters")
                    await call.set_var("CHANNEL(language)", cmd.language)
                case SetVariable():
                    pass  # flow variables live in the session; channel variables are results
                case CollectDigits():
                    event = await call.collect(cmd)
                case RecordAudio():
                    event = await call.record(cmd)
                case Lookup():
                    event = await call.do_lookup(cmd)
                case Route():
                    if on_route is None:
                        raise IvrError("this script cannot route calls")
                    ack = await on_route(cmd)
                    call.ack = ack
                    event = RouteAccepted(int(ack.position), int(ack.expected_wait_s))
                case SurveyAnswered():
                    call.survey = cmd
                case ReturnToDialplan():
                    req = session.route_request
                    results = {}
                    if req is not None:
                        results = {"HOMELINE_CALL_ID": session.call_id,
                                   "HOMELINE_QUEUE": req.queue, "HOMELINE_INTENT": req.intent,
                                   "HOMELINE_LANGUAGE": req.language}
                        if req.announce_every_s:
                            results["HOMELINE_ANNOUNCE_S"] = str(req.announce_every_s)
                    if call.ack is not None and call.ack.hold_s:
                        results["HOMELINE_HOLD_S"] = str(call.ack.hold_s)
                    if call.ack is not None and call.ack.record:
                        results["HOMELINE_RECORD"] = "1"
                    results["HOMELINE_OUTCOME"] = cmd.outcome  # last: the dialplan branches on it
                    await call.set_vars(results)
                case Transfer():
                    await call.set_vars({"HOMELINE_TRANSFER_TO": cmd.destination,
                                   "HOMELINE_OUTCOME": "transfer"})
                case Voicemail():
                    await call.set_vars({"HOMELINE_VOICEMAIL_BOX": cmd.box,
                                   "HOMELINE_OUTCOME": "voicemail"})
                case Hangup():
                    await call.set_var("HOMELINE_OUTCOME", "hangup")
                    await agi.command("HANGUP")
                case _:
                    assert_never(cmd)
        if session.finished:
            return
        if event is None:
            raise IvrError(f"flow {session.flow.name!r} left node {session.node!r} "
                           "without asking for anything")
        commands = session.step(event, now())


def _result(call: _Call, outcome: str, detail: str = "") -> CallResult:
    s = call.session
    return CallResult(call_id=s.call_id, outcome=outcome, flow=s.flow.name,
                      flow_version=s.flow.version, caller=s.caller, language=s.language,
                      intent=s.intent, inputs=tuple(call.inputs), path=tuple(s.path),
                      route=s.route_request, ack=call.ack, variables=s.variables(),
                      detail=detail)


async def run_call(agi: AgiChannel, flow: Flow, *, call_id: str, caller: str,
                   on_route: Callable[[Route], Awaitable[RouteAck]],
             recordings: Recordings | None = None, log: logging.Logger | None = None,
             recognizer: Any = None, lookup: Callable[[str, float], Mapping[str, str]]
             = http_lookup, now: Callable[[], datetime] = _utcnow) -> CallResult:
    """Run ``flow`` on the live call behind ``agi`` until it is routed or ends.

    ``on_route(route)`` gets the engine's ``Route`` command (``route.request`` is the
    ``RouteRequest``) and returns a ``RouteAck``. Returns the outcome as a value:
    ``routed``, ``callback``, ``transfer``, ``voicemail``, ``hangup``, ``caller-hangup``
    or ``error`` (the dialplan then takes its static fallback route). Never raises
    for a caller hang-up.
    """
    log = log or _LOG
    if recognizer is None and flow.speech is not None:
        from ivr.speech import recognizer_for

        recognizer = recognizer_for(flow)
    session = CallSession(flow, call_id=call_id, caller=_clean_caller(caller))
    call = _Call(agi, session, recordings, log, recognizer, lookup)
    try:
        commands = session.start(now())
        if not _opens_with_prompts(commands):
            await call.answer()  # else the first prompts answer it (_Call.answer_playing)
        await _drive(call, commands, now, on_route)
        result = _result(call, session.outcome or "error")
    except AgiHangup:
        session.step(CallerHungUp(), now())
        result = _result(call, "caller-hangup")
    except IvrError as exc:
        log.error("call %s: flow %s stopped: %s", call_id, flow.name, exc)
        try:
            await call.set_var("HOMELINE_OUTCOME", "error")
        except (AgiHangup, IvrError, OSError):
            pass
        result = _result(call, "error", str(exc))
    if log.isEnabledFor(logging.INFO):  # encoding every call's summary is not free
        log.info("call %s: %s", call_id, json.dumps(result.loggable(), sort_keys=True))
    return result


async def run_survey(agi: AgiChannel, flow: Flow, *, recordings: Recordings | None = None,
               log: logging.Logger | None = None,
               now: Callable[[], datetime] = _utcnow) -> SurveyResult:
    """The post-call survey (script ``survey``, reached via Dial's ``g`` option).

    call id, agent and intent come from the channel variables HOMELINE_CALL_ID,
    HOMELINE_AGENT and HOMELINE_INTENT (GET VARIABLE).
    """
    log = log or _LOG

    async def var(name: str) -> str:
        reply = await agi.command("GET VARIABLE", _name(name))
        value = reply.data if reply.result == "1" else ""
        return value if _SAFE_ARG.fullmatch(value) else ""

    call_id = agent = intent = ""
    session: CallSession | None = None
    call: _Call | None = None
    try:
        call_id, agent = await var("HOMELINE_CALL_ID"), await var("HOMELINE_AGENT")
        intent = await var("HOMELINE_INTENT")
        lang = await var("CHANNEL(language)")
        if flow.post_call is None:
            raise IvrError(f"flow {flow.name!r} has no post_call survey")
        session = CallSession(flow, call_id=call_id, caller="",
                              variables={"intent": intent or None, "agent": agent})
        if lang in flow.languages:
            session.language = lang
        call = _Call(agi, session, recordings, log, None, http_lookup)
        await _drive(call, session.start(now(), entry=flow.post_call), now, None)
    except AgiHangup:
        if session is not None:
            session.step(CallerHungUp(), now())
    except IvrError as exc:
        log.error("survey for call %s stopped: %s", call_id or "?", exc)
    answered = call.survey if call is not None else None
    result = SurveyResult(call_id, agent, intent, answered.score if answered else None,
                          answered.comment_path if answered else "", answered is not None,
                          flow.version)
    log.info("survey %s", json.dumps(result.loggable(), sort_keys=True))
    return result
