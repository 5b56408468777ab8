"""Fixtures of the authentication tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _authkit import ADMIN_PASSWORD, READER_PASSWORD

from harness.auth.users import LocalUser, UserDatabase


@pytest.fixture
def users() -> Iterator[UserDatabase]:
    db = UserDatabase([LocalUser("wmh", ADMIN_PASSWORD), LocalUser("reader", READER_PASSWORD, read_only=True)],
                      machine="WMH-MOCK01")
    yield db
    db.close()
