"""The statistics the CLI, the web app and the demo show: read from the store,
computed by the pure `routing.stats`, one function for all three."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from routing.directory import Directory
from routing.stats import Stats, compute_stats, spans_from_changes
from routing.windows import load_zone

__all__ = ["collect_stats", "start_of_day"]


def start_of_day(now: datetime, directory: Directory) -> datetime:
    """Midnight today in the centre's zone (``policy.week_zone``): what "today" means."""
    local = now.astimezone(load_zone(directory.policy.week_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def collect_stats(store: Any, directory: Directory, now: datetime,
                  since: datetime | None = None, queue: str | None = None) -> Stats:
    """The figures of calls that reached the router since ``since`` (default: today)."""
    since = since or start_of_day(now, directory)
    # a call that reached the router in the period may have begun in the IVR before it
    records = store.calls(since=since - timedelta(hours=1))
    events = store.call_events([r.call_id for r in records])
    spans = spans_from_changes(store.agent_states(since), now)
    return compute_stats(directory, records, events, since=since, now=now,
                         snapshot=store.load_router_snapshot(), spans=spans, queue=queue)
