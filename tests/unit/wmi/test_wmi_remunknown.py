"""IRemUnknown on the mock (MS-DCOM 3.1.1.5.6): RemQueryInterface, RemAddRef, RemRelease by IPID."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness.auth.users import LocalUser, UserDatabase
from harness.cim.mof import default_store
from harness.client.wmi import WmiClient, WmiError
from harness.targets.mock.wmi_server import WmiServer
from harness.wire.dcom.ndr import NdrReader, NdrWriter
from harness.wire.dcom.orpc import IID_IREMUNKNOWN, OrpcThis, read_orpcthat, write_orpcthis
from harness.wire.wmi.constants import IID_IENUM_WBEM_CLASS_OBJECT, IID_IWBEM_SERVICES

E_NOINTERFACE = 0x80004002


@pytest.fixture
async def wmi() -> AsyncIterator[tuple[WmiServer, WmiClient]]:
    users = UserDatabase([LocalUser("admin", "pw")])
    server = WmiServer(default_store(), users)
    await server.start()
    client = await WmiClient.connect("127.0.0.1", server.epm_port, "admin", "pw", timeout=10)
    yield server, client
    await client.close()
    await server.close()
    users.close()


async def _remunknown(client: WmiClient, opnum: int, body: NdrWriter) -> NdrReader:
    stub = await client._orpc.call(IID_IREMUNKNOWN, opnum, body.getvalue(), client.ipid_remunknown)
    r = NdrReader(stub)
    read_orpcthat(r)
    return r


async def test_rem_query_interface_gives_a_new_ipid_or_e_nointerface(wmi: tuple[WmiServer, WmiClient]) -> None:
    server, client = wmi
    w = NdrWriter()
    write_orpcthis(w, OrpcThis())
    w.guid(client.services)
    w.u32(1)
    w.u16(2)
    w.u32(2)
    w.guid(IID_IWBEM_SERVICES)
    w.guid(IID_IENUM_WBEM_CLASS_OBJECT)
    r = await _remunknown(client, 3, w)
    assert r.referent()
    assert r.u32() == 2
    results = []
    for _ in range(2):
        r.align(8)
        hr = r.u32()
        r.align(8)
        flags, refs, oxid, oid = r.u32(), r.u32(), r.u64(), r.u64()
        ipid = r.guid()
        if hr == 0:   # STDOBJREF of the same object: same OID, SORF_NOPING, public references granted
            assert flags & 0x1000 and refs == 5 and oid == server.runtime.exports[client.services].oid
        results.append((hr, oxid, ipid))
    assert r.u32() == 0
    (ok, oxid, ipid), (no, _, _) = results
    assert ok == 0 and oxid == server.runtime.oxid and ipid != client.services
    assert server.runtime.exports[ipid].obj is server.runtime.exports[client.services].obj
    assert no == E_NOINTERFACE


async def test_rem_release_frees_the_ipid(wmi: tuple[WmiServer, WmiClient]) -> None:
    server, client = wmi
    enum = await client.exec_query_enum("SELECT * FROM Win32_Service")
    assert enum.ipid in server.runtime.exports
    w = NdrWriter()
    write_orpcthis(w, OrpcThis())
    w.u16(1)
    w.u32(1)
    w.guid(enum.ipid)
    w.u32(2)
    w.u32(0)
    r = await _remunknown(client, 4, w)   # RemAddRef: 5 + 2 references
    assert r.referent() and r.u32() == 1 and r.u32() == 0 and r.u32() == 0
    await enum.release()                  # releases 5: two remain
    assert enum.ipid in server.runtime.exports
    w = NdrWriter()
    write_orpcthis(w, OrpcThis())
    w.u16(1)
    w.u32(1)
    w.guid(enum.ipid)
    w.u32(2)
    w.u32(0)
    assert (await _remunknown(client, 5, w)).u32() == 0
    assert enum.ipid not in server.runtime.exports
    with pytest.raises(WmiError):
        await enum.next(1)
