"""Independent oracle: impacket's WMIO decoder reads every blob we encode to the same names, types
and values.

impacket quirks normalised here (never in our codec):

* booleans come back as the strings 'True'/'False' (scalars, qualifiers) or raw 0xFFFF/0 (arrays);
* char16 values come back as integer code units;
* embedded objects come back as undecoded ENCODING_UNIT structures (decoded here recursively);
* an inline qualifier value 0xFFFFFFFF is reported as None;
* class default values are stringified and only reported when the raw slot is neither 0 nor
  0xFFFFFFFF, so only non-NULL string and positive integer defaults are compared;
* the NdTable "default" bit is ignored for instance values, so values an instance leaves at the class
  default are not compared; NULL values of inherited properties show the class default instead;
* constructs impacket cannot decode are not generated (see harness.fuzz.wmio_strategies, oracle=True):
  datetime/reference arrays (read as raw HeapRefs), qualifier arrays of non-4-octet element types
  (value sized by element type), per-property instance qualifier sets (InstPropQualSetFlag 2 raises);
  non-NULL real32/real64 class defaults, scalar real qualifiers and instance values (impacket
  uses the float as a HeapRef and crashes);
  instance-level qualifiers are not exposed by impacket and are not compared.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from harness.fuzz.wmio_strategies import classes, instances
from harness.wire.wmio import (
    CimType,
    Qualifier,
    WmiClass,
    WmiInstance,
    encode_encoding_unit,
)
from harness.wire.wmio.model import type_code

wmi = pytest.importorskip("impacket.dcerpc.v5.dcom.wmi")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse(blob: bytes) -> Any:
    unit = wmi.ENCODING_UNIT(blob)
    block = unit["ObjectBlock"]
    block.parseObject()
    return block


def _norm(cim_type: CimType, is_array: bool, value: Any) -> Any:
    """impacket's representation -> ours."""
    if value is None:
        return None
    if is_array:
        return [_norm(cim_type, False, v) for v in value]
    if cim_type is CimType.BOOLEAN:
        return {"True": True, "False": False}.get(value, bool(value)) if isinstance(value, str) else bool(value)
    if cim_type is CimType.CHAR16:
        return chr(value)
    if cim_type is CimType.OBJECT:
        block = value["ObjectBlock"]
        block.parseObject()
        return _summary_imp(block)
    return value


def _summary_ours(obj: WmiClass | WmiInstance) -> Any:
    if isinstance(obj, WmiInstance):
        return ("instance", obj.class_.name, [p.name for p in obj.class_.properties])
    return ("class", obj.name)


def _ours_value(cim_type: CimType, is_array: bool, value: Any) -> Any:
    if value is None:
        return None
    if is_array:
        return [_ours_value(cim_type, False, v) for v in value]
    if cim_type is CimType.OBJECT:
        return _summary_ours(value)
    return value


def _summary_imp(block: Any) -> Any:
    """Embedded objects are compared by kind, class name and property names (their values are
    covered by the top-level comparisons)."""
    if block.isInstance():
        cur = block.ctCurrent
        return ("instance", cur["name"].split(" : ")[0], list(cur["properties"]))
    return ("class", block.ctCurrent["name"].split(" : ")[0])


def _quals(quals: list[Qualifier]) -> dict[str, Any]:
    return {q.name: q.value for q in quals}


def _imp_quals(imp: dict[str, Any], ours: list[Qualifier]) -> dict[str, Any]:
    types = {q.name: q for q in ours}
    out = {}
    for name, v in imp.items():
        q = types.get(name)
        if q is None:
            out[name] = v
        elif v is None and q.value in (0xFFFFFFFF, -1):
            out[name] = q.value  # impacket treats an inline 0xFFFFFFFF as "no value"
        else:
            out[name] = _norm(q.cim_type, q.is_array, v)
    return out


def _check_class_part(cls: WmiClass, cur: Any) -> None:
    assert cur["name"].split(" : ")[0] == cls.name
    assert cur["name"].count(" : ") == len(cls.derivation)
    assert _imp_quals(cur["qualifiers"], cls.qualifiers) == _quals(cls.qualifiers)
    imp_props = cur["properties"]
    assert list(imp_props) == [p.name for p in cls.properties]  # declaration order
    for prop in cls.properties:
        got = imp_props[prop.name]
        assert got["type"] == type_code(prop.cim_type, prop.is_array, prop.inherited)
        assert got["order"] == cls.properties.index(prop)
        assert _imp_quals(got["qualifiers"], prop.qualifiers) == _quals(prop.qualifiers)
        default = prop.default
        if prop.is_array or default is None or isinstance(default, bool):
            continue
        if prop.cim_type in (CimType.STRING, CimType.DATETIME, CimType.REFERENCE):
            assert got["value"] == default
        elif isinstance(default, int) and 0 < default < 0xFFFFFFFF and prop.cim_type is not CimType.CHAR16:
            assert got["value"] == str(default)


@SETTINGS
@given(classes(1, oracle=True))
def test_impacket_decodes_our_classes(cls: WmiClass) -> None:
    block = _parse(encode_encoding_unit(cls))
    assert not block.isInstance()
    _check_class_part(cls, block.ctCurrent)
    if cls.parent is not None:
        assert block.ctParent["name"].split(" : ")[0] == cls.parent.name
    methods = block.ctCurrent["methods"]
    assert list(methods) == [m.name for m in cls.methods]
    for method in cls.methods:
        got = methods[method.name]
        assert got["origin"] == method.origin
        assert _imp_quals(got.get("qualifiers", {}), method.qualifiers) == _quals(method.qualifiers)
        for sig, key in ((method.in_signature, "InParams"), (method.out_signature, "OutParams")):
            if sig is not None and sig.properties:
                assert {n: p["type"] for n, p in got[key].items()} == {
                    p.name: type_code(p.cim_type, p.is_array, p.inherited) for p in sig.properties
                }


@SETTINGS
@given(instances(1, oracle=True))
def test_impacket_decodes_our_instances(inst: WmiInstance) -> None:
    block = _parse(encode_encoding_unit(inst))
    assert block.isInstance()
    cur = block.ctCurrent
    _check_class_part_names = (cur["name"].split(" : ")[0], list(cur["properties"]))
    assert _check_class_part_names == (inst.class_.name, [p.name for p in inst.class_.properties])
    for prop in inst.class_.properties:
        if prop.name not in inst.values:
            continue  # class default: impacket ignores the NdTable default bit
        expected = _ours_value(prop.cim_type, prop.is_array, inst.values[prop.name])
        if expected is None and prop.inherited:
            continue  # impacket shows the class default for NULL inherited values
        got = cur["properties"][prop.name]
        assert got["type"] == type_code(prop.cim_type, prop.is_array, prop.inherited)
        assert _norm(prop.cim_type, prop.is_array, got["value"]) == expected, prop.name


def test_all_scalar_and_array_types_compared() -> None:
    """A fixed instance with every CIM type, scalar and array, set to non-NULL values."""
    samples: dict[CimType, Any] = {
        CimType.SINT8: -5, CimType.UINT8: 250, CimType.SINT16: -300, CimType.UINT16: 60000,
        CimType.SINT32: -70000, CimType.UINT32: 4000000000, CimType.SINT64: -(2**40), CimType.UINT64: 2**63,
        CimType.REAL32: 1.5, CimType.REAL64: -2.25, CimType.BOOLEAN: True, CimType.CHAR16: "\u20ac",
        CimType.STRING: "Hello \u20ac", CimType.DATETIME: "20240229123456.123456+060",
        CimType.REFERENCE: r'\\SRV\root\cimv2:Win32_Service.Name="WinRM"',
        CimType.OBJECT: WmiInstance(WmiClass("Emb", properties=[]), {}),
    }
    from harness.wire.wmio import WmiProperty

    props = []
    values: dict[str, Any] = {}
    for cim_type, sample in samples.items():
        if cim_type not in (CimType.REAL32, CimType.REAL64):  # impacket crashes on scalar reals
            props.append(WmiProperty(f"S_{cim_type.name}", cim_type))
            values[f"S_{cim_type.name}"] = sample
        if cim_type not in (CimType.DATETIME, CimType.REFERENCE):
            props.append(WmiProperty(f"A_{cim_type.name}", cim_type, is_array=True))
            values[f"A_{cim_type.name}"] = [sample, sample]
    inst = WmiInstance(WmiClass("AllTypes", properties=props), values)
    block = _parse(encode_encoding_unit(inst))
    got = block.ctCurrent["properties"]
    assert len(got) == len(props)
    for prop in props:
        norm = _norm(prop.cim_type, prop.is_array, got[prop.name]["value"])
        assert norm == _ours_value(prop.cim_type, prop.is_array, values[prop.name]), prop.name
