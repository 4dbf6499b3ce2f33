"""What the store's SQL needs of a database connection, whatever the driver.

`store.sql.SqlStore` and its mixins (`store.media`, `store.desk`, `store.text`,
`store.chats`) write through ``_tx()``, a write transaction yielding a
`Connection`, and read with ``_read(sql, params)``. sqlite3's connection is one
as it is; `store.postgres` wraps psycopg's (the ``?`` placeholders become ``%s``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

__all__ = ["Connection", "Cursor"]


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
