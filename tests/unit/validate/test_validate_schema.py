"""The validator loads our XSDs once and can fail (hand-made invalid messages are rejected)."""

from __future__ import annotations

import pytest

from harness.validate import SchemaViolation, WSManValidator, default_validator
from harness.wire.wsman import messages as m
from harness.wire.wsman.envelope import build_envelope
from harness.wire.wsman.header import Header

ENV = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
       'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
       'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
       'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault">{h}{b}</s:Envelope>')


def env(header: str = "<s:Header/>", body: str = "<s:Body/>") -> bytes:
    return ENV.format(h=header, b=body).encode()


def test_default_validator_is_cached() -> None:
    assert default_validator() is default_validator()
    assert isinstance(default_validator(), WSManValidator)


def test_valid_minimal_envelope() -> None:
    assert default_validator().validate(env()) == []


@pytest.mark.parametrize("data", [
    env(body=""),  # missing Body
    env(header="<s:Header><w:MaxEnvelopeSize>0</w:MaxEnvelopeSize></s:Header>"),
    env(header="<s:Header><w:MaxEnvelopeSize s:mustUnderstand='maybe'>5</w:MaxEnvelopeSize></s:Header>"),
    env(header="<s:Header><w:OperationTimeout>sixty</w:OperationTimeout></s:Header>"),
    env(header="<s:Header><w:SelectorSet><w:Selector>x</w:Selector></w:SelectorSet></s:Header>"),
    env(header="<s:Header><w:Locale/></s:Header>"),
    env(header="<s:Header><a:ReplyTo/></s:Header>"),
    env(body="<s:Body><n:Pull><n:MaxElements>3</n:MaxElements></n:Pull></s:Body>"),
    env(body="<s:Body><n:Release/></s:Body>"),
    env(body="<s:Body><n:Enumerate><w:EnumerationMode>All</w:EnumerationMode></n:Enumerate></s:Body>"),
    env(body="<s:Body><s:Fault><s:Code><s:Value>s:Oops</s:Value></s:Code>"
             "<s:Reason><s:Text xml:lang='en'>x</s:Text></s:Reason></s:Fault></s:Body>"),
    env(body="<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code></s:Fault></s:Body>"),
    env(body="<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang='en'>x"
             "</s:Text></s:Reason><s:Detail><f:WSManFault Code='-1'/></s:Detail></s:Fault></s:Body>"),
    b"<not-xml",
])
def test_invalid_messages_are_rejected(data: bytes) -> None:
    errors = default_validator().validate(data)
    assert errors, data
    assert all(isinstance(e, str) for e in errors)


def test_assert_valid_raises_with_kind() -> None:
    v = default_validator()
    bad = build_envelope(Header(action="urn:act", max_envelope_size=1)).replace(b">1<", b">0<")
    with pytest.raises(SchemaViolation) as ei:
        v.assert_valid(bad, "request")
    assert ei.value.message_kind == "request urn:act"
    assert ei.value.errors and ei.value.xml == bad
    v.assert_valid(m.build_release_response("uuid:x"), "response")
