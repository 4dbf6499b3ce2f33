"""The text core imports no adapter, no store and no composition root."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_text_core_is_pure() -> None:
    bad: dict[str, list[str]] = {}
    for path in sorted((REPO / "text").rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        hit = sorted(names & {"store", "web", "voice", "homeline", "urllib3", "httpx",
                              "socket", "threading", "starlette"})
        if hit:
            bad[path.name] = hit
    assert bad == {}
