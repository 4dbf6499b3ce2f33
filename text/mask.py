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


def _card_end(run: str) -> int | None:
    """Where the card number at the start of ``run`` ends: the whole run when it is
    13-19 digits passing Luhn, else its longest prefix of whole groups that does
    (a number followed by its CVV or expiry, "4111 1111 1111 1111 123"); None when
    no such number. Cut points are only between groups, so a digit run that merely
    contains a Luhn-valid stretch is not a card number."""
    groups = re.split(r"[ -]", run)
    ends: list[tuple[int, int]] = []  # (digits so far, end offset in run)
    digits, offset = 0, 0
    for i, g in enumerate(groups):
        offset += len(g) + (1 if i else 0)
        digits += len(g)
        ends.append((digits, offset))
    for count, end in reversed(ends):
        if 13 <= count <= 19 and luhn_valid(re.sub(r"[ -]", "", run[:end])):
            return end
    return None


def mask_secure(text: str) -> Masked:
    """``text`` with every card number replaced by `MASK`."""
    out: list[str] = []
    pos = 0
    found = False
    for m in _RUN.finditer(text):
        end = _card_end(m.group(0))
        if end is None:
            continue
        found = True
        out.append(text[pos:m.start()])
        out.append(MASK)
        pos = m.start() + end
    out.append(text[pos:])
    return Masked("".join(out), found)
