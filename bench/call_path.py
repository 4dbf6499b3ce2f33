"""Call-path benchmark: SIPp at stepped call rates through

  (a) Answer -> FastAGI IVR (dialplans/flows/main-menu.yaml, with the router
      behind it) -> Hangup, extension 300, and
  (b) the same menu written in plain dialplan (Read/GotoIf), extension 200,

in one run on one Asterisk. Each caller presses 1 half a second after the answer
(RFC 4733, SIPp's own pcap) and sends no other audio. The two paths take turns
at each rate (plain, then IVR, then the next rate), so neither gets a quieter
machine; a path stops at its first step with a failed call. Each step starts
with Asterisk idle, and a failed step is followed by a pause for its SIP
transactions to expire (64*T1 = 32 s, RFC 3261 17.1.1.2) before anything else
runs.

Figures, for each path: the highest offered rate (SIPp -r, calls/s) at which
every call of the step completed (the headline, "calls/s at zero failures"), and
the calls completed per second of wall time in that step. The ratio a/b of the
headline figures is the target (>= 0.7).

    .venv/bin/python bench/call_path.py [--rates 300,400,500] [--step-s 8] [--only ivr]

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    causes: dict[str, int] = {}
    if stats.exists():
        with stats.open(newline="") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
        if len(rows) >= 2:
            header, last = rows[0], rows[-1]
            ok = int(last[header.index("SuccessfulCall(C)")])
            failed = int(last[header.index("FailedCall(C)")])
            # SIPp's per-cause counters ("FailedTimeoutOnRecv(C)" and the like)
            causes = {name[len("Failed"):-3]: int(value)
                      for name, value in zip(header, last, strict=False)
                      if name.startswith("Failed") and name.endswith("(C)")
                      and name != "FailedCall(C)" and value.strip() not in ("", "0")}
    if ok + failed < calls and done.returncode != 0:
        failed = max(failed, calls - ok)
    return {"service": service, "rate": rate, "calls": calls, "ok": ok, "failed": failed,
            "elapsed_s": round(elapsed, 2), "sipp_exit": done.returncode,
            "failure_causes": causes,
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


SIP_TRANSACTION_TIMEOUT_S = 32.0  # 64*T1, RFC 3261 section 17.1.1.2


def sweep(paths: dict[str, str], rates: list[int], seconds: float, sip_port: int,
          work: Path, instance: object) -> dict[str, dict[str, Any]]:
    """Run the paths in turn at each rate until each has failed once."""
    results: dict[str, dict[str, Any]] = {
        name: {"max_rate_zero_failures": 0, "completed_cps_zero_failures": 0.0, "steps": []}
        for name in paths}
    failed_paths: set[str] = set()
    last_failed = False
    for rate in rates:
        for name, service in paths.items():
            if name in failed_paths:
                continue
            if last_failed:
                time.sleep(SIP_TRANSACTION_TIMEOUT_S)
            drain(instance)
            step = run_step(service, rate, seconds, sip_port, work)
            results[name]["steps"].append(step)
            print(f"  {name:5s} ({service}): {rate:4d} calls/s offered, {step['ok']:5d} ok, "
                  f"{step['failed']:4d} failed, {step['throughput_cps']:6.1f} completed/s"
                  + (f"  {step['failure_causes']}" if step["failure_causes"] else ""),
                  flush=True)
            last_failed = bool(step["failed"] or step["ok"] < step["calls"])
            if last_failed:
                failed_paths.add(name)
            else:
                results[name]["max_rate_zero_failures"] = rate
                results[name]["completed_cps_zero_failures"] = max(
                    results[name]["completed_cps_zero_failures"], step["throughput_cps"])
        if failed_paths == set(paths):
            break
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="300,350,400,450,500,550,600,650,700,750,800,850,"
                                           "900,1000")
    parser.add_argument("--step-s", type=float, default=8.0)
    parser.add_argument("--only", choices=("ivr", "plain"),
                        help="run one path (for profiling); no ratio is printed")
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
    paths = {name: service for name, service in (("plain", "200"), ("ivr", "300"))
             if args.only in (None, name)}
    try:
        stack.start_pbx()
        engine = stack.start_engine(Router.from_directory(directory, now=now), lambda: flow)
        print("plain: the menu in plain dialplan (extension 200); ivr: the FastAGI IVR "
              "(extension 300)", flush=True)
        results = sweep(paths, rates, args.step_s, ports.sip, work, stack.instance)
        engine_errors = list(engine.errors)
        # proof the IVR really ran the menu: each caller pressed 1 -> queue billing
        routed = [t.queue for t in engine.timelines()]
    finally:
        stack.stop(remove=True)
        shutil.rmtree(work, ignore_errors=True)
    none = {"max_rate_zero_failures": 0, "completed_cps_zero_failures": 0.0, "steps": []}
    ivr, plain = results.get("ivr", none), results.get("plain", none)
    a, b = ivr["max_rate_zero_failures"], plain["max_rate_zero_failures"]
    done_a, done_b = ivr["completed_cps_zero_failures"], plain["completed_cps_zero_failures"]
    figures = {
        "benchmark": "call_path",
        "ivr_calls_per_s_zero_failures": a,
        "plain_calls_per_s_zero_failures": b,
        "ratio_ivr_over_plain": round(a / b, 3) if a and b else None,
        "target_ratio": 0.7,
        "ivr_completed_per_s": done_a,
        "plain_completed_per_s": done_b,
        "ratio_of_completed_per_s": round(done_a / done_b, 3) if done_a and done_b else None,
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
