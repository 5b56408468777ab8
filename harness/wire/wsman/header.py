"""WS-Management SOAP headers: dataclasses, writer and reader (DSP0226 5 and 6, MS-WSMV 2.2.4.x).

The reader is a single pass over the children of ``s:Header``; each known header is dispatched by
its qualified name. Headers marked ``s:mustUnderstand="true"`` that this codec does not know are
returned so a server can answer ``s:MustUnderstand`` (SOAP 1.2 part 1 5.2.3, DSP0226 R5.1-x).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import uuid4

from lxml import etree

from ._xml import text as _text
from .duration import format_duration, parse_duration
from .errors import WSManDecodeError
from .ns import ANONYMOUS, NS_ADDRESSING, NS_SOAP, NS_WSMAN, NS_WSMAN_MS, NS_XML, NS_XSI, qn

_Element = etree._Element

_MU = qn(NS_SOAP, "mustUnderstand")
_LANG = qn(NS_XML, "lang")
_NIL = qn(NS_XSI, "nil")
#: nesting limit for EPRs inside selectors (observed Windows behaviour: ERROR_WSMAN_EPR_NESTING_EXCEEDED)
MAX_EPR_DEPTH = 8

A_TO = qn(NS_ADDRESSING, "To")
A_ACTION = qn(NS_ADDRESSING, "Action")
A_MESSAGE_ID = qn(NS_ADDRESSING, "MessageID")
A_RELATES_TO = qn(NS_ADDRESSING, "RelatesTo")
A_REPLY_TO = qn(NS_ADDRESSING, "ReplyTo")
A_FAULT_TO = qn(NS_ADDRESSING, "FaultTo")
A_ADDRESS = qn(NS_ADDRESSING, "Address")
A_REFERENCE_PARAMETERS = qn(NS_ADDRESSING, "ReferenceParameters")
A_REFERENCE_PROPERTIES = qn(NS_ADDRESSING, "ReferenceProperties")
A_EPR = qn(NS_ADDRESSING, "EndpointReference")
W_RESOURCE_URI = qn(NS_WSMAN, "ResourceURI")
W_SELECTOR_SET = qn(NS_WSMAN, "SelectorSet")
W_SELECTOR = qn(NS_WSMAN, "Selector")
W_OPTION_SET = qn(NS_WSMAN, "OptionSet")
W_OPTION = qn(NS_WSMAN, "Option")
W_MAX_ENVELOPE_SIZE = qn(NS_WSMAN, "MaxEnvelopeSize")
W_OPERATION_TIMEOUT = qn(NS_WSMAN, "OperationTimeout")
W_LOCALE = qn(NS_WSMAN, "Locale")
W_FRAGMENT_TRANSFER = qn(NS_WSMAN, "FragmentTransfer")
W_REQUEST_TOTAL = qn(NS_WSMAN, "RequestTotalItemsCountEstimate")
W_TOTAL = qn(NS_WSMAN, "TotalItemsCountEstimate")
P_DATA_LOCALE = qn(NS_WSMAN_MS, "DataLocale")
P_SESSION_ID = qn(NS_WSMAN_MS, "SessionId")
P_OPERATION_ID = qn(NS_WSMAN_MS, "OperationID")
P_SEQUENCE_ID = qn(NS_WSMAN_MS, "SequenceId")
#: Other spellings read as the same headers (written: OperationID, SequenceId, as in the MS-WSMV
#: 4.11 examples and observed Windows behaviour): the SequenceIDType schema of MS-WSMV 2.2.4.46
#: names the element "SequenceID"; the streaming examples of 3.2.4.2.2 write "OperationId".
P_SEQUENCE_ID_SCHEMA = qn(NS_WSMAN_MS, "SequenceID")
P_OPERATION_ID_ALT = qn(NS_WSMAN_MS, "OperationId")
#: xs:unsignedLong (MS-WSMV 2.2.4.46: SequenceID is an unsigned 64-bit integer).
MAX_SEQUENCE_ID = 2**64 - 1


def _new_message_id() -> str:
    return "uuid:" + str(uuid4()).upper()


def _default_must_understand() -> set[str]:
    # What the Windows WinRM client marks (observed Windows behaviour; DSP0226 R6.2-x for MaxEnvelopeSize).
    return {"Action", "ResourceURI", "ReplyTo", "MaxEnvelopeSize", "OptionSet"}


@dataclass
class EndpointReference:
    """WS-Addressing EPR as WS-Management uses it: Address + ReferenceParameters/ResourceURI +
    SelectorSet (DSP0226 5.1, 7.6; DSP0227 8 for references)."""

    address: str = ANONYMOUS
    resource_uri: str = ""
    selectors: dict[str, str | EndpointReference] = field(default_factory=dict)


@dataclass
class Option:
    """wsman:Option inside wsman:OptionSet (DSP0226 6.4): Name, optional Type, MustComply."""

    name: str
    value: str | None
    type: str | None = None
    must_comply: bool = False


@dataclass
class Header:
    """Every WS-Management header the MS-WSMV dialect uses (DSP0226 5-6, MS-WSMV 2.2.4.x).

    ``must_understand`` holds the local names of headers written with ``s:mustUnderstand="true"``
    (``"ReplyTo"`` marks the ReplyTo/Address element). ``options_must_comply`` is the
    ``s:mustUnderstand`` flag of the OptionSet header (DSP0226 6.4: the service must honour the set);
    it is kept in step with ``"OptionSet" in must_understand``. ``action`` is ``""`` when the message
    has no Action header (Identify, DSP0226 11).
    """

    action: str
    to: str = "http://localhost:5985/wsman"
    resource_uri: str | None = None
    message_id: str = field(default_factory=_new_message_id)
    relates_to: str | None = None
    reply_to: str | None = ANONYMOUS
    fault_to: str | None = None
    selectors: dict[str, str | EndpointReference] = field(default_factory=dict)
    options: list[Option] = field(default_factory=list)
    options_must_comply: bool = False
    max_envelope_size: int | None = None
    operation_timeout: float | None = None
    locale: str | None = None
    data_locale: str | None = None
    session_id: str | None = None
    operation_id: str | None = None
    sequence_id: int | None = None
    fragment_transfer: str | None = None
    request_total_items_count_estimate: bool = False
    total_items_count_estimate: int | None = None
    must_understand: set[str] = field(default_factory=_default_must_understand)


# ------------------------------------------------------------------------------------- writing
def _sub(parent: _Element, tag: str, text: str | None = None, mu: bool | None = None) -> _Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    if mu is not None:
        el.set(_MU, "true" if mu else "false")
    return el


def write_selector_set(parent: _Element, selectors: dict[str, str | EndpointReference]) -> _Element:
    """Append ``wsman:SelectorSet`` (DSP0226 7.2); a value may be a nested EPR (DSP0226 7.2 R7.2-x)."""
    sset = etree.SubElement(parent, W_SELECTOR_SET)
    for name, value in selectors.items():
        sel = etree.SubElement(sset, W_SELECTOR, Name=name)
        if isinstance(value, EndpointReference):
            write_epr(etree.SubElement(sel, A_EPR), value)
        else:
            sel.text = value
    return sset


def write_epr(target: _Element, epr: EndpointReference) -> _Element:
    """Fill ``target`` (an EPR-typed element) with Address and ReferenceParameters (DSP0226 5.1).

    An EPR with neither ResourceURI nor selectors (a NotifyTo or EndTo sink address, MS-WSMV 4.4)
    gets no ReferenceParameters rather than an empty wsman:ResourceURI."""
    _sub(target, A_ADDRESS, epr.address)
    if not epr.resource_uri and not epr.selectors:
        return target
    params = etree.SubElement(target, A_REFERENCE_PARAMETERS)
    _sub(params, W_RESOURCE_URI, epr.resource_uri)
    if epr.selectors:
        write_selector_set(params, epr.selectors)
    return target


def write_header(parent: _Element, h: Header) -> None:
    """Append every header of ``h`` to ``s:Header``."""
    mu = h.must_understand
    if h.to:
        _sub(parent, A_TO, h.to, True if "To" in mu else None)
    if h.resource_uri is not None:
        _sub(parent, W_RESOURCE_URI, h.resource_uri, True if "ResourceURI" in mu else None)
    if h.reply_to is not None:
        rt = etree.SubElement(parent, A_REPLY_TO)
        _sub(rt, A_ADDRESS, h.reply_to, True if "ReplyTo" in mu else None)
    if h.fault_to is not None:
        ft = etree.SubElement(parent, A_FAULT_TO)
        _sub(ft, A_ADDRESS, h.fault_to)
    if h.action:
        _sub(parent, A_ACTION, h.action, True if "Action" in mu else None)
    if h.max_envelope_size is not None:
        _sub(parent, W_MAX_ENVELOPE_SIZE, str(h.max_envelope_size), True if "MaxEnvelopeSize" in mu else None)
    _sub(parent, A_MESSAGE_ID, h.message_id)
    if h.relates_to is not None:
        _sub(parent, A_RELATES_TO, h.relates_to)
    if h.locale is not None:
        loc = _sub(parent, W_LOCALE, None, "Locale" in mu)
        loc.set(_LANG, h.locale)
    if h.data_locale is not None:
        dl = _sub(parent, P_DATA_LOCALE, None, "DataLocale" in mu)
        dl.set(_LANG, h.data_locale)
    if h.session_id is not None:
        _sub(parent, P_SESSION_ID, h.session_id, "SessionId" in mu)
    if h.operation_id is not None:
        _sub(parent, P_OPERATION_ID, h.operation_id, "OperationID" in mu)
    if h.sequence_id is not None:
        _sub(parent, P_SEQUENCE_ID, str(h.sequence_id), "SequenceId" in mu)
    if h.selectors:
        sset = write_selector_set(parent, h.selectors)
        if "SelectorSet" in mu:
            sset.set(_MU, "true")
    if h.options or h.options_must_comply:
        oset = etree.SubElement(parent, W_OPTION_SET)
        if h.options_must_comply or ("OptionSet" in mu and h.options):
            oset.set(_MU, "true")
        for opt in h.options:
            o = etree.SubElement(oset, W_OPTION, Name=opt.name)
            if opt.type is not None:
                o.set("Type", opt.type)
            if opt.must_comply:
                o.set("MustComply", "true")
            if opt.value is None:
                o.set(_NIL, "true")
            else:
                o.text = opt.value
    if h.operation_timeout is not None:
        _sub(parent, W_OPERATION_TIMEOUT, format_duration(h.operation_timeout),
             True if "OperationTimeout" in mu else None)
    if h.fragment_transfer is not None:
        _sub(parent, W_FRAGMENT_TRANSFER, h.fragment_transfer, True)
    if h.request_total_items_count_estimate:
        _sub(parent, W_REQUEST_TOTAL, None, True if "RequestTotalItemsCountEstimate" in mu else None)
    if h.total_items_count_estimate is not None:
        _sub(parent, W_TOTAL, str(h.total_items_count_estimate))


# ------------------------------------------------------------------------------------- reading
def _is_true(value: str | None) -> bool:
    return value is not None and value.strip() in ("true", "1")


def _uint(el: _Element, what: str, fault: str = "SchemaValidationError") -> int:
    t = _text(el)
    if not t.isdigit() or len(t) > 19:
        raise WSManDecodeError(f"{what} must be a non-negative integer, got {t[:40]!r}", fault=fault)
    return int(t)


def read_epr(el: _Element, depth: int = 0) -> EndpointReference:
    """Read an EPR-typed element (Address + ReferenceParameters, DSP0226 5.1)."""
    if depth > MAX_EPR_DEPTH:
        raise WSManDecodeError("endpoint references nested too deeply", fault="InvalidSelectors")
    epr = EndpointReference(address="", resource_uri="", selectors={})
    for child in el:
        tag = child.tag
        if tag == A_ADDRESS:
            epr.address = _text(child)
        elif tag in (A_REFERENCE_PARAMETERS, A_REFERENCE_PROPERTIES):
            for ref in child:
                if ref.tag == W_RESOURCE_URI:
                    epr.resource_uri = _text(ref)
                elif ref.tag == W_SELECTOR_SET:
                    epr.selectors = read_selector_set(ref, depth + 1)
    return epr


def read_selector_set(el: _Element, depth: int = 0) -> dict[str, str | EndpointReference]:
    """Read ``wsman:SelectorSet`` (DSP0226 7.2). Duplicate or unnamed selectors are malformed."""
    out: dict[str, str | EndpointReference] = {}
    for sel in el:
        if sel.tag != W_SELECTOR:
            if isinstance(sel.tag, str):
                raise WSManDecodeError(f"unexpected element {sel.tag} in SelectorSet", fault="InvalidSelectors")
            continue
        name = sel.get("Name")
        if not name:
            raise WSManDecodeError("Selector without Name attribute", fault="InvalidSelectors")
        if name in out:
            raise WSManDecodeError(f"duplicate selector {name!r}", fault="InvalidSelectors")
        nested = sel.find(A_EPR)
        out[name] = read_epr(nested, depth + 1) if nested is not None else (sel.text or "")
    return out


def _read_options(el: _Element) -> list[Option]:
    opts: list[Option] = []
    for o in el:
        if o.tag != W_OPTION:
            continue
        name = o.get("Name")
        if not name:
            raise WSManDecodeError("Option without Name attribute", fault="InvalidOptions")
        value = None if _is_true(o.get(_NIL)) else (o.text or "")
        opts.append(Option(name, value, o.get("Type"), _is_true(o.get("MustComply"))))
    return opts


def _set_to(h: Header, el: _Element) -> None:
    h.to = _text(el)


def _set_action(h: Header, el: _Element) -> None:
    h.action = _text(el)


def _set_message_id(h: Header, el: _Element) -> None:
    h.message_id = _text(el)


def _set_relates_to(h: Header, el: _Element) -> None:
    h.relates_to = _text(el)


def _address_of(el: _Element, what: str) -> tuple[str, bool]:
    addr = el.find(A_ADDRESS)
    if addr is None:
        raise WSManDecodeError(f"{what} without Address", fault="InvalidMessageInformationHeader")
    return _text(addr), _is_true(addr.get(_MU))


def _set_reply_to(h: Header, el: _Element) -> None:
    h.reply_to, mu = _address_of(el, "ReplyTo")
    if mu:
        h.must_understand.add("ReplyTo")


def _set_fault_to(h: Header, el: _Element) -> None:
    h.fault_to, _ = _address_of(el, "FaultTo")


def _set_resource_uri(h: Header, el: _Element) -> None:
    h.resource_uri = _text(el)


def _set_selectors(h: Header, el: _Element) -> None:
    h.selectors = read_selector_set(el)


def _set_options(h: Header, el: _Element) -> None:
    h.options = _read_options(el)
    h.options_must_comply = _is_true(el.get(_MU))


def _set_max_env(h: Header, el: _Element) -> None:
    h.max_envelope_size = _uint(el, "MaxEnvelopeSize")


def _set_timeout(h: Header, el: _Element) -> None:
    h.operation_timeout = parse_duration(_text(el))


def _set_locale(h: Header, el: _Element) -> None:
    h.locale = el.get(_LANG) or ""


def _set_data_locale(h: Header, el: _Element) -> None:
    h.data_locale = el.get(_LANG) or ""


def _set_session_id(h: Header, el: _Element) -> None:
    h.session_id = _text(el)


def _set_operation_id(h: Header, el: _Element) -> None:
    h.operation_id = _text(el)


def _set_sequence_id(h: Header, el: _Element) -> None:
    t = _text(el)
    # MS-WSMV 2.2.4.46: an unsigned 64-bit integer (up to 20 digits).
    if not t.isdigit() or len(t) > 20 or int(t) > MAX_SEQUENCE_ID:
        raise WSManDecodeError(f"SequenceId must be an xs:unsignedLong, got {t[:40]!r}",
                               fault="SchemaValidationError")
    h.sequence_id = int(t)


def _set_fragment(h: Header, el: _Element) -> None:
    h.fragment_transfer = _text(el)


def _set_request_total(h: Header, el: _Element) -> None:
    h.request_total_items_count_estimate = True


def _set_total(h: Header, el: _Element) -> None:
    h.total_items_count_estimate = None if _is_true(el.get(_NIL)) else _uint(el, "TotalItemsCountEstimate")


_HANDLERS: dict[str, tuple[str, Callable[[Header, _Element], None]]] = {
    A_TO: ("To", _set_to),
    A_ACTION: ("Action", _set_action),
    A_MESSAGE_ID: ("MessageID", _set_message_id),
    A_RELATES_TO: ("RelatesTo", _set_relates_to),
    A_REPLY_TO: ("ReplyTo", _set_reply_to),
    A_FAULT_TO: ("FaultTo", _set_fault_to),
    W_RESOURCE_URI: ("ResourceURI", _set_resource_uri),
    W_SELECTOR_SET: ("SelectorSet", _set_selectors),
    W_OPTION_SET: ("OptionSet", _set_options),
    W_MAX_ENVELOPE_SIZE: ("MaxEnvelopeSize", _set_max_env),
    W_OPERATION_TIMEOUT: ("OperationTimeout", _set_timeout),
    W_LOCALE: ("Locale", _set_locale),
    W_FRAGMENT_TRANSFER: ("FragmentTransfer", _set_fragment),
    W_REQUEST_TOTAL: ("RequestTotalItemsCountEstimate", _set_request_total),
    W_TOTAL: ("TotalItemsCountEstimate", _set_total),
    P_DATA_LOCALE: ("DataLocale", _set_data_locale),
    P_SESSION_ID: ("SessionId", _set_session_id),
    P_OPERATION_ID: ("OperationID", _set_operation_id),
    P_SEQUENCE_ID: ("SequenceId", _set_sequence_id),
    P_SEQUENCE_ID_SCHEMA: ("SequenceId", _set_sequence_id),
    P_OPERATION_ID_ALT: ("OperationID", _set_operation_id),
}

#: Clark names of every header this codec understands (for s:MustUnderstand processing).
KNOWN_HEADERS: frozenset[str] = frozenset(_HANDLERS)


def read_header(children: Iterable[_Element],
                understood: frozenset[str] = frozenset()) -> tuple[Header, list[str], list[_Element]]:
    """Read ``s:Header`` children. Returns the Header, the Clark names of unknown headers marked
    mustUnderstand (SOAP 1.2 part 1 5.2.3), and the unknown header elements (kept for upper layers,
    e.g. WinRS or p:ActivityId). ``understood`` lets a caller declare extra header names it processes.
    """
    h = Header(action="", to="", message_id="", reply_to=None, must_understand=set())
    unknown_mu: list[str] = []
    extra: list[_Element] = []
    seen: set[str] = set()
    for child in children:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions
        handler = _HANDLERS.get(tag)
        mu_attr = child.get(_MU)
        if handler is None:
            extra.append(child)
            if mu_attr is not None and _is_true(mu_attr) and tag not in understood:
                unknown_mu.append(tag)
            continue
        name, fn = handler
        if name in seen:  # by name: two spellings of one header are a duplicate too
            raise WSManDecodeError(f"duplicate {name} header", fault="InvalidMessageInformationHeader")
        seen.add(name)
        fn(h, child)
        if mu_attr is not None and _is_true(mu_attr):
            h.must_understand.add(name)
    if "OptionSet" in h.must_understand:
        h.options_must_comply = True
    return h, unknown_mu, extra
