"""Property tests of the ObjectArray codec (MS-WMI 2.2.14): round trips with the class-once rule
across packets, and robustness on random and mutated bytes (only DataPacketError, offset in range)."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fuzz.wmio_strategies import decorations, instances, objects
from harness.wire.wmi.datapacket import (
    ClassCache,
    ClassIdMap,
    DataPacketError,
    ObjectType,
    decode_object_array,
    encode_object_array,
)
from harness.wire.wmio import WmiInstance, WmiObject

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def batches(draw: st.DrawFn) -> list[WmiObject]:
    """Classes and instances, plus further instances sharing the class of earlier ones (with their own
    values and Decoration), in any order."""
    out: list[WmiObject] = draw(st.lists(objects(1), max_size=4))
    for _ in range(draw(st.integers(0, 4))):
        seeds = [o for o in out if isinstance(o, WmiInstance)]
        if not seeds:
            out.append(draw(instances(1)))
            continue
        seed = draw(st.sampled_from(seeds))
        donor = draw(instances(1))
        values = {k: v for k, v in seed.values.items() if draw(st.booleans())}
        out.insert(draw(st.integers(0, len(out))),
                   WmiInstance(seed.class_, values, donor.qualifiers, None, draw(decorations()), 0))
    return out


@SETTINGS
@given(batches(), st.integers(1, 4))
def test_decode_of_encode_is_identity_across_packets(batch: list[WmiObject], packets: int) -> None:
    ids, cache = ClassIdMap(), ClassCache()
    size = max(1, -(-len(batch) // packets))
    decoded: list[WmiObject] = []
    kinds: list[ObjectType] = []
    for k in range(0, max(len(batch), 1), size):
        array = decode_object_array(encode_object_array(batch[k:k + size], class_ids=ids), cache=cache)
        decoded += array.objects
        kinds += [e.kind for e in array.entries]
    assert decoded == batch
    # MS-WMI 2.2.14: only the first instance of every class carries the class
    instance_kinds = [kind for kind in kinds if kind != ObjectType.CLASS]
    assert instance_kinds.count(ObjectType.INSTANCE) == len(ids.ids) == len(cache.classes)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    blob = bytearray(encode_object_array(draw(batches())))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set32", "truncate", "insert"]))
        if kind == "truncate" or not blob:
            del blob[draw(st.integers(0, len(blob))):]
            continue
        at = draw(st.integers(0, len(blob) - 1))
        if kind == "flip":
            blob[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set32":
            value = draw(st.sampled_from([0, 1, 3, 9, 0x18, 0x7FFFFFFF, 0xFFFFFFFF, draw(st.integers(0, 2**32 - 1))]))
            blob[at:at + 4] = struct.pack("<I", value)
        else:
            blob[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(blob)


def _decodes_or_typed_error(data: bytes) -> None:
    try:
        decode_object_array(data)
    except DataPacketError as exc:
        assert 0 <= exc.offset <= len(data), (exc.offset, len(data))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_packets_raise_only_the_typed_error(data: bytes) -> None:
    _decodes_or_typed_error(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256), st.integers(0, 40))
def test_random_bytes_after_a_valid_header_raise_only_the_typed_error(tail: bytes, count: int) -> None:
    head = struct.pack("<I8sIIIBBIIIII", 0, b"WBEMDATA", 0x1A, 20 + len(tail), 0, 1, 1, 8, 12 + len(tail), 12,
                       len(tail), count)
    _decodes_or_typed_error(head + tail)
    _decodes_or_typed_error(tail)
