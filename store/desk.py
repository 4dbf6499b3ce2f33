"""The supervisor desk's state: raised hands and listen/whisper/barge requests.

Two tables (``store.schema``): ``hands`` (an agent asks for help, with an
optional short text, about a call or not; a supervisor picks it up, may reply in
text, and it is lowered) and ``supervise_requests``, a change feed like
``agent_requests``: the web app appends what a supervisor asked for, a running
engine reads it with `DeskTables.supervise_requests_since` and carries it out
(voice/supervise.py). Same portable SQL rules as the rest of the store.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from routing.windows import check_aware
from store.dbapi import Connection
from store.errors import StoreError

__all__ = ["Hand", "SuperviseRequest", "SUPERVISE_MODES", "HAND_TEXT_MAX", "DeskTables",
           "DeskStore"]

# listen: the supervisor hears both sides; whisper: the agent hears the supervisor,
# the caller does not; barge: both hear the supervisor (ChanSpy options, voice/supervise.py)
SUPERVISE_MODES = ("listen", "whisper", "barge")
HAND_TEXT_MAX = 280

_HAND_COLUMNS = ("id, agent_id, call_id, text, raised_at, picked_by, picked_at, reply, "
                 "replied_at, lowered_at, lowered_by")


@dataclass(frozen=True, slots=True)
class Hand:
    """A raised hand. ``call_id``: the call the agent was on when raising it (None
    between calls). Open until ``lowered_at`` is set."""

    id: int
    agent_id: str
    call_id: str | None
    text: str
    raised_at: datetime
    picked_by: str | None = None
    picked_at: datetime | None = None
    reply: str | None = None
    replied_at: datetime | None = None
    lowered_at: datetime | None = None
    lowered_by: str | None = None

    @property
    def open(self) -> bool:
        return self.lowered_at is None


@dataclass(frozen=True, slots=True)
class SuperviseRequest:
    """A supervisor asked to listen to / whisper to / barge in on an agent's call."""

    seq: int
    supervisor: str
    agent_id: str
    call_id: str
    mode: str  # one of SUPERVISE_MODES
    at: datetime


def _iso(t: datetime) -> str:
    check_aware(t, "timestamp")
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _t(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _hand(row: Sequence[Any]) -> Hand:
    return Hand(int(row[0]), row[1], row[2], row[3], datetime.fromisoformat(row[4]), row[5],
                _t(row[6]), row[7], _t(row[8]), _t(row[9]), row[10])


def _text(text: str, what: str) -> str:
    clean = " ".join((text or "").split())
    if len(clean) > HAND_TEXT_MAX:
        raise StoreError(f"{what}: at most {HAND_TEXT_MAX} characters ({len(clean)} given)")
    return clean


class DeskStore(Protocol):
    """What the desk, the portal and the engine need of the store (`DeskTables`)."""

    def raise_hand(self, agent_id: str, call_id: str | None, text: str,
                   now: datetime) -> Hand: ...
    def hand(self, hand_id: int) -> Hand | None: ...
    def hands(self, *, open_only: bool = True, agent_id: str | None = None) -> list[Hand]: ...
    def pick_up_hand(self, hand_id: int, supervisor: str, now: datetime) -> Hand: ...
    def reply_to_hand(self, hand_id: int, supervisor: str, text: str,
                      now: datetime) -> Hand: ...
    def lower_hand(self, hand_id: int, by: str, now: datetime) -> Hand: ...
    def request_supervision(self, supervisor: str, agent_id: str, call_id: str, mode: str,
                            now: datetime) -> int: ...
    def supervise_requests_seq(self) -> int: ...
    def supervise_requests_since(self, seq: int) -> tuple[list[SuperviseRequest], int]: ...


class DeskTables:
    """Mixed into `store.sql.SqlStore`: uses its ``_tx`` and ``_read``."""

    _tx: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[..., list[Any]]

    # ------------------------------------------------------------ hands
    def raise_hand(self, agent_id: str, call_id: str | None, text: str,
                   now: datetime) -> Hand:
        """A new raised hand; an agent's hand still open is kept (its text updated)."""
        clean = _text(text, "hand text")
        with self._tx() as db:
            row = db.execute("SELECT id FROM hands WHERE agent_id = ? AND lowered_at IS NULL",
                             (agent_id,)).fetchone()
            if row is not None:
                db.execute("UPDATE hands SET text = ?, call_id = COALESCE(?, call_id) "
                           "WHERE id = ?", (clean, call_id, row[0]))
                hand_id = int(row[0])
            else:
                hand_id = int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM hands")
                              .fetchone()[0])
                db.execute("INSERT INTO hands(id, agent_id, call_id, text, raised_at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (hand_id, agent_id, call_id, clean, _iso(now)))
        got = self.hand(hand_id)
        assert got is not None
        return got

    def hand(self, hand_id: int) -> Hand | None:
        rows = self._read(f"SELECT {_HAND_COLUMNS} FROM hands WHERE id = ?",  # noqa: S608
                          (int(hand_id),))
        return _hand(rows[0]) if rows else None

    def hands(self, *, open_only: bool = True, agent_id: str | None = None) -> list[Hand]:
        """Hands, oldest first (open ones only by default)."""
        where, params = [], []
        if open_only:
            where.append("lowered_at IS NULL")
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        sql = f"SELECT {_HAND_COLUMNS} FROM hands"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_hand(r) for r in self._read(sql + " ORDER BY raised_at, id", params)]

    def _update_hand(self, hand_id: int, sql: str, params: Sequence[Any]) -> Hand:
        with self._tx() as db:
            row = db.execute("SELECT lowered_at FROM hands WHERE id = ?",
                             (int(hand_id),)).fetchone()
            if row is None:
                raise StoreError(f"hand {hand_id}: no such hand")
            if row[0] is not None:
                raise StoreError(f"hand {hand_id}: already lowered")
            db.execute(sql, (*params, int(hand_id)))
        got = self.hand(hand_id)
        assert got is not None
        return got

    def pick_up_hand(self, hand_id: int, supervisor: str, now: datetime) -> Hand:
        return self._update_hand(hand_id, "UPDATE hands SET picked_by = ?, picked_at = ? "
                                 "WHERE id = ?", (supervisor, _iso(now)))

    def reply_to_hand(self, hand_id: int, supervisor: str, text: str,
                      now: datetime) -> Hand:
        clean = _text(text, "reply")
        if not clean:
            raise StoreError("reply: empty")
        # a reply picks the hand up too, if nobody had
        return self._update_hand(
            hand_id, "UPDATE hands SET reply = ?, replied_at = ?, "
            "picked_by = COALESCE(picked_by, ?), picked_at = COALESCE(picked_at, ?) "
            "WHERE id = ?", (clean, _iso(now), supervisor, _iso(now)))

    def lower_hand(self, hand_id: int, by: str, now: datetime) -> Hand:
        return self._update_hand(hand_id, "UPDATE hands SET lowered_at = ?, lowered_by = ? "
                                 "WHERE id = ?", (_iso(now), by))

    # ------------------------------------------------------------ supervise requests
    def request_supervision(self, supervisor: str, agent_id: str, call_id: str, mode: str,
                            now: datetime) -> int:
        """Append a listen/whisper/barge request; the engine checks it against the live
        call and the supervisors it knows before anything rings."""
        if mode not in SUPERVISE_MODES:
            raise StoreError(f"supervise mode {mode!r}: not one of {', '.join(SUPERVISE_MODES)}")
        with self._tx() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM supervise_requests")
                      .fetchone()[0])
            db.execute("INSERT INTO supervise_requests(seq, supervisor, agent_id, call_id, "
                       "mode, at) VALUES (?, ?, ?, ?, ?, ?)",
                       (seq, supervisor, agent_id, call_id, mode, _iso(now)))
            return seq

    def supervise_requests_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM supervise_requests")[0][0])

    def supervise_requests_since(self, seq: int) -> tuple[list[SuperviseRequest], int]:
        rows = self._read("SELECT seq, supervisor, agent_id, call_id, mode, at FROM "
                          "supervise_requests WHERE seq > ? ORDER BY seq", (int(seq),))
        out = [SuperviseRequest(int(r[0]), r[1], r[2], r[3], r[4], datetime.fromisoformat(r[5]))
               for r in rows]
        return out, (out[-1].seq if out else seq)
