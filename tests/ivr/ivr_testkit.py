"""Shared constants and helpers of the ivr tests."""
from __future__ import annotations

from datetime import UTC, datetime

from homeline.paths import DIALPLANS_DIR

FLOWS = DIALPLANS_DIR / "flows"
# A Wednesday, 10:00 in London: the support line is open.
OPEN_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MINIMAL = """\
flow: mini
languages: [en, es]
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options: {"1": billing, "2": tech}
    no_input_prompt: no-input
    no_match_prompt: invalid-option
    exhausted: general
  billing: {type: route, queue: billing}
  tech: {type: route, queue: tech}
  general: {type: route, queue: general}
"""
