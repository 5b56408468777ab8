"""The DACL access check of the mock (MS-DTYP 2.5.3.2) over namespace rights (WBEM_SECURITY_FLAGS)."""

from __future__ import annotations

import pytest

from harness.cim.security import DEFAULT_NAMESPACE_SDDL, SddlError, sddl_to_binary
from harness.targets.mock import authorization as authz


def sd(sddl: str) -> authz.SecurityDescriptor:
    return authz.parse_security_descriptor(sddl_to_binary(sddl))


ADMIN = authz.principal_sids("WMH-MOCK01", "wmh", read_only=False)
READER = authz.principal_sids("WMH-MOCK01", "reader", read_only=True)


def test_right_values_are_those_of_wbemcli_and_ms_dtyp() -> None:
    assert (authz.WBEM_ENABLE, authz.WBEM_METHOD_EXECUTE, authz.WBEM_FULL_WRITE_REP, authz.WBEM_PARTIAL_WRITE_REP,
            authz.WBEM_WRITE_PROVIDER, authz.WBEM_REMOTE_ACCESS) == (0x1, 0x2, 0x4, 0x8, 0x10, 0x20)
    assert (authz.READ_CONTROL, authz.WRITE_DAC) == (0x20000, 0x40000)


def test_tokens_of_the_mock_users() -> None:
    assert authz.ADMINISTRATORS in ADMIN and authz.ADMINISTRATORS not in READER
    assert authz.AUTHENTICATED_USERS in READER and authz.REMOTE_MANAGEMENT_USERS in READER
    admin_sid = authz.user_sid("WMH-MOCK01", "wmh", administrator=True)
    assert admin_sid.endswith("-500") and admin_sid.startswith("S-1-5-21-") and admin_sid in ADMIN
    reader_sid = authz.user_sid("WMH-MOCK01", "reader", administrator=False)
    assert reader_sid in READER and int(reader_sid.rsplit("-", 1)[1]) >= 1000
    assert reader_sid != authz.user_sid("WMH-MOCK01", "other", administrator=False)
    assert authz.domain_sid("WMH-MOCK01") == authz.domain_sid("wmh-mock01") != authz.domain_sid("OTHER")


def test_default_namespace_security() -> None:
    default = sd(DEFAULT_NAMESPACE_SDDL)
    assert authz.granted_rights(default, ADMIN) == 0x6003F
    reader = authz.granted_rights(default, READER)
    assert reader == (authz.WBEM_ENABLE | authz.WBEM_METHOD_EXECUTE | authz.WBEM_WRITE_PROVIDER
                      | authz.WBEM_REMOTE_ACCESS)
    authz.require(default, READER, authz.READ_RIGHTS, "root/cimv2")
    with pytest.raises(authz.AccessDenied, match="Full Write"):
        authz.require_write(default, READER, "root/cimv2")
    with pytest.raises(authz.AccessDenied, match="READ_CONTROL"):
        authz.require(default, READER, authz.GET_SD_RIGHTS, "root/cimv2")
    authz.require_write(default, ADMIN, "root/cimv2")


def test_authenticated_users_alone_lack_remote_enable() -> None:
    """WBEM_REMOTE_ACCESS is Administrators-only in the Windows default: a caller that is only an
    Authenticated User is refused every remote operation."""
    only_au = {authz.EVERYONE, authz.AUTHENTICATED_USERS, authz.NETWORK}
    with pytest.raises(authz.AccessDenied, match="Remote Enable"):
        authz.require(sd(DEFAULT_NAMESPACE_SDDL), only_au, authz.READ_RIGHTS, "root/cimv2")


def test_deny_ace_before_allow_wins_and_after_allow_does_not() -> None:
    deny_first = sd("O:BAG:BAD:(D;;LCSW;;;BA)(A;;CCDCLCSWRPWPRCWD;;;BA)")
    assert not authz.access_allowed(deny_first, ADMIN, authz.WBEM_PARTIAL_WRITE_REP)
    assert authz.access_allowed(deny_first, ADMIN, authz.WBEM_ENABLE | authz.WBEM_REMOTE_ACCESS)
    with pytest.raises(authz.AccessDenied):
        authz.require_write(deny_first, ADMIN, "root/cimv2")
    allow_first = sd("O:BAG:BAD:(A;;CCDCLCSWRPWPRCWD;;;BA)(D;;LCSW;;;BA)")
    assert authz.access_allowed(allow_first, ADMIN, authz.WBEM_PARTIAL_WRITE_REP)


def test_owner_keeps_read_control_and_write_dac() -> None:
    locked = sd("O:BAG:BAD:(D;;0x3f;;;BA)")
    assert authz.granted_rights(locked, ADMIN) == authz.READ_CONTROL | authz.WRITE_DAC
    assert authz.granted_rights(locked, READER) == 0


def test_null_dacl_grants_everything_and_empty_dacl_nothing() -> None:
    assert authz.granted_rights(sd("O:BAG:BA"), READER) == authz.ALL_NAMESPACE_RIGHTS
    assert authz.granted_rights(sd("O:BAG:BAD:"), READER) == 0


def test_inherit_only_aces_do_not_apply_and_generic_rights_map() -> None:
    assert authz.granted_rights(sd("O:BAG:BAD:(A;CIIO;GA;;;AU)"), READER) == 0
    assert authz.granted_rights(sd("O:BAG:BAD:(A;CI;GA;;;AU)"), READER) == authz.ALL_NAMESPACE_RIGHTS
    generic = authz.granted_rights(sd("O:BAG:BAD:(A;;GRGX;;;AU)"), READER)
    assert generic == authz.WBEM_ENABLE | authz.READ_CONTROL | authz.WBEM_METHOD_EXECUTE


def test_user_specific_ace() -> None:
    reader_sid = authz.user_sid("WMH-MOCK01", "reader", administrator=False)
    grant = sd(f"O:BAG:BAD:(A;;CCSWWP;;;{reader_sid})")
    authz.require_write(grant, READER, "root/cimv2")
    other = authz.principal_sids("WMH-MOCK01", "other", read_only=True)
    with pytest.raises(authz.AccessDenied):
        authz.require(grant, other, authz.READ_RIGHTS, "root/cimv2")


@pytest.mark.parametrize("data", [b"", b"\x01\x00\x04\x80" + b"\x00" * 12 + b"\xff\xff\x00\x00",
                                  b"\x02" + b"\x00" * 19])
def test_malformed_descriptors_raise_sddl_error(data: bytes) -> None:
    with pytest.raises(SddlError):
        authz.parse_security_descriptor(data)


def test_truncated_ace_is_refused() -> None:
    good = sddl_to_binary("O:BAG:BAD:(A;;CC;;;AU)")
    with pytest.raises(SddlError):
        authz.parse_security_descriptor(good[:-4])


def test_prepend_ace_puts_the_ace_first_and_keeps_the_rest() -> None:
    from harness.cim.security import binary_to_sddl

    original = sddl_to_binary(DEFAULT_NAMESPACE_SDDL)
    changed = authz.prepend_ace(original, authz.ACE_DENIED, 0, 0xC, authz.ADMINISTRATORS)
    assert binary_to_sddl(changed) == DEFAULT_NAMESPACE_SDDL.replace("D:", "D:(D;;LCSW;;;BA)")
    with pytest.raises(SddlError):
        authz.prepend_ace(sddl_to_binary("O:BAG:BA"), authz.ACE_DENIED, 0, 1, authz.ADMINISTRATORS)


def test_prepend_ace_moves_what_follows_a_leading_dacl() -> None:
    import struct

    from harness.cim.security import binary_to_sddl, sid_to_bytes

    owner = sid_to_bytes("BA")
    acl = struct.pack("<BBHHH", 2, 0, 8, 0, 0)
    data = struct.pack("<BBHIIII", 1, 0, 0x8004, 28, 0, 0, 20) + acl + owner  # DACL before the owner
    assert binary_to_sddl(data) == "O:BAD:"
    changed = authz.prepend_ace(data, authz.ACE_ALLOWED, 0, 1, authz.AUTHENTICATED_USERS)
    assert binary_to_sddl(changed) == "O:BAD:(A;;CC;;;AU)"
