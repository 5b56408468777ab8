"""Object model of MS-WMIO encoded CIM classes and instances.

Plain dataclasses, independent of the wire layout; :mod:`.encoder` and :mod:`.decoder` map them to
and from the MS-WMIO 2.2 ABNF. Value representation (by CIM type, MS-WMIO 2.2.82 CimType):

* sint8..uint64 -> ``int``; real32/real64 -> ``float``; boolean -> ``bool``;
* char16 -> ``str`` of length 1 (one UTF-16 code unit);
* string, datetime (DMTF ``yyyymmddHHMMSS.mmmmmmsUUU`` or interval ``ddddddddHHMMSS.mmmmmm:000``) and
  reference (an object path) -> ``str``;
* object (embedded object, MS-WMIO 2.2.71) -> :class:`WmiClass` or :class:`WmiInstance`;
* arrays -> ``list`` of the above; NULL -> ``None``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

#: MS-WMIO 2.2.1 EncodingUnit: the Signature field that opens every encoding unit.
SIGNATURE = 0x12345678
#: MS-WMIO 2.2.82: the array flag of a CimType.
CIM_ARRAY_FLAG = 0x2000
#: MS-WMIO 2.2.32 Inherited: PropertyType flag for a property inherited from a superclass.
CIM_INHERITED_FLAG = 0x4000


class CimType(enum.IntEnum):
    """MS-WMIO 2.2.82 CimType (scalar values; arrays add :data:`CIM_ARRAY_FLAG`)."""

    SINT16 = 2
    SINT32 = 3
    REAL32 = 4
    REAL64 = 5
    STRING = 8
    BOOLEAN = 11
    OBJECT = 13
    SINT8 = 16
    UINT8 = 17
    UINT16 = 18
    UINT32 = 19
    SINT64 = 20
    UINT64 = 21
    DATETIME = 101
    REFERENCE = 102
    CHAR16 = 103


class QualifierFlavor(enum.IntFlag):
    """MS-WMIO 2.2.62 QualifierFlavor bits."""

    NONE = 0
    PROPAGATE_TO_INSTANCE = 0x01
    PROPAGATE_TO_DERIVED_CLASS = 0x02
    NOT_OVERRIDABLE = 0x10
    ORIGIN_PROPAGATED = 0x20
    ORIGIN_SYSTEM = 0x40
    AMENDED = 0x80


class ObjectFlags(enum.IntFlag):
    """MS-WMIO 2.2.6 ObjectFlags."""

    CLASS = 0x01
    INSTANCE = 0x02
    DECORATED = 0x04
    PROTOTYPE = 0x10
    KEYS_MISSING = 0x40


# An encodable value; "WmiObject" values are embedded objects.
Value = Union[
    None, bool, int, float, str, "WmiClass", "WmiInstance",
    list[Union[bool, int, float, str, "WmiClass", "WmiInstance"]],
]


@dataclass
class Qualifier:
    """MS-WMIO 2.2.60 Qualifier: name, flavor (2.2.62), type (2.2.63) and value (2.2.64)."""

    name: str
    cim_type: CimType
    value: Value
    is_array: bool = False
    flavor: int = 0


@dataclass
class Decoration:
    """MS-WMIO 2.2.7 Decoration: DecServerName (2.2.8) and DecNamespaceName (2.2.9)."""

    server: str
    namespace: str


@dataclass
class WmiProperty:
    """A property of a class part (MS-WMIO 2.2.23 PropertyLookup / 2.2.30 PropertyInfo).

    Its declaration order (2.2.33) is its index in :attr:`WmiClass.properties`. ``default`` is the
    class default value (ValueTable, 2.2.29; None = NULL). ``inherited`` is the PropertyType
    Inherited flag (2.2.32); ``class_of_origin`` (2.2.35) is the depth in the derivation hierarchy of
    the declaring class (0 = the root class, as in the MS-WMIO 3 examples); ``default_inherited`` is
    NdTable bit 1 (2.2.27: the default value is inherited from a parent class).
    """

    name: str
    cim_type: CimType
    is_array: bool = False
    qualifiers: list[Qualifier] = field(default_factory=list)
    default: Value = None
    inherited: bool = False
    class_of_origin: int = 0
    default_inherited: bool = False


@dataclass
class WmiMethod:
    """MS-WMIO 2.2.41 MethodDescription with its signatures (2.2.48/2.2.49, classes named __PARAMETERS)."""

    name: str
    qualifiers: list[Qualifier] = field(default_factory=list)
    in_signature: WmiClass | None = None
    out_signature: WmiClass | None = None
    flags: int = 0
    origin: int = 0


@dataclass
class WmiClass:
    """A CIM class: MS-WMIO 2.2.14 ClassAndMethodsPart (ClassPart 2.2.15 + MethodsPart 2.2.38).

    ``derivation`` is the DerivationList (2.2.17), immediate superclass first. ``parent`` is the
    ParentClass part (2.2.12) of a class ObjectBlock (ClassType, 2.2.11), None when that part is empty.
    ``name`` is "" when the ClassNameRef is absent (0xFFFFFFFF).
    """

    name: str
    derivation: list[str] = field(default_factory=list)
    qualifiers: list[Qualifier] = field(default_factory=list)
    properties: list[WmiProperty] = field(default_factory=list)
    methods: list[WmiMethod] = field(default_factory=list)
    parent: WmiClass | None = None
    decoration: Decoration | None = None
    extra_flags: int = 0

    @property
    def superclass(self) -> str | None:
        return self.derivation[0] if self.derivation else None

    def property(self, name: str) -> WmiProperty:
        """The property ``name`` (case-insensitive, DSP0004); KeyError if absent."""
        low = name.lower()
        for prop in self.properties:
            if prop.name.lower() == low:
                return prop
        raise KeyError(name)

    def declaring_class(self, name: str) -> str:
        """The class that declares property ``name`` (from ClassOfOrigin, MS-WMIO 2.2.35)."""
        chain = [self.name, *self.derivation]
        depth = self.property(name).class_of_origin
        index = len(chain) - 1 - depth
        return chain[index] if 0 <= index < len(chain) else self.name


@dataclass
class WmiInstance:
    """A CIM instance: MS-WMIO 2.2.53 InstanceType.

    ``values`` holds the properties the instance sets (None = NULL); a property absent from ``values``
    takes the class default (NdTable bit 1, 2.2.27). ``property_qualifiers`` is the
    InstancePropQualifierSet (2.2.65): None when InstPropQualSetFlag is 1, otherwise one list per
    property name.
    """

    class_: WmiClass
    values: dict[str, Value] = field(default_factory=dict)
    qualifiers: list[Qualifier] = field(default_factory=list)
    property_qualifiers: dict[str, list[Qualifier]] | None = None
    decoration: Decoration | None = None
    extra_flags: int = 0

    @property
    def class_name(self) -> str:
        return self.class_.name

    def get(self, name: str) -> Value:
        """Effective value: the instance value, or the class default."""
        prop = self.class_.property(name)
        if prop.name in self.values:
            return self.values[prop.name]
        return prop.default


WmiObject = WmiClass | WmiInstance

#: Encoded size of a value of each scalar type inside a ValueTable or qualifier (MS-WMIO 2.2.71);
#: strings, datetimes, references, objects and every array are 4-octet HeapRefs.
INLINE_SIZE: dict[CimType, int] = {
    CimType.SINT8: 1, CimType.UINT8: 1, CimType.SINT16: 2, CimType.UINT16: 2, CimType.CHAR16: 2,
    CimType.BOOLEAN: 2, CimType.SINT32: 4, CimType.UINT32: 4, CimType.REAL32: 4, CimType.SINT64: 8,
    CimType.UINT64: 8, CimType.REAL64: 8, CimType.STRING: 4, CimType.DATETIME: 4, CimType.REFERENCE: 4,
    CimType.OBJECT: 4,
}


def value_size(cim_type: CimType, is_array: bool) -> int:
    """Octets of an EncodedValue of this type (MS-WMIO 2.2.71)."""
    return 4 if is_array else INLINE_SIZE[cim_type]


def type_code(cim_type: CimType, is_array: bool, inherited: bool = False) -> int:
    """The CimType/PropertyType integer (MS-WMIO 2.2.82, 2.2.31, 2.2.32)."""
    return int(cim_type) | (CIM_ARRAY_FLAG if is_array else 0) | (CIM_INHERITED_FLAG if inherited else 0)


CIMTYPE_NAMES: dict[CimType, str] = {
    CimType.SINT8: "sint8", CimType.UINT8: "uint8", CimType.SINT16: "sint16", CimType.UINT16: "uint16",
    CimType.SINT32: "sint32", CimType.UINT32: "uint32", CimType.SINT64: "sint64", CimType.UINT64: "uint64",
    CimType.REAL32: "real32", CimType.REAL64: "real64", CimType.BOOLEAN: "boolean", CimType.STRING: "string",
    CimType.DATETIME: "datetime", CimType.REFERENCE: "ref", CimType.CHAR16: "char16", CimType.OBJECT: "object",
}
