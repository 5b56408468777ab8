"""pywbem <-> MS-WMIO model bridge (harness.wire.wmio.pywbem_bridge), through the real codec."""

from __future__ import annotations

import pytest
import pywbem

from harness.cim.mof import default_store
from harness.wire.wmio import (
    CimType,
    QualifierFlavor,
    WmiClass,
    WmiInstance,
    WmioEncodeError,
    decode_encoding_unit,
    encode_encoding_unit,
)
from harness.wire.wmio.pywbem_bridge import (
    from_pywbem_class,
    from_pywbem_instance,
    to_pywbem_class,
    to_pywbem_instance,
)

ALL_TYPES = [
    ("U8", "uint8", 200), ("S8", "sint8", -5), ("U16", "uint16", 65000), ("S16", "sint16", -300),
    ("U32", "uint32", 4_000_000_000), ("S32", "sint32", -70000), ("U64", "uint64", 2**63 + 5),
    ("S64", "sint64", -(2**40)), ("R32", "real32", 1.5), ("R64", "real64", -2.25), ("B", "boolean", True),
    ("S", "string", "héllo"), ("C", "char16", "x"), ("D", "datetime", "20240102030405.123456+060"),
]


def _typed(cim_type: str, value: object) -> object:
    if cim_type == "datetime":
        return pywbem.CIMDateTime(str(value))
    if cim_type in ("string", "boolean"):
        return value
    if cim_type == "char16":
        return pywbem.Char16(str(value))
    return pywbem.type_from_name(cim_type)(value)


def _sample_class() -> pywbem.CIMClass:
    props = [pywbem.CIMProperty(n, None, type=t, class_origin="Sample") for n, t, _ in ALL_TYPES]
    props += [pywbem.CIMProperty(n + "A", None, type=t, is_array=True, class_origin="Sample") for n, t, _ in ALL_TYPES]
    props.append(pywbem.CIMProperty("Id", None, type="string", class_origin="Base", propagated=True,
                                    qualifiers={"Key": pywbem.CIMQualifier("Key", True, overridable=False,
                                                                           tosubclass=True)}))
    props.append(pywbem.CIMProperty("Ref", None, type="reference", reference_class="Base", class_origin="Sample"))
    props.append(pywbem.CIMProperty("Def", "dflt", type="string", class_origin="Sample"))
    method = pywbem.CIMMethod("Go", return_type="uint32", class_origin="Sample", parameters=[
        pywbem.CIMParameter("Speed", "uint32", qualifiers={"In": pywbem.CIMQualifier("In", True)}),
        pywbem.CIMParameter("Names", "string", is_array=True,
                            qualifiers={"In": pywbem.CIMQualifier("In", False),
                                        "Out": pywbem.CIMQualifier("Out", True)}),
    ], qualifiers={"Static": pywbem.CIMQualifier("Static", True)})
    return pywbem.CIMClass("Sample", superclass="Base", properties=props, methods=[method], qualifiers={
        "Description": pywbem.CIMQualifier("Description", "a sample", translatable=True, toinstance=True),
        "Dynamic": pywbem.CIMQualifier("Dynamic", True, tosubclass=False),
    })


def test_class_round_trip_through_codec() -> None:
    cls = _sample_class()
    wcls = from_pywbem_class(cls, ["Base"])
    decoded = decode_encoding_unit(encode_encoding_unit(wcls))
    assert isinstance(decoded, WmiClass) and decoded == wcls
    back = to_pywbem_class(decoded)
    assert back.classname == "Sample" and back.superclass == "Base"
    assert list(back.properties) == list(cls.properties)
    for name, prop in cls.properties.items():
        got = back.properties[name]
        assert (got.type, got.is_array, got.class_origin) == (prop.type, prop.is_array, prop.class_origin), name
    assert back.properties["Ref"].reference_class == "Base"
    assert back.properties["Def"].value == "dflt"
    assert back.properties["Id"].propagated is True
    key = back.properties["Id"].qualifiers["Key"]
    assert key.value is True and key.overridable is False and key.tosubclass is True
    desc = back.qualifiers["Description"]
    assert desc.translatable is True and desc.toinstance is True
    assert back.qualifiers["Dynamic"].tosubclass is False
    go = back.methods["Go"]
    assert go.return_type == "uint32"
    assert list(go.parameters) == ["Speed", "Names"]
    assert go.parameters["Names"].is_array and go.parameters["Names"].qualifiers["Out"].value is True
    assert back.qualifiers["Description"].value == "a sample"


def test_cimtype_and_flavor_encoding() -> None:
    wcls = from_pywbem_class(_sample_class(), ["Base"])
    ref = wcls.property("Ref")
    assert ref.cim_type is CimType.REFERENCE
    assert [q.value for q in ref.qualifiers if q.name == "CIMTYPE"] == ["ref:Base"]
    key = next(q for q in wcls.property("Id").qualifiers if q.name == "Key")
    assert key.flavor & QualifierFlavor.NOT_OVERRIDABLE
    assert wcls.property("Id").inherited and wcls.property("Id").class_of_origin == 0
    assert wcls.property("U8").class_of_origin == 1
    go = wcls.methods[0]
    assert go.in_signature is not None and [p.name for p in go.in_signature.properties] == ["Speed"]
    assert go.out_signature is not None
    assert [p.name for p in go.out_signature.properties] == ["Names", "ReturnValue"]


def test_instance_all_types_and_arrays() -> None:
    cls = _sample_class()
    props: dict[str, object] = {n: _typed(t, v) for n, t, v in ALL_TYPES}
    props.update({n + "A": [_typed(t, v), _typed(t, v)] for n, t, v in ALL_TYPES})
    inst = pywbem.CIMInstance("Sample", properties={"Id": "a"})
    for name, value in props.items():
        prop = cls.properties[name]
        inst.properties[name] = pywbem.CIMProperty(name, value, type=prop.type, is_array=prop.is_array)
    inst.properties["Ref"] = pywbem.CIMProperty(
        "Ref", pywbem.CIMInstanceName("Base", {"Id": "x"}), type="reference")
    winst = from_pywbem_instance(inst, cls, ["Base"])
    decoded = decode_encoding_unit(encode_encoding_unit(winst))
    assert isinstance(decoded, WmiInstance) and decoded.values == winst.values
    back = to_pywbem_instance(decoded)
    for name, value in props.items():
        got = back.properties[name].value
        if isinstance(value, pywbem.CIMDateTime):
            assert str(got) == str(value)
        elif isinstance(value, list) and value and isinstance(value[0], pywbem.CIMDateTime):
            assert [str(v) for v in got] == [str(v) for v in value]
        else:
            assert got == value, name
    assert back.properties["Def"].value == "dflt"  # class default (NdTable)
    assert back.properties["Ref"].value.keybindings["Id"] == "x"
    assert back.properties["Ref"].value.classname == "Base"
    assert back.properties["S16A"].value[0] == -300 and back.properties["S16A"].type == "sint16"


def test_embedded_instance_and_null() -> None:
    inner = pywbem.CIMInstance("Inner", properties={"N": pywbem.Uint32(7)})
    outer = pywbem.CIMInstance("Outer", properties={
        "E": pywbem.CIMProperty("E", inner, type="string", embedded_object="instance"),
        "Z": pywbem.CIMProperty("Z", None, type="uint32"),
    })
    winst = from_pywbem_instance(outer, None)
    assert winst.class_.property("E").cim_type is CimType.OBJECT
    decoded = decode_encoding_unit(encode_encoding_unit(winst))
    assert isinstance(decoded, WmiInstance)
    back = to_pywbem_instance(decoded)
    emb = back.properties["E"].value
    assert isinstance(emb, pywbem.CIMInstance) and emb.classname == "Inner" and emb["N"] == 7
    assert back.properties["Z"].value is None


def test_unknown_property_is_typed_error() -> None:
    cls = pywbem.CIMClass("K", properties=[pywbem.CIMProperty("A", None, type="string")])
    with pytest.raises(WmioEncodeError):
        from_pywbem_instance(pywbem.CIMInstance("K", properties={"B": "x"}), cls)


def test_store_classes_encode() -> None:
    store = default_store()
    ns = "root/cimv2"
    names = store.class_names(ns)
    assert names
    for name in names:
        cls = store.get_class(ns, name)
        chain = store.superclass_chain(ns, name)
        wcls = from_pywbem_class(cls, chain[1:] if chain and chain[0].lower() == name.lower() else chain)
        assert decode_encoding_unit(encode_encoding_unit(wcls)) == wcls
        for inst in store.enumerate_instances(ns, name, deep=False)[:3]:
            winst = from_pywbem_instance(inst, wcls)
            back = to_pywbem_instance(decode_encoding_unit(encode_encoding_unit(winst)))  # type: ignore[arg-type]
            assert set(back.properties) >= set(inst.properties)
