"""Call-path benchmark, on one Asterisk and one engine, in one run:

1. Throughput: SIPp at stepped call rates through
     (a) Answer -> FastAGI IVR (dialplans/flows/main-menu.yaml, with the router
         behind it) -> Hangup, extension 300, and
     (b) the same menu written in plain dialplan (Read/GotoIf), extension 200.
   Each caller presses 1 half a second after the answer (RFC 4733, SIPp's own
   pcap). The paths take turns at each rate (plain, then IVR, then the next
   rate), so neither gets a quieter machine; a path stops at its first step with
   a failed call. Each step starts with Asterisk idle; a failed step is followed
   by a pause for its SIP transactions to expire (64*T1 = 32 s, RFC 3261
   17.1.1.2). The headline of a path is the highest offered rate (SIPp -r) at
   which every call of the step completed; the sweep runs ``--repeats`` times
   (3) and the figure is the median of the per-sweep ratios IVR/plain (target
   >= 0.8). Every failed call is printed with SIPp's cause and, for IVR calls,
   what the engine saw (its timeline, outcome, keys and warnings), and counted
   as "inside the engine" when the engine had the call and did not finish it
   as routed.
2. Key press -> next prompt, at half the IVR's median knee rate: callers press
   3 during the greeting (the next prompt is the language menu), then hang up. Measured
   by Asterisk itself: with ``agi set debug on`` res_agi logs every reply it
   sends ("AGI Tx >> 200 result=51") and every command it reads ("AGI Rx <<
   STREAM FILE ..."), stamped by Asterisk's logger to the microsecond. The
   figure is, per key, the time from Asterisk sending the key's result to
   Asterisk reading the next STREAM FILE: both socket trips, the engine's
   parsing and the flow step. What follows (opening the file, the first frame) is Asterisk's
   own work, the same for the plain dialplan. The debug log costs Asterisk some
   CPU, which only makes the figure worse.
3. Route request -> the agent's phone ringing, with ``--agents`` registered
   pjsua2 softphones (answering after 0.3 s; each caller hangs up 4.5 s after
   the answer) at ``--ring-rate`` calls/s: through Homeline (extension 100,
   the IVR, hold, the router's Redirect, Dial) and, in the same run, through
   Asterisk's own app_queue ringing the same agents from ``Queue()``
   (extension 400, bench/benchkit.py). Origin: Homeline's route request (the
   engine's timeline, wall clock), and for app_queue the dialplan's entry
   into Queue() (a log line with the time to the microsecond); end: pjsua2's
   onIncomingCall on the agent's phone (same host, same clock).

    .venv/bin/python bench/call_path.py [--rates 300,400,500] [--step-s 8] [--repeats 3]
                                        [--only ivr] [--agents 8] [--ring-rate 1] [--ring-s 30]

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from benchkit import (  # noqa: E402
    QUEUE_NUMBER,
    SIP_TRANSACTION_TIMEOUT_S,
    BenchStack,
    Step,
    bench_directory,
    caller_of,
    drain,
    log_lines,
    ms,
    percentile,
    run_sipp,
    stamp,
)

from homeline.paths import DIALPLANS_DIR  # noqa: E402
from homeline.stack import Ports, free_port, free_rtp_range  # noqa: E402

TARGET_RATIO = 0.8
TARGET_RING_P95_MS = 250
TARGET_KEY_P95_MS = 50
MAX_PRINTED_FAILURES = 12


class WarningsByCall(logging.Handler):
    """The engine's warnings and errors, by the call id they name ("call <id>: ...")."""

    _CALL = re.compile(r"call (\d+\.\d+)")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_call: dict[str, list[str]] = {}
        self.other: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        m = self._CALL.search(text)
        if m:
            self.by_call.setdefault(m.group(1), []).append(text[:160])
        else:
            self.other[text[:160]] += 1


def explain_failures(name: str, step: Step, engine: Any, warnings: WarningsByCall) -> int:
    """Print each failed call's cause; return how many failed inside the engine."""
    timelines = {t.caller: t for t in engine.timelines()} if name == "ivr" else {}
    inside = 0
    kinds: Counter[str] = Counter()
    lines: list[tuple[bool, str]] = []
    for failure in step.failures:
        caller = caller_of(step.step_id, failure.call_number)
        story = ""
        kind = "sip"
        timeline = timelines.get(caller)
        if name == "ivr":
            if timeline is None:
                story = "engine: never saw the call (it did not reach the IVR)"
            else:
                said = warnings.by_call.get(timeline.call_id, [])
                t0 = timeline.steps[0][0] if timeline.steps else 0.0
                notes = "; ".join(f"+{t - t0:.2f}s {what}" for t, what in timeline.steps)
                story = (f"engine: outcome={timeline.outcome or 'none'} [{notes}]"
                         + (f" warnings: {' | '.join(said)}" if said else ""))
                if timeline.outcome != "routed" or said:
                    kind = "engine"
                    inside += 1
        kinds[kind] += 1
        lines.append((kind != "engine", f"    FAIL {name} {step.rate}/s {caller}: SIPp: "
                      f"{failure.cause}" + (f"\n         {story}" if story else "")))
    # the engine's own failures first: they are the ones to find and fix
    lines = [line for _, line in sorted(lines, key=lambda kl: kl[0])]
    for line in lines[:MAX_PRINTED_FAILURES]:
        print(line, flush=True)
    if len(lines) > MAX_PRINTED_FAILURES:
        print(f"    ... and {len(lines) - MAX_PRINTED_FAILURES} more failed calls", flush=True)
    if step.failures:
        print(f"    failed calls by where they failed: {dict(kinds)}", flush=True)
    unnamed = step.failed - len(step.failures)
    if unnamed > 0:
        print(f"    {unnamed} failed calls SIPp did not name (causes: {step.causes})", flush=True)
    return inside


def ivr_phases(step: Step, engine: Any) -> dict[str, list[float | None]]:
    """Where this step's IVR calls spent their time, from the engine's timelines:
    the IVR's start to the route request (Answer, the greeting until the key,
    the menu), and the route request to the IVR's end (the router's answer, the
    channel variables)."""
    prefix = caller_of(step.step_id, 0)[:-1]  # "b<step>x"
    to_route: list[float] = []
    to_end: list[float] = []
    for timeline in engine.timelines():
        if not timeline.caller.startswith(prefix):
            continue
        at = {what.split(":", 1)[0]: t for t, what in timeline.steps}
        start, route, end = at.get("IVR answered"), at.get("route request"), at.get(
            "IVR finished")
        if start is not None and route is not None:
            to_route.append(route - start)
            if end is not None:
                to_end.append(end - route)

    def spread(values: list[float]) -> list[float | None]:
        return [ms(percentile(values, 50)), ms(percentile(values, 95)),
                ms(max(values) if values else None)]

    return {"start_to_route": spread(to_route), "route_to_end": spread(to_end)}


def sweep(paths: dict[str, str], rates: list[int], seconds: float, sip_port: int,
          work: Path, stack: Any, engine: Any, warnings: WarningsByCall) -> dict[str, Any]:
    """Run the paths in turn at each rate until each has failed once."""
    results: dict[str, dict[str, Any]] = {
        name: {"max_rate_zero_failures": 0, "completed_cps_zero_failures": 0.0, "steps": [],
               "failed_inside_engine": 0}
        for name in paths}
    failed_paths: set[str] = set()
    last_failed = False
    for rate in rates:
        for name, service in paths.items():
            if name in failed_paths:
                continue
            if last_failed:
                time.sleep(SIP_TRANSACTION_TIMEOUT_S)
            drain(stack.instance)
            cpu = cpu_seconds(stack.instance.pid())
            step = run_sipp("uac_press_1.xml", service, rate, max(1, int(rate * seconds)),
                            sip_port, work, max_s=seconds + 40)
            summary = step.summary()
            engine_cpu, asterisk_cpu = (after - before for after, before in
                                        zip(cpu_seconds(stack.instance.pid()), cpu, strict=True))
            # CPU per call offered: this process (the engine, plus this script's own
            # bookkeeping, idle while SIPp runs) and Asterisk
            summary["cpu_ms_per_call"] = {
                "engine_process": round(engine_cpu * 1000 / step.calls, 3),
                "asterisk": round(asterisk_cpu * 1000 / step.calls, 3)}
            if name == "ivr":
                summary["ivr_phases_ms"] = ivr_phases(step, engine)
            results[name]["steps"].append(summary)
            print(f"  {name:5s} ({service}): {rate:4d} calls/s offered, {step.ok:5d} ok, "
                  f"{step.failed:4d} failed, {summary['throughput_cps']:6.1f} completed/s; CPU "
                  f"ms/call engine {summary['cpu_ms_per_call']['engine_process']}, Asterisk "
                  f"{summary['cpu_ms_per_call']['asterisk']}"
                  + (f"  {step.causes}" if step.causes else ""), flush=True)
            if name == "ivr":
                print(f"        IVR phases (ms, p50/p95/max): {summary['ivr_phases_ms']}",
                      flush=True)
            last_failed = not step.clean
            if last_failed:
                failed_paths.add(name)
                drain(stack.instance, 30)
                results[name]["failed_inside_engine"] += explain_failures(
                    name, step, engine, warnings)
            else:
                results[name]["max_rate_zero_failures"] = rate
                results[name]["completed_cps_zero_failures"] = max(
                    results[name]["completed_cps_zero_failures"], summary["throughput_cps"])
        if failed_paths == set(paths):
            break
    return results


def cpu_seconds(asterisk_pid: int | None) -> tuple[float, float]:
    """CPU time (user + system, s) of this process, which runs the engine, and of Asterisk."""
    mine = os.times()
    theirs = 0.0
    if asterisk_pid is not None:
        # /proc/<pid>/stat: utime and stime are fields 14 and 15, in clock ticks (proc(5))
        fields = Path(f"/proc/{asterisk_pid}/stat").read_text().rsplit(")", 1)[1].split()
        theirs = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return mine.user + mine.system, theirs


_AGI_LINE = re.compile(r"<([^>]+)>AGI (Tx|Rx) (?:>>|<<) (.*)$")
_RESULT = re.compile(r"^200 result=(\d+)")
_DTMF_CODES = {ord(c) for c in "0123456789*#"}
_READ_KEY = re.compile(r"^200 result=1 \(([0-9*#]?),(\w*)\)")  # GET FULL VARIABLE key,status


def key_to_prompt(lines: list[str]) -> list[float]:
    """Per key pressed: from Asterisk's reply that ends the prompt the key stopped
    to its next 'AGI Rx << STREAM FILE' on the same channel, in seconds.

    The reply is STREAM FILE's 'AGI Tx >> 200 result=<key>', or, for the call's
    first prompts, which the IVR plays with Read() (voice/agi_runner.py
    answer_playing), EXEC Read's reply, counted when the GET FULL VARIABLE after
    it shows a key: the engine's round trip for the key is then in the figure."""
    pressed: dict[str, float] = {}
    in_read: set[str] = set()
    read_done: dict[str, float] = {}
    samples = []
    for line in lines:
        m = _AGI_LINE.search(line)
        if not m:
            continue
        at = stamp(line)
        if at is None:
            continue
        channel, way, text = m.groups()
        if way == "Tx":
            if channel in in_read:  # the first reply after EXEC Read is Read's
                in_read.discard(channel)
                read_done[channel] = at
                continue
            k = _READ_KEY.match(text)
            if k and channel in read_done:
                ended = read_done.pop(channel)
                if k.group(1):
                    pressed[channel] = ended
                continue
            r = _RESULT.match(text)
            if r and int(r.group(1)) in _DTMF_CODES:
                pressed[channel] = at
        elif text.startswith("EXEC Read"):
            in_read.add(channel)
        elif text.startswith(("STREAM FILE", "SAY ")) and channel in pressed:
            samples.append(at - pressed.pop(channel))
    return samples


def key_latency(rate: int, seconds: float, sip_port: int, work: Path, stack: Any) -> dict[str, Any]:
    instance = stack.instance
    drain(instance)
    log_name = "agi-bench.log"
    instance.cli(f"logger add channel {log_name} verbose")
    instance.cli("agi set debug on")
    try:
        step = run_sipp("uac_key_3.xml", "300", rate, max(1, int(rate * seconds)),
                        sip_port, work, max_s=seconds + 40)
    finally:
        instance.cli("agi set debug off")
        instance.cli(f"logger remove channel {log_name}")
    samples = key_to_prompt(log_lines(instance, log_name))
    if not step.clean:
        for failure in step.failures[:MAX_PRINTED_FAILURES]:
            print(f"    FAIL keys {rate}/s {caller_of(step.step_id, failure.call_number)}: "
                  f"SIPp: {failure.cause}", flush=True)
    print(f"  keys  (300): {rate:4d} calls/s offered, {step.ok:5d} ok, {step.failed:4d} failed;"
          f" {len(samples)} key->prompt samples, p50 {ms(percentile(samples, 50))} ms, "
          f"p95 {ms(percentile(samples, 95))} ms", flush=True)
    return {"rate_calls_per_s": rate, "calls": step.calls, "ok": step.ok, "failed": step.failed,
            "samples": len(samples), "p50_ms": ms(percentile(samples, 50)),
            "p95_ms": ms(percentile(samples, 95)), "max_ms": ms(max(samples, default=None)),
            "target_p95_ms": TARGET_KEY_P95_MS,
            "measured": "Asterisk's AGI debug log: the reply ending the prompt the key stopped "
                        "(STREAM FILE's, or Read()'s for the first prompts) -> next STREAM FILE "
                        "read"}


def ring_latency(args: argparse.Namespace, sip_port: int, work: Path, stack: Any,
                 engine: Any) -> dict[str, Any]:
    """Route request -> agent's phone ringing, Homeline vs app_queue, same agents."""
    from softphone import AgentPhone, IncomingCall, SoftphoneHost

    agent_ids = [a.id for a in stack.directory.agents]
    host = SoftphoneHost()
    phones: list[AgentPhone] = []
    try:
        for agent_id in agent_ids:
            phones.append(AgentPhone(host, agent_id, server=f"127.0.0.1:{sip_port}",
                                     password=stack.agent_secret(agent_id), answer_delay=0.3))
        for phone in phones:
            phone.wait_registered(10)
        deadline = time.monotonic() + 15
        while (set(agent_ids) - engine.registered_agents()) and time.monotonic() < deadline:
            time.sleep(0.1)
        calls = max(1, int(args.ring_rate * args.ring_s))
        # pjsua2 stamps events with time.monotonic(); the origins are wall clock
        offset = time.time() - time.monotonic()
        results = {}
        for name, service in (("homeline", "100"), ("app_queue", QUEUE_NUMBER)):
            drain(stack.instance)
            time.sleep(2)  # wrap-up of the last calls (1 s) over
            before = len(log_lines(stack.instance))
            step = run_sipp("uac_press_1_hold.xml", service, max(1, round(args.ring_rate)),
                            calls, sip_port, work, max_s=args.ring_s + 60) \
                if args.ring_rate >= 1 else None
            if step is None:
                raise SystemExit("--ring-rate must be at least 1 call/s")
            drain(stack.instance)
            prefix = f"b{step.step_id}x"
            rings: dict[str, float] = {}
            for phone in phones:
                for event in phone.events.snapshot():
                    if isinstance(event, IncomingCall) and prefix in event.from_uri:
                        m = re.search(rf"{prefix}\d+", event.from_uri)
                        if m:
                            rings.setdefault(m.group(0), event.at + offset)
            origins: dict[str, float] = {}
            if name == "homeline":
                for timeline in engine.timelines():
                    if timeline.caller.startswith(prefix):
                        for at, what in timeline.steps:
                            if what.startswith("route request"):
                                origins[timeline.caller] = at
                                break
            else:
                for line in log_lines(stack.instance)[before:]:
                    m = re.search(rf"queue-join ({prefix}\d+) (\d+\.\d+)", line)
                    if m:
                        origins[m.group(1)] = float(m.group(2))
            samples = [rings[c] - t for c, t in origins.items() if c in rings]
            results[name] = {"calls": step.calls, "ok": step.ok, "failed": step.failed,
                             "route_requests": len(origins), "rang": len(samples),
                             "p50_ms": ms(percentile(samples, 50)),
                             "p95_ms": ms(percentile(samples, 95)),
                             "max_ms": ms(max(samples, default=None))}
            print(f"  ring  ({service}) {name}: {step.calls} calls at {args.ring_rate:g}/s, "
                  f"{len(samples)} rang an agent after their route request: p50 "
                  f"{results[name]['p50_ms']} ms, p95 {results[name]['p95_ms']} ms"
                  + (f"; {step.failed} failed {step.causes}" if step.failed else ""), flush=True)
        hp95, qp95 = results["homeline"]["p95_ms"], results["app_queue"]["p95_ms"]
        hp50, qp50 = results["homeline"]["p50_ms"], results["app_queue"]["p50_ms"]
        return {
            "load": (f"{args.ring_rate:g} calls/s for {args.ring_s:g} s, {len(agent_ids)} "
                     "registered agents answering after 0.3 s, callers hang up 4.5 s after "
                     "the answer"),
            **results,
            "ratio_p95_homeline_over_app_queue": round(hp95 / qp95, 2) if hp95 and qp95 else None,
            "ratio_p50_homeline_over_app_queue": round(hp50 / qp50, 2) if hp50 and qp50 else None,
            "target_p95_ms": TARGET_RING_P95_MS,
        }
    finally:
        for phone in phones:
            phone.close()
        host.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="300,350,400,450,500,550,600,650,700,750,800,850,"
                                           "900,1000")
    parser.add_argument("--step-s", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--key-rate", type=int,
                        help="with --only keys: the rate of the key->prompt step")
    parser.add_argument("--only", choices=("ivr", "plain", "keys"),
                        help="run one path (for profiling); no ratio or latencies")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--ring-rate", type=float, default=1.0)
    parser.add_argument("--ring-s", type=float, default=30.0)
    parser.add_argument("--key-s", type=float, default=8.0)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    from ivr.loader import load_flow
    from routing.router import Router

    now = datetime.now(UTC)
    directory = bench_directory(now, args.agents)
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    work = Path(tempfile.mkdtemp(prefix="homeline-bench-"))
    rtp_start, _ = free_rtp_range(4000)
    ports = Ports(sip=free_port(2), ami=free_port(), agi=free_port(),
                  rtp_start=rtp_start, rtp_end=rtp_start + 3999)
    stack = BenchStack("bench", directory, work / "state", ports, progress=print)
    paths = {name: service for name, service in (("plain", "200"), ("ivr", "300"))
             if args.only in (None, name)}
    warnings = WarningsByCall()
    logging.getLogger("homeline").addHandler(warnings)
    sweeps: list[dict[str, Any]] = []
    keys: dict[str, Any] | None = None
    ring: dict[str, Any] | None = None
    queue_loaded = False
    try:
        stack.start_pbx()
        queue_loaded = "app_queue.so" in stack.instance.cli("module show like app_queue")
        engine = stack.start_engine(Router.from_directory(directory, now=now), lambda: flow)
        print("plain: the menu in plain dialplan (extension 200); ivr: the FastAGI IVR "
              f"(extension 300); app_queue loaded: {queue_loaded}", flush=True)
        if args.only == "keys":
            if not args.key_rate:
                raise SystemExit("--only keys needs --key-rate")
            keys = key_latency(args.key_rate, args.key_s, ports.sip, work, stack)
        for repeat in range(1, args.repeats + 1 if args.only != "keys" else 1):
            print(f"sweep {repeat}/{args.repeats}", flush=True)
            sweeps.append(sweep(paths, rates, args.step_s, ports.sip, work, stack, engine,
                                warnings))
            time.sleep(SIP_TRANSACTION_TIMEOUT_S if repeat < args.repeats else 0)
        knees = [s["ivr"]["max_rate_zero_failures"] for s in sweeps if "ivr" in s]
        if args.only is None and knees and statistics.median(knees) > 0:
            time.sleep(SIP_TRANSACTION_TIMEOUT_S)
            keys = key_latency(max(1, int(statistics.median(knees) / 2)), args.key_s,
                               ports.sip, work, stack)
            if queue_loaded:
                ring = ring_latency(args, ports.sip, work, stack, engine)
        engine_errors = list(engine.errors)
    finally:
        stack.stop(remove=True)
        logging.getLogger("homeline").removeHandler(warnings)
        shutil.rmtree(work, ignore_errors=True)

    def figure(name: str, key: str) -> list[Any]:
        return [s[name][key] for s in sweeps if name in s]

    # a sweep whose IVR failed at the lowest rate counts as 0 (its knee is below
    # every rate offered), not as missing: leaving it out would flatter the median
    ratios = [round(s["ivr"]["max_rate_zero_failures"] / s["plain"]["max_rate_zero_failures"], 3)
              if "ivr" in s and s.get("plain", {}).get("max_rate_zero_failures") else None
              for s in sweeps]
    known = [r for r in ratios if r is not None]
    figures = {
        "benchmark": "call_path",
        "repeats": args.repeats,
        "median_ratio_ivr_over_plain": statistics.median(known) if known else None,
        "target_ratio": TARGET_RATIO,
        "ratios_ivr_over_plain": ratios,
        "ivr_calls_per_s_zero_failures": figure("ivr", "max_rate_zero_failures"),
        "plain_calls_per_s_zero_failures": figure("plain", "max_rate_zero_failures"),
        "ivr_completed_per_s": figure("ivr", "completed_cps_zero_failures"),
        "plain_completed_per_s": figure("plain", "completed_cps_zero_failures"),
        "ivr_calls_failed_inside_engine": sum(figure("ivr", "failed_inside_engine")),
        "key_to_next_prompt": keys,
        "route_request_to_agent_ringing": ring,
        "app_queue_loaded": queue_loaded,
        "step_s": args.step_s,
        "rates_offered": rates,
        "engine_errors": len(engine_errors),
        "engine_warnings_without_call": dict(warnings.other.most_common(5)),
        "steps": {name: [st for s in sweeps if name in s for st in s[name]["steps"]]
                  for name in paths},
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
