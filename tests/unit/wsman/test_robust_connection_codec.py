"""Robust-connection codec (MS-WSMV 2.2.4.44 - 2.2.4.46, 3.1.4.1.39, 3.1.4.18, 3.2.2, 3.2.4.2.1)."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree

from harness.validate import default_validator
from harness.wire.wsman import messages as msg
from harness.wire.wsman import robust as rc
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import NS_SOAP, NS_WSMAN_MS, RESOURCE_FULL_DUPLEX, RESOURCE_ROBUST_CONNECTION, Action

GUID = "CEB310A6-FB0B-441D-83E6-8B0C416192CF"   # the OperationID of the MS-WSMV 4.11.1 example
URI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"

#: The request of MS-WSMV 4.11.1 (headers as in the example; selectors trimmed to the example's one).
EXAMPLE_REQUEST = f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
 xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header>
<a:To>http://localhost:5985/wsman</a:To>
<w:ResourceURI s:mustUnderstand="true">{URI}</w:ResourceURI>
<a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
<a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>
<w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize>
<a:MessageID>uuid:5BEBF248-219C-4771-963D-0833C321BB5E</a:MessageID>
<p:OperationID s:mustUnderstand="false">uuid:{GUID}</p:OperationID>
<p:SequenceId s:mustUnderstand="false">1</p:SequenceId>
<w:SelectorSet><w:Selector Name="Name">Spooler</w:Selector></w:SelectorSet>
<w:OperationTimeout>PT60.000S</w:OperationTimeout>
</s:Header><s:Body></s:Body></s:Envelope>""".encode()


def test_the_4_11_request_headers_are_read_and_validate():
    env = parse_envelope(EXAMPLE_REQUEST)
    assert env.header.operation_id == f"uuid:{GUID}" and env.header.sequence_id == 1
    assert not rc.is_retransmission(env.header), "mustUnderstand false: a new operation"
    assert rc.parse_operation_id(env.header.operation_id) == uuid.UUID(GUID)
    assert default_validator().validate(EXAMPLE_REQUEST) == []
    again = parse_envelope(rc.mark_retransmission(EXAMPLE_REQUEST))
    assert rc.is_retransmission(again.header)
    assert again.header.message_id == env.header.message_id and again.header.selectors == env.header.selectors


@pytest.mark.parametrize("value", [GUID, f"uuid:{GUID}", f"UUID:{GUID.lower()}", f"  uuid:{GUID}  "])
def test_operation_ids_with_and_without_the_uuid_prefix_are_one_guid(value):
    assert rc.parse_operation_id(value) == uuid.UUID(GUID)


@pytest.mark.parametrize("value", ["", "uuid:", "not-a-guid", GUID[:-1], "{" + GUID + "}", GUID.replace("-", ""),
                                   "urn:uuid:" + GUID])
def test_a_malformed_operation_id_is_invalid_message_information_header(value):
    with pytest.raises(WSManDecodeError) as info:
        rc.parse_operation_id(value)
    assert info.value.fault == "InvalidMessageInformationHeader"


def test_schema_spellings_are_read_as_the_same_headers_and_two_spellings_are_a_duplicate():
    text = EXAMPLE_REQUEST.replace(b"p:SequenceId", b"p:SequenceID").replace(b"p:OperationID", b"p:OperationId")
    env = parse_envelope(text)
    assert env.header.sequence_id == 1 and env.header.operation_id == f"uuid:{GUID}"
    assert default_validator().validate(text) == []
    both = EXAMPLE_REQUEST.replace(b"<p:SequenceId", b"<p:SequenceID>1</p:SequenceID><p:SequenceId")
    with pytest.raises(WSManDecodeError, match="duplicate SequenceId"):
        parse_envelope(both)


@pytest.mark.parametrize("value", [b"-1", b"x", b"18446744073709551616", b""])
def test_a_sequence_id_that_is_not_an_unsigned_long_is_refused(value):
    with pytest.raises(WSManDecodeError) as info:
        parse_envelope(EXAMPLE_REQUEST.replace(b">1</p:SequenceId>", b">" + value + b"</p:SequenceId>"))
    assert info.value.fault == "SchemaValidationError"
    assert parse_envelope(EXAMPLE_REQUEST.replace(b">1</p:SequenceId>", b">18446744073709551615</p:SequenceId>")
                          ).header.sequence_id == 2**64 - 1


def test_robust_header_writes_operation_id_and_sequence_id_and_keeps_the_rest():
    base = Header(action=Action.GET, resource_uri=URI, selectors={"Name": "Spooler"})
    h = rc.robust_header(base, f"uuid:{GUID}")
    assert base.operation_id is None, "the caller's header is not changed"
    body = msg.build_get_request(h)
    root = etree.fromstring(body)
    op = root.find(f"{{{NS_SOAP}}}Header/{{{NS_WSMAN_MS}}}OperationID")
    seq = root.find(f"{{{NS_SOAP}}}Header/{{{NS_WSMAN_MS}}}SequenceId")
    assert op is not None and op.text == f"uuid:{GUID}" and op.get(f"{{{NS_SOAP}}}mustUnderstand") == "false"
    assert seq is not None and seq.text == "1"
    assert default_validator().validate(body) == []
    resent = parse_envelope(msg.build_get_request(rc.robust_header(base, f"uuid:{GUID}", retransmission=True)))
    assert rc.is_retransmission(resent.header) and resent.header.sequence_id == 1
    with pytest.raises(ValueError):
        rc.robust_header(base, f"uuid:{GUID}", 0)


def test_stamp_adds_the_operation_headers_to_a_response_as_in_4_11():
    response = msg.build_get_response("uuid:5BEBF248-219C-4771-963D-0833C321BB5E",
                                      etree.Element("{urn:x}Thing"))
    stamped = rc.stamp(response, f"uuid:{GUID}", 2)
    env = parse_envelope(stamped)
    assert (env.header.operation_id, env.header.sequence_id) == (f"uuid:{GUID}", 2)
    assert env.header.action == Action.GET_RESPONSE and env.payload is not None
    restamped = parse_envelope(rc.stamp(stamped, f"uuid:{GUID}", 3))
    assert restamped.header.sequence_id == 3, "the old headers are replaced, not duplicated"
    assert parse_envelope(rc.unstamp(stamped)).header.operation_id is None
    assert rc.unstamp(response) == response


def test_acknowledge_round_trips_and_validates():
    data = rc.build_acknowledge(f"uuid:{GUID}", 7, to="http://host:5985/wsman", relates_to="uuid:1")
    assert default_validator().validate(data) == []
    env = parse_envelope(data)
    assert env.header.resource_uri == RESOURCE_ROBUST_CONNECTION and env.header.reply_to is None
    ack = rc.parse_acknowledge(env)
    assert (ack.operation_id, ack.last_sequence_id) == (f"uuid:{GUID}", 7)
    assert env.header.relates_to == "uuid:1"


@pytest.mark.parametrize(("old", "new", "fault"), [
    (b"<p:LastSequenceIdReceived>7</p:LastSequenceIdReceived>", b"", "SchemaValidationError"),
    (b">7<", b">seven<", "SchemaValidationError"),
    (b"</p:LastSequenceIdReceived>", b"</p:LastSequenceIdReceived><p:LastSequenceIdReceived>8"
                                     b"</p:LastSequenceIdReceived>", "SchemaValidationError"),
    (b"<p:Acknowledge>", b"<p:Acknowledge xmlns:p='urn:other'>", "InvalidBody"),
])
def test_a_malformed_acknowledge_is_refused_with_its_fault(old, new, fault):
    data = rc.build_acknowledge(f"uuid:{GUID}", 7)
    bad = data.replace(old, new)
    assert bad != data
    with pytest.raises(WSManDecodeError) as info:
        rc.parse_acknowledge(parse_envelope(bad))
    assert info.value.fault == fault


def test_an_acknowledge_without_operation_id_is_invalid_message_information_header():
    env = parse_envelope(rc.build_acknowledge(f"uuid:{GUID}", 1))
    env.header.operation_id = None
    with pytest.raises(WSManDecodeError) as info:
        rc.parse_acknowledge(env)
    assert info.value.fault == "InvalidMessageInformationHeader"


def test_keepalive_end_and_acknowledge_request_are_empty_messages():
    validator = default_validator()
    for builder, action, resource in ((rc.build_keepalive, Action.KEEPALIVE, RESOURCE_FULL_DUPLEX),
                                      (rc.build_end, Action.END, RESOURCE_FULL_DUPLEX),
                                      (rc.build_acknowledge_request, Action.ACKNOWLEDGE_REQUEST,
                                       RESOURCE_ROBUST_CONNECTION)):
        data = builder(f"uuid:{GUID}")
        assert validator.validate(data) == []
        env = parse_envelope(data)
        assert (env.header.action, env.header.resource_uri) == (action, resource)
        assert {"Action", "ResourceURI"} <= env.header.must_understand
        assert rc.parse_empty_message(env, frozenset({action})) == f"uuid:{GUID}"
    env = parse_envelope(rc.build_keepalive(f"uuid:{GUID}"))
    assert rc.is_keepalive(env)
    env.header.action = Action.KEEPALIVE_TABLE   # the other spelling of MS-WSMV 2.2.2.1
    assert rc.is_keepalive(env)
    with pytest.raises(WSManDecodeError) as info:
        rc.parse_empty_message(parse_envelope(rc.build_acknowledge(f"uuid:{GUID}", 1)),
                               frozenset({Action.ACKNOWLEDGE}))
    assert info.value.fault == "InvalidBody"


def test_split_envelopes_cuts_a_chunked_body_into_its_messages():
    ack = rc.build_acknowledge(f"uuid:{GUID}", 1)
    response = rc.stamp(msg.build_delete_response("uuid:2"), f"uuid:{GUID}", 1)
    assert rc.split_envelopes(response) == [response]
    assert rc.split_envelopes(ack + response) == [ack, response]
    assert rc.split_envelopes(ack + b"\r\n" + response + b"\n") == [ack, response]
    # envelopes without XML declaration and with another prefix (as Windows may write them)
    bare = [etree.tostring(etree.fromstring(m)) for m in (ack, response)]
    assert rc.split_envelopes(b"".join(bare)) == bare
    env12 = b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header/><env:Body/></env:Envelope>'
    assert rc.split_envelopes(env12 + env12) == [env12, env12]


def test_split_envelopes_does_not_cut_inside_a_message():
    # an end tag inside CDATA, and an envelope nested in a body, are not message boundaries
    tricky = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>'
              b'<x:Data xmlns:x="urn:x"><![CDATA[</s:Envelope>]]></x:Data>'
              b'<s:Envelope><s:Header/><s:Body/></s:Envelope></s:Body></s:Envelope>')
    ack = rc.build_acknowledge(f"uuid:{GUID}", 1)
    assert rc.split_envelopes(tricky + ack) == [tricky, ack]


@pytest.mark.parametrize("data", [b"", b"   ", b"<s:Envelope", b"junk", b"<a/>trailing"])
def test_split_envelopes_refuses_what_is_not_a_message_stream(data):
    with pytest.raises(WSManDecodeError):
        rc.split_envelopes(data)


def test_split_envelopes_is_bounded():
    env = b'<e:Envelope xmlns:e="urn:e"/>'.replace(b"/>", b"></e:Envelope>")
    assert len(rc.split_envelopes(env * 5, max_messages=5)) == 5
    with pytest.raises(WSManDecodeError, match="more than 5"):
        rc.split_envelopes(env * 6, max_messages=5)


def test_retry_wait_follows_the_request_retry_timer_of_3_2_2():
    high = lambda bound: bound   # noqa: E731  (the largest RetryWaitSeed the algorithm allows)
    zero = lambda bound: 0.0     # noqa: E731
    assert rc.retry_wait(1, 0.0, high) == 15.0, "first interval: 0 to 15 s"
    assert rc.retry_wait(2, 20.0, high) == 30.0, "second interval: 0 to 30 s"
    assert rc.retry_wait(3, 40.0, high) == 15.0, "cut to the forced retry point at 55 s"
    assert rc.retry_wait(4, 100.0, high) == 15.0, "forced retry point at 115 s"
    assert rc.retry_wait(5, 170.0, high) == 5.0, "forced retry point at 175 s"
    assert rc.retry_wait(6, 177.0, high) == 3.0, "never past RetryStartTime + 180 s"
    assert rc.retry_wait(6, 180.5, high) is None, "no retry after 180 s"
    assert rc.retry_wait(1, 0.0, zero) == rc.MIN_RETRY_WAIT, "0 s becomes 10 ms"
    assert rc.retry_wait(1, 0.0, lambda b: 99.0) == 15.0, "a draw is held to its bound"
    with pytest.raises(ValueError):
        rc.retry_wait(0, 0.0, high)
