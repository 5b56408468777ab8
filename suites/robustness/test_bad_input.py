"""Bad input sent to a target: every malformed request gets a SOAP fault (or a refusal), never a crash,
and the target keeps answering afterwards (MS-WMOD 2.10.3, 2.7; MS-WSMV 3.1.4.1; SOAP 1.2 part 1 5.4)."""

from __future__ import annotations

import pytest

from harness.client.resources import wmi_uri
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import build_envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

pytestmark = [pytest.mark.requires("wsman", "identify")]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
BOMB = (b'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>'
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>&e;&e;&e;</s:Body>'
        b"</s:Envelope>")


async def _fault_for(wsman, body: bytes) -> WSManFault:
    reply = await wsman.send_raw(body)
    assert reply.status in (400, 500), f"HTTP {reply.status} for a malformed request"
    try:
        env = parse_envelope(reply.body)
    except WSManDecodeError as exc:
        pytest.fail(f"the answer to a malformed request is not a SOAP envelope: {exc.reason}")
    assert is_fault(env), "the answer to a malformed request must be a SOAP fault"
    return parse_fault(env)


async def _still_answers(wsman) -> None:
    info = await wsman.identify()
    assert info.protocol_version, "the target stopped answering after bad input"


@pytest.mark.spec("MS-WMOD 2.10.3", "SOAP12 5.4")
async def test_text_that_is_not_xml_gets_a_sender_fault(wsman):
    fault = await _fault_for(wsman, b"GET / HTTP/1.0 this is not a SOAP envelope")
    assert fault.code == "s:Sender"
    await _still_answers(wsman)


@pytest.mark.spec("MS-WMOD 2.10.3", "MS-WMOD 2.9")
async def test_entity_expansion_bomb_is_refused_and_the_target_survives(wsman):
    fault = await _fault_for(wsman, BOMB)
    assert fault.code == "s:Sender"
    await _still_answers(wsman)


@pytest.mark.spec("SOAP12 5.4.7", "MS-WSMV 3.1.4.1")
async def test_soap_11_envelope_is_a_version_mismatch(wsman):
    soap11 = (b'<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/">'
              b"<e:Header/><e:Body/></e:Envelope>")
    reply = await wsman.send_raw(soap11)
    assert reply.status in (400, 500)
    # Windows answers a SOAP 1.1 envelope with a SOAP 1.2 VersionMismatch fault (SOAP 1.2 part 1 5.4.7).
    fault = parse_fault(parse_envelope(reply.body))
    assert fault.code == "s:VersionMismatch", fault
    await _still_answers(wsman)


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 5.4")
async def test_unknown_action_is_action_not_supported(wsman):
    header = wsman.header("http://wm-harness.invalid/NoSuchAction", wmi_uri("Win32_Service"), {"Name": "WinRM"})
    fault = await _fault_for(wsman, build_envelope(header))
    assert fault.subcode_name == "ActionNotSupported", fault
    await _still_answers(wsman)


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 5.4")
async def test_truncated_envelope_gets_a_fault(wsman):
    whole = msg.build_get_request(wsman.header(Action.GET, wmi_uri("Win32_Service"), {"Name": "WinRM"}))
    fault = await _fault_for(wsman, whole[: len(whole) // 2])
    assert fault.code == "s:Sender"
    await _still_answers(wsman)


@pytest.mark.spec("DSP0226 6.2", "MS-WSMV 2.2.4.x")
async def test_max_envelope_size_below_the_minimum_is_an_encoding_limit(wsman):
    header = Header(action=Action.GET, to=wsman.target.url,
                    resource_uri=wmi_uri("Win32_Service"), selectors={"Name": "WinRM"}, max_envelope_size=1024)
    fault = await _fault_for(wsman, msg.build_get_request(header))
    assert fault.subcode_name == "EncodingLimit", fault
    await _still_answers(wsman)


@pytest.mark.spec("MS-WMOD 2.10.3", "DSP0226 6.2")
async def test_oversized_request_is_refused_and_the_target_survives(wsman):
    padding = "x" * (2 * 1024 * 1024)
    body = (f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP12}"><s:Header/><s:Body><p>{padding}</p></s:Body>'
            f"</s:Envelope>").encode()
    reply = await wsman.send_raw(body)
    assert reply.status in (400, 413, 500), f"HTTP {reply.status} for a 2 MiB request"
    if reply.status == 500:
        assert b"EncodingLimit" in reply.body or b"Fault" in reply.body
    await _still_answers(wsman)
