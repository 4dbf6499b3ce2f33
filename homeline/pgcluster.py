"""A throw-away PostgreSQL cluster of Homeline's own: for the tests, the benchmark,
and anyone who wants a shared store on one machine to try (`store.postgres`).

``with PgCluster() as pg: url = pg.create_database("homeline")`` runs ``initdb``
on a fresh directory of its own (the data dir, a socket dir, the server log),
starts the server with ``pg_ctl`` on a free loopback port and that socket dir,
and on leaving stops it (``pg_ctl stop -m fast``; the postmaster's PID killed if
that fails) and removes the directory: nothing is left running or on disk.

PostgreSQL refuses to run as root: run as root (as the tests and `homeline
setup` are), the cluster belongs to the ``postgres`` system user that Debian's
package creates, and every server command runs as that user (``runuser -u
postgres --``); otherwise as the current user. Nothing system-wide is created.

The cluster sorts text by byte (``--locale=C``, UTF-8), as the store needs; the
role ``homeline`` owns it, with a random password for TCP (scram-sha-256), so
`url` holds it. ``durable=False`` turns off fsync (tests: a crash loses the
cluster, which is thrown away anyway). The binaries: ``$HOMELINE_PG_BIN``, else
the newest ``/usr/lib/postgresql/*/bin`` (Debian), else ``pg_ctl`` on the PATH.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PgCluster", "PgClusterError", "pg_bin_dir"]

ROLE = "homeline"


class PgClusterError(Exception):
    """The cluster could not be created, started or stopped (the server log's tail said why)."""


def pg_bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are."""
    env = os.environ.get("HOMELINE_PG_BIN")
    if env:
        if not (Path(env) / "pg_ctl").is_file():
            raise PgClusterError(f"HOMELINE_PG_BIN={env}: no pg_ctl there")
        return Path(env)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                    else 0)
    if debian:
        return debian[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise PgClusterError("PostgreSQL's pg_ctl not found (Debian: apt-get install postgresql; "
                         "or set HOMELINE_PG_BIN)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL server on its own directory, port and socket dir (see the module)."""

    def __init__(self, *, durable: bool = True, port: int | None = None,
                 base: Path | None = None) -> None:
        self.durable = durable
        self.port = port
        self.base = base
        self.root: Path | None = None
        self.password = secrets.token_urlsafe(18)
        self._owner: pwd.struct_passwd | None = None
        self.bin = pg_bin_dir()

    # ------------------------------------------------------------ paths
    @property
    def data(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "run"

    @property
    def log(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        """How a client reaches database ``dbname`` (TCP on loopback, as the homeline role)."""
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    # ------------------------------------------------------------ running commands
    def _as_owner(self, argv: list[str]) -> list[str]:
        if self._owner is None:
            return argv
        return ["runuser", "-u", self._owner.pw_name, "--", *argv]

    def _run(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        assert self.root is not None
        cmd = self._as_owner([str(self.bin / argv[0]), *argv[1:]])
        try:
            done = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, "LC_ALL": "C"},
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgClusterError(f"{argv[0]}: {exc}") from exc
        if done.returncode != 0:
            raise PgClusterError(f"{argv[0]} failed ({done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()}{self._log_tail()}")
        return done

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-8:]
        except OSError:
            return ""
        return "\nserver log:\n" + "\n".join(lines) if lines else ""

    # ------------------------------------------------------------ life
    def start(self) -> PgCluster:
        """initdb on a new directory, then start the server; PgClusterError if either fails."""
        if self.root is not None:
            raise PgClusterError("already started")
        self.root = Path(tempfile.mkdtemp(prefix="homeline-pg-", dir=self.base))
        try:
            if os.geteuid() == 0:
                try:
                    self._owner = pwd.getpwnam("postgres")
                except KeyError as exc:
                    raise PgClusterError("running as root, and there is no postgres system "
                                         "user to run the server as (PostgreSQL refuses "
                                         "root; Debian's postgresql package creates it)"
                                         ) from exc
                os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
            pwfile = self.root / "pw"
            pwfile.write_text(self.password + "\n")
            pwfile.chmod(0o600)
            if self._owner is not None:
                os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
            try:
                self._run("initdb", "-D", str(self.data), "-U", ROLE, "--pwfile", str(pwfile),
                          "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                          "--locale=C", "--no-sync", timeout=120)
            finally:
                pwfile.unlink(missing_ok=True)
            self.socket_dir.mkdir(mode=0o700)
            if self._owner is not None:
                os.chown(self.socket_dir, self._owner.pw_uid, self._owner.pw_gid)
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _server_options(self) -> str:
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}", "-c max_connections=200",
                "-c shared_buffers=32MB"]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        return " ".join(opts)

    def _start_server(self) -> None:
        for attempt in range(3):
            if self.port is None or attempt:
                self.port = _free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", self._server_options(), "start", timeout=90)
                return
            except PgClusterError:
                if attempt == 2 or "could not bind" not in self._log_tail():
                    raise

    def pid(self) -> int | None:
        """The postmaster's PID (postmaster.pid's first line), None when not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``): every connection is cut."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-m", "fast", "-o", self._server_options(), "restart", timeout=90)

    def stop_server(self) -> None:
        """Stop the server, keeping the cluster (`start_server` starts it again)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "fast", "stop",
                  timeout=90)

    def start_server(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", self._server_options(), "start", timeout=90)

    def stop(self) -> None:
        """Stop the server and remove the directory (safe to call twice)."""
        if self.root is None:
            return
        pid = self.pid()
        if pid is not None:
            try:
                self.stop_server()
            except PgClusterError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                for _ in range(100):  # its children end with it
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ databases
    def _admin(self, sql: str) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), autocommit=True,
                                 connect_timeout=10) as conn:
                conn.execute(sql)  # names checked by the callers
        except psycopg.Error as exc:
            raise PgClusterError(f"{sql}: {exc}") from exc

    @staticmethod
    def _name(dbname: str) -> str:
        if not dbname.replace("_", "").isalnum() or not dbname[0].isalpha():
            raise PgClusterError(f"database name {dbname!r}: letters, digits and _ only")
        return dbname

    def create_database(self, dbname: str) -> str:
        """A new, empty database (byte-order text, as the store needs); its URL."""
        self._admin(f'CREATE DATABASE "{self._name(dbname)}" TEMPLATE template0 '
                    "ENCODING 'UTF8' LOCALE 'C'")
        return self.url(dbname)

    def drop_database(self, dbname: str) -> None:
        """Drop the database, ending whatever connections it still has."""
        self._admin(f'DROP DATABASE IF EXISTS "{self._name(dbname)}" WITH (FORCE)')

    def terminate_backends(self, dbname: str) -> int:
        """Cut every connection to ``dbname`` (pg_terminate_backend); how many."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as c:
            row = c.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()",
                            (dbname,)).fetchone()
        return int(row[0]) if row else 0
