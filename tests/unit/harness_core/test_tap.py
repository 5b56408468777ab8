from __future__ import annotations

import base64

from harness.transport.tap import REDACTED, Tap, redact_body, redact_headers


def test_authorization_headers_keep_the_scheme_but_lose_the_secret():
    token = base64.b64encode(b"wmh:hunter2").decode()
    clean = redact_headers({"Authorization": f"Basic {token}", "Content-Type": "application/soap+xml"})
    assert clean["Authorization"] == f"Basic {REDACTED}"
    assert clean["Content-Type"] == "application/soap+xml"
    assert token not in str(clean)


def test_known_secrets_are_removed_from_bodies_in_utf8_and_utf16():
    body = b"<a>hunter2</a>" + "hunter2".encode("utf-16-le")
    out = redact_body(body, ["hunter2"])
    assert b"hunter2" not in out and "hunter2".encode("utf-16-le") not in out


def test_password_elements_are_blanked():
    out = redact_body(b"<p:Password>s3cret</p:Password><x>keep</x>")
    assert b"s3cret" not in out and b"<x>keep</x>" in out


def test_tap_records_per_test_and_redacts_before_storing():
    tap = Tap()
    tap.add_secret("pw1")
    tap.record(protocol="wsman", direction="request", peer="h", headers={}, body=b"xx pw1 xx", test_id="t1")
    tap.record(protocol="wsman", direction="response", peer="h", headers={}, body=b"ok", test_id="t2")
    assert [e.body for e in tap.for_test("t1")] == [f"xx {REDACTED} xx".encode()]
    assert len(tap.for_test("t2")) == 1


def test_tap_is_bounded():
    tap = Tap(max_exchanges=100)
    for i in range(250):
        tap.record(protocol="wsman", direction="request", peer="h", headers={}, body=b"%d" % i, test_id="t")
    assert len(tap.exchanges) <= 100
    assert tap.exchanges[-1].body == b"249"
