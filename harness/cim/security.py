"""SDDL <-> self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6, 2.4.5 ACL, 2.4.4 ACE, 2.4.2.2 SID,
2.5.1 SDDL).

Supported: owner (``O:``), group (``G:``) and DACL (``D:``) with the flags ``P``, ``AI``, ``AR``;
ACE types ``A`` (ACCESS_ALLOWED) and ``D`` (ACCESS_DENIED); ACE flags ``OI CI NP IO ID SA FA``;
rights as two-letter aliases or a hex / decimal number; SIDs as well-known aliases or ``S-1-...``.
SACLs and object ACEs are not supported (SddlError).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping

from harness.cim.errors import CimError, CimStatus


class SddlError(CimError):
    """Malformed SDDL text or security descriptor bytes (status INVALID_PARAMETER)."""

    def __init__(self, description: str) -> None:
        super().__init__(CimStatus.INVALID_PARAMETER, description)


#: Well-known SID aliases (MS-DTYP 2.4.2.4 and 2.5.1.1).
SID_ALIASES: dict[str, str] = {
    "WD": "S-1-1-0",
    "CO": "S-1-3-0",
    "CG": "S-1-3-1",
    "NU": "S-1-5-2",
    "IU": "S-1-5-4",
    "SU": "S-1-5-6",
    "AN": "S-1-5-7",
    "ED": "S-1-5-9",
    "PS": "S-1-5-10",
    "AU": "S-1-5-11",
    "RC": "S-1-5-12",
    "SY": "S-1-5-18",
    "LS": "S-1-5-19",
    "NS": "S-1-5-20",
    "BA": "S-1-5-32-544",
    "BU": "S-1-5-32-545",
    "BG": "S-1-5-32-546",
    "PU": "S-1-5-32-547",
    "AO": "S-1-5-32-548",
    "SO": "S-1-5-32-549",
    "PO": "S-1-5-32-550",
    "BO": "S-1-5-32-551",
    "RE": "S-1-5-32-552",
    "RU": "S-1-5-32-554",
    "RD": "S-1-5-32-555",
    "NO": "S-1-5-32-556",
    "MU": "S-1-5-32-558",
    "LU": "S-1-5-32-559",
    "IS": "S-1-5-32-568",
    "ER": "S-1-5-32-573",
    "RM": "S-1-5-32-580",
}
_SID_BY_VALUE = {v: k for k, v in SID_ALIASES.items()}

#: Access right aliases (MS-DTYP 2.5.1.1 "ace_rights").
RIGHTS: dict[str, int] = {
    "GA": 0x10000000,
    "GR": 0x80000000,
    "GW": 0x40000000,
    "GX": 0x20000000,
    "RC": 0x00020000,
    "SD": 0x00010000,
    "WD": 0x00040000,
    "WO": 0x00080000,
    "RP": 0x00000010,
    "WP": 0x00000020,
    "CC": 0x00000001,
    "DC": 0x00000002,
    "LC": 0x00000004,
    "SW": 0x00000008,
    "LO": 0x00000080,
    "DT": 0x00000040,
    "CR": 0x00000100,
    "FA": 0x001F01FF,
    "FR": 0x00120089,
    "FW": 0x00120116,
    "FX": 0x001200A0,
    "KA": 0x000F003F,
    "KR": 0x00020019,
    "KW": 0x00020006,
    "KX": 0x00020019,
}
_RIGHT_ORDER = [
    "GA",
    "GR",
    "GW",
    "GX",
    "CC",
    "DC",
    "LC",
    "SW",
    "RP",
    "WP",
    "DT",
    "LO",
    "CR",
    "SD",
    "RC",
    "WD",
    "WO",
]

ACE_TYPES = {"A": 0x00, "D": 0x01}
_ACE_TYPE_BY_VALUE = {v: k for k, v in ACE_TYPES.items()}
ACE_FLAGS = {"OI": 0x01, "CI": 0x02, "NP": 0x04, "IO": 0x08, "ID": 0x10, "SA": 0x40, "FA": 0x80}

SE_DACL_PRESENT = 0x0004
SE_DACL_AUTO_INHERIT_REQ = 0x0100
SE_DACL_AUTO_INHERITED = 0x0400
SE_DACL_PROTECTED = 0x1000
SE_SELF_RELATIVE = 0x8000
_DACL_FLAGS = {"P": SE_DACL_PROTECTED, "AI": SE_DACL_AUTO_INHERITED, "AR": SE_DACL_AUTO_INHERIT_REQ}

MAX_SD_SIZE = 65536

#: Default security descriptor of a WMI namespace (observed Windows behaviour: root\cimv2 grants
#: Administrators full control and Authenticated Users / Local Service / Network Service enable,
#: method-execute and provider-write), plus Enable Account and Remote Enable (CCWP) for BUILTIN\Remote
#: Management Users: the grant an administrator adds so that non-administrators can read WMI data
#: over WinRM (WBEM_REMOTE_ACCESS is Administrators-only by default); the mock's read-only users
#: are members of that group (harness.targets.mock.authorization).
DEFAULT_NAMESPACE_SDDL = ("O:BAG:BAD:(A;CI;CCDCLCSWRPWPRCWD;;;BA)(A;CI;CCDCRP;;;NS)(A;CI;CCDCRP;;;LS)"
                          "(A;CI;CCDCRP;;;AU)(A;CI;CCWP;;;RM)")


def sid_to_bytes(sid: str) -> bytes:
    """Binary SID (MS-DTYP 2.4.2.2) from ``S-1-...`` text or a well-known alias."""
    text = SID_ALIASES.get(sid.upper(), sid)
    m = re.fullmatch(r"S-1-(\d+)((?:-\d+){0,15})", text, re.IGNORECASE)
    if not m:
        raise SddlError(f"invalid SID {sid!r}")
    authority = int(m.group(1))
    subs = [int(s) for s in m.group(2).split("-")[1:]]
    if authority >= 1 << 48 or any(s >= 1 << 32 for s in subs):
        raise SddlError(f"SID component out of range in {sid!r}")
    return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)


def sid_from_bytes(data: bytes, offset: int) -> tuple[str, int]:
    """(``S-1-...`` text, size) of the SID at ``offset``."""
    if offset + 8 > len(data):
        raise SddlError("SID truncated")
    revision, count = data[offset], data[offset + 1]
    if revision != 1 or count > 15:
        raise SddlError(f"invalid SID revision {revision} / sub-authority count {count}")
    size = 8 + 4 * count
    if offset + size > len(data):
        raise SddlError("SID truncated")
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, offset + 8)
    return "S-1-" + "-".join([str(authority), *(str(s) for s in subs)]), size


def _sid_alias(sid: str) -> str:
    return _SID_BY_VALUE.get(sid, sid)


def _parse_rights(text: str) -> int:
    if re.fullmatch(r"0x[0-9a-fA-F]{1,8}", text):
        return int(text, 16)
    if re.fullmatch(r"\d{1,10}", text):
        value = int(text)
        if value >= 1 << 32:
            raise SddlError(f"access mask {text} out of range")
        return value
    return _alias_mask(text, RIGHTS, "rights", "access right")


def _alias_mask(text: str, table: Mapping[str, int], plural: str, singular: str) -> int:
    """OR of the bits of a run of two-letter SDDL aliases (``"RPWP"``, ``"CIOI"``; MS-DTYP 2.5.1.1);
    SddlError on an odd length or an alias not in ``table``."""
    if len(text) % 2:
        raise SddlError(f"invalid {plural} {text!r}")
    mask = 0
    for i in range(0, len(text), 2):
        alias = text[i : i + 2].upper()
        if alias not in table:
            raise SddlError(f"unknown {singular} {alias!r}")
        mask |= table[alias]
    return mask


def _format_rights(mask: int) -> str:
    out: list[str] = []
    rest = mask
    for alias in _RIGHT_ORDER:
        bit = RIGHTS[alias]
        if rest & bit == bit:
            out.append(alias)
            rest &= ~bit
    return "".join(out) if rest == 0 and out else f"0x{mask:x}"


def _ace_bytes(ace: str) -> bytes:
    fields = ace.split(";")
    if len(fields) != 6:
        raise SddlError(f"ACE needs 6 fields: ({ace})")
    ace_type, flags, rights, object_guid, inherit_guid, sid = fields
    if ace_type.upper() not in ACE_TYPES:
        raise SddlError(f"unsupported ACE type {ace_type!r}")
    if object_guid or inherit_guid:
        raise SddlError("object ACEs are not supported")
    flag_value = _alias_mask(flags, ACE_FLAGS, "ACE flags", "ACE flag")
    sid_bytes = sid_to_bytes(sid)
    size = 8 + len(sid_bytes)
    return struct.pack("<BBHI", ACE_TYPES[ace_type.upper()], flag_value, size, _parse_rights(rights)) + sid_bytes


def sddl_to_binary(sddl: str) -> bytes:
    """Self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6) for an SDDL string (MS-DTYP 2.5.1)."""
    if len(sddl) > MAX_SD_SIZE:
        raise SddlError("SDDL too long")
    parts = dict.fromkeys(("O", "G", "D"), "")
    seen: set[str] = set()
    for m in re.finditer(r"([OGDS]):((?:[^:()]|\([^()]*\))*?)(?=[OGDS]:|$)", sddl.strip()):
        key = m.group(1)
        if key == "S":
            raise SddlError("SACLs are not supported")
        if key in seen:
            raise SddlError(f"component {key}: given twice")
        seen.add(key)
        parts[key] = m.group(2)
    consumed = "".join(f"{k}:{v}" for k, v in parts.items() if k in seen)
    if len(consumed) != len(sddl.strip()):
        raise SddlError(f"cannot parse SDDL {sddl!r}")
    control = SE_SELF_RELATIVE
    body = b""
    offset = 20
    owner_off = group_off = dacl_off = 0
    if "O" in seen:
        sid = sid_to_bytes(parts["O"])
        owner_off, body, offset = offset, body + sid, offset + len(sid)
    if "G" in seen:
        sid = sid_to_bytes(parts["G"])
        group_off, body, offset = offset, body + sid, offset + len(sid)
    if "D" in seen:
        dm = re.fullmatch(r"((?:P|AI|AR)*)((?:\([^()]*\))*)", parts["D"])
        if not dm:
            raise SddlError(f"invalid DACL {parts['D']!r}")
        for flag in re.findall(r"P|AI|AR", dm.group(1)):
            control |= _DACL_FLAGS[flag]
        aces = [_ace_bytes(a) for a in re.findall(r"\(([^()]*)\)", dm.group(2))]
        acl_size = 8 + sum(len(a) for a in aces)
        if acl_size > 0xFFFF:
            raise SddlError("DACL too large")
        acl = struct.pack("<BBHHH", 2, 0, acl_size, len(aces), 0) + b"".join(aces)
        control |= SE_DACL_PRESENT
        dacl_off, body = offset, body + acl
    header = struct.pack("<BBHIIII", 1, 0, control, owner_off, group_off, 0, dacl_off)
    return header + body


def binary_to_sddl(data: bytes) -> str:
    """Parse a self-relative SECURITY_DESCRIPTOR back to SDDL (validating every offset and size)."""
    if len(data) < 20 or len(data) > MAX_SD_SIZE:
        raise SddlError(f"security descriptor of {len(data)} bytes")
    revision, _, control, owner_off, group_off, sacl_off, dacl_off = struct.unpack_from("<BBHIIII", data, 0)
    if revision != 1 or not control & SE_SELF_RELATIVE:
        raise SddlError("not a revision-1 self-relative security descriptor")
    out = ""
    if owner_off:
        out += "O:" + _sid_alias(sid_from_bytes(data, owner_off)[0])
    if group_off:
        out += "G:" + _sid_alias(sid_from_bytes(data, group_off)[0])
    if sacl_off:
        raise SddlError("SACLs are not supported")
    if control & SE_DACL_PRESENT and dacl_off:
        if dacl_off + 8 > len(data):
            raise SddlError("DACL truncated")
        acl_rev, _, acl_size, count, _ = struct.unpack_from("<BBHHH", data, dacl_off)
        if acl_rev not in (2, 4) or dacl_off + acl_size > len(data) or acl_size < 8:
            raise SddlError("invalid DACL header")
        flags = "".join(k for k, v in _DACL_FLAGS.items() if control & v)
        aces = ""
        pos = dacl_off + 8
        end = dacl_off + acl_size
        for _ in range(count):
            if pos + 8 > end:
                raise SddlError("ACE truncated")
            ace_type, ace_flags, ace_size, mask = struct.unpack_from("<BBHI", data, pos)
            if ace_type not in _ACE_TYPE_BY_VALUE or ace_size < 16 or pos + ace_size > end:
                raise SddlError(f"unsupported or malformed ACE of type {ace_type}")
            sid, sid_size = sid_from_bytes(data[: pos + ace_size], pos + 8)
            if 8 + sid_size > ace_size:
                raise SddlError("ACE SID overruns the ACE")
            flag_text = "".join(k for k, v in ACE_FLAGS.items() if ace_flags & v)
            aces += f"({_ACE_TYPE_BY_VALUE[ace_type]};{flag_text};{_format_rights(mask)};;;{_sid_alias(sid)})"
            pos += ace_size
        out += "D:" + flags + aces
    return out
