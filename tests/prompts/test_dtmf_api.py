"""DTMF generator, streaming and batch APIs, files, redaction, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prompts.dtmf import (
    KEYS,
    DigitEvent,
    DtmfDetector,
    DtmfError,
    detect,
    detect_batch,
    detect_file,
    generate,
    redact,
    to_int16,
)
from prompts.dtmf_reference import PerSampleReference, reference_detect
from prompts.g711 import round_trip

RATE = 8000


def _stream(x: np.ndarray, frame: int) -> list[DigitEvent]:
    det = DtmfDetector(RATE)
    events: list[DigitEvent] = []
    for i in range(0, x.size, frame):
        events.extend(det.feed(x[i : i + frame]))
    return events + det.flush()


def test_generate_is_float32_and_rejects_unknown_digits() -> None:
    x = generate("1#", RATE, tone_ms=50, gap_ms=50)
    assert x.dtype == np.float32 and x.size == 4 * 400
    assert float(np.max(np.abs(x))) < 1.0
    with pytest.raises(DtmfError, match="not a DTMF digit"):
        generate("12E")


def test_detect_reports_digits_with_start_and_end_times() -> None:
    x = generate("123#", RATE, tone_ms=80, gap_ms=120, lead_ms=100)
    found = detect(x, RATE)
    assert found.digits == "123#"
    for k, span in enumerate(found.events):
        start = 0.1 + k * 0.2
        assert abs(span.start_s - start) <= 0.006
        assert abs(span.end_s - (start + 0.08)) <= 0.006
    doc = found.to_json()
    assert doc["digits"] == "123#"
    assert set(doc["events"][0]) == {"digit", "start_s", "end_s"}  # type: ignore[index]


@pytest.mark.parametrize("frame", [160, 80, 37, 320, 1000])
def test_streaming_matches_batch_for_any_frame_size(frame: int) -> None:
    rng = np.random.default_rng(frame)
    x = generate(KEYS, RATE, tone_ms=45, gap_ms=45, lead_ms=13, level_dbm0=-20)
    x = (x + rng.normal(0, 0.003, x.size)).astype(np.float32)
    events = _stream(x, frame)
    starts = [e for e in events if e.kind == "start"]
    ends = [e for e in events if e.kind == "end"]
    batch = detect_batch(x[None, :], RATE)[0]
    assert "".join(e.digit for e in starts) == batch.digits == KEYS
    assert [e.time_s for e in starts] == [s.start_s for s in batch.events]
    assert [e.time_s for e in ends] == [s.end_s for s in batch.events]


def test_streaming_events_come_in_order_and_after_the_audio() -> None:
    x = generate("5", RATE, tone_ms=200, gap_ms=0, lead_ms=100)
    x = np.concatenate((x, np.zeros(800, np.float32)))
    det = DtmfDetector(RATE)
    seen = []
    for k in range(0, x.size, 160):
        for ev in det.feed(x[k : k + 160]):
            seen.append((ev.kind, round(ev.time_s, 3), (k + 160) / RATE))
    assert [s[0] for s in seen] == ["start", "end"]
    (_, t_start, fed_start), (_, t_end, fed_end) = seen
    assert t_start == 0.1 and t_end == 0.3
    assert t_start < fed_start <= t_start + 0.06  # reported within 60 ms
    assert t_end < fed_end <= t_end + 0.06


def test_int16_input_and_g711_round_trip() -> None:
    x = generate("0123456789", RATE, tone_ms=50, gap_ms=50)
    for law in ("ulaw", "alaw"):
        pcm = round_trip(to_int16(x), law)
        assert detect(pcm, RATE).digits == "0123456789"
        assert "".join(e.digit for e in _stream(pcm, 160) if e.kind == "start") == "0123456789"


def test_batch_over_many_channels_of_different_lengths() -> None:
    chans = [
        generate(d * (k % 3 + 1), RATE, tone_ms=60, gap_ms=60, lead_ms=7 * k)
        for k, d in enumerate(KEYS)
    ]
    results = detect_batch(chans, RATE)
    assert [r.digits for r in results] == [d * (k % 3 + 1) for k, d in enumerate(KEYS)]


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_detect_file_any_rate_mono_and_stereo(tmp_path: Path, rate: int) -> None:
    x = generate("159#", rate, tone_ms=70, gap_ms=70, lead_ms=50)
    mono = tmp_path / "mono.wav"
    sf.write(mono, to_int16(x), rate, subtype="PCM_16")
    assert detect_file(mono).digits == "159#"
    # Stereo: digits on the left only, then on both channels.
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([x, np.zeros_like(x)], axis=1), rate, subtype="PCM_16")
    assert detect_file(stereo).digits == "159#"
    sf.write(stereo, np.stack([x, x], axis=1), rate, subtype="PCM_16")
    assert detect_file(stereo).digits == "159#"


def test_redact_silences_tones_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(RATE * 2) / RATE
    voice = (0.1 * np.sin(2 * np.pi * 300 * t) * (1 + rng.normal(0, 0.05, t.size))).astype(
        np.float32
    )
    card = generate("4111111111111111", RATE, tone_ms=50, gap_ms=50, lead_ms=200)
    mixed = voice.copy()
    mixed[: card.size] += card
    out, found = redact(mixed, RATE)
    assert found.digits == "4111111111111111"
    assert detect(out, RATE).digits == ""
    assert reference_detect(out) == ""
    assert out.shape == mixed.shape
    after = int((found.events[-1].end_s + 0.05) * RATE)
    assert np.array_equal(out[after:], mixed[after:])  # audio after the digits untouched


def test_per_sample_reference_agrees_with_block_reference() -> None:
    x = generate("123A456B789C*0#D", RATE, tone_ms=60, gap_ms=60)
    ref = PerSampleReference()
    for i in range(0, x.size, 160):
        ref.feed(x[i : i + 160])
    assert ref.digits == reference_detect(x) == "123A456B789C*0#D"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homeline", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_generate_detect_json_and_redact(tmp_path: Path) -> None:
    wav = tmp_path / "out.wav"
    gen = _cli("dtmf", "generate", "123#", "-o", str(wav), cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr
    det = _cli("dtmf", "detect", str(wav), "--json", cwd=tmp_path)
    assert det.returncode == 0, det.stderr
    doc = json.loads(det.stdout)
    assert doc["digits"] == "123#"
    assert [e["digit"] for e in doc["events"]] == list("123#")
    assert all(set(e) == {"digit", "start_s", "end_s"} for e in doc["events"])
    assert all(e["end_s"] - e["start_s"] == pytest.approx(0.08, abs=0.006) for e in doc["events"])
    plain = _cli("dtmf", "detect", str(wav), cwd=tmp_path)
    assert "digits: 123#" in plain.stdout
    red = tmp_path / "red.wav"
    r = _cli("dtmf", "redact", str(wav), "-o", str(red), cwd=tmp_path)
    assert r.returncode == 0 and "4 DTMF tone(s) silenced" in r.stdout
    assert (
        json.loads(_cli("dtmf", "detect", str(red), "--json", cwd=tmp_path).stdout)["digits"] == ""
    )
    bad = _cli("dtmf", "detect", str(tmp_path / "missing.wav"), cwd=tmp_path)
    assert bad.returncode == 2 and "missing.wav" in bad.stderr


def test_redact_also_silences_tones_too_short_to_be_digits() -> None:
    short = generate("7", RATE, tone_ms=22, gap_ms=200, lead_ms=100)
    assert detect(short, RATE).digits == ""  # Q.24: <= 23 ms is not a digit ...
    out, found = redact(short, RATE)
    assert found.digits == "7"  # ... but a listener would still hear which key it was
    assert float(np.max(np.abs(out))) == 0.0
    # A key press cut by the start of the recording.
    cut = generate("9", RATE, tone_ms=80, gap_ms=200)[400:]
    out, found = redact(cut, RATE)
    assert found.digits == "9" and float(np.max(np.abs(out))) == 0.0


@pytest.mark.parametrize("rate", [16000, 48000])
def test_streaming_at_wideband_rates(rate: int) -> None:
    x = generate(KEYS, rate, tone_ms=40, gap_ms=40, lead_ms=10, level_dbm0=-28)
    det = DtmfDetector(rate)
    frame = rate // 50
    events = []
    for i in range(0, x.size, frame):
        events.extend(det.feed(x[i : i + frame]))
    events.extend(det.flush())
    assert "".join(e.digit for e in events if e.kind == "start") == KEYS
    assert detect(generate("5", rate, tone_ms=23), rate).digits == ""
    with pytest.raises(DtmfError, match="multiple of 200 Hz"):
        DtmfDetector(44100)
