"""Resampler, G.711 companding and loudness helpers used by the prompt build and tests."""

from __future__ import annotations

import numpy as np
import pytest

from prompts.audio import active_level_dbfs, fade, normalize, trim_silence
from prompts.g711 import alaw_decode, alaw_encode, round_trip, ulaw_decode, ulaw_encode
from prompts.resample import resample


@pytest.mark.parametrize(
    "rate_in,rate_out", [(22050, 8000), (8000, 16000), (44100, 8000), (16000, 8000), (48000, 16000)]
)
def test_resample_keeps_the_telephone_band_and_removes_aliases(rate_in: int, rate_out: int) -> None:
    t = np.arange(rate_in) / rate_in
    for freq in (300.0, 1000.0, 3300.0):
        y = resample(np.sin(2 * np.pi * freq * t).astype(np.float32), rate_in, rate_out)
        assert y.size == int(np.ceil(rate_in * rate_out / rate_in))
        mid = y[rate_out // 10 : -rate_out // 10]
        assert np.sqrt(2 * np.mean(mid**2)) == pytest.approx(1.0, abs=0.02), freq
    if rate_out < rate_in:
        # A tone above the new Nyquist frequency must not fold back into the band.
        y = resample(np.sin(2 * np.pi * (rate_out * 0.6) * t).astype(np.float32), rate_in, rate_out)
        assert np.sqrt(np.mean(y[rate_out // 10 : -rate_out // 10] ** 2)) < 0.01


def test_g711_known_codes_and_idempotence() -> None:
    # ITU-T G.711: mu-law 0xFF and A-law 0xD5 are the codes for zero.
    assert ulaw_encode(np.array([0]))[0] == 0xFF
    assert alaw_encode(np.array([0]))[0] == 0xD5
    assert ulaw_decode(np.array([0x00]))[0] == -32124
    assert alaw_decode(np.array([0xAA]))[0] == 32256
    x = np.arange(-32768, 32768, 7).astype(np.int16)
    for law in ("ulaw", "alaw"):
        y = round_trip(x, law)
        assert np.array_equal(round_trip(y, law), y)
        big = np.abs(x.astype(np.int32)) > 1000
        rel = np.abs(y.astype(np.int32) - x)[big] / np.abs(x.astype(np.int32))[big]
        assert rel.max() < 0.07
    with pytest.raises(ValueError, match="unknown law"):
        round_trip(x, "gsm")


def test_trim_normalize_fade() -> None:
    rate = 8000
    t = np.arange(rate) / rate
    speech = (0.05 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x = np.concatenate((np.zeros(rate, np.float32), speech, np.zeros(rate, np.float32)))
    trimmed = trim_silence(x, rate, keep_s=0.05)
    assert trimmed.size == pytest.approx(rate + 800, abs=160)
    out, gain = normalize(trimmed, rate, -20.0)
    assert active_level_dbfs(out, rate) == pytest.approx(-20.0, abs=0.2)
    assert gain > 0
    # The peak limit wins over the target: quieter, never clipped.
    hot, _ = normalize(trimmed, rate, 0.0, peak_limit_dbfs=-1.0)
    assert np.max(np.abs(hot)) == pytest.approx(10 ** (-1 / 20), rel=1e-3)
    faded = fade(out, rate, 10.0)
    assert abs(faded[0]) < 0.01 * np.max(np.abs(out)) and abs(faded[-1]) < 0.01
