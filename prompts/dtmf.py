"""DTMF generation and detection (numpy), meeting the ITU-T Q.24 receiver figures.

Levels are in dBm0 with full scale (1.0 float, 32767 int16) as the G.711 mu-law
overload point, a sine at +3.17 dBm0 (ITU-T G.711, the digital milliwatt is
0 dBm0). ``generate`` returns float32 audio in [-1, 1].

How the detector works (one analysis grid shared by the streaming and batch APIs):

- the signal is cut in 5 ms sub-blocks; for each one the complex DFT at the 8
  DTMF frequencies is one small matrix product (Goertzel's maths, vectorised);
- every 10 ms a 20 ms window (4 sub-blocks, summed phase-coherently) is
  *classified*: strongest row/column, level, twist, relative peak, share of the
  window energy in the pair (purity) and the measured frequency offset of each
  tone (phase advance between windows 10 ms apart) against the Q.24 limits;
- two consecutive classified windows begin a digit; its edges are measured on
  the 5 ms sub-blocks: a sub-block is "on" while the pair holds half of its
  energy, which is where a tone covers half of it, whatever the level. So the
  duration and gap figures of Q.24 (accept >= 40 ms, reject <= 23 ms, a 10 ms
  drop-out does not split, a 40 ms pause does) do not depend on the level.

ITU-T Q.24 (11/88) Table 1, AT&T column: frequency tolerance accept <= 1.5 %
(+2 Hz for the generator), reject >= 3.5 %; twist +4/-8 dB; signal duration
accept >= 40 ms, reject <= 23 ms; pause >= 40 ms; interruption <= 10 ms
bridged; levels 0 to -25 dBm0 accepted, <= -55 dBm0 rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "ROWS",
    "COLS",
    "KEYS",
    "FULL_SCALE_DBM0",
    "DtmfError",
    "DigitEvent",
    "DigitSpan",
    "Detection",
    "DetectorSettings",
    "DtmfDetector",
    "dbm0_to_amplitude",
    "tone_pair",
    "generate",
    "to_int16",
    "detect",
    "detect_batch",
    "detect_file",
    "redact",
    "REDACT_SETTINGS",
]

ROWS: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
COLS: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"
FULL_SCALE_DBM0 = 3.17  # ITU-T G.711 mu-law: full-scale sine is +3.17 dBm0
_FREQS = np.array(ROWS + COLS)

FloatArray = npt.NDArray[np.float32]


class DtmfError(ValueError):
    """Bad input to the DTMF generator or detector (unknown digit, bad rate, ...)."""


@dataclass(frozen=True, slots=True)
class DigitEvent:
    """A digit began (``kind == "start"``) or ended, at ``time_s`` from stream start."""

    kind: Literal["start", "end"]
    digit: str
    time_s: float
    channel: int = 0


@dataclass(frozen=True, slots=True)
class DigitSpan:
    """One detected digit with its start and end time (seconds)."""

    digit: str
    start_s: float
    end_s: float

    def to_json(self) -> dict[str, object]:
        return {
            "digit": self.digit,
            "start_s": round(self.start_s, 4),
            "end_s": round(self.end_s, 4),
        }


@dataclass(frozen=True, slots=True)
class Detection:
    digits: str
    events: tuple[DigitSpan, ...]

    def to_json(self) -> dict[str, object]:
        return {"digits": self.digits, "events": [e.to_json() for e in self.events]}


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds; defaults are set between the Q.24 accept and reject figures."""

    min_level_dbm0: float = -42.0  # per tone; Q.24 accepts -28 (pair at -25), rejects -55
    max_reverse_twist_db: float = 6.0  # high tone above low; Q.24 accepts +4 dB
    max_normal_twist_db: float = 10.0  # low tone above high; Q.24 accepts 8 dB
    relative_peak_db: float = 8.0  # best row/col above the others (as Asterisk dsp.c)
    min_purity: float = 0.75  # share of the 20 ms window's power in the tone pair
    # Frequency offset limit per tone, as a position between Q.24's accept edge
    # (1.5 % + 2 Hz) and reject edge (3.5 %): 0 = accept edge, 1 = reject edge.
    # Below the middle: the offset estimate is precise (phase advance over
    # 10 ms), and music held between the two edges is then not taken for a digit.
    freq_limit: float = 0.35
    min_on_ms: float = 30.0  # Q.24: accept >= 40 ms, reject <= 23 ms
    min_off_ms: float = 25.0  # Q.24: pause >= 40 ms splits, drop-out <= 10 ms does not
    edge_purity: float = 0.5  # a sub-block is "on" while the pair holds half its power
    hits_to_begin: int = 2  # consecutive classified 20 ms windows (10 ms apart)


_DEFAULT = DetectorSettings()
_GROUP_OFFSET = np.array([0, 4])
# Redaction errs the other way: a tone too short to count as a digit still
# reveals it to a listener, so anything from ~15 ms on is silenced.
REDACT_SETTINGS = DetectorSettings(min_on_ms=15.0, hits_to_begin=1)


def dbm0_to_amplitude(level_dbm0: float) -> float:
    """Peak amplitude (full scale 1.0) of a sine at ``level_dbm0``."""
    return float(10.0 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20.0))


def _key_freqs(digit: str) -> tuple[float, float]:
    idx = KEYS.find(digit.upper()) if len(digit) == 1 else -1
    if idx < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r} (allowed: {KEYS})")
    return ROWS[idx // 4], COLS[idx % 4]


def tone_pair(
    low_hz: float,
    high_hz: float,
    duration_s: float,
    rate: int = 8000,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    phase: tuple[float, float] = (0.0, 0.0),
    start_sample: int = 0,
) -> FloatArray:
    """Two summed sines; ``level_dbm0`` is the low tone, the high one is ``twist_db`` above.

    ``start_sample`` continues the phase of a longer tone (for drop-out tests).
    """
    n = int(round(duration_s * rate))
    t = (np.arange(n) + start_sample) / rate
    a_low = dbm0_to_amplitude(level_dbm0)
    a_high = dbm0_to_amplitude(level_dbm0 + twist_db)
    sig = a_low * np.sin(2 * np.pi * low_hz * t + phase[0]) + a_high * np.sin(
        2 * np.pi * high_hz * t + phase[1]
    )
    return sig.astype(np.float32)


def generate(
    digits: str,
    rate: int = 8000,
    tone_ms: float = 80.0,
    gap_ms: float = 80.0,
    level_dbm0: float = -7.0,
    twist_db: float = 2.0,
    lead_ms: float = 0.0,
) -> FloatArray:
    """Float32 audio of ``digits`` (``0-9 * # A-D``), each tone followed by ``gap_ms``.

    ``level_dbm0`` is the low tone's level, the high tone is ``twist_db`` above
    (a typical sender: -7 dBm0 low / -5 dBm0 high).
    """
    if rate < 4000:
        raise DtmfError(f"rate {rate} Hz is too low for DTMF (need >= 4000)")
    parts: list[FloatArray] = [np.zeros(int(round(lead_ms * rate / 1000)), np.float32)]
    gap = np.zeros(int(round(gap_ms * rate / 1000)), np.float32)
    for d in digits:
        if d in " ,-":
            parts.append(gap)
            continue
        low, high = _key_freqs(d)
        parts.append(tone_pair(low, high, tone_ms / 1000, rate, level_dbm0, twist_db))
        parts.append(gap)
    return np.concatenate(parts).astype(np.float32)


def to_int16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Float [-1, 1] -> int16 with rounding and saturation."""
    x = np.asarray(samples, dtype=np.float64) * 32768.0
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _as_float(samples: npt.ArrayLike) -> FloatArray:
    x = np.asarray(samples)
    if x.dtype == np.int16:
        scaled: FloatArray = np.multiply(x, np.float32(1.0 / 32768.0), dtype=np.float32)
        return scaled
    return x.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True, slots=True)
class _Grid:
    """Analysis constants for one sample rate."""

    rate: int
    sub: int  # samples per 5 ms sub-block
    basis: FloatArray  # (sub, 16): interleaved cos / -sin, so (.. @ basis).view(complex64)
    weights: npt.NDArray[np.complex64]  # (4, 8): rotation of each sub-block in the window
    lag_rot: npt.NDArray[np.complex64]  # (8,): removes the nominal phase advance over 10 ms
    p_min: float  # per-tone power threshold (mean square)
    tol_hz: npt.NDArray[np.float64]  # (8,) frequency offset limit
    max_reverse: float  # power ratios from the settings' dB figures
    max_normal: float
    relative_peak: float
    half_basis: FloatArray  # (2*sub, 16): DFT of a 10 ms half, interleaved re/im
    half_rot: FloatArray  # (16, 16): real form of "times weights[2]" (second half's phase)
    frame_basis: FloatArray  # (6*sub, 32): both 20 ms windows of a 20 ms frame + 10 ms before
    frame_energy: FloatArray  # (6*sub, 2): the same windows' sums of squares
    pair_sum: FloatArray  # (32, 16): re^2 + im^2 -> power, per window and tone

    @property
    def window(self) -> int:
        return 4 * self.sub


_GRIDS: dict[tuple[int, DetectorSettings], _Grid] = {}


def _grid(rate: int, settings: DetectorSettings) -> _Grid:
    key = (rate, settings)
    g = _GRIDS.get(key)
    if g is not None:
        return g
    if rate % 200 or rate < 4000:
        raise DtmfError(f"detector rate must be a multiple of 200 Hz and >= 4000, got {rate}")
    sub = rate // 200
    w = 2 * np.pi * _FREQS / rate
    n = np.arange(sub)[:, None]
    basis = np.empty((sub, 16), np.float32)
    basis[:, 0::2] = np.cos(w[None, :] * n)
    basis[:, 1::2] = -np.sin(w[None, :] * n)
    q = np.arange(4)[:, None]
    weights = np.exp(-1j * w[None, :] * q * sub).astype(np.complex64)
    lag_rot = np.exp(-1j * w * 2 * sub).astype(np.complex64)
    amp = dbm0_to_amplitude(settings.min_level_dbm0)
    p_min = amp * amp / 2.0
    accept_edge = _FREQS * 0.015 + 2.0
    reject_edge = _FREQS * 0.035
    tol = accept_edge + settings.freq_limit * (reject_edge - accept_edge)
    n2 = np.arange(2 * sub)[:, None]
    half_basis = np.empty((2 * sub, 16), np.float32)
    half_basis[:, 0::2] = np.cos(w[None, :] * n2)
    half_basis[:, 1::2] = -np.sin(w[None, :] * n2)
    # (re + j im) * (c + j d) as a row vector times a block-diagonal matrix.
    half_rot = np.zeros((16, 16), np.float32)
    for k, rot in enumerate(weights[2]):
        c, d = float(rot.real), float(rot.imag)
        half_rot[2 * k, 2 * k], half_rot[2 * k, 2 * k + 1] = c, d
        half_rot[2 * k + 1, 2 * k], half_rot[2 * k + 1, 2 * k + 1] = -d, c
    n4 = np.arange(4 * sub)[:, None]
    win = np.empty((4 * sub, 16), np.float32)
    win[:, 0::2] = np.cos(w[None, :] * n4)
    win[:, 1::2] = -np.sin(w[None, :] * n4)
    frame_basis = np.zeros((6 * sub, 32), np.float32)
    frame_basis[: 4 * sub, :16] = win
    frame_basis[2 * sub :, 16:] = win
    frame_energy = np.zeros((6 * sub, 2), np.float32)
    frame_energy[: 4 * sub, 0] = 1.0
    frame_energy[2 * sub :, 1] = 1.0
    pair_sum = np.zeros((32, 16), np.float32)
    pair_sum[np.arange(32), np.arange(32) // 2] = 1.0
    g = _Grid(
        rate,
        sub,
        basis,
        weights,
        lag_rot,
        p_min,
        tol,
        10.0 ** (settings.max_reverse_twist_db / 10.0),
        10.0 ** (settings.max_normal_twist_db / 10.0),
        10.0 ** (-settings.relative_peak_db / 10.0),
        half_basis,
        half_rot,
        frame_basis,
        frame_energy,
        pair_sum,
    )
    _GRIDS[key] = g
    return g


def _classify(
    xw: npt.NDArray[np.complex64],
    first: npt.NDArray[np.complex64],
    second: npt.NDArray[np.complex64],
    energy: npt.NDArray[np.float32],
    g: _Grid,
    s: DetectorSettings,
) -> npt.NDArray[np.int8]:
    """Digit index (0-15) or -1 for each 20 ms window.

    ``xw``: (..., 8) window DFTs; ``first``/``second``: the DFTs of its two
    10 ms halves (each referenced to its own start), whose phase difference
    gives each tone's frequency offset; ``energy``: (...) window sum of squares.
    """
    shape = xw.shape[:-1]
    out = np.full(shape, -1, np.int8)
    wlen = g.window
    power = xw.real * xw.real + xw.imag * xw.imag  # |X|^2
    # Element-wise maxima over column views: a reduction over a length-4 axis
    # is several times slower in numpy.
    br = np.maximum(
        np.maximum(power[..., 0], power[..., 1]), np.maximum(power[..., 2], power[..., 3])
    )
    bc = np.maximum(
        np.maximum(power[..., 4], power[..., 5]), np.maximum(power[..., 6], power[..., 7])
    )
    # Mean-square tone power is 2|X|^2 / W^2; window mean power is energy / W.
    scale = 2.0 / (wlen * wlen)
    # Cheap gate first: level and purity before any offset compensation (which
    # can raise a tone's power by at most 1 / sinc^2 of the offset limit < 2).
    gate = (np.minimum(br, bc) * scale * 2.0 >= g.p_min) & (
        (br + bc) * 2.0 * 2.0 >= s.min_purity * wlen * energy
    )
    idx = np.nonzero(gate)
    if idx[0].size == 0:
        return out
    pw = power[idx]
    groups = pw.reshape(-1, 2, 4)  # (K, row/column, 4)
    best = groups.argmax(-1)  # (K, 2): best row, best column
    sel = best + _GROUP_OFFSET  # frequency indices 0-7
    k = np.arange(sel.shape[0])[:, None]
    # Phase advance over 10 ms minus the nominal one: (w - w_k) * 2 * sub.
    # Both halves lie inside the window, so a window the tone fully covers
    # gives an unbiased estimate even when its neighbours do not.
    z = second[idx][k, sel] * np.conj(first[idx][k, sel]) * g.lag_rot[sel]
    df = np.angle(z) * (g.rate / (4 * np.pi * g.sub))  # (K, 2) Hz
    ok = (np.abs(df) <= g.tol_hz[sel]).all(-1)
    # Undo the rectangular window's loss for an off-frequency tone (Dirichlet ~ sinc).
    p = pw[k, sel] / np.maximum(np.sinc(df * (wlen / g.rate)) ** 2, 0.25)  # (K, 2)
    pr, pc = p[:, 0], p[:, 1]
    ok &= p.min(-1) * scale >= g.p_min
    ok &= (pc <= pr * g.max_reverse) & (pr <= pc * g.max_normal)
    ok &= (pr + pc) * 2.0 >= s.min_purity * wlen * energy[idx]
    # Relative peak: every other row/column at least relative_peak_db below
    # the best one (uncompensated powers, as measured).
    ranked = np.sort(groups, axis=-1)
    ok &= (ranked[..., 2] <= ranked[..., 3] * g.relative_peak).all(-1)
    codes = (best[:, 0] * 4 + best[:, 1]).astype(np.int8)
    out[idx] = np.where(ok, codes, -1)
    return out


def _subblock_dft(x: FloatArray, g: _Grid) -> tuple[npt.NDArray[np.complex64], FloatArray]:
    """(..., n*sub) samples -> (..., n, 8) complex sub-block DFTs and (..., n) energies."""
    blocks = x.reshape(*x.shape[:-1], -1, g.sub)
    spec = np.ascontiguousarray(blocks @ g.basis).view(np.complex64)
    energy = np.einsum("...i,...i->...", blocks, blocks)
    return spec, energy


def _windows(
    spec: npt.NDArray[np.complex64], energy: FloatArray, g: _Grid
) -> tuple[
    npt.NDArray[np.complex64], FloatArray, npt.NDArray[np.complex64], npt.NDArray[np.complex64]
]:
    """Coherent 20 ms windows, hop 10 ms, from (..., n, 8) sub-block DFTs (n even).

    Window k covers sub-blocks 2k .. 2k+3 (so it ends at sub-block 2k+3);
    there are n/2 - 1 of them. Returns the window DFTs, energies, and the DFTs
    of each window's two 10 ms halves.
    """
    w = g.weights
    pairs = spec[..., 0::2, :] + spec[..., 1::2, :] * w[1]
    epairs = energy[..., 0::2] + energy[..., 1::2]
    first = pairs[..., :-1, :]
    second = pairs[..., 1:, :]
    xw = first + second * w[2]
    ew = epairs[..., :-1] + epairs[..., 1:]
    return xw, ew, first, second


# --------------------------------------------------------------------------- tracking


@dataclass(slots=True)
class _Candidate:
    code: int
    first: int  # first "on" sub-block
    last: int  # last "on" sub-block
    off: int = 0
    started: bool = False


@dataclass(slots=True)
class _Tracker:
    """Per-channel digit state over the sub-block grid (pure; no I/O)."""

    g: _Grid
    s: DetectorSettings
    channel: int = 0
    keep_events: bool = True  # the batch API only needs the spans
    run_code: int = -1
    run_len: int = 0
    active: _Candidate | None = None
    floor: int = 0  # no digit may begin before this sub-block
    min_on: int = 0
    min_off: int = 0
    events: list[DigitEvent] = field(default_factory=list)
    spans: list[DigitSpan] = field(default_factory=list)
    # "on" decisions for one digit over a slice of sub-blocks, computed at once.
    _mask_code: int = -1
    _mask_src: object = None
    _mask_lo: int = 0
    _mask: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.min_on = int(np.ceil(self.s.min_on_ms / 5.0))
        self.min_off = int(np.ceil(self.s.min_off_ms / 5.0))

    def _t(self, sub_index: int) -> float:
        return sub_index * self.g.sub / self.g.rate

    def on(self, spec: npt.NDArray[np.complex64], energy: FloatArray, i: int, code: int) -> bool:
        """Sub-block ``i`` (index into the arrays) holds the pair of ``code``.

        True while the pair carries ``edge_purity`` of the sub-block's power,
        i.e. while the tone covers about half of it, whatever its level.
        """
        j = i - self._mask_lo
        if code != self._mask_code or spec is not self._mask_src or not 0 <= j < len(self._mask):
            lo = max(0, i - 16)
            hi = min(spec.shape[0], i + 48)
            a = spec[lo:hi, code // 4]
            b = spec[lo:hi, 4 + code % 4]
            tone = (a.real * a.real + a.imag * a.imag + b.real * b.real + b.imag * b.imag) * 2.0
            e = energy[lo:hi]
            self._mask = ((tone >= self.s.edge_purity * self.g.sub * e) & (e > 0.0)).tolist()
            self._mask_code, self._mask_src, self._mask_lo = code, spec, lo
            j = i - lo
        return self._mask[j]

    def run(
        self,
        codes: list[int],
        j: int,
        spec: npt.NDArray[np.complex64],
        energy: FloatArray,
        i_first: int,
        base: int,
        stop_when_idle: bool = False,
    ) -> int:
        """Advance over hops ``codes[j:]``; returns the index after the last one done.

        Hop k classifies the window ending at sub-block ``i_first + 2k + 1``
        (array index) and moves the digit edges over sub-blocks ``i_first + 2k``
        and ``+1``; ``base`` is the absolute sub-block number of array index 0.
        With ``stop_when_idle``, returns after the first hop that leaves the
        tracker idle on an unclassified window (the batch API then jumps ahead).
        """
        hits = self.s.hits_to_begin
        min_on, min_off = self.min_on, self.min_off
        n = len(codes)
        while j < n:
            code = codes[j]
            i0 = i_first + 2 * j
            if code == self.run_code:
                self.run_len += 1
            else:
                self.run_code, self.run_len = code, 1
            cand = self.active
            if cand is not None:
                mask = self._mask
                m = i0 - self._mask_lo
                if (
                    cand.code != self._mask_code
                    or spec is not self._mask_src
                    or not 0 <= m < len(mask) - 1
                ):
                    self.on(spec, energy, i0 + 1, cand.code)  # refreshes the cached slice
                    mask = self._mask
                    m = i0 - self._mask_lo
                if mask[m]:
                    cand.last, cand.off = base + i0, 0
                else:
                    cand.off += 1
                if mask[m + 1]:
                    cand.last, cand.off = base + i0 + 1, 0
                else:
                    cand.off += 1
                if not cand.started and cand.last - cand.first + 1 >= min_on:
                    self._start(cand)
                if cand.off >= min_off or (
                    code >= 0 and code != cand.code and self.run_len >= hits
                ):
                    self._finish(cand)
                    cand = None
            if cand is None:
                if code >= 0:
                    if self.run_len >= hits:
                        self._begin(code, spec, energy, i0 + 1, base)
                elif stop_when_idle:
                    return j + 1
            j += 1
        return j

    def _begin(
        self, code: int, spec: npt.NDArray[np.complex64], energy: FloatArray, i: int, base: int
    ) -> None:
        self.on(spec, energy, i, code)  # caches the decisions for [i - 16, i + 48)
        mask, mlo = self._mask, self._mask_lo
        lo = max(mlo, self.floor - base)
        last = i
        while last > lo and not mask[last - mlo]:
            last -= 1
        first = last
        while first - 1 >= lo and mask[first - 1 - mlo]:
            first -= 1
        cand = _Candidate(code, base + first, base + last, off=i - last)
        self.active = cand
        if cand.last - cand.first + 1 >= self.min_on:
            self._start(cand)

    def _start(self, cand: _Candidate) -> None:
        cand.started = True
        if self.keep_events:
            self.events.append(
                DigitEvent("start", KEYS[cand.code], self._t(cand.first), self.channel)
            )

    def _finish(self, cand: _Candidate) -> None:
        self.active = None
        self.floor = cand.last + 1
        self.run_len = 0 if self.run_code == cand.code else self.run_len
        if cand.started:
            end = self._t(cand.last + 1)
            if self.keep_events:
                self.events.append(DigitEvent("end", KEYS[cand.code], end, self.channel))
            self.spans.append(DigitSpan(KEYS[cand.code], self._t(cand.first), end))

    def flush(self) -> None:
        if self.active is not None:
            self._finish(self.active)


def _history() -> int:
    # Sub-blocks kept for walking back to a digit's first edge: the longest run
    # of "on" sub-blocks before two classified windows is about 8 (40 ms).
    return 16


class DtmfDetector:
    """Streaming detector: ``feed`` frames (any length; 20 ms is typical).

    Accepts float32 in [-1, 1] or int16. Returns the digit-start/digit-end
    events completed by this frame, timestamps in seconds from the first sample.
    A digit's start is reported once it has lasted the minimum duration, its
    end once the minimum pause followed (so events lag the audio by ~25-30 ms).
    """

    def __init__(self, rate: int = 8000, settings: DetectorSettings = _DEFAULT) -> None:
        self.rate = rate
        self.settings = settings
        g = self._g = _grid(rate, settings)
        self._pending = np.zeros(0, np.float32)
        self._hist = _history()
        # The last _hist sub-blocks of audio (zeros before the stream began).
        self._ring = np.zeros(self._hist * g.sub, np.float32)
        self._base = -self._hist  # absolute sub-block number of the ring's start
        self._tracker = _Tracker(g, settings)
        self._tracker.floor = 0
        # Fast gate constants, 10 % looser than _classify's own gate so that a
        # frame it lets pass is never one _classify would have classified.
        wlen = g.window
        self._gate_level = 0.9 * g.p_min * wlen * wlen / 4.0
        self._gate_purity = 0.9 * settings.min_purity * wlen / 4.0

    def feed(self, frame: npt.ArrayLike) -> list[DigitEvent]:
        x = _as_float(frame)
        if x.ndim != 1:
            raise DtmfError(f"feed expects 1-D mono frames, got shape {x.shape}")
        g = self._g
        step = 2 * g.sub
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        usable = x.size - x.size % step
        if usable != x.size:
            self._pending = x[usable:].copy()
            x = x[:usable]
        elif self._pending.size:
            self._pending = self._pending[:0]
        if usable == 0:
            return []
        ring = self._ring
        buf = np.concatenate((ring, x))
        tr = self._tracker
        if tr.active is None and usable == 2 * step:
            # Fast path for the usual 20 ms frame: both windows in one product,
            # then plain Python on four numbers per window.
            seg = buf[ring.size - step :]
            power = ((seg @ g.frame_basis) ** 2) @ g.pair_sum
            groups = power.reshape(4, 4).max(1).tolist()
            e0, e1 = (seg * seg @ g.frame_energy).tolist()
            r0, c0, r1, c1 = groups
            lvl, pur = self._gate_level, self._gate_purity
            if not (
                (min(r0, c0) >= lvl and r0 + c0 >= pur * e0)
                or (min(r1, c1) >= lvl and r1 + c1 >= pur * e1)
            ):
                tr.run_code, tr.run_len = -1, 0
                self._ring = buf[usable:]
                self._base += usable // g.sub
                return []
        elif tr.active is None:
            # Fast path: windows from 10 ms halves (one product), skip if no
            # window could hold a tone pair at all.
            halves = buf[ring.size - step :].reshape(-1, step)
            h = halves @ g.half_basis
            xw = h[:-1] + h[1:] @ g.half_rot
            eh = np.einsum("ij,ij->i", halves, halves)
            sq = xw * xw
            power = sq[:, 0::2] + sq[:, 1::2]
            br = power[:, :4].max(1)
            bc = power[:, 4:].max(1)
            if not (
                (np.minimum(br, bc) >= self._gate_level)
                & (br + bc >= self._gate_purity * (eh[:-1] + eh[1:]))
            ).any():
                tr.run_code, tr.run_len = -1, 0
                self._ring = buf[usable:]
                self._base += usable // g.sub
                return []
        before = len(tr.events)
        all_spec, all_energy = _subblock_dft(buf, g)
        hist = self._hist
        # Windows ending at new sub-blocks 1, 3, ...: each needs the 2 before it.
        xw2, ew, first, second = _windows(all_spec[hist - 2 :], all_energy[hist - 2 :], g)
        codes = _classify(xw2, first, second, ew, g, self.settings)
        if tr.active is not None or codes.max() >= 0:
            tr.run(codes.tolist(), 0, all_spec, all_energy, hist, self._base)
        else:
            tr.run_code, tr.run_len = -1, 0
        self._ring = buf[usable:]
        self._base += usable // g.sub
        return tr.events[before:]

    def flush(self) -> list[DigitEvent]:
        """End of stream: close a digit still sounding."""
        tr = self._tracker
        before = len(tr.events)
        tr.flush()
        return tr.events[before:]

    @property
    def spans(self) -> tuple[DigitSpan, ...]:
        return tuple(self._tracker.spans)


def detect_batch(
    channels: npt.ArrayLike | Sequence[npt.ArrayLike],
    rate: int = 8000,
    settings: DetectorSettings = _DEFAULT,
) -> list[Detection]:
    """Detect on many channels at once: a (channels, samples) array or a list of 1-D arrays."""
    g = _grid(rate, settings)
    if isinstance(channels, np.ndarray) and channels.ndim == 2:
        x = np.asarray(channels)
        if x.dtype not in (np.int16, np.float32):
            x = _as_float(x)
    else:
        seq = [_as_float(c) for c in channels]  # type: ignore[union-attr]
        longest = max((c.size for c in seq), default=0)
        x = np.zeros((len(seq), longest), np.float32)
        for k, c in enumerate(seq):
            x[k, : c.size] = c
    if x.ndim != 2:
        raise DtmfError(f"detect_batch expects (channels, samples), got shape {x.shape}")
    step = 2 * g.sub
    n = x.shape[1] - x.shape[1] % step
    results: list[Detection] = []
    # A few channels at a time: the intermediate arrays then stay in cache.
    chunk = max(1, _BATCH_SAMPLES // max(n, 1))
    for c0 in range(0, x.shape[0], chunk):
        block = _as_float(x[c0 : c0 + chunk, :n])
        results.extend(_detect_block(block, c0, g, settings))
    return results


_BATCH_SAMPLES = 1 << 20  # samples per analysis block in the batch API


def _detect_block(x: FloatArray, c0: int, g: _Grid, settings: DetectorSettings) -> list[Detection]:
    spec, energy = _subblock_dft(np.ascontiguousarray(x), g)
    xw, ew, first, second = _windows(spec, energy, g)
    codes = _classify(xw, first, second, ew, g, settings)
    results: list[Detection] = []
    for ch in range(x.shape[0]):
        tr = _Tracker(g, settings, channel=c0 + ch, keep_events=False)
        row = codes[ch]
        hits = np.flatnonzero(row >= 0)
        if hits.size:
            sp, en = spec[ch], energy[ch]
            codes_list = row.tolist()
            j = int(hits[0])
            while True:
                j = tr.run(codes_list, j, sp, en, 2, 0, stop_when_idle=True)
                nxt = int(np.searchsorted(hits, j))
                if nxt >= hits.size:
                    break
                # Idle until the next classified window.
                j = int(hits[nxt])
                tr.run_code, tr.run_len = -1, 0
            tr.flush()
        results.append(Detection("".join(s.digit for s in tr.spans), tuple(tr.spans)))
    return results


def detect(
    samples: npt.ArrayLike, rate: int = 8000, settings: DetectorSettings = _DEFAULT
) -> Detection:
    """Detect digits in mono or (frames, channels) audio at any sample rate."""
    from prompts.resample import resample

    x = _as_float(samples)
    if x.ndim == 2:
        per_channel = [resample(x[:, k], rate, 8000) for k in range(x.shape[1])]
        return _merge(detect_batch(per_channel, 8000, settings))
    if x.ndim != 1:
        raise DtmfError(f"expected mono or (frames, channels) audio, got shape {x.shape}")
    if rate % 200 or rate < 4000:
        x, rate = resample(x, rate, 8000), 8000
    return detect_batch(x[None, :], rate, settings)[0]


def _merge(results: Sequence[Detection]) -> Detection:
    """One timeline from several channels; the same digit overlapping in time counts once."""
    spans = sorted((s for r in results for s in r.events), key=lambda s: (s.start_s, s.digit))
    merged: list[DigitSpan] = []
    for s in spans:
        if merged and merged[-1].digit == s.digit and s.start_s < merged[-1].end_s:
            last = merged[-1]
            merged[-1] = DigitSpan(s.digit, last.start_s, max(last.end_s, s.end_s))
        else:
            merged.append(s)
    return Detection("".join(s.digit for s in merged), tuple(merged))


def detect_file(path: str | Path, settings: DetectorSettings = _DEFAULT) -> Detection:
    """Detect digits in a sound file (any rate, mono or multi-channel)."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[1] == 1:
        return detect(data[:, 0], int(rate), settings)
    return detect(data, int(rate), settings)


def redact(
    samples: npt.ArrayLike,
    rate: int = 8000,
    pad_ms: float = 20.0,
    settings: DetectorSettings = REDACT_SETTINGS,
) -> tuple[FloatArray, Detection]:
    """Silence every DTMF tone (plus ``pad_ms`` each side) in mono audio.

    Uses :data:`REDACT_SETTINGS` (tones from ~15 ms on, shorter than Q.24's
    digits) so partial and clipped key presses go too. Returns the redacted
    float32 audio (same rate and length) and the tones found.
    """
    x = _as_float(samples).copy()
    if x.ndim != 1:
        raise DtmfError(f"redact expects mono audio, got shape {x.shape}")
    found = detect(x, rate, settings)
    pad = pad_ms / 1000.0
    for span in found.events:
        a = max(0, int((span.start_s - pad) * rate))
        b = min(x.size, int(np.ceil((span.end_s + pad) * rate)))
        x[a:b] = 0.0
    return x, found
