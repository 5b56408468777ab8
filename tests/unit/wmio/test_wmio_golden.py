"""MS-WMIO section 3 sample encodings (fixtures/golden/wmio) decoded and re-encoded."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.wire.wmio import (
    CimType,
    Decoration,
    WmiClass,
    WmiInstance,
    WmioDecodeError,
    decode_encoding_unit,
    encode_encoding_unit,
)

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "wmio"


def load(name: str) -> bytes:
    lines = (GOLDEN / name).read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))


def test_base_class_sample() -> None:
    """MS-WMIO 3: class Base { [key] sint32 Id; }; its ObjectEncodingLength overstates the data."""
    blob = load("ms-wmio-3.1-base-class.hex")
    with pytest.raises(WmioDecodeError) as err:
        decode_encoding_unit(blob)
    assert err.value.offset == 4
    cls = decode_encoding_unit(blob, allow_short=True)
    assert isinstance(cls, WmiClass)
    assert cls.name == "Base" and cls.derivation == [] and cls.parent is None
    assert cls.decoration == Decoration("DPRAVAT-DEV", "ROOT")
    (prop,) = cls.properties
    assert (prop.name, prop.cim_type, prop.is_array, prop.default) == ("Id", CimType.SINT32, False, None)
    quals = {q.name: (q.value, q.flavor) for q in prop.qualifiers}
    assert quals == {"CIMTYPE": ("sint32", 0x03), "key": (True, 0x13)}
    assert decode_encoding_unit(encode_encoding_unit(cls)) == cls


def test_myclass_instance_sample() -> None:
    """MS-WMIO 3: instance of MyClass { Id = 123; Data1 = "StringField"; Array = {1, 2, 3}; }."""
    inst = decode_encoding_unit(load("ms-wmio-3.2-myclass-instance.hex"))
    assert isinstance(inst, WmiInstance)
    cls = inst.class_
    assert cls.name == "MyClass" and cls.superclass == "Base"
    assert [(q.name, q.value) for q in cls.qualifiers] == [("Description", "MyClass Example")]
    assert [p.name for p in cls.properties] == ["Id", "Data1", "Data2", "Array"]
    assert cls.property("Array").cim_type is CimType.UINT32 and cls.property("Array").is_array
    assert cls.property("Id").inherited and cls.declaring_class("Id") == "Base"
    assert cls.declaring_class("Data1") == "MyClass"
    assert cls.property("Data2").default == "defaultValue"
    assert {q.name for q in cls.property("Data1").qualifiers} == {"CIMTYPE", "read", "write"}
    assert inst.values == {"Id": 123, "Data1": "StringField", "Array": [1, 2, 3]}
    assert inst.get("Data2") == "defaultValue"  # NdTable: default inherited from the class
    assert inst.decoration == Decoration("DPRAVAT-DEV", "ROOT")


def test_myclass_instance_reencodes_octet_for_octet_without_heap_slack() -> None:
    """Our canonical layout equals the sample except for 6 unused octets at the end of its ClassHeap."""
    blob = bytearray(load("ms-wmio-3.2-myclass-instance.hex"))
    class_part, class_len = 28, 0x176
    assert blob[class_part + class_len - 6:class_part + class_len] == bytes(6)
    del blob[class_part + class_len - 6:class_part + class_len]
    struct.pack_into("<I", blob, 4, 0x1D3 - 6)
    struct.pack_into("<I", blob, class_part, class_len - 6)
    heap_len_at = blob.index(bytes.fromhex("11010080"))
    struct.pack_into("<I", blob, heap_len_at, 0x80000111 - 6)
    assert encode_encoding_unit(decode_encoding_unit(bytes(blob))) == bytes(blob)


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 20, 40, 200, 474])
def test_truncated_sample_raises_typed_error(cut: int) -> None:
    blob = load("ms-wmio-3.2-myclass-instance.hex")[:cut]
    with pytest.raises(WmioDecodeError):
        decode_encoding_unit(blob)
