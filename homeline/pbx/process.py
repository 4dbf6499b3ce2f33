"""One running Asterisk inside the provisioned root, with its own directories.

Each instance lives in ``<root>/srv/homeline/<name>/`` (etc, run, log, spool,
lib, db, cache) and gets an ``asterisk.conf`` whose ``[directories]`` point
there, so several instances (demo, test runs) share one root and run at once;
only the ports in the caller's rendered configuration must differ.

Asterisk runs as ``asterisk -f -n -U asterisk -G asterisk -C <asterisk.conf>``:
``-f`` keeps it in the foreground so its PID is ours to watch and its console
output lands in ``log/console.log``; ``-U/-G`` because, started as root in a
chroot, it loses capabilities it needs and dies with "ASTdb initialization
failed". The PID and its kernel start time go to ``homeline.pid`` so another
process (``homeline asterisk down``) can find and stop it without mistaking a
recycled PID for it.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from homeline.pbx.chroot import CHROOT_ENV, host_mounts_under
from homeline.pbx.errors import AsteriskCliError, AsteriskError, AsteriskStartError
from homeline.pbx.sandbox import AsteriskRoot

__all__ = ["AsteriskInstance", "INSTANCES_DIR"]

INSTANCES_DIR = PurePosixPath("/srv/homeline")
_ASTERISK = "/usr/sbin/asterisk"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
_WRITABLE = ("run", "log", "spool", "lib", "db", "cache")
_DEFAULT_OPTIONS = {
    "verbose": "1",
    "debug": "0",
    "documentation_language": "en_US",
    # no "Remote UNIX connection" lines for every `asterisk -rx`
    "hideconnect": "yes",
}
_TAIL_LINES = 25


class AsteriskInstance:
    """A named Asterisk instance in ``root``; a context manager that starts/stops it."""

    def __init__(
        self, root: AsteriskRoot, name: str, *, options: Mapping[str, str] | None = None
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"instance name {name!r}: expected {_NAME.pattern}")
        self.root = root
        self.name = name
        self.options = {**_DEFAULT_OPTIONS, **(options or {})}
        self.dir = root.to_host(INSTANCES_DIR / name)
        self._proc: subprocess.Popen[bytes] | None = None
        for sub in ("etc", *_WRITABLE, "lib/keys"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"AsteriskInstance(name={self.name!r}, dir={str(self.dir)!r})"

    # ------------------------------------------------------------ paths

    @property
    def etc_dir(self) -> Path:
        """Where the caller writes the rendered *.conf files (host path)."""
        return self.dir / "etc"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def spool_dir(self) -> Path:
        """Asterisk's astspooldir: recordings (monitor/, recording/), voicemail, outgoing."""
        return self.dir / "spool"

    @property
    def lib_dir(self) -> Path:
        return self.dir / "lib"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.dir / "homeline.pid"

    @property
    def asterisk_conf(self) -> Path:
        return self.etc_dir / "asterisk.conf"

    @property
    def control_socket(self) -> Path:
        return self.run_dir / "asterisk.ctl"

    def to_chroot(self, host_path: Path | str) -> PurePosixPath:
        return self.root.to_chroot(host_path)

    def to_host(self, chroot_path: PurePosixPath | str) -> Path:
        return self.root.to_host(chroot_path)

    # ------------------------------------------------------------ state

    def pid(self) -> int | None:
        """PID of this instance's Asterisk if it is running, else None."""
        if self._proc is not None and self._proc.poll() is None:
            # ours and alive, even if interrupted before the pidfile was written
            return self._proc.pid
        try:
            record = json.loads(self.pidfile.read_text(encoding="utf-8"))
            pid, started = int(record["pid"]), int(record["starttime"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pid if _proc_starttime(pid) == started else None

    def running(self) -> bool:
        return self.pid() is not None

    def status(self) -> dict[str, Any]:
        pid = self.pid()
        info: dict[str, Any] = {
            "name": self.name,
            "running": pid is not None,
            "pid": pid,
            "version": self.root.version,
            "dir": str(self.dir),
            "console_log": str(self.console_log),
            "uptime": None,
            "ports": {"tcp": [], "udp": []},
        }
        if pid is not None:
            with contextlib.suppress(AsteriskCliError):
                info["uptime"] = self.cli("core show uptime", timeout=5).strip()
            info["ports"] = bound_ports(pid)
        return info

    # ------------------------------------------------------------ control

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command through this instance's control socket (``asterisk -rx``)."""
        # The remote console needs only the socket and the root's files, not
        # /proc or /dev: a plain chroot, no mount namespace (about 10 ms a call).
        argv = ["chroot", str(self.root.path), _ASTERISK, "-C", str(self._conf_in_root()),
                "-rx", command]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, env=CHROOT_ENV, timeout=timeout,
                stdin=subprocess.DEVNULL, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AsteriskCliError(
                f"{self.name}: {command!r} gave no answer in {timeout} s"
            ) from exc
        # What `asterisk -r` prints when nothing listens on astrundir (exit status 1),
        # when the daemon drops the connection (it is exiting), and for a command no
        # loaded module provides (exit status 0): asterisk.c / cli.c.
        failed = ("Unable to connect to remote asterisk", "read() failed", "No such command '")
        if done.returncode != 0 or any(text in done.stdout for text in failed):
            text = (done.stdout + done.stderr).strip()
            raise AsteriskCliError(f"{self.name}: {command!r} failed ({done.returncode}): {text}")
        return done.stdout

    def start(self, timeout: float = 30.0) -> None:
        """Start Asterisk and return once it is FullyBooted.

        Raises :class:`AsteriskStartError` (with the last log lines) if it exits or
        does not finish booting within ``timeout`` seconds; it is stopped then.
        """
        pid = self.pid()
        if pid is not None:
            raise AsteriskStartError(f"{self.name}: already running (PID {pid})")
        self.prepare()
        offsets = {log: log.stat().st_size for log in self._logs() if log.exists()}
        with self.console_log.open("ab") as console:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            console.write(f"--- homeline: start {self.name} at {stamp} ---\n".encode())
            console.flush()
            self._proc = subprocess.Popen(  # noqa: S603
                self.root.command([
                    _ASTERISK, "-f", "-n", "-U", "asterisk", "-G", "asterisk",
                    "-C", str(self._conf_in_root()),
                ]),
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                env=CHROOT_ENV, start_new_session=True,
            )
        try:
            started = _proc_starttime(self._proc.pid)
            self.pidfile.write_text(
                json.dumps({"pid": self._proc.pid, "starttime": started}) + "\n", encoding="utf-8"
            )
            self._wait_fully_booted(timeout, offsets)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Asterisk: ``core stop now``, then SIGTERM, then SIGKILL. Idempotent.

        Works on an instance started by another process (found via the pidfile).
        """
        deadline = time.monotonic() + timeout
        pid = self.pid()
        if pid is not None:
            # `core stop now` answers once Asterisk has exited; while it boots there
            # may be no control socket yet, and then SIGTERM comes at once.
            try:
                self.cli("core stop now", timeout=max(0.5, timeout / 3))
                asked = True
            except AsteriskCliError:
                asked = False
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if asked and self._wait_gone(pid, max(0.5, (deadline - time.monotonic()) / 2)):
                    break
                _signal_group(pid, sig)
                asked = True
            if not self._wait_gone(pid, 5.0):
                raise AsteriskError(f"{self.name}: PID {pid} survived SIGKILL")
            # children Asterisk forked (System(), AGI scripts) share its group
            for child in _group_members(pid, self.root.path):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        self.pidfile.unlink(missing_ok=True)
        mounts = host_mounts_under(self.root.path)
        if mounts:
            raise AsteriskError(
                f"mounts under the Asterisk root remain on the host: {', '.join(mounts)} "
                "(not made by Homeline, which mounts in private namespaces only)"
            )

    def remove(self) -> None:
        """Stop the instance and delete its directory tree (configuration included)."""
        self.stop()
        shutil.rmtree(self.dir)

    def __enter__(self) -> AsteriskInstance:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ internals

    def _conf_in_root(self) -> PurePosixPath:
        return self.to_chroot(self.asterisk_conf)

    def _write_asterisk_conf(self) -> None:
        inner = INSTANCES_DIR / self.name
        # asterisk.conf [directories]: everything that is written goes to the
        # instance; astmoddir/astdatadir/astagidir/astsbindir keep the package's
        # compiled-in defaults (modules, sounds, moh shared by all instances).
        directories = {
            "astetcdir": inner / "etc",
            "astvarlibdir": inner / "lib",
            "astdbdir": inner / "db",
            "astkeydir": inner / "lib",
            "astspooldir": inner / "spool",
            "astrundir": inner / "run",
            "astlogdir": inner / "log",
            "astcachedir": inner / "cache",
        }
        lines = [f"; Written by Homeline for instance {self.name!r} at each start: do not edit.",
                 "[directories]"]
        lines += [f"{key} => {value}" for key, value in directories.items()]
        lines += ["", "[options]"]
        lines += [f"{key} = {value}" for key, value in self.options.items()]
        self.asterisk_conf.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def prepare(self) -> None:
        """Write asterisk.conf and give files to Asterisk (start() does it; call it
        yourself after changing files in etc_dir before a ``core reload``)."""
        self._write_asterisk_conf()
        self._fix_ownership()

    def _fix_ownership(self) -> None:
        uid, gid = self.root.asterisk_uid, self.root.asterisk_gid
        for parent in (self.dir.parent.parent, self.dir.parent, self.dir):
            os.chown(parent, 0, 0)
            parent.chmod(0o755)
        # configuration: readable by Asterisk, writable by root only
        for dirpath, _dirnames, filenames in os.walk(self.etc_dir):
            os.chown(dirpath, 0, gid)
            os.chmod(dirpath, 0o750)
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                os.chown(path, 0, gid, follow_symlinks=False)
                if not os.path.islink(path):
                    os.chmod(path, 0o640)
        for sub in _WRITABLE:
            for dirpath, _dirnames, filenames in os.walk(self.dir / sub):
                os.chown(dirpath, uid, gid)
                os.chmod(dirpath, 0o750)
                for filename in filenames:
                    os.chown(os.path.join(dirpath, filename), uid, gid, follow_symlinks=False)

    def _wait_fully_booted(self, timeout: float, offsets: dict[Path, int]) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise AsteriskStartError(self._start_failure(
                    f"Asterisk exited with status {code} while starting", offsets
                ))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AsteriskStartError(self._start_failure(
                    f"Asterisk not FullyBooted after {timeout} s", offsets
                ))
            if self.control_socket.exists():
                # The control socket appears before the modules load; `core
                # waitfullybooted` then blocks until the boot completes, or the
                # connection drops if Asterisk gives up (e.g. modules.conf missing).
                with contextlib.suppress(AsteriskCliError):
                    answer = self.cli("core waitfullybooted", timeout=max(0.5, left))
                    if "fully booted" in answer and self._proc.poll() is None:
                        return
            time.sleep(0.05)

    def _logs(self) -> list[Path]:
        return [self.console_log, *(self.log_dir / name for name in ("messages.log", "messages"))]

    def _start_failure(self, what: str, offsets: dict[Path, int]) -> str:
        """``what`` plus the first error Asterisk logged and the tail of each log."""
        tails: list[str] = []
        first_error = ""
        for log in self._logs():
            if not log.is_file():
                continue
            with log.open("rb") as fh:
                fh.seek(offsets.get(log, 0))
                lines = fh.read().decode(errors="replace").splitlines()
            if not lines:
                continue
            if not first_error:
                first_error = _failure_reason(lines)
            tails.append(f"last lines of {log}:")
            tails += [f"  {line}" for line in lines[-_TAIL_LINES:]]
            if log == self.console_log:
                break  # with -f the console already carries what the logger printed
        head = f"{self.name}: {what}"
        if first_error:
            head += f": {first_error.strip()}"
        return "\n".join([head, *tails])

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=max(0.0, min(0.05, deadline - time.monotonic())))
            if self.pid() != pid:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _failure_reason(lines: list[str]) -> str:
    """The log line that explains a failed boot.

    Asterisk ends a failed boot with "... ASTERISK EXITING!" (asterisk.c
    check_init); the WARNING/ERROR line before it says why (a missing
    modules.conf, a required module that failed). Else the first ERROR.
    """
    logged = [line for line in lines if "ERROR[" in line or "WARNING[" in line]
    for index, line in enumerate(logged):
        if "EXITING" in line:
            return logged[index - 1] if index > 0 else line
    return next((line for line in logged if "ERROR[" in line), "")


# ---------------------------------------------------------------- /proc helpers


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (proc(5)); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _proc_starttime(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3 (state)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    fields = _proc_stat(pid)
    with contextlib.suppress(ProcessLookupError):
        if fields is not None and int(fields[2]) == pid:  # started with setsid: group leader
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _group_members(pgid: int, root: Path) -> list[int]:
    target = str(root.resolve())
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is None or int(fields[2]) != pgid or fields[0] == "Z":
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") == target:
                members.append(int(entry.name))
    return members


def bound_ports(pid: int) -> dict[str, list[tuple[str, int]]]:
    """Listening TCP and bound UDP (address, port) pairs of the process ``pid``."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    found: dict[str, list[tuple[str, int]]] = {"tcp": [], "udp": []}
    for proto, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6),
                          ("udp", socket.AF_INET), ("udp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            table = Path(f"/proc/{pid}/net/{proto}").read_text(encoding="utf-8").splitlines()[1:]
            for row in table:
                cols = row.split()
                if cols[9] not in inodes:
                    continue
                if proto.startswith("tcp") and cols[3] != "0A":  # 0A = TCP_LISTEN
                    continue
                addr_hex, port_hex = cols[1].split(":")
                found[proto[:3]].append((_decode_addr(addr_hex, family), int(port_hex, 16)))
    return {key: sorted(set(value)) for key, value in found.items()}


def _decode_addr(addr_hex: str, family: int) -> str:
    raw = bytes.fromhex(addr_hex)
    # /proc/net/* prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)
