"""The real `homeline` command, its output piped to a reader that goes away early
(`homeline route states | head -1`): no traceback, no "Exception ignored" on
stderr, and the shell's SIGPIPE status (141) rather than a crash's."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOW = REPO / "dialplans" / "flows" / "main-menu.yaml"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HOMELINE_STATE": str(tmp_path / "state"),
            "HOMELINE_CACHE": str(tmp_path / "cache")}


def _run_with_early_close(args: list[str], tmp_path: Path, lines_read: int
                          ) -> tuple[int, list[bytes], str]:
    """Run ``homeline ARGS``; read ``lines_read`` lines of its stdout, then close the pipe."""
    with subprocess.Popen([sys.executable, "-m", "homeline", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=_env(tmp_path), cwd=tmp_path) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        got = [proc.stdout.readline() for _ in range(lines_read)]
        proc.stdout.close()  # the reader goes away, like `head -1` after its line
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    return code, got, err


@pytest.mark.parametrize("args", [
    ["route", "states"],
    ["route", "states", "--dot"],
    ["flow", "graph", str(FLOW), "--dot-only", "-o", "{tmp}/graph"],
    ["flow", "check", str(FLOW)],
])
def test_reader_closed_before_any_output(args: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = _run_with_early_close(args, tmp_path, lines_read=0)
    assert err == ""
    # flow check of a good flow prints nothing, so the closed pipe is never noticed
    assert code == (0 if args[:2] == ["flow", "check"] else 141)


def test_reader_that_stops_after_one_line_of_a_long_report(tmp_path: Path) -> None:
    # The same broken flow named 2000 times: far more output than a pipe buffer
    # holds, so the command is still writing when the reader leaves (`| head -1`).
    flow = tmp_path / "bad.yaml"
    flow.write_text("flow: bad\nlanguages: [en]\nstart: nowhere\nnodes: {}\n", encoding="utf-8")
    code, got, err = _run_with_early_close(["flow", "check", *[str(flow)] * 2000], tmp_path,
                                           lines_read=1)
    assert got[0].startswith(f"{flow}:-:".encode()) and got[0].endswith(b"]\n")
    assert err == ""
    assert code == 141


def test_the_same_command_unpiped_still_reports_and_exits_1(tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text("flow: bad\nlanguages: [en]\nstart: nowhere\nnodes: {}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "homeline", "flow", "check", str(flow)],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=120,
                          check=False)
    assert done.returncode == 1 and done.stderr == ""
    assert "[dangling-next]" in done.stdout
