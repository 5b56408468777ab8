"""WinRM's RootSDDL decides who may create a WinRS shell (MS-WSMV 3.1.4.5; MS-WMOD 2.9.3;
harness.targets.mock.root_sddl)."""

from __future__ import annotations

import pytest

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.targets.mock import authorization as authz
from harness.targets.mock import root_sddl as rs
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import RESOURCE_SHELL_CMD

MACHINE = "WMH-MOCK01"
ADMIN = authz.principal_sids(MACHINE, "wmh", read_only=False)
READER = authz.principal_sids(MACHINE, "ro", read_only=True)
INTERACTIVE = "S-1-5-4"


@pytest.fixture(scope="module")
def store() -> CimStore:
    return default_store()


def _create(store: CimStore, sddl: str, principal: Principal) -> str:
    """Shell Create through the sans-IO service; the ShellId, or the fault raised."""
    service = WSManService(store, MockConfig(password="pw", root_sddl=sddl))
    request = sh.build_create_shell_request(Header(action="", resource_uri=RESOURCE_SHELL_CMD), sh.ShellSpec())
    _status, body = service.handle(request, principal)
    env = parse_envelope(body)
    if is_fault(env):
        raise parse_fault(env)
    return sh.parse_create_shell_response(env).shell_id


def test_default_is_the_observed_windows_value() -> None:
    assert MockConfig(password="pw").root_sddl == rs.DEFAULT_ROOT_SDDL
    sd = rs.parse_root_sddl(rs.DEFAULT_ROOT_SDDL)   # the SACL part is accepted and ignored
    assert sd.owner == "S-1-5-20" and sd.dacl is not None and len(sd.dacl) == 2
    assert rs.granted(sd, ADMIN) == rs.WINRM_READ | rs.WINRM_WRITE | rs.WINRM_EXECUTE
    assert rs.granted(sd, READER) == 0, "Remote Management Users are not in the default RootSDDL"
    assert rs.granted(sd, {INTERACTIVE}) == rs.WINRM_READ


def test_shell_rights_need_execute() -> None:
    rs.require_shell(rs.DEFAULT_ROOT_SDDL, ADMIN)
    with pytest.raises(authz.AccessDenied, match="GX"):
        rs.require_shell(rs.DEFAULT_ROOT_SDDL, READER)
    with pytest.raises(authz.AccessDenied):
        rs.require_shell("O:NSG:BAD:P(A;;GR;;;RM)", READER)          # read only
    rs.require_shell("O:NSG:BAD:P(A;;GX;;;RM)", READER)
    rs.require_shell("O:NSG:BA", READER)                             # no DACL: everything granted
    with pytest.raises(authz.AccessDenied):
        rs.require_shell("O:NSG:BAD:P", ADMIN)                       # empty DACL: nothing
    with pytest.raises(authz.AccessDenied):                          # deny before allow wins
        rs.require_shell("O:NSG:BAD:P(D;;GX;;;BA)(A;;GA;;;BA)", ADMIN)
    with pytest.raises(authz.AccessDenied, match="invalid"):        # malformed: fails closed
        rs.require_shell("O:NSG:BAD:P(A;;ZZ;;;BA)", ADMIN)


def test_service_applies_root_sddl_to_shell_create(store: CimStore) -> None:
    admin, reader = Principal("wmh"), Principal("ro", read_only=True)
    assert _create(store, rs.DEFAULT_ROOT_SDDL, admin)
    with pytest.raises(WSManFault) as denied:
        _create(store, rs.DEFAULT_ROOT_SDDL, reader)
    assert denied.value.subcode_name == "AccessDenied" and "RootSDDL" in str(denied.value)
    granted = rs.DEFAULT_ROOT_SDDL.replace("(A;;GR;;;IU)", "(A;;GR;;;IU)(A;;GX;;;RM)")
    assert _create(store, granted, reader)
    with pytest.raises(WSManFault) as admin_denied:
        _create(store, "O:NSG:BAD:P(A;;GR;;;BA)", admin)
    assert admin_denied.value.subcode_name == "AccessDenied"
