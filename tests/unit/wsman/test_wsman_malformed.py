"""Hardened parser: malformed input raises only WSManDecodeError (DSP0226 5; SOAP 1.2 part 1 5.4.7)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.wire.wsman.envelope import build_envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import Header

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "wsman"
VALID = build_envelope(Header(action="urn:a", resource_uri="urn:r", selectors={"N": "v"}, operation_timeout=5,
                              max_envelope_size=1000, locale="en-US"))

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>&lol3;</s:Body></s:Envelope>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>&xxe;</s:Body></s:Envelope>"""
XXE_UTF16 = XXE.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")
SOAP11 = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body/></s:Envelope>"""


@pytest.mark.parametrize(("data", "needle", "fault"), [
    (b"", "empty", "SchemaValidationError"),
    (b"\x00\xff\xfe garbage", "XML", "SchemaValidationError"),
    (VALID[: len(VALID) // 2], "not well-formed", "SchemaValidationError"),
    (BOMB, "DTD not allowed", "SchemaValidationError"),
    (XXE, "DTD not allowed", "SchemaValidationError"),
    (XXE_UTF16, "DTD not allowed", "SchemaValidationError"),
    (SOAP11, "SOAP 1.1", "VersionMismatch"),
    (b'<s:Envelope xmlns:s="urn:other"><s:Body/></s:Envelope>', "envelope namespace", "VersionMismatch"),
    (b"<root/>", "expected s:Envelope", "SchemaValidationError"),
    (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>', "missing s:Header",
     "MessageInformationHeaderRequired"),
    (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/></s:Envelope>', "missing s:Body",
     "SchemaValidationError"),
    (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/><x/></s:Envelope>',
     "unexpected element", "SchemaValidationError"),
    (VALID.replace(b"PT5.000S", b"five"), "xs:duration", "InvalidMessageInformationHeader"),
    (VALID.replace(b">1000<", b">-1<"), "MaxEnvelopeSize", "SchemaValidationError"),
    (VALID.replace(b'Name="N"', b""), "Selector without Name", "InvalidSelectors"),
])
def test_malformed_inputs(data: bytes, needle: str, fault: str) -> None:
    with pytest.raises(WSManDecodeError) as ei:
        parse_envelope(data)
    assert needle in ei.value.reason
    assert ei.value.fault == fault


def test_max_size_checked_first() -> None:
    with pytest.raises(WSManDecodeError) as ei:
        parse_envelope(VALID, max_size=10)
    assert ei.value.fault == "EncodingLimit"
    assert parse_envelope(VALID, max_size=len(VALID)).header.action == "urn:a"


def test_non_bytes_input() -> None:
    with pytest.raises(WSManDecodeError):
        parse_envelope("text")  # type: ignore[arg-type]


def test_deep_nesting_is_rejected() -> None:
    deep = b"<a>" * 5000 + b"</a>" * 5000
    data = VALID.replace(b"<s:Body/>", b"<s:Body>" + deep + b"</s:Body>")
    with pytest.raises(WSManDecodeError):
        parse_envelope(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(WSManDecodeError):
        parse_envelope(data)


SEEDS = [VALID] + [p.read_bytes() for p in sorted(GOLDEN.glob("*.xml"))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_envelopes_only_raise_decode_error(seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "delete":
            del buf[pos: pos + data.draw(st.integers(1, 20))]
        elif op == "insert":
            buf[pos:pos] = data.draw(st.sampled_from([b"<", b">", b"&", b"<!DOCTYPE x>", b"\x00", b"</s:Header>",
                                                      b's:mustUnderstand="true"', b"<w:Selector>", b"\xff"]))
        else:
            del buf[pos:]
    with contextlib.suppress(WSManDecodeError):
        parse_envelope(bytes(buf))
