"""Call recordings: from Asterisk's monitor spool to the state directory, and away
again after the retention period.

The dialplan records a call to an agent when its queue says so (``record: true``
in agents.yaml; [homeline-agent-dial] in extensions.conf.tmpl): ``MixMonitor(
homeline-<call id>.wav,b)`` on the caller's channel. A relative file name lands
in ``astspooldir/monitor`` (app_mixmonitor documentation, "filename"); option
``b`` writes audio only while the channel is bridged, so ringing, hold and the
pause for payment (the caller out of the bridge) are not in the file.

MixMonitor closes the file when its audiohook detaches, at the latest when the
caller's channel hangs up. `RecordingKeeper` waits for that channel's Hangup
(``call_ended``) and for the file to stop changing, then moves it under the
state directory (``<state>/recordings/<call id>.wav``, 0600) and writes the call's
pointer to it in the store (table ``recordings``). ``sweep`` removes the
recordings stored longer ago than the retention period the admin set
(``policy.recording_retention_days``); the engine runs both on its own thread.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["RecordingKeeper", "spool_name", "MONITOR_SUBDIR"]

log = logging.getLogger("homeline.voice.recording")

MONITOR_SUBDIR = "monitor"  # astspooldir/monitor: MixMonitor's home for relative names
_CALL_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


def spool_name(call_id: str) -> str:
    """The file MixMonitor writes for ``call_id``: ``homeline-${HOMELINE_CALL_ID}.wav``."""
    return f"homeline-{call_id}.wav"


class RecordingKeeper:
    """Moves finished recordings into ``keep_dir`` and removes expired ones.

    ``retention()``: how long a recording is kept (read at each sweep, so a new
    directory applies at once). ``clock()``: aware now. Thread-safe ``call_ended``.
    """

    SETTLE_S = 1.0  # the file has not changed for this long: MixMonitor closed it
    GIVE_UP_S = 60.0  # a call whose recording never appears (not recorded) is forgotten
    POLL_S = 0.5
    SWEEP_EVERY_S = 60.0

    def __init__(self, spool_dir: Path, keep_dir: Path, store: Any,
                 retention: Callable[[], timedelta], clock: Callable[[], datetime]) -> None:
        self.spool_dir = Path(spool_dir)
        self.keep_dir = Path(keep_dir)
        self._store = store
        self._retention = retention
        self._clock = clock
        self._pending: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep: datetime | None = None
        self.errors: list[str] = []

    # -- from the engine ----------------------------------------------------------
    def call_ended(self, call_id: str) -> None:
        """The caller's channel of ``call_id`` hung up: its recording, if any, is final soon."""
        if not _CALL_ID.match(call_id):
            return
        with self._lock:
            self._pending.setdefault(call_id, self._clock())

    def start(self) -> None:
        self.keep_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keep_dir, 0o700)
        self._thread = threading.Thread(target=self._run, name="recordings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.collect(final=True)

    # -- the work -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.POLL_S):
            try:
                self.collect()
                now = self._clock()
                if (self._last_sweep is None
                        or (now - self._last_sweep).total_seconds() >= self.SWEEP_EVERY_S):
                    self._last_sweep = now
                    self.sweep(now)
            except Exception as exc:  # keep the thread: recordings are not worth a crash
                log.exception("recordings: %s", exc)
                self.errors.append(repr(exc))

    def collect(self, final: bool = False) -> list[str]:
        """Move the recordings of ended calls whose file settled; returns their call ids."""
        now = self._clock()
        with self._lock:
            pending = dict(self._pending)
        moved = []
        for call_id, ended in pending.items():
            src = self.spool_dir / spool_name(call_id)
            waited = (now - ended).total_seconds()
            if not src.is_file():
                if waited > self.GIVE_UP_S or final:
                    self._forget(call_id)
                continue
            age = now.timestamp() - src.stat().st_mtime
            if age < self.SETTLE_S and not final:
                continue
            dst = self.keep_dir / f"{call_id}.wav"
            self.keep_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))
            os.chmod(dst, 0o600)
            os.chown(dst, os.getuid(), os.getgid())
            self._store.add_recording(call_id, str(dst), now, dst.stat().st_size)
            log.info("call %s: recording kept (%d bytes)", call_id, dst.stat().st_size)
            self._forget(call_id)
            moved.append(call_id)
        return moved

    def _forget(self, call_id: str) -> None:
        with self._lock:
            self._pending.pop(call_id, None)

    def sweep(self, now: datetime) -> list[str]:
        """Remove recordings stored before ``now - retention``; returns their call ids."""
        before = now - self._retention()
        removed = []
        for rec in self._store.recordings_stored_before(before):
            path = Path(rec.path)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("call %s: recording %s not removed: %s", rec.call_id, path, exc)
                continue
            self._store.mark_recording_removed(rec.call_id, now)
            removed.append(rec.call_id)
        if removed:
            log.info("recordings: %d removed after the retention period", len(removed))
        return removed
