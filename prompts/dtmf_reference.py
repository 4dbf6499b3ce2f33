"""Reference DTMF detector with Asterisk's published parameters (main/dsp.c).

Used only to compare against: talk-off figures in the tests and speed in the
benchmark. Parameters from Asterisk ``main/dsp.c``:

- ``DTMF_GSIZE`` 102 samples per Goertzel block (8 kHz), non-overlapping;
- ``DTMF_THRESHOLD`` 8.0e7 on each tone's Goertzel power (int16 scale);
- ``DEF_DTMF_NORMAL_TWIST`` 6.31 (8 dB, row above column) and
  ``DEF_DTMF_REVERSE_TWIST`` 2.51 (4 dB, column above row);
- ``DTMF_RELATIVE_PEAK_ROW`` / ``_COL`` 6.3 (8 dB);
- ``DTMF_TO_TOTAL_ENERGY`` 42.0: row + column power > 42 x block energy;
- ``DEF_DTMF_HITS_TO_BEGIN`` 2 and ``DEF_DTMF_MISSES_TO_END`` 3 blocks.

Two implementations of the same maths: :func:`reference_detect` (numpy, block
DFTs) and :class:`PerSampleReference` (the Goertzel recurrence one sample at a
time in plain Python, the "straightforward" baseline of the benchmark).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["GSIZE", "reference_detect", "PerSampleReference"]

GSIZE = 102
THRESHOLD = 8.0e7
NORMAL_TWIST = 6.31
REVERSE_TWIST = 2.51
RELATIVE_PEAK = 6.3
TO_TOTAL_ENERGY = 42.0
HITS_TO_BEGIN = 2
MISSES_TO_END = 3
_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYS = "123A456B789C*0#D"


def _as_int_scale(samples: npt.ArrayLike) -> npt.NDArray[np.float64]:
    x = np.asarray(samples)
    if x.dtype == np.int16:
        return x.astype(np.float64)
    return np.clip(np.rint(x.astype(np.float64) * 32768.0), -32768, 32767)


def _hit(rows: list[float], cols: list[float], energy: float) -> str:
    br = max(range(4), key=lambda i: rows[i])
    bc = max(range(4), key=lambda i: cols[i])
    r, c = rows[br], cols[bc]
    if not (r >= THRESHOLD and c >= THRESHOLD and c < r * REVERSE_TWIST and r < c * NORMAL_TWIST):
        return ""
    for i in range(4):
        if (i != bc and cols[i] * RELATIVE_PEAK > c) or (i != br and rows[i] * RELATIVE_PEAK > r):
            return ""
    if r + c > TO_TOTAL_ENERGY * energy:
        return _KEYS[br * 4 + bc]
    return ""


class _Debounce:
    """Asterisk's hits-to-begin / misses-to-end logic over block hits."""

    def __init__(self) -> None:
        self.current = ""
        self.last = ""
        self.hits = 0
        self.misses = 0
        self.digits: list[str] = []

    def block(self, hit: str) -> None:
        if self.current:
            if hit != self.current:
                self.misses += 1
                if self.misses == MISSES_TO_END:
                    self.current = ""
            else:
                self.misses = 0
        if hit != self.last:
            self.last = hit
            self.hits = 0
        if hit and hit != self.current:
            self.hits += 1
            if self.hits == HITS_TO_BEGIN:
                self.digits.append(hit)
                self.current = hit
                self.misses = 0


def reference_detect(samples: npt.ArrayLike) -> str:
    """Digits found in 8 kHz mono audio (float in [-1, 1] or int16)."""
    x = _as_int_scale(samples)
    n = x.size - x.size % GSIZE
    blocks = x[:n].reshape(-1, GSIZE)
    k = np.arange(GSIZE)
    freqs = np.array(_ROWS + _COLS)
    basis = np.exp(-2j * np.pi * freqs[None, :] * k[:, None] / 8000.0)
    power = np.abs(blocks @ basis) ** 2
    energy = np.einsum("ij,ij->i", blocks, blocks)
    deb = _Debounce()
    for p, e in zip(power.tolist(), energy.tolist(), strict=True):
        deb.block(_hit(p[:4], p[4:], e))
    return "".join(deb.digits)


class PerSampleReference:
    """The same detector as a per-sample Goertzel recurrence in plain Python."""

    def __init__(self) -> None:
        self._coef = [2.0 * math.cos(2.0 * math.pi * f / 8000.0) for f in _ROWS + _COLS]
        self._s1 = [0.0] * 8
        self._s2 = [0.0] * 8
        self._energy = 0.0
        self._count = 0
        self._deb = _Debounce()

    @property
    def digits(self) -> str:
        return "".join(self._deb.digits)

    def feed(self, frame: npt.ArrayLike) -> None:
        coef, s1, s2 = self._coef, self._s1, self._s2
        for v in _as_int_scale(frame).tolist():
            self._energy += v * v
            for i in range(8):
                s0 = v + coef[i] * s1[i] - s2[i]
                s2[i] = s1[i]
                s1[i] = s0
            self._count += 1
            if self._count == GSIZE:
                power = [s1[i] * s1[i] + s2[i] * s2[i] - coef[i] * s1[i] * s2[i] for i in range(8)]
                self._deb.block(_hit(power[:4], power[4:], self._energy))
                self._s1 = s1 = [0.0] * 8
                self._s2 = s2 = [0.0] * 8
                self._energy = 0.0
                self._count = 0
