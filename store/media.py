"""The store's part of recordings and pause for payment (tables ``recordings`` and
``payments`` of `store.schema`), mixed into `SqliteStore`.

- ``recordings``: one row per recorded call, the call record's pointer to its
  file (kept under the state directory), and when the retention sweep removed it.
- ``payments``: the agents' "take payment" requests, a change feed the engine
  reads (`payments_since`) like ``agent_requests``, and each one's result. The
  card number never reaches a row: only a status and a short detail text.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from routing.windows import check_aware
from store.dbapi import Connection
from store.errors import StoreError

__all__ = ["MediaTables", "Recording", "Payment", "PAYMENT_STATUSES"]

PAYMENT_STATUSES = ("requested", "capturing", "accepted", "declined", "failed")
_DETAIL_MAX = 200


def _iso(t: datetime) -> str:
    """UTC ISO text with microseconds, as `store.sqlite.iso` (sorts as text)."""
    check_aware(t, "timestamp")
    return t.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Recording:
    """Where a call's recording is (``path``, absolute), and whether retention removed it."""

    call_id: str
    path: str
    stored_at: datetime
    bytes: int
    removed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    """One "take payment" of an agent: ``status`` one of `PAYMENT_STATUSES`."""

    seq: int
    agent_id: str
    call_id: str | None
    requested_at: datetime
    status: str
    detail: str
    updated_at: datetime


def _recording(row: Sequence[Any]) -> Recording:
    return Recording(row[0], row[1], datetime.fromisoformat(row[2]), int(row[3]),
                     datetime.fromisoformat(row[4]) if row[4] else None)


def _payment(row: Sequence[Any]) -> Payment:
    return Payment(int(row[0]), row[1], row[2], datetime.fromisoformat(row[3]), row[4], row[5],
                   datetime.fromisoformat(row[6]))


_PAYMENT_COLS = "seq, agent_id, call_id, requested_at, status, detail, updated_at"


class MediaTables:
    """Methods over `store.sql.SqlStore`'s connection (``_tx``, ``_read``)."""

    def _tx(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    # ------------------------------------------------------------ recordings
    def add_recording(self, call_id: str, path: str, stored_at: datetime, size: int) -> None:
        """The call's recording is kept at ``path`` (insert or replace the pointer)."""
        with self._tx() as db:
            db.execute("INSERT INTO recordings(call_id, path, stored_at, bytes, removed_at) "
                       "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (call_id) DO UPDATE SET "
                       "path = excluded.path, stored_at = excluded.stored_at, "
                       "bytes = excluded.bytes, removed_at = NULL",
                       (call_id, path, _iso(stored_at), int(size)))

    def recording(self, call_id: str) -> Recording | None:
        rows = self._read("SELECT call_id, path, stored_at, bytes, removed_at FROM recordings "
                          "WHERE call_id = ?", (call_id,))
        return _recording(rows[0]) if rows else None

    def recordings_stored_before(self, before: datetime) -> list[Recording]:
        """Recordings still kept that were stored before ``before`` (the retention sweep)."""
        rows = self._read("SELECT call_id, path, stored_at, bytes, removed_at FROM recordings "
                          "WHERE removed_at IS NULL AND stored_at < ? ORDER BY stored_at",
                          (_iso(before),))
        return [_recording(r) for r in rows]

    def mark_recording_removed(self, call_id: str, at: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE recordings SET removed_at = ? WHERE call_id = ?",
                       (_iso(at), call_id))

    # ------------------------------------------------------------ payments
    def request_payment(self, agent_id: str, call_id: str | None, now: datetime) -> int:
        """An agent asked to take a payment on their current call; returns its number."""
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM payments").fetchone()
            seq = int(row[0])
            db.execute(f"INSERT INTO payments({_PAYMENT_COLS}) VALUES "  # noqa: S608
                       "(?, ?, ?, ?, 'requested', '', ?)",
                       (seq, agent_id, call_id, _iso(now), _iso(now)))
            return seq

    def set_payment_status(self, seq: int, status: str, detail: str, now: datetime,
                           call_id: str | None = None) -> None:
        if status not in PAYMENT_STATUSES:
            raise StoreError(f"payment status {status!r}: not one of "
                             f"{', '.join(PAYMENT_STATUSES)}")
        with self._tx() as db:
            db.execute("UPDATE payments SET status = ?, detail = ?, updated_at = ?, "
                       "call_id = COALESCE(?, call_id) WHERE seq = ?",
                       (status, detail[:_DETAIL_MAX], _iso(now), call_id, seq))

    def payments_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM payments")[0][0])

    def payments_since(self, seq: int) -> tuple[list[Payment], int]:
        """Requests after ``seq``, in the order they were made (the engine's feed)."""
        rows = self._read(f"SELECT {_PAYMENT_COLS} FROM payments WHERE seq > ? "  # noqa: S608
                          "ORDER BY seq", (seq,))
        out = [_payment(r) for r in rows]
        return out, out[-1].seq if out else seq

    def payment(self, seq: int) -> Payment | None:
        rows = self._read(f"SELECT {_PAYMENT_COLS} FROM payments WHERE seq = ?",  # noqa: S608
                          (seq,))
        return _payment(rows[0]) if rows else None

    def latest_payment(self, agent_id: str) -> Payment | None:
        rows = self._read(f"SELECT {_PAYMENT_COLS} FROM payments WHERE agent_id = ? "  # noqa: S608
                          "ORDER BY seq DESC LIMIT 1", (agent_id,))
        return _payment(rows[0]) if rows else None

    def call_payments(self, call_id: str) -> list[Payment]:
        rows = self._read(f"SELECT {_PAYMENT_COLS} FROM payments WHERE call_id = ? "  # noqa: S608
                          "ORDER BY seq", (call_id,))
        return [_payment(r) for r in rows]
