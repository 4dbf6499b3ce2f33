"""Every admin-edited file kind reports its faults as one `Problem` type, all at once,
``file:node:key: message [code]``, with the same code for the same fault.

Real files on disk, read by each kind's own loader: flows (`ivr.loader.check_flow`),
the agent directory (`routing.load_directory`) and the prompt catalog
(`prompts.catalog.load_catalog`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from adminfiles import SHARED_CODES, Problem, parse_yaml
from homeline.paths import DIALPLANS_DIR
from ivr.loader import check_flow, load_prompt_catalog
from prompts.catalog import CatalogError, load_catalog
from routing import DirectoryError, load_directory

LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<node>[^:]+):(?P<key>[^:]+): (?P<msg>.+) \[(?P<code>[a-z-]+)\]$")

FLOW = """\
flow: mini
languages: [en]
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options: {"1": billing}
    no_input_prompt: no-input
    no_match_prompt: invalid-option
    exhausted: billing
  billing: {type: route, queue: billing}
"""

AGENTS = """\
queues:
  billing: {skills: {billing: 1}, languages: [en]}
agents:
  alice: {zone: UTC, skills: {billing: 3}, windows: ['Mon 09:00-12:00']}
"""

CATALOG = """\
main-menu: {en: "For billing, press 1."}
no-input: {en: "Sorry, I did not hear you."}
"""


def _problems(kind: str, path: Path) -> list[Problem]:
    """The problems of one file, through the loader of its kind."""
    if kind == "flow":
        return check_flow(path, queues=("billing",))
    if kind == "agents":
        try:
            load_directory(path)
        except DirectoryError as exc:
            return list(exc.problems)
        return []
    try:
        load_catalog(path)
    except CatalogError as exc:
        return list(exc.problems)
    return []


def _all_in_one_format(problems: list[Problem], path: Path) -> None:
    assert problems
    for p in problems:
        assert isinstance(p, Problem)
        m = LINE.match(str(p))
        assert m, str(p)
        assert (m["file"], m["node"], m["key"], m["code"]) == (str(path), p.node, p.key, p.code)


def test_the_good_files_have_no_problems(tmp_path: Path) -> None:
    for kind, text in (("flow", FLOW), ("agents", AGENTS), ("catalog", CATALOG)):
        path = tmp_path / f"{kind}.yaml"
        path.write_text(text, encoding="utf-8")
        assert _problems(kind, path) == [], kind


def test_a_flow_with_many_faults_reports_every_one(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        FLOW.replace("    exhausted: billing\n",
                     "    exhausted: billing\n    timout: 5\n    max_retries: three\n"
                     "    prompt: no-input\n")
        .replace('{"1": billing}', '{"1": billing, "2": nowhere}')
        .replace("queue: billing}", "queue: bililng}"),
        encoding="utf-8")
    problems = check_flow(path, queues=("billing", "general"))
    _all_in_one_format(problems, path)
    found = {(p.node, p.key, p.code) for p in problems}
    assert found == {
        ("menu", "prompt", "duplicate-key"),
        ("menu", "timout", "unknown-key"),
        ("menu", "max_retries", "wrong-type"),
        ("menu", "options.2", "dangling-next"),
        ("billing", "queue", "unknown-queue"),
    }
    by_code = {p.code: p for p in problems}
    assert "(allowed: " in by_code["unknown-key"].message
    assert "no_input_prompt" in by_code["unknown-key"].message
    assert by_code["unknown-queue"].message == ("unknown queue 'bililng': the agent directory "
                                                "defines billing, general")


def test_an_agent_directory_with_many_faults_reports_every_one(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "queues:\n"
        "  billing: {skills: {billing: 1}, selection: random, aht_s: 0,\n"
        "            expansion: [{min_level: 2}]}\n"
        "  billing: {skills: {billing: 1}, selection: random, aht_s: 0,\n"
        "            expansion: [{min_level: 2}]}\n"
        "agents:\n"
        "  alice: {zone: UTC, windows: ['Mon 09:00-12:00'], colour: red, trainee: maybe}\n",
        encoding="utf-8")
    with pytest.raises(DirectoryError) as err:
        load_directory(path)
    problems = list(err.value.problems)
    _all_in_one_format(problems, path)
    found = {(p.node, p.key, p.code) for p in problems}
    assert found == {
        ("queue/billing", "-", "duplicate-key"),
        ("queue/billing", "selection", "bad-choice"),
        ("queue/billing", "aht_s", "out-of-range"),
        ("queue/billing", "expansion[0].after_s", "missing-key"),
        ("alice", "colour", "unknown-key"),
        ("alice", "trainee", "wrong-type"),
    }
    assert str(err.value).splitlines() == [str(p) for p in problems]
    unknown = next(p for p in problems if p.code == "unknown-key")
    assert unknown.message.startswith("unknown key 'colour' (allowed: name, zone, skills")


def test_a_prompt_catalog_with_many_faults_reports_every_one(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        CATALOG
        + "goodbye: {en: Goodbye, en: Bye}\n"
          "Bad_Id: {en: x}\n"
          "silent: {en: '   '}\n"
          "listy: [a, b]\n"
          "weird: {en: ok, klingon-language: x, files: nothere.wav}\n",
        encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    problems = list(err.value.problems)
    _all_in_one_format(problems, path)
    found = {(p.node, p.key, p.code) for p in problems}
    assert found == {
        ("goodbye", "en", "duplicate-key"),
        ("Bad_Id", "-", "bad-id"),
        ("silent", "en", "empty-text"),
        ("listy", "-", "wrong-type"),
        ("weird", "klingon-language", "unknown-key"),
        ("weird", "files", "wrong-type"),
    }
    # the flow checker sees the catalog's problems as they are, not re-wrapped
    catalog, via_flows = load_prompt_catalog(path)
    assert catalog is None and via_flows == problems


def _too_large(text: str) -> bytes:
    return (text + "# padding\n" * 500_000).encode()


# fault -> (code, how to break a good file of any kind)
FAULTS: dict[str, tuple[str, Callable[[str], bytes]]] = {
    "duplicate key": ("duplicate-key", lambda good: (good + good.splitlines()[0] + "\n").encode()),
    "alias": ("yaml-alias", lambda good: (good + "extra: &a [1]\nmore: *a\n").encode()),
    "too large": ("file-too-large", _too_large),
    "not valid YAML": ("yaml-syntax", lambda good: (good + "broken: [unclosed\n").encode()),
    "not UTF-8": ("encoding", lambda good: good.encode() + b"x: \xff\xfe\n"),
    "too deep": ("too-deep", lambda good: (good + "deep: " + "[" * 40 + "]" * 40 + "\n").encode()),
    "not a mapping": ("wrong-type", lambda good: b"- just\n- a list\n"),
    "empty": ("wrong-type", lambda good: b""),
    # a catalog's top-level keys are prompt ids: its fixed key set is inside an entry
    "unknown key": ("unknown-key", lambda good: (
        good.replace('main-menu: {en: ', 'main-menu: {colour: red, en: ') if good == CATALOG
        else good + "colour: red\n").encode()),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_same_fault_gets_the_same_code_in_every_kind(fault: str, tmp_path: Path) -> None:
    code, spoil = FAULTS[fault]
    seen: dict[str, set[str]] = {}
    for kind, good in (("flow", FLOW), ("agents", AGENTS), ("catalog", CATALOG)):
        path = tmp_path / f"{kind}.yaml"
        path.write_bytes(spoil(good))
        problems = _problems(kind, path)
        _all_in_one_format(problems, path)
        seen[kind] = {p.code for p in problems}
        hit = next((p for p in problems if p.code == code), None)
        assert hit is not None, f"{kind}: expected [{code}], got {[str(p) for p in problems]}"
        if code == "unknown-key":
            assert "(allowed: " in hit.message, hit.message
    assert code in SHARED_CODES
    assert all(code in codes for codes in seen.values()), seen


def test_an_unreadable_file_is_the_same_problem_in_every_kind(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    for kind in ("flow", "agents", "catalog"):
        assert [(p.file, p.code) for p in _problems(kind, missing)] == [(str(missing),
                                                                        "unreadable")]


def test_every_alias_and_every_duplicate_is_reported_with_its_place() -> None:
    doc, problems = parse_yaml(
        b"a: &x [1]\nb: *x\nc: {d: 1, d: 2}\nc: *x\n", "f.yaml", what="flow file")
    assert doc is None  # an alias: nothing of the document is used
    assert [(p.node, p.key, p.code) for p in problems] == [
        ("-", "-", "yaml-alias"), ("-", "-", "yaml-alias"),
        ("-", "c", "duplicate-key"), ("-", "c.d", "duplicate-key"),
    ]
    assert "line 2, column 4" in problems[0].message and "line 4" in problems[1].message


def test_the_shipped_agent_directory_reads_through_the_same_reader() -> None:
    directory = load_directory(DIALPLANS_DIR / "agents.yaml")
    assert set(directory.queue_ids) == {"billing", "tech", "sales", "general"}
