"""The mock's HTTP listener: authentication, limits, and that it keeps answering (MS-WSMV 2.2.9.1)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import aiohttp
import pytest

from harness.targets.mock.config import MockConfig
from harness.targets.mock.runner import MockServerThread
from harness.wire.wsman import messages as msg

IDENTIFY = msg.build_identify_request()
SOAP = {"Content-Type": "application/soap+xml;charset=UTF-8"}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServerThread]:
    mock = MockServerThread(MockConfig(password="s3cret", max_request_bytes=64_000))
    mock.start()
    yield mock
    mock.stop()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as s, s.post(url, data=body, headers=headers) as r:
        return r.status, await r.read(), dict(r.headers)


async def test_missing_credentials_get_401_with_the_basic_challenge(server: MockServerThread):
    status, _, headers = await post(server.url, IDENTIFY, SOAP)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")


async def test_wrong_password_gets_401(server: MockServerThread):
    status, _, _ = await post(server.url, IDENTIFY, {**SOAP, **basic("wmh", "wrong")})
    assert status == 401


async def test_domain_qualified_user_is_accepted(server: MockServerThread):
    status, body, _ = await post(server.url, IDENTIFY, {**SOAP, **basic("WMH-MOCK01\\wmh", "s3cret")})
    assert status == 200 and b"IdentifyResponse" in body


async def test_unauthenticated_identify_only_answers_identify(server: MockServerThread):
    status, body, _ = await post(server.url, IDENTIFY, {**SOAP, "WSMANIDENTIFY": "unauthenticated"})
    assert status == 200 and b"ProtocolVersion" in body


async def test_wrong_content_type_is_refused(server: MockServerThread):
    status, _, _ = await post(server.url, IDENTIFY, {"Content-Type": "text/plain", **basic("wmh", "s3cret")})
    assert status == 415


async def test_oversized_request_is_an_encoding_limit_fault_and_the_server_survives(server: MockServerThread):
    big = b"<x>" + b"a" * 100_000 + b"</x>"
    status, body, _ = await post(server.url, big, {**SOAP, **basic("wmh", "s3cret")})
    assert status in (413, 500)
    if status == 500:
        assert b"EncodingLimit" in body
    status, _, _ = await post(server.url, IDENTIFY, {**SOAP, **basic("wmh", "s3cret")})
    assert status == 200


async def test_a_flood_of_concurrent_clients_is_served(server: MockServerThread):
    headers = {**SOAP, **basic("wmh", "s3cret")}
    results = await asyncio.gather(*(post(server.url, IDENTIFY, headers) for _ in range(100)))
    assert [r[0] for r in results] == [200] * 100


async def test_other_paths_are_404(server: MockServerThread):
    status, _, _ = await post(server.url.replace("/wsman", "/other"), IDENTIFY, SOAP)
    assert status == 404
