"""The portal's server-sent event streams (sse-starlette): one loop for every page.

A page's stream looks at the store every ``events_poll_s`` (`change_stream`):
``make()`` (store I/O, run in the thread pool) gives the named parts of the page
as they are now, and each part is sent as an event of its name when it differs
from what this stream sent last. ``make()`` answering None means the session is
over (idle timeout, logout elsewhere): an ``ended`` event closes the stream, as
`ended_stream` does for a stream that (re)connects after the session ended (an
EventSource only retries on an error status, so the end is said in the stream).

A part is either its data (compared as it is), or ``(key, data)``: compared by
``key``, sent as ``data``; so a part may carry something that changes at every
look (the server's clock, for a countdown) without being sent every time.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

__all__ = ["ENDED_HTML", "Part", "change_stream", "ended_stream"]

ENDED_HTML = '<p>Your session ended: <a href="/login">log in again</a>.</p>'
PING_S = 15

Part = str | tuple[str, str]


def ended_stream(data: str = ENDED_HTML) -> EventSourceResponse:
    """A stream that only says the session has ended."""
    async def ended() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data=data, event="ended")
    return EventSourceResponse(ended())


def change_stream(make: Callable[[], Mapping[str, Part] | None], poll_s: float,
                  ended: str = ENDED_HTML) -> EventSourceResponse:
    """The parts ``make()`` gives, each sent when it changed; ``ended`` once it gives None."""
    async def events() -> AsyncIterator[ServerSentEvent]:
        sent: dict[str, str] = {}
        while True:
            parts = await run_in_threadpool(make)
            if parts is None:
                yield ServerSentEvent(data=ended, event="ended")
                return
            for name, part in parts.items():
                key, data = part if isinstance(part, tuple) else (part, part)
                if sent.get(name) != key:
                    sent[name] = key
                    yield ServerSentEvent(data=data, event=name)
            await asyncio.sleep(poll_s)
    return EventSourceResponse(events(), ping=PING_S)
