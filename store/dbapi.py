"""What the store's SQL needs of a database connection, whatever the driver.

`store.sql.SqlStore` and its mixins (`store.media`, `store.desk`, `store.text`,
`store.chats`) write through ``_tx()``, a write transaction yielding a
`Connection`, and read with ``_read(sql, params)``. sqlite3's connection is one
as it is; `store.postgres` wraps psycopg's (the ``?`` placeholders become ``%s``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

__all__ = ["Connection", "Cursor", "portable", "NUL_STANDS_IN"]

# PostgreSQL's text cannot hold the character U+0000 ("PostgreSQL text fields cannot
# contain NUL (0x00) bytes", psycopg; the PostgreSQL manual, 8.3 Character Types),
# where SQLite keeps it: a portal reason or an SMS body with a %00 in it would be
# kept by one store and refused by the other. Both keep U+FFFD in its place.
NUL_STANDS_IN = "\ufffd"


def _differs(p: Any) -> bool:
    # a float NaN: SQLite binds it as NULL (sqlite3_bind_double, "NaN ... converted
    # to NULL", https://www.sqlite.org/c3ref/bind_blob.html), PostgreSQL keeps NaN
    return (isinstance(p, str) and "\x00" in p) or (isinstance(p, float) and p != p)


def _portable(p: Any) -> Any:
    if isinstance(p, str):
        return p.replace("\x00", NUL_STANDS_IN)
    return None if isinstance(p, float) and p != p else p


def portable(parameters: Sequence[Any]) -> Sequence[Any]:
    """The statement's parameters as every store keeps them alike: a text's NUL
    characters replaced by `NUL_STANDS_IN`, a NaN as NULL (as SQLite keeps it); the
    same sequence when nothing changes."""
    if not any(_differs(p) for p in parameters):
        return parameters
    return tuple(_portable(p) for p in parameters)


class Cursor(Protocol):
    """The result of one statement (DB-API 2.0, the part the store uses)."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection inside a transaction: statements with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...
