"""The routing model: agents, queues with expansion steps, and the routing policy.

Everything here is an immutable value, constructible directly (tests, the demo)
or through `routing.directory` (the admin-edited ``dialplans/agents.yaml``),
which applies the same validation and reports every problem at once.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NewType

from routing.windows import HoursChange, HoursPolicy, HourWindow

__all__ = [
    "AgentId",
    "QueueId",
    "CallId",
    "Agent",
    "Queue",
    "ExpansionStep",
    "Requirement",
    "RoutingPolicy",
    "SELECTION_RULES",
    "PHONE_KINDS",
    "SL_DEFINITIONS",
    "CHANNELS",
    "TEXT_CHANNELS",
    "VOICE",
    "MIX_RULES",
]

AgentId = NewType("AgentId", str)
QueueId = NewType("QueueId", str)
CallId = NewType("CallId", str)

SELECTION_RULES = ("longest-idle", "best-proficiency", "fair-share", "fewest-calls")
SelectionRule = Literal["longest-idle", "best-proficiency", "fair-share", "fewest-calls"]
# How the agent's phone reaches the PBX (rendered as that agent's PJSIP endpoint):
# udp = plain SIP/RTP on loopback (tests, a softphone on the server itself);
# tls = SIP over TLS with SRTP (pjsua2 softphone from home); webrtc = the browser
# phone (SIP over secure WebSocket, DTLS-SRTP).
PHONE_KINDS = ("udp", "tls", "webrtc")
PhoneKind = Literal["udp", "tls", "webrtc"]
# How a queue's service level is computed (`routing.stats`; T = service_level.answer_s):
# answered within T / offered, or answered within T / (offered - abandoned within T)
SL_DEFINITIONS = ("answered_within_t_over_offered",
                  "answered_within_t_over_offered_minus_short_abandons")
SlDefinition = Literal["answered_within_t_over_offered",
                       "answered_within_t_over_offered_minus_short_abandons"]


# The channels an interaction comes in on. A voice call holds the agent's phone (and the
# agent's state: reserved, on_call, wrap_up); a text conversation (sms, messenger) takes
# one of the agent's chat slots and leaves the state alone (see `routing.router`).
VOICE = "voice"
CHANNELS = ("voice", "sms", "messenger")
TEXT_CHANNELS = ("sms", "messenger")
# The text channels whose customer id is a phone number: a call back can reach them
# (a Messenger id is page-scoped, no number to dial).
CALLABLE_CHANNELS = ("sms",)
# How an agent mixes channels: "one-channel" = calls or chats, never both at once (no
# call offered while a chat is open, no chat during a call); "voice-with-chats" = a call
# may also be offered while chats are open (none being offered), chats wait for the call.
MIX_RULES = ("one-channel", "voice-with-chats")
MixRule = Literal["one-channel", "voice-with-chats"]


def _frozen_map(m: Mapping[str, int] | Sequence[tuple[str, int]]) -> Mapping[str, int]:
    items = m.items() if isinstance(m, Mapping) else m
    return MappingProxyType(dict(sorted((str(k), int(v)) for k, v in items)))


@dataclass(frozen=True, slots=True, eq=False)
class Agent:
    """A home agent. ``id`` is also the PJSIP endpoint name unless ``endpoint`` is set.

    ``skills`` and ``languages`` map a name to a proficiency 1-5.
    ``capacity`` maps a channel (:data:`CHANNELS`) to concurrent interactions of that
    channel (voice: 0 or 1; a channel not named: 0, so an agent takes no chats unless
    the directory says so). ``max_chats`` caps all text channels together (0: the
    largest text capacity); ``mix`` is how calls and chats combine (:data:`MIX_RULES`).
    ``phone`` is how the agent's phone connects (one of :data:`PHONE_KINDS`).
    """

    id: str
    name: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: Mapping[str, int] = field(default_factory=lambda: {"en": 5})
    zone: str = "UTC"
    windows: tuple[HourWindow, ...] = ()
    changes: tuple[HoursChange, ...] = ()
    trainee: bool = False
    capacity: Mapping[str, int] = field(default_factory=lambda: {"voice": 1})
    endpoint: str = ""
    phone: PhoneKind = "udp"
    max_chats: int = 0
    mix: MixRule = "one-channel"

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", _frozen_map(self.skills))
        object.__setattr__(self, "languages", _frozen_map(self.languages))
        object.__setattr__(self, "capacity", _frozen_map(self.capacity))
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "changes", tuple(self.changes))
        if not self.endpoint:
            object.__setattr__(self, "endpoint", self.id)
        if not self.name:
            object.__setattr__(self, "name", self.id)
        if not self.max_chats:
            object.__setattr__(self, "max_chats", max(
                (self.capacity.get(c, 0) for c in TEXT_CHANNELS), default=0))

    def serves(self, channel: str) -> bool:
        """The agent takes interactions of ``channel`` at all."""
        return self.capacity.get(channel, 0) > 0 and (channel == VOICE or self.max_chats > 0)

    def admits(self, channel: str, load: Mapping[str, int], offering: bool) -> bool:
        """May one more ``channel`` interaction be offered to this agent, who holds
        ``load`` (chats per text channel: offered, connected or wrapping up) and is not
        on a call (``offering``: one of those chats is still being offered)?"""
        if self.capacity.get(channel, 0) <= load.get(channel, 0):
            return False
        chats = sum(load.values())
        if channel == VOICE:
            return chats == 0 or (self.mix == "voice-with-chats" and not offering)
        return chats < self.max_chats

    def with_hours(self, windows: Sequence[HourWindow],
                   changes: Sequence[HoursChange] = ()) -> Agent:
        return Agent(self.id, self.name, self.skills, self.languages, self.zone,
                     tuple(windows), tuple(changes), self.trainee, self.capacity, self.endpoint,
                     self.phone, self.max_chats, self.mix)


@dataclass(frozen=True, slots=True)
class ExpansionStep:
    """After ``after_s`` seconds of waiting, relax the queue's requirement.

    ``min_level`` lowers every skill requirement to at most that level;
    ``any_skill`` accepts any agent who speaks the call's language.
    """

    after_s: float
    min_level: int | None = None
    any_skill: bool = False

    def describe(self) -> str:
        if self.any_skill:
            return f"after {self.after_s:g} s: any agent with the language"
        return f"after {self.after_s:g} s: skill level >= {self.min_level}"


@dataclass(frozen=True, slots=True)
class Requirement:
    """What an agent needs for a call at one expansion step."""

    skills: tuple[tuple[str, int], ...]
    language: str | None
    language_level: int = 1

    def met_by(self, agent: Agent) -> bool:
        sk = agent.skills
        for name, level in self.skills:
            if sk.get(name, 0) < level:
                return False
        lang = self.language
        if lang is not None and agent.languages.get(lang, 0) < self.language_level:
            return False
        return True

    def describe(self) -> str:
        parts = [f"{n}>={lv}" for n, lv in self.skills] or ["any skill"]
        if self.language:
            parts.append(f"language {self.language}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, eq=False)
class Queue:
    """A queue: requirements, service level, handle times, overflow and expansion.

    ``languages``: the languages this queue serves (a call in another language
    falls back to ``languages[0]``); empty means "the caller's language, whatever it is".
    """

    id: str
    name: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    language_level: int = 1
    priority: int = 0
    sl_target: float = 0.8
    sl_answer_s: float = 20.0
    aht_s: float = 300.0
    wrap_up_s: float = 30.0
    min_time_left_s: float | None = None  # default: aht_s
    max_wait_s: float | None = None
    overflow: str | None = None  # another queue id, or an external target
    callback_after_s: float | None = None  # offer a callback when expected wait exceeds this
    expansion: tuple[ExpansionStep, ...] = ()
    selection: SelectionRule = "longest-idle"
    simple_intents: tuple[str, ...] = ()
    sl_definition: SlDefinition = "answered_within_t_over_offered"
    record: bool = False  # calls to agents are recorded (MixMonitor); the caller is told
    channels: tuple[str, ...] = ("voice",)  # the channels (CHANNELS) this queue serves
    # a chat still waiting this long after it arrived gets an automatic reply with its
    # expected wait (`ReplyWithWait`), and a call back when that wait > callback_after_s
    chat_reply_after_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", _frozen_map(self.skills))
        object.__setattr__(self, "languages", tuple(self.languages))
        steps = tuple(sorted(self.expansion, key=lambda s: s.after_s))
        object.__setattr__(self, "expansion", steps)
        object.__setattr__(self, "simple_intents", tuple(self.simple_intents))
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.name:
            object.__setattr__(self, "name", self.id)

    @property
    def time_left_s(self) -> float:
        return self.aht_s if self.min_time_left_s is None else self.min_time_left_s

    def language_for(self, language: str | None) -> str | None:
        if not self.languages:
            return language
        if language in self.languages:
            return language
        return self.languages[0]

    def step_at(self, waited_s: float) -> int:
        """Index of the expansion step in force after waiting ``waited_s`` (0 = base)."""
        k = 0
        for i, st in enumerate(self.expansion, start=1):
            if waited_s >= st.after_s:
                k = i
        return k

    def requirement(self, step: int, language: str | None,
                    skills: Mapping[str, int] | None = None) -> Requirement:
        base = dict(self.skills if skills is None else skills)
        lang = self.language_for(language)
        if step > 0:
            st = self.expansion[step - 1]
            if st.any_skill:
                base = {}
            elif st.min_level is not None:
                base = {k: min(v, st.min_level) for k, v in base.items()}
        return Requirement(tuple(sorted(base.items())), lang, self.language_level)


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Router-wide knobs (the queue carries the per-queue ones)."""

    ring_timeout_s: float = 15.0
    max_misses: int = 3  # consecutive missed offers before the agent is put on break
    miss_cooldown_s: float = 10.0
    aging_s_per_priority: float = 60.0  # one priority level is worth this much waiting
    returning_caller_h: float = 24.0  # preferred (last) agent for a caller within this
    trainee_low_load_waiting: int = 0  # "low load": at most this many calls already waiting
    available_on_register: bool = True
    week_zone: str = "UTC"  # fair-share weeks start Monday 00:00 here
    runners_up: int = 3  # how many other eligible agents a reason lists
    callback_attempts: int = 3  # dial-backs a caller may miss before the callback ends
    callback_retry_s: float = 120.0  # after a missed dial-back, wait this long to retry
    # fair-share: an agent left free through this many fair-share offers in a row gets
    # the next call they are eligible for, whatever their standing (no starvation)
    fair_max_passed_over: int = 10
    # recordings of queues with ``record: true`` are removed this many days after the call
    recording_retention_days: float = 30.0
    hours: HoursPolicy = HoursPolicy()
