from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_testkit import Portal, running_portal


@pytest.fixture()
def portal(tmp_path: Path) -> Iterator[Portal]:
    with running_portal(tmp_path, idle_timeout_s=600, login_lockout_s=300) as p:
        yield p
