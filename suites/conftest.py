"""Shared helpers for the conformance suites (run unchanged against the mock and real targets)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique_name() -> str:
    """A name no earlier run left behind on the target (suites clean up, but runs can be killed)."""
    return "WMH_" + uuid.uuid4().hex[:12].upper()
