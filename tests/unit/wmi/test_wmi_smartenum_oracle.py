"""Our ObjectArray packets read by code we did not write (MS-WMI 2.2.14).

* impacket (``impacket.dcerpc.v5.dcom.wmi``) declares ObjectArray, WBEM_DATAPACKET_OBJECT and the
  three WBEMOBJECT_* structures (2.2.14-2.2.14.4) and decodes MS-WMIO ObjectBlocks, but has no
  EncodingUnitInstanceNoClass decoder: the test rebuilds each NOCLASS object as MS-WMIO 2.2.3 defines
  it, from the CurrentClass bytes impacket itself parsed out of the WBEMOBJECT_INSTANCE.
* aiowmi decodes IWbemWCOSmartEnum::Next packets with its own class-part cache (it is a WMI client
  that interoperates with Windows); it is used on our packets offline and, live, against the mock,
  where its query context switches to the smart enumerator.

Both are optional: the tests skip without them.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from harness.auth.users import LocalUser, UserDatabase
from harness.cim.mof import default_store
from harness.targets.mock import wmi_server as wmi_server_mod
from harness.targets.mock.wmi_server import WmiServer
from harness.wire.wmi.datapacket import ClassIdMap, ObjectType, encode_object_array
from harness.wire.wmio import WmiInstance

NS = "root/cimv2"
PASSWORD = "0racle-Pw!"


def _services() -> list[WmiInstance]:
    store = default_store()
    objects = wmi_server_mod._Objects(store, "WMH-ORACLE")
    return [objects.instance(NS, i) for i in store.enumerate_instances(NS, "Win32_Service")]


def _expected(inst: WmiInstance) -> dict[str, Any]:
    """String, integer and boolean values as both decoders represent them (NULL strings as '')."""
    out: dict[str, Any] = {}
    for prop in inst.class_.properties:
        value = inst.get(prop.name)
        if prop.is_array or isinstance(value, float):
            continue
        out[prop.name] = value
    return out


def test_impacket_structures_parse_our_object_array() -> None:
    wmi = pytest.importorskip("impacket.dcerpc.v5.dcom.wmi")
    insts = _services()[:5]
    packet = encode_object_array(insts, class_ids=ClassIdMap())
    head = wmi.ObjectArray(packet)
    assert head["dwByteOrdering"] == 0 and head["abSignature"] == b"WBEMDATA"
    assert head["dwSizeOfHeader1"] == 0x1A and head["dwFlags"] == 0 and head["bVersion"] == 1
    assert head["bPacketType"] == 1 and head["dwSizeOfHeader2"] == 8 and head["dwSizeOfHeader3"] == 12
    assert head["dwNumObjects"] == 5 and head["dwDataSize3"] == len(head["wbemObjects"]) == len(packet) - 46
    assert head["dwDataSize2"] == head["dwDataSize3"] + 12 and head["dwDataSize1"] == head["dwDataSize2"] + 8
    rest = head["wbemObjects"]
    current_class = b""
    class_id = b""
    for n, inst in enumerate(insts):
        obj = wmi.WBEM_DATAPACKET_OBJECT(rest)
        assert obj["dwSizeOfHeader"] == 9 and len(obj["Object"]) == obj["dwSizeOfData"]
        rest = rest[9 + obj["dwSizeOfData"]:]
        if n == 0:
            assert obj["bObjectType"] == ObjectType.INSTANCE
            part = wmi.WBEMOBJECT_INSTANCE(obj["Object"])
            data = part["ObjectData"]
            class_id = part["classID"]
            block = wmi.OBJECT_BLOCK(data)
            current_class = block["InstanceType"]["CurrentClass"].getData()
        else:
            assert obj["bObjectType"] == ObjectType.INSTANCE_NOCLASS
            part = wmi.WBEMOBJECT_INSTANCE_NOCLASS(obj["Object"])
            assert part["classID"] == class_id
            bare = part["ObjectData"]
            assert bare[0] & 0x01 == 0 and bare[0] & 0x04 == 0x04       # instance, decorated
            # ObjectFlags, Decoration (two Encoded-Strings), then the InstanceType minus CurrentClass
            pos = 1
            for _ in range(2):
                pos = bare.index(b"\x00", pos + 1) + 1                  # compressed strings here
            data = bare[:pos] + current_class + bare[pos:]
            block = wmi.OBJECT_BLOCK(data)
        assert part["dwSizeOfHeader"] == 0x18 and part["dwSizeOfData"] == len(part["ObjectData"])
        block.parseObject()
        props = block.ctCurrent["properties"]
        assert block.ctCurrent["name"].split(" : ")[0] == "Win32_Service"
        got = {name: props[name]["value"] for name in _expected(inst)}
        want = {k: ("True" if v is True else "False" if v is False else v) for k, v in _expected(inst).items()}
        both = [k for k in want if want[k] is not None and got[k] is not None]
        assert len(both) >= 5 and {k: got[k] for k in both} == {k: want[k] for k in both}
        assert got["Name"] == inst.values["Name"]
    assert rest == b""


def _aiowmi_rows(packets: list[bytes]) -> list[dict[str, Any]]:
    datapacket = pytest.importorskip("aiowmi.ndr.wbem_datapacket_object")
    next_response = pytest.importorskip("aiowmi.ndr.next_response")

    class One(next_response.NextResponse):   # type: ignore[misc,name-defined]
        def __init__(self, block: Any) -> None:
            self._obj_block = block

        def _get_object_block(self) -> Any:
            return self._obj_block

    parts: dict[str, Any] = {}
    rows = []
    for packet in packets:
        assert packet[25] == 1                # aiowmi requires bPacketType 1 in smart Next answers
        count = struct.unpack_from("<I", packet, 42)[0]
        pos = 46
        for _ in range(count):
            block, pos = datapacket.WbemDatapacketObject.from_data(packet, pos, parts)
            rows.append({k: p.value for k, p in One(block).get_properties().items()})
        assert pos == len(packet)
    return rows


def test_aiowmi_decodes_our_packets_with_the_class_sent_once() -> None:
    insts = _services()
    ids = ClassIdMap()
    # one object per packet, as aiowmi asks: the class travels in the first packet only
    packets = [encode_object_array(insts[:1], class_ids=ids)] + [
        encode_object_array([inst], class_ids=ids) for inst in insts[1:]]
    assert all(p[54] == ObjectType.INSTANCE_NOCLASS for p in packets[1:])
    rows = _aiowmi_rows(packets)
    assert len(rows) == len(insts)
    for row, inst in zip(rows, insts, strict=True):
        want = _expected(inst)
        assert {k: row[k] for k in want} == {k: ("" if v is None and isinstance(row[k], str) else
                                                 0 if v is None and isinstance(row[k], int) else v)
                                             for k, v in want.items()}


def test_aiowmi_client_enumerates_through_the_mock_smart_enumerator(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = pytest.importorskip("aiowmi.connection")
    query_mod = pytest.importorskip("aiowmi.query")
    calls: list[int] = []
    original = wmi_server_mod.SmartEnumerator.invoke

    async def counting(self: Any, *args: Any) -> None:
        calls.append(1)
        await original(self, *args)

    monkeypatch.setattr(wmi_server_mod.SmartEnumerator, "invoke", counting)
    store = default_store()

    async def run() -> tuple[list[dict[str, Any]], str]:
        users = UserDatabase([LocalUser("admin", PASSWORD)])
        server = WmiServer(store, users)
        await server.start()
        conn = connection.Connection("127.0.0.1", "admin", PASSWORD, port=server.epm_port)
        await conn.connect()
        rows: list[dict[str, Any]] = []
        try:
            service = await conn.negotiate_ntlm()
            query = query_mod.Query("SELECT * FROM Win32_Service", namespace=NS)
            async with query.context(conn, service) as qc:
                # aiowmi's own is_optimized compares bound methods with "is" and is always False
                path = qc.next.__name__
                async for props in qc.results():
                    rows.append({name: prop.value for name, prop in props.items()})
        finally:
            conn.close()
            await server.close()
            users.close()
        return rows, path

    rows, path = asyncio.run(asyncio.wait_for(run(), 30))
    want = store.exec_query(NS, "SELECT * FROM Win32_Service")
    assert path == "_next_smart"
    assert [r["Name"] for r in rows] == [str(i["Name"]) for i in want]
    assert [r["State"] for r in rows] == [str(i["State"]) for i in want]
    assert len(calls) == len(want) + 1        # one object per Next, then WBEM_S_FALSE
