"""ITU-T G.711 mu-law and A-law companding (numpy), for round-trip tests and recordings.

Segment tables as in ITU-T G.711 (11/88) Tables 1a/2a: mu-law with bias 33
(132 on the 16-bit scale), A-law on the 13-bit scale with even-bit inversion (0x55).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode", "round_trip"]

Int16Array = npt.NDArray[np.int16]
ByteArray = npt.NDArray[np.uint8]

_ULAW_BIAS = 132
_ULAW_CLIP = 32635


def ulaw_encode(pcm: npt.ArrayLike) -> ByteArray:
    x = np.asarray(pcm, dtype=np.int32)
    sign = (x < 0).astype(np.int32) << 7
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    out: ByteArray = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return out


def ulaw_decode(code: npt.ArrayLike) -> Int16Array:
    b = ~np.asarray(code, dtype=np.int32) & 0xFF
    sign = b & 0x80
    exponent = (b >> 4) & 0x07
    mantissa = b & 0x0F
    mag = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def alaw_encode(pcm: npt.ArrayLike) -> ByteArray:
    x = np.asarray(pcm, dtype=np.int32) >> 3  # 13-bit
    negative = x < 0
    mask = np.where(negative, 0x55, 0xD5)
    mag = np.where(negative, -x - 1, x)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8)


def alaw_decode(code: npt.ArrayLike) -> Int16Array:
    a = np.asarray(code, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where((a & 0x80) != 0, t, -t).astype(np.int16)


def round_trip(pcm: npt.ArrayLike, law: str) -> Int16Array:
    """Encode and decode int16 audio with ``law`` ("ulaw" or "alaw")."""
    if law == "ulaw":
        return ulaw_decode(ulaw_encode(pcm))
    if law == "alaw":
        return alaw_decode(alaw_encode(pcm))
    raise ValueError(f"unknown law {law!r} (allowed: ulaw, alaw)")
