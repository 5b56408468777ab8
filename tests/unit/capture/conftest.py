from __future__ import annotations

from pathlib import Path

import pytest

from harness.capture.reference import record_mock_exchanges
from harness.transport.tap import Exchange

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def mock_session() -> tuple[list[Exchange], str]:
    """A real session against our mock (Identify, 401, Get, Enumerate/Pull/Release, fault) and its password."""
    return record_mock_exchanges("tests/unit/capture::mock-session")
