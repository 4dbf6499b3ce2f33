"""WAV helpers for softphone audio: tone generation and simple analysis (numpy).

The conference bridge runs at 8 kHz mono (see :mod:`softphone.host`), so
recordings are 8 kHz mono 16-bit PCM; files to play must be mono 16-bit PCM
(pjmedia's WAV player resamples other rates).
"""
from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_tone_wav", "read_wav", "dominant_frequency", "rms_dbfs", "tone_power_ratio"]


def write_tone_wav(path: str | Path, frequencies: float | Sequence[float], seconds: float,
                   *, rate: int = 8000, amplitude: float = 0.4) -> Path:
    """Write a sine (or a sum of sines, e.g. a DTMF pair) as mono 16-bit PCM."""
    freqs = [frequencies] if isinstance(frequencies, int | float) else list(frequencies)
    if not freqs or not 0 < amplitude <= 1 or seconds <= 0:
        raise ValueError("need at least one frequency, 0 < amplitude <= 1, seconds > 0")
    t = np.arange(int(rate * seconds)) / rate
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    # 10 ms fades avoid clicks that smear the spectrum
    ramp = min(len(t) // 2, rate // 100)
    if ramp:
        env = np.ones(len(t))
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        signal = signal * env
    pcm = np.round(signal * amplitude * 32767).astype("<i2")
    out = Path(path)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return out


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples of a 16-bit PCM WAV as float64 in [-1, 1] (first channel), and the rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data[::channels].astype(np.float64) / 32768.0, rate


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(samples**2)))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def dominant_frequency(samples: np.ndarray, rate: int, *, fmin: float = 100.0,
                       fmax: float = 3800.0) -> float:
    """Frequency (Hz) of the strongest FFT bin between ``fmin`` and ``fmax``."""
    if samples.size < 16:
        raise ValueError("too few samples to analyse")
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    band = (freqs >= fmin) & (freqs <= fmax)
    return float(freqs[band][np.argmax(spectrum[band])])


def tone_power_ratio(samples: np.ndarray, rate: int, frequency: float,
                     *, width: float = 40.0) -> float:
    """Share (0..1) of the signal's power within ``frequency`` +- ``width`` Hz."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    total = float(spectrum[1:].sum())
    if total == 0:
        return 0.0
    return float(spectrum[np.abs(freqs - frequency) <= width].sum()) / total
