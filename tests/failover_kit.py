"""What the failover test (tests/integration/test_failover.py) and the cluster
benchmark (bench/cluster.py) share: `homeline engine run` in a child process, a
pair of engines for one Asterisk on one PostgreSQL store (node a leads, node b
waits), `homeline cluster status`, and the test's view of the stored router
state (the waiting line; the first call offered to an agent, the standby's
first routing decision after a failover).

A module of its own (not a conftest) so the benchmark imports it too:
``sys.path`` holds ``tests/`` (pytest's ``pythonpath``; the benchmark inserts it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from integration.conftest import wait_for

REPO = Path(__file__).resolve().parents[1]


class EngineProcess:
    """`homeline engine run` in a child process; its output kept in a file."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self, serving_lines: int, timeout: float = 30) -> None:
        ok = wait_for(lambda: self.text().count("engine serving") >= serving_lines
                      or self.proc.poll() is not None, timeout)
        assert ok and self.proc.poll() is None, f"the engine did not start:\n{self.text()}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


def caller_of(leg: Any) -> str:
    """The caller's number an agent's leg shows (its remote URI's user part)."""
    return str(leg.remote_uri).split("sip:", 1)[-1].split("@", 1)[0]


def engine_argv(agents_file: Path, url: str, node: str, state_dir: Path,
                journal: Path | None = None) -> list[str]:
    """`homeline engine run` as node ``node`` of the stack in ``state_dir`` on store ``url``."""
    return [sys.executable, "-m", "homeline", "engine", "run", "--agents", str(agents_file),
            "--db", url, "--node", node, "--stack", str(state_dir), "--flow", "main-menu",
            "--no-web", *(["--journal", str(journal)] if journal is not None else [])]


def start_pair(argv_a: list[str], argv_b: list[str], work: Path,
               engines: dict[str, EngineProcess]) -> None:
    """Node a, which leads with epoch 1 (serving), then node b, which waits as standby.
    Each is put in ``engines`` as soon as it is started (the caller stops them)."""
    engines["a"] = EngineProcess(argv_a, work / "engine-a.log")
    engines["a"].wait_serving(1)
    assert "leading with epoch 1 (node a)" in engines["a"].text(), engines["a"].text()
    engines["b"] = EngineProcess(argv_b, work / "engine-b.log")
    assert wait_for(lambda: "standby: waiting to lead" in engines["b"].text(), 30), \
        engines["b"].text()
    assert "node a leads with epoch 1" in engines["b"].text(), engines["b"].text()


def cluster_status(url: str) -> str:
    """`homeline cluster status --db URL`'s output (it must exit 0)."""
    done = subprocess.run([sys.executable, "-m", "homeline", "cluster", "status", "--db", url],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def waiting_lines(status: str) -> list[str]:
    """The callers `cluster status` lists as waiting, in its order."""
    lines = status.split("waiting calls", 1)[1].splitlines()[1:]
    return [x.split(" caller ", 1)[1].split()[0] for x in lines if x.startswith("  ")
            and " caller " in x]


def waiting_callers(store: Any) -> list[str]:
    """The stored router state's waiting callers, in the order they wait."""
    snap = store.load_router_snapshot()
    if snap is None:
        return []
    line = sorted((c for c in snap.calls if c.phase == "waiting"), key=lambda c: (c.key, c.seq))
    return [c.arrival.caller or "" for c in line]


def offered_to(store: Any, agents: Iterable[str]) -> bool:
    """Whether the stored router state has a call offered to (or with) one of ``agents``:
    seen after a failover, the standby's first routing decision."""
    snap = store.load_router_snapshot()
    wanted = set(agents)
    return snap is not None and any(c.agent in wanted for c in snap.calls)


def first_offer_at(store: Any, agents: Iterable[str], timeout: float = 30) -> float | None:
    """When (``time.monotonic``) the stored router state first showed a call offered
    to one of ``agents`` (polled every 20 ms), or None within ``timeout``."""
    import time

    seen: list[float] = []

    def offered() -> bool:
        if offered_to(store, agents):
            seen.append(time.monotonic())
            return True
        return False

    return seen[0] if wait_for(offered, timeout, step=0.02) else None


class StandbyPair:
    """One Asterisk and two engine processes for it on the store ``url``: node a leads
    (epoch 1), node b waits as standby (`start_pair`); the SIP parties (``parties``:
    `Phones`), the test's own store connection (``watch``) and, with ``journal``,
    the router journal both engines write (``journal``: its path). `stop` stops
    everything, whatever state the test left it in."""

    def __init__(self, work: Path, url: str, agents: dict[str, dict[str, Any]], tag: str,
                 *, journal: bool = False, **directory_kw: Any) -> None:
        from datetime import UTC, datetime

        import yaml
        from integration.conftest import directory_for

        from homeline.stack import PbxStack
        from store import open_store

        self.work, self.url = work, url
        self.directory = directory_for(agents, datetime.now(UTC), **directory_kw)
        self.agents_file = work / "agents.yaml"
        self.agents_file.write_text(yaml.safe_dump(self.directory.to_dict(), sort_keys=False),
                                    encoding="utf-8")
        name = f"{tag}{os.getpid()}"
        self.stack = PbxStack(name, self.directory, work / name)
        self.journal = work / "router.jsonl" if journal else None
        self.engines: dict[str, EngineProcess] = {}
        self.host: Any = None
        self.phones: list[Any] = []
        self.parties: Phones | None = None
        self.watch = open_store(url)  # the test's own reads of the store

    def argv(self, node: str) -> list[str]:
        return engine_argv(self.agents_file, self.url, node, self.stack.state_dir,
                           self.journal)

    def start(self) -> Phones:
        """The Asterisk, node a's engine (leading), node b's (standby), the SIP host."""
        from softphone import SoftphoneHost

        self.stack.start_pbx()
        start_pair(self.argv("a"), self.argv("b"), self.work, self.engines)
        self.host = SoftphoneHost()
        self.parties = Phones(self.host, self.stack)
        self.parties.made = self.phones
        return self.parties

    def stop(self) -> None:
        self.watch.close()
        stop_all(self.phones, self.host, self.engines.values(), self.stack)


class Phones:
    """The test's SIP parties on one Asterisk: agents' softphones that answer after
    0.3 s, and callers who dial the support number and press 1 (billing; or another
    key). Every one is kept in ``made`` for the caller's cleanup."""

    def __init__(self, host: Any, stack: Any) -> None:
        self.host, self.stack = host, stack
        self.sip = f"sip:100@127.0.0.1:{stack.ports.sip}"
        self.made: list[Any] = []

    def agent(self, agent_id: str) -> Any:
        from softphone import AgentPhone

        phone = AgentPhone(self.host, agent_id, server=f"127.0.0.1:{self.stack.ports.sip}",
                           password=self.stack.agent_secret(agent_id), answer_delay=0.3)
        self.made.append(phone)
        phone.wait_registered(10)
        return phone

    def caller(self, number: str, key: str = "1") -> Any:
        """A caller who presses ``key`` at the menu (1 billing, 2 tech: main-menu.yaml)."""
        import time

        from softphone import TestCaller

        c = TestCaller(self.host, number)
        self.made.append(c)
        leg = c.call(self.sip)
        leg.wait_confirmed(15)
        time.sleep(0.8)
        leg.send_dtmf(key)
        return leg


def stop_all(phones: Iterable[Any], host: Any, engines: Iterable[EngineProcess],
             stack: Any) -> None:
    """What a failover or restart run started, stopped in order: the SIP parties (each
    one, whatever the others do), their host, the engine processes, the Asterisk."""
    for phone in phones:
        try:
            phone.close()
        except Exception:  # noqa: BLE001 - keep closing the rest
            pass
    if host is not None:
        host.close()
    for engine in engines:
        engine.stop()
    stack.stop(remove=True)
