"""Transport taps: every byte a test sends or receives passes through a :class:`Tap`.

Recorded exchanges feed the per-test wire evidence in reports and the pcap writer.
Credentials are redacted *before* anything is stored (guide: credentials never appear in
logs, reports or captures), so nothing downstream can leak them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["request", "response"]

#: The test currently running; set by the pytest plugin, read when an exchange is recorded.
current_test: ContextVar[str | None] = ContextVar("wmh_current_test", default=None)

_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "www-authenticate", "cookie", "set-cookie"})
_PASSWORD_ELEMENT = re.compile(
    rb"(<(?:[A-Za-z0-9_]+:)?(?:Password|SecureString|SS)\b[^>]*>)(.*?)(</(?:[A-Za-z0-9_]+:)?(?:Password|SecureString|SS)>)",
    re.DOTALL,
)
REDACTED = "[REDACTED]"


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of ``headers`` with authentication material replaced.

    The scheme name is kept (``Basic``, ``Negotiate``...) because it is protocol evidence
    (MS-WSMV 2.2.9 names the schemes); the token or password never is.
    """
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _SENSITIVE_HEADERS:
            scheme = value.split(" ", 1)[0] if value else ""
            clean[name] = f"{scheme} {REDACTED}".strip()
        else:
            clean[name] = value
    return clean


def redact_body(body: bytes, secrets: Iterable[str] = ()) -> bytes:
    """Blank password-like elements and any known secret string in a message body."""
    out = _PASSWORD_ELEMENT.sub(lambda m: m.group(1) + REDACTED.encode() + m.group(3), body)
    for secret in secrets:
        if secret:
            for encoding in ("utf-8", "utf-16-le"):
                out = out.replace(secret.encode(encoding), REDACTED.encode(encoding))
    return out


@dataclass(frozen=True)
class Exchange:
    """One message on the wire, as seen by a tap."""

    test_id: str | None
    protocol: str
    direction: Direction
    peer: str
    timestamp: float
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    local: str = "127.0.0.1:0"


@dataclass
class Tap:
    """Thread-safe recorder of exchanges. One per process, shared by client and mock server."""

    secrets: set[str] = field(default_factory=set)
    exchanges: list[Exchange] = field(default_factory=list)
    max_exchanges: int = 200_000
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_secret(self, secret: str | None) -> None:
        if secret:
            with self._lock:
                self.secrets.add(secret)

    def record(
        self,
        *,
        protocol: str,
        direction: Direction,
        peer: str,
        headers: Mapping[str, str],
        body: bytes,
        status: int | None = None,
        local: str = "127.0.0.1:0",
        test_id: str | None = None,
    ) -> Exchange:
        with self._lock:
            secrets = tuple(self.secrets)
        exchange = Exchange(
            test_id=test_id if test_id is not None else current_test.get(),
            protocol=protocol,
            direction=direction,
            peer=peer,
            timestamp=time.time(),
            headers=redact_headers(headers),
            body=redact_body(body, secrets),
            status=status,
            local=local,
        )
        with self._lock:
            if len(self.exchanges) >= self.max_exchanges:
                del self.exchanges[: self.max_exchanges // 10]
            self.exchanges.append(exchange)
        return exchange

    def for_test(self, test_id: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.test_id == test_id]

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()


_default_tap = Tap()


def default_tap() -> Tap:
    """The process-wide tap used by the client and the plugin."""
    return _default_tap
