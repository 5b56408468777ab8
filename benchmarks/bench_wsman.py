"""SOAP build / parse / validate throughput of harness.wire.wsman and harness.validate, against a
plain lxml baseline doing the equivalent work in the same run (ratios, not absolute times).

* build:    an Enumerate request with a WQL filter (MS-WSMV 3.1.4.8) - ours: Header + EnumerateRequest
            through build_enumerate_request; peer: the same envelope assembled with lxml SubElements;
* parse:    a PullResponse with 20 Win32_Service instances (DSP0226 8.4) - ours: parse_envelope
            (hardened) + parse_pull_response + element_to_properties per item; peer: lxml.fromstring
            + a dict of child texts per item;
* validate: the same PullResponse - ours: WSManValidator.validate(bytes) (libxml2 over our whole
            schema set, lax open content); peer: lxml XMLSchema over the SOAP envelope schema;
* client:   what WSManClient.exchange does with a response when it validates - ours, one parse:
            parse_envelope + validate_tree of the envelope's tree; ours, two parses (the design
            before the tree API): validate(bytes) + parse_envelope; peer: a plain lxml parse;
* cold:     import harness.validate + default_validator() + the first validate, in a fresh
            interpreter (milliseconds), and whether xmlschema got imported.

Run: python benchmarks/bench_wsman.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from harness.cim.mof import default_store
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.validate import default_validator
from harness.wire.wsman import messages as msg
from harness.wire.wsman.cimxml import element_to_properties
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import (
    ANONYMOUS,
    FILTER_WQL,
    NS_ADDRESSING,
    NS_ENUMERATION,
    NS_SOAP,
    NS_WSMAN,
    Action,
)

SERVICE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
WQL = "SELECT * FROM Win32_Service WHERE State = 'Running'"


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def ours_build() -> bytes:
    header = Header(action=Action.ENUMERATE, resource_uri=SERVICE, max_envelope_size=512000,
                    operation_timeout=60.0, locale="en-US")
    return msg.build_enumerate_request(header, msg.EnumerateRequest(filter_dialect=FILTER_WQL, filter_text=WQL))


def lxml_build() -> bytes:
    nsmap = {"s": NS_SOAP, "a": NS_ADDRESSING, "w": NS_WSMAN, "n": NS_ENUMERATION}
    env = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap=nsmap)
    head = etree.SubElement(env, f"{{{NS_SOAP}}}Header")
    etree.SubElement(head, f"{{{NS_ADDRESSING}}}To").text = "http://localhost:5985/wsman"
    etree.SubElement(head, f"{{{NS_WSMAN}}}ResourceURI", {f"{{{NS_SOAP}}}mustUnderstand": "true"}).text = SERVICE
    reply = etree.SubElement(head, f"{{{NS_ADDRESSING}}}ReplyTo")
    etree.SubElement(reply, f"{{{NS_ADDRESSING}}}Address").text = ANONYMOUS
    etree.SubElement(head, f"{{{NS_ADDRESSING}}}Action").text = Action.ENUMERATE
    etree.SubElement(head, f"{{{NS_WSMAN}}}MaxEnvelopeSize").text = "512000"
    etree.SubElement(head, f"{{{NS_ADDRESSING}}}MessageID").text = "uuid:00000000-0000-0000-0000-000000000000"
    etree.SubElement(head, f"{{{NS_WSMAN}}}Locale", xmlLang="en-US")
    etree.SubElement(head, f"{{{NS_WSMAN}}}OperationTimeout").text = "PT60.000S"
    body = etree.SubElement(env, f"{{{NS_SOAP}}}Body")
    enum = etree.SubElement(body, f"{{{NS_ENUMERATION}}}Enumerate")
    etree.SubElement(enum, f"{{{NS_WSMAN}}}Filter", Dialect=FILTER_WQL).text = WQL
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def pull_response() -> bytes:
    """A real PullResponse of the mock: Enumerate, then Pull 20 Win32_Service instances."""
    service = WSManService(default_store(), MockConfig(password="bench"))
    who = Principal("bench")
    _, enum = service.handle(msg.build_enumerate_request(Header(action=Action.ENUMERATE, resource_uri=SERVICE),
                                                         msg.EnumerateRequest()), who)
    context = msg.parse_enumerate_response(parse_envelope(enum)).context
    assert context is not None
    _, pull = service.handle(msg.build_pull_request(Header(action=Action.PULL, resource_uri=SERVICE),
                                                    msg.PullRequest(context, 20)), who)
    return pull


_XML_NS_XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:language"/>
  <xs:attribute name="space" type="xs:NCName"/>
  <xs:attribute name="base" type="xs:anyURI"/>
  <xs:attribute name="id" type="xs:ID"/>
</xs:schema>"""


def _lxml_envelope_schema(envelope_xsd: Path) -> etree.XMLSchema:
    """libxml2 needs the xml: namespace declared before the envelope schema refers to xml:lang."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "xml.xsd").write_bytes(_XML_NS_XSD)
        wrapper = Path(tmp) / "wrapper.xsd"
        wrapper.write_text(
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
            '<xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="xml.xsd"/>'
            f'<xs:import namespace="{NS_SOAP}" schemaLocation="{envelope_xsd.resolve().as_uri()}"/>'
            "</xs:schema>", encoding="utf-8")
        return etree.XMLSchema(etree.parse(str(wrapper)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure")
    args = parser.parse_args()
    data = pull_response()
    items = len(msg.parse_pull_response(parse_envelope(data)).items)
    hardened = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

    def ours_parse() -> object:
        page = msg.parse_pull_response(parse_envelope(data))
        return [element_to_properties(i) for i in page.items]

    def lxml_parse() -> object:
        root = etree.fromstring(data, hardened)
        found = root.find(f"{{{NS_SOAP}}}Body/{{{NS_ENUMERATION}}}PullResponse/{{{NS_ENUMERATION}}}Items")
        assert found is not None
        return [{etree.QName(p).localname: p.text for p in item} for item in found]

    validator = default_validator()
    assert validator.validate(data) == [], "the mock's PullResponse must be schema-valid"
    from harness.validate.schema import schemas_dir

    peer_validate: Callable[[], object] | None
    try:
        lxml_schema = _lxml_envelope_schema(Path(schemas_dir()) / "soap-envelope.xsd")

        def peer_validate() -> object:  # parse + validate, as ours does
            return lxml_schema.validate(etree.fromstring(data, hardened))

        peer_note = "lxml XMLSchema (libxml2), SOAP 1.2 envelope schema with lax body content"
    except etree.LxmlError as exc:  # pragma: no cover - depends on the schema set
        peer_validate, peer_note = None, f"lxml cannot compile the schema set: {exc}"

    print(f"PullResponse: {len(data)} bytes, {items} Win32_Service items; {args.seconds:.1f} s per figure")
    print(f"{'operation':<10} {'ours/s':>10} {'lxml/s':>10} {'ours/lxml':>10}")
    rows: list[tuple[str, Callable[[], object], Callable[[], object] | None]] = [
        ("build", ours_build, lxml_build),
        ("parse", ours_parse, lxml_parse),
        ("validate", lambda: validator.validate(data), peer_validate),
    ]
    for label, ours, peer in rows:
        a = rate(ours, args.seconds)
        b = rate(peer, args.seconds) if peer is not None else float("nan")
        print(f"{label:<10} {a:>10.0f} {b:>10.0f} {a / b:>10.2f}")
    print(f"validate peer: {peer_note}")

    def client_one_parse() -> object:
        env = parse_envelope(data)
        validator.assert_valid_tree(env.body.getroottree().getroot(), "response", data)
        return env

    def client_two_parses() -> object:
        validator.assert_valid(data, "response")
        return parse_envelope(data)

    def plain_parse() -> object:
        return etree.fromstring(data, hardened)

    base = rate(plain_parse, args.seconds)
    print(f"\nclient path (parse + validate a response); peer: plain lxml parse {base:.0f}/s")
    print(f"{'variant':<32} {'ours/s':>10} {'lxml/ours':>10}")
    for label, fn in (("one parse (validate_tree)", client_one_parse), ("two parses (bytes API)", client_two_parses)):
        a = rate(fn, args.seconds)
        print(f"{label:<32} {a:>10.0f} {base / a:>10.2f}")
    print(cold_start(data))


_COLD = """import sys, time
t0 = time.perf_counter()
from harness.validate import default_validator
t1 = time.perf_counter()
v = default_validator()
t2 = time.perf_counter()
assert v.validate(open(sys.argv[1], "rb").read()) == []
t3 = time.perf_counter()
print(f"cold: import {(t1 - t0) * 1e3:.0f} ms, construct {(t2 - t1) * 1e3:.0f} ms, first validate "
      f"{(t3 - t2) * 1e3:.1f} ms, total {(t3 - t0) * 1e3:.0f} ms; xmlschema imported: {'xmlschema' in sys.modules}")
"""


def cold_start(data: bytes, runs: int = 3) -> str:
    """The fastest of ``runs`` fresh interpreters: import + construct + first validate."""
    best = ""
    best_total = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "pull.xml"
        sample.write_bytes(data)
        for _ in range(runs):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _COLD, str(sample)], capture_output=True, text=True,
                                 timeout=120, check=True).stdout.strip()
            total = time.perf_counter() - start
            if total < best_total:
                best, best_total = out, total
    return best


if __name__ == "__main__":
    main()
