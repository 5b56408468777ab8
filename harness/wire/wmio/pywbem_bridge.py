"""Conversion between pywbem's CIM model and the MS-WMIO object model.

The CIM store (MS-WMOD 2.4) holds ``pywbem.CIMClass`` / ``pywbem.CIMInstance``; WMI over DCOM
(MS-WMI 2.2.4) carries them MS-WMIO encoded. This module maps one to the other:

* ``from_pywbem_class`` / ``from_pywbem_instance``: pywbem -> :class:`WmiClass` / :class:`WmiInstance`;
* ``to_pywbem_class`` / ``to_pywbem_instance``: the reverse.

Mapping rules:

* CIM types (DSP0004 5.2) map one to one onto MS-WMIO 2.2.82 CimType; ``reference`` is
  CIM_REFERENCE (its value the WMI object path text, MS-WMI 2.2.1.1) and an embedded object
  (pywbem ``embedded_object``) is CIM_OBJECT (MS-WMIO 2.2.71, EncodedValue of an embedded object).
* Every property, parameter and method return value carries the ``CIMTYPE`` qualifier, as WMI
  does (``"sint32"``, ``"ref:Class"``, ``"object:Class"``; MS-WMIO 3 samples); it is consumed on the
  way back (it restores ``reference_class`` / ``embedded_object``) and not copied into pywbem.
* Qualifier flavors (DSP0004 5.6.1.4) map onto MS-WMIO 2.2.62 QualifierFlavor: ToInstance ->
  PROPAGATE_TO_INSTANCE, ToSubclass -> PROPAGATE_TO_DERIVED_CLASS, DisableOverride ->
  NOT_OVERRIDABLE, Translatable -> AMENDED, propagated -> ORIGIN_PROPAGATED.
* A property's class origin is the ClassOfOrigin depth (MS-WMIO 2.2.35) in the derivation list;
  a property declared by a superclass is Inherited (2.2.32).
* Methods carry their parameters as ``__PARAMETERS`` signature classes (MS-WMIO 2.2.48, 2.2.49):
  IN parameters in the in-signature, OUT parameters and ``ReturnValue`` in the out-signature, each
  with its ``ID`` qualifier (the parameter position, MS-WMI 2.2.4 method parameter ordering).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pywbem

from .errors import WmioEncodeError
from .model import (
    CIMTYPE_NAMES,
    CimType,
    Qualifier,
    QualifierFlavor,
    Value,
    WmiClass,
    WmiInstance,
    WmiMethod,
    WmiProperty,
)

#: Formats a reference value (a pywbem instance name) as a WMI object path; parses it back.
PathFormatter = Callable[[pywbem.CIMInstanceName], str]
PathParser = Callable[[str], pywbem.CIMInstanceName]

PARAMETERS_CLASS = "__PARAMETERS"
RETURN_VALUE = "ReturnValue"

_BY_NAME: dict[str, CimType] = {name: t for t, name in CIMTYPE_NAMES.items()}
_BY_NAME["reference"] = CimType.REFERENCE


def _default_format(path: pywbem.CIMInstanceName) -> str:
    from harness.cim.paths import format_object_path

    return format_object_path(path)


def _default_parse(text: str) -> pywbem.CIMInstanceName:
    from harness.cim.paths import parse_object_path

    return parse_object_path(text).instance_name()


# --------------------------------------------------------------------------------------- types


def wmi_type_of(cim_type: str, embedded_object: str | None = None) -> CimType:
    """The MS-WMIO 2.2.82 CimType of a pywbem type name (an embedded object is CIM_OBJECT)."""
    if embedded_object:
        return CimType.OBJECT
    try:
        return _BY_NAME[cim_type]
    except KeyError:
        raise WmioEncodeError(f"CIM type {cim_type!r} has no MS-WMIO CimType") from None


def pywbem_type_of(cim_type: CimType) -> str:
    """The pywbem type name of an MS-WMIO CimType (CIM_OBJECT is an embedded-object string)."""
    if cim_type is CimType.OBJECT:
        return "string"
    if cim_type is CimType.REFERENCE:
        return "reference"
    return CIMTYPE_NAMES[cim_type]


def cimtype_qualifier_text(cim_type: str, reference_class: str | None = None,
                           embedded_object: str | None = None, embedded_class: str | None = None) -> str:
    """Text of WMI's CIMTYPE qualifier: ``sint32``, ``ref:Class``, ``object:Class`` (MS-WMIO 3)."""
    if embedded_object:
        return f"object:{embedded_class}" if embedded_class else "object"
    if cim_type == "reference":
        return f"ref:{reference_class}" if reference_class else "ref"
    return cim_type


# ---------------------------------------------------------------------------------- qualifiers


def flavor_of(q: pywbem.CIMQualifier) -> int:
    """MS-WMIO 2.2.62 flavor bits of a pywbem qualifier (DSP0004 5.6.1.4 flavors)."""
    flavor = QualifierFlavor.NONE
    if q.toinstance:
        flavor |= QualifierFlavor.PROPAGATE_TO_INSTANCE
    if q.tosubclass is None or q.tosubclass:
        flavor |= QualifierFlavor.PROPAGATE_TO_DERIVED_CLASS
    if q.overridable is False:
        flavor |= QualifierFlavor.NOT_OVERRIDABLE
    if q.translatable:
        flavor |= QualifierFlavor.AMENDED
    if q.propagated:
        flavor |= QualifierFlavor.ORIGIN_PROPAGATED
    return int(flavor)


def _qualifier_value(value: Any, cim_type: str) -> tuple[CimType, Value, bool]:
    if isinstance(value, list):
        items = [_scalar_to_wmi(v, cim_type) for v in value]
        return wmi_type_of(cim_type), items, True
    return wmi_type_of(cim_type), _scalar_to_wmi(value, cim_type), False


def qualifier_from_pywbem(q: pywbem.CIMQualifier) -> Qualifier:
    """One pywbem qualifier as an MS-WMIO 2.2.60 Qualifier."""
    cim_type = q.type or "string"
    wtype, value, is_array = _qualifier_value(q.value, cim_type)
    return Qualifier(str(q.name), wtype, value, is_array, flavor_of(q))


def qualifier_to_pywbem(q: Qualifier) -> pywbem.CIMQualifier:
    """One MS-WMIO Qualifier as a pywbem qualifier, flavors restored (DSP0004 5.6.1.4)."""
    flavor = QualifierFlavor(q.flavor & 0xF3)
    ptype = pywbem_type_of(q.cim_type)
    value: Any = _value_to_pywbem(q.value, q.cim_type, q.is_array, None)
    return pywbem.CIMQualifier(
        q.name, value, type=ptype,
        propagated=bool(flavor & QualifierFlavor.ORIGIN_PROPAGATED),
        overridable=not bool(flavor & QualifierFlavor.NOT_OVERRIDABLE),
        tosubclass=bool(flavor & QualifierFlavor.PROPAGATE_TO_DERIVED_CLASS),
        toinstance=bool(flavor & QualifierFlavor.PROPAGATE_TO_INSTANCE),
        translatable=bool(flavor & QualifierFlavor.AMENDED),
    )


def _qualifiers_from(quals: Mapping[str, pywbem.CIMQualifier]) -> list[Qualifier]:
    return [qualifier_from_pywbem(q) for q in quals.values() if str(q.name).upper() != "CIMTYPE"]


def _cimtype_qualifier(text: str) -> Qualifier:
    # WMI's CIMTYPE qualifier: ToInstance | ToSubclass (flavor 0x03 in the MS-WMIO 3 samples).
    return Qualifier("CIMTYPE", CimType.STRING, text, False, 0x03)


def _split_cimtype(quals: Sequence[Qualifier]) -> tuple[str | None, list[Qualifier]]:
    text: str | None = None
    rest: list[Qualifier] = []
    for q in quals:
        if q.name.upper() == "CIMTYPE" and isinstance(q.value, str):
            text = q.value
        else:
            rest.append(q)
    return text, rest


def _target_of(cimtype_text: str | None, prefix: str) -> str | None:
    if cimtype_text and cimtype_text.lower().startswith(prefix + ":"):
        return cimtype_text.split(":", 1)[1] or None
    return None


# ------------------------------------------------------------------------------------- values


def _scalar_to_wmi(value: Any, cim_type: str, fmt: PathFormatter = _default_format) -> Any:
    if value is None:
        return None
    if isinstance(value, (pywbem.CIMInstance, pywbem.CIMClass)):
        return _embedded_to_wmi(value)
    if cim_type == "reference" or isinstance(value, pywbem.CIMInstanceName):
        return fmt(value) if isinstance(value, pywbem.CIMInstanceName) else str(value)
    if cim_type == "datetime":
        return str(value)
    if cim_type == "boolean":
        return bool(value)
    if cim_type in ("real32", "real64"):
        return float(value)
    if cim_type in ("string", "char16"):
        return str(value)
    return int(value)


def _embedded_to_wmi(obj: pywbem.CIMInstance | pywbem.CIMClass) -> WmiClass | WmiInstance:
    if isinstance(obj, pywbem.CIMClass):
        return from_pywbem_class(obj)
    return from_pywbem_instance(obj, None)


def _value_to_wmi(value: Any, cim_type: str, fmt: PathFormatter) -> Value:
    if isinstance(value, list):
        return [_scalar_to_wmi(v, cim_type, fmt) for v in value]
    return _scalar_to_wmi(value, cim_type, fmt)  # type: ignore[no-any-return]


def _scalar_to_pywbem(value: Any, cim_type: CimType, parse: PathParser | None) -> Any:
    if value is None:
        return None
    if isinstance(value, WmiClass):
        return to_pywbem_class(value)
    if isinstance(value, WmiInstance):
        return to_pywbem_instance(value)
    if cim_type is CimType.REFERENCE:
        return (parse or _default_parse)(str(value))
    if cim_type is CimType.DATETIME:
        return pywbem.CIMDateTime(str(value))
    if cim_type is CimType.CHAR16:
        return pywbem.Char16(value)
    if cim_type in (CimType.STRING, CimType.OBJECT, CimType.BOOLEAN, CimType.REAL32, CimType.REAL64):
        if cim_type is CimType.REAL32:
            return pywbem.Real32(value)
        if cim_type is CimType.REAL64:
            return pywbem.Real64(value)
        return value
    return pywbem.type_from_name(CIMTYPE_NAMES[cim_type])(value)


def _value_to_pywbem(value: Value, cim_type: CimType, is_array: bool, parse: PathParser | None) -> Any:
    if is_array and isinstance(value, list):
        return [_scalar_to_pywbem(v, cim_type, parse) for v in value]
    return _scalar_to_pywbem(value, cim_type, parse)


def _embedded_class_of(value: Any) -> str | None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, (pywbem.CIMInstance, pywbem.CIMClass)):
            return str(item.classname)
    return None


# ----------------------------------------------------------------------------------- classes


def _depth(chain: Sequence[str], origin: str | None) -> int:
    """ClassOfOrigin (MS-WMIO 2.2.35): depth of ``origin`` in ``chain`` (class first, root last)."""
    if not origin:
        return len(chain) - 1
    low = [c.lower() for c in chain]
    try:
        return len(chain) - 1 - low.index(origin.lower())
    except ValueError:
        return len(chain) - 1


def _property_from(prop: pywbem.CIMProperty, chain: Sequence[str], fmt: PathFormatter) -> WmiProperty:
    wtype = wmi_type_of(prop.type, prop.embedded_object)
    emb_class = _embedded_class_of(prop.value) if prop.embedded_object else None
    quals = [_cimtype_qualifier(cimtype_qualifier_text(prop.type, prop.reference_class,
                                                       prop.embedded_object, emb_class))]
    quals += _qualifiers_from(prop.qualifiers)
    origin = prop.class_origin or chain[0]
    inherited = origin.lower() != chain[0].lower()
    return WmiProperty(
        name=str(prop.name), cim_type=wtype, is_array=bool(prop.is_array), qualifiers=quals,
        default=_value_to_wmi(prop.value, prop.type, fmt), inherited=inherited,
        class_of_origin=_depth(chain, origin), default_inherited=False,
    )


def _signature(params: Sequence[tuple[str, str, bool, str | None, str | None, Mapping[str, Any], int]]
               ) -> WmiClass | None:
    if not params:
        return None
    props: list[WmiProperty] = []
    for name, ptype, is_array, ref_class, emb, quals, position in params:
        wquals = [_cimtype_qualifier(cimtype_qualifier_text(ptype, ref_class, emb))]
        wquals += _qualifiers_from(quals)
        if not any(q.name.upper() == "ID" for q in wquals) and name != RETURN_VALUE:
            wquals.append(Qualifier("ID", CimType.SINT32, position, False, 0x13))
        props.append(WmiProperty(name, wmi_type_of(ptype, emb), is_array, wquals))
    return WmiClass(PARAMETERS_CLASS, properties=props)


def _has_qualifier(quals: Mapping[str, pywbem.CIMQualifier], name: str) -> bool:
    q = quals.get(name)
    return q is not None and bool(q.value)


def _method_from(meth: pywbem.CIMMethod, chain: Sequence[str]) -> WmiMethod:
    ins: list[tuple[str, str, bool, str | None, str | None, Mapping[str, Any], int]] = []
    outs: list[tuple[str, str, bool, str | None, str | None, Mapping[str, Any], int]] = []
    for position, p in enumerate(meth.parameters.values()):
        entry = (str(p.name), p.type, bool(p.is_array), p.reference_class, p.embedded_object, p.qualifiers, position)
        is_out = _has_qualifier(p.qualifiers, "Out")
        is_in = _has_qualifier(p.qualifiers, "In") or "In" not in p.qualifiers
        if is_in:
            ins.append(entry)
        if is_out:
            outs.append(entry)
    if meth.return_type:
        outs.append((RETURN_VALUE, meth.return_type, False, None, None, {}, -1))
    origin = meth.class_origin or chain[0]
    return WmiMethod(
        name=str(meth.name), qualifiers=_qualifiers_from(meth.qualifiers),
        in_signature=_signature(ins), out_signature=_signature(outs), flags=0,
        origin=_depth(chain, origin),
    )


def from_pywbem_class(cls: pywbem.CIMClass, derivation: Sequence[str] | None = None,
                      *, format_path: PathFormatter = _default_format) -> WmiClass:
    """A pywbem class as an MS-WMIO class (ClassAndMethodsPart, MS-WMIO 2.2.14).

    ``derivation`` is the superclass chain, immediate superclass first (MS-WMIO 2.2.17); by default
    ``[cls.superclass]`` when the class has one. Reference defaults are formatted by ``format_path``.
    """
    chain_up = list(derivation) if derivation is not None else ([cls.superclass] if cls.superclass else [])
    chain = [str(cls.classname), *chain_up]
    return WmiClass(
        name=str(cls.classname),
        derivation=chain_up,
        qualifiers=_qualifiers_from(cls.qualifiers),
        properties=[_property_from(p, chain, format_path) for p in cls.properties.values()],
        methods=[_method_from(m, chain) for m in cls.methods.values()],
    )


def _params_to_pywbem(sig: WmiClass | None, direction: str,
                      into: dict[str, pywbem.CIMParameter]) -> str | None:
    """Merge one signature's parameters into ``into``; returns the ReturnValue type if present."""
    return_type: str | None = None
    if sig is None:
        return None
    for prop in sig.properties:
        text, quals = _split_cimtype(prop.qualifiers)
        if prop.name == RETURN_VALUE:
            return_type = pywbem_type_of(prop.cim_type)
            continue
        existing = into.get(prop.name)
        if existing is not None:
            existing.qualifiers.setdefault(direction, pywbem.CIMQualifier(direction, True, type="boolean"))
            continue
        pquals = {q.name: qualifier_to_pywbem(q) for q in quals if q.name.upper() != "ID"}
        pquals.setdefault(direction, pywbem.CIMQualifier(direction, True, type="boolean"))
        into[prop.name] = pywbem.CIMParameter(
            prop.name, pywbem_type_of(prop.cim_type), is_array=prop.is_array,
            reference_class=_target_of(text, "ref"),
            embedded_object="object" if prop.cim_type is CimType.OBJECT else None,
            qualifiers=pquals,
        )
    return return_type


def _param_order(sig: WmiClass | None) -> dict[str, int]:
    order: dict[str, int] = {}
    if sig is None:
        return order
    for prop in sig.properties:
        for q in prop.qualifiers:
            if q.name.upper() == "ID" and isinstance(q.value, int) and not isinstance(q.value, bool):
                order[prop.name] = q.value
    return order


def to_pywbem_class(cls: WmiClass, *, parse_path: PathParser | None = None) -> pywbem.CIMClass:
    """An MS-WMIO class as a pywbem class (qualifier flavors, class origins and methods restored)."""
    chain = [cls.name, *cls.derivation]
    props = []
    for prop in cls.properties:
        text, quals = _split_cimtype(prop.qualifiers)
        depth = prop.class_of_origin
        index = len(chain) - 1 - depth
        origin = chain[index] if 0 <= index < len(chain) else cls.name
        props.append(pywbem.CIMProperty(
            prop.name, _value_to_pywbem(prop.default, prop.cim_type, prop.is_array, parse_path),
            type=pywbem_type_of(prop.cim_type), is_array=prop.is_array,
            reference_class=_target_of(text, "ref"),
            embedded_object="object" if prop.cim_type is CimType.OBJECT else None,
            class_origin=origin, propagated=prop.inherited,
            qualifiers={q.name: qualifier_to_pywbem(q) for q in quals},
        ))
    methods = []
    for meth in cls.methods:
        params: dict[str, pywbem.CIMParameter] = {}
        _params_to_pywbem(meth.in_signature, "In", params)
        return_type = _params_to_pywbem(meth.out_signature, "Out", params)
        order = {**_param_order(meth.out_signature), **_param_order(meth.in_signature)}
        ordered = sorted(params.values(), key=lambda p: order.get(str(p.name), len(order)))
        index = len(chain) - 1 - meth.origin
        methods.append(pywbem.CIMMethod(
            meth.name, return_type=return_type, parameters=ordered,
            class_origin=chain[index] if 0 <= index < len(chain) else cls.name,
            propagated=meth.origin != len(chain) - 1,
            qualifiers={q.name: qualifier_to_pywbem(q) for q in meth.qualifiers},
        ))
    return pywbem.CIMClass(
        cls.name, superclass=cls.superclass, properties=props, methods=methods,
        qualifiers={q.name: qualifier_to_pywbem(q) for q in cls.qualifiers},
    )


# --------------------------------------------------------------------------------- instances


def from_pywbem_instance(inst: pywbem.CIMInstance, cls: pywbem.CIMClass | WmiClass | None,
                         derivation: Sequence[str] | None = None,
                         *, format_path: PathFormatter = _default_format) -> WmiInstance:
    """A pywbem instance as an MS-WMIO instance (InstanceType, MS-WMIO 2.2.53).

    ``cls`` is the instance's class (pywbem or already converted); without it a class is derived
    from the instance's own properties. Properties the instance sets go into ``values``; the rest
    take the class defaults (NdTable, MS-WMIO 2.2.27).
    """
    if isinstance(cls, WmiClass):
        wcls = cls
    elif cls is not None:
        wcls = from_pywbem_class(cls, derivation, format_path=format_path)
    else:
        synthetic = pywbem.CIMClass(str(inst.classname), properties=[
            pywbem.CIMProperty(p.name, None, type=p.type, is_array=p.is_array,
                               reference_class=p.reference_class, embedded_object=p.embedded_object)
            for p in inst.properties.values()])
        wcls = from_pywbem_class(synthetic, derivation, format_path=format_path)
    values: dict[str, Value] = {}
    for prop in inst.properties.values():
        try:
            target = wcls.property(str(prop.name))
        except KeyError:
            raise WmioEncodeError(f"property {prop.name} is not declared by class {wcls.name}") from None
        values[target.name] = _value_to_wmi(prop.value, prop.type, format_path)
    return WmiInstance(
        class_=wcls, values=values,
        qualifiers=_qualifiers_from(inst.qualifiers),
    )


def to_pywbem_instance(inst: WmiInstance, *, parse_path: PathParser | None = None,
                       include_defaults: bool = True) -> pywbem.CIMInstance:
    """An MS-WMIO instance as a pywbem instance; unset properties take the class default
    (``include_defaults``; MS-WMIO 2.2.27) or are left out."""
    props = []
    for prop in inst.class_.properties:
        if prop.name not in inst.values and not include_defaults:
            continue
        value = inst.get(prop.name)
        text, _ = _split_cimtype(prop.qualifiers)
        props.append(pywbem.CIMProperty(
            prop.name, _value_to_pywbem(value, prop.cim_type, prop.is_array, parse_path),
            type=pywbem_type_of(prop.cim_type), is_array=prop.is_array,
            reference_class=_target_of(text, "ref"),
            embedded_object="object" if prop.cim_type is CimType.OBJECT else None,
        ))
    return pywbem.CIMInstance(
        inst.class_name, properties=props,
        qualifiers={q.name: qualifier_to_pywbem(q) for q in inst.qualifiers},
    )
