from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from homeline.paths import DIALPLANS_DIR
from ivr.loader import load_prompt_catalog

FLOWS = DIALPLANS_DIR / "flows"
# A Wednesday, 10:00 in London: the support line is open.
OPEN_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def catalog():
    cat, problems = load_prompt_catalog()
    assert problems == [] and cat is not None
    return cat


@pytest.fixture
def write_flow(tmp_path: Path):
    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


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
