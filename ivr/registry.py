"""The live set of flows: new versions apply to new calls only.

``FlowRegistry.current(name)`` returns the flow object a new call should use. It
reloads when a flow file changed (size/mtime), when ``request_reload()`` was
called, or when the ``trigger`` file's mtime changed (``homeline flow reload``
touches it). A file that fails validation is not loaded: the previous version stays
in service and the problems are kept in ``problems``. Calls in progress hold the
``Flow`` object they started with, so nothing changes under them.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adminfiles import Problem
from ivr.errors import FlowInvalid, IvrError
from ivr.flow import Flow
from ivr.loader import Catalog, load_flow, load_prompt_catalog

__all__ = ["FlowRegistry", "ReloadReport"]


@dataclass(frozen=True, slots=True)
class ReloadReport:
    loaded: Mapping[str, str] = field(default_factory=dict)  # name -> new version
    unchanged: Mapping[str, str] = field(default_factory=dict)
    kept: Mapping[str, str] = field(default_factory=dict)  # invalid file, old version kept
    problems: tuple[Problem, ...] = ()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class FlowRegistry:
    """Flows of ``directory`` (``*.yaml``), keyed by their ``flow:`` name.

    ``queues`` (required: the agent directory's queue ids) is what route nodes are
    checked against; None explicitly skips that check (tests of the flow language).
    """

    def __init__(self, directory: str | Path, *, catalog: Catalog | None = None,
                 catalog_path: str | Path | None = None, queues: Iterable[str] | None,
                 trigger: str | Path | None = None, check_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = Path(directory)
        self._catalog = catalog
        self._catalog_path = catalog_path
        self._queues = None if queues is None else tuple(queues)
        self._trigger = Path(trigger) if trigger is not None else None
        self._interval = check_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._flows: dict[str, Flow] = {}
        self._stamps: dict[Path, tuple[int, int] | None] = {}
        self._trigger_stamp = _stamp(self._trigger) if self._trigger else None
        self._requested = False
        self._last_check = float("-inf")
        self.problems: dict[str, list[Problem]] = {}
        self.reload()

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.yaml") if p.is_file())

    def _load_catalog(self) -> Catalog | None:
        if self._catalog is not None:
            return self._catalog
        catalog, _problems = load_prompt_catalog(self._catalog_path)
        return catalog

    def reload(self) -> ReloadReport:
        """Validate every flow file now; swap in the valid new versions."""
        with self._lock:
            return self._reload_locked()

    def _reload_locked(self) -> ReloadReport:
        catalog = self._load_catalog()
        loaded: dict[str, str] = {}
        unchanged: dict[str, str] = {}
        kept: dict[str, str] = {}
        problems: list[Problem] = []
        by_file = {f.name: n for n, f in ((n, Path(fl.path)) for n, fl in self._flows.items())}
        new_stamps: dict[Path, tuple[int, int] | None] = {}
        for path in self._files():
            new_stamps[path] = _stamp(path)
            try:
                flow = load_flow(path, catalog=catalog, queues=self._queues)
            except FlowInvalid as exc:
                problems.extend(exc.problems)
                name = by_file.get(path.name, path.stem)
                self.problems[name] = list(exc.problems)
                if name in self._flows:
                    kept[name] = self._flows[name].version
                continue
            self.problems.pop(flow.name, None)
            old = self._flows.get(flow.name)
            if old is not None and old.version == flow.version:
                unchanged[flow.name] = old.version
            else:
                self._flows[flow.name] = flow
                loaded[flow.name] = flow.version
        self._stamps = new_stamps
        self._requested = False
        self._last_check = self._clock()
        return ReloadReport(loaded, unchanged, kept, tuple(problems))

    def request_reload(self) -> None:
        """Reload before the next ``current()`` (e.g. from a signal or an admin action)."""
        self._requested = True

    def _changed(self) -> bool:
        if self._requested:
            return True
        if self._trigger is not None:
            stamp = _stamp(self._trigger)
            if stamp != self._trigger_stamp:
                self._trigger_stamp = stamp
                return True
        files = self._files()
        if set(files) != set(self._stamps):
            return True
        return any(_stamp(p) != s for p, s in self._stamps.items())

    def current(self, name: str) -> Flow:
        """The version of flow ``name`` a new call should run."""
        with self._lock:
            now = self._clock()
            if self._requested or now - self._last_check >= self._interval:
                self._last_check = now
                if self._changed():
                    self._reload_locked()
            flow = self._flows.get(name)
        if flow is None:
            known = ", ".join(sorted(self._flows)) or "none"
            raise IvrError(f"no valid flow named {name!r} in {self.directory} (loaded: {known})")
        return flow

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._flows)
