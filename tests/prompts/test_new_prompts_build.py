"""The prompts recordings and pause for payment added to the shipped catalog build
with espeak-ng in en/es/fr like every other (`homeline setup` builds only what its
content-hash manifest does not have yet, so these are the only new work there)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from prompts.build import build_all
from prompts.catalog import DEFAULT_CATALOG, load_catalog
from prompts.check import check_prompts

pytestmark = [
    pytest.mark.espeak,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
]

NEW = ("call-recorded", "payment-accepted", "payment-declined")


def test_the_recording_and_payment_prompts_build_in_every_language(tmp_path: Path) -> None:
    shipped = yaml.safe_load(Path(DEFAULT_CATALOG).read_text(encoding="utf-8"))
    part = tmp_path / "catalog.yaml"
    part.write_text(yaml.safe_dump({pid: shipped[pid] for pid in NEW}, allow_unicode=True),
                    encoding="utf-8")
    out = tmp_path / "build"
    report = build_all(load_catalog(part), out, progress=lambda _m: None)
    assert report.ok, report.problems
    assert sorted(report.built) == sorted(f"{lang}/{pid}" for lang in ("en", "es", "fr")
                                          for pid in NEW)
    assert check_prompts(load_catalog(part), out) == []
    again = build_all(load_catalog(part), out, progress=lambda _m: None)
    assert again.built == [] and len(again.unchanged) == 9  # cached by content hash
