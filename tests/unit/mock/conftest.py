from __future__ import annotations

import pytest

from harness.cim.mof import default_store
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import WSManService


@pytest.fixture
def service() -> WSManService:
    return WSManService(default_store(), MockConfig(password="pw"))
