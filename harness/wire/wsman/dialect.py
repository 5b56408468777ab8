"""Boundary adapter between the two WS-Management dialects Windows speaks.

* ``"wsmv"``: MS-WSMV, WS-Management as DMTF DSP0226 1.x defines it (namespace
  ``http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd``). The whole codec of this package speaks it.
* ``"wsman2005"``: MS-WSMAN ("Web Services Management Protocol Extensions for Windows Server
  2003", Windows Server 2003 R2), the pre-release WS-Management of June 2005 (namespace
  ``http://schemas.xmlsoap.org/ws/2005/06/management``, MS-WSMAN 4.1.1 example; MS-WMOD 1.4 calls it
  "a prerelease draft version of WS-Management ... incompatible with current DMTF specifications").

The adapter rewrites a parsed tree from one dialect into the other so that the rest of the codec
stays single-dialect: a 2005/06 message is converted to MS-WSMV right after it arrives and an
MS-WSMV message to 2005/06 right before it leaves. What it rewrites:

* the namespace URI of every wsman element and attribute and of every namespace declaration
  (MS-WSMAN 2.2.x: the 2005/06 namespace replaces the DSP0226 one). QName *values* such as fault
  subcodes (``w:InvalidSelectors``, DSP0226 14) keep their prefix and follow the rewritten
  declaration, so they stay correct without touching the text;
* URIs that are spelled under the wsman namespace in each dialect: the wsman action URIs (fault,
  Events, Ack, ... -- DSP0226 ``http://schemas.dmtf.org/wbem/wsman/1/wsman/<name>``; the 2005/06
  spelling ``http://schemas.xmlsoap.org/ws/2005/06/management/<name>``, e.g. the 2005/06 Ack
  action) and the ``wsman:FaultDetail`` URIs, in ``wsa:Action`` and ``wsman:FaultDetail`` text;
* WMI resource URIs: ``http://schemas.microsoft.com/wbem/wsman/1/wmi/`` (MS-WSMV 3.1.4.1.1) versus
  ``http://schemas.microsoft.com/wsman/2005/06/wmi/`` (the resource URI and the instance namespace
  of the MS-WSMAN 4.1.1 GetResponse example), in ``wsman:ResourceURI`` text, custom action URIs
  (resource URI + "/" + method, DSP0227 9) and the namespace of resource representations.

The WS-Transfer (2004/09), WS-Enumeration (2004/09), WS-Eventing (2004/08) and WS-Addressing
(2004/08) namespaces and action URIs are the same in both dialects (MS-WSMAN 3.1.4.x, e.g.
3.1.4.6 Subscribe and 3.1.4.10 Release list the same action URIs as MS-WSMV) and are left alone.

Known structural differences:

* ``wsman:Filter``: MS-WSMAN 3.1.4.1.13 -- Windows Server 2003 servers MUST fault a request that
  contains the Filter element, so there is no 2005/06 spelling of a filtered enumeration; the
  adapter refuses to convert one (:class:`DialectError`, fault ``FilteringNotSupported``).
* Identify (``wsmid``, DSP0226 11): MS-WSMAN 3.1.4.1.22 answers it with a ThisType response
  (MS-WSMAN 2.2.4.12) and a Get of ``wsman:system/2005/06/this``, not with the DSP0226
  IdentifyResponse; the adapter does not translate between the two. An Identify envelope uses no
  wsman element, so :func:`detect_dialect` classifies it by the wsman namespace it declares, if any.

An envelope that uses both wsman namespaces is malformed in either dialect: :func:`detect_dialect`
raises :class:`DialectError` (fault ``SchemaValidationError``) with the two namespaces named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from lxml import etree

from .envelope import parse_xml
from .errors import WSManDecodeError
from .ns import NS_ADDRESSING, NS_WSMAN, RESOURCE_WMI_PREFIX

_Element = etree._Element

WSMV: Final = "wsmv"
WSMAN2005: Final = "wsman2005"
#: Every dialect the adapter knows, the default (the codec's own) first.
DIALECTS: Final[tuple[str, ...]] = (WSMV, WSMAN2005)

#: The 2005/06 wsman namespace (MS-WSMAN 4.1.1 example; schemas.xmlsoap.org/ws/2005/06/management).
NS_WSMAN_2005: Final = "http://schemas.xmlsoap.org/ws/2005/06/management"
#: The spelling of MS-WSMAN 2.2.x's namespace paragraph ("http://schemas.xmlsoap.org/wsman/2005/06/
#: management"), which its own examples do not use. Accepted on input as the same dialect; never written.
NS_WSMAN_2005_ALIASES: Final[tuple[str, ...]] = ("http://schemas.xmlsoap.org/wsman/2005/06/management",)
#: WMI resource URI prefix of Windows Server 2003 R2 (MS-WSMAN 4.1.1 example).
RESOURCE_WMI_PREFIX_2005: Final = "http://schemas.microsoft.com/wsman/2005/06/wmi/"
#: Prefix of the URIs DSP0226 spells under the wsman namespace (actions, faultDetail URIs).
WSMAN_URI_PREFIX: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/"
WSMAN_URI_PREFIX_2005: Final = NS_WSMAN_2005 + "/"

_A_ACTION = "{" + NS_ADDRESSING + "}Action"
_MAX_DEPTH = 512

#: Namespace URIs that mark a dialect, per dialect.
_MARKERS: Final[dict[str, frozenset[str]]] = {
    WSMV: frozenset({NS_WSMAN}),
    WSMAN2005: frozenset({NS_WSMAN_2005, *NS_WSMAN_2005_ALIASES}),
}
#: URI prefixes per dialect (namespace-or-URI prefix pairs in the same order for each dialect).
_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    WSMV: (WSMAN_URI_PREFIX, RESOURCE_WMI_PREFIX),
    WSMAN2005: (WSMAN_URI_PREFIX_2005, RESOURCE_WMI_PREFIX_2005),
}


class DialectError(WSManDecodeError):
    """A message that cannot be read or written in the dialect asked for (mixed namespaces, an
    element the target dialect lacks, an unknown dialect name). ``fault`` names the
    :data:`~harness.wire.wsman.faults.FAULTS` entry a server answers with."""


def check_dialect(name: str) -> str:
    """``name`` if it is a known dialect, else :class:`DialectError`."""
    if name not in DIALECTS:
        raise DialectError(f"unknown WS-Management dialect {name!r}; known: {', '.join(DIALECTS)}")
    return name


def _wsman_namespace(dialect: str) -> str:
    return NS_WSMAN if dialect == WSMV else NS_WSMAN_2005


# ------------------------------------------------------------------------------------ detection
def _namespaces_used(root: _Element) -> tuple[set[str], set[str]]:
    """(namespaces of element and attribute names, namespaces merely declared)."""
    used: set[str] = set()
    declared: set[str] = set()
    for el in root.iter():
        tag = el.tag
        if not isinstance(tag, str):
            continue
        if tag.startswith("{"):
            used.add(tag[1:].partition("}")[0])
        for key in el.attrib:
            name = str(key)
            if name.startswith("{"):
                used.add(name[1:].partition("}")[0])
        declared.update(str(uri) for uri in el.nsmap.values())
    return used, declared


def _dialects_of(namespaces: set[str]) -> list[str]:
    return [d for d in DIALECTS
            if namespaces & _MARKERS[d] or any(ns.startswith(_PREFIXES[d][1]) for ns in namespaces)]


def detect_dialect(root: _Element) -> str | None:
    """The dialect of a parsed envelope from the wsman namespace -- or the WMI resource namespace
    of a representation (MS-WSMAN 4.1.1) -- its elements and attributes use: ``"wsmv"``,
    ``"wsman2005"``; both at once raise :class:`DialectError`. A message that uses neither (a
    GetResponse of a non-WMI resource, a bare SOAP fault) is classified by the one wsman namespace
    it declares; None when it declares neither or both (e.g. Identify, DSP0226 11)."""
    used, declared = _namespaces_used(root)
    found = _dialects_of(used)
    if len(found) > 1:
        raise DialectError(
            f"the envelope mixes the WS-Management namespaces {NS_WSMAN} (MS-WSMV) and {NS_WSMAN_2005} "
            "(MS-WSMAN 2005/06); a message must use one dialect", fault="SchemaValidationError")
    if found:
        return found[0]
    hinted = [d for d in DIALECTS if declared & _MARKERS[d]]
    return hinted[0] if len(hinted) == 1 else None


def detect(data: bytes, *, max_size: int | None = None) -> str | None:
    """:func:`detect_dialect` of serialized bytes (hardened parser; :class:`WSManDecodeError`)."""
    return detect_dialect(parse_xml(data, max_size=max_size))


# ------------------------------------------------------------------------------------ rewriting
def _map_uri(value: str, source: str, target: str) -> str:
    """Rewrite a URI value that starts with one of ``source``'s prefixes."""
    for old, new in zip(_PREFIXES[source], _PREFIXES[target], strict=True):
        if value.startswith(old):
            return new + value[len(old):]
    return value


def _map_namespace(uri: str | None, source: str, target: str) -> str | None:
    if uri is None:
        return None
    if uri in _MARKERS[source]:
        return _wsman_namespace(target)
    if uri in _MARKERS[target]:
        raise DialectError(f"namespace {uri} belongs to the {target} dialect, the message is {source}",
                           fault="SchemaValidationError")
    # Resource representations use the resource URI as their namespace (DSP0230; MS-WSMAN 4.1.1).
    return _map_uri(uri, source, target)


def _map_name(clark: str, source: str, target: str) -> str:
    if not clark.startswith("{"):
        return clark
    uri, _, local = clark[1:].partition("}")
    return "{" + (_map_namespace(uri, source, target) or "") + "}" + local


def _rewrites_text(old_tag: str, source: str) -> bool:
    """Elements whose text is a URI spelled per dialect: wsa:Action, wsman:ResourceURI, wsman:FaultDetail."""
    if old_tag == _A_ACTION:
        return True
    if not old_tag.startswith("{"):
        return False
    uri, _, local = old_tag[1:].partition("}")
    return uri in _MARKERS[source] and local in ("ResourceURI", "FaultDetail")


def _check_structure(el: _Element, source: str, target: str) -> None:
    """MS-WSMAN 3.1.4.1.13: no wsman:Filter in the 2005/06 dialect."""
    if WSMAN2005 not in (source, target) or not isinstance(el.tag, str):
        return
    uri, _, local = el.tag[1:].partition("}") if el.tag.startswith("{") else ("", "", el.tag)
    if local == "Filter" and (uri in _MARKERS[WSMV] or uri in _MARKERS[WSMAN2005]):
        raise DialectError("wsman:Filter cannot be used with Windows Server 2003 WS-Management "
                           "(MS-WSMAN 3.1.4.1.13: the server faults any request that contains it)",
                           fault="FilteringNotSupported")


def _copy(el: _Element, parent: _Element | None, source: str, target: str, depth: int) -> _Element:
    """Copy ``el`` (rewritten) under ``parent`` (None = a new root). Children are created inside
    their new parent so that inherited namespace declarations are reused, not re-declared."""
    if depth > _MAX_DEPTH:
        raise DialectError(f"element nesting deeper than {_MAX_DEPTH}")
    tag = el.tag
    if not isinstance(tag, str):  # comment or processing instruction
        special = _copy_special(el)
        if parent is not None:
            parent.append(special)
        return special
    _check_structure(el, source, target)
    parent_el = el.getparent()
    inherited = parent_el.nsmap if parent_el is not None else {}
    own = {p: u for p, u in el.nsmap.items() if inherited.get(p) != u}
    nsmap: Any = {p: _map_namespace(u, source, target) or u for p, u in own.items()}
    attrib = {_map_name(str(k), source, target): str(v) for k, v in el.attrib.items()}
    new_tag = _map_name(tag, source, target)
    if parent is None:
        new = etree.Element(new_tag, attrib=attrib, nsmap=nsmap)
    else:
        new = etree.SubElement(parent, new_tag, attrib=attrib, nsmap=nsmap)
    text = el.text
    if text is not None and _rewrites_text(tag, source):
        stripped = text.strip()
        text = text.replace(stripped, _map_uri(stripped, source, target)) if stripped else text
    new.text = text
    for child in el:
        copy = _copy(child, new, source, target, depth + 1)
        copy.tail = child.tail
    return new


def _copy_special(el: _Element) -> _Element:
    if isinstance(el, etree._Comment):
        return etree.Comment(el.text or "")
    if isinstance(el, etree._ProcessingInstruction):
        return etree.ProcessingInstruction(el.target, el.text or "")
    raise DialectError(f"cannot convert a node of type {type(el).__name__}")


def convert_tree(root: _Element, source: str, target: str) -> _Element:
    """A new tree: ``root`` (in ``source``) rewritten into ``target``. ``root`` is not changed.
    Same dialect: a plain copy. Raises :class:`DialectError` when ``root`` uses the other dialect's
    namespace or an element ``target`` cannot express."""
    check_dialect(source)
    check_dialect(target)
    if source == target:
        return etree.fromstring(etree.tostring(root))
    return _copy(root, None, source, target, 0)


def convert(data: bytes, source: str, target: str, *, max_size: int | None = None) -> bytes:
    """Serialized :func:`convert_tree` (UTF-8 with XML declaration, as ``build_envelope`` writes).
    Same dialect: ``data`` unchanged."""
    check_dialect(source)
    check_dialect(target)
    if source == target:
        return data
    root = parse_xml(data, max_size=max_size)
    detected = detect_dialect(root)
    if detected is not None and detected != source:
        raise DialectError(f"the message is in the {detected} dialect, not {source}",
                           fault="SchemaValidationError")
    return _serialize(convert_tree(root, source, target))


def _serialize(root: _Element) -> bytes:
    """UTF-8 with XML declaration, as ``build_envelope`` writes."""
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def to_codec(data: bytes, *, max_size: int | None = None,
             accepted: Iterable[str] = DIALECTS) -> tuple[str | None, bytes]:
    """Inbound boundary: detect the dialect of ``data`` and return it with the message rewritten
    into the codec's dialect (MS-WSMV). A dialect outside ``accepted`` is returned with ``data``
    unchanged, so the codec answers it as it answers any message in a namespace it does not know
    (SOAP 1.2 part 1 5.2.3: s:MustUnderstand for its mustUnderstand headers)."""
    root = parse_xml(data, max_size=max_size)
    dialect = detect_dialect(root)
    if dialect is None or dialect == WSMV or dialect not in set(accepted):
        return dialect, data
    return dialect, _serialize(convert_tree(root, dialect, WSMV))


def from_codec(data: bytes, dialect: str | None) -> bytes:
    """Outbound boundary: rewrite a message the codec built (MS-WSMV) into ``dialect``
    (None = the codec's own)."""
    if dialect is None or dialect == WSMV:
        return data
    return convert(data, WSMV, dialect)


def wsman_namespace(dialect: str) -> str:
    """The wsman namespace URI ``dialect`` writes."""
    return _wsman_namespace(check_dialect(dialect))


__all__ = [
    "DIALECTS",
    "NS_WSMAN_2005",
    "NS_WSMAN_2005_ALIASES",
    "RESOURCE_WMI_PREFIX_2005",
    "WSMAN2005",
    "WSMAN_URI_PREFIX",
    "WSMAN_URI_PREFIX_2005",
    "WSMV",
    "DialectError",
    "check_dialect",
    "convert",
    "convert_tree",
    "detect",
    "detect_dialect",
    "from_codec",
    "to_codec",
    "wsman_namespace",
]
