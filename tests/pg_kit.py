"""PostgreSQL for the tests: one throw-away cluster per run, a fresh database per test.

`pg_cluster` (session) starts a `homeline.pgcluster.PgCluster` the first time a
test asks for PostgreSQL, and stops it (nothing left running, its directory
removed) at the end of the run. `pg_database` creates a database for the test
and drops it after. `StoreMaker` opens the test's store on either backend, so
a suite parametrized over ``backend`` runs the same assertions on SQLite and on
PostgreSQL. A conftest imports the fixtures (``from pg_kit import *``).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from homeline.pgcluster import PgCluster, PgClusterError, pg_bin_dir
from store import SqlStore, open_store

__all__ = ["pg_cluster", "pg_database", "backend", "store_address", "make_store",
           "StoreMaker", "BACKENDS"]

BACKENDS = ("sqlite", "postgresql")
_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        pg_bin_dir()
    except PgClusterError as exc:  # as browser_kit does for a missing Chromium
        pytest.skip(f"needs PostgreSQL's server binaries: scripts/bootstrap.sh ({exc})")
    with PgCluster(durable=False) as cluster:
        yield cluster


@pytest.fixture()
def pg_database(pg_cluster: PgCluster) -> Iterator[Callable[[str], str]]:
    """``pg_database(name)``: the URL of a new database for this test (dropped after)."""
    made: list[str] = []

    def make(name: str) -> str:
        dbname = f"t{next(_names)}_{name}"
        made.append(dbname)
        return pg_cluster.create_database(dbname)

    yield make
    for dbname in made:
        pg_cluster.drop_database(dbname)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class StoreMaker:
    """Opens the test's stores: ``maker()`` the main one (again: a reopen of the same
    database), ``maker("other")`` another; ``maker.address(name)`` for a subprocess."""

    def __init__(self, backend: str, tmp_path: Path,
                 pg_database: Callable[[str], str] | None) -> None:
        self.backend = backend
        self._tmp = tmp_path
        self._pg = pg_database
        self._urls: dict[str, str] = {}
        self.opened: list[SqlStore] = []

    def address(self, name: str = "main") -> str:
        if self.backend == "sqlite":
            return str(self._tmp / f"{name}.sqlite3")
        if name not in self._urls:
            assert self._pg is not None
            self._urls[name] = self._pg(name)
        return self._urls[name]

    def __call__(self, name: str = "main") -> SqlStore:
        store = open_store(self.address(name))
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture()
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest
               ) -> Iterator[StoreMaker]:
    pg = request.getfixturevalue("pg_database") if backend == "postgresql" else None
    maker = StoreMaker(backend, tmp_path, pg)
    yield maker
    maker.close_all()


@pytest.fixture()
def store_address(make_store: StoreMaker) -> str:
    """The main store's address (a path or a URL) for a subprocess or the CLI."""
    return make_store.address()
