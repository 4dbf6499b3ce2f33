"""bench/cluster.py shares its failover observation with tests/integration/
test_failover.py through tests/failover_kit.py, and its store-cost day with
tests/store/router_writer.py: a rename in either must not leave the benchmark
broken unnoticed (it is not run by the suite). `--help` imports all of it and
starts nothing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_cluster_benchmark_imports_its_shared_helpers_and_starts_nothing() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "cluster.py"), "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--runs" in done.stdout and "--callers" in done.stdout and "--events" in done.stdout
    import failover_kit

    assert {"EngineProcess", "start_pair", "offered_to", "waiting_callers"} <= set(
        dir(failover_kit))
