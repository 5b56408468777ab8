"""JUnit XML of the conformance verdicts: one ``<testsuite>`` per target.

CI systems read JUnit; the certification verdicts map onto it as: FAIL and XPASS-ALARM are
``<failure>``, ERROR is ``<error>``, NOT-SUPPORTED, SKIPPED and XFAIL are ``<skipped>`` (with
the verdict in the message), PASS, NON-STRICT and INFORMATIONAL pass with a ``verdict``
property so that nothing is lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from harness.report.results import CaseResult


def _classname(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return path.removesuffix(".py").replace("/", ".")


def render_junit(results: Sequence[CaseResult]) -> bytes:
    by_target: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by_target[r.target].append(r)
    root = etree.Element("testsuites", name="wm-harness conformance")
    for target in sorted(by_target):
        cases = by_target[target]
        verdicts = [c.verdict for c in cases]
        suite = etree.SubElement(
            root, "testsuite", name=target, tests=str(len(cases)),
            failures=str(sum(v in ("FAIL", "XPASS-ALARM") for v in verdicts)),
            errors=str(verdicts.count("ERROR")),
            skipped=str(sum(v in ("NOT-SUPPORTED", "SKIPPED", "XFAIL") for v in verdicts)),
            time=f"{sum(c.duration for c in cases):.3f}")
        for case, verdict in zip(cases, verdicts, strict=True):
            tc = etree.SubElement(suite, "testcase", classname=_classname(case.nodeid),
                                  name=f"{case.name} [{target}]", time=f"{case.duration:.3f}")
            props = etree.SubElement(tc, "properties")
            etree.SubElement(props, "property", name="verdict", value=verdict)
            for rid in case.requirements:
                etree.SubElement(props, "property", name="requirement", value=rid)
            for note in case.observations:
                etree.SubElement(props, "property", name="observed", value=note)
            message = (case.message or "")[:2000]
            if verdict in ("FAIL", "XPASS-ALARM"):
                etree.SubElement(tc, "failure", message=f"{verdict}: {message[:200]}").text = message
            elif verdict == "ERROR":
                etree.SubElement(tc, "error", message=message[:200]).text = message
            elif verdict in ("NOT-SUPPORTED", "SKIPPED", "XFAIL"):
                etree.SubElement(tc, "skipped", message=f"{verdict}: {message[:200]}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def write_junit(results: Sequence[CaseResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_junit(results))
