"""HTML conformance matrix: spec section x target, with every case's wire evidence.

A single self-contained file (no scripts, no external assets) that a vendor can hand to a
customer: the matrix first, then one section per case with the messages it exchanged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from lxml import etree

from harness.report.results import CaseResult

# Worst first: a cell shows the worst verdict of its cases.
_VERDICT_RANK = {"FAIL": 0, "ERROR": 1, "PASS": 2, "NOT-SUPPORTED": 3, "SKIPPED": 4}
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table.matrix{border-collapse:collapse;margin:1em 0}
.matrix th,.matrix td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}
.matrix th{background:#eee}
td.PASS{background:#c8f0c8} td.FAIL,td.ERROR{background:#f4b6b6}
td.NOT-SUPPORTED{background:#e4e4e4} td.SKIPPED{background:#f6efc0}
.case{border-top:1px solid #ccc;margin-top:1.5em;padding-top:.5em}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:12px;max-height:30em}
.verdict{font-weight:bold} .msg{white-space:pre-wrap}
"""


def _section_key(spec: str) -> tuple[object, ...]:
    doc, _, section = spec.partition(" ")
    parts: list[object] = [doc]
    for piece in re.split(r"[.\s]", section):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts)


def _anchor(result: CaseResult) -> str:
    return "case-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{result.target}-{result.nodeid}").strip("-")


def _pretty(body: bytes) -> str:
    if not body:
        return ""
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return etree.tostring(etree.fromstring(body, parser), pretty_print=True, encoding="unicode")
    except etree.LxmlError:
        return body.decode("utf-8", errors="replace")


def worst_verdict(cases: Sequence[CaseResult]) -> str:
    return min((c.verdict for c in cases), key=lambda v: _VERDICT_RANK.get(v, 9))


def render_matrix(results: Sequence[CaseResult], title: str = "wm-harness conformance report") -> str:
    targets = sorted({r.target for r in results})
    by_cell: dict[tuple[str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        for spec in r.specs or ["(no spec cited)"]:
            by_cell[(spec, r.target)].append(r)
    sections = sorted({spec for spec, _ in by_cell}, key=_section_key)
    totals = {v: sum(1 for r in results if r.verdict == v) for v in _VERDICT_RANK}

    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%SZ')}; "
        f"{len(results)} case results on {len(targets)} target(s): "
        + ", ".join(f"{escape(v)} {n}" for v, n in totals.items() if n)
        + "</p>",
        "<table class='matrix' id='matrix'><thead><tr><th>Spec section</th>",
    ]
    out += [f"<th>{escape(t)}</th>" for t in targets]
    out.append("</tr></thead><tbody>")
    for spec in sections:
        out.append(f"<tr><th scope='row'>{escape(spec)}</th>")
        for target in targets:
            cases = by_cell.get((spec, target), [])
            if not cases:
                out.append("<td>-</td>")
                continue
            verdict = worst_verdict(cases)
            links = " ".join(
                f"<a href='#{_anchor(c)}' title='{escape(c.name)}'>{escape(c.verdict[0])}</a>" for c in cases
            )
            out.append(f"<td class='{verdict}'><span class='verdict'>{verdict}</span> ({len(cases)}) {links}</td>")
        out.append("</tr>")
    out.append("</tbody></table><h2>Cases</h2>")
    for r in sorted(results, key=lambda c: (c.target, c.nodeid)):
        out.append(f"<div class='case' id='{_anchor(r)}'><h3>{escape(r.name)} "
                   f"<span class='verdict'>[{escape(r.verdict)}]</span></h3>")
        out.append(f"<p>Target <b>{escape(r.target)}</b>; test <code>{escape(r.nodeid)}</code>; "
                   f"spec {escape(', '.join(r.specs) or '-')}; requires {escape(', '.join(r.requires) or '-')}; "
                   f"{r.duration:.3f} s</p>")
        if r.message:
            out.append(f"<p class='msg'>{escape(r.message)}</p>")
        if r.capture:
            out.append(f"<p>Packet capture: <a href='{escape(r.capture)}'>{escape(r.capture)}</a></p>")
        for i, ex in enumerate(r.wire, 1):
            status = f" HTTP {ex.status}" if ex.status is not None else ""
            out.append(f"<details><summary>{i}. {escape(ex.protocol)} {escape(ex.direction)}{status} "
                       f"({len(ex.body)} bytes)</summary><pre>{escape(_pretty(ex.body))}</pre></details>")
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


def write_matrix(results: Sequence[CaseResult], path: Path, title: str = "wm-harness conformance report") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_matrix(results, title), encoding="utf-8")
