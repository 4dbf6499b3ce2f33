"""Speech intent on utterances spoken by espeak-ng (several voices and rates).

Prints the recognition figure. Each utterance goes through the recogniser and then
the support-line flow's speech node: it must route to the right intent or ask again
and fall back to the keypad menu; routing to a wrong intent is a failure.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest
from ivr_testkit import FLOWS, OPEN_NOW

from ivr.commands import (
    CollectDigits,
    DigitsEntered,
    InputTimedOut,
    LookupFailed,
    RecordAudio,
    Route,
)
from ivr.engine import CallSession
from ivr.loader import load_flow
from ivr.speech import IntentRecognizer, load_audio

pytestmark = [pytest.mark.espeak, pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")]

UTTERANCES = [
    ("internet", "internet"), ("internet", "my internet is not working"),
    ("internet", "broadband problem"), ("internet", "the internet connection is down"),
    ("internet", "internet connection please"),
    ("tv", "tv channels"), ("tv", "my tv channels"), ("tv", "cable please"),
    ("tv", "the cable is not working"), ("tv", "a problem with my cable"),
    ("mobile", "mobile phone"), ("mobile", "phone signal"),
    ("mobile", "my mobile phone is not working"), ("mobile", "mobile please"),
    ("mobile", "a problem with my mobile phone"),
    ("email", "email account"), ("email", "my mailbox"), ("email", "email address problem"),
    ("email", "my email account is not working"), ("email", "help with my email account"),
    ("billing", "invoice"), ("billing", "a question about my invoice"),
    ("billing", "payment please"), ("billing", "billing question"),
    ("billing", "my invoice please"),
]
OUT_OF_DOMAIN = ["what is the weather like today", "I would like to speak to someone", "hello",
                 "good morning", "what time do you open", "where is my order"]
VOICES = ["en-us+klatt", "en-us+klatt2", "en-us+klatt3", "en-us+klatt4", "en-us+klatt5"]
TAKES = [("140", 0), ("140", 2), ("165", 0), ("165", 2)]  # (words per minute, voice shift)


def speak(text: str, voice: str, rate: str, path, band: int = 16000) -> None:
    """espeak-ng writes 22.05 kHz; store a mono 16-bit WAV at ``band`` Hz: 16 kHz as the
    model wants, or 8 kHz as a telephone call records it (the recogniser upsamples)."""
    import numpy as np
    import soundfile

    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", rate, "-w", str(raw), text], check=True,
                   timeout=30)
    data, rate_in = soundfile.read(str(raw), dtype="float64")
    n = int(round(len(data) * band / rate_in))
    spec = np.fft.rfft(data)
    out = np.zeros(n // 2 + 1, dtype=complex)
    k = min(len(spec), len(out))
    out[:k] = spec[:k]
    samples = np.fft.irfft(out, n) * (n / len(data))
    soundfile.write(str(path), np.clip(samples, -1.0, 1.0), band, subtype="PCM_16")


def through_the_flow(flow, result):
    """Feed one recognition (then the same again if asked) into the speech node."""
    s = CallSession(flow, call_id="sp", caller="+15550100")
    s.start(OPEN_NOW)
    s.step(LookupFailed("offline"), OPEN_NOW)
    s.step(DigitsEntered("1"), OPEN_NOW)
    cmds = s.step(DigitsEntered("2"), OPEN_NOW)
    assert isinstance(cmds[-1], RecordAudio)
    for _ in range(2):
        cmds = s.step(result, OPEN_NOW)
        last = cmds[-1]
        if isinstance(last, CollectDigits) and last.node == "tech":   # callback offer
            cmds = s.step(InputTimedOut(), OPEN_NOW)
            return next(c for c in cmds if isinstance(c, Route)).request.intent
        if isinstance(last, CollectDigits) and last.node == "tech-menu":
            return "keypad"
        if isinstance(last, CollectDigits) and last.node == "account-number":
            return "billing"
        assert isinstance(last, RecordAudio)   # asked again
    raise AssertionError("the speech node neither routed nor fell back")


@pytest.mark.parametrize("band", [16000, 8000], ids=["16kHz", "8kHz-telephone"])
def test_speech_intent_recognition_figure(band, tmp_path, catalog):
    flow = load_flow(FLOWS / "support-line.yaml", catalog=catalog)
    rec = IntentRecognizer(flow.speech)
    assert set(flow.speech.intents) >= {i for i, _ in UTTERANCES}
    correct = fallback = wrong = 0
    wrong_list = []
    n = 0
    for rate, shift in TAKES:
        for i, (intent, text) in enumerate(UTTERANCES):
            wav = tmp_path / f"u{n}.wav"
            n += 1
            speak(text, VOICES[(i + shift) % len(VOICES)], rate, wav, band)
            got = through_the_flow(flow, rec.recognize_samples(load_audio(wav)))
            if got == intent:
                correct += 1
            elif got == "keypad":
                fallback += 1
            else:
                wrong += 1
                wrong_list.append((text, intent, got))
    ood_fallback = 0
    for i, text in enumerate(OUT_OF_DOMAIN):
        wav = tmp_path / f"ood{i}.wav"
        speak(text, VOICES[i % len(VOICES)], "150", wav, band)
        ood_fallback += through_the_flow(flow, rec.recognize_samples(load_audio(wav))) == "keypad"
    total = len(UTTERANCES) * len(TAKES)
    print(f"\nspeech intent at {band // 1000} kHz: {correct}/{total} utterances recognised "
          "correctly "
          f"({100 * correct / total:.1f}%), {fallback} fell back to the keypad menu, "
          f"{wrong} misrouted; {len(flow.speech.intents)} intents, {len(VOICES)} voices, "
          f"2 rates; out-of-domain speech sent to the keypad: {ood_fallback}/"
          f"{len(OUT_OF_DOMAIN)}")
    assert wrong == 0, wrong_list
    assert correct / total >= 0.90
