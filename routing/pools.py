"""Indexes that let the router decide without scanning every agent or queue.

- Agent pools: for each (skill or ``*``, language or ``*``) the agents who have
  that skill and language, and per selection rule and trainee flag a heap of
  the *routable* ones (available, registered, inside their window) ordered by
  the rule's key. Entries are invalidated lazily with a per-agent version, so
  a state change costs O(pools of that agent), never O(agents).
- Waiting calls: per queue and language a list sorted by the call-selection key
  (priority-aged arrival, then arrival, then a sequence number), plus a heap of
  arrivals for "is anybody here old enough for this agent's expansion step".

Keys (smaller is better, ties always end on the agent id):
  longest-idle      (idle_since, 0, agent_id)
  best-proficiency  (-level of the pool skill, idle_since, agent_id)
  fair-share        (share clock - deficit against fair share when last routable,
                     idle_since, agent_id); see `routing.router` and README "Fairness"
  fair-guard        (fair-share offers made before the agent became routable, idle_since,
                     agent_id): who fair-share has passed over longest (starvation guard)
  fewest-calls      (calls handled this week, idle_since, agent_id)
  chat-share        (chat minutes of the channel per signed-up hour, idle_since, agent_id)

A kind ending ``@sms`` or ``@messenger`` is that rule's heap for chats of the
channel: it holds the routable agents with room for one more such chat, and a
kind without a channel those with room for a call (``accepts``), so a call
never scans past agents busy chatting, nor a chat past agents without room.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["PoolKey", "HeapEntry", "AgentPools", "WaitingLine"]

PoolKey = tuple[str, str]  # (skill or "*", language or "*")
HeapEntry = tuple[float, float, str, int]  # (k1, k2, agent_id, version)
KeyFn = Callable[[str, str, str], tuple[float, float]]  # (agent_id, kind, pool skill) -> key


class AgentPools:
    def __init__(self, key_fn: KeyFn, version_of: Callable[[str], int],
                 routable: Callable[[str], bool],
                 accepts: Callable[[str, str], bool] | None = None) -> None:
        self.members: dict[PoolKey, list[str]] = {}
        self.trainee: dict[str, bool] = {}
        self.trainees_in: dict[PoolKey, int] = {}
        self._pools_of: dict[str, list[PoolKey]] = {}
        self._heaps: dict[tuple[PoolKey, str, bool], list[HeapEntry]] = {}
        # (pool, trainee) -> the heap kinds built for it (what `push` indexes an agent in)
        self._kinds_of: dict[tuple[PoolKey, bool], list[str]] = {}
        self._key = key_fn
        self._version = version_of
        self._routable = routable
        # (agent, heap kind) -> the agent belongs in that kind's heaps now (default: routable)
        self._accepts = accepts or (lambda agent_id, _kind: routable(agent_id))

    def add_agent(self, agent_id: str, skills: list[str], languages: list[str],
                  trainee: bool) -> None:
        self.trainee[agent_id] = trainee
        pools = [(s, lg) for s in [*skills, "*"] for lg in [*languages, "*"]]
        self._pools_of[agent_id] = pools
        for p in pools:
            self.members.setdefault(p, []).append(agent_id)
            self.trainees_in[p] = self.trainees_in.get(p, 0) + int(trainee)

    def pools_of(self, agent_id: str) -> list[PoolKey]:
        return self._pools_of[agent_id]

    def push(self, agent_id: str) -> None:
        """The agent became routable (or its key changed): index it under its current version."""
        version = self._version(agent_id)
        trainee = self.trainee[agent_id]
        # an agent is in (skills + 1) x (languages + 1) pools, each with a heap per kind:
        # whether it belongs in a kind, and its key there (which depends on the kind and
        # the pool's skill only), are worked out once per push, not once per heap
        accepted: dict[str, bool] = {}
        keys: dict[tuple[str, str], tuple[float, float]] = {}
        heaps = self._heaps
        for p in self._pools_of[agent_id]:
            for kind in self._kinds_of.get((p, trainee), ()):
                ok = accepted.get(kind)
                if ok is None:
                    ok = accepted[kind] = self._accepts(agent_id, kind)
                if ok:
                    k = keys.get((kind, p[0]))
                    if k is None:
                        k = keys[(kind, p[0])] = self._key(agent_id, kind, p[0])
                    heapq.heappush(heaps[(p, kind, trainee)], (k[0], k[1], agent_id, version))

    def heap(self, pool: PoolKey, kind: str, trainee: bool) -> list[HeapEntry]:
        key = (pool, kind, trainee)
        h = self._heaps.get(key)
        if h is None:
            h = []
            for aid in self.members.get(pool, ()):
                if self.trainee[aid] is trainee and self._accepts(aid, kind):
                    k1, k2 = self._key(aid, kind, pool[0])
                    h.append((k1, k2, aid, self._version(aid)))
            heapq.heapify(h)
            self._heaps[key] = h
            self._kinds_of.setdefault((pool, trainee), []).append(kind)
        return h

    def drain(self, heap: list[HeapEntry], popped: list[tuple[list[HeapEntry], HeapEntry]]
              ) -> Iterator[HeapEntry]:
        """Valid entries best first; stale ones are dropped, valid ones recorded in ``popped``."""
        while heap:
            e = heapq.heappop(heap)
            if e[3] != self._version(e[2]) or not self._routable(e[2]):
                continue
            popped.append((heap, e))
            yield e

    @staticmethod
    def restore(popped: list[tuple[list[HeapEntry], HeapEntry]], chosen: str | None) -> None:
        for heap, e in popped:
            if e[2] != chosen:
                heapq.heappush(heap, e)

    def reset(self, kind: str | None = None) -> None:
        """Forget the heaps of ``kind`` (all when None); they are rebuilt on next use."""
        if kind is None:
            self._heaps.clear()
            self._kinds_of.clear()
            return
        for key in [k for k in self._heaps if k[1] == kind]:
            del self._heaps[key]
        for kinds in self._kinds_of.values():
            kinds[:] = [x for x in kinds if x != kind]


@dataclass(slots=True)
class WaitingLine:
    """Calls of one queue and language, best first by the call-selection key."""

    keys: list[tuple[float, float, int, str]] = field(default_factory=list)
    arrivals: list[tuple[float, int, str]] = field(default_factory=list)  # lazy heap
    present: set[str] = field(default_factory=set)

    def add(self, key: tuple[float, float, int, str]) -> None:
        import bisect

        bisect.insort(self.keys, key)
        heapq.heappush(self.arrivals, (key[1], key[2], key[3]))
        self.present.add(key[3])

    def remove(self, key: tuple[float, float, int, str]) -> None:
        import bisect

        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]
        self.present.discard(key[3])
        # the arrivals heap drops removed calls lazily, when they reach its top; a call
        # that waits long at the top (or a line nobody asks for its oldest) would let
        # it grow with every call that came and went, so it is rebuilt from the calls
        # present once it holds more than twice as many (amortised O(1) per call)
        if len(self.arrivals) > 2 * len(self.keys) + 16:
            self.arrivals = [(k[1], k[2], k[3]) for k in self.keys]
            heapq.heapify(self.arrivals)

    def oldest_arrival(self) -> float | None:
        a = self.arrivals
        while a and a[0][2] not in self.present:
            heapq.heappop(a)
        return a[0][0] if a else None
