"""The pjsua2 provisioning: fast path when installed, cache layout, error reports.

The cold build itself (about two minutes) runs in `homeline setup`, not here.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from homeline.provision import pjsua2_wheel
from homeline.provision.pjsua2_wheel import Pjsua2BuildError, ensure_installed

pytestmark = pytest.mark.pjsua2


def test_installed_pjsua2_is_detected_quickly_and_cached_by_sha_and_tag() -> None:
    messages: list[str] = []
    t0 = time.monotonic()
    wheel = ensure_installed(messages.append)
    elapsed = time.monotonic() - t0
    print({"fast_path_s": round(elapsed, 3), "wheel": str(wheel)})
    assert elapsed < 5
    assert any("already importable" in m for m in messages)
    assert re.fullmatch(r"\[pjsua2 +\d+\.\d+s\] .*", messages[0])
    assert wheel.name.startswith("pjsua2-") and wheel.suffix == ".whl"
    assert wheel.is_file()
    tag = pjsua2_wheel.python_tag()
    assert tag == f"cp{sys.version_info[0]}{sys.version_info[1]}-" + tag.split("-", 1)[1]
    assert re.fullmatch(rf"[0-9a-f]{{16}}-{re.escape(tag)}", wheel.parent.name)
    assert (wheel.parent / "recipe.txt").read_text().strip() == pjsua2_wheel.RECIPE


def test_the_installed_build_has_homeline_limits() -> None:
    import pjsua2

    # config_site.h raised pjsua's compiled-in one-handset limits
    assert pjsua2.UaConfig().maxCalls >= pjsua2_wheel.MIN_MAX_CALLS


def test_a_failing_step_names_itself_and_its_log(tmp_path: Path) -> None:
    log = tmp_path / "make.log"
    with pytest.raises(Pjsua2BuildError) as info:
        pjsua2_wheel._run("make", ["sh", "-c", "echo boom; exit 3"], log, lambda _m: None)
    assert str(info.value) == f"pjsua2 make failed: sh exited with status 3 (log: {log})"
    assert (info.value.step, info.value.log) == ("make", log)
    assert "boom" in log.read_text()


def test_host_mirror_comes_from_debian_sources(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\n# comment\nURIs: http://mirror.example/debian\n"
                       "Suites: bookworm\n")
    monkeypatch.setattr(pjsua2_wheel, "DEBIAN_SOURCES", sources)
    assert pjsua2_wheel._host_mirror() == "http://mirror.example/debian"
    monkeypatch.setattr(pjsua2_wheel, "DEBIAN_SOURCES", tmp_path / "missing")
    assert pjsua2_wheel._host_mirror() == pjsua2_wheel.DEFAULT_MIRROR
