"""Namespace access checks of the mock's WMI over DCOM role: the same DACL the WS-Man role enforces.

MS-WMOD 2.9.3 ("Authorization"): whatever the protocol, the management server checks the caller
against the security descriptor of the CIM namespace (MS-WMI 5.2; set with
``__SystemSecurity.SetSD``, :mod:`harness.cim.providers`). A DCOM caller is the local user it
authenticated as (NTLM / Kerberos of MS-RPCE 3.3.1.5.2, :class:`~harness.auth.users.LocalUser`);
its token is the one :func:`harness.targets.mock.authorization.principal_sids` gives the same user
over HTTP, so a descriptor written over WS-Man decides WMI calls too. The rights per operation are
those of the WS-Man role (the WBEM_SECURITY_FLAGS table of
:mod:`harness.targets.mock.authorization`):

================================================= ============================================
operation (MS-WMI)                                needs (always with WBEM_REMOTE_ACCESS)
================================================= ============================================
IWbemLevel1Login::NTLMLogin (3.1.4.1.4),          WBEM_ENABLE
IWbemServices::OpenNamespace (3.1.4.3.1)
GetObject (3.1.4.3.4), CreateInstanceEnum         WBEM_ENABLE
(3.1.4.3.16), ExecQuery[Async] (3.1.4.3.18-19),
ExecNotificationQuery[Async] (3.1.4.3.20-21)
PutInstance (3.1.4.3.12), DeleteInstance          WBEM_ENABLE and WBEM_FULL_WRITE_REP or
(3.1.4.3.14)                                      WBEM_PARTIAL_WRITE_REP
ExecMethod (3.1.4.3.22)                           WBEM_ENABLE | WBEM_METHOD_EXECUTE
``__SystemSecurity`` GetSD / SetSD                WBEM_ENABLE | READ_CONTROL / WRITE_DAC
================================================= ============================================

A failed check is WBEM_E_ACCESS_DENIED (0x80041003, MS-WMI 2.2.11), raised here as
:class:`~harness.cim.errors.CimError` ``ACCESS_DENIED`` (whose HRESULT is that value).
"""

from __future__ import annotations

from harness.auth.users import LocalUser
from harness.cim.errors import CimError, CimStatus
from harness.cim.store import CimStore
from harness.targets.mock import authorization as authz

#: The token of an unauthenticated caller: ANONYMOUS LOGON (MS-DTYP 2.4.2.4, S-1-5-7) over the
#: network; it is not a member of Everyone (observed Windows behaviour since Windows XP SP2).
ANONYMOUS_SIDS = frozenset({"S-1-5-7", authz.NETWORK})

#: Rights the methods of ``__SystemSecurity`` need beyond Remote Enable (MS-WMI 3.1.4.3.22; WMI
#: "__SystemSecurity class" reference); the WS-Man role uses this table too.
SYSTEM_SECURITY_RIGHTS: dict[str, int] = {
    "getsd": authz.GET_SD_RIGHTS,
    "setsd": authz.SET_SD_RIGHTS,
    "getcalleraccessrights": authz.READ_RIGHTS,
}


def caller_sids(machine: str, user: LocalUser | None) -> frozenset[str]:
    """The SIDs of the DCOM caller's token on ``machine``: the mapping of the HTTP side
    (:func:`harness.targets.mock.authorization.principal_sids`), or :data:`ANONYMOUS_SIDS`."""
    if user is None:
        return ANONYMOUS_SIDS
    return authz.principal_sids(machine, user.name, read_only=user.read_only)


def namespace_descriptor(store: CimStore, namespace: str) -> authz.SecurityDescriptor:
    """The parsed security descriptor of ``namespace`` (the WMI default until SetSD changes it)."""
    from harness.cim.providers import namespace_sd

    return authz.parse_security_descriptor(namespace_sd(store, namespace)[1])


def _denied(exc: authz.AccessDenied) -> CimError:
    return CimError(CimStatus.ACCESS_DENIED, exc.reason)


def check(store: CimStore, machine: str, user: LocalUser | None, namespace: str, desired: int) -> None:
    """CimError ACCESS_DENIED (WBEM_E_ACCESS_DENIED) unless the caller holds ``desired`` and Remote
    Enable on ``namespace`` (MS-WMOD 2.9.3; MS-WMI 5.2)."""
    try:
        authz.require(namespace_descriptor(store, namespace), caller_sids(machine, user), desired, namespace)
    except authz.AccessDenied as exc:
        raise _denied(exc) from None


def check_write(store: CimStore, machine: str, user: LocalUser | None, namespace: str) -> None:
    """CimError ACCESS_DENIED unless the caller may write instances of ``namespace`` (Enable, Remote
    Enable and Full Write or Partial Write; PutInstance / DeleteInstance, MS-WMI 3.1.4.3.12, 3.1.4.3.14)."""
    try:
        authz.require_write(namespace_descriptor(store, namespace), caller_sids(machine, user), namespace)
    except authz.AccessDenied as exc:
        raise _denied(exc) from None


def caller_rights(store: CimStore, machine: str, user: LocalUser | None, namespace: str) -> int:
    """The namespace rights the caller holds: ``__SystemSecurity.GetCallerAccessRights`` "sets the
    rights parameter as a bitmap with each bit corresponding to an access right" (WMI reference)."""
    return authz.granted_rights(namespace_descriptor(store, namespace), caller_sids(machine, user))


def check_method(store: CimStore, machine: str, user: LocalUser | None, namespace: str, classname: str,
                 method: str) -> None:
    """The checks of ExecMethod (MS-WMI 3.1.4.3.22): ``__SystemSecurity`` methods need their own rights
    (:data:`SYSTEM_SECURITY_RIGHTS`); every other method WBEM_METHOD_EXECUTE, and, as "providers can
    perform additional access checks", the mock's Win32 providers let only administrators change
    services and processes (MS-WMOD 2.9.3; the WS-Man role does the same)."""
    if classname.lower() == "__systemsecurity":
        check(store, machine, user, namespace, SYSTEM_SECURITY_RIGHTS.get(method.lower(), authz.METHOD_RIGHTS))
        return
    check(store, machine, user, namespace, authz.METHOD_RIGHTS)
    if user is None or user.read_only:
        raise CimError(CimStatus.ACCESS_DENIED, "the user may only read (MS-WMOD 2.9.3)")


__all__ = [
    "ANONYMOUS_SIDS",
    "SYSTEM_SECURITY_RIGHTS",
    "caller_rights",
    "caller_sids",
    "check",
    "check_method",
    "check_write",
    "namespace_descriptor",
]
