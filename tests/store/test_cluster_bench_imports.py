"""bench/cluster.py shares its failover observation with tests/integration/
test_failover.py through tests/failover_kit.py, its two nodes with tests/integration/
test_nodes.py through tests/nodes_kit.py, and its store-cost day with
tests/store/router_writer.py: a rename in either must not leave the benchmark
broken unnoticed (it is not run by the suite). `--help` imports all of it and
starts nothing.

Its route-request-to-ring part reads the engine's router journal (the format
routing/journal.py writes) and the store's call timeline: its pure readers are
checked here on a journal a real `Recorder` wrote, so a change of that format
shows here, not in a benchmark run."""
from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def test_the_cluster_benchmark_imports_its_shared_helpers_and_starts_nothing() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "cluster.py"), "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for option in ("--runs", "--callers", "--events", "--only", "--ring-calls",
                   "--ring-rate", "--ring-agents", "--burst-calls", "--burst-rate",
                   "--backlog", "--backlog-repeats", "--rounds", "--nodes-calls"):
        assert option in done.stdout, option
    assert "{cost,failover,ring,nodes}" in done.stdout
    import failover_kit
    import nodes_kit

    assert {"EngineProcess", "start_pair", "offered_to", "waiting_callers"} <= set(
        dir(failover_kit))
    assert {"start", "engine", "agent", "text", "stop"} <= set(dir(nodes_kit.TwoNodes))


def _bench() -> ModuleType:
    """bench/cluster.py as a module (imported, not run: it starts nothing at import)."""
    if "cluster_bench" in sys.modules:
        return sys.modules["cluster_bench"]
    spec = importlib.util.spec_from_file_location("cluster_bench", REPO / "bench" / "cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster_bench"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _journal(bench: ModuleType) -> list[str]:
    """A real Recorder's journal: two agents come online, b7x1 arrives and is offered at
    once, b7x2 arrives and waits, then agent a2 asks for a break and comes back."""
    from routing.events import (
        AgentMadeAvailable,
        AgentRegistered,
        AgentWentOnBreak,
        CallArrived,
    )
    from routing.journal import Recorder
    from routing.router import Router

    directory = bench.bench_directory(T0, 2)
    out = io.StringIO()
    rec = Recorder(Router.from_directory(directory, now=T0), out, start=T0)
    steps: list[tuple[float, Any]] = [
        (0.0, AgentRegistered("a1")),
        (0.1, CallArrived(call_id="c1", queue_id="billing", language="en", caller="b7x1")),
        (0.2, AgentRegistered("a2")),
        (0.3, AgentWentOnBreak("a2", "tea")),
        (0.4, CallArrived(call_id="c2", queue_id="billing", language="en", caller="b7x2")),
        (0.5, AgentMadeAvailable("a2")),
        (0.6, CallArrived(call_id="c3", queue_id="billing", language="en", caller="b17x1")),
    ]
    for seconds, event in steps:
        rec.handle(event, T0 + timedelta(seconds=seconds))
    return out.getvalue().splitlines()


def test_the_ring_part_reads_the_router_journal_a_real_recorder_writes() -> None:
    bench = _bench()
    journal = bench.read_journal(_journal(bench))
    assert [j.event for j in journal] == ["AgentRegistered", "CallArrived", "AgentRegistered",
                                          "AgentWentOnBreak", "CallArrived",
                                          "AgentMadeAvailable", "CallArrived"]
    assert journal[1].at == (T0 + timedelta(seconds=0.1)).timestamp()
    assert (journal[1].call_id, journal[1].caller) == ("c1", "b7x1")
    assert ("OfferCall", "c1") in journal[1].decisions
    # b7x1 found a1 free; b7x2 waited (a2 on break) and was offered when a2 came back;
    # b17x1 is another SIPp step's caller, not b7x's
    assert bench.arrivals(journal, "b7x") == {"b7x1": ("c1", True), "b7x2": ("c2", False)}
    assert ("OfferCall", "c2") in journal[5].decisions
    # the agents' requests from 0.3 s on: two of them, 0.2 s apart
    backlog = bench.backlog_rate(journal, (T0 + timedelta(seconds=0.25)).timestamp(), 2)
    assert backlog["events"] == 2 and backlog["span_s"] == 0.2
    later = journal[4:6]  # after the first request, up to the last: its decisions count
    assert backlog["decisions"] == sum(len(j.decisions) for j in later)
    assert backlog["decisions_per_s"] == round(backlog["decisions"] / 0.2, 1)
    assert bench.backlog_rate(journal, (T0 + timedelta(seconds=9)).timestamp(), 2)[
        "decisions_per_s"] is None
    summary = bench.backlog_summary([backlog, {**backlog, "decisions_per_s": 40.0},
                                     {**backlog, "decisions_per_s": None}])
    assert summary["decisions_per_s"] == round((backlog["decisions_per_s"] + 40.0) / 2, 1)
    assert summary["each_decisions_per_s"] == [backlog["decisions_per_s"], 40.0, None]
    paced = bench.decision_rate(journal, T0.timestamp(), (T0 + timedelta(seconds=1)).timestamp())
    assert paced["events"] == 7
    assert paced["decisions"] == sum(len(j.decisions) for j in journal)
    assert paced["span_s"] == 0.6  # the first event to the last line with a decision


def test_a_journal_being_written_is_read_up_to_its_last_whole_line() -> None:
    bench = _bench()
    lines = _journal(bench)
    text = "\n".join(lines) + "\n" + lines[-1][:20]
    assert bench.complete_lines(text) == lines
    assert bench.complete_lines("") == []


def test_ring_latency_is_the_route_request_to_the_invite_at_the_phone_for_calls_offered_at_once(
        ) -> None:
    bench = _bench()
    t = T0.timestamp()
    incoming = [(t + 0.020, '"b7x1" <sip:b7x1@127.0.0.1>'),
                (t + 0.015, '"b7x1" <sip:b7x1@127.0.0.1>'),   # the first INVITE counts
                (t + 0.050, '"b17x1" <sip:b17x1@127.0.0.1>'),  # another step's caller
                (t + 2.000, '"b7x2" <sip:b7x2@127.0.0.1>'),
                (t + 0.030, '"b7x10" <sip:b7x10@127.0.0.1>'),
                (t + 0.210, '"b7x3" <sip:b7x3@127.0.0.1>')]
    rings = bench.first_rings(incoming, "b7x")
    assert rings == {"b7x1": t + 0.015, "b7x2": t + 2.0, "b7x10": t + 0.030,
                     "b7x3": t + 0.210}

    class Ev:
        def __init__(self, at: float, event: str) -> None:
            self.at, self.event = datetime.fromtimestamp(at, UTC), event

    timeline = {"c1": [Ev(t, "enter"), Ev(t + 0.001, "offered"), Ev(t + 0.5, "offered")],
                "c2": [Ev(t + 0.1, "enter"), Ev(t + 1.9, "offered")],
                "c10": [Ev(t + 0.01, "enter"), Ev(t + 0.012, "offered")],
                "c3": [Ev(t + 0.2, "enter"), Ev(t + 0.201, "offered")],
                "c11": []}
    enter, offered = bench.first_at(timeline, "enter"), bench.first_at(timeline, "offered")
    assert enter["c1"] == t and offered["c1"] == t + 0.001 and "c11" not in enter
    calls = {"b7x1": ("c1", True), "b7x2": ("c2", False), "b7x10": ("c10", True),
             "b7x3": ("c3", True), "b7x11": ("c11", True)}
    figures = bench.ring_figures(calls, enter, offered, rings)
    assert (figures["route_requests"], figures["offered_at_once"],
            figures["waited_for_an_agent"], figures["rang"],
            figures["not_seen_ringing"]) == (5, 4, 1, 3, 1)
    # b7x1: 15 ms (1 ms to the decision, 14 ms to the ring); b7x10: 20 ms (2 + 18);
    # b7x3: 10 ms (1 + 9); b7x11 never rang, b7x2 waited for an agent
    assert figures["p50_ms"] == 15.0 and figures["p95_ms"] == 20.0
    assert figures["request_to_decision"]["p95_ms"] == 2.0
    assert figures["decision_to_ring"]["p50_ms"] == 14.0
    assert bench.ratio(30.0, 20.0) == 1.5 and bench.ratio(None, 20.0) is None
    assert bench.ratio(3.0, 0.0) is None


def test_sessions_take_turns_abba_and_a_stores_calls_pool_over_its_sessions() -> None:
    bench = _bench()
    assert bench.abba(["sqlite", "postgresql"], 2) == ["sqlite", "postgresql", "postgresql",
                                                      "sqlite"]
    assert bench.abba(["a", "b"], 3) == ["a", "b", "b", "a", "a", "b"]
    t = T0.timestamp()
    one = bench.Calls({"b1x1": ("c1", True)}, {"c1": t}, {"c1": t + 0.001},
                      {"b1x1": t + 0.010}, offered_calls=1, ok=1)
    two = bench.Calls({"b5x1": ("c9", True), "b5x2": ("c10", False)},
                      {"c9": t, "c10": t}, {"c9": t + 0.002, "c10": t + 3.0},
                      {"b5x1": t + 0.030, "b5x2": t + 3.01}, offered_calls=3, ok=2, failed=1,
                      causes={"TimeoutOnRecv": 1})
    figures = bench.pooled([one, two])
    assert (figures["calls"], figures["ok"], figures["failed"]) == (4, 3, 1)
    assert (figures["route_requests"], figures["rang"], figures["waited_for_an_agent"]) == (
        3, 2, 1)
    assert figures["max_ms"] == 30.0 and figures["failure_causes"] == {"TimeoutOnRecv": 1}


def test_the_nodes_ring_steps_take_turns_abba_with_each_sides_calls() -> None:
    bench = _bench()
    assert bench.nodes_steps(10) == [("same", 5), ("cross", 5), ("cross", 5), ("same", 5)]
    assert bench.nodes_steps(3) == [("same", 2), ("cross", 2), ("cross", 1), ("same", 1)]
    assert bench.nodes_steps(1) == [("same", 1), ("cross", 1)]  # no empty SIPp step
    for calls in range(1, 8):
        plan = bench.nodes_steps(calls)
        for side in ("same", "cross"):
            assert sum(n for s, n in plan if s == side) == calls


def test_the_nodes_failover_figures_are_the_failover_parts_with_the_nodes_setup_said() -> None:
    bench = _bench()
    ok = [bench.Run(n, failover_s=0.4 + n / 10, takeover_s=0.1, in_order=True)
          for n in (1, 2, 3)]
    figures = bench.nodes_failover_figures(ok, 3, 3)
    assert figures["failover_s"]["each"] == [0.5, 0.6, 0.7]
    assert figures["failover_s"]["p95"] == 0.7 and figures["target_met"] is True
    assert "trunk" in figures["pair"] and "node a's engine" in figures["measured"]
    slow = [*ok[:2], bench.Run(3, failover_s=3.5, takeover_s=3.1, in_order=True)]
    assert bench.nodes_failover_figures(slow, 3, 3)["target_met"] is False
    lost = [*ok[:2], bench.Run(3, failover_s=0.5, lost=1, error="AssertionError: x")]
    figures = bench.nodes_failover_figures(lost, 3, 3)
    assert figures["callers_lost"] == 1 and figures["target_met"] is False
    assert figures["failed_runs"][0]["error"] == "AssertionError: x"
    assert bench.nodes_failover_figures(ok[:2], 3, 3)["target_met"] is False  # a run missing
