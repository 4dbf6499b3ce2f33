"""DTMF detection speed: streaming real-time factor and batch channel-seconds/s, per core.

The streaming figure is for a call-like signal (speech-band noise with a burst
of 4 digits every 5 s) fed in 20 ms frames; the worst case (digits back to
back, so no frame can be skipped) is printed as well.

Measured in the same run against a straightforward per-sample Python Goertzel
detector (Asterisk dsp.c parameters, ``prompts.dtmf_reference.PerSampleReference``).
BLAS is limited to one thread so the figures are per core.

    .venv/bin/python bench/dtmf_bench.py [--seconds 60] [--channels 2000]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from prompts.dtmf import DtmfDetector, detect_batch, generate  # noqa: E402
from prompts.dtmf_reference import PerSampleReference  # noqa: E402

RATE = 8000
FRAME = 160  # 20 ms


def test_signal(seconds: float, seed: int = 1) -> tuple[np.ndarray, str]:
    """Speech-like noise (filtered, syllable envelope) with a DTMF string every ~5 s."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    noise = rng.normal(0, 1, n)
    # crude speech-band colouring and a 4 Hz syllable envelope
    kernel = np.hanning(9)
    coloured = np.convolve(noise, kernel / kernel.sum(), mode="same")
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE + rng.uniform(0, 6))
    x = (0.08 * coloured * env).astype(np.float32)
    digits = ""
    pos = int(1.0 * RATE)
    while pos + RATE < n:
        ds = "".join(rng.choice(list("0123456789*#"), 4))
        burst = generate(ds, RATE, tone_ms=60, gap_ms=60, level_dbm0=-6.0)
        end = min(n, pos + burst.size)
        x[pos:end] = burst[: end - pos] + 0.01 * x[pos:end]
        digits += ds
        pos += int(5.0 * RATE)
    return x, digits


def cpu() -> float:
    return time.process_time()


def bench_streaming(x: np.ndarray) -> tuple[float, str]:
    det = DtmfDetector(RATE)
    frames = [x[i : i + FRAME] for i in range(0, x.size - FRAME + 1, FRAME)]
    out = []
    t0 = cpu()
    for f in frames:
        out.extend(det.feed(f))
    out.extend(det.flush())
    spent = cpu() - t0
    return spent, "".join(e.digit for e in out if e.kind == "start")


def bench_reference(x: np.ndarray, seconds: float) -> tuple[float, float, str]:
    ref = PerSampleReference()
    n = int(seconds * RATE)
    t0 = cpu()
    for i in range(0, n - FRAME + 1, FRAME):
        ref.feed(x[i : i + FRAME])
    spent = cpu() - t0
    return spent, n / RATE, ref.digits


def bench_batch(x: np.ndarray, channels: int, seconds: float) -> tuple[float, float, bool]:
    n = int(seconds * RATE)
    rng = np.random.default_rng(3)
    starts = rng.integers(0, max(1, x.size - n), channels)
    block = np.stack([x[s : s + n] for s in starts]).astype(np.float32)
    # int16, as audio arrives from recordings and RTP decoders
    pcm = np.clip(np.rint(block * 32768), -32768, 32767).astype(np.int16)
    detect_batch(pcm[:8], RATE)  # warm-up
    t0 = cpu()
    results = detect_batch(pcm, RATE)
    spent = cpu() - t0
    ok = all(len(r.digits) > 0 for r in results)
    return spent, channels * n / RATE, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=120.0, help="streaming audio length")
    ap.add_argument("--ref-seconds", type=float, default=10.0, help="reference audio length")
    ap.add_argument("--channels", type=int, default=2000)
    ap.add_argument("--channel-seconds", type=float, default=10.0)
    args = ap.parse_args()

    x, digits = test_signal(args.seconds)
    s_cpu, s_digits = bench_streaming(x)
    stream_rtf = args.seconds / s_cpu
    print(
        f"streaming: {args.seconds:.0f} s of audio in {s_cpu:.3f} s CPU, 20 ms frames: "
        f"{stream_rtf:,.0f}x real time; digits {'ok' if s_digits == digits else 'MISMATCH'}"
    )

    # Worst case for the streaming fast path: back-to-back digits, every frame analysed.
    busy = generate("0123456789*#" * 50, RATE, tone_ms=60, gap_ms=60)
    w_cpu, w_digits = bench_streaming(busy)
    worst_rtf = busy.size / RATE / w_cpu
    print(f"streaming worst case (digits back to back, 60 ms on/off): {worst_rtf:,.0f}x "
          f"real time; digits {'ok' if w_digits == '0123456789*#' * 50 else 'MISMATCH'}")

    r_cpu, r_secs, r_digits = bench_reference(x, args.ref_seconds)
    ref_rtf = r_secs / r_cpu
    print(
        f"reference (per-sample Python Goertzel, Asterisk parameters): {r_secs:.0f} s in "
        f"{r_cpu:.3f} s CPU: {ref_rtf:,.1f}x real time; digits {r_digits!r}"
    )

    b_cpu, ch_secs, b_ok = bench_batch(x, args.channels, args.channel_seconds)
    batch = ch_secs / b_cpu
    print(
        f"batch: {args.channels} channels x {args.channel_seconds:.0f} s = {ch_secs:,.0f} "
        f"channel-s in {b_cpu:.3f} s CPU: {batch:,.0f} channel-s/s; "
        f"digits in every channel: {b_ok}"
    )
    print(
        f"speed-up vs reference: streaming {stream_rtf / ref_rtf:,.0f}x, "
        f"batch {batch / ref_rtf:,.0f}x"
    )
    result = {
        "streaming_rtf": round(stream_rtf, 1),
        "streaming_digits_ok": s_digits == digits,
        "streaming_worst_case_rtf": round(worst_rtf, 1),
        "batch_channel_seconds_per_s": round(batch, 1),
        "batch_digits_ok": b_ok,
        "reference_rtf": round(ref_rtf, 2),
        "streaming_speedup": round(stream_rtf / ref_rtf, 1),
        "batch_speedup": round(batch / ref_rtf, 1),
        "targets_met": stream_rtf >= 1000 and batch >= 15000,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
