"""Test hosts on other networks: network namespaces and veth pairs the test
makes itself (iproute2), removed again however the test ends.

``nat_network()`` builds, with its own 10.231.N.0/29 addresses::

    host (Asterisk)            router namespace                 agent namespace
    veth hl<N>h 10.231.N.1 <-> hl<N>r0 10.231.N.2
                               hl<N>r1 10.231.N.5  <----------> hl<N>a 10.231.N.6
                               nft masquerade out of hl<N>r0

so the agent sits behind a masquerading NAT, as at home: Asterisk sees its
requests and media come from 10.231.N.2 while the agent's own Contact and SDP
say 10.231.N.6. Without nft (Debian's nftables) the agent namespace is on the
veth itself and reached by plain routing (``nat`` is then False).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["NatNetwork", "capture", "nat_network"]


@dataclass(frozen=True, slots=True)
class NatNetwork:
    host_if: str  # the veth end in the host's namespace: where captures listen
    host_addr: str  # the PBX's address on that veth
    public_addr: str  # the address the PBX sees the agent's packets come from
    agent_addr: str  # the agent's own address, inside its namespace
    agent_ns: str
    namespaces: tuple[str, ...]
    nat: bool

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the agent's namespace (``ip netns exec`` execs it:
        the PID of the process started is the program's)."""
        return ["ip", "netns", "exec", self.agent_ns, *argv]


def _ip(*args: str, ns: str | None = None) -> None:
    argv = ["ip", *(("-n", ns) if ns else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


@contextmanager
def nat_network() -> Iterator[NatNetwork]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    n = 20 + os.getpid() % 200
    tag = f"hl{n}"
    router, agent = f"{tag}-router", f"{tag}-agent"
    host_if = f"{tag}h"
    nat = shutil.which("nft") is not None
    made: list[str] = []
    try:
        if nat:
            for ns in (router, agent):
                _ip("netns", "add", ns)
                made.append(ns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", f"{tag}r0",
                "netns", router)
            _ip("link", "add", f"{tag}r1", "netns", router, "type", "veth", "peer",
                "name", f"{tag}a", "netns", agent)
            _ip("addr", "add", f"10.231.{n}.1/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("addr", "add", f"10.231.{n}.2/30", "dev", f"{tag}r0", ns=router)
            _ip("addr", "add", f"10.231.{n}.5/30", "dev", f"{tag}r1", ns=router)
            for dev in ("lo", f"{tag}r0", f"{tag}r1"):
                _ip("link", "set", dev, "up", ns=router)
            _ip("addr", "add", f"10.231.{n}.6/30", "dev", f"{tag}a", ns=agent)
            for dev in ("lo", f"{tag}a"):
                _ip("link", "set", dev, "up", ns=agent)
            _ip("route", "add", "default", "via", f"10.231.{n}.5", ns=agent)
            # forwarding and the NAT rule exist only inside the router namespace
            rules = ("table ip homeline_nat {\n chain post {\n"
                     "  type nat hook postrouting priority srcnat;\n"
                     f'  oifname "{tag}r0" masquerade\n }}\n}}\n')
            for argv, stdin in ((["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], None),
                                (["nft", "-f", "-"], rules)):
                done = subprocess.run(["ip", "netns", "exec", router, *argv], input=stdin,
                                      capture_output=True, text=True, timeout=10)
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv)} in {router}: {done.stderr.strip()}")
            yield NatNetwork(host_if, f"10.231.{n}.1", f"10.231.{n}.2", f"10.231.{n}.6",
                             agent, (router, agent), True)
        else:
            _ip("netns", "add", agent)
            made.append(agent)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", f"{tag}a",
                "netns", agent)
            _ip("addr", "add", f"10.231.{n}.1/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("addr", "add", f"10.231.{n}.2/30", "dev", f"{tag}a", ns=agent)
            for dev in ("lo", f"{tag}a"):
                _ip("link", "set", dev, "up", ns=agent)
            yield NatNetwork(host_if, f"10.231.{n}.1", f"10.231.{n}.2", f"10.231.{n}.2",
                             agent, (agent,), False)
    finally:
        # deleting a namespace deletes its veth ends, and with them their peers
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                              timeout=10).stdout
        assert not any(ns in left for ns in made), f"namespaces left behind: {left}"


@contextmanager
def capture(interface: str, bpf: str, path: Path, timeout: float = 15.0) -> Iterator[Path]:
    """tshark writing what ``bpf`` (a capture filter) lets through on ``interface``
    to ``path`` until the block ends; stopped by its PID (SIGINT, then SIGKILL)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (scripts/apt-packages.txt)")
    log = path.with_suffix(".log")
    with open(log, "w") as err:
        proc = subprocess.Popen(["tshark", "-q", "-n", "-i", interface, "-f", bpf,
                                 "-w", str(path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + timeout
        while "Capturing on" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tshark did not start capturing: {log.read_text()}")
            time.sleep(0.05)
        yield path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
