"""Offline speech intent with pocketsphinx (its PyPI wheel carries the en-us model).

Two searches run on each recording, each on a fresh decoder (cepstral mean
normalisation carried over from a previous caller would make results depend on call
order):

- ``grammar`` mode: a JSGF grammar built from the flow's phrases, with short carrier
  words around them ("my ...", "... is not working"), decodes the utterance; the
  hypothesis must parse completely (pocketsphinx returns a partial path when no final
  state was reached). Keyword spotting over the same phrases then verifies it: the
  intent counts only if a phrase of that intent is also spotted.
- ``keywords`` mode: keyword spotting alone.

Spotting runs with a strict and a loose threshold. ``confidence`` is 1.0 when the
strict spotter heard the grammar's intent and nothing else, 0.7 when only the loose
one heard it and no other intent was heard strictly, 0.4 when another intent was
heard strictly too (ambiguous), 0.3 when no spotter confirmed it, 0 for no parse.
A flow compares it with its threshold; below it the caller is asked again and then
sent to the keypad menu, so a doubtful result never routes silently.
"""
from __future__ import annotations

import re
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ivr.commands import SpeechRecognized
from ivr.flow import Flow, SpeechModel

__all__ = ["IntentRecognizer", "recognizer_for", "load_audio", "CARRIER_BEFORE",
           "CARRIER_AFTER", "SAMPLE_RATE", "unknown_words", "phone_counts"]

SAMPLE_RATE = 16000
# Keyword-spotting threshold per phrase: 10^-(KWS_PER_PHONE * phones). Longer
# phrases accumulate more (negative) log-likelihood, so one global threshold either
# misses long phrases or false-alarms on short ones (CMU Sphinx docs, "Keyword
# spotting": "for longer keyphrases the threshold must be bigger").
KWS_STRICT_PER_PHONE = 3.0
KWS_LOOSE_PER_PHONE = 8.0
# Phrases shorter than this many phones false-alarm all over other speech ("tv",
# "bill"); they stay in the grammar but are not spotted.
KWS_MIN_PHONES = 5
CARRIER_BEFORE = ("my", "the", "a problem with my", "help with my", "it's about my",
                  "a question about my", "i'm calling about my")
CARRIER_AFTER = ("please", "problem", "is not working", "is down", "question")
_PAD_S = 0.4


def _resample(x: np.ndarray[Any, Any], rate: int) -> np.ndarray[Any, Any]:
    """FFT resampling to 16 kHz (telephone audio is 8 kHz; the model wants 16 kHz)."""
    if rate == SAMPLE_RATE or len(x) == 0:
        return x
    n_out = int(round(len(x) * SAMPLE_RATE / rate))
    spec = np.fft.rfft(x)
    out_bins = n_out // 2 + 1
    spec2 = np.zeros(out_bins, dtype=complex)
    k = min(len(spec), out_bins)
    spec2[:k] = spec[:k]
    return np.asarray(np.fft.irfft(spec2, n_out) * (n_out / len(x)))


def load_audio(path: str | Path) -> np.ndarray[Any, Any]:
    """A WAV file as 16 kHz mono int16 samples with a little silence around it."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    mono = data.mean(axis=1) * 32767.0
    mono = _resample(mono, int(rate))
    pad = np.zeros(int(_PAD_S * SAMPLE_RATE))
    out = np.concatenate([pad, mono, pad])
    return np.asarray(np.clip(out, -32768, 32767).astype(np.int16))


def _norm(words: str) -> str:
    return re.sub(r"\(\d+\)", "", " ".join(words.split())).strip()


class IntentRecognizer:
    """Recognises one of a flow's intents in a recording (thread-safe)."""

    def __init__(self, model: SpeechModel, *, strict_per_phone: float = KWS_STRICT_PER_PHONE,
                 loose_per_phone: float = KWS_LOOSE_PER_PHONE) -> None:
        self.model = model
        self._dir = tempfile.TemporaryDirectory(prefix="homeline-speech-")
        self._finalizer = weakref.finalize(self, self._dir.cleanup)
        base = Path(self._dir.name)
        phrases = {p: intent for intent, ps in model.intents.items() for p in ps}
        self._phrase_intent = phrases
        self._parses: dict[str, str] = {}
        for phrase, intent in phrases.items():
            for pre in ("",) + CARRIER_BEFORE:
                for post in ("",) + CARRIER_AFTER:
                    self._parses[" ".join(t for t in (pre, phrase, post) if t)] = intent
        rules = [f"<i_{intent}> = {' | '.join(ps)};" for intent, ps in model.intents.items()]
        alts = " | ".join(f"<i_{intent}>" for intent in model.intents)
        grammar = ("#JSGF V1.0;\ngrammar intents;\n"
                   f"public <utt> = [<pre>] ({alts}) [<post>];\n"
                   f"<pre> = {' | '.join(CARRIER_BEFORE)};\n"
                   f"<post> = {' | '.join(CARRIER_AFTER)};\n" + "\n".join(rules) + "\n")
        self._jsgf = base / "intents.jsgf"
        self._jsgf.write_text(grammar, encoding="utf-8")
        phones = phone_counts(sorted(phrases))
        self._kws: dict[str, Path] = {}
        for name, per_phone in (("strict", strict_per_phone), ("loose", loose_per_phone)):
            path = self._kws[name] = base / f"keyphrases-{name}.txt"
            path.write_text("".join(f"{p} /1e-{round(per_phone * phones[p])}/\n"
                                    for p in sorted(phrases)
                                    if phones[p] >= KWS_MIN_PHONES), encoding="utf-8")

    def close(self) -> None:
        self._finalizer()

    def _decode(self, samples: np.ndarray[Any, Any], **search: str) -> str:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **search)
        decoder.start_utt()
        decoder.process_raw(samples.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return str(hyp.hypstr) if hyp is not None else ""

    def recognize(self, wav: str | Path) -> SpeechRecognized:
        return self.recognize_samples(load_audio(wav))

    def recognize_samples(self, samples: np.ndarray[Any, Any]) -> SpeechRecognized:
        """``samples``: 16 kHz mono int16 (see ``load_audio``)."""
        if len(samples) == 0 or int(np.abs(samples.astype(np.int32)).max()) < 200:
            return SpeechRecognized(None, 0.0, "")
        spotted_text = self._decode(samples, kws=str(self._kws["strict"]))
        strict = self._spotted(spotted_text)
        if self.model.mode == "keywords":
            if len(strict) == 1:
                return SpeechRecognized(next(iter(strict)), 0.9, _norm(spotted_text))
            return SpeechRecognized(None, 0.3 if strict else 0.0, _norm(spotted_text))
        said = _norm(self._decode(samples, jsgf=str(self._jsgf)))
        intent = self._parses.get(said)
        if intent is None:
            return SpeechRecognized(None, 0.0, said)
        others_strong = bool(strict - {intent})
        if intent in strict:
            return SpeechRecognized(intent, 0.4 if others_strong else 1.0, said)
        loose = self._spotted(self._decode(samples, kws=str(self._kws["loose"])))
        if intent in loose and not others_strong:
            return SpeechRecognized(intent, 0.7, said)
        return SpeechRecognized(intent, 0.3, said)

    def _spotted(self, text: str) -> set[str]:
        return {self._phrase_intent[p.strip()] for p in text.split("  ")
                if p.strip() in self._phrase_intent}


_CACHE: dict[tuple[str, str], IntentRecognizer] = {}
_LOCK = threading.Lock()


def recognizer_for(flow: Flow) -> IntentRecognizer | None:
    """The recogniser of a flow version (built once, shared by its calls)."""
    if flow.speech is None:
        return None
    key = (flow.name, flow.version)
    with _LOCK:
        rec = _CACHE.get(key)
        if rec is None:
            rec = _CACHE[key] = IntentRecognizer(flow.speech)
        return rec


def _pronunciations(words: set[str]) -> dict[str, list[str]]:
    """Each word's first pronunciation (phones) in the en-us dictionary."""
    from pocketsphinx import get_model_path

    found: dict[str, list[str]] = {}
    if not words:
        return found
    with open(Path(get_model_path()) / "en-us" / "cmudict-en-us.dict", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if parts and parts[0] in words and parts[0] not in found:
                found[parts[0]] = parts[1:]
    return found


def phone_counts(phrases: list[str]) -> dict[str, int]:
    prons = _pronunciations({w for p in phrases for w in p.split()})
    return {p: sum(len(prons.get(w, ["?"] * 4)) for w in p.split()) for p in phrases}


def unknown_words(phrases: list[str]) -> list[str]:
    """Words of ``phrases`` missing from the en-us pronunciation dictionary."""
    words = {w for p in phrases for w in p.split()}
    return sorted(words - set(_pronunciations(words)))
