"""Prove that audio flows on a live call: one side plays in-band DTMF, the other records.

The playing side uses :func:`write_probe` (a 16-bit mono WAV a softphone or
Asterisk ``Playback`` can send); the recording side hands its WAV to
:func:`verify_heard`, which runs the DTMF detector on it. In-band tones survive
G.711 both ways, unlike RFC 4733 events, which prove signalling, not media.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prompts.dtmf import DtmfError, detect, detect_file, generate, to_int16

__all__ = ["AudioProof", "probe_samples", "write_probe", "verify_heard", "verify_samples"]

_LEAD_MS = 300.0  # the far end may need a moment before it records the first packets
_TONE_MS = 120.0
_GAP_MS = 120.0
_LEVEL_DBM0 = -9.0


@dataclass(frozen=True, slots=True)
class AudioProof:
    ok: bool
    heard: str
    detail: str


def probe_samples(digits: str = "1379", rate: int = 8000) -> np.ndarray:
    """Float32 probe audio: lead silence, the digits (120 ms on / 120 ms off), tail."""
    if not digits:
        raise DtmfError("a probe needs at least one digit")
    body = generate(
        digits, rate, tone_ms=_TONE_MS, gap_ms=_GAP_MS, level_dbm0=_LEVEL_DBM0, lead_ms=_LEAD_MS
    )
    return np.concatenate((body, np.zeros(int(rate * 0.3), np.float32)))


def write_probe(path: str | Path, digits: str = "1379", rate: int = 8000) -> Path:
    """Write the probe as a 16-bit mono WAV at ``rate`` and return its path."""
    import soundfile as sf

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), to_int16(probe_samples(digits, rate)), rate, subtype="PCM_16")
    return out


def verify_heard(recorded_wav: str | Path, digits: str = "1379") -> AudioProof:
    """Did ``recorded_wav`` (any rate, mono or stereo) hear ``digits`` in order?

    ``ok`` when the expected sequence appears contiguously in what was heard
    (a looped probe, or a recording that began late and repeats, still passes).
    """
    import soundfile as sf

    path = Path(recorded_wav)
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as exc:  # soundfile raises RuntimeError on bad files
        return AudioProof(False, "", f"{path}: cannot read as audio: {exc}")
    if info.frames == 0:
        return AudioProof(False, "", f"{path}: empty recording (0 frames)")
    found = detect_file(path)
    heard = found.digits
    length = info.frames / info.samplerate
    where = ""
    if found.events:
        where = f", {found.events[0].start_s:.2f}-{found.events[-1].end_s:.2f} s"
    detail = (
        f"{path.name}: expected {digits!r}, heard {heard!r}{where} "
        f"({info.samplerate} Hz, {info.channels} ch, {length:.2f} s)"
    )
    return AudioProof(bool(digits) and digits in heard, heard, detail)


def verify_samples(samples: np.ndarray, rate: int, digits: str = "1379") -> AudioProof:
    """Like :func:`verify_heard` for audio already in memory (float or int16, mono/stereo)."""
    found = detect(samples, rate)
    frames = int(np.asarray(samples).shape[0])
    detail = (
        f"expected {digits!r}, heard {found.digits!r} ({rate} Hz, {frames / rate:.2f} s in memory)"
    )
    return AudioProof(bool(digits) and digits in found.digits, found.digits, detail)
