"""Shared helpers of the capture tests."""

from __future__ import annotations

from harness.transport.tap import Exchange


def exchange(direction: str, body: bytes, *, test_id: str = "t::case", status: int | None = None,
             headers: dict[str, str] | None = None, ts: float = 1_700_000_000.0,
             peer: str = "http://127.0.0.1:5985/wsman") -> Exchange:
    return Exchange(test_id=test_id, protocol="wsman", direction="request" if direction == "request" else "response",
                    peer=peer, timestamp=ts, headers=headers or {"Content-Type": "application/soap+xml;charset=UTF-8"},
                    body=body, status=status)
