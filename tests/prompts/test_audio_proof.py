"""The audio-flow proof: a probe WAV one side plays, a recording the other side checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from prompts.audio_proof import verify_heard, write_probe
from prompts.g711 import round_trip
from prompts.resample import resample


def test_probe_heard_after_g711_and_resampling_in_a_stereo_recording(tmp_path: Path) -> None:
    probe = write_probe(tmp_path / "probe.wav", "1379")
    info = sf.info(str(probe))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    pcm, _ = sf.read(str(probe), dtype="int16")
    # What a far end records: mu-law leg, 0.7 s late, at 16 kHz, probe on the right channel.
    heard = round_trip(pcm, "ulaw").astype(np.float32) / 32768
    heard = np.concatenate((np.zeros(5600, np.float32), heard))
    up = resample(heard, 8000, 16000)
    rng = np.random.default_rng(0)
    rec = np.stack([rng.normal(0, 0.01, up.size), up + rng.normal(0, 0.003, up.size)], axis=1)
    rec_path = tmp_path / "rec.wav"
    sf.write(str(rec_path), rec, 16000, subtype="PCM_16")
    proof = verify_heard(rec_path, "1379")
    assert proof.ok and proof.heard == "1379", proof.detail
    assert "expected '1379', heard '1379'" in proof.detail and "16000 Hz, 2 ch" in proof.detail


def test_silence_or_wrong_digits_fail_with_a_reason(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    proof = verify_heard(silent, "1379")
    assert not proof.ok and proof.heard == "" and "heard ''" in proof.detail
    other = write_probe(tmp_path / "other.wav", "2468")
    assert not verify_heard(other, "1379").ok
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a wav")
    bad = verify_heard(broken, "1379")
    assert not bad.ok and "cannot read as audio" in bad.detail


def test_looped_probe_still_passes(tmp_path: Path) -> None:
    probe = write_probe(tmp_path / "p.wav", "1379", rate=16000)
    pcm, rate = sf.read(str(probe), dtype="int16")
    looped = tmp_path / "looped.wav"
    sf.write(str(looped), np.concatenate([pcm[3000:], pcm, pcm]), rate, subtype="PCM_16")
    proof = verify_heard(looped, "1379")
    assert proof.ok and "1379" in proof.heard, proof.detail


def test_verify_samples_in_memory() -> None:
    from prompts.audio_proof import probe_samples, verify_samples

    probe = probe_samples("1379", 8000)
    ok = verify_samples(probe, 8000, "1379")
    assert ok.ok and ok.heard == "1379" and "8000 Hz" in ok.detail
    assert not verify_samples(np.zeros(8000, np.float32), 8000, "1379").ok
