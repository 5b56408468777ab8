"""MS-PSRP 2.2.4 fragments: layout, splitting, reassembly across chunkings, errors, and pypsrp interop."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
from pypsrp.messages import Message as PypsrpMessage
from pypsrp.messages import SessionCapability as PypsrpSessionCapability
from pypsrp.powershell import Fragment as PypsrpFragment
from pypsrp.powershell import Fragmenter as PypsrpFragmenter
from pypsrp.serializer import Serializer

from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.fragments import (
    DEFAULT_ENVELOPE_OVERHEAD,
    FRAGMENT_HEADER_SIZE,
    Defragmenter,
    Fragment,
    Fragmenter,
    max_fragment_size,
    unpack_fragment,
    unpack_fragments,
)
from harness.wire.psrp.messages import Destination, SessionCapability, build_message, unpack_message

RPID = uuid.UUID("11111111-2222-3333-4444-555555555555")


def test_fragment_layout() -> None:
    packed = Fragment(0x0102030405060708, 2, True, False, b"abc").pack()
    assert packed[:8] == bytes.fromhex("0102030405060708")
    assert packed[8:16] == struct.pack(">Q", 2)
    assert packed[16] == 0x01
    assert packed[17:21] == struct.pack(">I", 3)
    assert packed[21:] == b"abc"
    assert FRAGMENT_HEADER_SIZE == 21
    assert Fragment(1, 0, True, True, b"").pack()[16] == 0x03
    assert Fragment(1, 5, False, True, b"").pack()[16] == 0x02
    fragment, end = unpack_fragment(packed)
    assert fragment == Fragment(0x0102030405060708, 2, True, False, b"abc") and end == len(packed)


def test_fragment_layout_matches_pypsrp() -> None:
    ours = Fragment(7, 3, False, True, b"payload").pack()
    theirs = PypsrpFragment(7, 3, b"payload", start=False, end=True).pack()
    assert ours == theirs


def test_max_fragment_size_from_envelope() -> None:
    # 153600-byte envelope, 1664 bytes reserved, base64 3/4 -> 113952 bytes of fragment
    assert max_fragment_size(153_600) == (153_600 - DEFAULT_ENVELOPE_OVERHEAD) // 4 * 3 == 113_952
    assert max_fragment_size(512_000) == (512_000 - 1664) // 4 * 3
    with pytest.raises(PsrpEncodeError):
        max_fragment_size(1000)


def test_fragmenter_sizes_and_ids() -> None:
    fragmenter = Fragmenter(max_size=FRAGMENT_HEADER_SIZE + 10)
    message = bytes(range(25))
    fragments = fragmenter.fragments(message)
    assert [f.fragment_id for f in fragments] == [0, 1, 2]
    assert [(f.start, f.end) for f in fragments] == [(True, False), (False, False), (False, True)]
    assert b"".join(f.blob for f in fragments) == message
    assert all(len(f.pack()) <= FRAGMENT_HEADER_SIZE + 10 for f in fragments)
    assert {f.object_id for f in fragments} == {1}
    assert fragmenter.fragments(b"")[0] == Fragment(2, 0, True, True, b"")
    assert fragmenter.fragments(b"x" * 10) == [Fragment(3, 0, True, True, b"x" * 10)]


def test_packed_and_structured_fragments_agree() -> None:
    message = bytes(range(256)) * 3
    packed = Fragmenter(max_size=100, first_object_id=9).fragment(message)
    structured = Fragmenter(max_size=100, first_object_id=9).fragments(message)
    assert packed == [f.pack() for f in structured]
    assert unpack_fragments(b"".join(packed)) == structured
    assert Fragmenter.for_envelope(153_600).max_size == 113_952


def test_fragment_many_packs_chunks() -> None:
    fragmenter = Fragmenter(max_size=100)
    chunks = fragmenter.fragment_many([b"a" * 10, b"b" * 10, b"c" * 150])
    assert all(len(chunk) <= 100 for chunk in chunks)
    defrag = Defragmenter()
    messages = [m for chunk in chunks for m in defrag.feed(chunk)]
    assert messages == [b"a" * 10, b"b" * 10, b"c" * 150]
    # the first two messages share the first chunk
    assert len(unpack_fragments(chunks[0])) >= 3


def test_defragmenter_any_chunking() -> None:
    fragmenter = Fragmenter(max_size=40)
    originals = [bytes([i]) * (i * 7) for i in range(12)]
    stream = b"".join(b"".join(fragmenter.fragment(m)) for m in originals)
    for step in (1, 2, 3, 5, 21, 22, 64, len(stream)):
        defrag = Defragmenter()
        out: list[bytes] = []
        for offset in range(0, len(stream), step):
            out.extend(defrag.feed(stream[offset : offset + step]))
        assert out == originals
        assert defrag.idle
        defrag.close()


def test_interleaved_objects_are_accepted() -> None:
    a = Fragmenter(max_size=FRAGMENT_HEADER_SIZE + 2, first_object_id=1).fragment(b"aaaa")
    b = Fragmenter(max_size=FRAGMENT_HEADER_SIZE + 2, first_object_id=2).fragment(b"bbbb")
    defrag = Defragmenter()
    assert defrag.feed(a[0] + b[0] + b[1]) == [b"bbbb"]
    assert defrag.feed(a[1]) == [b"aaaa"]


def _frag(object_id: int, fragment_id: int, start: bool, end: bool, blob: bytes = b"x") -> bytes:
    return Fragment(object_id, fragment_id, start, end, blob).pack()


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (_frag(1, 1, False, True), "without its start"),
        (_frag(1, 0, True, False) + _frag(1, 2, False, True), "missing"),
        (_frag(1, 0, True, False) + _frag(1, 1, False, False) + _frag(1, 1, False, True), "duplicate"),
        (_frag(1, 0, True, False) + _frag(1, 0, False, True), "duplicate"),
        (_frag(1, 0, True, False) + _frag(1, 1, True, True), "second start"),
        (_frag(1, 3, True, True), "expected 0"),
        (_frag(2, 0, True, True) + _frag(2, 0, True, True), "not greater"),
        (_frag(5, 0, True, True) + _frag(4, 0, True, True), "not greater"),
        (Fragment(1, 0, True, True, b"").pack()[:16] + b"\x04" + b"\x00" * 4, "reserved"),
    ],
)
def test_defragmenter_errors(stream: bytes, reason: str) -> None:
    with pytest.raises(PsrpDecodeError, match=reason):
        Defragmenter().feed(stream)


def test_a_failed_stream_stays_failed() -> None:
    defrag = Defragmenter()
    with pytest.raises(PsrpDecodeError):
        defrag.feed(_frag(1, 1, False, True))
    with pytest.raises(PsrpDecodeError, match="already failed"):
        defrag.feed(_frag(2, 0, True, True))


def test_defragmenter_limits_and_truncation() -> None:
    with pytest.raises(PsrpDecodeError, match="limit"):
        Defragmenter(max_message_size=10).feed(Fragment(1, 0, True, True, b"x" * 11).pack()[:21])
    defrag = Defragmenter(max_message_size=10)
    defrag.feed(_frag(1, 0, True, False, b"x" * 6))
    with pytest.raises(PsrpDecodeError, match="larger"):
        defrag.feed(_frag(1, 1, False, True, b"x" * 6))
    defrag = Defragmenter(max_pending=1)
    defrag.feed(_frag(1, 0, True, False))
    with pytest.raises(PsrpDecodeError, match="interleaved"):
        defrag.feed(_frag(2, 0, True, False))
    defrag = Defragmenter()
    defrag.feed(_frag(1, 0, True, True)[:10])
    with pytest.raises(PsrpDecodeError, match="inside a fragment"):
        defrag.close()
    defrag = Defragmenter()
    defrag.feed(_frag(1, 0, True, False))
    with pytest.raises(PsrpDecodeError, match="incomplete"):
        defrag.close()
    with pytest.raises(PsrpDecodeError):
        unpack_fragments(_frag(1, 0, True, True)[:-1])
    assert Defragmenter(strict_object_order=False).feed(_frag(2, 0, True, True) + _frag(1, 0, True, True)) == [
        b"x",
        b"x",
    ]


def test_ours_fragment_pypsrp_defragments() -> None:
    """pypsrp's Fragmenter.defragment reassembles our fragments and unpacks the PSRP message inside."""
    capability = SessionCapability("2.3", "2.0", "1.1.0.1")
    message = build_message(Destination.CLIENT, capability, RPID)
    fragments = Fragmenter(max_size=FRAGMENT_HEADER_SIZE + 50).fragment(message)
    assert len(fragments) > 3
    messages: list[Any] = PypsrpFragmenter(1000, Serializer()).defragment(b"".join(fragments))
    assert len(messages) == 1
    assert messages[0].message_type == 0x00010002
    assert str(messages[0].data.protocol_version) == "2.3"
    assert messages[0].rpid == RPID


def test_pypsrp_fragments_we_defragment() -> None:
    """pypsrp's Fragmenter output (121-byte max: 100-byte blobs) reassembled across odd chunk sizes."""
    pypsrp_fragmenter = PypsrpFragmenter(121, Serializer())
    capability = PypsrpSessionCapability("2.3", "2.0", "1.1.0.1")
    fragments = pypsrp_fragmenter.fragment(capability, str(RPID))
    fragments += pypsrp_fragmenter.fragment(capability, str(RPID))
    stream = b"".join(fragments)
    defrag = Defragmenter()
    out: list[bytes] = []
    for offset in range(0, len(stream), 13):
        out.extend(defrag.feed(stream[offset : offset + 13]))
    assert len(out) == 2
    decoded = unpack_message(out[0]).payload()
    assert decoded == SessionCapability("2.3", "2.0", "1.1.0.1")
    reference = PypsrpMessage(2, str(RPID), None, capability, Serializer()).pack()
    assert out[0] == reference


def test_feed_fragment_completes_the_message_on_its_end_fragment() -> None:
    """Fragments already decoded (e.g. one per rsp:Stream) reassemble like a byte stream (MS-PSRP 2.2.4)."""
    message = bytes(range(256)) * 8
    fragments = Fragmenter(max_size=FRAGMENT_HEADER_SIZE + 300).fragments(message)
    assert len(fragments) > 3
    defrag = Defragmenter()
    results = [defrag.feed_fragment(f) for f in fragments]
    assert results[:-1] == [None] * (len(fragments) - 1)
    assert results[-1] == message and defrag.idle
    with pytest.raises(PsrpDecodeError, match="without its start fragment"):
        Defragmenter().feed_fragment(fragments[1])
