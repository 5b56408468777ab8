"""Property tests of the MS-WMIO codec: round trips and robustness on arbitrary bytes."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fuzz.wmio_strategies import classes, instances, objects
from harness.wire.wmio import (
    WmioDecodeError,
    decode_encoding_unit,
    decode_object_block,
    encode_encoding_unit,
)

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(objects(depth=1))
def test_decode_encode_roundtrip(obj: object) -> None:
    blob = encode_encoding_unit(obj)  # type: ignore[arg-type]
    assert decode_encoding_unit(blob) == obj


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects(depth=2))
def test_decode_encode_roundtrip_nested(obj: object) -> None:
    blob = encode_encoding_unit(obj)  # type: ignore[arg-type]
    assert decode_encoding_unit(blob) == obj


@SETTINGS
@given(objects(depth=1))
def test_encode_of_decoded_canonical_blob_is_identical(obj: object) -> None:
    blob = encode_encoding_unit(obj)  # type: ignore[arg-type]
    assert encode_encoding_unit(decode_encoding_unit(blob)) == blob


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_the_typed_error(data: bytes) -> None:
    for blob in (data, struct.pack("<II", 0x12345678, len(data)) + data):
        try:
            decode_encoding_unit(blob)
        except WmioDecodeError as exc:
            assert 0 <= exc.offset <= len(blob)
        with contextlib.suppress(WmioDecodeError):
            decode_object_block(data)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    obj = draw(st.one_of(classes(1), instances(1)))
    blob = bytearray(encode_encoding_unit(obj))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set32", "truncate", "insert"]))
        pos = draw(st.integers(0, max(0, len(blob) - 1)))
        if kind == "flip" and blob:
            blob[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set32" and len(blob) >= 4:
            pos = min(pos, len(blob) - 4)
            blob[pos:pos + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000,
                                                                           0x80000005, len(blob)])))
        elif kind == "truncate":
            del blob[pos:]
        else:
            blob[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(blob)


@SETTINGS
@given(_mutated())
def test_mutated_blobs_raise_only_the_typed_error(blob: bytes) -> None:
    try:
        decode_encoding_unit(blob)
    except WmioDecodeError as exc:
        assert exc.reason
