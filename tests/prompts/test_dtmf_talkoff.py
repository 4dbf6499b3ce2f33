"""Talk-off: false digits on speech and hold music, against Asterisk's parameters.

The audio: espeak-ng speech in six languages and four voice variants (about
12 minutes), harmonic hold music (5 minutes) and a pure-sine duet (8 x 2
minutes, the hardest case: two held notes can be a DTMF pair). No digit is
present, so every digit reported is a false one. The reference is the
detector with Asterisk's dsp.c parameters (``prompts.dtmf_reference``).
"""

from __future__ import annotations

import numpy as np
import pytest
from talkoff_audio import RATE, have_espeak, hold_music, sine_duet, speech_corpus

from prompts.dtmf import detect, generate
from prompts.dtmf_reference import reference_detect

pytestmark = [
    pytest.mark.espeak,
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed"),
]


@pytest.fixture(scope="module")
def corpus() -> dict[str, np.ndarray]:
    audio = {f"speech-{k}": v for k, v in speech_corpus().items()}
    audio["hold-music"] = hold_music(300.0)
    for seed in range(8):
        audio[f"sine-duet-{seed}"] = sine_duet(120.0, seed)
    return audio


def test_talkoff_not_worse_than_asterisk_reference(corpus: dict[str, np.ndarray]) -> None:
    ours_total = ref_total = 0
    minutes = 0.0
    for name, audio in corpus.items():
        ours = detect(audio, RATE).digits
        ref = reference_detect(audio)
        ours_total += len(ours)
        ref_total += len(ref)
        minutes += audio.size / RATE / 60
        print(
            f"talk-off {name:14s} {audio.size / RATE / 60:5.2f} min: "
            f"ours {len(ours):3d} false digits, Asterisk reference {len(ref):3d}"
        )
    speech = sum(v.size for k, v in corpus.items() if k.startswith("speech")) / RATE / 60
    print(
        f"talk-off total {minutes:.1f} min ({speech:.1f} min speech): ours {ours_total} "
        f"false digits, Asterisk-parameter reference {ref_total}"
    )
    assert speech >= 10.0
    assert ours_total <= ref_total


def test_digits_over_speech_are_still_found(corpus: dict[str, np.ndarray]) -> None:
    """The detector is not merely deaf: digits 6 dB above loud speech are all found."""
    speech = corpus["speech-en"][: RATE * 20]
    digits = "1234567890*#ABCD" * 2
    tones = generate(
        digits, RATE, tone_ms=70, gap_ms=500, level_dbm0=-4.0, twist_db=0.0, lead_ms=300
    )
    n = min(tones.size, speech.size)
    speech_rms = float(np.sqrt(np.mean(speech[:n] ** 2)))
    mixed = tones[:n] + speech[:n] * (0.35 / max(speech_rms / 0.35, 1.0))
    found = detect(mixed, RATE).digits
    print(f"digits over speech: ours {found!r}, reference {reference_detect(mixed)!r}")
    assert found == digits[: len(found)] and len(found) >= 30


def test_streaming_agrees_with_batch_on_speech_and_music(corpus: dict[str, np.ndarray]) -> None:
    """The streaming fast path (which skips frames that cannot hold a tone pair)
    reports exactly what the batch API reports, on real material."""
    from prompts.dtmf import DtmfDetector, detect_batch

    for name in ("speech-en", "speech-fr", "sine-duet-0", "sine-duet-2"):
        audio = corpus[name][: RATE * 90]
        det = DtmfDetector(RATE)
        events = []
        for i in range(0, audio.size, 160):
            events.extend(det.feed(audio[i : i + 160]))
        events.extend(det.flush())
        spans = [(e.digit, e.time_s) for e in events if e.kind == "start"]
        batch = detect_batch(audio[None, :], RATE)[0]
        assert spans == [(s.digit, s.start_s) for s in batch.events], name
