"""The agent directory: agents, queues and policy, from ``dialplans/agents.yaml`` or a dict.

The file is admin-edited and untrusted: it is read by ``adminfiles.read_yaml``
(bounded, no aliases, no duplicate keys), unknown keys are refused with the
allowed list, every problem is collected and raised at once in one
`DirectoryError` as ``file:node:key: message [code]`` lines (node = the agent
id, ``queue/<id>`` or ``policy``), with the codes every admin file shares.
The agent id is the PJSIP endpoint name, so it follows the same rule as the
rendered pjsip.conf: 1-40 of ``a-z 0-9 _ -``, not starting with ``homeline``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from adminfiles import (
    BAD_CHOICE,
    MISSING_KEY,
    OUT_OF_RANGE,
    WRONG_TYPE,
    Problem,
    read_yaml,
    unknown_key,
)
from routing.errors import DirectoryError
from routing.model import (
    CHANNELS,
    MIX_RULES,
    PHONE_KINDS,
    SELECTION_RULES,
    SL_DEFINITIONS,
    TEXT_CHANNELS,
    Agent,
    ExpansionStep,
    MixRule,
    Queue,
    RoutingPolicy,
)
from routing.windows import HoursChange, HoursPolicy, HourWindow, load_zone, validate_weekly

__all__ = ["Directory", "load_directory", "AGENT_ID_RE", "MAX_DIRECTORY_BYTES"]

MAX_DIRECTORY_BYTES = 4 * 1024 * 1024  # thousands of agents with their windows

AGENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LANG_RE = re.compile(r"^[a-z]{2,3}$")

_AGENT_KEYS = ("name", "zone", "skills", "languages", "windows", "changes", "trainee",
               "capacity", "endpoint", "phone", "max_chats", "mix")
_QUEUE_KEYS = ("name", "skills", "languages", "language_level", "priority", "service_level",
               "aht_s", "wrap_up_s", "min_time_left_s", "max_wait_s", "overflow",
               "callback_after_s", "expansion", "selection", "simple_intents",
               "sl_definition", "record", "channels", "chat_reply_after_s")
_POLICY_KEYS = tuple(f.name for f in fields(RoutingPolicy))
_HOURS_KEYS = tuple(f.name for f in fields(HoursPolicy))


@dataclass(frozen=True, slots=True, eq=False)
class Directory:
    agents: tuple[Agent, ...]
    queues: tuple[Queue, ...]
    policy: RoutingPolicy = RoutingPolicy()
    source: str = "<directory>"

    def agent(self, agent_id: str) -> Agent:
        for a in self.agents:
            if a.id == agent_id:
                return a
        raise KeyError(agent_id)

    def queue(self, queue_id: str) -> Queue:
        for q in self.queues:
            if q.id == queue_id:
                return q
        raise KeyError(queue_id)

    @property
    def queue_ids(self) -> tuple[str, ...]:
        """The ids of the queues, in file order: what flows' route nodes may name."""
        return tuple(q.id for q in self.queues)

    def with_agent(self, agent: Agent) -> Directory:
        agents = tuple(agent if a.id == agent.id else a for a in self.agents)
        return Directory(agents, self.queues, self.policy, self.source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>", *,
                  now: datetime | None = None, check_budget: bool = True) -> Directory:
        """Validate ``data`` (the YAML document's shape); `DirectoryError` lists every problem.

        With ``now``, weekly windows are also checked for DST gaps in the coming year.
        ``check_budget=False`` accepts any weekly total (journal replay reproduces what
        the router had, even if the policy changed since).
        """
        return _Loader(source, now, check_budget).load(data)

    def to_dict(self) -> dict[str, Any]:
        """The inverse of `from_dict` (used by journals to replay with the same directory)."""
        pol = {f.name: getattr(self.policy, f.name) for f in fields(RoutingPolicy)
               if f.name != "hours"}
        pol["hours"] = {f.name: getattr(self.policy.hours, f.name) for f in fields(HoursPolicy)}
        queues: dict[str, Any] = {}
        for q in self.queues:
            queues[q.id] = {
                "name": q.name, "skills": dict(q.skills), "languages": list(q.languages),
                "language_level": q.language_level, "priority": q.priority,
                "service_level": {"target": q.sl_target, "answer_s": q.sl_answer_s},
                "aht_s": q.aht_s, "wrap_up_s": q.wrap_up_s,
                "min_time_left_s": q.min_time_left_s, "max_wait_s": q.max_wait_s,
                "overflow": q.overflow, "callback_after_s": q.callback_after_s,
                "expansion": [{"after_s": s.after_s, "min_level": s.min_level,
                               "any_skill": s.any_skill} for s in q.expansion],
                "selection": q.selection, "simple_intents": list(q.simple_intents),
                "sl_definition": q.sl_definition,
                "record": q.record, "channels": list(q.channels),
                "chat_reply_after_s": q.chat_reply_after_s,
            }
        agents: dict[str, Any] = {}
        for a in self.agents:
            agents[a.id] = {
                "name": a.name, "zone": a.zone, "skills": dict(a.skills),
                "languages": dict(a.languages), "windows": [str(w) for w in a.windows],
                "changes": [str(c) for c in a.changes], "trainee": a.trainee,
                "capacity": dict(a.capacity), "endpoint": a.endpoint,
                "max_chats": a.max_chats, "mix": a.mix,
            }
        return {"policy": pol, "queues": queues, "agents": agents}


def load_directory(path: str | Path, *, now: datetime | None = None) -> Directory:
    """Load and validate an agent directory YAML file; `DirectoryError` lists every problem."""
    data, problems = read_yaml(path, what="agent directory", max_bytes=MAX_DIRECTORY_BYTES,
                               locate=_locate)
    if data is None:
        raise DirectoryError(problems)
    # Duplicate keys do not stop the checks: every problem of the file in one run.
    return _Loader(str(path), now, problems=problems).load(data)


def _path_text(parts: tuple[str | int, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "-"


def _locate(path: tuple[str | int, ...]) -> tuple[str, str]:
    """``(node, key)`` of a key path, with the node names this module reports."""
    if len(path) >= 2 and path[0] == "agents":
        return str(path[1]), _path_text(path[2:])
    if len(path) >= 2 and path[0] == "queues":
        return f"queue/{path[1]}", _path_text(path[2:])
    if len(path) >= 2 and path[0] == "policy":
        return "policy", _path_text(path[1:])
    return "-", _path_text(path)


class _Loader:
    def __init__(self, source: str, now: datetime | None, check_budget: bool = True, *,
                 problems: list[Problem] | None = None) -> None:
        self.source = source
        self.now = now
        self.check_budget = check_budget
        self.problems: list[Problem] = list(problems or [])

    def bad(self, node: str, field: str, message: str, code: str) -> None:
        self.problems.append(Problem(self.source, node, field, message, code))

    def keys(self, node: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for k in data:
            if k not in allowed:
                self.problems.append(unknown_key(self.source, node, str(k), allowed))

    def num(self, node: str, field: str, v: Any, lo: float, hi: float | None = None,
            integer: bool = False, default: Any = None) -> Any:
        if v is None:
            return default
        ok_type = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok_type:
            self.bad(node, field, f"must be {'an integer' if integer else 'a number'}, got {v!r}",
                     WRONG_TYPE)
            return default
        if v < lo or (hi is not None and v > hi):
            rng = f">= {lo:g}" if hi is None else f"between {lo:g} and {hi:g}"
            self.bad(node, field, f"{v!r} must be {rng}", OUT_OF_RANGE)
            return default
        return v

    def levels(self, node: str, field: str, v: Any, name_re: re.Pattern[str],
               what: str) -> dict[str, int]:
        out: dict[str, int] = {}
        if v is None:
            return out
        if not isinstance(v, Mapping):
            self.bad(node, field, f"must be a mapping of {what} to level 1-5, got {v!r}",
                     WRONG_TYPE)
            return out
        for k, lv in v.items():
            if not isinstance(k, str) or not name_re.match(k):
                self.bad(node, field, f"{k!r} is not a valid {what} name", "name")
                continue
            n = self.num(node, f"{field}.{k}", lv, 1, 5, integer=True)
            if n is not None:
                out[k] = n
        return out

    def strings(self, node: str, field: str, v: Any) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.bad(node, field, f"must be a list of strings, got {v!r}", WRONG_TYPE)
            return []
        return list(v)

    def load(self, data: Any) -> Directory:
        if not isinstance(data, Mapping):
            self.bad("-", "-", "the directory must be a mapping with agents, queues, policy",
                     WRONG_TYPE)
            raise DirectoryError(self.problems)
        self.keys("-", data, ("agents", "queues", "policy"))
        policy = self.policy(data.get("policy") or {})
        queues = self.queues(data.get("queues") or {})
        agents = self.agents(data.get("agents") or {}, policy.hours)
        qids = {q.id for q in queues}
        for q in queues:
            if q.overflow and q.overflow not in qids and not q.overflow.startswith("ext:"):
                self.bad(f"queue/{q.id}", "overflow", f"{q.overflow!r} is neither a queue "
                         f"({', '.join(sorted(qids))}) nor an external target 'ext:<name>'",
                         "overflow-target")
        self.overflow_cycles(queues)
        if self.problems:
            raise DirectoryError(self.problems)
        return Directory(tuple(agents), tuple(queues), policy, self.source)

    def overflow_cycles(self, queues: list[Queue]) -> None:
        nxt = {q.id: q.overflow for q in queues}
        for q in queues:
            seen, cur = [q.id], nxt.get(q.id)
            while cur in nxt:
                if cur in seen:
                    self.bad(f"queue/{q.id}", "overflow",
                             f"overflow loops: {' -> '.join(seen + [cur])}", "overflow-cycle")
                    break
                seen.append(cur)
                cur = nxt.get(cur)

    def policy(self, d: Any) -> RoutingPolicy:
        if not isinstance(d, Mapping):
            self.bad("policy", "-", "must be a mapping", WRONG_TYPE)
            return RoutingPolicy()
        self.keys("policy", d, _POLICY_KEYS)
        hd = d.get("hours") or {}
        hours = HoursPolicy()
        if isinstance(hd, Mapping):
            self.keys("policy", {f"hours.{k}": v for k, v in hd.items()},
                      tuple(f"hours.{k}" for k in _HOURS_KEYS))
            base = HoursPolicy()
            lo = self.num("policy", "hours.min_weekly_hours", hd.get("min_weekly_hours"), 0, 168,
                          default=base.min_weekly_hours)
            hi = self.num("policy", "hours.max_weekly_hours", hd.get("max_weekly_hours"), 0, 168,
                          default=base.max_weekly_hours)
            if lo > hi:
                self.bad("policy", "hours", f"min_weekly_hours {lo} > max_weekly_hours {hi}",
                         OUT_OF_RANGE)
            hours = HoursPolicy(
                lo, hi,
                self.num("policy", "hours.min_window_minutes", hd.get("min_window_minutes"), 1,
                         1440, integer=True, default=base.min_window_minutes),
                self.num("policy", "hours.notice_hours", hd.get("notice_hours"), 0, 24 * 60,
                         default=base.notice_hours))
        else:
            self.bad("policy", "hours", "must be a mapping", WRONG_TYPE)
        b = RoutingPolicy()
        wz = d.get("week_zone", b.week_zone)
        try:
            load_zone(str(wz))
        except ValueError as exc:
            self.bad("policy", "week_zone", str(exc), "zone-unknown")
            wz = b.week_zone
        av = d.get("available_on_register", b.available_on_register)
        if not isinstance(av, bool):
            self.bad("policy", "available_on_register", "must be true or false", WRONG_TYPE)
            av = b.available_on_register
        n: Callable[..., Any] = self.num
        return RoutingPolicy(
            ring_timeout_s=n("policy", "ring_timeout_s", d.get("ring_timeout_s"), 1, 600,
                             default=b.ring_timeout_s),
            max_misses=n("policy", "max_misses", d.get("max_misses"), 1, 100, integer=True,
                         default=b.max_misses),
            miss_cooldown_s=n("policy", "miss_cooldown_s", d.get("miss_cooldown_s"), 0, 3600,
                              default=b.miss_cooldown_s),
            aging_s_per_priority=n("policy", "aging_s_per_priority",
                                   d.get("aging_s_per_priority"), 0, 86400,
                                   default=b.aging_s_per_priority),
            returning_caller_h=n("policy", "returning_caller_h", d.get("returning_caller_h"),
                                 0, 24 * 365, default=b.returning_caller_h),
            trainee_low_load_waiting=n("policy", "trainee_low_load_waiting",
                                       d.get("trainee_low_load_waiting"), 0, 10**6,
                                       integer=True, default=b.trainee_low_load_waiting),
            available_on_register=av,
            week_zone=str(wz),
            runners_up=n("policy", "runners_up", d.get("runners_up"), 0, 50, integer=True,
                         default=b.runners_up),
            callback_attempts=n("policy", "callback_attempts", d.get("callback_attempts"), 1,
                                20, integer=True, default=b.callback_attempts),
            callback_retry_s=n("policy", "callback_retry_s", d.get("callback_retry_s"), 0,
                               86400, default=b.callback_retry_s),
            fair_max_passed_over=n("policy", "fair_max_passed_over",
                                   d.get("fair_max_passed_over"), 1, 10**6, integer=True,
                                   default=b.fair_max_passed_over),
            recording_retention_days=n("policy", "recording_retention_days",
                                       d.get("recording_retention_days"), 0, 3660,
                                       default=b.recording_retention_days),
            hours=hours,
        )

    def queues(self, d: Any) -> list[Queue]:
        out: list[Queue] = []
        if not isinstance(d, Mapping):
            self.bad("queues", "-", "must be a mapping of queue id to settings", WRONG_TYPE)
            return out
        for qid, q in d.items():
            node = f"queue/{qid}"
            if not isinstance(qid, str) or not _NAME_RE.match(qid):
                self.bad(node, "id", "queue id must be 1-40 of a-z, 0-9, '_' and '-'", "id")
                continue
            if not isinstance(q, Mapping):
                self.bad(node, "-", "must be a mapping", WRONG_TYPE)
                continue
            self.keys(node, q, _QUEUE_KEYS)
            langs = self.strings(node, "languages", q.get("languages"))
            for lg in langs:
                if not _LANG_RE.match(lg):
                    self.bad(node, "languages", f"{lg!r} is not a language code like 'en'",
                             "name")
            sl = q.get("service_level") or {}
            if not isinstance(sl, Mapping):
                self.bad(node, "service_level", "must be {target: 0.8, answer_s: 20}", WRONG_TYPE)
                sl = {}
            self.keys(node, {f"service_level.{k}": v for k, v in sl.items()},
                      ("service_level.target", "service_level.answer_s"))
            steps: list[ExpansionStep] = []
            exp = q.get("expansion") or []
            if not isinstance(exp, list):
                self.bad(node, "expansion", "must be a list of steps", WRONG_TYPE)
                exp = []
            last = 0.0
            for i, st in enumerate(exp):
                f = f"expansion[{i}]"
                if not isinstance(st, Mapping):
                    self.bad(node, f, "must be {after_s: N, min_level: L} or "
                             "{after_s: N, any_skill: true}", WRONG_TYPE)
                    continue
                self.keys(node, {f"{f}.{k}": v for k, v in st.items()},
                          (f"{f}.after_s", f"{f}.min_level", f"{f}.any_skill"))
                after = self.num(node, f"{f}.after_s", st.get("after_s"), 0.001, default=None)
                if after is None:
                    if "after_s" not in st:
                        self.bad(node, f"{f}.after_s", "missing required key 'after_s'",
                                 MISSING_KEY)
                    continue
                if after <= last:
                    self.bad(node, f"{f}.after_s", "steps must come in increasing after_s",
                             "order")
                last = after
                ml = self.num(node, f"{f}.min_level", st.get("min_level"), 1, 5, integer=True)
                anys = st.get("any_skill", False)
                if not isinstance(anys, bool):
                    self.bad(node, f"{f}.any_skill", "must be true or false", WRONG_TYPE)
                    anys = False
                if ml is None and not anys:
                    self.bad(node, f, "a step must set min_level or any_skill", "required")
                prev = steps[-1] if steps else None
                if prev is not None and (prev.any_skill and not anys or (
                        ml is not None and prev.min_level is not None and ml > prev.min_level)):
                    self.bad(node, f, "each step must relax the one before (lower min_level, "
                             "then any_skill)", "expansion-order")
                steps.append(ExpansionStep(after, ml, anys))
            sel = q.get("selection", "longest-idle")
            if sel not in SELECTION_RULES:
                self.bad(node, "selection", f"{sel!r} is not one of "
                         f"{', '.join(SELECTION_RULES)}", BAD_CHOICE)
                sel = "longest-idle"
            sld = q.get("sl_definition", SL_DEFINITIONS[0])
            if sld not in SL_DEFINITIONS:
                self.bad(node, "sl_definition", f"{sld!r} is not one of "
                         f"{', '.join(SL_DEFINITIONS)}", BAD_CHOICE)
                sld = SL_DEFINITIONS[0]
            ov = q.get("overflow")
            if ov is not None and not isinstance(ov, str):
                self.bad(node, "overflow", "must be a queue id or 'ext:<name>'", WRONG_TYPE)
                ov = None
            record = q.get("record", False)
            if not isinstance(record, bool):
                self.bad(node, "record", "must be true or false", WRONG_TYPE)
                record = False
            chans = self.channel_list(node, q.get("channels", ["voice"]))
            name = q.get("name", qid)
            out.append(Queue(
                id=qid, name=str(name),
                skills=self.levels(node, "skills", q.get("skills"), _NAME_RE, "skill"),
                languages=tuple(langs),
                language_level=self.num(node, "language_level", q.get("language_level"), 1, 5,
                                        integer=True, default=1),
                priority=self.num(node, "priority", q.get("priority"), -100, 100, integer=True,
                                  default=0),
                sl_target=self.num(node, "service_level.target", sl.get("target"), 0, 1,
                                   default=0.8),
                sl_answer_s=self.num(node, "service_level.answer_s", sl.get("answer_s"), 0,
                                     default=20.0),
                aht_s=self.num(node, "aht_s", q.get("aht_s"), 1, default=300.0),
                wrap_up_s=self.num(node, "wrap_up_s", q.get("wrap_up_s"), 0, default=30.0),
                min_time_left_s=self.num(node, "min_time_left_s", q.get("min_time_left_s"), 0),
                max_wait_s=self.num(node, "max_wait_s", q.get("max_wait_s"), 1),
                overflow=ov,
                callback_after_s=self.num(node, "callback_after_s", q.get("callback_after_s"), 0),
                expansion=tuple(steps),
                selection=sel,
                simple_intents=tuple(self.strings(node, "simple_intents",
                                                  q.get("simple_intents"))),
                sl_definition=sld,
                record=record,
                channels=chans,
                chat_reply_after_s=self.num(node, "chat_reply_after_s",
                                            q.get("chat_reply_after_s"), 0),
            ))
        return out

    def channel_list(self, node: str, v: Any) -> tuple[str, ...]:
        """A queue's ``channels``: a non-empty list of CHANNELS, each once."""
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.bad(node, "channels", f"must be a list of channels ({', '.join(CHANNELS)}), "
                     f"got {v!r}", WRONG_TYPE)
            return ("voice",)
        out: list[str] = []
        for ch in v:
            if ch not in CHANNELS:
                self.bad(node, "channels", f"{ch!r} is not one of {', '.join(CHANNELS)}",
                         BAD_CHOICE)
            elif ch in out:
                self.bad(node, "channels", f"{ch!r} is named twice", "duplicate")
            else:
                out.append(ch)
        if not v:
            self.bad(node, "channels", "a queue serves at least one channel", "required")
        return tuple(out) or ("voice",)

    def capacity(self, node: str, a: Mapping[str, Any]) -> tuple[dict[str, int], int, MixRule]:
        """An agent's ``capacity`` (channel -> concurrent), ``max_chats`` and ``mix``."""
        raw = a.get("capacity", {"voice": 1})
        cap: dict[str, int] = {}
        if not isinstance(raw, Mapping):
            self.bad(node, "capacity", f"must be a mapping of channel to count, e.g. "
                     f"{{voice: 1, sms: 3}}, got {raw!r}", WRONG_TYPE)
            raw = {"voice": 1}
        for ch, n in raw.items():
            if ch not in CHANNELS:
                self.bad(node, "capacity", f"{ch!r} is not one of {', '.join(CHANNELS)}",
                         BAD_CHOICE)
                continue
            hi = 1 if ch == "voice" else 20
            k = self.num(node, f"capacity.{ch}", n, 0, hi, integer=True)
            if k is not None:
                cap[str(ch)] = k
        text_cap = max((cap.get(c, 0) for c in TEXT_CHANNELS), default=0)
        mc = self.num(node, "max_chats", a.get("max_chats"), 0, 20, integer=True, default=0)
        if mc and not text_cap:
            self.bad(node, "max_chats", "max_chats needs a text channel in capacity "
                     f"({', '.join(TEXT_CHANNELS)})", "capacity")
        mix = a.get("mix", "one-channel")
        if mix not in MIX_RULES:
            self.bad(node, "mix", f"{mix!r} is not one of {', '.join(MIX_RULES)}", BAD_CHOICE)
            mix = "one-channel"
        if mix != "one-channel" and (not cap.get("voice") or not text_cap):
            self.bad(node, "mix", f"{mix!r} mixes calls and chats: capacity needs voice: 1 "
                     "and a text channel", "capacity")
        if not any(cap.values()) and raw:
            self.bad(node, "capacity", "the agent would take no interaction at all "
                     "(every capacity is 0)", "capacity")
        rule: MixRule = "voice-with-chats" if mix == "voice-with-chats" else "one-channel"
        return cap, mc, rule

    def agents(self, d: Any, hours: HoursPolicy) -> list[Agent]:
        out: list[Agent] = []
        if not isinstance(d, Mapping):
            self.bad("agents", "-", "must be a mapping of agent id to settings", WRONG_TYPE)
            return out
        endpoints: dict[str, str] = {}
        for aid, a in d.items():
            node = str(aid)
            if not isinstance(aid, str) or not AGENT_ID_RE.match(aid) or aid.startswith("homeline"):
                self.bad(node, "id", "agent id (= PJSIP endpoint) must be 1-40 of a-z, 0-9, "
                         "'_' and '-', not starting with 'homeline'", "id")
                continue
            if not isinstance(a, Mapping):
                self.bad(node, "-", "must be a mapping", WRONG_TYPE)
                continue
            self.keys(node, a, _AGENT_KEYS)
            zone = a.get("zone", "UTC")
            if not isinstance(zone, str):
                self.bad(node, "zone", "must be an IANA zone name", WRONG_TYPE)
                zone = "UTC"
            windows: list[HourWindow] = []
            for i, text in enumerate(self.strings(node, "windows", a.get("windows"))):
                try:
                    windows.append(HourWindow.parse(text))
                except ValueError as exc:
                    self.bad(node, f"windows[{i}]", str(exc), "window-format")
            changes: list[HoursChange] = []
            for i, text in enumerate(self.strings(node, "changes", a.get("changes"))):
                kind, _, rest = text.partition(" ")
                if kind not in ("add", "cancel"):
                    self.bad(node, f"changes[{i}]", f"{text!r}: must start with 'add' or "
                             "'cancel', e.g. 'cancel 2026-12-24 18:00-21:00'", "change-format")
                    continue
                try:
                    changes.append(HoursChange.parse(rest, kind))  # type: ignore[arg-type]
                except ValueError as exc:
                    self.bad(node, f"changes[{i}]", str(exc), "change-format")
            self.problems += validate_weekly(windows, zone, hours, source=self.source,
                                             node=node, now=self.now,
                                             check_budget=self.check_budget)
            trainee = a.get("trainee", False)
            if not isinstance(trainee, bool):
                self.bad(node, "trainee", "must be true or false", WRONG_TYPE)
                trainee = False
            cap, max_chats, mix = self.capacity(node, a)
            ep = a.get("endpoint", aid)
            if not isinstance(ep, str) or not AGENT_ID_RE.match(ep):
                self.bad(node, "endpoint", "must be a PJSIP endpoint name (a-z, 0-9, _ -)", "id")
                ep = aid
            if ep in endpoints:
                self.bad(node, "endpoint", f"{ep!r} is already used by {endpoints[ep]}",
                         "duplicate-endpoint")
            endpoints[ep] = aid
            phone = a.get("phone", "udp")
            if phone not in PHONE_KINDS:
                self.bad(node, "phone", f"{phone!r}: must be one of {', '.join(PHONE_KINDS)}",
                         "phone-kind")
                phone = "udp"
            langs = self.levels(node, "languages", a.get("languages", {"en": 5}), _LANG_RE,
                                "language")
            if not langs:
                self.bad(node, "languages", "an agent needs at least one language", "required")
            out.append(Agent(
                id=aid, name=str(a.get("name", aid)),
                skills=self.levels(node, "skills", a.get("skills"), _NAME_RE, "skill"),
                languages=langs, zone=zone, windows=tuple(windows), changes=tuple(changes),
                trainee=trainee, capacity=cap or {"voice": 1}, endpoint=ep,
                phone=phone, max_chats=max_chats, mix=mix,
            ))
        return out
