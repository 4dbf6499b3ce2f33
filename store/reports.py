"""Reports read from the store: the inputs of the live statistics, and the figures.

The one place that gathers what `routing.stats.compute_stats` needs (call records
with their events, the agents' state changes, the saved router state, the text
channels' chat routes), so
``homeline stats``, the web app (``/api/stats``, ``/metrics``, the wallboard) and
the demo show the same figures.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from routing.directory import Directory
from routing.stats import Stats, compute_stats, spans_from_changes, start_of_day
from store.base import Store
from store.chats import ChatRoute, ChatStore

__all__ = ["collect_stats", "IVR_MARGIN", "CHAT_MARGIN"]

# a call that reached the router in the period may have begun in the IVR before it
IVR_MARGIN = timedelta(hours=1)
# a chat routed before the period may still be held in it (an agent's concurrency)
CHAT_MARGIN = timedelta(hours=12)


def collect_stats(store: Store, directory: Directory, now: datetime,
                  since: datetime | None = None, queue: str | None = None) -> Stats:
    """The figures of calls that reached the router since ``since`` (default: today,
    from midnight in the policy's week_zone) up to ``now``."""
    since = since or start_of_day(now, directory)
    directory = store.apply_hours(directory)  # the hours agents set (signed-up hours)
    records = store.calls(since=since - IVR_MARGIN)
    events = store.call_events([r.call_id for r in records])
    spans = spans_from_changes(store.agent_states(since), now)
    chats: list[ChatRoute] = (store.chat_routes(since=since - CHAT_MARGIN)
                              if isinstance(store, ChatStore) else [])
    return compute_stats(directory, records, events, since=since, now=now,
                         snapshot=store.load_router_snapshot(), spans=spans, queue=queue,
                         chats=chats)
