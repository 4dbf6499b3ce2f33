"""Soak: bounded resources of the engine over tens of thousands of calls.

Callers (SIPp, bench/sipp/uac_press_1_hang_up_on_hold.xml) press 1 in the main
menu, wait on hold (no agent is registered, so nobody is offered the call) and
hang up 2.5 s after the answer, in rounds: a warm-up round (``--warmup`` calls, at
least the 10,000 call timelines the engine keeps in memory) and then
``--rounds`` rounds of ``--calls`` calls, at ``--rate`` calls/s, all through the
engine.

The engine runs in a child process, wired as ``homeline engine run`` wires it
(the router over the SQLite store, the FastAGI IVR, the AMI executor) but on
this benchmark's own Asterisk instance and free loopback ports
(``homeline engine run`` itself serves the standard ports of the main
instance). After each round, once Asterisk has no channel left and
``--idle-wait-s`` has passed, the parent reads the child's RSS and thread count
(/proc/<pid>/status) and its open file descriptors (/proc/<pid>/fd); the child
reports its open FastAGI sessions and their cap (every call is a coroutine on
one event loop, voice/fastagi.py: no thread per call). Targets: after the
warm-up, each further 10,000 calls grow RSS by less than 2 MB; threads, sessions
and fds flat.

RSS is read twice: as it is, and after the child has handed its freed memory
back (``gc.collect()`` and glibc's ``malloc_trim(0)``). The first includes the
allocator's high-water mark: when the machine is busy the engine falls behind
for a moment, AMI events pile up in its queues, and glibc keeps the memory they
took after they are gone; on this shared 2-core machine that alone moved the
raw figure by up to 10 MB a round. The second is memory still in use, the one a
leak grows, and the one ``target_met`` judges; Python's count of allocated
blocks (``sys.getallocatedblocks``) is printed beside it. ``HOMELINE_SOAK_TRACE=1``
adds a tracemalloc diff between rounds (what grew, by traceback).

    .venv/bin/python bench/soak.py [--warmup 10000] [--rounds 2] [--calls 10000] [--rate 100]

Every process started here (Asterisk, the engine child, SIPp) is stopped by its
PID. The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from benchkit import BenchStack, bench_directory, channel_count, drain, run_sipp  # noqa: E402

from homeline.stack import Ports, free_port, free_rtp_range  # noqa: E402

TARGET_RSS_GROWTH_MB_PER_10K = 2.0
INSTANCE = "soak"


def proc_figures(pid: int) -> dict[str, Any]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


# -- the child: the engine --------------------------------------------------------------
# Per-call state the engine and the router keep (private attributes, read only to
# say what grows; a name that is not there any more is left out).
_STATE = {"router_calls": ("_router", "_calls"), "router_last_agent": ("_router", "_last_agent"),
          "translator_calls": ("_translator", "calls"), "executor_held": ("_executor", "_held"),
          "in_ivr": ("_in_ivr",)}


def state_sizes(engine: Any) -> dict[str, int]:
    sizes = {}
    for name, path in _STATE.items():
        value: Any = engine
        for attr in path:
            value = getattr(value, attr, None)
        if value is not None and hasattr(value, "__len__"):
            sizes[name] = len(value)
    return sizes


def sqlite_memory_mb() -> float | None:
    """What SQLite holds now, page caches included (sqlite3_memory_used(), the
    library Python's sqlite3 module is linked with); None where it cannot be read."""
    import ctypes

    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return None
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return round(lib.sqlite3_memory_used() / 2**20, 2)


def serve_engine(spec: dict[str, Any]) -> int:
    """Run the engine against the parent's instance until stdin closes; answer
    'stats' lines with one JSON line."""
    from homeline.paths import DIALPLANS_DIR
    from homeline.pbx.process import AsteriskInstance
    from homeline.pbx.sandbox import ensure_root
    from ivr.loader import load_flow
    from routing.router import Router
    from store import SqliteStore

    now = datetime.fromisoformat(spec["now"])
    directory = bench_directory(now, spec["agents"])
    state = Path(spec["state_dir"])
    stack = BenchStack(INSTANCE, directory, state, Ports(**spec["ports"]))
    stack.instance = AsteriskInstance(ensure_root(progress=lambda _m: None), INSTANCE)
    store = SqliteStore(state / "engine.sqlite3")
    store.sync_agents(directory)
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    engine = stack.start_engine(Router(store.apply_hours(directory), now=now), lambda: flow,
                                store=store)
    trace = os.environ.get("HOMELINE_SOAK_TRACE") == "1"
    if trace:
        import tracemalloc
        tracemalloc.start(int(os.environ.get("HOMELINE_SOAK_TRACE_FRAMES", "8")))
    previous = None
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "trim":
                # hand freed memory back: Python's collector, then glibc's heap
                # (malloc_trim(3)); what RSS keeps after this is memory still in use
                import ctypes
                import gc
                gc.collect()
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                print(json.dumps({"trimmed": True}), flush=True)
            elif line.split()[:1] == ["stats"]:
                agi = engine._agi  # the engine's FastAGI server (voice.fastagi)
                figures: dict[str, Any] = {
                    "agi_sessions": agi.sessions(), "agi_max_calls": agi.max_calls,
                    "errors": len(engine.errors), "timelines": len(engine.timelines()),
                    "state_sizes": state_sizes(engine),
                    "py_blocks": sys.getallocatedblocks(),
                    "sqlite_mb": sqlite_memory_mb()}
                if trace and line.split()[1:] == ["idle"]:
                    snap = tracemalloc.take_snapshot().filter_traces(
                        [tracemalloc.Filter(False, tracemalloc.__file__)])
                    figures["py_traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
                    if previous is not None:
                        top = snap.compare_to(previous, "traceback")[:12]
                        figures["py_growth"] = [
                            {"kb": round(d.size_diff / 1024, 1), "count": d.count_diff,
                             "where": [f"{f.filename.split('/')[-2:]}:{f.lineno}"
                                       for f in d.traceback][-6:]} for d in top]
                    previous = snap
                print(json.dumps(figures), flush=True)
    finally:
        engine.stop()
        store.close()
    return 0


# -- the parent ------------------------------------------------------------------------
class EngineChild:
    def __init__(self, spec: dict[str, Any], log: Path) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-engine", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the engine child did not start (see {log})")

    def trimmed_rss_mb(self) -> float:
        """RSS once the child has returned its freed memory to the system."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("trim\n")
        self.proc.stdin.flush()
        json.loads(self.proc.stdout.readline())
        return float(proc_figures(self.proc.pid)["rss_mb"])

    def stats(self, idle: bool = True) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats idle\n" if idle else "stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the child stops its engine and exits
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its PID
                self.proc.wait(5)
        self._log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--idle-wait-s", type=float, default=5.0,
                        help="pause after a round before reading (the call log's writer and "
                             "the router settle)")
    parser.add_argument("--serve-engine", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_engine:
        return serve_engine(json.loads(args.serve_engine))

    now = datetime.now(UTC)
    agents = 2  # in the directory, never registered: every caller waits on hold
    work = Path(tempfile.mkdtemp(prefix="homeline-soak-"))
    rtp_start, _ = free_rtp_range(6000)
    ports = Ports(sip=free_port(2), ami=free_port(), agi=free_port(),
                  rtp_start=rtp_start, rtp_end=rtp_start + 5999)
    stack = BenchStack(INSTANCE, bench_directory(now, agents), work / "state", ports,
                       progress=print)
    spec = {"now": now.isoformat(), "agents": agents, "state_dir": str(work / "state"),
            "ports": asdict(ports)}
    rounds: list[dict[str, Any]] = []
    child: EngineChild | None = None
    try:
        stack.start_pbx()
        child = EngineChild(spec, work / "engine.log")
        base = {"round": "start", "calls_total": 0, **proc_figures(child.proc.pid),
                **child.stats()}
        base["rss_trimmed_mb"] = child.trimmed_rss_mb()
        rounds.append(base)
        print(f"engine child pid {child.proc.pid}: {base}", flush=True)
        # a caller spends about 3 s in Asterisk; far more channels than that means
        # Asterisk (or the engine) is not keeping up: stop SIPp rather than pile up
        max_channels = max(200, args.rate * 15)
        total = 0
        plan = [("warm-up", args.warmup)] + [(f"round {n}", args.calls)
                                             for n in range(1, args.rounds + 1)]
        for name, calls in plan:
            step = run_sipp("uac_press_1_hang_up_on_hold.xml", "100", args.rate, calls,
                            ports.sip, work, max_s=calls / args.rate + 60,
                            healthy=lambda: (channel_count(stack.instance) or 0) < max_channels)
            busy = {**proc_figures(child.proc.pid), **child.stats(idle=False)}
            drain(stack.instance, 60)
            time.sleep(args.idle_wait_s)
            total += calls
            row = {"round": name, "calls": calls, "calls_total": total, "ok": step.ok,
                   "failed": step.failed, "failure_causes": step.causes,
                   "threads_right_after": busy["threads"],
                   "agi_sessions_right_after": busy["agi_sessions"],
                   **proc_figures(child.proc.pid), **child.stats()}
            row["rss_trimmed_mb"] = child.trimmed_rss_mb()
            rounds.append(row)
            print(f"  {name}: {step.ok}/{calls} ok, {step.failed} failed; after the round "
                  f"{busy['threads']} threads ({busy['agi_sessions']} FastAGI sessions); "
                  f"after {args.idle_wait_s:g} s idle: RSS {row['rss_mb']} MB "
                  f"({row['rss_trimmed_mb']} MB trimmed), "
                  f"{row['threads']} threads ({row['agi_sessions']} FastAGI sessions), "
                  f"{row['fds']} fds",
                  flush=True)
    finally:
        if child is not None:
            child.stop()
        stack.stop(remove=True)
        shutil.rmtree(work, ignore_errors=True)
    after_warmup = [r for r in rounds if str(r["round"]).startswith("round")]
    warm = next((r for r in rounds if r["round"] == "warm-up"), None)

    def growth_per_10k(key: str) -> list[float]:
        out, previous = [], warm
        for r in after_warmup:
            if previous is not None:
                out.append(round((r[key] - previous[key]) * 10_000 / r["calls"], 2))
            previous = r
        return out

    growth = growth_per_10k("rss_mb")
    trimmed = growth_per_10k("rss_trimmed_mb")
    figures = {
        "benchmark": "soak",
        "engine": "child process, wired as `homeline engine run` (router over the SQLite "
                  "store, FastAGI IVR, AMI executor), /proc/<pid> read by the parent",
        "rate_calls_per_s": args.rate,
        "calls_total": sum(int(r.get("calls", 0)) for r in rounds),
        "failed_calls": sum(int(r.get("failed", 0)) for r in rounds),
        "rss_growth_mb_per_10k_after_warmup": growth,
        "rss_trimmed_growth_mb_per_10k_after_warmup": trimmed,
        "py_blocks_growth_per_10k_after_warmup": growth_per_10k("py_blocks"),
        "target_rss_growth_mb_per_10k": TARGET_RSS_GROWTH_MB_PER_10K,
        "target_met": bool(trimmed) and max(trimmed) < TARGET_RSS_GROWTH_MB_PER_10K,
        "rss_mb": [r["rss_mb"] for r in rounds],
        "rss_trimmed_mb": [r["rss_trimmed_mb"] for r in rounds],
        "py_blocks": [r["py_blocks"] for r in rounds],
        "sqlite_mb": [r.get("sqlite_mb") for r in rounds],
        "threads_idle": [r["threads"] for r in rounds],
        "threads_right_after_round": [r.get("threads_right_after") for r in rounds[1:]],
        "agi_sessions_idle": [r["agi_sessions"] for r in rounds],
        "agi_max_calls": rounds[-1].get("agi_max_calls") if rounds else None,
        "fds": [r["fds"] for r in rounds],
        "engine_errors": rounds[-1].get("errors") if rounds else None,
        "rounds": rounds,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
