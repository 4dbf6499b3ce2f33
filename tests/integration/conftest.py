"""A live Homeline for each test: a real Asterisk instance, the engine, and a
pjsua2 softphone host, all on free loopback ports, all stopped afterwards."""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from homeline.paths import DIALPLANS_DIR
from homeline.stack import PbxStack
from ivr.loader import load_flow
from routing import Directory, Router
from softphone import AgentPhone, SoftphoneHost
from store import SqlStore, open_store

_names = itertools.count()
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def window_open_now(now: datetime) -> str:
    """A UTC window around ``now`` with more than an hour left in it."""
    start = max(0, now.hour - 1)
    end = min(24, now.hour + 2)
    if end - now.hour < 2 and now.hour >= 22:
        start, end = 22, 24
    return f"{DAYS[now.weekday()]} {start:02d}:00-{end:02d}:00"


def window_closed_now(now: datetime) -> str:
    day = DAYS[(now.weekday() + 3) % 7]
    return f"{day} 10:00-12:00"


def directory_for(agents: dict[str, dict[str, Any]], now: datetime,
                  ring_timeout_s: float = 4,
                  queues: dict[str, dict[str, Any]] | None = None,
                  policy: dict[str, Any] | None = None) -> Directory:
    return Directory.from_dict(directory_data(agents, now, ring_timeout_s, queues, policy),
                               source="<test directory>")


def directory_data(agents: dict[str, dict[str, Any]], now: datetime,
                   ring_timeout_s: float = 4,
                   queues: dict[str, dict[str, Any]] | None = None,
                   policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `directory_for` builds, as the data of an agents.yaml (for a test that
    runs `homeline engine run --agents FILE` in a process of its own)."""
    queue = {"aht_s": 60, "wrap_up_s": 1, "languages": ["en", "es", "fr"]}
    data = {
        "policy": {"ring_timeout_s": ring_timeout_s, "max_misses": 3, "week_zone": "UTC",
                   "hours": {"notice_hours": 0, "min_weekly_hours": 1, "max_weekly_hours": 30,
                             "min_window_minutes": 30}},
        "queues": {
            "billing": {**queue, "skills": {"billing": 1}, "selection": "best-proficiency"},
            "tech": {**queue, "skills": {"tech": 1}, "selection": "best-proficiency"},
            "general": {**queue, "skills": {}, "selection": "longest-idle"},
        },
        "agents": {
            agent_id: {
                "zone": "UTC",
                "skills": spec.get("skills", {}),
                "languages": spec.get("languages", {"en": 5}),
                "windows": [window_open_now(now) if spec.get("open", True)
                            else window_closed_now(now)],
                **({"phone": spec["phone"]} if "phone" in spec else {}),
                **{k: spec[k] for k in ("capacity", "max_chats", "mix") if k in spec},
            }
            for agent_id, spec in agents.items()
        },
    }
    data["policy"].update(policy or {})
    for qid, changes in (queues or {}).items():
        data["queues"][qid] = {**data["queues"].get(qid, queue), **changes}
    return data


@dataclass
class Live:
    stack: PbxStack
    host: SoftphoneHost
    engine: Any
    work: Path
    directory: Directory | None = None
    store: SqlStore | None = None
    events: list[Any] = field(default_factory=list)
    phones: dict[str, AgentPhone] = field(default_factory=dict)

    @property
    def support_uri(self) -> str:
        return f"sip:100@127.0.0.1:{self.stack.ports.sip}"

    def agent(self, agent_id: str, **kwargs: Any) -> AgentPhone:
        phone = AgentPhone(self.host, agent_id, server=f"127.0.0.1:{self.stack.ports.sip}",
                           password=self.stack.agent_secret(agent_id), **kwargs)
        phone.wait_registered(10)
        self.phones[agent_id] = phone
        return phone

    def wait_registered(self, *agent_ids: str, timeout: float = 10) -> None:
        assert self.engine is not None
        assert wait_for(lambda: set(agent_ids) <= self.engine.registered_agents(), timeout), (
            f"AMI saw {sorted(self.engine.registered_agents())} registered, "
            f"expected {sorted(agent_ids)}"
        )

    def timeline_of(self, caller: str) -> Any:
        assert self.engine is not None
        for timeline in self.engine.timelines():
            if timeline.caller == caller:
                return timeline
        return None

    def channel_count(self) -> int:
        text = self.stack.instance.cli("core show channels count")
        for line in text.splitlines():
            if "active channel" in line:
                return int(line.split()[0])
        raise AssertionError(f"unexpected 'core show channels count' output: {text!r}")


def dial_and_press(live: Live, caller_id: str, digits: str) -> tuple[Any, Any]:
    """A caller dials the support number and presses ``digits`` (RFC 4733)."""
    from softphone import TestCaller

    caller = TestCaller(live.host, caller_id)
    leg = caller.call(live.support_uri)
    leg.wait_confirmed(15)
    time.sleep(0.8)
    for digit in digits:
        leg.send_dtmf(digit)
        time.sleep(0.4)
    return caller, leg


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


@pytest.fixture
def live_factory(tmp_path: Path) -> Iterator[Callable[..., Live]]:
    made: list[Live] = []
    threads_before = {t.ident for t in threading.enumerate()}

    def make(agents: dict[str, dict[str, Any]], *, engine: bool = True,
             ring_timeout_s: float = 4, queues: dict[str, dict[str, Any]] | None = None,
             flow: str | Path = "main-menu", clock: Callable[[], datetime] | None = None,
             hold_s: int | None = None, external_contact: str = "",
             policy: dict[str, Any] | None = None, secure: Any = None,
             survey: str | None = None,
             supervisors: tuple[Any, ...] = (), text_config: Path | None = None,
             store_address: str | None = None) -> Live:
        now = (clock or (lambda: datetime.now(UTC)))()
        directory = directory_for(agents, now, ring_timeout_s, queues, policy)
        name = f"it{os.getpid()}-{next(_names)}"
        stack = PbxStack(name, directory, tmp_path / name, external_contact=external_contact,
                         secure=secure, supervisors=supervisors)
        if text_config is not None:  # the text channels (web app and engine) read this
            stack.text_config = text_config
        # the test's store: an SQLite file, or ``store_address`` (`make_store`'s, for a
        # test run on SQLite and on PostgreSQL)
        store = open_store(store_address or tmp_path / f"{name}.sqlite3")
        host = None
        try:
            stack.start_pbx()
            eng = None
            if hold_s is not None:
                stack.hold_s = lambda _queue_id: hold_s  # type: ignore[method-assign]
            if engine:
                the_flow = load_flow(flow if isinstance(flow, Path)
                                     else DIALPLANS_DIR / "flows" / f"{flow}.yaml")
                router = Router(store.apply_hours(directory), now=now)
                # survey: the flow whose post_call survey follows calls to agents
                survey_flow = (load_flow(DIALPLANS_DIR / "flows" / f"{survey}.yaml")
                               if survey else None)
                eng = stack.start_engine(router, lambda: the_flow, store=store,
                                         journal_path=tmp_path / f"{name}.jsonl", clock=clock,
                                         survey_flow=survey_flow)
            host = SoftphoneHost()
        except BaseException:
            if host is not None:
                host.close()
            stack.stop(remove=True)
            store.close()
            raise
        live = Live(stack=stack, host=host, engine=eng, work=tmp_path, directory=directory,
                    store=store)
        if eng is not None:
            eng.subscribe(lambda kind, payload: live.events.append((kind, payload)))
        made.append(live)
        return live

    yield make
    for live in made:
        for phone in live.phones.values():
            phone.close()
        live.host.close()
        engine_errors = list(live.engine.errors) if live.engine is not None else []
        live.stack.stop(remove=True)
        assert live.store is not None
        live.store.close()
        assert not live.stack.instance.running()
        assert engine_errors == [], f"the engine hit errors: {engine_errors}"
    leaked = [t for t in threading.enumerate()
              if t.ident not in threads_before and t.is_alive() and not t.daemon]
    assert leaked == [], f"threads left running: {leaked}"


@pytest.fixture()
def own_cluster() -> Iterator[Any]:
    """A PostgreSQL cluster of the test's own (homeline/pgcluster.py), for a test that
    restarts the server: the session's cluster (tests/pg_kit.py) stays up for others."""
    from homeline.pgcluster import PgCluster, PgClusterError, pg_bin_dir

    try:
        pg_bin_dir()
    except PgClusterError as exc:
        pytest.skip(f"needs PostgreSQL's server binaries: scripts/bootstrap.sh ({exc})")
    with PgCluster(durable=False) as cluster:
        yield cluster
