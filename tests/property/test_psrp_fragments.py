"""Property tests of MS-PSRP 2.2.4 fragmenting: round trips over random sizes and chunkings, pypsrp agreement,
and robustness of the defragmenter on arbitrary bytes."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypsrp.powershell import Fragmenter as PypsrpFragmenter
from pypsrp.serializer import Serializer

from harness.wire.psrp.errors import PsrpDecodeError
from harness.wire.psrp.fragments import FRAGMENT_HEADER_SIZE, Defragmenter, Fragmenter
from harness.wire.psrp.messages import Destination, PipelineOutput, build_message

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

messages = st.lists(st.binary(max_size=400), min_size=1, max_size=6)
fragment_sizes = st.integers(FRAGMENT_HEADER_SIZE + 1, 300)
chunk_sizes = st.lists(st.integers(1, 120), min_size=1, max_size=20)


def feed_in_chunks(defragmenter: Defragmenter, stream: bytes, sizes: list[int]) -> list[bytes]:
    out: list[bytes] = []
    offset = 0
    index = 0
    while offset < len(stream):
        size = sizes[index % len(sizes)]
        out.extend(defragmenter.feed(stream[offset : offset + size]))
        offset += size
        index += 1
    return out


@SETTINGS
@given(messages, fragment_sizes, chunk_sizes)
def test_fragment_defragment_round_trip(payloads: list[bytes], max_size: int, sizes: list[int]) -> None:
    fragmenter = Fragmenter(max_size=max_size)
    packed = [fragmenter.fragment(p) for p in payloads]
    assert all(len(f) <= max_size for fs in packed for f in fs)
    stream = b"".join(b"".join(fs) for fs in packed)
    defragmenter = Defragmenter()
    assert feed_in_chunks(defragmenter, stream, sizes) == payloads
    defragmenter.close()


@SETTINGS
@given(messages, fragment_sizes, chunk_sizes)
def test_fragment_many_round_trip(payloads: list[bytes], max_size: int, sizes: list[int]) -> None:
    chunks = Fragmenter(max_size=max_size).fragment_many(payloads)
    assert all(len(chunk) <= max_size for chunk in chunks)
    assert feed_in_chunks(Defragmenter(), b"".join(chunks), sizes) == payloads


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=300), st.integers(FRAGMENT_HEADER_SIZE + 1, 200))
def test_pypsrp_defragments_our_fragments(text: str, max_size: int) -> None:
    rpid = uuid.UUID(int=7)
    message = build_message(Destination.CLIENT, PipelineOutput(text), rpid, uuid.UUID(int=9))
    stream = b"".join(Fragmenter(max_size=max_size).fragment(message))
    decoded: list[Any] = PypsrpFragmenter(1000, Serializer()).defragment(stream)
    assert len(decoded) == 1 and decoded[0].data.data == text


@SETTINGS
@given(st.binary(max_size=300), chunk_sizes)
def test_defragmenter_never_crashes(data: bytes, sizes: list[int]) -> None:
    defragmenter = Defragmenter(max_message_size=4096)
    try:
        feed_in_chunks(defragmenter, data, sizes)
        defragmenter.close()
    except PsrpDecodeError:
        pass


@SETTINGS
@given(messages, fragment_sizes, st.data())
def test_dropping_or_repeating_a_fragment_is_detected(
    payloads: list[bytes], max_size: int, data: st.DataObject
) -> None:
    fragmenter = Fragmenter(max_size=max_size)
    fragments = [f for p in payloads for f in fragmenter.fragments(p)]
    index = data.draw(st.integers(0, len(fragments) - 1))
    mutation = data.draw(st.sampled_from(["drop", "repeat"]))
    kept = (
        fragments[:index] + fragments[index + 1 :] if mutation == "drop" else fragments[: index + 1] + fragments[index:]
    )
    defragmenter = Defragmenter()
    try:
        out = defragmenter.feed(b"".join(f.pack() for f in kept))
        defragmenter.close()
    except PsrpDecodeError:
        return
    # The one undetectable case: a whole single-fragment message vanished (ObjectIds may have gaps).
    lost = fragments[index]
    assert mutation == "drop" and lost.start and lost.end
    assert out == payloads[: lost.object_id - 1] + payloads[lost.object_id :]
