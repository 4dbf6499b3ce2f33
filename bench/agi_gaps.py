"""Where an IVR call loses its first key under load: Asterisk's own AGI debug log.

res_agi reads and drops the channel's frames while it waits for the next AGI
command (res_agi.c run_agi, "Idle the channel until we get a command"), so a
key that arrives between two commands is lost. This runs one SIPp step of
callers who press 1 half a second after the answer (extension 300, the FastAGI
IVR) with ``agi set debug on``, and prints, for calls whose greeting ended
without a key and for the others, the time from Asterisk's reply to the IVR's
Answer to Asterisk reading the next command (the greeting's STREAM FILE), and
from the AGI environment to the Answer.

    .venv/bin/python bench/agi_gaps.py [--rate 550] [--seconds 4]

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from benchkit import (  # noqa: E402
    BenchStack,
    bench_directory,
    log_lines,
    ms,
    percentile,
    run_sipp,
    stamp,
)

from homeline.paths import DIALPLANS_DIR  # noqa: E402
from homeline.stack import Ports, free_port, free_rtp_range  # noqa: E402

_AGI = re.compile(r"<([^>]+)>AGI (Tx|Rx) (?:>>|<<) (.*)$")


def gaps(lines: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Per call: (environment -> Answer read, Answer reply -> next command read),
    split by whether the greeting's STREAM FILE ended with a key."""
    per: dict[str, list[tuple[float, str, str]]] = {}
    for line in lines:
        m = _AGI.search(line)
        at = stamp(line)
        if m and at is not None:
            per.setdefault(m.group(1), []).append((at, m.group(2), m.group(3)))
    out: dict[str, list[tuple[float, float]]] = {"key_in_greeting": [], "no_key_in_greeting": []}
    for events in per.values():
        answer = next((n for n, e in enumerate(events)
                       if e[1] == "Rx" and e[2].startswith("EXEC Answer")), None)
        if answer is None or len(events) < answer + 4:
            continue
        env_to_answer = events[answer][0] - events[0][0]
        gap = events[answer + 2][0] - events[answer + 1][0]
        keyed = "result=0 " not in events[answer + 3][2] + " "
        out["key_in_greeting" if keyed else "no_key_in_greeting"].append((env_to_answer, gap))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=550)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()

    from ivr.loader import load_flow
    from routing.router import Router

    now = datetime.now(UTC)
    directory = bench_directory(now, 2)
    flow = load_flow(DIALPLANS_DIR / "flows" / "main-menu.yaml")
    work = Path(tempfile.mkdtemp(prefix="homeline-agi-gaps-"))
    rtp_start, _ = free_rtp_range(4000)
    ports = Ports(sip=free_port(2), ami=free_port(), agi=free_port(),
                  rtp_start=rtp_start, rtp_end=rtp_start + 3999)
    stack = BenchStack("agigaps", directory, work / "state", ports, progress=print)
    try:
        stack.start_pbx()
        stack.start_engine(Router.from_directory(directory, now=now), lambda: flow)
        stack.instance.cli("logger add channel agi-gaps.log verbose")
        stack.instance.cli("agi set debug on")
        step = run_sipp("uac_press_1.xml", "300", args.rate, int(args.rate * args.seconds),
                        ports.sip, work, max_s=args.seconds + 40)
        stack.instance.cli("agi set debug off")
        found = gaps(log_lines(stack.instance, "agi-gaps.log"))
    finally:
        stack.stop(remove=True)
        shutil.rmtree(work, ignore_errors=True)
    figures: dict[str, object] = {"benchmark": "agi_gaps", "rate": args.rate,
                                  "calls": step.calls, "ok": step.ok, "failed": step.failed}
    for name, rows in found.items():
        answer_gaps = [g for _, g in rows]
        env = [e for e, _ in rows]
        figures[name] = {"calls": len(rows),
                         "answer_reply_to_next_command_ms": {
                             "p50": ms(percentile(answer_gaps, 50)),
                             "p95": ms(percentile(answer_gaps, 95)),
                             "min": ms(min(answer_gaps, default=None)),
                             "max": ms(max(answer_gaps, default=None))},
                         "environment_to_answer_ms": {
                             "p50": ms(percentile(env, 50)), "p95": ms(percentile(env, 95))}}
        print(f"{name}: {figures[name]}", flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
