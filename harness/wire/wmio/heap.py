"""MS-WMIO heaps (2.2.66 Heap, 2.2.69 HeapRef, 2.2.68 HeapStringRef, 2.2.80 DictionaryReference).

A heap is a HeapLength (31-bit length; the most significant bit MUST be set) followed by the heap
octets. A HeapRef is an offset into those octets. A HeapStringRef with bit 31 set is instead a
DictionaryReference: an index into a fixed table of well-known strings.
"""

from __future__ import annotations

import struct

from .encstring import encode_string

HEAP_LENGTH_FLAG = 0x80000000
DICTIONARY_FLAG = 0x80000000
NO_REF = 0xFFFFFFFF

#: MS-WMIO 2.2.80 well-known strings, by DictionaryReference index (index 0 is the literal '"'
#: entry of the table; the encoder never emits it).
DICTIONARY: tuple[str, ...] = (
    '"', "key", "NADA", "read", "write", "volatile", "provider", "dynamic", "cimwin32", "DWORD", "CIMTYPE",
)
DICTIONARY_INDEX: dict[str, int] = {name: i for i, name in enumerate(DICTIONARY) if i > 0}

_U32 = struct.Struct("<I")


class HeapBuilder:
    """Appends items to a heap and returns their HeapRef (offset)."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, octets: bytes) -> int:
        ref = len(self.data)
        self.data += octets
        return ref

    def add_string(self, text: str) -> int:
        return self.add(encode_string(text))

    def string_ref(self, text: str, *, dictionary: bool = False) -> int:
        """A HeapStringRef: a DictionaryReference for a well-known string when ``dictionary``."""
        if dictionary:
            index = DICTIONARY_INDEX.get(text)
            if index is not None:
                return DICTIONARY_FLAG | index
        return self.add_string(text)

    def reserve(self, size: int) -> int:
        return self.add(bytes(size))

    def patch(self, ref: int, octets: bytes) -> None:
        self.data[ref:ref + len(octets)] = octets

    def encode(self) -> bytes:
        """The Heap block: HeapLength with its most significant bit set, then the items (2.2.66)."""
        return _U32.pack(len(self.data) | HEAP_LENGTH_FLAG) + bytes(self.data)
