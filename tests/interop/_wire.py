"""Helpers shared by the interop tests: what the third-party clients put on the wire, and our
XSD validator run over it (the validator is ours, the messages are theirs)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.validate import default_validator

WMI_CIMV2 = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"


@dataclass(frozen=True)
class MockServer:
    """Where the ``wmh serve`` subprocess listens and how to log on to it."""

    host: str
    port: int
    username: str
    password: str
    log_file: Path

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/wsman"


#: pypsrp logs every message it sends and receives at DEBUG on this logger (its public logging
#: interface): "Sending message on attempt N: <xml>" and "Received message: <xml>".
PYPSRP_LOGGER = "pypsrp.wsman"
_SENT = "Sending message on attempt "
_RECEIVED = "Received message: "


@dataclass(frozen=True)
class WireMessage:
    direction: str  # "request" | "response"
    body: bytes


def capture_pypsrp(caplog: pytest.LogCaptureFixture) -> None:
    """Start recording pypsrp's traffic through its DEBUG log."""
    caplog.set_level(logging.DEBUG, logger=PYPSRP_LOGGER)


def pypsrp_messages(caplog: pytest.LogCaptureFixture) -> list[WireMessage]:
    """The envelopes pypsrp sent and received so far in this test, in order."""
    out: list[WireMessage] = []
    for record in caplog.records:
        if record.name != PYPSRP_LOGGER:
            continue
        text = record.getMessage()
        if text.startswith(_SENT):
            out.append(WireMessage("request", text.split(": ", 1)[1].encode("utf-8")))
        elif text.startswith(_RECEIVED) and text[len(_RECEIVED):].strip():
            out.append(WireMessage("response", text[len(_RECEIVED):].encode("utf-8")))
    return out


def assert_valid(messages: list[WireMessage]) -> None:
    """Every message validates against the project's WS-Man schemas."""
    assert messages, "no traffic was captured"
    validator = default_validator()
    problems = []
    for m in messages:
        errors = validator.validate(m.body)
        if errors:
            problems.append(f"{m.direction}: {errors[:3]}\n{m.body[:1500]!r}")
    assert not problems, "\n\n".join(problems)
