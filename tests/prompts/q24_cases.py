"""The ITU-T Q.24 receiver battery (AT&T column), generated: no binary fixtures.

Levels: Q.24 gives the reception range "0 to -25 dBm0"; two tones at 0 dBm0 each
would overload G.711 (full scale is +3.17 dBm0), so the battery covers both
readings: every pair from -3 dBm0 per tone (0 dBm0 for the pair) down to
-28 dBm0 per tone (-25 dBm0 for the pair) is accepted, and pairs at -55 dBm0
per tone and below are rejected.

Each case is a name, the signal (float32, 8 kHz) and the digits it must yield.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from prompts.dtmf import COLS, KEYS, ROWS, dbm0_to_amplitude, to_int16, tone_pair
from prompts.g711 import round_trip

RATE = 8000
NOMINAL_DBM0 = -10.0  # per tone
LEAD_S = 0.06
TAIL_S = 0.10


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    make: Callable[[], np.ndarray]
    expect: str


def _freqs(digit: str) -> tuple[float, float]:
    i = KEYS.index(digit)
    return ROWS[i // 4], COLS[i % 4]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), np.float32)


def _pad(sig: np.ndarray, lead_samples: int = 0) -> np.ndarray:
    return np.concatenate((_silence(LEAD_S + lead_samples / RATE), sig, _silence(TAIL_S)))


def _tone(
    digit: str,
    ms: float,
    level: float = NOMINAL_DBM0,
    twist: float = 0.0,
    low_factor: float = 1.0,
    high_factor: float = 1.0,
    low_hz_extra: float = 0.0,
    high_hz_extra: float = 0.0,
    phase: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    low, high = _freqs(digit)
    return tone_pair(
        low * low_factor + low_hz_extra,
        high * high_factor + high_hz_extra,
        ms / 1000,
        RATE,
        level,
        twist,
        phase,
    )


def _signed(x: float) -> str:
    return f"{x:+g}"


def _frequency_cases() -> Iterator[Case]:
    # Accept: each tone off by 1.5 % + 2 Hz (the sender's tolerance plus Q.24's
    # 1.5 %) either way, the other tone nominal and both off together; reject
    # at 3.5 % and beyond. Every row and every column frequency is covered.
    digits = "1593"  # rows 697/770/852/941 with columns 1209/1336/1477/1633
    more = "*0#D"
    for d in digits + more:
        for sign in (-1, 1):
            acc = 1 + sign * 0.015
            hz = sign * 2.0
            yield Case(
                f"freq-accept-low{_signed(sign * 1.5)}%-{d}",
                "frequency",
                lambda d=d, a=acc, h=hz: _pad(_tone(d, 50, low_factor=a, low_hz_extra=h)),
                d,
            )
            yield Case(
                f"freq-accept-high{_signed(sign * 1.5)}%-{d}",
                "frequency",
                lambda d=d, a=acc, h=hz: _pad(_tone(d, 50, high_factor=a, high_hz_extra=h)),
                d,
            )
            yield Case(
                f"freq-accept-both{_signed(sign * 1.5)}%-{d}",
                "frequency",
                lambda d=d, a=acc, h=hz: _pad(
                    _tone(d, 50, low_factor=a, high_factor=a, low_hz_extra=h, high_hz_extra=h)
                ),
                d,
            )
            for pct in (3.5, 5.0):
                rej = 1 + sign * pct / 100
                yield Case(
                    f"freq-reject-low{_signed(sign * pct)}%-{d}",
                    "frequency",
                    lambda d=d, r=rej: _pad(_tone(d, 50, low_factor=r)),
                    "",
                )
                yield Case(
                    f"freq-reject-high{_signed(sign * pct)}%-{d}",
                    "frequency",
                    lambda d=d, r=rej: _pad(_tone(d, 50, high_factor=r)),
                    "",
                )


def _far_frequency_cases() -> Iterator[Case]:
    # Farther off: still nothing, unless the tone lands within 3.5 % of another
    # DTMF frequency (then it is that other digit, rightly).
    all_freqs = ROWS + COLS
    for d in "1593*0#D":
        low, high = _freqs(d)
        for pct in (7.5, 10.0, 15.0, 20.0):
            for sign in (-1, 1):
                factor = 1 + sign * pct / 100
                for which, base in (("low", low), ("high", high)):
                    shifted = base * factor
                    if min(abs(shifted / f - 1) for f in all_freqs) < 0.035:
                        continue
                    kw = {f"{which}_factor": factor}
                    yield Case(
                        f"freq-reject-{which}{_signed(sign * pct)}%-{d}",
                        "frequency",
                        lambda d=d, kw=kw: _pad(_tone(d, 60, **kw)),
                        "",
                    )


def _twist_cases() -> Iterator[Case]:
    # Q.24 AT&T: accept the high tone up to 4 dB above the low one, and the low
    # tone up to 8 dB above the high one; the pair's power at nominal and at
    # the bottom of the range.
    for d in KEYS:
        for twist in (4.0, -8.0):
            yield Case(
                f"twist{_signed(twist)}dB-{d}",
                "twist",
                lambda d=d, t=twist: _pad(_tone(d, 50, twist=t)),
                d,
            )
    for d in "1D":
        for twist in (4.0, -8.0):
            # Total -25 dBm0: the weaker tone sits around -30 to -34 dBm0.
            low_level = -25.0 - 10 * np.log10(1 + 10 ** (twist / 10))
            yield Case(
                f"twist{_signed(twist)}dB-at-25dBm0-{d}",
                "twist",
                lambda d=d, t=twist, lv=low_level: _pad(_tone(d, 50, level=lv, twist=t)),
                d,
            )


def _duration_cases() -> Iterator[Case]:
    # Accept >= 40 ms, reject <= 23 ms, at several levels and at every alignment
    # of the tone against the detector's 5 ms grid.
    offsets = (0, 7, 13, 20, 27, 33)
    for i, d in enumerate(KEYS):
        off = offsets[i % len(offsets)]
        yield Case(f"duration-40ms-{d}", "duration", lambda d=d, o=off: _pad(_tone(d, 40), o), d)
        yield Case(f"duration-23ms-{d}", "duration", lambda d=d, o=off: _pad(_tone(d, 23), o), "")
    for level in (-3.0, -28.0):
        for off in offsets:
            yield Case(
                f"duration-40ms-{level:g}dBm0-shift{off}",
                "duration",
                lambda lv=level, o=off: _pad(_tone("5", 40, level=lv), o),
                "5",
            )
            yield Case(
                f"duration-23ms-{level:g}dBm0-shift{off}",
                "duration",
                lambda lv=level, o=off: _pad(_tone("5", 23, level=lv), o),
                "",
            )


def _pause_cases() -> Iterator[Case]:
    # A 40 ms pause separates two digits, the same digit twice included.
    offsets = (0, 9, 20, 31)
    pairs = ("11", "55", "##", "DD", "12", "90", "*#", "AD")
    for i, pair in enumerate(pairs):
        for off in offsets:

            def make(p: str = pair, o: int = off, lv: float = NOMINAL_DBM0) -> np.ndarray:
                return _pad(
                    np.concatenate(
                        (_tone(p[0], 40, level=lv), _silence(0.040), _tone(p[1], 40, level=lv))
                    ),
                    o,
                )

            yield Case(f"pause-40ms-{pair}-shift{off}", "pause", make, pair)
        lv = -3.0 if i % 2 else -28.0
        yield Case(
            f"pause-40ms-{pair}-{lv:g}dBm0",
            "pause",
            lambda p=pair, lv=lv: _pad(
                np.concatenate(
                    (_tone(p[0], 40, level=lv), _silence(0.040), _tone(p[1], 40, level=lv))
                )
            ),
            pair,
        )


def _dropout_cases() -> Iterator[Case]:
    # A drop-out of up to 10 ms inside a tone does not split the digit: the
    # tone source keeps running (phase-continuous) while the line drops out.
    offsets = (0, 11, 22, 35)
    for d in "1590#D":
        for off in offsets:
            for where_ms in (20.0, 35.0):

                def make(d: str = d, o: int = off, w: float = where_ms) -> np.ndarray:
                    full = _tone(d, w + 10.0 + 40.0)
                    a, b = int(w * RATE / 1000), int((w + 10.0) * RATE / 1000)
                    full[a:b] = 0.0
                    return _pad(full, o)

                yield Case(f"dropout-10ms-at{where_ms:g}ms-{d}-shift{off}", "dropout", make, d)
    # The same with the tone resuming at another phase (a switched path).
    rng = np.random.default_rng(24)
    for d in "147*2580369#ABCD":
        phase = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi)))
        off = int(rng.integers(0, 40))

        def make_jump(d: str = d, ph: tuple[float, float] = phase, o: int = off) -> np.ndarray:
            return _pad(
                np.concatenate((_tone(d, 25.0), _silence(0.010), _tone(d, 30.0, phase=ph))), o
            )

        yield Case(f"dropout-10ms-phase-jump-{d}-shift{off}", "dropout", make_jump, d)


def _level_cases() -> Iterator[Case]:
    for d in "147*2580369#ABCD":
        for level in (-3.0, -10.0, -25.0, -28.0):
            yield Case(
                f"level{level:g}dBm0-{d}",
                "level",
                lambda d=d, lv=level: _pad(_tone(d, 50, level=lv)),
                d,
            )
    for d in "19#D":
        for level in (-55.0, -60.0, -70.0):
            yield Case(
                f"level{level:g}dBm0-{d}",
                "level",
                lambda d=d, lv=level: _pad(_tone(d, 50, level=lv)),
                "",
            )


def _g711_cases() -> Iterator[Case]:
    for law in ("ulaw", "alaw"):
        for level in (-3.0, NOMINAL_DBM0, -28.0):

            def make(lw: str = law, lv: float = level) -> np.ndarray:
                sig = np.concatenate(
                    [np.concatenate((_tone(d, 40, level=lv), _silence(0.040))) for d in KEYS]
                )
                pcm = round_trip(to_int16(_pad(sig)), lw)
                return pcm.astype(np.float32) / 32768.0

            yield Case(f"g711-{law}-{level:g}dBm0-all-digits", "g711", make, KEYS)


def _noise_cases() -> Iterator[Case]:
    # White noise at 15 dB below the pair's power, over the whole 0-4 kHz band.
    for seed in range(6):
        for level in (NOMINAL_DBM0, -25.0):

            def make(s: int = seed, lv: float = level) -> np.ndarray:
                rng = np.random.default_rng(1000 + s)
                sig = _pad(
                    np.concatenate(
                        [np.concatenate((_tone(d, 40, level=lv), _silence(0.040))) for d in KEYS]
                    )
                )
                pair_power = dbm0_to_amplitude(lv) ** 2  # two tones of a^2/2
                noise = rng.normal(0.0, np.sqrt(pair_power * 10 ** (-15 / 10)), sig.size)
                return (sig + noise).astype(np.float32)

            yield Case(f"noise-15dB-snr-{level:g}dBm0-seed{seed}", "noise", make, KEYS)


def _dial_tone_cases() -> Iterator[Case]:
    # Dial tone (350 + 440 Hz, ITU-T E.180 / North American precise tone plan)
    # 10 dB below the DTMF pair, sounding throughout.
    for level in (NOMINAL_DBM0, -20.0):
        for seed in range(2):

            def make(lv: float = level, s: int = seed) -> np.ndarray:
                sig = _pad(
                    np.concatenate(
                        [np.concatenate((_tone(d, 40, level=lv), _silence(0.040))) for d in KEYS]
                    )
                )
                t = np.arange(sig.size) / RATE
                dial_level = lv - 10.0  # each dial tone 10 dB below each DTMF tone
                a = dbm0_to_amplitude(dial_level)
                ph = np.random.default_rng(s).uniform(0, 2 * np.pi, 2)
                dial = a * (
                    np.sin(2 * np.pi * 350 * t + ph[0]) + np.sin(2 * np.pi * 440 * t + ph[1])
                )
                return (sig + dial).astype(np.float32)

            yield Case(f"dial-tone-10dB-below-{level:g}dBm0-seed{seed}", "dial-tone", make, KEYS)


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for gen in (
        _frequency_cases,
        _far_frequency_cases,
        _twist_cases,
        _duration_cases,
        _pause_cases,
        _dropout_cases,
        _level_cases,
        _g711_cases,
        _noise_cases,
        _dial_tone_cases,
    ):
        cases.extend(gen())
    return cases


if __name__ == "__main__":  # tuning aid: python tests/prompts/q24_cases.py
    from collections import Counter

    from prompts.dtmf import detect

    failed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for case in all_cases():
        got = detect(case.make(), RATE).digits
        total[case.group] += 1
        if got != case.expect:
            failed[case.group] += 1
            print(f"FAIL {case.name}: expected {case.expect!r}, got {got!r}")
    for group in total:
        print(f"{group:10s} {total[group] - failed[group]}/{total[group]}")
    print(f"passed {sum(total.values()) - sum(failed.values())}/{sum(total.values())}")
