"""``dialplans/nodes.yaml`` (homeline/nodefile.py): the nodes sharing one router,
read as untrusted input, every problem at once; and the trunks rendered from it
(dialplans/templates/pjsip-node.conf.tmpl)."""
from __future__ import annotations

from pathlib import Path

import pytest

from homeline.nodefile import Node, NodesError, load_nodes
from homeline.pbx.render import (
    AgentLine,
    NodePeer,
    RenderError,
    RenderSettings,
    render_config,
)

GOOD = """\
nodes:
  a: {sip: 10.0.0.1:5060}
  b:
    sip: "10.0.0.2:5070"
"""


def test_the_nodes_of_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_nodes(path) == (Node("a", "10.0.0.1", 5060), Node("b", "10.0.0.2", 5070))


def test_no_default_file_is_one_node() -> None:
    assert load_nodes() == ()  # the repository ships no nodes.yaml: one node


def test_a_nodes_file_with_many_faults_reports_every_one(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text("""\
nodes:
  a: {sip: 10.0.0.1:5060, colour: red}
  B-1: {sip: 10.0.0.9:5060}
  c: {sip: "10.0.0.3"}
  d: {sip: 10.0.0.4:70000}
  e: {}
  f: {sip: 10.0.0.1:5060}
extra: 1
""", encoding="utf-8")
    with pytest.raises(NodesError) as err:
        load_nodes(path)
    got = {(p.node, p.key, p.code) for p in err.value.problems}
    assert got == {
        ("-", "extra", "unknown-key"),
        ("node/a", "colour", "unknown-key"),
        ("node/B-1", "-", "wrong-type"),
        ("node/c", "sip", "wrong-type"),
        ("node/d", "sip", "out-of-range"),
        ("node/e", "sip", "missing-key"),
        ("node/f", "sip", "out-of-range"),
    }, [str(p) for p in err.value.problems]
    for p in err.value.problems:
        assert str(p).startswith(f"{path}:{p.node}:{p.key}: ") and str(p).endswith(
            f"[{p.code}]")


def test_one_node_needs_no_file_and_a_file_of_one_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text("nodes:\n  a: {sip: 10.0.0.1:5060}\n", encoding="utf-8")
    with pytest.raises(NodesError, match=r"1 node\(s\): list 2 to 64 \(one node needs no "
                       r"file\) \[out-of-range\]"):
        load_nodes(path)


def _settings(**kw: object) -> RenderSettings:
    return RenderSettings(sip_port=5060, ami_port=5038, agi_port=4573, ami_secret="s" * 20,
                          agent_secrets={"amy": "p" * 20}, **kw)  # type: ignore[arg-type]


def test_a_node_gets_a_trunk_to_each_other_node_and_rings_its_own_agents_for_them() -> None:
    peers = (NodePeer("b", "10.0.0.2", 5070, "t" * 24),)
    files = render_config(_settings(node="a", node_peers=peers), [AgentLine("amy", "Amy")])
    pjsip, ext = files["pjsip.conf"], files["extensions.conf"]
    assert "[homeline-node-b]\ntype=endpoint" in pjsip
    assert "contact=sip:10.0.0.2:5070" in pjsip
    assert "from_user=homeline-node-a" in pjsip  # how node b identifies us
    assert "username=homeline-node-b\npassword=" + "t" * 24 in pjsip  # b's calls to us
    assert "[homeline-from-node]\nexten => amy,1,Dial(PJSIP/amy)" in ext
    assert "Dial(PJSIP/${HOMELINE_AGENT}@${HOMELINE_AGENT_VIA}" in ext
    one = render_config(_settings(), [AgentLine("amy", "Amy")])
    assert "homeline-node-" not in one["pjsip.conf"]


@pytest.mark.parametrize(("peer", "message"), [
    (NodePeer("a", "10.0.0.2", 5070, "t" * 24), "not this node's own"),
    (NodePeer("b", "10.0.0.2", 5070, "short"), "secret: at least 16 characters"),
    (NodePeer("b", "10.0.0.2\nx", 5070, "t" * 24), "host"),
    (NodePeer("b", "10.0.0.2", 0, "t" * 24), "port 0 is not a port number"),
])
def test_a_bad_trunk_is_refused_naming_it(peer: NodePeer, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render_config(_settings(node="a", node_peers=(peer,)), [AgentLine("amy", "Amy")])
