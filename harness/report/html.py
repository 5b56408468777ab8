"""HTML conformance report: requirement x target and spec section x target, with wire evidence.

A single self-contained file (no scripts, no external assets) that a vendor can hand to a
customer: the requirement matrix first (level, statement, one verdict column per target, side
by side), then the same results by spec section, then one section per case (anchor
``#case-...``) with its requirements, observations and every message it exchanged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from lxml import etree

from harness.report.catalogue import Requirement, requirements_or_default
from harness.report.results import VERDICTS, CaseResult, worst

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table.matrix{border-collapse:collapse;margin:1em 0}
.matrix th,.matrix td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}
.matrix th{background:#eee}
.PASS{background:#c8f0c8} .FAIL,.ERROR{background:#f4b6b6} .XPASS-ALARM{background:#ff6b6b;color:#fff}
.NON-STRICT{background:#f9d49b} .XFAIL{background:#d9c8f0} .INFORMATIONAL{background:#cfe3f7}
.NOT-SUPPORTED{background:#e4e4e4} .SKIPPED{background:#f6efc0}
span.legend{padding:2px 6px;margin-right:4px;border:1px solid #bbb}
.case{border-top:1px solid #ccc;margin-top:1.5em;padding-top:.5em}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:12px;max-height:30em}
.verdict{font-weight:bold} .msg{white-space:pre-wrap}
"""
UNMAPPED = "(unmapped)"


def _section_key(spec: str) -> tuple[object, ...]:
    doc, _, section = spec.partition(" ")
    parts: list[object] = [doc]
    for piece in re.split(r"[.\s]", section):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts)


def case_anchor(result: CaseResult) -> str:
    """The id of a case's section in ``matrix.html``."""
    return "case-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{result.target}-{result.nodeid}").strip("-")


_anchor = case_anchor


def _pretty(body: bytes) -> str:
    if not body:
        return ""
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return etree.tostring(etree.fromstring(body, parser), pretty_print=True, encoding="unicode")
    except etree.LxmlError:
        return body.decode("utf-8", errors="replace")


def _requirements_for(results: Sequence[CaseResult],
                      requirements: Mapping[str, Requirement] | None) -> dict[str, Requirement]:
    known = requirements_or_default(requirements)
    out: dict[str, Requirement] = {}
    for r in results:
        for rid in r.requirements:
            if rid not in out:
                out[rid] = known.get(rid) or Requirement(id=rid, level="MUST" if r.level is None else r.level,  # type: ignore[arg-type]
                                                         text="(not in the catalogue)")
    return dict(sorted(out.items()))


def _cell(cases: Sequence[CaseResult], verdicts: Sequence[str]) -> str:
    if not cases:
        return "<td>-</td>"
    verdict = worst(verdicts)
    links = " ".join(f"<a href='#{case_anchor(c)}' title='{escape(c.name)}: {escape(v)}'>{escape(v[0])}</a>"
                     for c, v in zip(cases, verdicts, strict=True))
    return f"<td class='{verdict}'><span class='verdict'>{verdict}</span> ({len(cases)}) {links}</td>"


def _requirement_table(results: Sequence[CaseResult], targets: Sequence[str],
                       requirements: Mapping[str, Requirement]) -> list[str]:
    by_cell: dict[tuple[str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        for rid in r.requirements or [UNMAPPED]:
            by_cell[(rid, r.target)].append(r)
    rows = [*requirements, *([UNMAPPED] if any(k[0] == UNMAPPED for k in by_cell) else [])]
    out = ["<h2>Conformance by requirement</h2>",
           "<table class='matrix' id='requirements'><thead><tr><th>Requirement</th><th>Level</th>"
           "<th>Statement</th><th>Spec</th>"]
    out += [f"<th class='target'>{escape(t)}</th>" for t in targets]
    out.append("</tr></thead><tbody>")
    for rid in rows:
        req = requirements.get(rid)
        level = req.level if req else None
        out.append(f"<tr id='req-{escape(rid)}'><th scope='row'>{escape(rid)}</th><td>{escape(level or '-')}</td>"
                   f"<td>{escape(req.text if req else 'tests not in the requirement catalogue')}</td>"
                   f"<td>{escape(', '.join(req.specs) if req else '-')}</td>")
        for target in targets:
            cases = by_cell.get((rid, target), [])
            out.append(_cell(cases, [c.verdict_for(level) if req else c.verdict for c in cases]))
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _spec_table(results: Sequence[CaseResult], targets: Sequence[str]) -> list[str]:
    by_cell: dict[tuple[str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        for spec in r.specs or ["(no spec cited)"]:
            by_cell[(spec, r.target)].append(r)
    sections = sorted({spec for spec, _ in by_cell}, key=_section_key)
    out = ["<h2>Conformance by spec section</h2>",
           "<table class='matrix' id='matrix'><thead><tr><th>Spec section</th>"]
    out += [f"<th>{escape(t)}</th>" for t in targets]
    out.append("</tr></thead><tbody>")
    for spec in sections:
        out.append(f"<tr><th scope='row'>{escape(spec)}</th>")
        for target in targets:
            cases = by_cell.get((spec, target), [])
            out.append(_cell(cases, [c.verdict for c in cases]))
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _case_section(r: CaseResult) -> list[str]:
    out = [f"<div class='case' id='{case_anchor(r)}'><h3>{escape(r.name)} "
           f"<span class='verdict {escape(r.verdict)}'>[{escape(r.verdict)}]</span></h3>",
           f"<p>Target <b>{escape(r.target)}</b>; test <code>{escape(r.nodeid)}</code>; "
           f"requirements {escape(', '.join(r.requirements) or '-')} (level {escape(r.level or '-')}); "
           f"spec {escape(', '.join(r.specs) or '-')}; requires {escape(', '.join(r.requires) or '-')}; "
           f"{r.duration:.3f} s{'; worker ' + escape(r.worker) if r.worker else ''}</p>"]
    if r.expected_failure:
        out.append("<p>Listed as an expected failure of this target in the inventory.</p>")
    for note in r.observations:
        out.append(f"<p class='INFORMATIONAL'>Observed: {escape(note)}</p>")
    if r.message:
        out.append(f"<p class='msg'>{escape(r.message)}</p>")
    if r.capture:
        out.append(f"<p>Packet capture: <a href='{escape(r.capture)}'>{escape(r.capture)}</a></p>")
    for i, ex in enumerate(r.wire, 1):
        status = f" HTTP {ex.status}" if ex.status is not None else ""
        out.append(f"<details><summary>{i}. {escape(ex.protocol)} {escape(ex.direction)}{status} "
                   f"({len(ex.body)} bytes)</summary><pre>{escape(_pretty(ex.body))}</pre></details>")
    out.append("</div>")
    return out


def render_matrix(results: Sequence[CaseResult], title: str = "wm-harness conformance report",
                  requirements: Mapping[str, Requirement] | None = None) -> str:
    """The whole report as one HTML document (``requirements``: the catalogue; None = the default one)."""
    targets = sorted({r.target for r in results})
    totals = {v: sum(1 for r in results if r.verdict == v) for v in VERDICTS}
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p id='summary'>Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%SZ')}; "
        f"{len(results)} case results on {len(targets)} target(s): "
        + ", ".join(f"{escape(v)} {n}" for v, n in totals.items() if n)
        + "</p><p>" + "".join(f"<span class='legend {v}'>{v}</span>" for v in VERDICTS) + "</p>",
    ]
    out += _requirement_table(results, targets, _requirements_for(results, requirements))
    out += _spec_table(results, targets)
    out.append("<h2>Cases</h2>")
    for r in sorted(results, key=lambda c: (c.target, c.nodeid)):
        out += _case_section(r)
    out.append("</body></html>")
    return "\n".join(out)


def write_matrix(results: Sequence[CaseResult], path: Path, title: str = "wm-harness conformance report",
                 requirements: Mapping[str, Requirement] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_matrix(results, title, requirements), encoding="utf-8")
