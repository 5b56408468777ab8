"""Shared fixtures of the harness.cim tests."""

from __future__ import annotations

import pytest

from harness.cim import CimStore, default_store

NS = "root/cimv2"


@pytest.fixture(scope="session")
def ro_store() -> CimStore:
    """The fixture store, for tests that only read."""
    return default_store()


@pytest.fixture
def store() -> CimStore:
    """A private copy of the fixture store, for tests that write."""
    return default_store()
