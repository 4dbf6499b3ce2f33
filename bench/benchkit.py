"""What the benchmarks share: the benchmark's own Asterisk instance (the stack's
configuration plus app_queue, a queue for the reference and a millisecond log),
a SIPp step with the cause of every failed call, and percentiles.

Everything runs on loopback ports the kernel just said were free; every process
started here is stopped by its own PID (SIPp runs to its call count or its
``-timeout``, then it is reaped; one past its time is killed).
"""
from __future__ import annotations

import csv
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from homeline.stack import PbxStack, free_port, free_rtp_range

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE / "sipp"
QUEUE_NUMBER = "400"   # the app_queue reference: the first menu, then Queue(bench-billing)
QUEUE_NAME = "bench-billing"
SIP_TRANSACTION_TIMEOUT_S = 32.0  # 64*T1, RFC 3261 section 17.1.1.2

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def bench_directory(now: datetime, agents: int) -> Any:
    """``agents`` agents a1..aN, all billing and tech, English, open for the next hours (UTC)."""
    from routing import Directory

    start, end = max(0, now.hour - 1), min(24, now.hour + 2)
    if now.hour >= 22:
        start, end = 22, 24
    window = f"{DAYS[now.weekday()]} {start:02d}:00-{end:02d}:00"
    queue = {"aht_s": 60, "wrap_up_s": 1, "languages": ["en", "es", "fr"],
             "selection": "longest-idle"}
    data = {
        "policy": {"ring_timeout_s": 12, "max_misses": 3, "week_zone": "UTC",
                   "hours": {"notice_hours": 0, "min_weekly_hours": 1, "max_weekly_hours": 30,
                             "min_window_minutes": 30}},
        "queues": {"billing": {**queue, "skills": {"billing": 1}},
                   "tech": {**queue, "skills": {"tech": 1}},
                   "general": {**queue, "skills": {}}},
        "agents": {f"a{n}": {"zone": "UTC", "skills": {"billing": 3, "tech": 3},
                             "languages": {"en": 5}, "windows": [window]}
                   for n in range(1, agents + 1)},
    }
    return Directory.from_dict(data, source="<benchmark directory>")


class BenchStack(PbxStack):
    """The stack's own configuration, plus what only the benchmark needs.

    - ``queues.conf``: app_queue declines to load without it (app_queue.c
      load_module: reload_queues() fails with "No call queueing config file
      (queues.conf), so no call queues"), which is the "app_queue declined to
      load" in the instance log. Its queue ``bench-billing`` rings the same agents
      the router offers calls to (static members, PJSIP/<agent>), least recently
      called first like the billing queue's longest-idle; app_queue opens no port.
    - extension 400 in ``[homeline-inbound]``: the first menu in dialplan, then
      ``Queue(bench-billing)``, logging the moment the caller enters the queue.
    - ``logger.conf``: timestamps to the microsecond (``dateformat``), so the
      benchmark can read timings from Asterisk's own log lines.
    """

    def render(self, moh_directory: str = "/usr/share/asterisk/moh") -> dict[str, str]:
        files = super().render(moh_directory)
        members = "\n".join(f"member => PJSIP/{a.id}" for a in self.directory.agents)
        ring = int(round(self.directory.policy.ring_timeout_s))
        files["queues.conf"] = f"""; benchmark only (bench/benchkit.py): the app_queue reference
[general]
persistentmembers=no
shared_lastcall=yes

[{QUEUE_NAME}]
strategy=leastrecent
timeout={ring}
retry=1
wrapuptime=1
ringinuse=no
joinempty=yes
leavewhenempty=no
announce-frequency=0
announce-position=no
{members}
"""
        marker = "[homeline-inbound]\n"
        text = files["extensions.conf"]
        if marker not in text:
            raise RuntimeError("extensions.conf has no [homeline-inbound] context")
        text = text.replace(marker, marker + "include => homeline-bench-queue\n", 1)
        text += f"""
; benchmark only (bench/benchkit.py): the app_queue reference for the ring time
[homeline-bench-queue]
exten => {QUEUE_NUMBER},1,Answer(,i)
 same => n,Set(CHANNEL(language)=en)
 same => n,Read(CHOICE,homeline/welcome&homeline/main-menu,1,,1,5)
 same => n,Log(NOTICE,homeline-bench queue-join ${{CALLERID(num)}} ${{STRFTIME(,,%s.%6q)}})
 same => n,Queue({QUEUE_NAME},,,,60)
 same => n,Hangup()
"""
        files["extensions.conf"] = text
        files["logger.conf"] = files["logger.conf"].replace(
            "[general]\n", "[general]\ndateformat=%F %T.%6q\n", 1)
        return files


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 1)


@dataclass
class SippFailure:
    call_number: int
    cause: str


@dataclass
class Step:
    service: str
    rate: int
    calls: int
    step_id: int
    ok: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    sipp_exit: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    failures: list[SippFailure] = field(default_factory=list)
    started_wall: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.failed and self.ok >= self.calls

    def summary(self) -> dict[str, Any]:
        return {"service": self.service, "rate": self.rate, "calls": self.calls,
                "ok": self.ok, "failed": self.failed, "elapsed_s": round(self.elapsed_s, 2),
                "sipp_exit": self.sipp_exit, "failure_causes": self.causes,
                "throughput_cps": round(self.ok / self.elapsed_s, 1) if self.elapsed_s else 0.0}


_CALL_ID = re.compile(r"Call-I[dD]:?\s*'?(\d+)-\d+@[^\s,']*'?")
_step_ids = iter(range(1, 1_000_000))


def caller_of(step_id: int, call_number: int) -> str:
    """The caller id the scenarios send (From: b<step>x<call number>)."""
    return f"b{step_id}x{call_number}"


def run_sipp(scenario: str, service: str, rate: int, calls: int, sip_port: int, work: Path,
             *, max_s: float, healthy: Callable[[], bool] | None = None) -> Step:
    """``calls`` SIPp calls at ``rate`` calls/s to ``service``; waits at most ``max_s`` s."""
    step = Step(service, rate, calls, next(_step_ids))
    stats = work / f"stats-{step.step_id}.csv"
    argv = [
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(SIPP_DIR / scenario), "-s", service,
        "-i", "127.0.0.1", "-p", str(free_port(2)), "-mp", str(free_rtp_range(4)[0]),
        "-r", str(rate), "-m", str(calls), "-l", str(max(rate * 10, 50)),
        "-key", "step", str(step.step_id),
        "-timeout", f"{int(max_s)}s", "-timeout_error",
        "-nostdin", "-trace_stat", "-stf", str(stats), "-fd", "1",
        "-trace_err", "-error_file", str(work / f"errors-{step.step_id}.log"),
        "-recv_timeout", "20000",
    ]
    step.started_wall = time.time()
    started = time.monotonic()
    err_path = work / f"sipp-{step.step_id}.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + max_s + 30
    stopped = False
    while proc.poll() is None:
        if time.monotonic() > deadline or (healthy is not None and not healthy()):
            proc.kill()  # our own child, by its PID: past its time, or Asterisk overloaded
            stopped = True
            break
        time.sleep(2.0)
    proc.wait()
    stderr = err_path.read_text(errors="replace")
    step.elapsed_s = time.monotonic() - started
    step.sipp_exit = proc.returncode
    if stats.exists():
        with stats.open(newline="") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
        if len(rows) >= 2:
            header, last = rows[0], rows[-1]
            step.ok = int(last[header.index("SuccessfulCall(C)")])
            step.failed = int(last[header.index("FailedCall(C)")])
            # SIPp's per-cause counters ("FailedTimeoutOnRecv(C)" and the like)
            step.causes = {h[len("Failed"):-3]: int(v) for h, v in zip(header, last, strict=False)
                           if h.startswith("Failed") and h.endswith("(C)")
                           and h != "FailedCall(C)" and v.strip() not in ("", "0")}
    if step.ok + step.failed < calls and proc.returncode != 0:
        step.failed = max(step.failed, calls - step.ok)
        if not step.causes:
            step.causes = {"sipp-exit": proc.returncode}
            if stderr.strip():
                step.causes[stderr.strip().splitlines()[-1][:120]] = 1
    if stopped:
        step.causes["stopped-by-benchmark"] = 1
        step.failed = max(step.failed, calls - step.ok)
    errors = work / f"errors-{step.step_id}.log"
    if errors.exists():
        step.failures = sipp_failures(errors.read_text(errors="replace"))
    return step


# Each entry of SIPp's error file starts "<date>\t<time>\t<epoch>: " and may run
# over several lines, or on into the next entry without a newline.
_ENTRY = re.compile(r"\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d+\t\d+\.\d+: ")


def sipp_failures(text: str) -> list[SippFailure]:
    """The calls SIPp aborted, with its words for why. Other entries ("Dead call
    ...": a message for a call already over, such as a retransmission) name no
    failed call and are left out."""
    failures = []
    for entry in _ENTRY.split(text):
        entry = " ".join(entry.split())
        if "borting call" not in entry:
            continue
        m = _CALL_ID.search(entry)
        if m:
            cause = entry[m.end():].lstrip(" ,'").strip()[:200]
            failures.append(SippFailure(int(m.group(1)), cause))
    return failures


def drain(instance: Any, limit_s: float = 60.0) -> None:
    """Wait until Asterisk has no channel left, so no step pays for the one before."""
    from homeline.pbx.errors import AsteriskCliError

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            text = instance.cli("core show channels count")
        except AsteriskCliError:  # a busy Asterisk may not answer the CLI in time
            continue
        if any(line.split()[:1] == ["0"] and "active channel" in line
               for line in text.splitlines()):
            return
        time.sleep(0.5)


def channel_count(instance: Any) -> int | None:
    """Asterisk's active channels now (None if the CLI does not answer)."""
    from homeline.pbx.errors import AsteriskCliError

    try:
        text = instance.cli("core show channels count")
    except AsteriskCliError:
        return None
    for line in text.splitlines():
        if "active channel" in line:
            return int(line.split()[0])
    return None


def log_lines(instance: Any, name: str = "messages.log") -> list[str]:
    path = instance.log_dir / name
    return path.read_text(errors="replace").splitlines() if path.exists() else []


_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\]")


def stamp(line: str) -> float | None:
    """Seconds since the epoch of an Asterisk log line (logger.conf dateformat above)."""
    m = _STAMP.match(line)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()

