"""Build and parse every WS-Management request and response of the MS-WSMV dialect.

Transfer (DSP0226 7; MS-WSMV 3.1.4.1-3.1.4.7), Enumeration (DSP0226 8; MS-WSMV 3.1.4.8-3.1.4.10),
custom actions (DSP0227 9; MS-WSMV 3.1.4.15) and Identify (DSP0226 11; MS-WSMV 3.1.4.16).

Request builders take the caller's :class:`Header` and set its Action; response builders take the
request's MessageID (``relates_to``) and write Action, MessageID, To=anonymous and RelatesTo like
Windows does (observed Windows behaviour). Parsers take a decoded :class:`Envelope`, check the
Action and body shape and raise :class:`WSManDecodeError` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from ._xml import children as _children
from ._xml import expect_action as _expect
from ._xml import payload as _payload
from ._xml import sub as _sub
from ._xml import text as _text
from ._xml import uint as _uint
from ._xml import with_action as _with_action
from .cimxml import element_to_properties, params_element
from .envelope import Envelope, build_envelope
from .errors import WSManDecodeError
from .header import (
    A_EPR,
    EndpointReference,
    Header,
    read_epr,
    read_selector_set,
    write_epr,
    write_selector_set,
)
from .ns import (
    ANONYMOUS,
    ENUM_MODE_EPR,
    ENUM_MODE_OBJECT_AND_EPR,
    FILTER_ASSOCIATION,
    FILTER_SELECTOR,
    NS_CIMBINDING,
    NS_ENUMERATION,
    NS_TRANSFER,
    NS_WSMAN,
    NS_WSMID,
    WSMAN_PROTOCOL_VERSION,
    Action,
    custom_action,
    qn,
)

_Element = etree._Element

# element names
N_ENUMERATE = qn(NS_ENUMERATION, "Enumerate")
N_ENUMERATE_RESPONSE = qn(NS_ENUMERATION, "EnumerateResponse")
N_PULL = qn(NS_ENUMERATION, "Pull")
N_PULL_RESPONSE = qn(NS_ENUMERATION, "PullResponse")
N_RELEASE = qn(NS_ENUMERATION, "Release")
N_CONTEXT = qn(NS_ENUMERATION, "EnumerationContext")
N_ITEMS = qn(NS_ENUMERATION, "Items")
N_END = qn(NS_ENUMERATION, "EndOfSequence")
N_EXPIRES = qn(NS_ENUMERATION, "Expires")
N_FILTER = qn(NS_ENUMERATION, "Filter")
N_MAX_TIME = qn(NS_ENUMERATION, "MaxTime")
N_MAX_ELEMENTS = qn(NS_ENUMERATION, "MaxElements")
N_MAX_CHARACTERS = qn(NS_ENUMERATION, "MaxCharacters")
W_FILTER = qn(NS_WSMAN, "Filter")
W_ENUM_MODE = qn(NS_WSMAN, "EnumerationMode")
W_OPTIMIZE = qn(NS_WSMAN, "OptimizeEnumeration")
W_MAX_ELEMENTS = qn(NS_WSMAN, "MaxElements")
W_ITEMS = qn(NS_WSMAN, "Items")
W_ITEM = qn(NS_WSMAN, "Item")
W_END = qn(NS_WSMAN, "EndOfSequence")
W_SELECTOR_SET = qn(NS_WSMAN, "SelectorSet")
X_RESOURCE_CREATED = qn(NS_TRANSFER, "ResourceCreated")
ID_IDENTIFY = qn(NS_WSMID, "Identify")
ID_IDENTIFY_RESPONSE = qn(NS_WSMID, "IdentifyResponse")
ID_PROTOCOL_VERSION = qn(NS_WSMID, "ProtocolVersion")
ID_PRODUCT_VENDOR = qn(NS_WSMID, "ProductVendor")
ID_PRODUCT_VERSION = qn(NS_WSMID, "ProductVersion")
ID_SECURITY_PROFILES = qn(NS_WSMID, "SecurityProfiles")
ID_SECURITY_PROFILE_NAME = qn(NS_WSMID, "SecurityProfileName")
B_OBJECT = qn(NS_CIMBINDING, "Object")

_ENUM_MODES = (ENUM_MODE_EPR, ENUM_MODE_OBJECT_AND_EPR)


# ================================================================================ dataclasses
@dataclass
class IdentifyRequest:
    """wsmid:Identify (DSP0226 11.2): empty body, no addressing headers."""


@dataclass
class IdentifyResponse:
    """wsmid:IdentifyResponse (DSP0226 11.3; MS-WSMV 3.1.4.16). Windows adds wsmid:SecurityProfiles
    (observed Windows behaviour)."""

    protocol_versions: list[str] = field(default_factory=lambda: [WSMAN_PROTOCOL_VERSION])
    product_vendor: str | None = "Microsoft Corporation"
    product_version: str | None = "OS: 10.0.20348 SP: 0.0 Stack: 3.0"
    security_profiles: list[str] | None = None


@dataclass
class TransferRequest:
    """Get or Delete request: everything is in the header (DSP0226 7.3, 7.5)."""

    header: Header


@dataclass
class InstanceMessage:
    """A message whose body carries one resource representation: Get response, Put request /
    response, Create request (DSP0226 7.3-7.5). ``item`` is None for an empty body."""

    header: Header
    item: _Element | None


@dataclass
class CreateResponse:
    """wxf:ResourceCreated EPR (DSP0226 7.4; MS-WSMV 3.1.4.5)."""

    epr: EndpointReference
    item: _Element | None = None


@dataclass
class AssociationFilter:
    """DSP0227 8.2 association filter: ``AssociatedInstances`` (associators) or
    ``AssociationInstances`` (references)."""

    kind: str  # "AssociatedInstances" | "AssociationInstances"
    object: EndpointReference
    association_class: str | None = None
    role: str | None = None
    result_class: str | None = None
    result_role: str | None = None
    include_result_property: list[str] = field(default_factory=list)


@dataclass
class EnumerateRequest:
    """wsen:Enumerate with the WS-Management extensions (DSP0226 8.2, 8.2.3, 8.7; DSP0227 8.2)."""

    filter_dialect: str | None = None
    filter_text: str | None = None
    selector_filter: dict[str, str | EndpointReference] | None = None
    enumeration_mode: str | None = None
    optimize: bool = False
    max_elements: int | None = None
    expires: str | None = None
    association_filter: AssociationFilter | None = None


@dataclass
class EnumerationItems:
    """Items of an EnumerateResponse (optimized, DSP0226 8.2.3) or PullResponse (DSP0226 8.4).

    Object mode: ``items`` holds the objects, ``epr_items`` is empty. EPR mode (DSP0226 8.7
    EnumerateEPR): ``items`` empty, ``epr_items`` the EPRs. Object-and-EPR mode: both lists run in
    parallel (``wsman:Item`` holding the object then its EPR; None when an item has no EPR).
    """

    items: list[_Element] = field(default_factory=list)
    epr_items: list[EndpointReference | None] = field(default_factory=list)
    context: str | None = None
    end_of_sequence: bool = False


@dataclass
class PullRequest:
    """wsen:Pull (DSP0226 8.3)."""

    context: str
    max_elements: int | None = None
    max_time: str | None = None
    max_characters: int | None = None


@dataclass
class ReleaseRequest:
    """wsen:Release (DSP0226 8.5)."""

    context: str


@dataclass
class InvokeRequest:
    """Custom action input ``<p:Method_INPUT>`` (DSP0227 9; MS-WSMV 3.1.4.15)."""

    method: str
    params: dict[str, Any]
    element: _Element | None = None


@dataclass
class InvokeResponse:
    """Custom action output ``<p:Method_OUTPUT>`` with ReturnValue (DSP0227 9)."""

    method: str
    return_value: Any
    out_params: dict[str, Any]
    element: _Element | None = None


# ================================================================================ helpers
def _el(tag: str, text: str | None = None, nsmap: dict[str, str] | None = None) -> _Element:
    e = etree.Element(tag, nsmap=nsmap)
    if text is not None:
        e.text = text
    return e


def response_header(action: str, relates_to: str | None, *, to: str = ANONYMOUS,
                    message_id: str | None = None) -> Header:
    """Header of a response as Windows writes it: Action, MessageID, To, RelatesTo."""
    h = Header(action=action, to=to, relates_to=relates_to, reply_to=None, must_understand=set())
    if message_id is not None:
        h.message_id = message_id
    return h


# ================================================================================ Identify
def build_identify_request() -> bytes:
    """``<wsmid:Identify/>`` with an empty header (DSP0226 11.2)."""
    return build_envelope(None, [_el(ID_IDENTIFY, nsmap={"wsmid": NS_WSMID})])


def parse_identify_request(env: Envelope) -> IdentifyRequest:
    p = _payload(env, ID_IDENTIFY)
    if _children(p):
        raise WSManDecodeError("wsmid:Identify must be empty", fault="SchemaValidationError")
    return IdentifyRequest()


def build_identify_response(resp: IdentifyResponse) -> bytes:
    """IdentifyResponse (DSP0226 11.3; MS-WSMV 3.1.4.16); no addressing headers."""
    root = _el(ID_IDENTIFY_RESPONSE, nsmap={"wsmid": NS_WSMID})
    for v in resp.protocol_versions:
        _sub(root, ID_PROTOCOL_VERSION, v)
    if resp.product_vendor is not None:
        _sub(root, ID_PRODUCT_VENDOR, resp.product_vendor)
    if resp.product_version is not None:
        _sub(root, ID_PRODUCT_VERSION, resp.product_version)
    if resp.security_profiles is not None:
        sp = _sub(root, ID_SECURITY_PROFILES)
        for name in resp.security_profiles:
            _sub(sp, ID_SECURITY_PROFILE_NAME, name)
    return build_envelope(None, [root])


def parse_identify_response(env: Envelope) -> IdentifyResponse:
    p = _payload(env, ID_IDENTIFY_RESPONSE)
    out = IdentifyResponse(protocol_versions=[], product_vendor=None, product_version=None)
    for c in _children(p):
        if c.tag == ID_PROTOCOL_VERSION:
            out.protocol_versions.append(_text(c))
        elif c.tag == ID_PRODUCT_VENDOR:
            out.product_vendor = _text(c)
        elif c.tag == ID_PRODUCT_VERSION:
            out.product_version = _text(c)
        elif c.tag == ID_SECURITY_PROFILES:
            out.security_profiles = [_text(n) for n in _children(c) if n.tag == ID_SECURITY_PROFILE_NAME]
    if not out.protocol_versions:
        raise WSManDecodeError("IdentifyResponse without ProtocolVersion")
    return out


# ================================================================================ Transfer
def build_get_request(header: Header) -> bytes:
    """wxf:Get: empty body (DSP0226 7.3; MS-WSMV 3.1.4.2)."""
    return build_envelope(_with_action(header, Action.GET))


def parse_get_request(env: Envelope) -> TransferRequest:
    _expect(env, Action.GET)
    return TransferRequest(env.header)


def build_get_response(relates_to: str | None, item: _Element, *, message_id: str | None = None) -> bytes:
    """GetResponse: the representation as the body (DSP0226 7.3)."""
    return build_envelope(response_header(Action.GET_RESPONSE, relates_to, message_id=message_id), [item])


def parse_get_response(env: Envelope) -> InstanceMessage:
    _expect(env, Action.GET_RESPONSE)
    return InstanceMessage(env.header, _payload(env, None))


def build_put_request(header: Header, item: _Element) -> bytes:
    """wxf:Put with the full (or, with FragmentTransfer, partial) representation (DSP0226 7.4)."""
    return build_envelope(_with_action(header, Action.PUT), [item])


def parse_put_request(env: Envelope) -> InstanceMessage:
    _expect(env, Action.PUT)
    return InstanceMessage(env.header, _payload(env, None))


def build_put_response(relates_to: str | None, item: _Element | None = None, *,
                       message_id: str | None = None) -> bytes:
    """PutResponse: the new representation, or an empty body (DSP0226 7.4 R7.4-x)."""
    return build_envelope(response_header(Action.PUT_RESPONSE, relates_to, message_id=message_id),
                          [item] if item is not None else [])


def parse_put_response(env: Envelope) -> InstanceMessage:
    _expect(env, Action.PUT_RESPONSE)
    return InstanceMessage(env.header, env.payload)


def build_create_request(header: Header, item: _Element) -> bytes:
    """wxf:Create with the new representation (DSP0226 7.5; MS-WSMV 3.1.4.5)."""
    return build_envelope(_with_action(header, Action.CREATE), [item])


def parse_create_request(env: Envelope) -> InstanceMessage:
    _expect(env, Action.CREATE)
    return InstanceMessage(env.header, _payload(env, None))


def build_create_response(relates_to: str | None, epr: EndpointReference, *, item: _Element | None = None,
                          message_id: str | None = None) -> bytes:
    """CreateResponse: ``wxf:ResourceCreated`` EPR of the new resource (DSP0226 7.5; MS-WSMV 3.1.4.5).
    WinRS appends the created shell after the EPR (MS-WSMV 3.1.4.5.x)."""
    rc = write_epr(_el(X_RESOURCE_CREATED, nsmap={"x": NS_TRANSFER}), epr)
    body = [rc] if item is None else [rc, item]
    return build_envelope(response_header(Action.CREATE_RESPONSE, relates_to, message_id=message_id), body)


def parse_create_response(env: Envelope) -> CreateResponse:
    _expect(env, Action.CREATE_RESPONSE)
    rc = _payload(env, X_RESOURCE_CREATED)
    following = rc.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    return CreateResponse(read_epr(rc), following)


def build_delete_request(header: Header) -> bytes:
    """wxf:Delete: empty body (DSP0226 7.6; MS-WSMV 3.1.4.6)."""
    return build_envelope(_with_action(header, Action.DELETE))


def parse_delete_request(env: Envelope) -> TransferRequest:
    _expect(env, Action.DELETE)
    return TransferRequest(env.header)


def build_delete_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    """DeleteResponse: empty body (DSP0226 7.6)."""
    return build_envelope(response_header(Action.DELETE_RESPONSE, relates_to, message_id=message_id))


def parse_delete_response(env: Envelope) -> TransferRequest:
    _expect(env, Action.DELETE_RESPONSE)
    return TransferRequest(env.header)


# ================================================================================ Enumerate
def _write_filter(parent: _Element, req: EnumerateRequest) -> None:
    if req.filter_dialect is None and req.filter_text is None and req.selector_filter is None \
            and req.association_filter is None:
        return
    f = _sub(parent, W_FILTER)
    dialect = req.filter_dialect
    if dialect is None:
        dialect = (FILTER_SELECTOR if req.selector_filter is not None
                   else FILTER_ASSOCIATION if req.association_filter is not None else None)
    if dialect is not None:
        f.set("Dialect", dialect)
    if req.selector_filter is not None:
        write_selector_set(f, req.selector_filter)
    elif req.association_filter is not None:
        af = req.association_filter
        box = etree.SubElement(f, qn(NS_CIMBINDING, af.kind), nsmap={"b": NS_CIMBINDING})
        write_epr(_sub(box, B_OBJECT), af.object)
        if af.kind == "AssociatedInstances":
            fields = [("AssociationClassName", af.association_class), ("Role", af.role),
                      ("ResultClassName", af.result_class), ("ResultRole", af.result_role)]
        else:  # AssociationInstances: ResultClassName, Role (DSP0227 8.2)
            fields = [("ResultClassName", af.result_class), ("Role", af.role)]
        for name, value in fields:
            if value is not None:
                _sub(box, qn(NS_CIMBINDING, name), value)
        for prop in af.include_result_property:
            _sub(box, qn(NS_CIMBINDING, "IncludeResultProperty"), prop)
    elif req.filter_text is not None:
        f.text = req.filter_text


def build_enumerate_request(header: Header, req: EnumerateRequest) -> bytes:
    """wsen:Enumerate (DSP0226 8.2): Expires, then wsman:Filter, EnumerationMode,
    OptimizeEnumeration, MaxElements (DSP0226 8.2.1 order)."""
    root = _el(N_ENUMERATE, nsmap={"n": NS_ENUMERATION, "w": NS_WSMAN})
    if req.expires is not None:
        _sub(root, N_EXPIRES, req.expires)
    _write_filter(root, req)
    if req.enumeration_mode is not None:
        _sub(root, W_ENUM_MODE, req.enumeration_mode)
    if req.optimize:
        _sub(root, W_OPTIMIZE)
    if req.max_elements is not None:
        _sub(root, W_MAX_ELEMENTS, str(req.max_elements))
    return build_envelope(_with_action(header, Action.ENUMERATE), [root])


def _read_association(box: _Element) -> AssociationFilter:
    kind = etree.QName(box).localname
    if kind not in ("AssociatedInstances", "AssociationInstances"):
        raise WSManDecodeError(f"unknown association filter {kind!r}", fault="CannotProcessFilter")
    obj: EndpointReference | None = None
    af = AssociationFilter(kind=kind, object=EndpointReference())
    for c in _children(box):
        local = etree.QName(c).localname
        if c.tag == B_OBJECT:
            obj = read_epr(c)
        elif local == "AssociationClassName":
            af.association_class = _text(c)
        elif local == "Role":
            af.role = _text(c)
        elif local == "ResultClassName":
            af.result_class = _text(c)
        elif local == "ResultRole":
            af.result_role = _text(c)
        elif local == "IncludeResultProperty":
            af.include_result_property.append(_text(c))
    if obj is None:
        raise WSManDecodeError("association filter without b:Object", fault="CannotProcessFilter")
    af.object = obj
    return af


def parse_enumerate_request(env: Envelope) -> EnumerateRequest:
    _expect(env, Action.ENUMERATE)
    p = _payload(env, N_ENUMERATE)
    req = EnumerateRequest()
    for c in _children(p):
        tag = c.tag
        if tag == N_EXPIRES:
            req.expires = _text(c)
        elif tag in (W_FILTER, N_FILTER):
            req.filter_dialect = c.get("Dialect")
            inner = _children(c)
            if inner and inner[0].tag == W_SELECTOR_SET:
                req.selector_filter = read_selector_set(inner[0])
            elif inner and inner[0].tag.startswith("{" + NS_CIMBINDING + "}"):
                req.association_filter = _read_association(inner[0])
            elif inner:
                raise WSManDecodeError(f"unexpected {inner[0].tag!r} in Filter", fault="CannotProcessFilter")
            else:
                req.filter_text = c.text or ""
        elif tag == W_ENUM_MODE:
            mode = _text(c)
            if mode not in _ENUM_MODES:
                raise WSManDecodeError(f"unknown EnumerationMode {mode[:40]!r}", fault="UnsupportedFeature")
            req.enumeration_mode = mode
        elif tag == W_OPTIMIZE:
            req.optimize = True
        elif tag == W_MAX_ELEMENTS:
            req.max_elements = _uint(c, "MaxElements")
    return req


def _write_items(parent: _Element, tag: str, items: EnumerationItems) -> None:
    box = _sub(parent, tag)
    if items.items and items.epr_items:
        if len(items.items) != len(items.epr_items):
            raise ValueError("items and epr_items must have the same length in ObjectAndEPR mode")
        for obj, epr in zip(items.items, items.epr_items, strict=True):
            it = _sub(box, W_ITEM)
            it.append(obj)
            if epr is not None:
                write_epr(_sub(it, A_EPR), epr)
    elif items.items:
        for obj in items.items:
            box.append(obj)
    else:
        for epr in items.epr_items:
            if epr is None:
                raise ValueError("EPR-mode items cannot be None")
            write_epr(_sub(box, A_EPR), epr)


def _read_items(box: _Element, out: EnumerationItems) -> None:
    for c in _children(box):
        if c.tag == W_ITEM:
            parts = _children(c)
            obj = next((x for x in parts if x.tag != A_EPR), None)
            epr_el = next((x for x in parts if x.tag == A_EPR), None)
            if obj is None:
                raise WSManDecodeError("wsman:Item without an object")
            out.items.append(obj)
            out.epr_items.append(read_epr(epr_el) if epr_el is not None else None)
        elif c.tag == A_EPR:
            out.epr_items.append(read_epr(c))
        else:
            out.items.append(c)
    if out.items and out.epr_items and len(out.items) != len(out.epr_items):
        raise WSManDecodeError("mixed EPR and object items")


def build_enumerate_response(relates_to: str | None, items: EnumerationItems | None = None, *,
                             context: str | None = None, message_id: str | None = None) -> bytes:
    """EnumerateResponse (DSP0226 8.2): EnumerationContext, and for optimized enumeration
    (DSP0226 8.2.3) wsman:Items and wsman:EndOfSequence."""
    root = _el(N_ENUMERATE_RESPONSE, nsmap={"n": NS_ENUMERATION, "w": NS_WSMAN})
    ctx = context if context is not None else (items.context if items is not None else None)
    _sub(root, N_CONTEXT, ctx)
    if items is not None and (items.items or items.epr_items or items.end_of_sequence):
        _write_items(root, W_ITEMS, items)
        if items.end_of_sequence:
            _sub(root, W_END)
    return build_envelope(response_header(Action.ENUMERATE_RESPONSE, relates_to, message_id=message_id), [root])


def _parse_items_response(env: Envelope, action: str, tag: str, items_tag: str, end_tag: str) -> EnumerationItems:
    """EnumerationContext, the items box and the end-of-sequence marker of an EnumerateResponse
    (wsman:Items / wsman:EndOfSequence, DSP0226 8.2.3) or a PullResponse (wsen:Items /
    wsen:EndOfSequence, DSP0226 8.4)."""
    _expect(env, action)
    p = _payload(env, tag)
    out = EnumerationItems()
    for c in _children(p):
        if c.tag == N_CONTEXT:
            out.context = _text(c) or None
        elif c.tag == items_tag:
            _read_items(c, out)
        elif c.tag == end_tag:
            out.end_of_sequence = True
    return out


def parse_enumerate_response(env: Envelope) -> EnumerationItems:
    return _parse_items_response(env, Action.ENUMERATE_RESPONSE, N_ENUMERATE_RESPONSE, W_ITEMS, W_END)


def build_pull_request(header: Header, req: PullRequest) -> bytes:
    """wsen:Pull (DSP0226 8.3): EnumerationContext, MaxTime, MaxElements, MaxCharacters."""
    root = _el(N_PULL, nsmap={"n": NS_ENUMERATION})
    _sub(root, N_CONTEXT, req.context)
    if req.max_time is not None:
        _sub(root, N_MAX_TIME, req.max_time)
    if req.max_elements is not None:
        _sub(root, N_MAX_ELEMENTS, str(req.max_elements))
    if req.max_characters is not None:
        _sub(root, N_MAX_CHARACTERS, str(req.max_characters))
    return build_envelope(_with_action(header, Action.PULL), [root])


def _context_of(p: _Element, what: str) -> str:
    ctx = p.find(N_CONTEXT)
    if ctx is None or not _text(ctx):
        raise WSManDecodeError(f"{what} without EnumerationContext", fault="InvalidEnumerationContext")
    return _text(ctx)


def parse_pull_request(env: Envelope) -> PullRequest:
    _expect(env, Action.PULL)
    p = _payload(env, N_PULL)
    req = PullRequest(context=_context_of(p, "Pull"))
    for c in _children(p):
        if c.tag == N_MAX_TIME:
            req.max_time = _text(c)
        elif c.tag == N_MAX_ELEMENTS:
            req.max_elements = _uint(c, "MaxElements")
        elif c.tag == N_MAX_CHARACTERS:
            req.max_characters = _uint(c, "MaxCharacters")
    return req


def build_pull_response(relates_to: str | None, items: EnumerationItems, *,
                        message_id: str | None = None) -> bytes:
    """PullResponse (DSP0226 8.4): EnumerationContext (absent at the end), wsen:Items, wsen:EndOfSequence."""
    root = _el(N_PULL_RESPONSE, nsmap={"n": NS_ENUMERATION, "w": NS_WSMAN})
    if items.context is not None:
        _sub(root, N_CONTEXT, items.context)
    if items.items or items.epr_items:
        _write_items(root, N_ITEMS, items)
    if items.end_of_sequence:
        _sub(root, N_END)
    return build_envelope(response_header(Action.PULL_RESPONSE, relates_to, message_id=message_id), [root])


def parse_pull_response(env: Envelope) -> EnumerationItems:
    return _parse_items_response(env, Action.PULL_RESPONSE, N_PULL_RESPONSE, N_ITEMS, N_END)


def build_release_request(header: Header, context: str) -> bytes:
    """wsen:Release (DSP0226 8.5)."""
    root = _el(N_RELEASE, nsmap={"n": NS_ENUMERATION})
    _sub(root, N_CONTEXT, context)
    return build_envelope(_with_action(header, Action.RELEASE), [root])


def parse_release_request(env: Envelope) -> ReleaseRequest:
    _expect(env, Action.RELEASE)
    return ReleaseRequest(_context_of(_payload(env, N_RELEASE), "Release"))


def build_release_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    """ReleaseResponse: empty body (DSP0226 8.5)."""
    return build_envelope(response_header(Action.RELEASE_RESPONSE, relates_to, message_id=message_id))


def parse_release_response(env: Envelope) -> TransferRequest:
    _expect(env, Action.RELEASE_RESPONSE)
    return TransferRequest(env.header)


# ================================================================================ Invoke
def build_invoke_request(header: Header, method: str, params: Mapping[str, Any]) -> bytes:
    """Custom action: Action = resource URI + "/" + method, body ``<p:Method_INPUT>`` (DSP0227 9;
    MS-WSMV 3.1.4.15)."""
    if not header.resource_uri:
        raise ValueError("invoke needs a resource URI")
    body = params_element(header.resource_uri, f"{method}_INPUT", params)
    return build_envelope(_with_action(header, custom_action(header.resource_uri, method)), [body])


def _method_of(env: Envelope, suffix: str) -> tuple[str, _Element]:
    p = _payload(env, None)
    local = etree.QName(p).localname
    if not local.endswith(suffix):
        raise WSManDecodeError(f"body {local!r} is not a {suffix} element", fault="InvalidBody")
    method = local[: -len(suffix)]
    if not method:
        raise WSManDecodeError("empty method name", fault="InvalidBody")
    return method, p


def parse_invoke_request(env: Envelope) -> InvokeRequest:
    """Decode a custom action; checks Action == ResourceURI/method (DSP0227 9)."""
    method, p = _method_of(env, "_INPUT")
    ruri = env.header.resource_uri or ""
    if env.header.action != custom_action(ruri, method):
        raise WSManDecodeError(f"action {env.header.action!r} does not match {method}_INPUT",
                               fault="ActionNotSupported")
    return InvokeRequest(method, element_to_properties(p), p)


def build_invoke_response(relates_to: str | None, resource_uri: str, method: str, return_value: Any,
                          out_params: Mapping[str, Any] | None = None, *, message_id: str | None = None) -> bytes:
    """Custom action response: Action = resource URI + "/" + method + "Response", body
    ``<p:Method_OUTPUT>`` with the out parameters and ReturnValue (DSP0227 9; MS-WSMV 3.1.4.15)."""
    body = params_element(resource_uri, f"{method}_OUTPUT", out_params or {}, return_value, with_return=True)
    action = custom_action(resource_uri, method) + "Response"
    return build_envelope(response_header(action, relates_to, message_id=message_id), [body])


def parse_invoke_response(env: Envelope) -> InvokeResponse:
    method, p = _method_of(env, "_OUTPUT")
    if not env.header.action.endswith("/" + method + "Response"):
        raise WSManDecodeError(f"action {env.header.action!r} does not match {method}_OUTPUT",
                               fault="ActionNotSupported")
    props = element_to_properties(p)
    rv = props.pop("ReturnValue", None)
    return InvokeResponse(method, rv, props, p)
