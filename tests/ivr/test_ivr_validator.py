"""`flow check` catches every class of problem, one broken flow per class."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ivr_testkit import FLOWS, MINIMAL

from homeline.cli import main
from ivr.errors import FlowInvalid
from ivr.loader import check_flow, load_flow

LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<node>[^:]+):(?P<key>[^:]+): (?P<msg>.+) \[(?P<code>[a-z-]+)\]$")
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def codes(problems):
    return sorted({p.code for p in problems})


def test_minimal_flow_is_good(write_flow, catalog):
    assert check_flow(write_flow(MINIMAL), catalog=catalog) == []


@pytest.mark.parametrize("name", ["main-menu.yaml", "support-line.yaml"])
def test_shipped_flows_pass_silently_with_exit_0(name, catalog, queues, capsys):
    assert check_flow(FLOWS / name, catalog=catalog, queues=queues) == []
    assert main(["flow", "check", str(FLOWS / name)]) == 0
    assert capsys.readouterr().out == ""


BROKEN = {
    "unknown-key": (MINIMAL.replace("    exhausted: general\n",
                                    "    exhausted: general\n    timout: 5\n"),
                    "menu", "timout", "allowed:"),
    "wrong-type": (MINIMAL.replace("no_input_prompt: no-input",
                                   "no_input_prompt: no-input\n    max_retries: three"),
                   "menu", "max_retries", "expected an integer"),
    "dangling-next": (MINIMAL.replace('"2": tech', '"2": tecnical'), "menu", "options.2",
                      "'tecnical' does not exist"),
    "unreachable-node": (MINIMAL + "  orphan: {type: hangup}\n", "orphan", "-", "unreachable"),
    "no-input-handling": (MINIMAL.replace("    no_input_prompt: no-input\n", ""), "menu",
                          "no_input_prompt", "says/keys nothing"),
    "no-match-handling": (MINIMAL.replace("    no_match_prompt: invalid-option\n", ""), "menu",
                          "no_match_prompt", "invalid input"),
    "missing-prompt": (MINIMAL.replace("prompt: main-menu", "prompt: no-such-prompt"), "menu",
                       "prompt", "not in the prompt catalog"),
    "unknown-type": (MINIMAL.replace("tech: {type: route", "tech: {type: rout"), "tech", "type",
                     "unknown node type 'rout'"),
    "missing-key": (MINIMAL.replace("billing: {type: route, queue: billing}",
                                    "billing: {type: route}"), "billing", "queue",
                    "missing required key"),
    "unknown-queue": (MINIMAL.replace("queue: tech", "queue: tehc"), "tech", "queue",
                      "unknown queue"),
    "bad-expression": (MINIMAL.replace(
        "general: {type: route, queue: general}",
        "general: {type: route, queue: general, priority_rules: [{when: 'tier ==', "
        "priority: 2}]}"), "general", "priority_rules.0.when", "bad expression"),
}


@pytest.mark.parametrize("code", sorted(BROKEN))
def test_each_class_is_reported_with_file_node_key(code, write_flow, catalog, queues):
    text, node, key, fragment = BROKEN[code]
    path = write_flow(text)
    problems = check_flow(path, catalog=catalog, queues=queues)
    hits = [p for p in problems if p.code == code]
    assert hits, f"expected [{code}], got {[str(p) for p in problems]}"
    p = hits[0]
    assert (p.file, p.node, p.key) == (str(path), node, key)
    assert fragment in p.message
    m = LINE.match(str(p))
    assert m and m["code"] == code
    with pytest.raises(FlowInvalid):
        load_flow(path, catalog=catalog, queues=queues)


def test_unknown_key_lists_the_allowed_keys(write_flow, catalog):
    text = MINIMAL.replace("    exhausted: general\n", "    exhausted: general\n    colour: red\n")
    (p,) = [p for p in check_flow(write_flow(text), catalog=catalog) if p.code == "unknown-key"]
    assert "no_input_prompt" in p.message and "max_retries" in p.message


LOOP = """\
flow: loopy
languages: [en]
start: a
nodes:
  a: {type: play, prompts: welcome, next: b}
  b: {type: play, prompts: goodbye, next: a}
"""


def test_loop_with_no_exit(write_flow, catalog):
    problems = check_flow(write_flow(LOOP), catalog=catalog)
    assert codes(problems) == ["loop-no-exit"]
    assert "a -> b -> a" in problems[0].message


def test_menu_loop_with_an_exit_is_fine(write_flow, catalog):
    # main-menu goes to the language menu and back, but also routes: not a dead loop
    assert check_flow(FLOWS / "main-menu.yaml", catalog=catalog) == []


def test_prompt_missing_in_one_language_the_flow_offers(write_flow, catalog):
    text = MINIMAL.replace("languages: [en, es]", "languages: [en, es, de]")
    problems = check_flow(write_flow(text), catalog=catalog)
    assert {p.code for p in problems} == {"missing-prompt"}
    assert all("de" in p.message for p in problems)


SECURE = """\
flow: card
languages: [en]
start: card
record_variables: [last4]
nodes:
  card:
    type: collect
    prompt: enter-card-number
    variable: card
    secure: true
    min_length: 16
    max_length: 16
    no_input_prompt: no-input
    no_match_prompt: invalid-option
    exhausted: bye
    next: copy
  copy:
    type: set
    expressions: {last4: "lower(card)"}
    next: read-back
  read-back:
    type: play
    prompts: [thank-you, {say_digits: card}]
    next: queue
  queue: {type: route, queue: billing, data: [card]}
  bye: {type: hangup}
"""


def test_secure_digits_flowing_into_logged_or_announced_places(write_flow, catalog):
    problems = [p for p in check_flow(write_flow(SECURE), catalog=catalog)
                if p.code == "secure-leak"]
    where = sorted((p.node, p.key) for p in problems)
    assert where == [("-", "record_variables"), ("queue", "data"), ("read-back", "prompts")]


@pytest.mark.parametrize("text, code", [
    ("flow: [unclosed\n", "yaml-syntax"),
    ("- just\n- a list\n", "wrong-type"),
    ("", "wrong-type"),
    ("a: &x [1, *x]\n", "yaml-alias"),
    ("a: " + "[" * 200 + "]" * 200 + "\n", "too-deep"),
    ("a: " + "[" * 100000 + "\n", "too-deep"),
    ("flow: a\nflow: b\n", "duplicate-key"),
])
def test_bad_input_is_a_clear_problem_never_a_traceback(text, code, write_flow, catalog):
    problems = check_flow(write_flow(text), catalog=catalog)
    assert [p.code for p in problems][:1] == [code]


def test_huge_file(write_flow, catalog):
    path = write_flow("# padding\n" * 40000)
    assert [p.code for p in check_flow(path, catalog=catalog)] == ["file-too-large"]


def test_not_utf8_and_missing_file(tmp_path, catalog):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"flow: \xff\xfe\n")
    assert [p.code for p in check_flow(bad, catalog=catalog)] == ["encoding"]
    assert [p.code for p in check_flow(tmp_path / "nope.yaml")] == ["unreadable"]


def test_every_problem_at_once_and_exit_1(write_flow, capsys):
    text = (MINIMAL.replace('"2": tech', '"2": nowhere')
            .replace("    no_input_prompt: no-input\n", "")
            .replace("queue: general}", "queue: general, colour: red}")
            + "  orphan: {type: hangup}\n")
    path = write_flow(text)
    assert main(["flow", "check", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    found = {LINE.match(line)["code"] for line in lines}
    assert {"dangling-next", "no-input-handling", "unknown-key", "unreachable-node"} <= found
    assert main(["flow", "check", "--json", str(path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {p["code"] for p in doc["problems"]} == found


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    problems = check_flow(path)
    assert isinstance(problems, list)


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                       max_size=3),
                    max_leaves=20))
def test_random_documents_under_nodes_never_raise(tmp_path, value):
    import yaml

    path = tmp_path / "fuzz.yaml"
    doc = {"flow": "f", "languages": ["en"], "start": "a", "nodes": {"a": value}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    problems = check_flow(path)
    assert problems, "a random node is never a valid flow"


SPEECH = """\
flow: talk
languages: [en]
start: why
speech:
  intents:
    internet: [internet, xyzzyq router]
nodes:
  why:
    type: speech
    prompt: say-reason
    intents: {internet: tech, billing: tech}
    no_input_prompt: speech-no-input
    no_match_prompt: speech-not-understood
    fallback: tech
  tech: {type: route, queue: tech}
"""


def test_speech_words_and_intents_are_checked(write_flow, catalog):
    problems = check_flow(write_flow(SPEECH), catalog=catalog)
    found = {(p.node, p.key, p.code) for p in problems}
    assert ("-", "speech.intents", "unknown-word") in found
    assert ("why", "intents.billing", "unknown-intent") in found
    assert "xyzzyq" in next(p.message for p in problems if p.code == "unknown-word")
