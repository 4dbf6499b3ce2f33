"""Graphviz rendering of a flow, read from the same transition table the engine uses."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ivr.flow import Flow

__all__ = ["to_dot", "write_graph"]

_SHAPES = {
    "play": "note", "menu": "box", "collect": "box", "language": "box", "speech": "box",
    "survey": "box", "hours": "diamond", "branch": "diamond", "lookup": "cylinder",
    "set": "component", "route": "doubleoctagon", "transfer": "doubleoctagon",
    "voicemail": "doubleoctagon", "hangup": "doublecircle",
}
_COLOURS = {"route": "#d8f0d8", "transfer": "#d8f0d8", "voicemail": "#f0e8d0",
            "hangup": "#f0d8d8", "menu": "#dde8f8", "collect": "#dde8f8",
            "language": "#dde8f8", "speech": "#e8ddf8", "survey": "#e8ddf8"}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(flow: Flow) -> str:
    lines = [f"digraph {_q(flow.name)} {{",
             f"  label={_q(f'{flow.name} (version {flow.version})')}; labelloc=t;",
             "  rankdir=LR; node [fontname=Helvetica, style=filled, fillcolor=white];",
             "  edge [fontname=Helvetica, fontsize=10];",
             '  "__start__" [shape=point, label=""];',
             f'  "__start__" -> {_q(flow.start)};']
    if flow.post_call:
        lines += ['  "__after_call__" [shape=plaintext, label="after the agent call"];',
                  f'  "__after_call__" -> {_q(flow.post_call)} [style=dashed];']
    for node_id in sorted(flow.nodes):
        node = flow.nodes[node_id]
        label = f"{node_id}\\n({node.kind})"
        extra = ""
        if node.kind == "route":
            extra = f"\\nqueue {getattr(node, 'queue', '')}"
        if node.kind == "collect" and getattr(node, "secure", False):
            extra = "\\nsecure"
        lines.append(f"  {_q(node_id)} [shape={_SHAPES.get(node.kind, 'box')}, "
                     f"fillcolor={_q(_COLOURS.get(node.kind, 'white'))}, "
                     f"label=\"{label}{extra}\"];")
    for src, outcome, dst in flow.edges():
        label = outcome.replace("option:", "key ").replace("intent:", "said ")
        options = getattr(flow.nodes[src], "options", None)
        if outcome == "next" and isinstance(options, dict):  # a language choice
            label = "key " + ", ".join(f"{d} {lang}" for d, lang in sorted(options.items()))
        style = ", style=dashed" if outcome in ("exhausted", "fallback", "error") else ""
        lines.append(f"  {_q(src)} -> {_q(dst)} [label={_q(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(flow: Flow, out_base: str | Path, *, formats: tuple[str, ...] = ("svg", "png"),
                timeout_s: float = 30.0) -> list[Path]:
    """Write ``<out_base>.dot`` and, when Graphviz ``dot`` is installed, the formats."""
    base = Path(out_base)
    base.parent.mkdir(parents=True, exist_ok=True)
    dot_path = base.with_suffix(".dot")
    dot_path.write_text(to_dot(flow), encoding="utf-8")
    written = [dot_path]
    exe = shutil.which("dot")
    if exe is None:
        return written
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        subprocess.run([exe, f"-T{fmt}", "-o", str(target), str(dot_path)], check=True,
                       capture_output=True, timeout=timeout_s)
        written.append(target)
    return written
