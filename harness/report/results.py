"""Per-case results and their JSON form: the input of every report."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from harness.transport.tap import Exchange

Outcome = Literal["passed", "failed", "skipped", "error"]

#: A skip whose reason starts with this prefix means the target lacks a capability: the
#: matrix shows "not supported", never a pass (DESIGN: How a suite test reads).
NOT_SUPPORTED_PREFIX = "not supported:"

#: Every verdict, worst first: a matrix cell shows the worst verdict of its cases.
VERDICTS: tuple[str, ...] = ("XPASS-ALARM", "FAIL", "ERROR", "NON-STRICT", "XFAIL", "INFORMATIONAL", "PASS",
                             "NOT-SUPPORTED", "SKIPPED")
#: Verdicts that make a run (or a merged report) fail.
FAILING_VERDICTS = frozenset({"XPASS-ALARM", "FAIL", "ERROR"})


def verdict_of(outcome: str, level: str | None = None, expected_failure: bool = False,
               message: str | None = None) -> str:
    """The certification verdict of one outcome against a requirement level.

    * passed: PASS, or XPASS-ALARM when the target's inventory lists it as an expected failure
      (the known defect is gone or the test no longer checks it: someone must look);
    * failed: XFAIL when expected; else by the strictest requirement level: MUST (or none) FAIL,
      SHOULD and OBSERVED (observed Windows behaviour) NON-STRICT, MAY INFORMATIONAL
      (RFC 2119: an implementation that omits a MAY item must still interoperate);
    * error (setup or harness trouble): ERROR, or XFAIL when expected;
    * skipped: NOT-SUPPORTED when the target lacks a capability, else SKIPPED.
    """
    if outcome == "passed":
        return "XPASS-ALARM" if expected_failure else "PASS"
    if outcome in ("failed", "error"):
        if expected_failure:
            return "XFAIL"
        if outcome == "error":
            return "ERROR"
        if level in ("SHOULD", "OBSERVED"):
            return "NON-STRICT"
        if level == "MAY":
            return "INFORMATIONAL"
        return "FAIL"
    if message and message.startswith(NOT_SUPPORTED_PREFIX):
        return "NOT-SUPPORTED"
    return "SKIPPED"


def worst(verdicts: Iterable[str]) -> str:
    """The worst of ``verdicts`` in :data:`VERDICTS` order ("SKIPPED" when empty)."""
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return min(verdicts, key=lambda v: rank.get(v, len(VERDICTS)), default="SKIPPED")


@dataclass
class CaseResult:
    """The outcome of one suite test against one target, with its wire evidence."""

    nodeid: str
    name: str
    target: str
    outcome: Outcome
    specs: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    duration: float = 0.0
    message: str | None = None
    wire: list[Exchange] = field(default_factory=list)
    #: The case's synthesised packet capture, relative to the reports directory (harness.capture)
    capture: str | None = None
    #: Requirement ids of the catalogue (harness.report.catalogue) and the strictest level.
    requirements: list[str] = field(default_factory=list)
    level: str | None = None
    #: The target's inventory lists this test (or one of its requirements) as a known failure.
    expected_failure: bool = False
    #: Which of several acceptable outcomes the test saw (INFORMATIONAL detail, ``wm_outcome``).
    observations: list[str] = field(default_factory=list)
    #: The pytest-xdist worker that ran the case (None without xdist).
    worker: str | None = None

    @property
    def verdict(self) -> str:
        """The case verdict shown in the reports (:func:`verdict_of` with the strictest level)."""
        return verdict_of(self.outcome, self.level, self.expected_failure, self.message)

    def verdict_for(self, level: str | None) -> str:
        """The verdict of this case against one requirement of the given level."""
        return verdict_of(self.outcome, level, self.expected_failure, self.message)


def _exchange_to_json(ex: Exchange) -> dict[str, Any]:
    data = asdict(ex)
    try:
        data["body"] = ex.body.decode("utf-8")
    except UnicodeDecodeError:
        data["body"] = None
        data["body_base64"] = base64.b64encode(ex.body).decode("ascii")
    return data


def _exchange_from_json(data: dict[str, Any]) -> Exchange:
    body_text = data.pop("body", None)
    body_b64 = data.pop("body_base64", None)
    body = base64.b64decode(body_b64) if body_b64 is not None else (body_text or "").encode("utf-8")
    return Exchange(body=body, **data)


def results_to_json(results: Iterable[CaseResult],
                    requirements: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    cases = []
    for r in results:
        item = asdict(r)
        item["verdict"] = r.verdict
        item["wire"] = [_exchange_to_json(e) for e in r.wire]
        cases.append(item)
    data: dict[str, Any] = {"format": "wm-harness-results/1", "cases": cases}
    if requirements:
        data["requirements"] = {k: dict(v) for k, v in requirements.items()}
    return data


_CASE_FIELDS = frozenset(f.name for f in fields(CaseResult))


def results_from_json(data: dict[str, Any]) -> list[CaseResult]:
    if not isinstance(data, dict) or data.get("format") != "wm-harness-results/1":
        raise ValueError("not a wm-harness results file (format wm-harness-results/1 expected)")
    out = []
    for item in data["cases"]:
        item = {k: v for k, v in dict(item).items() if k in _CASE_FIELDS}
        item["wire"] = [_exchange_from_json(dict(e)) for e in item.get("wire", [])]
        out.append(CaseResult(**item))
    return out


def merge_results(shards: Iterable[Sequence[CaseResult]]) -> list[CaseResult]:
    """One result list from several runs (xdist workers, CI fan-out jobs).

    A case (target, node id) reported by more than one shard keeps the worst verdict, so a
    re-run in another shard cannot hide a failure.
    """
    rank = {v: i for i, v in enumerate(VERDICTS)}
    merged: dict[tuple[str, str], CaseResult] = {}
    for shard in shards:
        for case in shard:
            key = (case.target, case.nodeid)
            seen = merged.get(key)
            if seen is None or rank.get(case.verdict, 99) < rank.get(seen.verdict, 99):
                merged[key] = case
    return sorted(merged.values(), key=lambda c: (c.target, c.nodeid))


def write_results_json(results: Sequence[CaseResult], path: Path,
                       requirements: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """``results.json``; ``requirements`` (id -> level/text/specs) makes the file self-contained."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_to_json(results, requirements), indent=1), encoding="utf-8")


def read_results_json(path: Path) -> list[CaseResult]:
    return results_from_json(json.loads(path.read_text(encoding="utf-8")))
