"""Where Homeline keeps things outside the repository.

- cache (heavy, rebuildable artefacts keyed on their inputs): ``$HOMELINE_CACHE``
  or ``~/.cache/homeline``;
- state (rendered Asterisk configuration, secrets, SQLite database, logs):
  ``$HOMELINE_STATE`` or ``~/.local/state/homeline``.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "DIALPLANS_DIR", "cache_dir", "prompt_build_dir", "state_dir",
           "default_db_path", "store_address", "STORE_HELP"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DIALPLANS_DIR = REPO_ROOT / "dialplans"


def cache_dir() -> Path:
    base = os.environ.get("HOMELINE_CACHE") or Path.home() / ".cache" / "homeline"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prompt_build_dir(wideband: bool = False) -> Path:
    """Where ``homeline prompts build`` writes the WAVs: ``<cache>/prompts/8k`` or ``16k``."""
    return cache_dir() / "prompts" / ("16k" if wideband else "8k")


def state_dir() -> Path:
    base = os.environ.get("HOMELINE_STATE") or Path.home() / ".local" / "state" / "homeline"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    """The store's file unless ``--db`` says otherwise: state dir / homeline.sqlite3."""
    return state_dir() / "homeline.sqlite3"


STORE_HELP = ("the store: an SQLite file or a postgresql://user:password@host:port/dbname URL "
              "(default: $HOMELINE_STORE, else state dir/homeline.sqlite3)")


def store_address(given: str | Path | None = None) -> str:
    """Which store the commands open (`store.open_store`): ``--db`` when given, else
    ``$HOMELINE_STORE`` (a path or a ``postgresql://`` URL), else `default_db_path`."""
    if given:
        return str(given)
    return os.environ.get("HOMELINE_STORE") or str(default_db_path())
