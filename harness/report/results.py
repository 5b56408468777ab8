"""Per-case results and their JSON form: the input of every report."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.transport.tap import Exchange

Outcome = Literal["passed", "failed", "skipped", "error"]

#: A skip whose reason starts with this prefix means the target lacks a capability: the
#: matrix shows "not supported", never a pass (DESIGN: How a suite test reads).
NOT_SUPPORTED_PREFIX = "not supported:"


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

    @property
    def verdict(self) -> str:
        """PASS / FAIL / NOT-SUPPORTED / SKIPPED / ERROR as shown in the matrix."""
        if self.outcome == "passed":
            return "PASS"
        if self.outcome == "failed":
            return "FAIL"
        if self.outcome == "error":
            return "ERROR"
        if self.message and self.message.startswith(NOT_SUPPORTED_PREFIX):
            return "NOT-SUPPORTED"
        return "SKIPPED"


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


def results_to_json(results: Iterable[CaseResult]) -> dict[str, Any]:
    cases = []
    for r in results:
        item = asdict(r)
        item["verdict"] = r.verdict
        item["wire"] = [_exchange_to_json(e) for e in r.wire]
        cases.append(item)
    return {"format": "wm-harness-results/1", "cases": cases}


def results_from_json(data: dict[str, Any]) -> list[CaseResult]:
    if data.get("format") != "wm-harness-results/1":
        raise ValueError("not a wm-harness results file (format wm-harness-results/1 expected)")
    out = []
    for item in data["cases"]:
        item = dict(item)
        item.pop("verdict", None)
        item["wire"] = [_exchange_from_json(dict(e)) for e in item.get("wire", [])]
        out.append(CaseResult(**item))
    return out


def write_results_json(results: Sequence[CaseResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_to_json(results), indent=1), encoding="utf-8")


def read_results_json(path: Path) -> list[CaseResult]:
    return results_from_json(json.loads(path.read_text(encoding="utf-8")))
