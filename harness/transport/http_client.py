"""HTTP(S) transport for WS-Man clients: one POST per envelope, tapped, with timeouts.

MS-WSMV 2.1: WS-Man messages travel as HTTP POST bodies of type ``application/soap+xml``; the
service answers faults with HTTP 500 (observed Windows behaviour, where SOAP 1.2's HTTP binding
would allow 400 for sender faults) and authentication failures with 401.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

import aiohttp

from harness.transport.tap import Tap

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"


class TransportError(Exception):
    """The target could not be reached, timed out, or answered outside WS-Man (with the reason)."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpTransport:
    """POSTs envelopes to one endpoint. Every request and response goes through the tap."""

    def __init__(self, url: str, *, username: str | None, password: str | None, tap: Tap,
                 timeout: float = 30.0, max_response_bytes: int = 64 * 1024 * 1024) -> None:
        self.url = url
        self._auth: str | None = None
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
            self._auth = f"Basic {token}"
        self._tap = tap
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self._max_response = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        tap.add_secret(password)

    async def __aenter__(self) -> HttpTransport:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, body: bytes, *, authenticated: bool = True,
                   extra_headers: dict[str, str] | None = None) -> HttpReply:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Content-Type": SOAP_CONTENT_TYPE, **(extra_headers or {})}
        sent_headers = dict(headers)
        if authenticated and self._auth is not None:
            headers["Authorization"] = self._auth
        self._tap.record(protocol="wsman", direction="request", peer=self.url, headers=sent_headers, body=body)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                data = await resp.content.read(self._max_response + 1)
                if len(data) > self._max_response:
                    raise TransportError(f"response larger than {self._max_response} bytes")
                reply = HttpReply(resp.status, dict(resp.headers), data)
        except TimeoutError as exc:
            raise TransportError(f"no answer from {self.url} within {self._timeout.total} s") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"HTTP exchange with {self.url} failed: {exc}") from exc
        except asyncio.CancelledError:
            raise
        self._tap.record(protocol="wsman", direction="response", peer=self.url, headers=reply.headers,
                         body=reply.body, status=reply.status)
        return reply
