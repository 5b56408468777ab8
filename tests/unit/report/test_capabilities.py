"""Capability profiles and detection (Identify, then read-only probes) against the built-in mock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.client.wsman import WSManClient
from harness.targets.capabilities import (
    PROFILES,
    CapabilityError,
    detect_capabilities_sync,
    probe_capabilities,
    profile,
    profile_for_identity,
)
from harness.targets.inventory import MOCK_CAPABILITIES, WINDOWS_CAPABILITIES, Target
from harness.targets.mock.runner import MockServerThread
from harness.transport.tap import Tap


@pytest.fixture(scope="module")
def mock_target() -> Iterator[Target]:
    mock = MockServerThread()
    url = mock.start()
    try:
        yield Target(name="probe", url=url, username=mock.config.username, password=mock.config.password,
                     timeout=10.0, detect_capabilities=True)
    finally:
        mock.stop()


def test_profiles_are_named_sets():
    assert profile("windows") == WINDOWS_CAPABILITIES
    assert profile("mock") == MOCK_CAPABILITIES
    assert "put" not in profile("read-only") and "get" in profile("read-only")
    assert {"identify", "get", "enumerate"} <= PROFILES["dmtf-wsman"]
    with pytest.raises(CapabilityError, match="known: dmtf-wsman"):
        profile("nope")


def test_identity_selects_the_windows_profile_only_for_microsoft():
    assert profile_for_identity("Microsoft Corporation") == "windows"
    assert profile_for_identity("Openwsman Project") is None
    assert profile_for_identity(None) is None


async def test_probes_find_what_the_mock_offers_without_writing(mock_target: Target):
    tap = Tap()
    async with WSManClient(mock_target, tap=tap) as client:
        caps, evidence = await probe_capabilities(client)
    assert {"get", "wsmv", "enumerate", "win32-service", "wql", "optimized-enumeration", "selector-filter",
            "cim-schema-uri", "win32-environment", "robust-connection"} <= caps
    assert set(evidence.values()) == {"ok"}
    actions = {ex.body.split(b"<a:Action", 1)[1][:200] for ex in tap.exchanges if ex.direction == "request"}
    assert not any(b"transfer/Put" in a or b"transfer/Create" in a or b"transfer/Delete" in a for a in actions)


async def test_probes_report_why_a_capability_is_missing():
    target = Target(name="nowhere", url="http://127.0.0.1:9/wsman", username="u", password="p", timeout=2.0)
    async with WSManClient(target, tap=Tap()) as client:
        caps, evidence = await probe_capabilities(client)
    assert caps == frozenset()
    assert all(v != "ok" for v in evidence.values()) and "WQL filter" in evidence


def test_detection_uses_identify_then_the_vendor_profile(mock_target: Target):
    detection = detect_capabilities_sync(mock_target, tap=Tap())
    assert detection.vendor and "Microsoft" in detection.vendor
    assert detection.profile == "windows" and detection.capabilities == WINDOWS_CAPABILITIES
    assert detection.probes == {"identify": "ok"}
