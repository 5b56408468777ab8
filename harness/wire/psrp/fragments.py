"""MS-PSRP 2.2.4 packet fragments: splitting PSRP messages into fragments and reassembling them.

Wire layout of one fragment (MS-PSRP 2.2.4), all integers big-endian::

    ObjectId   uint64   identifies the message; increases by one per message sent on a stream
    FragmentId uint64   0 for the first fragment of the message, then +1
    flags      uint8    bit 0x1 S (start: first fragment), bit 0x2 E (end: last fragment), other bits reserved
    BlobLength uint32   length of the blob that follows
    Blob       bytes    the next BlobLength bytes of the message

A message that fits one fragment has both S and E set. Several fragments may be concatenated in one WinRS stream
chunk (MS-PSRP 2.2.4, carried in MS-WSMV ``rsp:Stream``) and a fragment may be split across chunks; the
:class:`Defragmenter` accepts arbitrary chunking.

Fragment size and MaxEnvelopeSize (read from the public implementations, facts only):

* The fragments travel base64-encoded in the ``rsp:Send`` / ``rsp:Receive`` stream (and in ``creationXml``), so
  ``n`` fragment bytes occupy ``4 * ceil(n / 3)`` characters of the SOAP envelope.
* pypsrp (``WSMan._calc_envelope_size``) builds a skeleton ``Send`` envelope with an empty stream, adds 256 bytes
  of slack for optional headers, subtracts that from ``MaxEnvelopeSize`` and multiplies the remainder by 3/4; its
  ``Fragmenter`` then removes the 21-byte fragment header. For the default 153600-byte envelope the reserved
  overhead is 1664 bytes (``DEFAULT_ENVELOPE_OVERHEAD``).
* pypsrp computes ``int(available / 4 * 3)``, which can exceed the exact base64 bound by up to two bytes;
  :func:`max_fragment_size` uses the exact bound ``available // 4 * 3``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError

FRAGMENT_HEADER: Final = struct.Struct(">QQBI")
FRAGMENT_HEADER_SIZE: Final = FRAGMENT_HEADER.size  # 21
FLAG_START: Final = 0x1
FLAG_END: Final = 0x2
DEFAULT_MAX_ENVELOPE_SIZE: Final = 153_600
"""WS-Man MaxEnvelopeSize default of Windows (150 KiB, MS-WSMV ``MaxEnvelopeSizekb`` 150) and of pypsrp."""
DEFAULT_ENVELOPE_OVERHEAD: Final = 1_664
"""Bytes reserved for the SOAP envelope around the stream data (pypsrp: measured skeleton Send + 256)."""
DEFAULT_MAX_MESSAGE_SIZE: Final = 256 * 1024 * 1024
DEFAULT_MAX_PENDING: Final = 64


@dataclass(frozen=True)
class Fragment:
    """One MS-PSRP 2.2.4 fragment."""

    object_id: int
    fragment_id: int
    start: bool
    end: bool
    blob: bytes

    def pack(self) -> bytes:
        if not 0 <= self.object_id < 2**64 or not 0 <= self.fragment_id < 2**64:
            raise PsrpEncodeError("ObjectId and FragmentId are uint64")
        if len(self.blob) >= 2**32:
            raise PsrpEncodeError("fragment blob longer than uint32")
        flags = (FLAG_START if self.start else 0) | (FLAG_END if self.end else 0)
        return FRAGMENT_HEADER.pack(self.object_id, self.fragment_id, flags, len(self.blob)) + self.blob


def unpack_fragment(data: bytes | bytearray, offset: int = 0) -> tuple[Fragment, int]:
    """Decode the fragment at ``offset``; returns it and the offset just past it (MS-PSRP 2.2.4)."""
    if len(data) - offset < FRAGMENT_HEADER_SIZE:
        raise PsrpDecodeError(f"truncated fragment header at offset {offset}")
    object_id, fragment_id, flags, length = FRAGMENT_HEADER.unpack_from(data, offset)
    if flags & ~(FLAG_START | FLAG_END):
        raise PsrpDecodeError(f"reserved fragment flag bits set (0x{flags:02x}) at offset {offset}")
    end = offset + FRAGMENT_HEADER_SIZE + length
    if end > len(data):
        raise PsrpDecodeError(f"fragment blob of {length} bytes truncated at offset {offset}")
    blob = bytes(data[offset + FRAGMENT_HEADER_SIZE : end])
    return Fragment(object_id, fragment_id, bool(flags & FLAG_START), bool(flags & FLAG_END), blob), end


def unpack_fragments(data: bytes) -> list[Fragment]:
    """Every fragment of a complete stream chunk (no partial fragment allowed)."""
    fragments: list[Fragment] = []
    offset = 0
    while offset < len(data):
        fragment, offset = unpack_fragment(data, offset)
        fragments.append(fragment)
    return fragments


def max_fragment_size(max_envelope_size: int, envelope_overhead: int = DEFAULT_ENVELOPE_OVERHEAD) -> int:
    """Largest whole fragment (header + blob) whose base64 form fits the envelope.

    ``available = MaxEnvelopeSize - envelope_overhead``; base64 turns ``n`` bytes into ``4*ceil(n/3)``
    characters, so at most ``available // 4 * 3`` fragment bytes fit.
    """
    available = max_envelope_size - envelope_overhead
    size = available // 4 * 3
    if size <= FRAGMENT_HEADER_SIZE:
        raise PsrpEncodeError(f"MaxEnvelopeSize {max_envelope_size} leaves no room for a fragment blob")
    return size


class Fragmenter:
    """Splits messages into fragments of at most ``max_size`` bytes each (header included).

    ObjectIds start at ``first_object_id`` and increase by one per message (MS-PSRP 2.2.4).
    """

    def __init__(self, max_size: int = max_fragment_size(DEFAULT_MAX_ENVELOPE_SIZE), first_object_id: int = 1) -> None:
        if max_size <= FRAGMENT_HEADER_SIZE:
            raise PsrpEncodeError(f"max fragment size must exceed the {FRAGMENT_HEADER_SIZE}-byte header")
        self.max_size = max_size
        self.next_object_id = first_object_id

    @classmethod
    def for_envelope(cls, max_envelope_size: int, envelope_overhead: int = DEFAULT_ENVELOPE_OVERHEAD) -> Fragmenter:
        return cls(max_fragment_size(max_envelope_size, envelope_overhead))

    def fragments(self, message: bytes) -> list[Fragment]:
        """The fragments of one message; consumes one ObjectId."""
        object_id = self.next_object_id
        self.next_object_id += 1
        room = self.max_size - FRAGMENT_HEADER_SIZE
        count = max(1, -(-len(message) // room))
        return [
            Fragment(object_id, index, index == 0, index == count - 1, message[index * room : (index + 1) * room])
            for index in range(count)
        ]

    def fragment(self, message: bytes) -> list[bytes]:
        """Packed fragments of one message, one ``bytes`` per fragment (same bytes as :meth:`fragments`)."""
        object_id = self.next_object_id
        self.next_object_id += 1
        room = self.max_size - FRAGMENT_HEADER_SIZE
        count = max(1, -(-len(message) // room))
        view = memoryview(message)
        pack = FRAGMENT_HEADER.pack
        out: list[bytes] = []
        for index in range(count):
            blob = view[index * room : (index + 1) * room]
            flags = (FLAG_START if index == 0 else 0) | (FLAG_END if index == count - 1 else 0)
            out.append(b"".join((pack(object_id, index, flags, len(blob)), blob)))
        return out

    def fragment_many(self, messages: Iterable[bytes]) -> list[bytes]:
        """Pack several messages into as few chunks of at most ``max_size`` bytes as possible.

        Consecutive whole fragments share a chunk (MS-PSRP 2.2.4: a stream chunk may hold several fragments);
        no fragment is cut at a chunk boundary here, each chunk is a sequence of complete fragments.
        """
        chunks: list[bytes] = []
        current = bytearray()
        for message in messages:
            object_id = self.next_object_id
            self.next_object_id += 1
            offset = 0
            index = 0
            while True:
                room = self.max_size - len(current) - FRAGMENT_HEADER_SIZE
                if room <= 0:
                    chunks.append(bytes(current))
                    current = bytearray()
                    continue
                blob = message[offset : offset + room]
                offset += len(blob)
                last = offset >= len(message)
                current += Fragment(object_id, index, index == 0, last, blob).pack()
                index += 1
                if last:
                    break
        if current:
            chunks.append(bytes(current))
        return chunks


@dataclass
class _Pending:
    next_fragment_id: int
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class Defragmenter:
    """Reassembles messages from stream chunks of any size (MS-PSRP 2.2.4, 3.1.5.1.1).

    :meth:`feed` takes the next bytes of the stream and returns the messages completed by them. Raises
    :class:`PsrpDecodeError` on a fragment out of order, missing, duplicated, a message without its start
    fragment, a reused ObjectId or a message larger than ``max_message_size``. With ``strict_object_order`` (the
    default) a new message must have an ObjectId greater than every ObjectId seen before on the stream.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        strict_object_order: bool = True,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_pending = max_pending
        self.strict_object_order = strict_object_order
        self._buffer = bytearray()
        self._pending: dict[int, _Pending] = {}
        self._highest_object_id = -1
        self._failed: PsrpDecodeError | None = None

    @property
    def idle(self) -> bool:
        """True when no partial fragment and no partial message is buffered."""
        return not self._buffer and not self._pending

    def feed(self, data: bytes) -> list[bytes]:
        """Append stream bytes; returns the completed messages. After an error the stream stays failed."""
        if self._failed is not None:
            raise PsrpDecodeError(f"stream already failed: {self._failed.reason}")
        try:
            return self._feed(data)
        except PsrpDecodeError as exc:
            self._failed = exc
            raise

    def _feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= FRAGMENT_HEADER_SIZE:
            _, _, _, length = FRAGMENT_HEADER.unpack_from(buffer, offset)
            if length > self.max_message_size:
                raise PsrpDecodeError(f"fragment blob of {length} bytes exceeds the message size limit")
            if len(buffer) - offset < FRAGMENT_HEADER_SIZE + length:
                break
            fragment, offset = unpack_fragment(buffer, offset)
            message = self._accept(fragment)
            if message is not None:
                messages.append(message)
        del buffer[:offset]
        return messages

    def feed_fragment(self, fragment: Fragment) -> bytes | None:
        """Accept one already decoded fragment; returns the message it completes, if any."""
        return self._accept(fragment)

    def close(self) -> None:
        """Declare the end of the stream: raises if a fragment or a message is incomplete."""
        if self._buffer:
            raise PsrpDecodeError(f"stream ended inside a fragment ({len(self._buffer)} bytes buffered)")
        if self._pending:
            ids = sorted(self._pending)
            raise PsrpDecodeError(f"stream ended with incomplete messages (ObjectIds {ids[:8]})")

    def _accept(self, fragment: Fragment) -> bytes | None:
        pending = self._pending.get(fragment.object_id)
        if pending is None:
            if not fragment.start:
                raise PsrpDecodeError(
                    f"fragment {fragment.fragment_id} of ObjectId {fragment.object_id} without its start fragment"
                    " (missing or out-of-order fragment)"
                )
            if fragment.fragment_id != 0:
                raise PsrpDecodeError(
                    f"start fragment of ObjectId {fragment.object_id} has FragmentId {fragment.fragment_id}, expected 0"
                )
            if fragment.object_id <= self._highest_object_id and self.strict_object_order:
                raise PsrpDecodeError(
                    f"ObjectId {fragment.object_id} not greater than {self._highest_object_id}"
                    " (duplicate or out-of-order message)"
                )
            self._highest_object_id = max(self._highest_object_id, fragment.object_id)
            if fragment.end:
                return fragment.blob
            if len(self._pending) >= self.max_pending:
                raise PsrpDecodeError(f"more than {self.max_pending} messages interleaved")
            pending = _Pending(1, [fragment.blob], len(fragment.blob))
            self._pending[fragment.object_id] = pending
            return None
        if fragment.start:
            raise PsrpDecodeError(f"second start fragment for ObjectId {fragment.object_id}")
        if fragment.fragment_id != pending.next_fragment_id:
            kind = "duplicate" if fragment.fragment_id < pending.next_fragment_id else "missing"
            raise PsrpDecodeError(
                f"{kind} fragment: ObjectId {fragment.object_id} FragmentId {fragment.fragment_id},"
                f" expected {pending.next_fragment_id}"
            )
        pending.size += len(fragment.blob)
        if pending.size > self.max_message_size:
            raise PsrpDecodeError(f"message larger than {self.max_message_size} bytes")
        pending.parts.append(fragment.blob)
        pending.next_fragment_id += 1
        if not fragment.end:
            return None
        del self._pending[fragment.object_id]
        return b"".join(pending.parts)
