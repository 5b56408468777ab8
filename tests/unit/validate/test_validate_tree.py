"""The tree API of the validator (parse once, validate the codec's tree, leave it unchanged), the
type map read from the XSD files with lxml (no xmlschema on the hot path), the xmlschema fallback,
and the client path that uses them (WSManClient.exchange, MS-WSMV 3.1.4)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree

from harness.cim.mof import default_store
from harness.client.wsman import ProtocolViolation, WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.transport.http_client import HttpReply
from harness.validate import SchemaViolation, WSManValidator, default_validator
from harness.validate.schema import BUILTIN_TYPES, schema_index, schemas_dir
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope, parse_xml
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import NS_XSI, RESOURCE_WMI_PREFIX, Action

SERVICE = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"
XSI_TYPE = f"{{{NS_XSI}}}type"
XSI_NIL = f"{{{NS_XSI}}}nil"
XS = "{http://www.w3.org/2001/XMLSchema}"
#: n:Release without its n:EnumerationContext (WS-Enumeration 3.5): declared, so checked strictly.
INVALID_BODY = b'<s:Body><n:Release xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"/></s:Body>'


@pytest.fixture(scope="module")
def service() -> WSManService:
    return WSManService(default_store(), MockConfig(password="x"))


def _pull_response(service: WSManService, count: int = 5) -> bytes:
    """A PullResponse of the mock: Win32_Service instances with xsi:type (the class's own type,
    unknown to our schemas) and xsi:nil properties (DSP0230 9.1)."""
    who = Principal("x")
    _, enum = service.handle(msg.build_enumerate_request(Header(action=Action.ENUMERATE, resource_uri=SERVICE),
                                                         msg.EnumerateRequest()), who)
    context = msg.parse_enumerate_response(parse_envelope(enum)).context
    assert context is not None
    _, pull = service.handle(msg.build_pull_request(Header(action=Action.PULL, resource_uri=SERVICE),
                                                    msg.PullRequest(context, count)), who)
    return pull


def _items_response(*items: str) -> bytes:
    """A GetResponse-shaped envelope whose body holds hand-made open content."""
    base = msg.build_release_response("uuid:1")
    body = "".join(items).encode()
    return base.replace(b"<s:Body/>", b"<s:Body>" + body + b"</s:Body>")


def test_the_mock_response_needs_the_lax_handling(service: WSManService) -> None:
    data = _pull_response(service)
    root = parse_xml(data)
    assert root.xpath("//@xsi:type", namespaces={"xsi": NS_XSI}), "fixture: instances carry xsi:type"
    assert root.xpath("//@xsi:nil", namespaces={"xsi": NS_XSI}), "fixture: some properties are nil"
    schema = default_validator()._fast
    assert schema is not None and not schema.validate(parse_xml(data)), "libxml2 alone rejects xsi:type"


def test_validate_tree_agrees_with_validate_and_leaves_the_tree_unchanged(service: WSManService) -> None:
    v = default_validator()
    good = _pull_response(service)
    bad = good.replace(b"</n:PullResponse>", b"<n:Unexpected/></n:PullResponse>")
    for data in (good, bad, msg.build_release_response("uuid:x")):
        root = parse_xml(data)
        before = etree.tostring(root)
        attrs = [dict(el.attrib) for el in root.iter() if isinstance(el.tag, str)]
        assert v.validate_tree(root) == v.validate(data)
        assert etree.tostring(root) == before
        assert [dict(el.attrib) for el in root.iter() if isinstance(el.tag, str)] == attrs
    assert v.validate_tree(parse_xml(good)) == []
    errors = v.validate_tree(parse_xml(bad))
    assert len(errors) == 1 and "Unexpected" in errors[0] and " line " in errors[0]


def test_validate_tree_on_an_envelope_from_the_codec(service: WSManService) -> None:
    env = parse_envelope(_pull_response(service))
    root = env.body.getroottree().getroot()
    assert default_validator().validate_tree(root) == []
    page = msg.parse_pull_response(env)
    assert page.items and all(item.get(XSI_TYPE) == "p:Win32_Service_Type" for item in page.items)
    assert any(el.get(XSI_NIL) == "true" for item in page.items for el in item)


@pytest.mark.parametrize(("content", "valid"), [
    # a type our schemas do not define: ignored (the class is its own schema)
    ('<p:X xmlns:p="urn:x" xmlns:xsi="{xsi}" xsi:type="p:X_Type"><p:Y>1</p:Y></p:X>', True),
    # a built-in type: kept, so the content is checked against it
    ('<p:X xmlns:p="urn:x" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{xsi}" '
     'xsi:type="xs:int">12</p:X>', True),
    ('<p:X xmlns:p="urn:x" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{xsi}" '
     'xsi:type="xs:int">twelve</p:X>', False),
    # nil on an undeclared element: its type goes too (no content to check)
    ('<p:X xmlns:p="urn:x" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{xsi}" '
     'xsi:nil="true" xsi:type="xs:int"/>', True),
    # a type of our schemas, by an unprefixed name in the default namespace
    ('<X xmlns="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:xsi="{xsi}" '
     'xsi:type="cimUnsignedInt">-1</X>', False),
    # an unknown type on a declared element: ignored, the declaration applies
    ('<w:MaxEnvelopeSize xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:xsi="{xsi}" '
     'xsi:type="w:Nope">0</w:MaxEnvelopeSize>', False),
], ids=["unknown-type", "builtin-ok", "builtin-bad", "nil-drops-type", "schema-type-bad", "declared-unknown-type"])
def test_xsi_type_and_nil_handling(content: str, valid: bool) -> None:
    data = _items_response(content.replace("{xsi}", NS_XSI))
    v = default_validator()
    root = parse_xml(data)
    before = etree.tostring(root)
    errors = v.validate_tree(root)
    assert (errors == []) is valid, errors
    assert errors == v.validate(data)
    assert etree.tostring(root) == before


def test_the_type_map_read_with_lxml_matches_xmlschema() -> None:
    index = schema_index()
    reference = default_validator().schema  # xmlschema, built on demand for this comparison
    types = frozenset(str(k) for k in reference.maps.types)
    namespaces = frozenset(str(n) for n in reference.maps.namespaces if n)
    assert index.namespaces == namespaces
    assert {t for t in index.types if not t.startswith(XS)} == {t for t in types if not t.startswith(XS)}
    # xmlschema also lists the meta-schema's types (xs:element, ...); libxml2 resolves only built-ins
    assert types >= BUILTIN_TYPES
    assert {t for t in index.types if t.startswith(XS)} == BUILTIN_TYPES
    assert (schemas_dir() / "wsman-eventing.xsd").resolve() in index.files  # reached through xs:include
    assert "{http://schemas.xmlsoap.org/ws/2005/06/management}SelectorValue" in index.types


def test_validating_does_not_import_xmlschema(tmp_path: Any, service: WSManService) -> None:
    sample = tmp_path / "pull.xml"
    sample.write_bytes(_pull_response(service))
    code = ("import sys\nfrom harness.validate import default_validator\n"
            f"data = open({str(sample)!r}, 'rb').read()\n"
            "v = default_validator()\nassert v.libxml2\nassert v.validate(data) == []\n"
            "assert 'xmlschema' not in sys.modules, 'xmlschema was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> Iterator[WSManValidator]:
    """A validator whose libxml2 schema cannot be compiled: xmlschema validates."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise etree.XMLSchemaParseError("libxml2 refused the schema set (test)")

    monkeypatch.setattr(etree, "XMLSchema", refuse)
    v = WSManValidator()
    monkeypatch.undo()
    yield v


def test_the_xmlschema_fallback_gives_the_same_verdicts(fallback: WSManValidator, service: WSManService) -> None:
    assert not fallback.libxml2
    good = _pull_response(service)
    bad = good.replace(b"</n:PullResponse>", b"<n:Unexpected/></n:PullResponse>")
    root = parse_xml(good)
    before = etree.tostring(root)
    assert fallback.validate_tree(root) == [] and fallback.validate(good) == []
    assert etree.tostring(root) == before
    errors = fallback.validate(bad)
    assert errors and errors == fallback.validate_tree(parse_xml(bad))
    assert fallback.validate(b"<not-xml") == [fallback.validate(b"<not-xml")[0]]


def test_assert_valid_tree_names_the_message_and_keeps_the_bytes() -> None:
    v = default_validator()
    data = msg.build_release_response("uuid:x").replace(b"<s:Body/>", INVALID_BODY)
    root = parse_xml(data)
    with pytest.raises(SchemaViolation) as ei:
        v.assert_valid_tree(root, "response", data)
    assert ei.value.message_kind == f"response {Action.RELEASE_RESPONSE}"
    assert ei.value.xml is data and ei.value.errors == v.validate(data)
    with pytest.raises(SchemaViolation) as ei:
        v.assert_valid_tree(root, "response")
    assert parse_xml(ei.value.xml).tag == root.tag  # serialized from the tree
    v.assert_valid_tree(parse_xml(msg.build_release_response("uuid:x")), "response")


# ------------------------------------------------------------------------------ the client path
class _CountingValidator:
    """The default validator, counting which API the client uses."""

    def __init__(self) -> None:
        self.inner = default_validator()
        self.calls: list[str] = []

    def assert_valid(self, data: bytes, direction: str) -> None:
        self.calls.append(f"bytes {direction}")
        self.inner.assert_valid(data, direction)

    def assert_valid_tree(self, root: etree._Element, direction: str, data: bytes | None = None) -> None:
        self.calls.append(f"tree {direction}")
        self.inner.assert_valid_tree(root, direction, data)


class _Canned:
    def __init__(self, status: int, body: bytes) -> None:
        self.reply = HttpReply(status, {}, body)

    async def post(self, body: bytes, **kwargs: Any) -> HttpReply:
        return self.reply


def _client(status: int, body: bytes) -> tuple[WSManClient, _CountingValidator]:
    validator = _CountingValidator()
    client = WSManClient(Target(name="t", url="http://127.0.0.1:9/wsman"), validator=validator)
    client._transport = _Canned(status, body)  # type: ignore[assignment]
    return client, validator


def _request() -> bytes:
    return msg.build_pull_request(Header(action=Action.PULL, resource_uri=SERVICE), msg.PullRequest("uuid:c", 5))


async def test_the_client_parses_a_response_once_and_decodes_the_validated_tree(
        service: WSManService, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _pull_response(service)
    client, validator = _client(200, data)
    parses: list[int] = []
    real = parse_xml

    def counting(raw: bytes, **kwargs: Any) -> Any:
        parses.append(len(raw))
        return real(raw, **kwargs)

    monkeypatch.setattr("harness.validate.schema.parse_xml", counting)
    env = await client.exchange(_request())
    assert validator.calls == ["bytes request", "tree response"]
    assert parses == [len(client.last_request or b"")], "only the request is parsed by the validator"
    page = msg.parse_pull_response(env)
    assert [i.get(XSI_TYPE) for i in page.items] == ["p:Win32_Service_Type"] * len(page.items)
    assert etree.tostring(env.body.getroottree().getroot()) == etree.tostring(parse_xml(data))


async def test_the_client_reports_malformed_and_invalid_responses() -> None:
    client, _ = _client(200, b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>")
    with pytest.raises(ProtocolViolation, match=r"malformed response \(HTTP 200\): not well-formed XML"):
        await client.exchange(_request())
    client, _ = _client(200, b"")
    with pytest.raises(ProtocolViolation, match="malformed response"):
        await client.exchange(_request())
    # well-formed, not an envelope: the schema's account, as before
    client, _ = _client(200, b"<html><body>oops</body></html>")
    with pytest.raises(SchemaViolation) as ei:
        await client.exchange(_request())
    assert ei.value.message_kind == "response"
    invalid = msg.build_release_response("uuid:x").replace(b"<s:Body/>", INVALID_BODY)
    client, _ = _client(200, invalid)
    with pytest.raises(SchemaViolation) as ei:
        await client.exchange(_request())
    assert ei.value.message_kind == f"response {Action.RELEASE_RESPONSE}" and ei.value.xml == invalid
