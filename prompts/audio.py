"""Prompt audio processing: trim, loudness, fades, peak limit (numpy only)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["active_level_dbfs", "trim_silence", "normalize", "fade", "peak_dbfs"]

FloatArray = npt.NDArray[np.float32]

_FRAME_S = 0.010
# Frames more than this far below the loudest 10 ms frame are not "active".
# A simplified ITU-T P.56 active speech level: mean power over active frames only.
_ACTIVE_RANGE_DB = 30.0
_FLOOR = 1e-12


def _frame_power(x: FloatArray, rate: int) -> FloatArray:
    n = max(1, int(rate * _FRAME_S))
    usable = x.size - x.size % n
    if usable == 0:
        return np.array([float(np.mean(x * x)) if x.size else 0.0], np.float32)
    frames = x[:usable].reshape(-1, n)
    return np.asarray(np.mean(frames * frames, axis=1), dtype=np.float32)


def active_level_dbfs(x: FloatArray, rate: int) -> float:
    """Mean power of the active (speech) frames, dB relative to a full-scale square wave.

    A full-scale sine reads -3.01 dBFS. Silence reads -inf... clamped to -120.
    """
    power = _frame_power(x, rate)
    peak = float(power.max()) if power.size else 0.0
    if peak <= _FLOOR:
        return -120.0
    active = power[power >= peak * 10 ** (-_ACTIVE_RANGE_DB / 10)]
    return float(10 * np.log10(max(float(active.mean()), _FLOOR)))


def peak_dbfs(x: FloatArray) -> float:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return -120.0 if peak <= 1e-6 else float(20 * np.log10(peak))


def trim_silence(
    x: FloatArray, rate: int, threshold_db: float = -45.0, keep_s: float = 0.05
) -> FloatArray:
    """Drop leading/trailing 10 ms frames quieter than ``threshold_db`` dBFS, keeping ``keep_s``."""
    n = max(1, int(rate * _FRAME_S))
    power = _frame_power(x, rate)
    loud = np.flatnonzero(power >= 10 ** (threshold_db / 10))
    if loud.size == 0:
        return x[:0]
    keep = int(keep_s * rate)
    start = max(0, int(loud[0]) * n - keep)
    end = min(x.size, (int(loud[-1]) + 1) * n + keep)
    return x[start:end]


def normalize(
    x: FloatArray, rate: int, target_dbfs: float, peak_limit_dbfs: float = -1.0
) -> tuple[FloatArray, float]:
    """Scale to ``target_dbfs`` active level, never letting the peak pass ``peak_limit_dbfs``.

    Returns the audio and the gain applied (dB). When the peak limit wins, the
    result is quieter than the target rather than clipped.
    """
    level = active_level_dbfs(x, rate)
    if level <= -119.0:
        return x, 0.0
    gain_db = target_dbfs - level
    peak = peak_dbfs(x)
    gain_db = min(gain_db, peak_limit_dbfs - peak)
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32), gain_db


def fade(x: FloatArray, rate: int, ms: float = 10.0) -> FloatArray:
    """Raised-cosine fade in and out (avoids clicks at the cut points)."""
    n = min(int(rate * ms / 1000), x.size // 2)
    if n <= 0:
        return x
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y
