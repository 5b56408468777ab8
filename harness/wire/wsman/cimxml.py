"""CIM instances <-> WS-Man XML (DSP0230 WS-CIM mapping, DSP0227 CIM binding, MS-WSMV 2.2.4.x as
Windows writes it).

Layout (DSP0230 7-9; observed Windows behaviour for the root attributes)::

    <p:Win32_Service xmlns:p="<resource URI>" xmlns:cim=".../wscim/1/common" xmlns:xsi="..."
                     xsi:type="p:Win32_Service_Type" xml:lang="en-US">
      <p:Name>Spooler</p:Name>                       one element per property, class namespace
      <p:Description xsi:nil="true"/>                NULL (DSP0230 9.1)
      <p:Dependencies>a</p:Dependencies><p:Dependencies>b</p:Dependencies>   arrays repeat
      <p:Started>true</p:Started>                    xs:boolean
      <p:InstallDate><cim:Datetime>2023-10-01T12:00:00Z</cim:Datetime></p:InstallDate>
      <p:Uptime><cim:Interval>P1DT2H3M4S</cim:Interval></p:Uptime>
      <p:Antecedent><a:Address>..</a:Address><a:ReferenceParameters>..</a:ReferenceParameters></p:Antecedent>
      <p:Embedded xsi:type="q:X_Type" xmlns:q="..X"><q:Prop>..</q:Prop></p:Embedded>
    </p:Win32_Service>
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from typing import Any

import pywbem
from lxml import etree

from harness.wire.xmlsafe import xs_boolean

from .duration import format_interval, parse_duration_exact
from .errors import WSManDecodeError
from .header import A_ADDRESS, EndpointReference, read_epr, write_epr
from .ns import (
    ANONYMOUS,
    CIM_NAMESPACE_SELECTOR,
    NS_ADDRESSING,
    NS_CIM,
    NS_WSMAN,
    NS_XML,
    NS_XSI,
    RESOURCE_CIM_PREFIX,
    RESOURCE_WMI_PREFIX,
    qn,
)

_Element = etree._Element

_NIL = qn(NS_XSI, "nil")
_XSI_TYPE = qn(NS_XSI, "type")
_LANG = qn(NS_XML, "lang")
CIM_DATETIME = qn(NS_CIM, "Datetime")
CIM_DATE = qn(NS_CIM, "Date")
CIM_TIME = qn(NS_CIM, "Time")
CIM_INTERVAL = qn(NS_CIM, "Interval")
CIM_CIMDATETIME = qn(NS_CIM, "CIMDateTime")
_DATETIME_TAGS = {CIM_DATETIME: "Datetime", CIM_DATE: "Date", CIM_TIME: "Time",
                  CIM_INTERVAL: "Interval", CIM_CIMDATETIME: "CIMDateTime"}
_MAX_EMBED_DEPTH = 16

_INT_TYPES = frozenset({"uint8", "sint8", "uint16", "sint16", "uint32", "sint32", "uint64", "sint64"})
_REAL_TYPES = frozenset({"real32", "real64"})


class CimValueError(WSManDecodeError, ValueError):
    """A property value that does not fit its CIM type (DSP0230 9; fault InvalidRepresentation)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, fault="InvalidRepresentation")


class DatetimeText(str):
    """Untyped text of a CIM date/time element; ``kind`` is the cim: element local name
    (Datetime, Date, Time, Interval or CIMDateTime; DSP0230 9.2)."""

    kind: str

    def __new__(cls, text: str, kind: str) -> DatetimeText:
        obj = super().__new__(cls, text)
        obj.kind = kind
        return obj


class EmbeddedObject(dict[str, Any]):
    """Untyped properties of an embedded instance (DSP0230 9.4); ``classname`` from xsi:type."""

    def __init__(self, classname: str, props: Mapping[str, Any] | None = None) -> None:
        super().__init__(props or {})
        self.classname = classname


# ----------------------------------------------------------------------------------- URIs
def resource_uri_for(classname: str, namespace: str | None, like: str | None = None) -> str:
    """Resource URI of ``classname``, in the style of ``like`` (MS-WSMV 3.1.4.1.x: WMI classes live
    under ``.../wsman/1/wmi/<namespace>/<class>``; DMTF classes under the cim-schema/2 prefix)."""
    if like is not None and like.startswith(RESOURCE_CIM_PREFIX):
        return RESOURCE_CIM_PREFIX + classname
    if namespace:
        return RESOURCE_WMI_PREFIX + namespace.replace("\\", "/").strip("/") + "/" + classname
    if like is not None and "/" in like:
        return like.rsplit("/", 1)[0] + "/" + classname
    return RESOURCE_WMI_PREFIX + "root/cimv2/" + classname


def namespace_of_uri(resource_uri: str) -> str | None:
    """CIM namespace encoded in a WMI resource URI (``.../wmi/root/cimv2/X`` -> ``root/cimv2``)."""
    if resource_uri.startswith(RESOURCE_WMI_PREFIX):
        rest = resource_uri[len(RESOURCE_WMI_PREFIX):]
        if "/" in rest:
            return rest.rsplit("/", 1)[0]
    return None


def path_to_epr(path: pywbem.CIMInstanceName, like: str | None = None,
                address: str = ANONYMOUS) -> EndpointReference:
    """EPR of a CIM instance path (DSP0227 8.1): resource URI of its class, keys as selectors; for
    DMTF resource URIs the namespace travels in the ``__cimnamespace`` selector."""
    uri = resource_uri_for(path.classname, path.namespace, like)
    selectors: dict[str, str | EndpointReference] = {}
    for key, val in path.keybindings.items():
        if isinstance(val, pywbem.CIMInstanceName):
            selectors[key] = path_to_epr(val, uri, address)
        else:
            selectors[key] = _scalar_text(val, None)
    if path.namespace and uri.startswith(RESOURCE_CIM_PREFIX):
        selectors[CIM_NAMESPACE_SELECTOR] = path.namespace
    return EndpointReference(address=address, resource_uri=uri, selectors=selectors)


def epr_to_path(epr: EndpointReference, depth: int = 0) -> pywbem.CIMInstanceName:
    """CIM instance path of an EPR (DSP0227 8.1); key values stay strings."""
    if depth > _MAX_EMBED_DEPTH:
        raise CimValueError("reference nested too deeply")
    classname = epr.resource_uri.rstrip("/").rsplit("/", 1)[-1]
    if not classname:
        raise CimValueError("reference without resource URI")
    namespace = namespace_of_uri(epr.resource_uri)
    keys: dict[str, Any] = {}
    for name, val in epr.selectors.items():
        if name == CIM_NAMESPACE_SELECTOR and isinstance(val, str):
            namespace = val
        elif isinstance(val, EndpointReference):
            keys[name] = epr_to_path(val, depth + 1)
        else:
            keys[name] = val
    try:
        return pywbem.CIMInstanceName(classname, keybindings=keys, namespace=namespace)
    except (ValueError, TypeError) as exc:
        raise CimValueError(f"invalid reference: {exc}") from None


# ----------------------------------------------------------------------------------- encoding
def format_datetime(value: pywbem.CIMDateTime) -> tuple[str, str]:
    """(cim element local name, text) for a CIMDateTime (DSP0230 9.2): points in time become
    ``cim:Datetime`` xs:dateTime, intervals ``cim:Interval`` xs:duration; values with wildcard
    precision keep the DMTF string form in ``cim:CIMDateTime``."""
    if value.precision is not None:
        return "CIMDateTime", str(value)
    if value.is_interval:
        td: _dt.timedelta = value.timedelta
        secs = td.seconds
        return "Interval", format_interval(td.days, secs // 3600, (secs // 60) % 60, secs % 60,
                                           td.microseconds)
    d: _dt.datetime = value.datetime
    text = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        text += f".{d.microsecond:06d}"
    off = value.minutes_from_utc
    if off == 0:
        text += "Z"
    else:
        sign = "+" if off > 0 else "-"
        text += f"{sign}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
    return "Datetime", text


def _scalar_text(value: Any, cim_type: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if cim_type in _REAL_TYPES or isinstance(value, float):
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "INF" if f > 0 else "-INF"
        return repr(f)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, pywbem.CIMDateTime):
        return format_datetime(value)[1]
    return str(value)


def _infer_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, EndpointReference):
        return "reference"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, pywbem.CIMInstance | pywbem.CIMClass):
        return "string"
    try:
        return str(pywbem.cimtype(value))
    except (TypeError, ValueError):
        if isinstance(value, int):
            return "sint64"
        if isinstance(value, float):
            return "real64"
        return "string"


def _write_value(parent: _Element, tag: str, value: Any, cim_type: str | None, like: str,
                 depth: int = 0) -> None:
    """Append one element ``tag`` carrying ``value`` (scalar, never a list)."""
    if isinstance(value, pywbem.CIMInstance):
        _write_embedded(parent, tag, value, like, depth)
        return
    el = etree.SubElement(parent, tag)
    if value is None:
        el.set(_NIL, "true")
    elif isinstance(value, pywbem.CIMDateTime):
        kind, text = format_datetime(value)
        etree.SubElement(el, qn(NS_CIM, kind)).text = text
    elif isinstance(value, pywbem.CIMInstanceName):
        write_epr(el, path_to_epr(value, like))
    elif isinstance(value, EndpointReference):
        write_epr(el, value)
    elif isinstance(value, pywbem.CIMClass):
        raise ValueError("embedded classes are not supported in WS-Man instance XML")
    else:
        el.text = _scalar_text(value, cim_type)


def _write_embedded(parent: _Element, tag: str, inst: pywbem.CIMInstance, like: str, depth: int) -> None:
    """Embedded instance (DSP0230 9.4): the property element carries ``xsi:type="q:Class_Type"`` and
    the embedded properties in the embedded class namespace."""
    if depth > _MAX_EMBED_DEPTH:
        raise ValueError("embedded instances nested too deeply")
    uri = resource_uri_for(inst.classname, inst.path.namespace if inst.path else None, like)
    prefix = f"q{depth}"
    el = etree.SubElement(parent, tag, nsmap={prefix: uri})
    el.set(_XSI_TYPE, f"{prefix}:{inst.classname}_Type")
    for prop in inst.properties.values():
        _write_property(el, qn(uri, prop.name), prop.value, prop.type, prop.is_array, like, depth + 1)


def _write_property(parent: _Element, tag: str, value: Any, cim_type: str | None, is_array: bool,
                    like: str, depth: int = 0) -> None:
    if is_array or isinstance(value, list | tuple):
        if value is None:
            etree.SubElement(parent, tag).set(_NIL, "true")
            return
        for item in value:
            _write_value(parent, tag, item, cim_type, like, depth)
        return
    _write_value(parent, tag, value, cim_type, like, depth)


def _instance_nsmap(resource_uri: str) -> dict[str, str]:
    # a/w are declared for references; inside an envelope lxml drops the redundant declarations.
    return {"p": resource_uri, "cim": NS_CIM, "xsi": NS_XSI, "a": NS_ADDRESSING, "w": NS_WSMAN}


def instance_to_element(instance: pywbem.CIMInstance, resource_uri: str, cls: pywbem.CIMClass | None = None,
                        *, lang: str | None = "en-US") -> _Element:
    """Instance -> ``<p:ClassName>`` element in the resource-URI namespace (DSP0230 7; MS-WSMV
    2.2.4.x). With ``cls``, every class property is written in class order and missing ones as
    ``xsi:nil`` (observed Windows behaviour: Windows writes all properties)."""
    root = etree.Element(qn(resource_uri, instance.classname),
                         nsmap=_instance_nsmap(resource_uri))
    root.set(_XSI_TYPE, f"p:{instance.classname}_Type")
    if lang:
        root.set(_LANG, lang)
    props = instance.properties
    if cls is not None:
        for cprop in cls.properties.values():
            iprop = props.get(cprop.name)
            value = iprop.value if iprop is not None else None
            _write_property(root, qn(resource_uri, cprop.name), value, cprop.type, cprop.is_array, resource_uri)
        for iprop in props.values():
            if iprop.name not in cls.properties:
                _write_property(root, qn(resource_uri, iprop.name), iprop.value, iprop.type, iprop.is_array,
                                resource_uri)
    else:
        for iprop in props.values():
            _write_property(root, qn(resource_uri, iprop.name), iprop.value, iprop.type, iprop.is_array,
                            resource_uri)
    return root


def params_element(resource_uri: str, name: str, params: Mapping[str, Any],
                   return_value: Any = None, *, with_return: bool = False) -> _Element:
    """``<p:Method_INPUT>`` / ``<p:Method_OUTPUT>`` body of a custom action (MS-WSMV 3.1.4.15, DSP0227 9):
    one element per parameter, types inferred from the Python/pywbem values; ``ReturnValue`` last."""
    root = etree.Element(qn(resource_uri, name), nsmap=_instance_nsmap(resource_uri))
    for pname, value in params.items():
        _write_property(root, qn(resource_uri, pname), value, _infer_type(
            value[0] if isinstance(value, list | tuple) and value else value),
            isinstance(value, list | tuple), resource_uri)
    if with_return:
        _write_value(root, qn(resource_uri, "ReturnValue"), return_value, _infer_type(return_value), resource_uri)
    return root


# ----------------------------------------------------------------------------------- decoding
def class_name_of(elem: _Element) -> str:
    """Class name of an instance element: its local name (DSP0230 7; MS-WSMV 2.2.4.x)."""
    return etree.QName(elem).localname


def _xsi_type_class(el: _Element) -> str:
    t = el.get(_XSI_TYPE)
    if t:
        local = t.rsplit(":", 1)[-1]
        return local[:-5] if local.endswith("_Type") else local
    for child in el:
        if isinstance(child.tag, str):
            ns = etree.QName(child).namespace or ""
            return ns.rstrip("/").rsplit("/", 1)[-1]
    return ""


def _read_value(el: _Element, depth: int) -> Any:
    nil = el.get(_NIL)
    if nil is not None and nil.strip() in ("true", "1"):
        return None
    first: _Element | None = None
    for child in el:
        if isinstance(child.tag, str):
            first = child
            break
    if first is None:
        return el.text or ""
    kind = _DATETIME_TAGS.get(str(first.tag))
    if kind is not None:
        return DatetimeText((first.text or "").strip(), kind)
    if el.find(A_ADDRESS) is not None:
        return read_epr(el)
    if depth > _MAX_EMBED_DEPTH:
        raise WSManDecodeError("embedded instances nested too deeply", fault="InvalidRepresentation")
    return EmbeddedObject(_xsi_type_class(el), _read_children(el, depth + 1))


def _read_children(elem: _Element, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = tag.rsplit("}", 1)[-1]
        value = _read_value(child, depth)
        if name in out:
            prev = out[name]
            if isinstance(prev, _Multi):
                prev.append(value)
            else:
                out[name] = _Multi([prev, value])
        else:
            out[name] = value
    for k, v in out.items():
        if isinstance(v, _Multi):
            out[k] = list(v)
    return out


class _Multi(list[Any]):
    """Marks a list built from repeated elements while reading."""


def element_to_properties(elem: _Element) -> dict[str, Any]:
    """Untyped properties of an instance (or method parameters) element (DSP0230 9): ``str``,
    ``list`` for repeated elements, ``None`` for ``xsi:nil``, :class:`DatetimeText`,
    :class:`EndpointReference` for references, :class:`EmbeddedObject` (a dict) for embedded ones."""
    return _read_children(elem, 0)


# ----------------------------------------------------------------------------------- typing
_XS_DATETIME = re.compile(
    r"^(-?\d{4,})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(Z|[+-]\d\d:\d\d)?$"
)


def parse_cim_datetime(text: str, kind: str = "Datetime") -> pywbem.CIMDateTime:
    """cim:Datetime / cim:Date / cim:Interval / cim:CIMDateTime text -> CIMDateTime (DSP0230 9.2)."""
    t = text.strip()
    try:
        if kind == "Interval":
            whole, micros = parse_duration_exact(t)
            return pywbem.CIMDateTime(_dt.timedelta(seconds=whole, microseconds=micros))
        if kind == "CIMDateTime":
            return pywbem.CIMDateTime(t)
        if kind == "Time":
            raise CimValueError("cim:Time values are not supported")
        m = _XS_DATETIME.match(t)
        if m is None:
            raise CimValueError(f"invalid xs:dateTime {t[:64]!r}")
        year, month, day, hh, mm, ss, frac, tz = m.groups()
        if kind == "Date" and hh is not None:
            raise CimValueError(f"invalid xs:date {t[:64]!r}")
        if kind == "Datetime" and hh is None:
            raise CimValueError(f"invalid xs:dateTime {t[:64]!r}")
        offset = 0
        if tz and tz != "Z":
            offset = (int(tz[1:3]) * 60 + int(tz[4:6])) * (1 if tz[0] == "+" else -1)
        micros = int((frac + "000000")[:6]) if frac else 0
        zone = pywbem.MinutesFromUTC(offset)
        value = _dt.datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0),
                             micros, tzinfo=zone)
        return pywbem.CIMDateTime(value)
    except CimValueError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise CimValueError(f"invalid {kind} value {t[:64]!r}: {exc}") from None


def _coerce(value: Any, prop: pywbem.CIMProperty, depth: int = 0) -> Any:
    if value is None:
        return None
    ctype = prop.type
    if ctype == "reference":
        if not isinstance(value, EndpointReference):
            raise CimValueError(f"property {prop.name}: expected an EPR")
        return epr_to_path(value)
    if isinstance(value, EmbeddedObject):
        if ctype != "string" or depth > _MAX_EMBED_DEPTH:
            raise CimValueError(f"property {prop.name}: unexpected embedded instance")
        inst = pywbem.CIMInstance(value.classname)
        for k, v in value.items():
            inst[k] = v
        return inst
    if isinstance(value, EndpointReference):
        raise CimValueError(f"property {prop.name}: unexpected EPR for type {ctype}")
    if ctype == "datetime":
        kind = value.kind if isinstance(value, DatetimeText) else (
            "Interval" if str(value).startswith("P") else "Datetime")
        return parse_cim_datetime(str(value), kind)
    text = str(value)
    if ctype == "string":
        return text
    if ctype == "char16":
        if len(text) != 1:
            raise CimValueError(f"property {prop.name}: char16 needs one character")
        return pywbem.Char16(text)
    if ctype == "boolean":
        value = xs_boolean(text)
        if value is not None:
            return value
        raise CimValueError(f"property {prop.name}: invalid boolean {text.strip()[:20]!r}")
    if ctype in _INT_TYPES:
        t = text.strip()
        if not re.fullmatch(r"[+-]?\d{1,20}", t):
            raise CimValueError(f"property {prop.name}: invalid {ctype} {t[:30]!r}")
        try:
            return pywbem.type_from_name(ctype)(int(t))
        except ValueError as exc:
            raise CimValueError(f"property {prop.name}: {exc}") from None
    if ctype in _REAL_TYPES:
        t = text.strip()
        special = {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}
        try:
            f = special[t] if t in special else float(t)
        except ValueError:
            raise CimValueError(f"property {prop.name}: invalid {ctype} {t[:30]!r}") from None
        if t not in special and t.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise CimValueError(f"property {prop.name}: invalid {ctype} {t[:30]!r}")
        return pywbem.type_from_name(ctype)(f)
    raise CimValueError(f"property {prop.name}: unsupported CIM type {ctype!r}")


def typed_properties(raw: Mapping[str, Any], cls: pywbem.CIMClass) -> dict[str, Any]:
    """Coerce untyped properties to pywbem values using the class (DSP0230 9): integers to
    ``Uint32``/``Sint64``..., reals, ``bool``, ``str``, ``CIMDateTime``, references to
    ``CIMInstanceName``, arrays to lists. Keys take the class spelling. Raises
    :class:`CimValueError` (a ``WSManDecodeError`` and ``ValueError``) on unknown properties or bad values."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        prop = cls.properties.get(name)
        if prop is None:
            raise CimValueError(f"class {cls.classname} has no property {name!r}")
        if prop.is_array:
            if value is None:
                out[prop.name] = None
            else:
                items = value if isinstance(value, list) else [value]
                out[prop.name] = [_coerce(v, prop) for v in items]
        else:
            if isinstance(value, list):
                raise CimValueError(f"property {prop.name} is not an array but has {len(value)} values")
            out[prop.name] = _coerce(value, prop)
    return out


def element_to_instance(elem: _Element, cls: pywbem.CIMClass) -> pywbem.CIMInstance:
    """Typed instance from an instance element (DSP0230 7, 9)."""
    props = typed_properties(element_to_properties(elem), cls)
    inst = pywbem.CIMInstance(cls.classname)
    for name, value in props.items():
        cprop = cls.properties[name]
        inst[name] = pywbem.CIMProperty(name, value, type=cprop.type, is_array=cprop.is_array,
                                        reference_class=cprop.reference_class,
                                        embedded_object=cprop.embedded_object)
    return inst


__all__ = [
    "CimValueError",
    "DatetimeText",
    "EmbeddedObject",
    "class_name_of",
    "element_to_instance",
    "element_to_properties",
    "epr_to_path",
    "format_datetime",
    "instance_to_element",
    "params_element",
    "parse_cim_datetime",
    "path_to_epr",
    "resource_uri_for",
    "typed_properties",
]
