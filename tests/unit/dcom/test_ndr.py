"""NDR reader bounds (C706 14): conformant arrays sized by an earlier field."""

from __future__ import annotations

import struct

import pytest

from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter


def _array(conformance: int, values: list[int]) -> bytes:
    return struct.pack("<I", conformance) + b"".join(struct.pack("<H", v) for v in values)


def test_sized_array_reads_each_element() -> None:
    r = NdrReader(_array(3, [7, 8, 9]))
    assert r.sized_array("protseqs", 2, 3, lambda e: e.u16("protseq")) == [7, 8, 9]
    assert r.remaining == 0


def test_sized_array_refuses_a_conformance_that_differs_from_the_size_field() -> None:
    with pytest.raises(NdrError, match="conformance 2 differs from the size field 3"):
        NdrReader(_array(2, [7, 8])).sized_array("protseqs", 2, 3, lambda e: e.u16("protseq"))


def test_sized_array_refuses_a_count_beyond_the_stub_before_reading() -> None:
    with pytest.raises(NdrError, match="exceeds the stub"):
        NdrReader(struct.pack("<I", 0x10000000)).sized_array("iids", 16, 0x10000000, lambda e: e.guid())


def test_writer_and_reader_agree_on_a_sized_array() -> None:
    w = NdrWriter()
    w.u32(2)
    w.u64(0x1122334455667788)
    w.u64(42)
    r = NdrReader(bytes(w.buf))
    assert r.sized_array("AddToSet", 8, 2, lambda e: e.u64("OID")) == [0x1122334455667788, 42]
