"""SOAP 1.2 envelope writer and hardened reader for WS-Management (DSP0226 5, MS-WSMV 2.2.2).

The reader refuses DTDs (XML bombs, XXE), never resolves entities, never touches the network,
keeps lxml's tree limits (``huge_tree=False``) and checks the size first. Every failure is a
:class:`WSManDecodeError` with a clear reason and the name of the fault a server should answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from harness.wire.xmlsafe import HardenedParser, parse_hardened

from .errors import WSManDecodeError
from .header import Header, read_header, write_header
from .ns import NS_SOAP, NS_SOAP11, NSMAP, qn

_Element = etree._Element

S_ENVELOPE = qn(NS_SOAP, "Envelope")
S_HEADER = qn(NS_SOAP, "Header")
S_BODY = qn(NS_SOAP, "Body")

#: Size limit applied when the caller gives none (Windows MaxEnvelopeSizekb default is 500 KB;
#: observed Windows behaviour: requests larger than the configured limit are refused).
DEFAULT_MAX_SIZE = 4 * 1024 * 1024


@dataclass
class Envelope:
    """A decoded envelope. ``body`` is the ``s:Body`` element.

    ``unknown_must_understand`` lists (Clark notation) the headers marked mustUnderstand that the
    codec does not process (SOAP 1.2 part 1 5.2.3); ``extra_headers`` keeps every unknown header.
    """

    header: Header
    body: _Element
    unknown_must_understand: list[str] = field(default_factory=list)
    extra_headers: list[_Element] = field(default_factory=list)

    @property
    def payload(self) -> _Element | None:
        """First element child of the Body, or None for an empty body."""
        for child in self.body:
            if isinstance(child.tag, str):
                return child
        return None


_PARSER = HardenedParser(keep_comments=True)


def build_envelope(header: Header | None, body_children: Sequence[_Element] = (), *,
                   extra_headers: Sequence[_Element] = ()) -> bytes:
    """Serialize a SOAP 1.2 envelope (UTF-8, XML declaration). ``header=None`` writes an empty
    ``s:Header`` (Identify, DSP0226 11). ``extra_headers`` (e.g. e:Identifier, w:Bookmark) follow
    the WS-Man headers. The body and extra header elements are moved into the new tree."""
    root = etree.Element(S_ENVELOPE, nsmap=NSMAP)
    hdr = etree.SubElement(root, S_HEADER)
    if header is not None:
        write_header(hdr, header)
    for extra in extra_headers:
        hdr.append(extra)
    body = etree.SubElement(root, S_BODY)
    for child in body_children:
        body.append(child)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def parse_xml(data: bytes, *, max_size: int | None = None) -> _Element:
    """Parse bytes into an element with the hardened parser (no DTD, no entities, no network)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WSManDecodeError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    limit = DEFAULT_MAX_SIZE if max_size is None else max_size
    if len(raw) > limit:
        raise WSManDecodeError(f"message of {len(raw)} bytes exceeds the limit of {limit} bytes",
                               fault="EncodingLimit")
    if not raw.strip():
        raise WSManDecodeError("empty message")
    return parse_hardened(raw, _PARSER, WSManDecodeError)


def parse_envelope(data: bytes, *, max_size: int | None = None,
                   understood_headers: frozenset[str] = frozenset()) -> Envelope:
    """Decode a SOAP 1.2 WS-Man envelope (DSP0226 5; SOAP 1.2 part 1 5).

    SOAP 1.1 (or any other envelope namespace) raises ``WSManDecodeError(fault="VersionMismatch")``
    (SOAP 1.2 part 1 5.4.7). ``understood_headers`` names extra header QNames the caller processes,
    so they are not reported as unknown mustUnderstand headers.
    """
    root = parse_xml(data, max_size=max_size)
    tag = root.tag
    if tag != S_ENVELOPE:
        if not isinstance(tag, str):
            raise WSManDecodeError("root is not an element")
        q = etree.QName(root)
        if q.localname == "Envelope":
            if q.namespace == NS_SOAP11:
                raise WSManDecodeError("SOAP 1.1 envelope; only SOAP 1.2 is supported", fault="VersionMismatch")
            raise WSManDecodeError(f"unknown envelope namespace {q.namespace!r}", fault="VersionMismatch")
        raise WSManDecodeError(f"root element is {tag!r}, expected s:Envelope")
    header_el: _Element | None = None
    body_el: _Element | None = None
    for child in root:
        ctag = child.tag
        if not isinstance(ctag, str):
            continue
        if ctag == S_HEADER and header_el is None and body_el is None:
            header_el = child
        elif ctag == S_BODY and body_el is None:
            body_el = child
        else:
            raise WSManDecodeError(f"unexpected element {ctag!r} in s:Envelope")
    if header_el is None:
        raise WSManDecodeError("missing s:Header", fault="MessageInformationHeaderRequired")
    if body_el is None:
        raise WSManDecodeError("missing s:Body")
    header, unknown, extra = read_header(header_el, understood_headers)
    return Envelope(header=header, body=body_el, unknown_must_understand=unknown, extra_headers=extra)
