"""Seeded mutation fuzzing of the DCE/RPC server's PDU handler and the NDR/OBJREF decoders: every
input is answered with well-formed PDUs (bind_nak, fault, ...) or a typed error, never a crash."""

from __future__ import annotations

import contextlib
import random
import uuid

import pytest

from harness.auth.users import LocalUser, UserDatabase
from harness.transport.dcerpc_dcom import DcomRuntime
from harness.transport.dcerpc_server import RpcConnection, RpcServer
from harness.wire.dcom.ndr import NdrError
from harness.wire.dcom.orpc import (
    CLSID_INSTANTIATION_INFO,
    IID_IOBJECTEXPORTER,
    IID_IREMOTESCMACTIVATOR,
    build_activation_request,
    decode_objref,
    parse_activation_blob,
    parse_activation_reply,
)
from harness.wire.dcom.pdu import (
    NDR_SYNTAX,
    Bind,
    ContextElement,
    Pdu,
    PduError,
    PType,
    Request,
    SecTrailer,
    decode_pdu,
    encode_pdu,
)

SEEDS = range(300)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.5 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice < 0.7 and buf:
            del buf[rng.randrange(len(buf)):]
        else:
            buf[rng.randrange(len(buf) + 1):0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    if len(buf) >= 10 and rng.random() < 0.7:
        buf[8:10] = len(buf).to_bytes(2, "little")   # keep the frame consistent most of the time
    return bytes(buf)


SAMPLES = [
    encode_pdu(Pdu(PType.BIND, 1, Bind(contexts=[ContextElement(0, (IID_IOBJECTEXPORTER, 0, 0), [NDR_SYNTAX])]))),
    encode_pdu(Pdu(PType.BIND, 1, Bind(contexts=[ContextElement(0, (IID_IREMOTESCMACTIVATOR, 0, 0), [NDR_SYNTAX])]),
                   auth=SecTrailer(10, 6, 0, 7, b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(24)))),
    encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 5, b""))),
    encode_pdu(Pdu(PType.REQUEST, 3, Request(0, 4, bytes(8) + b"\x01\x00\x00\x00\x01\x00\x00\x00\x07\x00"))),
    encode_pdu(Pdu(PType.REQUEST, 4, Request(0, 3, bytes(40), uuid.uuid4()), auth=SecTrailer(10, 5, 0, 7, bytes(16)))),
    encode_pdu(Pdu(PType.ALTER_CONTEXT, 5, Bind(contexts=[ContextElement(1, (IID_IOBJECTEXPORTER, 0, 0),
                                                                         [NDR_SYNTAX])]))),
]


@pytest.fixture(scope="module")
def users() -> UserDatabase:
    return UserDatabase([LocalUser("u", "p")])


async def test_server_answers_every_mutated_pdu(users: UserDatabase) -> None:
    server = RpcServer(DcomRuntime(orpc_port=1), users)
    for seed in SEEDS:
        rng = random.Random(seed)
        conn = RpcConnection(server, "fuzz")
        for raw in SAMPLES[:2]:
            await conn.handle(raw)
        data = _mutate(rng, rng.choice(SAMPLES))
        for reply in await conn.handle(data):
            decode_pdu(reply)   # every answer is itself a well-formed PDU


def test_decoders_raise_only_typed_errors() -> None:
    blob = build_activation_request(CLSID_INSTANTIATION_INFO, [uuid.uuid4()])
    for seed in SEEDS:
        rng = random.Random(seed)
        data = _mutate(rng, blob)
        for decoder in (decode_objref, parse_activation_blob, parse_activation_reply):
            with contextlib.suppress(NdrError):
                decoder(data)
        with contextlib.suppress(PduError):
            decode_pdu(_mutate(rng, rng.choice(SAMPLES)))
