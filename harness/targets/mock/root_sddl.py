"""WinRM's service-wide security descriptor (``winrm/config/service`` RootSDDL) for WinRS shells.

MS-WMOD 2.9.3 / MS-WSMV 5.1: the WinRM service authorizes each request against an SDDL string; a
resource URI without an SDDL of its own (the WinRS ``cmd`` shell; the WMI and PowerShell plug-ins
carry their own) is checked against the service's ``RootSDDL`` setting (``winrm get
winrm/config``, ``winrm configSDDL default``). Its ACEs use the generic rights only (MS-DTYP 2.4.3):

=========== ============================================================================
GR (read)   Get, Enumerate, Subscribe
GW (write)  Put, Create, Delete
GX (execute) Invoke, and creating / using a remote shell
GA (all)    all of the above
=========== ============================================================================

so a WinRS Shell Create (MS-WSMV 3.1.4.5, wxf:Create of the cmd resource) needs GX (GA implies
it); a caller without it gets w:AccessDenied (DSP0226 14.6.1).

Default value (observed Windows behaviour, Windows Server 2012 R2 and later, as printed by
``winrm get winrm/config``): ``O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)``
(Windows Server 2008 R2: without the IU ACE). It grants Administrators everything and interactive
users read; Remote Management Users and other network users get nothing, so a read-only user of
the mock cannot open a shell. The ``S:`` part is the SACL (auditing) and plays no part in an
access check (MS-DTYP 2.4.6); it is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Collection

from harness.cim.security import SddlError, sddl_to_binary
from harness.targets.mock import authorization as authz

DEFAULT_ROOT_SDDL = "O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"

#: The mock's specific bits for the three WinRM operation classes (what each generic right maps to).
WINRM_READ = 0x1
WINRM_WRITE = 0x2
WINRM_EXECUTE = 0x4
#: MS-DTYP 2.4.3 GENERIC_MAPPING of the WinRM root descriptor.
GENERIC_MAPPING: dict[int, int] = {
    authz.GENERIC_READ: WINRM_READ,
    authz.GENERIC_WRITE: WINRM_WRITE,
    authz.GENERIC_EXECUTE: WINRM_EXECUTE,
    authz.GENERIC_ALL: WINRM_READ | WINRM_WRITE | WINRM_EXECUTE,
}
#: What a WinRS Shell Create needs.
SHELL_RIGHTS = WINRM_EXECUTE

_GENERIC = authz.GENERIC_READ | authz.GENERIC_WRITE | authz.GENERIC_EXECUTE | authz.GENERIC_ALL


def _without_sacl(sddl: str) -> str:
    """``sddl`` up to its top-level ``S:`` component (the SACL, MS-DTYP 2.5.1)."""
    depth = 0
    for i, ch in enumerate(sddl):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and sddl[i:i + 2].upper() == "S:":
            return sddl[:i]
    return sddl


def parse_root_sddl(sddl: str) -> authz.SecurityDescriptor:
    """The owner and DACL of a RootSDDL string; SddlError if it is malformed."""
    return authz.parse_security_descriptor(sddl_to_binary(_without_sacl(sddl.strip())))


def _mapped(mask: int) -> int:
    out = mask & ~_GENERIC & (WINRM_READ | WINRM_WRITE | WINRM_EXECUTE)
    for bit, rights in GENERIC_MAPPING.items():
        if mask & bit:
            out |= rights
    return out


def granted(sd: authz.SecurityDescriptor, sids: Collection[str]) -> int:
    """WINRM_* rights ``sids`` hold under ``sd``: ACEs in order, a denied bit wins only when no
    earlier ACE granted it, inherit-only ACEs skipped, no DACL grants all (MS-DTYP 2.5.3.2)."""
    if sd.dacl is None:
        return WINRM_READ | WINRM_WRITE | WINRM_EXECUTE
    token = {s.upper() for s in sids}
    allowed = denied = 0
    for ace in sd.dacl:
        if ace.flags & authz.INHERIT_ONLY_ACE or ace.sid.upper() not in token:
            continue
        mask = _mapped(ace.mask)
        if ace.ace_type == authz.ACE_ALLOWED:
            allowed |= mask & ~denied
        else:
            denied |= mask & ~allowed
    return allowed


def require_shell(sddl: str, sids: Collection[str]) -> None:
    """Raise :class:`~harness.targets.mock.authorization.AccessDenied` unless ``sids`` may create a
    WinRS shell under RootSDDL ``sddl`` (GX or GA); a malformed RootSDDL denies (fails closed)."""
    try:
        sd = parse_root_sddl(sddl)
    except SddlError as exc:
        raise authz.AccessDenied(f"Access is denied: the RootSDDL of the service is invalid ({exc}).") from None
    if granted(sd, sids) & SHELL_RIGHTS != SHELL_RIGHTS:
        raise authz.AccessDenied("Access is denied: the RootSDDL of the WinRM service does not grant "
                                 "Execute (GX) to the user, which creating a remote shell requires.")


__all__ = [
    "DEFAULT_ROOT_SDDL",
    "GENERIC_MAPPING",
    "SHELL_RIGHTS",
    "WINRM_EXECUTE",
    "WINRM_READ",
    "WINRM_WRITE",
    "granted",
    "parse_root_sddl",
    "require_shell",
]
