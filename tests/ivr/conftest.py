from __future__ import annotations

from pathlib import Path

import pytest

from ivr.loader import load_prompt_catalog


@pytest.fixture(scope="session")
def catalog():
    cat, problems = load_prompt_catalog()
    assert problems == [] and cat is not None
    return cat


@pytest.fixture(scope="session")
def queues() -> tuple[str, ...]:
    """The queues of the shipped agent directory: what route nodes may name."""
    from homeline.paths import DIALPLANS_DIR
    from routing import load_directory

    return load_directory(DIALPLANS_DIR / "agents.yaml").queue_ids


@pytest.fixture
def write_flow(tmp_path: Path):
    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write
