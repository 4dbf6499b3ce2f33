"""Two nodes sharing one router, for the tests (tests/integration/test_nodes.py) and
the cluster benchmark (bench/cluster.py): two Asterisk instances (nodes a and b) on
loopback with a PJSIP trunk between them, an engine process per node
(`homeline engine run --node NAME --stack DIR`) on one PostgreSQL database, and the
SIP parties on each node (tests/failover_kit.py's `Phones`).

A module of its own (not a conftest) so the benchmark imports it too.
"""
from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from failover_kit import EngineProcess, Phones, engine_argv, stop_all
from integration.conftest import directory_for, wait_for

from homeline.pbx.render import NodePeer
from homeline.stack import PbxStack, Ports
from softphone import SoftphoneHost
from store import open_store

__all__ = ["TwoNodes"]


class TwoNodes:
    """Two Asterisk instances (nodes a and b) with a trunk between them, an engine
    process per node on the database ``url``, and the test's SIP parties on each."""

    def __init__(self, tmp_path: Path, url: str, agents: list[str], tag: str, *,
                 engine_args: tuple[str, ...] = (),
                 more_agents: dict[str, dict[str, Any]] | None = None,
                 queues: dict[str, dict[str, Any]] | None = None) -> None:
        """``agents`` take billing calls; ``more_agents`` (their directory entries) and
        ``queues`` (e.g. a ``max_wait_s`` bound) go to the directory as given;
        ``engine_args``: more options for every `homeline engine run`."""
        self.engine_args = engine_args
        now = datetime.now(UTC)
        directory = directory_for({**{a: {"skills": {"billing": 3}} for a in agents},
                                   **(more_agents or {})}, now, ring_timeout_s=8,
                                  queues=queues)
        self.work, self.url = tmp_path, url
        self.agents_file = tmp_path / "agents.yaml"
        self.agents_file.write_text(yaml.safe_dump(directory.to_dict(), sort_keys=False),
                                    encoding="utf-8")
        trunk_secret = secrets.token_urlsafe(24)
        ports = {"a": Ports.free(), "b": Ports.free()}
        self.stacks = {
            node: PbxStack(f"{tag}{node}{os.getpid()}", directory, tmp_path / f"node-{node}",
                           ports[node], node=node,
                           peers=(NodePeer(peer, "127.0.0.1", ports[peer].sip, trunk_secret),))
            for node, peer in (("a", "b"), ("b", "a"))}
        self.engines: dict[str, EngineProcess] = {}
        self.host: Any = None
        self.phones: list[Any] = []
        self.on: dict[str, Phones] = {}
        self.watch = open_store(url)

    def start(self) -> None:
        """Both Asterisks; node a's engine (it leads, epoch 1), node b's (it follows)."""
        for stack in self.stacks.values():
            stack.start_pbx()
        self.engine("a", "a")
        assert wait_for(lambda: "leading with epoch 1 (node a)" in self.text("a"), 20), \
            self.text("a")
        self.engine("b", "b")
        assert wait_for(lambda: "following: this node serves its calls, another routes"
                        in self.text("b"), 20), self.text("b")
        assert "node a leads with epoch 1" in self.text("b")
        self.host = SoftphoneHost()
        self.on = {node: Phones(self.host, self.stacks[node]) for node in ("a", "b")}
        for p in self.on.values():
            p.made = self.phones  # every party is closed in stop()

    def engine(self, node: str, name: str) -> EngineProcess:
        argv = [*engine_argv(self.agents_file, self.url, node, self.stacks[node].state_dir),
                *self.engine_args]
        self.engines[name] = EngineProcess(argv, self.work / f"engine-{name}.log")
        self.engines[name].wait_serving(1)
        return self.engines[name]

    def text(self, name: str) -> str:
        return self.engines[name].text()

    def agent(self, node: str, agent_id: str) -> Any:
        """``agent_id``'s phone, registered on ``node`` (the store's node map says so)."""
        phone = self.on[node].agent(agent_id)
        assert wait_for(lambda: self.watch.agent_nodes(agent_id) == [node], 10), \
            self.watch.agent_nodes(agent_id)
        return phone

    def stop(self) -> None:
        self.watch.close()
        try:
            stop_all(self.phones, self.host, self.engines.values(), self.stacks["a"])
        finally:
            self.stacks["b"].stop(remove=True)
