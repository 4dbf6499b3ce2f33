"""Call-path benchmark: SIPp at stepped call rates through

  (a) Answer -> FastAGI IVR (dialplans/flows/main-menu.yaml, with the router
      behind it) -> Hangup, extension 300, and
  (b) the same menu written in plain dialplan (Read/GotoIf), extension 200,

in one run on one Asterisk. Each caller presses 1 half a second after the
answer (RFC 4733). Steps go up until one has a failed call; each step starts
with Asterisk idle. For each path the figure is the most calls completed per
second in a step with zero failures; the ratio is a/b (target >= 0.7). The
highest offered rate with zero failures is reported too.

    .venv/bin/python bench/call_path.py [--rates 10,20,40,80] [--step-s 6]

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from homeline.demo import demo_directory  # noqa: E402
from homeline.paths import DIALPLANS_DIR  # noqa: E402
from homeline.stack import PbxStack, Ports, free_port, free_rtp_range  # noqa: E402

SCENARIO = HERE / "sipp" / "uac_press_1.xml"


def run_step(service: str, rate: int, seconds: float, sip_port: int, work: Path) -> dict:
    calls = max(1, int(rate * seconds))
    stats = work / f"stats-{service}-{rate}.csv"
    argv = [
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(SCENARIO), "-s", service,
        "-i", "127.0.0.1", "-p", str(free_port(2)), "-mp", str(free_rtp_range(4)[0]),
        "-r", str(rate), "-m", str(calls), "-l", str(rate * 10),
        "-timeout", f"{int(seconds + 40)}s", "-timeout_error",
        "-nostdin", "-trace_stat", "-stf", str(stats), "-fd", "1",
        "-recv_timeout", "20000",
    ]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True,
                          timeout=seconds + 90, check=False)
    elapsed = time.monotonic() - started
    ok = failed = 0
    if stats.exists():
        with stats.open(newline="") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
        if len(rows) >= 2:
            header, last = rows[0], rows[-1]
            ok = int(last[header.index("SuccessfulCall(C)")])
            failed = int(last[header.index("FailedCall(C)")])
    if ok + failed < calls and done.returncode != 0:
        failed = max(failed, calls - ok)
    return {"service": service, "rate": rate, "calls": calls, "ok": ok, "failed": failed,
            "elapsed_s": round(elapsed, 2), "sipp_exit": done.returncode,
            "throughput_cps": round(ok / elapsed, 1) if elapsed else 0.0}


def drain(instance: object, limit_s: float = 60.0) -> None:
    """Wait until Asterisk has no channel left, so no step pays for the one before."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        text = instance.cli("core show channels count")  # type: ignore[attr-defined]
        if any(line.split()[:1] == ["0"] and "active channel" in line
               for line in text.splitlines()):
            return
        time.sleep(0.5)


def sweep(service: str, rates: list[int], seconds: float, sip_port: int, work: Path,
          instance: object) -> dict:
    best = 0
    steps = []
    for rate in rates:
        drain(instance)
        step = run_step(service, rate, seconds, sip_port, work)
        steps.append(step)
        print(f"  {service}: {rate:4d} calls/s offered, {step['ok']:5d} ok, "
              f"{step['failed']:4d} failed, {step['throughput_cps']:6.1f} completed/s",
              flush=True)
        if step["failed"] or step["ok"] < step["calls"]:
            break
        best = rate
    completed = max((st["throughput_cps"] for st in steps
                     if not st["failed"] and st["ok"] == st["calls"]), default=0.0)
    return {"max_rate_zero_failures": best, "completed_cps_zero_failures": completed,
            "steps": steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200,300,400,500,600")
    parser.add_argument("--step-s", type=float, default=6.0)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    from ivr.loader import load_flow
    from routing import Router

    now = datetime.now(UTC)
    directory = demo_directory(now)
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    work = Path(tempfile.mkdtemp(prefix="homeline-bench-"))
    rtp_start, _ = free_rtp_range(4000)
    ports = Ports(sip=free_port(2), ami=free_port(), agi=free_port(),
                  rtp_start=rtp_start, rtp_end=rtp_start + 3999)
    stack = PbxStack("bench", directory, work / "state", ports, progress=print)
    try:
        stack.start_pbx()
        engine = stack.start_engine(Router.from_directory(directory, now=now), lambda: flow)
        print("plain dialplan menu (extension 200):", flush=True)
        plain = sweep("200", rates, args.step_s, ports.sip, work, stack.instance)
        print("FastAGI IVR menu (extension 300):", flush=True)
        ivr = sweep("300", rates, args.step_s, ports.sip, work, stack.instance)
        engine_errors = list(engine.errors)
        # proof the IVR really ran the menu: each caller pressed 1 -> queue billing
        routed = [t.queue for t in engine.timelines()]
    finally:
        stack.stop()
    # calls/s = calls completed per second of a step with zero failures (what was
    # carried, which above saturation is less than what SIPp offered)
    a, b = ivr["completed_cps_zero_failures"], plain["completed_cps_zero_failures"]
    offered_a, offered_b = ivr["max_rate_zero_failures"], plain["max_rate_zero_failures"]
    figures = {
        "benchmark": "call_path",
        "ivr_calls_per_s_zero_failures": a,
        "plain_calls_per_s_zero_failures": b,
        "ratio_ivr_over_plain": round(a / b, 3) if b else None,
        "ivr_offered_rate_zero_failures": offered_a,
        "plain_offered_rate_zero_failures": offered_b,
        "ratio_of_offered_rates": round(offered_a / offered_b, 3) if offered_b else None,
        "target_ratio": 0.7,
        "step_s": args.step_s,
        "rates_offered": rates,
        "engine_errors": len(engine_errors),
        "ivr_calls_routed_to_billing": routed.count("billing"),
        "ivr_calls_seen": len(routed),
        "ivr_steps": ivr["steps"],
        "plain_steps": plain["steps"],
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
