"""The arrows of the design: cores import no adapter, the store no composition root."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imported(package: str) -> dict[str, set[str]]:
    """Every module each file of ``package`` imports (anywhere: functions, TYPE_CHECKING)."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(REPO))] = names
    return out


@pytest.mark.parametrize(("package", "forbidden"), [
    ("routing", {"store", "homeline"}),
    ("store", {"homeline"}),
])
def test_no_import_against_the_arrows(package: str, forbidden: set[str]) -> None:
    files = imported(package)
    assert files, package
    bad = {f: sorted(n & forbidden) for f, n in files.items() if n & forbidden}
    assert bad == {}
