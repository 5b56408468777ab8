"""CIM instance <-> XML (DSP0230, MS-WSMV 2.2.4.x): every CIM type round trips."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
import pywbem
from lxml import etree

from harness.wire.wsman.cimxml import (
    CimValueError,
    DatetimeText,
    EmbeddedObject,
    class_name_of,
    element_to_instance,
    element_to_properties,
    epr_to_path,
    instance_to_element,
    parse_cim_datetime,
    path_to_epr,
    typed_properties,
)
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.ns import NS_CIM, NS_XSI, RESOURCE_CIM_PREFIX, RESOURCE_WMI_PREFIX

URI = RESOURCE_WMI_PREFIX + "root/cimv2/WMH_All"

TYPES: list[tuple[str, Any]] = [
    ("uint8", pywbem.Uint8(255)), ("sint8", pywbem.Sint8(-128)), ("uint16", pywbem.Uint16(65535)),
    ("sint16", pywbem.Sint16(-5)), ("uint32", pywbem.Uint32(4294967295)), ("sint32", pywbem.Sint32(-7)),
    ("uint64", pywbem.Uint64(2**64 - 1)), ("sint64", pywbem.Sint64(-(2**63))), ("real32", pywbem.Real32(1.5)),
    ("real64", pywbem.Real64(-2.25e100)), ("boolean", True), ("string", "héllo <&> \"x\""),
    ("char16", pywbem.Char16("Z")),
    ("datetime", pywbem.CIMDateTime("20231001120000.123456+060")),
    ("datetime", pywbem.CIMDateTime("20231001120000.000000+000")),
    ("datetime", pywbem.CIMDateTime("20231001120000.000000-300")),
    ("datetime", pywbem.CIMDateTime("00000001020304.000005:000")),
    ("reference", pywbem.CIMInstanceName("Win32_Foo", {"K": "v", "N": "2"}, namespace="root/cimv2")),
]


def make_class() -> pywbem.CIMClass:
    cls = pywbem.CIMClass("WMH_All")
    for i, (t, _v) in enumerate(TYPES):
        cls.properties[f"P{i}"] = pywbem.CIMProperty(f"P{i}", None, type=t,
                                                     reference_class="Win32_Foo" if t == "reference" else None)
        if t != "reference":
            cls.properties[f"A{i}"] = pywbem.CIMProperty(f"A{i}", None, type=t, is_array=True)
    cls.properties["Nil"] = pywbem.CIMProperty("Nil", None, type="string")
    cls.properties["NilArr"] = pywbem.CIMProperty("NilArr", None, type="uint32", is_array=True)
    cls.properties["Emb"] = pywbem.CIMProperty("Emb", None, type="string", embedded_object="instance")
    return cls


def make_instance(cls: pywbem.CIMClass) -> pywbem.CIMInstance:
    inst = pywbem.CIMInstance("WMH_All")
    for i, (t, v) in enumerate(TYPES):
        inst[f"P{i}"] = pywbem.CIMProperty(f"P{i}", v, type=t)
        if t != "reference":
            inst[f"A{i}"] = pywbem.CIMProperty(f"A{i}", [v, v], type=t, is_array=True)
    inst["Nil"] = pywbem.CIMProperty("Nil", None, type="string")
    inst["NilArr"] = pywbem.CIMProperty("NilArr", None, type="uint32", is_array=True)
    inst["Emb"] = pywbem.CIMProperty("Emb", pywbem.CIMInstance("Inner", properties={"X": "1", "Y": ["a", "b"]}),
                                     type="string", embedded_object="instance")
    return inst


def test_every_cim_type_round_trips() -> None:
    cls = make_class()
    inst = make_instance(cls)
    elem = instance_to_element(inst, URI, cls)
    assert class_name_of(elem) == "WMH_All"
    back = element_to_instance(etree.fromstring(etree.tostring(elem)), cls)
    for name, prop in inst.properties.items():
        got = back[name]
        if name == "Emb":
            assert isinstance(got, pywbem.CIMInstance) and got.classname == "Inner"
            assert got["X"] == "1" and got["Y"] == ["a", "b"]
        elif isinstance(prop.value, pywbem.CIMInstanceName):
            assert got.classname == prop.value.classname
            assert dict(got.keybindings) == dict(prop.value.keybindings)
            assert got.namespace == "root/cimv2"
        else:
            assert got == prop.value, name
            if prop.value is not None and not isinstance(prop.value, bool | str | pywbem.CIMDateTime):
                vals = got if isinstance(got, list) else [got]
                exp = prop.value if isinstance(prop.value, list) else [prop.value]
                assert [type(v) for v in vals] == [type(v) for v in exp]


def test_windows_layout() -> None:
    inst = pywbem.CIMInstance("Win32_Service", properties={"Name": "Spooler", "Started": True})
    inst["Desc"] = pywbem.CIMProperty("Desc", None, type="string")
    inst["When"] = pywbem.CIMProperty("When", pywbem.CIMDateTime("20231001120000.000000+000"))
    uri = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"
    e = instance_to_element(inst, uri)
    assert e.tag == "{" + uri + "}Win32_Service"
    assert e.get("{" + NS_XSI + "}type") == "p:Win32_Service_Type"
    assert e.findtext("{" + uri + "}Started") == "true"
    assert e.xpath("string(*[local-name()='Desc']/@xsi:nil)", namespaces={"xsi": NS_XSI}) == "true"
    assert e.findtext("{" + uri + "}When/{" + NS_CIM + "}Datetime") == "2023-10-01T12:00:00Z"


def test_interval_is_xs_duration() -> None:
    inst = pywbem.CIMInstance("X", properties={"I": pywbem.CIMDateTime("00000001020304.500000:000")})
    e = instance_to_element(inst, "urn:x")
    assert e.findtext("{urn:x}I/{" + NS_CIM + "}Interval") == "P1DT2H3M4.500000S"
    raw = element_to_properties(e)
    assert isinstance(raw["I"], DatetimeText) and raw["I"].kind == "Interval"


def test_untyped_properties() -> None:
    cls = make_class()
    raw = element_to_properties(instance_to_element(make_instance(cls), URI, cls))
    assert raw["Nil"] is None and raw["NilArr"] is None
    assert raw["A10"] == ["true", "true"]
    assert isinstance(raw["P17"], EndpointReference)
    assert raw["P17"].resource_uri == RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Foo"
    assert isinstance(raw["Emb"], EmbeddedObject) and raw["Emb"].classname == "Inner"


def test_single_element_of_array_property_becomes_list() -> None:
    cls = make_class()
    assert typed_properties({"A4": "7"}, cls) == {"A4": [pywbem.Uint32(7)]}


@pytest.mark.parametrize(("name", "value"), [
    ("P0", "256"), ("P0", "-1"), ("P1", "x"), ("P10", "yes"), ("P12", "ab"), ("P9", "1e"),
    ("P13", "2023-13-01T00:00:00Z"),
    ("P13", "garbage"), ("P16", "-P1D"), ("Nope", "1"), ("P2", ["1", "2"]), ("P17", "text"), ("P9", "inf"),
])
def test_typed_properties_rejects_bad_values(name: str, value: Any) -> None:
    with pytest.raises(CimValueError) as ei:
        typed_properties({name: value}, make_class())
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, WSManDecodeError)


def test_real_specials() -> None:
    cls = make_class()
    out = typed_properties({"P9": "INF", "A9": ["-INF", "NaN"]}, cls)
    assert out["P9"] == math.inf and out["A9"][0] == -math.inf and math.isnan(out["A9"][1])
    e = instance_to_element(pywbem.CIMInstance("WMH_All", properties={"P9": pywbem.Real64(math.inf)}), URI)
    assert element_to_properties(e)["P9"] == "INF"


def test_parse_cim_datetime_forms() -> None:
    assert parse_cim_datetime("2023-10-01T12:00:00.5+02:00").datetime == dt.datetime(
        2023, 10, 1, 12, 0, 0, 500000, tzinfo=pywbem.MinutesFromUTC(120))
    assert parse_cim_datetime("2023-10-01", "Date").datetime.date() == dt.date(2023, 10, 1)
    assert str(parse_cim_datetime("20231001******.******+000", "CIMDateTime")).startswith("20231001")
    assert parse_cim_datetime("PT90S", "Interval").timedelta == dt.timedelta(seconds=90)


def test_dmtf_reference_carries_cimnamespace_selector() -> None:
    path = pywbem.CIMInstanceName("CIM_Foo", {"Id": "1"}, namespace="root/interop")
    epr = path_to_epr(path, like=RESOURCE_CIM_PREFIX + "CIM_Bar")
    assert epr.resource_uri == RESOURCE_CIM_PREFIX + "CIM_Foo"
    assert epr.selectors["__cimnamespace"] == "root/interop"
    assert epr_to_path(epr) == path


def test_nested_reference_key() -> None:
    inner = pywbem.CIMInstanceName("Win32_A", {"K": "1"}, namespace="root/cimv2")
    outer = pywbem.CIMInstanceName("Win32_B", {"Ref": inner}, namespace="root/cimv2")
    assert epr_to_path(path_to_epr(outer)) == outer
