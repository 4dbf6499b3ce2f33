"""Masking ``secure``-looking content in customer text: card numbers.

A card number (ISO/IEC 7812 primary account number) is 13 to 19 digits whose
last digit is the Luhn check digit; customers type them in groups separated by
spaces or dashes. Every such run is replaced by ``[card number removed]``
before the text is stored, shown, logged or answered (PCI DSS 3.4: a PAN is
never kept readable). A digit run that fails the Luhn check (an order number, a
phone number) is left alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MASK", "Masked", "mask_secure", "luhn_valid"]

MASK = "[card number removed]"

# digits, optionally separated by single spaces or dashes; bounded so the scan is linear
_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,25}(?![0-9])")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Masked:
    text: str
    secure_found: bool


def _card_spans(run: str) -> list[tuple[int, int]]:
    """Spans (in ``run``) of Luhn-valid 13-19 digit card numbers, longest first."""
    digits = [(i, ch) for i, ch in enumerate(run) if ch.isdigit()]
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(digits):
        found = None
        for length in range(min(19, len(digits) - start), 12, -1):
            chunk = "".join(ch for _, ch in digits[start:start + length])
            if luhn_valid(chunk):
                found = length
                break
        if found is None:
            start += 1
            continue
        spans.append((digits[start][0], digits[start + found - 1][0] + 1))
        start += found
    return spans


def mask_secure(text: str) -> Masked:
    """``text`` with every card number replaced by `MASK`."""
    out: list[str] = []
    pos = 0
    found = False
    for m in _RUN.finditer(text):
        run = m.group(0)
        spans = _card_spans(run)
        if not spans:
            continue
        found = True
        out.append(text[pos:m.start()])
        last = 0
        for a, b in spans:
            out.append(run[last:a])
            out.append(MASK)
            last = b
        out.append(run[last:])
        pos = m.end()
    out.append(text[pos:])
    return Masked("".join(out), found)
