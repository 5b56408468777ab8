"""Fixtures of the security suites: the mock's listener policy, restored after every test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from harness.auth.policy import AuthPolicy


@pytest.fixture
def listener_policy(wm_mock_config: Any) -> Iterator[AuthPolicy]:
    """The mock listener's AuthPolicy (AllowBasic, AllowNegotiate, AllowUnencrypted, CbtHardeningLevel;
    MS-WMOD 4.1 <1>), to change in place; real targets skip (their policy is the administrator's)."""
    policy: AuthPolicy = wm_mock_config.auth
    saved = dataclasses.replace(policy)
    try:
        yield policy
    finally:
        for f in dataclasses.fields(AuthPolicy):
            setattr(policy, f.name, getattr(saved, f.name))


@pytest.fixture
def read_only_user(wm_mock_config: Any, unique_name: str) -> Iterator[tuple[str, str]]:
    """A local user with read access only (MS-WMOD 2.9.3), added to the mock for one test."""
    import secrets

    password = "Ro-" + secrets.token_urlsafe(12)
    wm_mock_config.read_only_users[unique_name] = password
    try:
        yield unique_name, password
    finally:
        wm_mock_config.read_only_users.pop(unique_name, None)
