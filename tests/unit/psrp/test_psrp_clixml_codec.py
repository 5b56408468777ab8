"""MS-PSRP 2.2.5 CLIXML: our codec against the pypsrp Serializer (both directions) and hardened decoding."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pypsrp.complex_objects import GenericComplexObject, ObjectMeta
from pypsrp.serializer import Serializer, TaggedValue

from harness.wire.psrp.clixml import (
    HASHTABLE_TYPE_NAMES,
    NO_VALUE,
    DecodeLimits,
    PSObject,
    decode_string,
    deserialize,
    encode_string,
    graphs_equal,
    ps_dict,
    ps_enum,
    ps_list,
    serialize,
)
from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.primitives import (
    Byte,
    Char,
    DateTime,
    Duration,
    Int16,
    Int32,
    Int64,
    SByte,
    ScriptBlock,
    Single,
    UInt16,
    UInt32,
    UInt64,
    Uri,
    Version,
    XmlDocument,
)


def pypsrp_serialize(value: Any, meta: ObjectMeta | None = None) -> str:
    element = Serializer().serialize(value, meta)
    assert element is not None
    return ET.tostring(element, encoding="unicode")


def pypsrp_deserialize(text: str) -> Any:
    return Serializer().deserialize(text)


# --- primitives: ours -> pypsrp ---------------------------------------------------------------------------------

OURS_TO_PYPSRP: list[tuple[Any, Any]] = [
    ("hello", "hello"),
    ("", ""),
    ("tab\there\r\nnew_x_X\x00\x7f\u0085", "tab\there\r\nnew_x_X\x00\x7f\u0085"),
    ("emoji 😀 <&> \"'", "emoji 😀 <&> \"'"),
    ("_x0041_ literal", "_x0041_ literal"),
    (Char("é"), "é"),
    (True, True),
    (False, False),
    (Byte(255), 255),
    (SByte(-128), -128),
    (UInt16(65535), 65535),
    (Int16(-32768), -32768),
    (UInt32(4294967295), 4294967295),
    (-2147483648, -2147483648),
    (Int32(7), 7),
    (UInt64(2**64 - 1), 2**64 - 1),
    (Int64(-(2**63)), -(2**63)),
    (Single(1.5), 1.5),
    (2.5e-300, 2.5e-300),
    (b"\x00\x01binary", b"\x00\x01binary"),
    (uuid.UUID("0b1b3cd0-1c2e-4b7a-9f5e-0d6a8e2f3c41"), uuid.UUID("0b1b3cd0-1c2e-4b7a-9f5e-0d6a8e2f3c41")),
    (Uri("http://example.com/a?b=c&d"), "http://example.com/a?b=c&d"),
    (None, None),
    (ScriptBlock("Get-Item $x\n"), "Get-Item $x\n"),
    (XmlDocument("<a b='1'/>"), "<a b='1'/>"),
    # pypsrp keeps these as their text form (documented pypsrp behaviour)
    (Version("2.3.1"), "2.3.1"),
    (decimal.Decimal("-12.500"), "-12.500"),
    (dt.datetime(2024, 2, 29, 13, 5, 9, 123456, tzinfo=dt.UTC), "2024-02-29T13:05:09.123456Z"),
    (Duration(90_061_234_567_8), "P1DT1H1M1.2345678S"),
]


@pytest.mark.parametrize(("ours", "expected"), OURS_TO_PYPSRP, ids=lambda v: type(v).__name__)
def test_primitive_ours_to_pypsrp(ours: Any, expected: Any) -> None:
    assert pypsrp_deserialize(serialize(ours)) == expected


# --- primitives: pypsrp -> ours ---------------------------------------------------------------------------------

PYPSRP_TO_OURS: list[tuple[str, Any, Any]] = [
    ("S", "a\x01b_x_c😀\r\n", "a\x01b_x_c😀\r\n"),
    ("C", "A", Char("A")),
    ("B", True, True),
    ("By", 7, Byte(7)),
    ("SB", -7, SByte(-7)),
    ("U16", 9, UInt16(9)),
    ("I16", -9, Int16(-9)),
    ("U32", 4000000000, UInt32(4000000000)),
    ("I32", -5, -5),
    ("U64", 2**63, UInt64(2**63)),
    ("I64", -(2**40), Int64(-(2**40))),
    ("Sg", 0.25, Single(0.25)),
    ("Db", -1.0e100, -1.0e100),
    ("D", "3.14", decimal.Decimal("3.14")),
    ("BA", b"\xff\x00", b"\xff\x00"),
    ("G", uuid.UUID(int=12345), uuid.UUID(int=12345)),
    ("URI", "urn:x_y", Uri("urn:x_y")),
    ("Version", "10.0.17763.1", Version("10.0.17763.1")),
    ("XD", "<x/>", XmlDocument("<x/>")),
    ("SBK", "{ 1 }", ScriptBlock("{ 1 }")),
    ("TS", "PT9.0269026S", Duration(90_269_026)),
]


@pytest.mark.parametrize(("tag", "value", "expected"), PYPSRP_TO_OURS, ids=[row[0] for row in PYPSRP_TO_OURS])
def test_primitive_pypsrp_to_ours(tag: str, value: Any, expected: Any) -> None:
    decoded = deserialize(pypsrp_serialize(TaggedValue(tag, value)))
    assert graphs_equal(decoded, expected), (decoded, expected)


def test_dotnet_datetime_form() -> None:
    """pypsrp cannot serialize DT (its DT serializer returns nothing), so the .NET text form is used directly."""
    decoded = deserialize("<DT>2008-04-11T10:42:32.2731993-07:00</DT>")
    tz = dt.timezone(-dt.timedelta(hours=7))
    assert decoded == DateTime(dt.datetime(2008, 4, 11, 10, 42, 32, 273199, tzinfo=tz), 3)
    assert serialize(decoded) == "<DT>2008-04-11T10:42:32.2731993-07:00</DT>"


def test_pypsrp_nil_and_ref_free_values() -> None:
    assert deserialize(pypsrp_serialize(None, ObjectMeta("S"))) is None


# --- containers and complex objects -----------------------------------------------------------------------------


def test_list_and_dict_ours_to_pypsrp() -> None:
    value = ps_dict([("a", 1), ("b", ps_list(["x", Int64(5), None, True]))])
    assert pypsrp_deserialize(serialize(value)) == {"a": 1, "b": ["x", 5, None, True]}
    # pypsrp quirk: items of an Object[] are decoded as dynamic objects, so a nested list comes back as a
    # GenericComplexObject; only flat lists are compared.
    assert pypsrp_deserialize(serialize([1, "two", None])) == [1, "two", None]
    assert pypsrp_deserialize(serialize({"k": {"n": "v"}})) == {"k": {"n": "v"}}


def test_list_and_dict_pypsrp_to_ours() -> None:
    decoded = deserialize(pypsrp_serialize({"a": [1, "x"], "b": None}))
    assert isinstance(decoded, PSObject)
    assert decoded.type_names == list(HASHTABLE_TYPE_NAMES)
    assert decoded.container == "DCT"
    assert [k for k, _ in decoded.entries] == ["a", "b"]
    inner = decoded.as_dict()["a"]
    assert inner.container == "LST" and inner.items == [1, "x"]


def test_complex_object_ours_to_pypsrp() -> None:
    obj = PSObject(
        type_names=["Deserialized.System.Diagnostics.Process", "Deserialized.System.Object"],
        to_string="System.Diagnostics.Process (pwsh)",
        adapted_properties={"Id": 42, "Name": "pwsh", "Handles": Int64(7)},
        extended_properties={"Company": None, "Path": "C:\\pwsh.exe"},
    )
    result = pypsrp_deserialize(serialize(obj))
    assert isinstance(result, GenericComplexObject)
    assert result.types == obj.type_names
    assert result.to_string == obj.to_string
    assert result.adapted_properties == {"Id": 42, "Name": "pwsh", "Handles": 7}
    assert result.extended_properties == {"Company": None, "Path": "C:\\pwsh.exe"}


def test_complex_object_pypsrp_to_ours() -> None:
    source = GenericComplexObject()
    source.types = ["My.Type", "System.Object"]
    source.to_string = "my_xthing"
    source.adapted_properties = {"b": 2, "a": "x"}
    source.extended_properties = {"e": [1, 2]}
    decoded = deserialize(pypsrp_serialize(source))
    assert decoded.type_names == ["My.Type", "System.Object"]
    assert decoded.to_string == "my_xthing"
    # pypsrp sorts property names (documented pypsrp behaviour); compare as mappings
    assert dict(decoded.adapted_properties) == {"a": "x", "b": 2}
    assert decoded.extended_properties["e"].items == [1, 2]


def test_enum_object_with_pypsrp() -> None:
    value = ps_enum("System.Management.Automation.Runspaces.PSThreadOptions", 2, "ReuseThread")
    text = serialize(value)
    assert "<ToString>ReuseThread</ToString><I32>2</I32>" in text
    pypsrp_obj = pypsrp_deserialize(text)
    assert pypsrp_obj.value == 2 and str(pypsrp_obj) == "ReuseThread"
    assert deserialize(text) == value


def test_refs_and_tnref_on_the_way_out() -> None:
    shared = PSObject(type_names=["A", "System.Object"], extended_properties={"x": 1})
    twin = PSObject(type_names=["A", "System.Object"], extended_properties={"x": 2})
    root = ps_list([shared, shared, twin])
    text = serialize(root)
    assert text.count('<Ref RefId="1" />') == 1
    assert '<TNRef RefId="1" />' in text
    decoded = deserialize(text)
    assert decoded.items[0] is decoded.items[1]
    assert decoded == root
    # the shape matters: un-shared copies are not equal to a shared graph
    assert decoded != ps_list([shared, PSObject(type_names=["A", "System.Object"], extended_properties={"x": 1}), twin])


def test_cycle_round_trip() -> None:
    node = PSObject(type_names=["Node"])
    node.extended_properties["self"] = node
    decoded = deserialize(serialize(node))
    assert decoded.extended_properties["self"] is decoded
    assert decoded == node


def test_refs_from_the_wire() -> None:
    text = (
        '<Obj RefId="0"><TN RefId="0"><T>System.Object[]</T></TN><LST>'
        '<Obj RefId="1"><TN RefId="1"><T>X</T></TN><MS><S N="a">1</S></MS></Obj><Ref RefId="1" />'
        '<Obj RefId="2"><TNRef RefId="1" /></Obj></LST></Obj>'
    )
    value = deserialize(text)
    assert value.items[0] is value.items[1]
    assert value.items[2].type_names == ["X"]
    assert serialize(value) == text.replace(
        '<Obj RefId="2"><TNRef RefId="1" /></Obj>', '<Obj RefId="2"><TNRef RefId="1" /></Obj>'
    )


def test_stack_queue_ie_and_primitive_content() -> None:
    for tag in ("STK", "QUE", "IE"):
        obj = ps_list([1, "a"], ("System.Collections.Stack", "System.Object"), tag=tag)
        text = serialize(obj)
        assert f"<{tag}><I32>1</I32><S>a</S></{tag}>" in text
        assert deserialize(text) == obj
    wrapped = PSObject(type_names=["System.String"], to_string="s", value="s", extended_properties={"n": 1})
    assert deserialize(serialize(wrapped)) == wrapped
    assert deserialize(serialize(wrapped)).value == "s"
    assert PSObject().value is NO_VALUE


def test_string_escaping_rules() -> None:
    assert encode_string("a_xb") == "a_x005F_xb"
    assert encode_string("a_Xb") == "a_x005F_Xb"
    assert encode_string("\n") == "_x000A_"
    assert encode_string("😀") == "_xD83D__xDE00_"
    assert decode_string("_x000a__X0041_") == "\nA"
    assert decode_string("_x005F_x0041_") == "_x0041_"
    assert decode_string("_xZZZZ_") == "_xZZZZ_"
    for text in ["_", "__x", "_x005F_", "\ud800", "\udfff\ud800", "x" * 10]:
        assert decode_string(encode_string(text)) == text


def test_property_names_are_escaped() -> None:
    obj = PSObject(extended_properties={"we<ird\nname": 1, 'q"uote': 2})
    assert deserialize(serialize(obj)) == obj


def test_datetime_and_duration_forms() -> None:
    naive = dt.datetime(2020, 1, 2, 3, 4, 5)
    assert serialize(naive) == "<DT>2020-01-02T03:04:05</DT>"
    offset = dt.datetime(2020, 1, 2, 3, 4, 5, 100000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert serialize(offset) == "<DT>2020-01-02T03:04:05.1+05:30</DT>"
    assert deserialize(serialize(offset)) == offset
    precise = DateTime(naive, 7)
    assert serialize(precise) == "<DT>2020-01-02T03:04:05.0000007</DT>"
    assert deserialize(serialize(precise)) == precise
    assert serialize(Duration(0)) == "<TS>PT0S</TS>"
    assert serialize(dt.timedelta(days=-1)) == "<TS>-P1D</TS>"
    assert deserialize("<TS>-P1D</TS>") == Duration(-864_000_000_000)
    assert Duration(-15).to_timedelta() == dt.timedelta(microseconds=-1)


def test_float_special_values() -> None:
    assert serialize(float("inf")) == "<Db>INF</Db>"
    assert serialize(Single(float("-inf"))) == "<Sg>-INF</Sg>"
    value = deserialize("<Db>NaN</Db>")
    assert value != value
    assert serialize(Single(0.1)) == "<Sg>0.1</Sg>"


def test_encode_errors() -> None:
    with pytest.raises(PsrpEncodeError):
        serialize(2**31)
    with pytest.raises(PsrpEncodeError):
        Byte(256)
    with pytest.raises(PsrpEncodeError):
        serialize(object())
    with pytest.raises(PsrpEncodeError):
        serialize(PSObject(value=1, container="LST"))
    with pytest.raises(PsrpEncodeError):
        serialize(decimal.Decimal("NaN"))
    with pytest.raises(PsrpEncodeError):
        Version("1")
    deep: Any = None
    for _ in range(200):
        deep = [deep]
    with pytest.raises(PsrpEncodeError):
        serialize(deep)


BAD_INPUTS = [
    b"",
    b"not xml",
    b"<S>unterminated",
    b"<Unknown />",
    b"<I32>12x</I32>",
    b"<I32>1_000</I32>",
    b"<I32>2147483648</I32>",
    b"<By>-1</By>",
    b"<B>yes</B>",
    b"<Db>inf</Db>",
    b"<Sg>1e39</Sg>",
    b"<C>70000</C>",
    b"<G>not-a-guid</G>",
    b"<BA>@@@</BA>",
    b"<DT>2020-13-01T00:00:00</DT>",
    b"<TS>P</TS>",
    b"<TS>P1Y</TS>",
    b"<Version>1</Version>",
    b"<D>1e</D>",
    b"<Nil>x</Nil>",
    b"<S><S /></S>",
    b'<Ref RefId="0" />',
    b"<Obj><Nope /></Obj>",
    b'<Obj RefId="0"><LST /><DCT /></Obj>',
    b'<Obj RefId="0"><LST><Obj RefId="0" /></LST></Obj>',
    b'<Obj RefId="0"><TNRef RefId="9" /></Obj>',
    b'<Obj RefId="0"><TN RefId="0"><X /></TN></Obj>',
    b'<Obj RefId="0"><MS><S>no name</S></MS></Obj>',
    b'<Obj RefId="0"><MS><S N="a" /><S N="a" /></MS></Obj>',
    b'<Obj RefId="0"><DCT><En><S N="Key">k</S></En></DCT></Obj>',
    b'<Obj RefId="0"><DCT><X /></DCT></Obj>',
    b'<Obj RefId="' + b"9" * 50 + b'" />',
    b'<!DOCTYPE S [<!ENTITY a "aaaa">]><S>&a;</S>',
    b'<!DOCTYPE S SYSTEM "http://example.invalid/x.dtd"><S>x</S>',
    b"<S>&undefined;</S>",
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE S [<!ENTITY a "b">]><S>&a;</S>'.encode("utf-16"),
]


@pytest.mark.parametrize("data", BAD_INPUTS)
def test_malformed_inputs_raise_typed_error(data: bytes) -> None:
    with pytest.raises(PsrpDecodeError):
        deserialize(data)


def test_billion_laughs_is_rejected() -> None:
    entities = "".join(f'<!ENTITY l{i} "&l{i - 1};&l{i - 1};">' for i in range(1, 30))
    data = f'<!DOCTYPE S [<!ENTITY l0 "ha">{entities}]><S>&l29;</S>'
    with pytest.raises(PsrpDecodeError):
        deserialize(data)


def test_limits() -> None:
    nested = "<Obj><MS>" * 60 + "<S N='x'>a</S>" + "</MS></Obj>" * 60
    nested = nested.replace("<Obj><MS>", "<Obj><MS><Obj N='n'><MS>", 0)
    with pytest.raises(PsrpDecodeError):
        deserialize(nested.replace("<S N='x'>", "<S N='x'>"), limits=DecodeLimits(max_depth=10))
    many = "<Obj RefId='r'><LST>" + "".join(f"<Obj RefId='{i}' />" for i in range(50)) + "</LST></Obj>"
    with pytest.raises(PsrpDecodeError):
        deserialize(many, limits=DecodeLimits(max_objects=10))
    assert len(deserialize(many).items) == 50
    with pytest.raises(PsrpDecodeError):
        deserialize("<S>" + "a" * 100 + "</S>", limits=DecodeLimits(max_size=50))


def test_bom_and_whitespace_tolerance() -> None:
    assert deserialize(b"\xef\xbb\xbf<I32> 5 </I32>") == 5
    assert deserialize("<S>  keep  </S>") == "  keep  "
