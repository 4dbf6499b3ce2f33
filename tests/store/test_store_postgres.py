"""The PostgreSQL store as several engines use it: two nodes on one database, writers in
threads on the change feeds, the server restarted or the connections cut under a store,
and what it refuses (a newer schema, a database that does not sort text by byte)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pg_kit import StoreMaker

from homeline.pgcluster import PgCluster
from routing.events import AgentMadeAvailable, AgentWentOnBreak
from routing.snapshot import RouterChanges
from store import SCHEMA_VERSION, CallRecord, StoreError, WebSession, open_store
from store.postgres import WRITE_LOCK, PostgresStore, redact, translate

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def test_placeholders_are_translated_outside_literals_only() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = %s AND c IN (%s, %s)")
    assert translate("SELECT 'it''s', 5 % 2 FROM t WHERE x = ?") == (
        "SELECT 'it''s', 5 %% 2 FROM t WHERE x = %s")
    with pytest.raises(ValueError, match="inside a quoted literal"):
        translate("SELECT 'what?' FROM t")
    assert redact("postgresql://homeline:s3cret@127.0.0.1:5432/db") == (
        "postgresql://homeline:***@127.0.0.1:5432/db")
    assert "s3cret" not in redact("postgresql://h@x/db?password=s3cret&sslmode=disable")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_failed_write_is_a_store_error_and_changes_nothing(make_store: StoreMaker) -> None:
    with make_store() as s:
        s.add_session(WebSession("d1", "alice", "c1", T0, T0))
        with pytest.raises(StoreError, match="write failed"):
            s.add_session(WebSession("d1", "bob", "c2", T0, T0))
        got = s.session("d1")
        assert got is not None and got.user == "alice"
        # the connection is usable after the failed transaction
        assert s.request_agent_state("alice", "available", "", T0) == 1


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_nodes_on_one_database_see_each_others_writes(make_store: StoreMaker) -> None:
    a, b = make_store(), make_store()
    assert a.request_agent_state("alice", "break", "lunch", T0) == 1
    assert b.request_agent_state("bob", "available", "", T0) == 2  # the same feed
    assert a.agent_requests_since(0) == b.agent_requests_since(0) == (
        [AgentWentOnBreak("alice", "lunch"), AgentMadeAvailable("bob")], 2)
    a.record_call(CallRecord("c1", caller="+331", arrived_at=T0))
    b.record_call(CallRecord("c1", agent_id="alice", answered_at=T0 + timedelta(seconds=9)))
    (rec,) = a.calls()
    assert (rec.caller, rec.agent_id, rec.answered_at) == ("+331", "alice",
                                                           T0 + timedelta(seconds=9))
    b.save_router_changes(RouterChanges(T0.timestamp(), T0.timestamp() + 1, 42, full=True))
    snap = a.load_router_snapshot()
    assert snap is not None and snap.seq == 42
    r = a.route_chat("sms:+1:1", "sms", "+1", "general", None, None, T0)
    assert b.update_chat_route(r.route_id, T0, expect_states=("waiting",), state="offered",
                               agent_id="alice")
    assert not a.update_chat_route(r.route_id, T0, expect_states=("waiting",), state="offered",
                                   agent_id="bob")
    assert b.schema_version() == a.schema_version() == SCHEMA_VERSION


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_writers_get_distinct_consecutive_seqs(make_store: StoreMaker) -> None:
    """Four threads on each of two store objects (two nodes) append to the agent requests
    and chat requests feeds at once: every seq once, 1..N, each thread's in order."""
    nodes = [make_store(), make_store()]
    route = nodes[0].route_chat("m:1:1", "messenger", "1", "general", None, None, T0)
    base = nodes[0].chat_requests_seq()
    per_thread = 40
    got: dict[int, list[tuple[int, int]]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(t: int) -> None:
        store = nodes[t % 2]
        mine: list[tuple[int, int]] = []
        try:
            start.wait(timeout=30)
            for i in range(per_thread):
                mine.append((store.request_agent_state(f"a{t}", "available", str(i), T0),
                             store.request_chat(route.route_id, "pass", f"a{t}", T0, {"i": i})))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        got[t] = mine

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    n = 8 * per_thread
    agent_seqs = sorted(a for mine in got.values() for a, _ in mine)
    chat_seqs = sorted(c for mine in got.values() for _, c in mine)
    assert agent_seqs == list(range(1, n + 1))
    assert chat_seqs == list(range(base + 1, base + n + 1))
    for mine in got.values():
        assert [a for a, _ in mine] == sorted(a for a, _ in mine)
    events, last = nodes[1].agent_requests_since(0)
    assert last == n and len(events) == n
    requests, _ = nodes[0].chat_requests_since(base)
    assert [q.seq for q in requests] == list(range(base + 1, base + n + 1))


@pytest.fixture()
def own_cluster() -> Iterator[PgCluster]:
    """A cluster of the test's own, to restart and stop without disturbing the others."""
    with PgCluster(durable=False) as cluster:
        yield cluster


def _timed(call: Callable[[], object]) -> tuple[float, object]:
    t = time.monotonic()
    try:
        out = call()
    except StoreError as exc:
        return time.monotonic() - t, exc
    return time.monotonic() - t, out


def test_a_restarted_server_costs_the_next_call_nothing_and_a_stopped_one_is_an_error(
        own_cluster: PgCluster) -> None:
    """The pool's connections all die with the server: the next call takes a new one
    (reads, the router state, writes succeed after the restart); while the server is
    down a call fails with StoreError at once (well within the timeout), never hangs;
    once it is back the next call succeeds."""
    url = own_cluster.create_database("restart")
    with PostgresStore(url, timeout=3.0) as s:
        for i in range(4):  # several connections in the pool
            s.request_agent_state("alice", "available", str(i), T0)
        s.save_router_changes(RouterChanges(T0.timestamp(), T0.timestamp(), 7, full=True))
        pid = own_cluster.pid()
        own_cluster.restart()
        assert own_cluster.pid() != pid
        assert s.agent_requests_seq() == 4  # a read
        snap = s.load_router_snapshot()  # reads in one snapshot
        assert snap is not None and snap.seq == 7
        own_cluster.restart()
        assert s.request_agent_state("bob", "break", "", T0) == 5  # a write first
        own_cluster.stop_server()
        for call in (s.agent_requests_seq, lambda: s.request_agent_state("bob", "available",
                                                                          "", T0),
                     s.load_router_snapshot):
            took, out = _timed(call)
            assert isinstance(out, StoreError), out
            assert took < 1.5, took  # fails fast: the server is asked, not waited for
            print(f"server down: {type(out).__name__} after {took:.2f} s: {out}")
        own_cluster.start_server()
        assert s.request_agent_state("bob", "available", "", T0) == 6
        assert s.agent_requests_since(4)[1] == 6


@pytest.mark.parametrize("backend", ["postgresql"])
def test_connections_cut_by_the_server_are_replaced(make_store: StoreMaker,
                                                    pg_cluster: PgCluster) -> None:
    s = make_store()
    s.request_agent_state("alice", "available", "", T0)
    dbname = make_store.address().rsplit("/", 1)[1]
    assert pg_cluster.terminate_backends(dbname) >= 1
    assert s.request_agent_state("alice", "break", "", T0) == 2
    assert pg_cluster.terminate_backends(dbname) >= 1
    assert s.agent_requests_seq() == 2


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_writer_waits_for_the_lock_and_gives_up_after_the_timeout(
        make_store: StoreMaker) -> None:
    url = make_store.address()
    s = PostgresStore(url, timeout=1.0)
    other = PostgresStore(url, timeout=10.0)
    try:
        with psycopg.connect(url) as holder:  # another node, inside a write transaction
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            took, out = _timed(lambda: s.request_agent_state("alice", "available", "", T0))
            assert isinstance(out, StoreError) and "another writer held the store" in str(out)
            assert 0.9 < took < 3.0, took
            assert s.agent_requests_seq() == 0  # reads do not wait for writers
            done: list[int] = []
            waiter = threading.Thread(target=lambda: done.append(
                other.request_agent_state("bob", "break", "", T0)))
            waiter.start()
            time.sleep(0.3)
            assert done == []  # still waiting for the lock
            holder.rollback()
        waiter.join(timeout=10)
        assert done == [1]
    finally:
        s.close()
        other.close()


def test_a_database_from_a_newer_homeline_or_sorting_text_by_language_is_refused(
        pg_cluster: PgCluster, pg_database: Callable[[str], str]) -> None:
    url = pg_database("newer")
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="newer Homeline .schema 99"):
        open_store(url)
    # ICU's English collation sorts 'a' before 'B': not the byte order the store needs
    name = "t_linguistic"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
                  "ICU_LOCALE 'en-US' LOCALE 'C'")
    try:
        with pytest.raises(StoreError, match="LOCALE 'C'"):
            open_store(pg_cluster.url(name))
    finally:
        pg_cluster.drop_database(name)
    with pytest.raises(StoreError,
                       match="cannot open the store: no connection within 1 s.*does not exist"):
        PostgresStore(pg_cluster.url("no_such_database"), timeout=1.0)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_stored_hours_apply_to_the_whole_directory_at_once(make_store: StoreMaker) -> None:
    """apply_hours reads every agent's hours in three statements: the same as each
    agent's own `hours`, agents without stored hours keep the file's."""
    from datetime import date

    from routing import load_directory
    from routing.windows import HoursChange, HourWindow

    directory = load_directory(REPO / "dialplans" / "agents.yaml")
    ids = [a.id for a in directory.agents]
    with make_store() as s:
        s.save_hours(ids[0], [HourWindow(0, 600, 720), HourWindow(2, 480, 600)],
                     [HoursChange(date(2026, 12, 7), 600, 660, "cancel")], T0)
        s.save_hours(ids[1], [], [HoursChange(date(2026, 12, 8), 60, 120, "add")], T0)
        applied = s.apply_hours(directory)
        for a, before in zip(applied.agents, directory.agents, strict=True):
            stored = s.hours(a.id)
            if stored is None:
                assert a == before
            else:
                assert (a.windows, a.changes) == stored, a.id
        assert applied.agents[0].windows == (HourWindow(0, 600, 720), HourWindow(2, 480, 600))
        assert applied.agents[1].windows == ()
