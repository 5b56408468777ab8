"""A request sent while another is unanswered (a waiting Pull) is synthesised on its own connection,
so the capture stays valid HTTP/1.1 and every response pairs with its request."""

from __future__ import annotations

from harness.capture.synth import group_conversations
from harness.transport.tap import Exchange


def _ex(direction: str, ts: float, header: str) -> Exchange:
    body = f"<s:Envelope><s:Header>{header}</s:Header><s:Body/></s:Envelope>".encode()
    return Exchange(test_id="t", protocol="wsman", direction=direction,  # type: ignore[arg-type]
                    peer="http://127.0.0.1:5985/wsman", timestamp=ts, headers={}, body=body,
                    status=200 if direction == "response" else None)


def test_overlapping_requests_get_separate_connections_and_pair_by_relates_to():
    pull = _ex("request", 1.0, "<a:MessageID>uuid:PULL</a:MessageID>")
    create = _ex("request", 1.1, "<a:MessageID>uuid:CREATE</a:MessageID>")
    create_ok = _ex("response", 1.2, "<a:RelatesTo>uuid:CREATE</a:RelatesTo>")
    pull_ok = _ex("response", 1.3, "<a:RelatesTo>uuid:PULL</a:RelatesTo>")
    later = _ex("request", 1.4, "<a:MessageID>uuid:NEXT</a:MessageID>")
    conns = group_conversations([pull, create, create_ok, pull_ok, later])
    assert conns == [[pull, pull_ok, later], [create, create_ok]]


def test_sequential_exchanges_share_one_connection():
    a = _ex("request", 1, "<a:MessageID>uuid:A</a:MessageID>")
    a_ok = _ex("response", 2, "<a:RelatesTo>uuid:A</a:RelatesTo>")
    b = _ex("request", 3, "<a:MessageID>uuid:B</a:MessageID>")
    b_ok = _ex("response", 4, "<a:RelatesTo>uuid:B</a:RelatesTo>")
    assert group_conversations([a, a_ok, b, b_ok]) == [[a, a_ok, b, b_ok]]
