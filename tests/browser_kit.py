"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright
(no `playwright install`), each browser a process of its own with a new temporary
profile, closed and removed at the end; and where screenshots go.

The flags are the ones that work on a closed network: no Google lookups, updates,
sync or QUIC (the machine refuses those connections, many at a time).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SHOTS", "chromium_contexts", "screenshot"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]
REPO = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("HOMELINE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "screenshots"


@contextlib.contextmanager
def chromium_contexts(extra_args: Sequence[str] = (),
                      viewport: tuple[int, int] = (1200, 900)) -> Iterator[Callable[[], Any]]:
    """Yields ``new()``: a Playwright browser context in a Chromium of its own. Every
    context is closed (Playwright waits for its process) and its profile removed."""
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium (/usr/bin/chromium): scripts/bootstrap.sh")
    from playwright.sync_api import sync_playwright

    dirs: list[Path] = []
    contexts: list[Any] = []
    with sync_playwright() as pw:
        def new() -> Any:
            d = Path(tempfile.mkdtemp(prefix="homeline-chromium-"))
            dirs.append(d)
            ctx = pw.chromium.launch_persistent_context(
                str(d), executable_path=str(CHROMIUM), headless=True,
                args=[*CHROMIUM_ARGS, *extra_args],
                viewport={"width": viewport[0], "height": viewport[1]})
            contexts.append(ctx)
            return ctx

        try:
            yield new
        finally:
            for ctx in contexts:
                ctx.close()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    assert not [d for d in dirs if d.exists()]


def screenshot(page: Any, name: str) -> Path:
    """The whole page as test-artifacts/screenshots/NAME.png (replacing an older one)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
