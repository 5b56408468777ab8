"""Hypothesis strategies producing arbitrary valid MS-WMIO classes and instances.

``oracle=True`` restricts generation to constructs impacket's WMIO decoder can read (used by the
independent-oracle tests); see tests/property/test_wmio_oracle.py for the documented reasons.
"""

from __future__ import annotations

import struct
from typing import cast

from hypothesis import strategies as st

from harness.wire.wmio.model import CimType, Decoration, Qualifier, Value, WmiClass, WmiInstance, WmiMethod, WmiProperty

_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=12)
_INT_BOUNDS = {
    CimType.SINT8: (-(2**7), 2**7 - 1), CimType.UINT8: (0, 2**8 - 1),
    CimType.SINT16: (-(2**15), 2**15 - 1), CimType.UINT16: (0, 2**16 - 1),
    CimType.SINT32: (-(2**31), 2**31 - 1), CimType.UINT32: (0, 2**32 - 1),
    CimType.SINT64: (-(2**63), 2**63 - 1), CimType.UINT64: (0, 2**64 - 1),
}


def _real32() -> st.SearchStrategy[float]:
    return st.floats(width=32, allow_nan=False).map(lambda f: struct.unpack("<f", struct.pack("<f", f))[0])


def datetimes() -> st.SearchStrategy[str]:
    """DSP0004 datetime strings: timestamps and intervals."""
    stamp = st.builds(
        lambda y, mo, d, h, mi, s, us, sign, off: (
            f"{y:04d}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}.{us:06d}{sign}{off:03d}"
        ),
        st.integers(0, 9999), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59),
        st.integers(0, 59), st.integers(0, 999999), st.sampled_from("+-"), st.integers(0, 720),
    )
    interval = st.builds(
        lambda d, h, mi, s, us: f"{d:08d}{h:02d}{mi:02d}{s:02d}.{us:06d}:000",
        st.integers(0, 99999999), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999999),
    )
    return st.one_of(stamp, interval)


def scalar_values(cim_type: CimType, depth: int, oracle: bool = False) -> st.SearchStrategy[Value]:
    """Non-NULL values of a scalar CIM type."""
    if cim_type in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[cim_type]
        return st.integers(lo, hi)
    if cim_type is CimType.REAL32:
        return _real32()
    if cim_type is CimType.REAL64:
        return st.floats(allow_nan=False)
    if cim_type is CimType.BOOLEAN:
        return st.booleans()
    if cim_type is CimType.CHAR16:
        return st.characters(max_codepoint=0xFFFF, blacklist_categories=["Cs"])
    if cim_type is CimType.DATETIME:
        return datetimes()
    if cim_type is CimType.OBJECT:
        if depth <= 0:
            return st.nothing()
        return st.one_of(classes(depth - 1, oracle=oracle), instances(depth - 1, oracle=oracle))
    return _TEXT


def values(cim_type: CimType, is_array: bool, depth: int, oracle: bool = False) -> st.SearchStrategy[Value]:
    scalar = scalar_values(cim_type, depth, oracle)
    if is_array:
        return st.one_of(st.none(), st.lists(scalar, max_size=4))
    return st.one_of(st.none(), scalar)


def cim_types(depth: int, oracle: bool = False) -> st.SearchStrategy[tuple[CimType, bool]]:
    kinds = [t for t in CimType if depth > 0 or t is not CimType.OBJECT]
    array_kinds = kinds
    if oracle:
        # impacket reads datetime/reference arrays as raw HeapRefs (no string resolution).
        array_kinds = [t for t in kinds if t not in (CimType.DATETIME, CimType.REFERENCE)]
    return st.one_of(st.tuples(st.sampled_from(kinds), st.just(False)),
                     st.tuples(st.sampled_from(array_kinds), st.just(True)))


def qualifiers(depth: int, oracle: bool = False) -> st.SearchStrategy[list[Qualifier]]:
    scalar_types = [t for t in CimType if t is not CimType.OBJECT]
    array_types = scalar_types
    if oracle:
        # impacket reads a qualifier's inline value with its element type, so arrays only work for
        # 4-octet integer or string element types (not real32, not datetime/reference).
        array_types = [CimType.SINT32, CimType.UINT32, CimType.STRING]
        # impacket uses a real qualifier's float value as a HeapRef and crashes.
        scalar_types = [t for t in scalar_types if t not in (CimType.REAL32, CimType.REAL64)]
    qtypes = st.one_of(st.tuples(st.sampled_from(scalar_types), st.just(False)),
                       st.tuples(st.sampled_from(array_types), st.just(True)))

    @st.composite
    def one(draw: st.DrawFn) -> Qualifier:
        tp = draw(qtypes)
        scalar = scalar_values(tp[0], 0, oracle)
        value = cast(Value, draw(st.lists(scalar, max_size=4)) if tp[1] else draw(scalar))
        name = draw(st.one_of(_NAME, st.sampled_from(["key", "read", "write", "CIMTYPE", "dynamic"])))
        return Qualifier(name, tp[0], value, tp[1], draw(st.integers(0, 255)))

    return st.lists(one(), max_size=2, unique_by=lambda q: q.name.lower())


@st.composite
def properties(draw: st.DrawFn, depth: int, oracle: bool = False) -> WmiProperty:
    cim_type, is_array = draw(cim_types(depth, oracle))
    default = draw(values(cim_type, is_array, depth, oracle))
    if oracle and not is_array and cim_type in (CimType.REAL32, CimType.REAL64):
        default = None  # impacket crashes on non-NULL real class defaults (uses the float as a HeapRef)
    return WmiProperty(
        name=draw(_NAME),
        cim_type=cim_type,
        is_array=is_array,
        qualifiers=draw(qualifiers(depth, oracle)),
        default=default,
        inherited=draw(st.booleans()),
        class_of_origin=draw(st.integers(0, 3)),
        default_inherited=draw(st.booleans()),
    )


def decorations() -> st.SearchStrategy[Decoration | None]:
    return st.one_of(st.none(), st.builds(Decoration, _TEXT, _TEXT))


@st.composite
def classes(draw: st.DrawFn, depth: int = 1, *, with_parent: bool = True, oracle: bool = False,
            with_methods: bool = True) -> WmiClass:
    """Arbitrary valid classes (``depth`` bounds embedded objects and method signatures)."""
    props = draw(st.lists(properties(depth, oracle), max_size=4, unique_by=lambda p: p.name.lower()))
    methods: list[WmiMethod] = []
    if with_methods and depth > 0:
        sig = st.one_of(st.none(), classes(depth - 1, with_parent=False, oracle=oracle, with_methods=False)
                        .map(lambda c: _rename(c, "__PARAMETERS")))
        methods = draw(st.lists(
            st.builds(WmiMethod, _NAME, qualifiers(0, oracle), sig, sig, st.integers(0, 255), st.integers(0, 3)),
            max_size=2, unique_by=lambda m: m.name.lower(),
        ))
    parent = None
    if with_parent and depth > 0 and draw(st.booleans()):
        parent = draw(classes(depth - 1, with_parent=False, oracle=oracle))
        parent.decoration = None  # a ParentClass part carries no Decoration
    return WmiClass(
        name=draw(_NAME),
        derivation=draw(st.lists(_NAME, max_size=3)),
        qualifiers=draw(qualifiers(depth, oracle)),
        properties=props,
        methods=methods,
        parent=parent,
        decoration=draw(decorations()),
        extra_flags=0,
    )


def _rename(cls: WmiClass, name: str) -> WmiClass:
    cls.name = name
    cls.decoration = None
    return cls


@st.composite
def instances(draw: st.DrawFn, depth: int = 1, *, oracle: bool = False) -> WmiInstance:
    """Arbitrary valid instances: set values, NULLs and class defaults (absent values)."""
    cls = draw(classes(depth, with_parent=False, oracle=oracle, with_methods=False))
    cls.decoration = None  # the CurrentClass of an instance is a bare ClassPart
    vals: dict[str, Value] = {}
    for prop in cls.properties:
        if oracle and not prop.is_array and prop.cim_type in (CimType.REAL32, CimType.REAL64):
            continue  # impacket uses a non-zero real instance value as a HeapRef and crashes
        if draw(st.booleans()):
            vals[prop.name] = draw(values(prop.cim_type, prop.is_array, depth, oracle))
    prop_quals = None
    if not oracle and draw(st.booleans()):
        prop_quals = {p.name: draw(qualifiers(0)) for p in cls.properties}
    return WmiInstance(cls, vals, draw(qualifiers(depth, oracle)), prop_quals, draw(decorations()), 0)


def objects(depth: int = 1, *, oracle: bool = False) -> st.SearchStrategy[WmiClass | WmiInstance]:
    return st.one_of(classes(depth, oracle=oracle), instances(depth, oracle=oracle))
