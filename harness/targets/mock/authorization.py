"""Namespace authorisation of the mock: the DACL of each CIM namespace decides every operation.

MS-WMOD 2.9.3 ("Authorization"): the management server checks what the authenticated user may do;
for the WMI plug-in that is the security descriptor of the CIM namespace (MS-WMI 5.1 / 5.2
security; set and read through ``__SystemSecurity.SetSD`` / ``GetSD``, MS-WMI 3.1.4.3,
:mod:`harness.cim.providers`). The access rights are the WBEM_SECURITY_FLAGS of ``wbemcli.h``
(documented as "Namespace Access Rights Constants"), plus the standard rights READ_CONTROL and
WRITE_DAC (MS-DTYP 2.4.3):

====================== ========= =============================================================
right                  value     needed by
====================== ========= =============================================================
WBEM_ENABLE            0x1       every operation (the "Enable Account" permission)
WBEM_METHOD_EXECUTE    0x2       Invoke of a CIM method
WBEM_FULL_WRITE_REP    0x4       Put / Create / Delete (either write right suffices)
WBEM_PARTIAL_WRITE_REP 0x8       Put / Create / Delete of instances
WBEM_WRITE_PROVIDER    0x10      (writes through a provider; the mock's instances are static)
WBEM_REMOTE_ACCESS     0x20      every operation arriving over the network ("Remote Enable")
READ_CONTROL           0x20000   ``__SystemSecurity.GetSD``
WRITE_DAC              0x40000   ``__SystemSecurity.SetSD``
====================== ========= =============================================================

The DACL is evaluated with the access check algorithm of MS-DTYP 2.5.3.2: ACEs in order, an ACE
applies when its SID is in the caller's token, inherit-only ACEs (``IO``) are skipped, a denied
bit wins only when no earlier ACE granted it, the owner is implicitly granted READ_CONTROL and
WRITE_DAC, a missing DACL grants everything and an empty one nothing.

Callers' tokens (the mock's SAM, :func:`principal_sids`): every local user has a SID in the
machine's account domain (``S-1-5-21-a-b-c-RID``, MS-DTYP 2.4.2.4), plus Everyone, NETWORK and
Authenticated Users (a network logon). The administrator is also a member of BUILTIN\\Administrators
(RID 500); a read-only user is not, but is a member of BUILTIN\\Remote Management Users, without
which Windows does not let a non-administrator use WinRM (observed Windows behaviour since
Windows Server 2012). Shell creation is checked separately against WinRM's ``RootSDDL``
(:mod:`harness.targets.mock.root_sddl`, default ``O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection
from dataclasses import dataclass

from harness.cim.security import SID_ALIASES, SddlError, sid_from_bytes

WBEM_ENABLE = 0x1
WBEM_METHOD_EXECUTE = 0x2
WBEM_FULL_WRITE_REP = 0x4
WBEM_PARTIAL_WRITE_REP = 0x8
WBEM_WRITE_PROVIDER = 0x10
WBEM_REMOTE_ACCESS = 0x20
WBEM_RIGHT_SUBSCRIBE = 0x40
WBEM_RIGHT_PUBLISH = 0x80
READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000

GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
GENERIC_EXECUTE = 0x20000000
GENERIC_ALL = 0x10000000

#: Every specific and standard right a WMI namespace knows.
ALL_NAMESPACE_RIGHTS = (WBEM_ENABLE | WBEM_METHOD_EXECUTE | WBEM_FULL_WRITE_REP | WBEM_PARTIAL_WRITE_REP
                        | WBEM_WRITE_PROVIDER | WBEM_REMOTE_ACCESS | WBEM_RIGHT_SUBSCRIBE | WBEM_RIGHT_PUBLISH
                        | READ_CONTROL | WRITE_DAC)

#: Generic rights mapped onto namespace rights (MS-DTYP 2.4.3 GENERIC_MAPPING; the mapping of the
#: mock: read = enable + read control, write = the three write rights, execute = method execution).
GENERIC_MAPPING: dict[int, int] = {
    GENERIC_READ: WBEM_ENABLE | READ_CONTROL,
    GENERIC_WRITE: WBEM_FULL_WRITE_REP | WBEM_PARTIAL_WRITE_REP | WBEM_WRITE_PROVIDER,
    GENERIC_EXECUTE: WBEM_METHOD_EXECUTE,
    GENERIC_ALL: ALL_NAMESPACE_RIGHTS,
}

#: What each kind of WS-Man operation needs (on top of :data:`WBEM_REMOTE_ACCESS` for all of them).
READ_RIGHTS = WBEM_ENABLE
METHOD_RIGHTS = WBEM_ENABLE | WBEM_METHOD_EXECUTE
GET_SD_RIGHTS = WBEM_ENABLE | READ_CONTROL
SET_SD_RIGHTS = WBEM_ENABLE | WRITE_DAC
#: Either of these suffices for writing an instance (Put, Create, Delete).
WRITE_ALTERNATIVES = (WBEM_FULL_WRITE_REP, WBEM_PARTIAL_WRITE_REP)

EVERYONE = SID_ALIASES["WD"]
NETWORK = SID_ALIASES["NU"]
AUTHENTICATED_USERS = SID_ALIASES["AU"]
ADMINISTRATORS = SID_ALIASES["BA"]
REMOTE_MANAGEMENT_USERS = SID_ALIASES["RM"]
ADMINISTRATOR_RID = 500
FIRST_USER_RID = 1000

ACE_ALLOWED = 0x00
ACE_DENIED = 0x01
INHERIT_ONLY_ACE = 0x08
SE_DACL_PRESENT = 0x0004


@dataclass(frozen=True)
class Ace:
    """One ACCESS_ALLOWED / ACCESS_DENIED ACE (MS-DTYP 2.4.4.2, 2.4.4.4)."""

    ace_type: int
    flags: int
    mask: int
    sid: str


@dataclass(frozen=True)
class SecurityDescriptor:
    """The parts of a self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6) an access check reads;
    ``dacl`` None = no DACL (everything granted)."""

    owner: str | None
    dacl: tuple[Ace, ...] | None


def parse_security_descriptor(data: bytes) -> SecurityDescriptor:
    """Owner and DACL of a self-relative security descriptor; SddlError on malformed bytes."""
    if len(data) < 20:
        raise SddlError(f"security descriptor of {len(data)} bytes")
    revision, _, control, owner_off, _, _, dacl_off = struct.unpack_from("<BBHIIII", data, 0)
    if revision != 1:
        raise SddlError(f"security descriptor revision {revision}")
    owner = sid_from_bytes(data, owner_off)[0] if owner_off else None
    if not control & SE_DACL_PRESENT or not dacl_off:
        return SecurityDescriptor(owner, None)
    if dacl_off + 8 > len(data):
        raise SddlError("DACL truncated")
    _, _, acl_size, count, _ = struct.unpack_from("<BBHHH", data, dacl_off)
    end = dacl_off + acl_size
    if acl_size < 8 or end > len(data):
        raise SddlError("invalid DACL size")
    aces: list[Ace] = []
    pos = dacl_off + 8
    for _ in range(count):
        if pos + 8 > end:
            raise SddlError("ACE truncated")
        ace_type, flags, size, mask = struct.unpack_from("<BBHI", data, pos)
        if size < 16 or pos + size > end:
            raise SddlError("ACE size out of range")
        if ace_type in (ACE_ALLOWED, ACE_DENIED):
            sid, _ = sid_from_bytes(data[: pos + size], pos + 8)
            aces.append(Ace(ace_type, flags, mask, sid))
        pos += size  # other ACE types (object, callback, audit) do not apply to a namespace
    return SecurityDescriptor(owner, tuple(aces))


def map_generic(mask: int) -> int:
    """``mask`` with its generic bits replaced by namespace rights (MS-DTYP 2.4.3)."""
    out = mask & ~(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL)
    for bit, rights in GENERIC_MAPPING.items():
        if mask & bit:
            out |= rights
    return out


def granted_rights(sd: SecurityDescriptor, sids: Collection[str]) -> int:
    """The rights ``sids`` hold under ``sd`` (MS-DTYP 2.5.3.2, MAXIMUM_ALLOWED evaluation)."""
    token = {s.upper() for s in sids}
    granted = 0
    denied = 0
    if sd.owner is not None and sd.owner.upper() in token:
        granted |= READ_CONTROL | WRITE_DAC
    if sd.dacl is None:
        return ALL_NAMESPACE_RIGHTS
    for ace in sd.dacl:
        if ace.flags & INHERIT_ONLY_ACE or ace.sid.upper() not in token:
            continue
        mask = map_generic(ace.mask)
        if ace.ace_type == ACE_ALLOWED:
            granted |= mask & ~denied
        else:
            denied |= mask & ~granted
    return granted


def access_allowed(sd: SecurityDescriptor, sids: Collection[str], desired: int) -> bool:
    """Whether every bit of ``desired`` (generic bits mapped) is granted to ``sids``."""
    wanted = map_generic(desired)
    return granted_rights(sd, sids) & wanted == wanted


def domain_sid(machine: str) -> str:
    """The account domain SID of the mock machine: ``S-1-5-21`` and three sub-authorities derived
    from the machine name (stable across runs, like the SID a Windows setup picks at random)."""
    digest = hashlib.sha256(machine.upper().encode("utf-8")).digest()
    subs = struct.unpack("<III", digest[:12])
    return "S-1-5-21-" + "-".join(str(s) for s in subs)


def user_rid(name: str, *, administrator: bool) -> int:
    """RID of a local account: 500 for the administrator, a stable RID of at least 1000 otherwise."""
    if administrator:
        return ADMINISTRATOR_RID
    digest = hashlib.sha256(name.lower().encode("utf-8")).digest()
    return FIRST_USER_RID + int.from_bytes(digest[:3], "little")


def user_sid(machine: str, name: str, *, administrator: bool) -> str:
    """The SID of a local account of the mock machine."""
    return f"{domain_sid(machine)}-{user_rid(name, administrator=administrator)}"


def principal_sids(machine: str, name: str, *, read_only: bool) -> frozenset[str]:
    """The SIDs in the network-logon token of a mock user (see the module docstring)."""
    sids = {user_sid(machine, name, administrator=not read_only), EVERYONE, NETWORK, AUTHENTICATED_USERS}
    sids.add(REMOTE_MANAGEMENT_USERS if read_only else ADMINISTRATORS)
    return frozenset(sids)


def prepend_ace(data: bytes, ace_type: int, flags: int, mask: int, sid: str) -> bytes:
    """``data`` (a self-relative SECURITY_DESCRIPTOR, MS-DTYP 2.4.6) with one ACE put in front of its
    DACL (MS-DTYP 2.4.5), so that it is evaluated first. The DACL is moved to the end of the
    descriptor, the other offsets are adjusted; SddlError if ``data`` is malformed or has no DACL."""
    from harness.cim.security import sid_to_bytes

    parse_security_descriptor(data)  # validates every offset and size
    revision, sbz1, control, owner_off, group_off, sacl_off, dacl_off = struct.unpack_from("<BBHIIII", data, 0)
    if not control & SE_DACL_PRESENT or not dacl_off:
        raise SddlError("the security descriptor has no DACL")
    acl_rev, acl_sbz1, acl_size, count, acl_sbz2 = struct.unpack_from("<BBHHH", data, dacl_off)
    sid_bytes = sid_to_bytes(sid)
    ace = struct.pack("<BBHI", ace_type, flags, 8 + len(sid_bytes), mask) + sid_bytes
    if acl_size + len(ace) > 0xFFFF:
        raise SddlError("DACL too large")
    acl = (struct.pack("<BBHHH", acl_rev, acl_sbz1, acl_size + len(ace), count + 1, acl_sbz2) + ace
           + data[dacl_off + 8:dacl_off + acl_size])
    rest = data[20:dacl_off] + data[dacl_off + acl_size:]

    def moved(offset: int) -> int:
        return offset - acl_size if offset > dacl_off else offset

    header = struct.pack("<BBHIIII", revision, sbz1, control, moved(owner_off), moved(group_off),
                         moved(sacl_off), 20 + len(rest))
    return header + rest + acl


class AccessDenied(Exception):
    """The caller lacks a right the operation needs; ``reason`` names it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NAMES = {
    WBEM_ENABLE: "Enable Account (WBEM_ENABLE)",
    WBEM_METHOD_EXECUTE: "Execute Methods (WBEM_METHOD_EXECUTE)",
    WBEM_REMOTE_ACCESS: "Remote Enable (WBEM_REMOTE_ACCESS)",
    READ_CONTROL: "Read Security (READ_CONTROL)",
    WRITE_DAC: "Edit Security (WRITE_DAC)",
}


def require(sd: SecurityDescriptor, sids: Collection[str], desired: int, namespace: str) -> None:
    """Raise :class:`AccessDenied` unless ``sids`` hold ``desired`` plus Remote Enable on ``namespace``."""
    missing = map_generic(desired | WBEM_REMOTE_ACCESS) & ~granted_rights(sd, sids)
    if missing:
        names = [text for bit, text in _NAMES.items() if missing & bit] or [f"0x{missing:x}"]
        raise AccessDenied(f"Access denied: the namespace {namespace} does not grant {', '.join(names)}.")


def require_write(sd: SecurityDescriptor, sids: Collection[str], namespace: str) -> None:
    """Raise :class:`AccessDenied` unless ``sids`` may write instances of ``namespace`` (Full Write or
    Partial Write, with Enable Account and Remote Enable)."""
    require(sd, sids, READ_RIGHTS, namespace)
    granted = granted_rights(sd, sids)
    if not any(granted & right for right in WRITE_ALTERNATIVES):
        raise AccessDenied(f"Access denied: the namespace {namespace} does not grant Full Write "
                           "(WBEM_FULL_WRITE_REP) or Partial Write (WBEM_PARTIAL_WRITE_REP).")


__all__ = [
    "ACE_ALLOWED",
    "ACE_DENIED",
    "ADMINISTRATORS",
    "ALL_NAMESPACE_RIGHTS",
    "AUTHENTICATED_USERS",
    "EVERYONE",
    "GET_SD_RIGHTS",
    "METHOD_RIGHTS",
    "NETWORK",
    "READ_CONTROL",
    "READ_RIGHTS",
    "REMOTE_MANAGEMENT_USERS",
    "SET_SD_RIGHTS",
    "WBEM_ENABLE",
    "WBEM_FULL_WRITE_REP",
    "WBEM_METHOD_EXECUTE",
    "WBEM_PARTIAL_WRITE_REP",
    "WBEM_REMOTE_ACCESS",
    "WBEM_RIGHT_PUBLISH",
    "WBEM_RIGHT_SUBSCRIBE",
    "WBEM_WRITE_PROVIDER",
    "WRITE_DAC",
    "AccessDenied",
    "Ace",
    "SecurityDescriptor",
    "access_allowed",
    "domain_sid",
    "granted_rights",
    "map_generic",
    "parse_security_descriptor",
    "prepend_ace",
    "principal_sids",
    "require",
    "require_write",
    "user_rid",
    "user_sid",
]
