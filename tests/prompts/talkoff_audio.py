"""Audio for talk-off tests: espeak-ng speech in several languages and synthetic hold music."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from prompts.catalog import load_catalog
from prompts.resample import resample

RATE = 8000

EXTRA_TEXT = {
    "en": (
        "Hello and thank you for your patience. I can see your account here, and the last "
        "payment was received on the fourteenth. Would you like me to send a new invoice by "
        "email? Please hold on a second while I check the order history. One, two, three, "
        "four, five, six, seven, eight, nine, zero. Is there anything else I can help you with?"
    ),
    "es": (
        "Hola, gracias por su paciencia. Veo su cuenta aquí y el último pago se recibió el día "
        "catorce. ¿Quiere que le envíe una nueva factura por correo? Uno, dos, tres, cuatro, "
        "cinco, seis, siete, ocho, nueve, cero. ¿Puedo ayudarle en algo más?"
    ),
    "fr": (
        "Bonjour et merci de votre patience. Je vois votre compte, le dernier paiement a été "
        "reçu le quatorze. Voulez-vous que je vous envoie une nouvelle facture par courriel ? "
        "Un, deux, trois, quatre, cinq, six, sept, huit, neuf, zéro. Puis-je vous aider encore ?"
    ),
    "de": (
        "Guten Tag und vielen Dank für Ihre Geduld. Ich sehe Ihr Konto, die letzte Zahlung ist "
        "am vierzehnten eingegangen. Soll ich Ihnen eine neue Rechnung per E-Mail schicken? "
        "Eins, zwei, drei, vier, fünf, sechs, sieben, acht, neun, null."
    ),
    "it": (
        "Buongiorno e grazie per la pazienza. Vedo il suo conto, l'ultimo pagamento è arrivato "
        "il quattordici. Vuole che le mandi una nuova fattura per posta elettronica? Uno, due, "
        "tre, quattro, cinque, sei, sette, otto, nove, zero."
    ),
    "pt": (
        "Bom dia e obrigado pela paciência. Vejo a sua conta, o último pagamento foi recebido "
        "no dia catorze. Quer que lhe envie uma nova fatura por correio eletrónico? Um, dois, "
        "três, quatro, cinco, seis, sete, oito, nove, zero."
    ),
}
VOICES = {"en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt"}
# espeak-ng voice variants change pitch and timbre, so the harmonics land elsewhere.
VARIANTS = ("", "+f2", "+m3", "+f4")


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str, pitch: int = 50, speed: int = 165) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="homeline-talkoff-") as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voice,
                "-p",
                str(pitch),
                "-s",
                str(speed),
                "-w",
                str(wav),
                "--stdin",
            ],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
            timeout=120,
        )
        data, rate = sf.read(str(wav), dtype="float32")
    x = resample(data, int(rate), RATE)
    peak = float(np.max(np.abs(x))) or 1.0
    return (x * (0.7 / peak)).astype(np.float32)  # loud speech, near full scale peaks


def speech_corpus() -> dict[str, np.ndarray]:
    """Per language: catalog prompts (en/es/fr) and a paragraph, in several voice variants."""
    catalog = load_catalog()
    out: dict[str, np.ndarray] = {}
    for lang, voice in VOICES.items():
        texts = [catalog.text(pid, lang) for pid in catalog.ids if catalog.has(pid, lang)]
        texts.append(EXTRA_TEXT[lang])
        body = " ".join(texts)
        parts = []
        for i, variant in enumerate(VARIANTS):
            # Full catalog text once, the paragraph in every variant.
            text = body if i == 0 else EXTRA_TEXT[lang]
            parts.append(speak(text, voice + variant, pitch=30 + 15 * i))
        out[lang] = np.concatenate(parts)
    return out


_A4 = 440.0


def hold_music(seconds: float, seed: int = 7) -> np.ndarray:
    """Synthetic hold music: a melody, chords and a bass line of harmonic notes.

    Equal-tempered notes (A4 = 440 Hz) with 1/k harmonics and attack/decay
    envelopes; several notes fall near DTMF frequencies (F5 698 Hz, G5 784 Hz,
    A5 880 Hz, D6 1175 Hz ...), which is what makes music a talk-off test.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n, np.float64)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale steps

    def note(freq: float, start: int, length: int, amp: float, harmonics: int) -> None:
        length = min(length, n - start)
        if length <= 0:
            return
        t = np.arange(length) / RATE
        env = np.minimum(1.0, t / 0.02) * np.exp(-t * rng.uniform(1.0, 4.0))
        tone = np.zeros(length)
        for k in range(1, harmonics + 1):
            if freq * k < RATE / 2 - 200:
                tone += np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 2 * np.pi)) / k
        out[start : start + length] += amp * env * tone

    beat = int(RATE * 0.25)
    pos = 0
    while pos < n:
        root = int(rng.choice([0, 5, 7, 9]))  # I IV V vi
        for _ in range(8):  # melody notes over one bar of 2 s
            step = scale[int(rng.integers(0, 7))] + 12 * int(rng.integers(0, 2))
            freq = _A4 * 2 ** ((step + root - 9 + 12) / 12)  # around A4..A6
            length = beat * int(rng.choice([1, 1, 2]))
            note(freq, pos, length, 0.25, int(rng.integers(1, 4)))
            pos += beat
        bar = pos - 8 * beat
        for interval in (0, 4, 7):  # sustained chord for the bar
            note(_A4 * 2 ** ((root + interval - 9) / 12), bar, 8 * beat, 0.12, 3)
        note(_A4 * 2 ** ((root - 9 - 24) / 12), bar, 8 * beat, 0.2, 4)  # bass
    peak = float(np.max(np.abs(out))) or 1.0
    return (out * (0.6 / peak)).astype(np.float32)


def sine_duet(seconds: float, seed: int) -> np.ndarray:
    """Two pure-sine voices an octave-ish apart on a C major scale, notes held 0.2-0.6 s.

    Held pure notes such as F5 (698.5 Hz) with F#6 (1480 Hz) sit within a few
    per cent of a DTMF pair: the hardest talk-off material there is.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    pos = 0
    beat = int(RATE * 0.2)
    while pos < n:
        length = min(beat * int(rng.choice([1, 2, 3])), n - pos)
        t = np.arange(length) / RATE
        env = np.minimum(1, t / 0.03) * np.minimum(1, (length / RATE - t) / 0.03)
        for octave, amp in ((0, 1.0), (12, rng.uniform(0.4, 1.2))):
            step = scale[rng.integers(0, 7)] + 12 * rng.integers(0, 2) + octave
            freq = _A4 * 2 ** ((step - 9 + 12) / 12)
            out[pos : pos + length] += (
                amp * env * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
            )
        pos += length
    return (out * 0.5 / np.abs(out).max()).astype(np.float32)
