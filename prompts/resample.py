"""Rational-ratio resampling with a windowed-sinc polyphase filter (numpy only).

Used to bring espeak-ng output (22 050 Hz) to the 8 kHz / 16 kHz Asterisk plays
natively, and to bring any WAV to the detector's rate.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt

__all__ = ["resample", "to_mono"]

FloatArray = npt.NDArray[np.float32]

_HALF_TAPS = 16  # zero crossings each side of the sinc, per input sample at the lower rate
_CHUNK = 1 << 16  # output samples per block (bounds memory on long files)


def to_mono(samples: npt.ArrayLike) -> FloatArray:
    """Average the channels of a (frames, channels) array; 1-D input passes through."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected 1-D or (frames, channels) audio, got shape {x.shape}")
    return np.asarray(x.mean(axis=1), dtype=np.float32)


def resample(samples: npt.ArrayLike, rate_in: int, rate_out: int) -> FloatArray:
    """Resample 1-D audio from ``rate_in`` to ``rate_out`` Hz.

    Kaiser-windowed sinc, cut-off at 0.95 of the lower Nyquist frequency, so a
    22 050 -> 8000 Hz conversion keeps the telephone band (300-3400 Hz) flat and
    removes what would alias.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects 1-D audio, got shape {x.shape}")
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    if rate_in == rate_out or x.size == 0:
        return x.copy()
    g = gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    # Filter designed at the up-sampled rate; cut-off relative to the lower rate.
    ratio = min(1.0, up / down)
    cutoff = 0.95 * ratio  # fraction of the input Nyquist
    half = int(np.ceil(_HALF_TAPS / ratio))
    n_out = int(np.ceil(x.size * up / down))
    out = np.empty(n_out, dtype=np.float32)
    padded = np.concatenate([np.zeros(half + 1, np.float32), x, np.zeros(half + 2, np.float32)])
    taps = np.arange(-half, half + 1)
    beta = 8.0
    # Each phase p (0..up-1) of the output grid has its own set of taps.
    phases = np.arange(up)[:, None] / up
    t = taps[None, :] - phases  # distance (input samples) from each tap to the output instant
    window = np.kaiser(2 * half + 3, beta)[1:-1]
    bank = (cutoff * np.sinc(cutoff * t) * window[None, :]).astype(np.float32)
    for start in range(0, n_out, _CHUNK):
        idx = np.arange(start, min(n_out, start + _CHUNK))
        pos = idx * down  # position on the up-sampled grid
        base = pos // up
        phase = pos % up
        gather = base[:, None] + taps[None, :] + half + 1
        out[start : start + idx.size] = np.einsum("ij,ij->i", padded[gather], bank[phase])
    return out
