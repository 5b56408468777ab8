"""The WinRM service configuration of the mock as WS-Management resources (``winrm/config``).

Windows serves its WinRM configuration as resources under
``http://schemas.microsoft.com/wbem/wsman/1/config`` (learn.microsoft.com, "Installation and
configuration for Windows Remote Management"; see :mod:`harness.client.winrm_config` for the
URIs): Transfer Get (MS-WSMV 3.1.4.1; DSP0226 7.3) answers the settings, Transfer Put (MS-WSMV
3.1.4.2; DSP0226 7.4) changes the settings it carries, and the listeners are enumerable (MS-WSMV
3.1.4.8; DSP0226 8.2, 8.4, 8.5). Element names and order are those of the MS-WSMV 2.2.4.x schema
text (ConfigType 2.2.4.10, ClientType 2.2.4.6, ServiceType 2.2.4.36, WinrsType 2.2.4.42, ...); a full
``winrm/config`` Get nests Client, Service and Winrs in the one ``.../config`` namespace and a Put
may carry the whole representation (MS-WSMV 4.2.1, 4.2.2; compared in
tests/unit/mock/test_winrm_config_spec.py). Beyond the schema text (observed Windows behaviour,
``winrm get winrm/config -format:xml`` on Windows Server 2016-2022): Service also carries
EnableCompatibilityHttp(s)Listener and AllowRemoteAccess, which 2.2.4.36 does not declare; a
sub-resource answered on its own is in its resource URI's namespace; ``xml:lang`` of the request's
locale on the representation (the 4.2.3 examples, a Vista-era service, have it on s:Envelope only:
unconfirmed for later Windows). Defaults and ranges are those of a Windows 8 / Server 2012 or later
service (MS-WSMV Appendix B <10>, <17>, <21>, <28>, <30>), not the Vista-era values of the 4.2
examples.

Every value is read from, and every Put written to, the LIVE settings of the mock: ``MockConfig``
(MaxEnvelopeSize, MaxTimeout, the enumeration expiry, RootSDDL, the WinRS quotas) and its
``AuthPolicy`` (Basic, Negotiate, Kerberos, CredSSP, AllowUnencrypted, CbtHardeningLevel). So a Put
of ``Service/AllowUnencrypted=true`` lets unencrypted HTTP in, and ``Winrs/MaxShellsPerUser=1``
refuses a second shell with w:QuotaLimit. Settings the mock has no behaviour for (MaxBatchItems,
MaxConnections, IPv4Filter, the client side's TrustedHosts, ...) are kept in :class:`StoredSettings`
with the Windows defaults: they round-trip through Get and Put but change nothing else.

Plug-ins (MS-WSMV 3.1.4.1.34.2): ``.../config/plugin`` is enumerable and addressed by the selector
``Name``; each answer is a PluginType (2.2.4.22) ``PlugInConfiguration`` built from the LIVE
``MockConfig.plugins`` (harness.targets.mock.plugins). A Put of a ``Security`` element (the 4.2.4
example's body) or of a ``PlugInConfiguration`` changes a Security's Sddl (and Enabled); the next
PowerShell shell Create is checked against it. The 4.2.4 example addresses the same change to
``.../config/service/security`` with selector ``Uri``; that URI is not served here.

Faults:

* Only members of BUILTIN\\Administrators may read or change the configuration: the WinRM config
  plug-in answers anyone else w:AccessDenied (DSP0226 14.6.1; observed Windows behaviour: ``winrm get
  winrm/config`` by a Remote Management Users member fails with "Access is denied").
* A Put whose representation is not the resource's (wrong root element or namespace), names an
  element the resource does not have, or carries a value that is not of the element's schema type
  (xs:boolean, xs:unsignedInt: a negative number, a non-boolean) is w:SchemaValidationError, and a
  well-typed value outside the setting's range or not one of its choices (``CbtHardeningLevel``, a
  RootSDDL that does not parse, a URLPrefix with other characters than 2.2.4.6 allows) is
  w:InvalidParameter with ``InvalidValue`` (DSP0226 14.6; the closest DSP0226 faults: MS-WSMV names
  no fault for a range violation and the Windows fault codes for these were not confirmed). A
  change of Winrs/MaxShellRunTime and a listener Put carrying ListeningOn are w:InternalError
  (MS-WSMV Appendix B <30>; 3.1.4.1.29.5). The whole Put is checked before anything changes.
* Selectors on a singleton are w:InvalidSelectors UnexpectedSelectors; a listener Get without both
  ``Address`` and ``Transport`` is w:InvalidSelectors InsufficientSelectors, one that names no
  listener wsa:DestinationUnreachable with ERROR_WSMAN_RESOURCE_NOT_FOUND (DSP0226 7.3, 14.6).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from lxml import etree

from harness.auth.policy import CbtHardening
from harness.cim.security import SddlError
from harness.client.winrm_config import (
    NS_CONFIG,
    NS_PLUGIN,
    URI_CLIENT,
    URI_CLIENT_AUTH,
    URI_CLIENT_DEFAULT_PORTS,
    URI_CONFIG,
    URI_LISTENER,
    URI_PLUGIN,
    URI_SERVICE,
    URI_SERVICE_AUTH,
    URI_SERVICE_DEFAULT_PORTS,
    URI_WINRS,
)
from harness.targets.mock import authorization as authz
from harness.targets.mock.enumerations import EnumerationContext, EnumerationRegistry
from harness.targets.mock.plugins import Plugin, plugin_named
from harness.targets.mock.root_sddl import parse_root_sddl
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import Envelope
from harness.wire.wsman.faults import ERROR_WSMAN_RESOURCE_NOT_FOUND, FaultDetail, make_fault
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.ns import ANONYMOUS, Action
from harness.wire.xmlsafe import xs_boolean

if TYPE_CHECKING:
    from harness.targets.mock.config import MockConfig
    from harness.targets.mock.wsman_service import Principal, WSManService

UINT32_MAX = 4_294_967_295
INT32_MAX = 2_147_483_647
#: MS-WSMV 2.2.4.10: "The minimum value [of MaxEnvelopeSizekb] MUST be 32".
MIN_ENVELOPE_KB = 32
#: MS-WSMV 2.2.4.10 MaxTimeoutms, 2.2.4.36 EnumerationTimeoutms, 2.2.4.6 NetworkDelayms: "The minimum
#: value MUST be 500".
MIN_TIMEOUT_MS = 500
#: MS-WSMV 2.2.4.36 MaxConnections: at most 512 on Windows 8 / Server 2012 and later (Appendix B <21>).
MAX_CONNECTIONS = 512
#: MS-WSMV 2.2.4.42 IdleTimeout: any value 0..0x7FFFFFFF is accepted, but below 60000 the service
#: behaves as if 60000 were set (Appendix B <28>, Windows 7 / Server 2008 R2; assumed for later
#: versions too, the note names no other minimum).
MIN_EFFECTIVE_IDLE_MS = 60_000
#: URLPrefix (MS-WSMV 2.2.4.6, 2.2.4.19): not blank, only a-zA-Z0-9_/ and no '/' at either end.
_URL_PREFIX = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_/]*[A-Za-z0-9_])?")
ENUM_MODE_EPR = "EnumerateEPR"
ENUM_MODE_OBJECT_AND_EPR = "EnumerateObjectAndEPR"
#: The XML declaration of a config answer carries the request's locale (observed Windows behaviour:
#: ``<cfg:Listener ... xml:lang="en-US">``).
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: Room kept for the envelope and headers when answering (DSP0226 6.2).
ENVELOPE_OVERHEAD = 2048

Kind = Literal["bool", "uint", "text", "choice", "sddl", "urlprefix"]
Handler = Callable[[Envelope, "Principal"], bytes]


@dataclass
class StoredSettings:
    """Settings the mock keeps but does not act on, with the Windows Server defaults (observed
    Windows behaviour, ``winrm get winrm/config``)."""

    max_batch_items: int = 32000
    max_provider_requests: int = UINT32_MAX
    max_concurrent_operations: int = UINT32_MAX
    max_concurrent_operations_per_user: int = 1500
    max_connections: int = 300
    max_packet_retrieval_time: int = 120
    service_certificate_auth: bool = False
    default_http_port: int = 5985
    default_https_port: int = 5986
    #: Client DefaultPorts (ClientDefaultPortsType, MS-WSMV 2.2.4.5) are separate settings from the
    #: service's (ServiceDefaultPortsType, 2.2.4.35).
    client_http_port: int = 5985
    client_https_port: int = 5986
    ipv4_filter: str = "*"
    ipv6_filter: str = "*"
    compatibility_http_listener: bool = False
    compatibility_https_listener: bool = False
    certificate_thumbprint: str = ""
    allow_remote_access: bool = True
    max_concurrent_users: int = INT32_MAX
    max_shell_run_time: int = INT32_MAX
    max_memory_per_shell_mb: int = INT32_MAX
    client_network_delay_ms: int = 5000
    client_url_prefix: str = "wsman"
    client_allow_unencrypted: bool = False
    client_auth: dict[str, bool] = field(default_factory=lambda: {
        "Basic": True, "Digest": True, "Kerberos": True, "Negotiate": True, "Certificate": True, "CredSSP": False})
    client_trusted_hosts: str = ""
    #: The configured text of Winrs settings whose configured value differs from the value the
    #: shell hosts act on (0 = unlimited, an IdleTimeout below the effective minimum): name -> text.
    winrs_configured: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Setting:
    """One leaf element: how to read it from the live settings and how to write it back."""

    name: str
    kind: Kind
    read: Callable[[], str]
    write: Callable[[str], None]
    minimum: int = 0
    maximum: int = UINT32_MAX
    choices: tuple[str, ...] = ()
    #: Extra refusal of a well-typed, in-range value (raises a WSManFault); None = none.
    check: Callable[[str], None] | None = None

    def parse(self, text: str) -> str:
        """The canonical text of ``text`` for this setting; raises the Put faults (module doc)."""
        canonical = self._canonical(text)
        if self.check is not None:
            self.check(canonical)
        return canonical

    def _canonical(self, text: str) -> str:
        value = text.strip()
        if self.kind == "bool":
            flag = xs_boolean(value, ignore_case=True)
            if flag is None:
                raise _schema_error(f"The value {text!r} of {self.name} is not a boolean (true or false).")
            return "true" if flag else "false"
        if self.kind == "uint":
            digits = value[1:] if value.startswith("+") else value
            if not digits.isdigit() or not digits.isascii():  # xs:unsignedInt (XSD 1.1 3.4.22)
                raise _schema_error(f"The value {text!r} of {self.name} is not an unsigned number.")
            number = int(digits)
            if number > UINT32_MAX or not self.minimum <= number <= self.maximum:
                raise _invalid_value(f"The value {number} of {self.name} is outside the range "
                                     f"{self.minimum}..{self.maximum}.")
            return str(number)
        if self.kind == "choice":
            for choice in self.choices:
                if value.lower() == choice.lower():
                    return choice
            raise _invalid_value(f"The value {text!r} of {self.name} is not one of {', '.join(self.choices)}.")
        if self.kind == "sddl":
            try:
                parse_root_sddl(value)
            except ValueError as exc:
                raise _invalid_value(f"The value of {self.name} is not a valid SDDL string: {exc}") from None
            return value
        if self.kind == "urlprefix" and not _URL_PREFIX.fullmatch(value):
            raise _invalid_value(f"The value {text!r} of {self.name} must be non-blank, use only a-z, A-Z, 0-9, "
                                 "_ and /, and neither start nor end with '/' (MS-WSMV 2.2.4.6).")
        return value


@dataclass(frozen=True)
class Group:
    """One element with child elements (a resource's root, ``Auth``, ``DefaultPorts``)."""

    name: str
    members: tuple[Setting | Group, ...]

    def member(self, name: str) -> Setting | Group | None:
        for m in self.members:
            if m.name.lower() == name.lower():
                return m
        return None


def _schema_error(reason: str) -> Exception:
    return make_fault("SchemaValidationError", reason)


def _invalid_value(reason: str) -> Exception:
    return make_fault("InvalidParameter", reason, detail=FaultDetail.INVALID_VALUE)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


class ConfigResources:
    """The config resources of one :class:`WSManService`, over its live settings."""

    def __init__(self, service: WSManService) -> None:
        self.service = service
        self.config: MockConfig = service.config
        self.stored = StoredSettings()
        #: Listener enumerations (DSP0226 8.2): contexts of rendered listener elements.
        self.enumerations: EnumerationRegistry[etree._Element] = EnumerationRegistry(
            self.config.enumeration_expiry, self.config.max_enumerations)
        # built in this order: a group may include the groups built before it
        self.groups: dict[str, Group] = {}
        self.groups[URI_SERVICE_DEFAULT_PORTS] = self._ports("default_http_port", "default_https_port")
        self.groups[URI_CLIENT_DEFAULT_PORTS] = self._ports("client_http_port", "client_https_port")
        self.groups[URI_SERVICE_AUTH] = self._service_auth()
        self.groups[URI_SERVICE] = self._service()
        self.groups[URI_CLIENT_AUTH] = self._client_auth()
        self.groups[URI_CLIENT] = self._client()
        self.groups[URI_WINRS] = self._winrs()
        self.groups[URI_CONFIG] = self._root()

    # ------------------------------------------------------------------ the settings tree
    def _stored(self, attr: str, kind: Kind, name: str, *, minimum: int = 0, maximum: int = UINT32_MAX,
                check: Callable[[str], None] | None = None) -> Setting:
        s = self.stored

        def read() -> str:
            value = getattr(s, attr)
            return _bool(value) if isinstance(value, bool) else str(value)

        def write(text: str) -> None:
            if kind == "bool":
                setattr(s, attr, text == "true")
            elif kind == "uint":
                setattr(s, attr, int(text))
            else:
                setattr(s, attr, text)

        return Setting(name, kind, read, write, minimum=minimum, maximum=maximum, check=check)

    def _policy_bool(self, attr: str, name: str) -> Setting:
        def read() -> str:
            return _bool(bool(getattr(self.config.auth, attr)))

        def write(text: str) -> None:
            setattr(self.config.auth, attr, text == "true")

        return Setting(name, "bool", read, write)

    def _service_auth(self) -> Group:
        """``winrm/config/service/auth`` (ServiceAuthType, MS-WSMV 2.2.4.34; CbtHardeningLevel)."""
        policy = self.config.auth

        def read_cbt() -> str:
            return str(policy.cbt_hardening.value)

        def write_cbt(text: str) -> None:
            policy.cbt_hardening = CbtHardening(text)

        return Group("Auth", (
            self._policy_bool("allow_basic", "Basic"),
            self._policy_bool("allow_kerberos", "Kerberos"),
            self._policy_bool("allow_negotiate", "Negotiate"),
            self._stored("service_certificate_auth", "bool", "Certificate"),
            self._policy_bool("allow_credssp", "CredSSP"),
            Setting("CbtHardeningLevel", "choice", read_cbt, write_cbt,
                    choices=tuple(c.value for c in CbtHardening)),
        ))

    def _ports(self, http: str, https: str) -> Group:
        """DefaultPorts (MS-WSMV 2.2.4.5 client, 2.2.4.35 service): ports 1..65535."""
        return Group("DefaultPorts", (
            self._stored(http, "uint", "HTTP", minimum=1, maximum=65535),
            self._stored(https, "uint", "HTTPS", minimum=1, maximum=65535),
        ))

    def _service(self) -> Group:
        """``winrm/config/service``: RootSDDL (harness.targets.mock.root_sddl), the enumeration
        expiry (EnumerationTimeoutms; DSP0226 8.2), AllowUnencrypted (MS-WSMV 2.2.9.1), Auth."""
        cfg = self.config

        def read_sddl() -> str:
            return cfg.root_sddl

        def write_sddl(text: str) -> None:
            cfg.root_sddl = text

        def read_enum() -> str:
            return _ms(cfg.enumeration_expiry)

        def write_enum(text: str) -> None:
            cfg.enumeration_expiry = int(text) / 1000
            # the service's registry copied the expiry when it was built: keep it in step
            self.service.enumerations.idle_expiry = cfg.enumeration_expiry

        return Group("Service", (
            Setting("RootSDDL", "sddl", read_sddl, write_sddl),
            # MS-WSMV 2.2.4.36 <17>: Windows 7 / 2008 R2 and later allow no value below 4294967295
            self._stored("max_concurrent_operations", "uint", "MaxConcurrentOperations", minimum=UINT32_MAX),
            self._stored("max_concurrent_operations_per_user", "uint", "MaxConcurrentOperationsPerUser", minimum=1),
            Setting("EnumerationTimeoutms", "uint", read_enum, write_enum, minimum=MIN_TIMEOUT_MS),
            self._stored("max_connections", "uint", "MaxConnections", minimum=1, maximum=MAX_CONNECTIONS),
            self._stored("max_packet_retrieval_time", "uint", "MaxPacketRetrievalTimeSeconds", minimum=1),
            self._policy_bool("allow_unencrypted", "AllowUnencrypted"),
            self._service_auth(),
            self.groups[URI_SERVICE_DEFAULT_PORTS],
            self._stored("ipv4_filter", "text", "IPv4Filter"),
            self._stored("ipv6_filter", "text", "IPv6Filter"),
            self._stored("compatibility_http_listener", "bool", "EnableCompatibilityHttpListener"),
            self._stored("compatibility_https_listener", "bool", "EnableCompatibilityHttpsListener"),
            self._stored("certificate_thumbprint", "text", "CertificateThumbprint"),
            self._stored("allow_remote_access", "bool", "AllowRemoteAccess"),
        ))

    def _client_auth(self) -> Group:
        """``winrm/config/client/auth``: the target machine's own client side (stored only)."""
        auth = self.stored.client_auth

        def member(name: str) -> Setting:
            def read() -> str:
                return _bool(auth[name])

            def write(text: str) -> None:
                auth[name] = text == "true"

            return Setting(name, "bool", read, write)

        return Group("Auth", tuple(member(n) for n in auth))

    def _client(self) -> Group:
        """``winrm/config/client`` (stored only: the mock makes no outgoing WinRM calls)."""
        return Group("Client", (
            self._stored("client_network_delay_ms", "uint", "NetworkDelayms", minimum=MIN_TIMEOUT_MS),
            self._stored("client_url_prefix", "urlprefix", "URLPrefix"),
            self._stored("client_allow_unencrypted", "bool", "AllowUnencrypted"),
            self._client_auth(),
            self.groups[URI_CLIENT_DEFAULT_PORTS],
            self._stored("client_trusted_hosts", "text", "TrustedHosts"),
        ))

    def _winrs(self) -> Group:
        """``winrm/config/winrs`` (WinrsType, MS-WSMV 2.2.4.42): the WinRS quotas the shell hosts
        enforce (MS-WSMV 3.1.4.5; MS-WMOD 2.10.1): IdleTimeout (ms), MaxProcessesPerShell,
        MaxShellsPerUser.

        * IdleTimeout: any value 0..0x7FFFFFFF is accepted; the shells use at least 60000 ms
          (Appendix B <28>). MaxProcessesPerShell, MaxShellsPerUser: 0 means unlimited. Get answers
          the configured value (:attr:`StoredSettings.winrs_configured`).
        * MaxShellRunTime: Windows 7 / 2008 R2 and later ignore it and answer a Put that changes it
          with w:InternalError (Appendix B <29>, <30>); a Put of the current value changes nothing
          and is accepted (assumption: the note speaks of an attempt to modify the value).
        * MaxConcurrentUsers: 2.2.4.42 says 1..100, but Windows' own default is 2147483647 (observed
          Windows behaviour, ``winrm get winrm/config/winrs``), so 1..0x7FFFFFFF is accepted.
        """
        cfg = self.config
        configured = self.stored.winrs_configured

        def acting(name: str, text: str) -> int:
            """The value the shell hosts act on for the configured ``text``."""
            value = int(text)
            if name == "IdleTimeout":
                return max(value, MIN_EFFECTIVE_IDLE_MS)
            return value if value else INT32_MAX  # 0 = unlimited (2.2.4.42)

        def live(name: str) -> Setting:
            attr = {"IdleTimeout": "shell_idle_timeout", "MaxProcessesPerShell": "max_processes_per_shell",
                    "MaxShellsPerUser": "max_shells_per_user"}[name]

            def get_live() -> int:
                value = getattr(cfg, attr)
                return round(value * 1000) if name == "IdleTimeout" else int(value)

            def read() -> str:
                text = configured.get(name)
                # the configured text stands as long as nobody changed MockConfig directly since
                if text is not None and acting(name, text) == get_live():
                    return text
                return str(get_live())

            def write(text: str) -> None:
                value = acting(name, text)
                setattr(cfg, attr, value / 1000 if name == "IdleTimeout" else value)
                configured[name] = text

            return Setting(name, "uint", read, write, minimum=0, maximum=INT32_MAX)

        def read_shell_access() -> str:
            return _bool(cfg.allow_remote_shell_access)

        def write_shell_access(text: str) -> None:
            cfg.allow_remote_shell_access = text == "true"

        run_time = "MaxShellRunTime"

        def unchanged_run_time(text: str) -> None:
            if text != str(self.stored.max_shell_run_time):
                raise make_fault("InternalError", f"{run_time} cannot be changed: the service ignores it "
                                                  "(MS-WSMV 2.2.4.42, Appendix B <30>).")

        return Group("Winrs", (
            Setting("AllowRemoteShellAccess", "bool", read_shell_access, write_shell_access),
            live("IdleTimeout"),
            self._stored("max_concurrent_users", "uint", "MaxConcurrentUsers", minimum=1, maximum=INT32_MAX),
            self._stored("max_shell_run_time", "uint", run_time, minimum=0, maximum=INT32_MAX,
                         check=unchanged_run_time),
            live("MaxProcessesPerShell"),
            self._stored("max_memory_per_shell_mb", "uint", "MaxMemoryPerShellMB", minimum=0, maximum=INT32_MAX),
            live("MaxShellsPerUser"),
        ))

    def _root(self) -> Group:
        """``winrm/config``: MaxEnvelopeSizekb (DSP0226 6.2 MaxEnvelopeSize, in KiB), MaxTimeoutms
        (the OperationTimeout ceiling, DSP0226 6.1), then Client, Service and Winrs."""
        cfg = self.config

        def read_envelope() -> str:
            return str(cfg.max_envelope_size // 1024)

        def write_envelope(text: str) -> None:
            cfg.max_envelope_size = int(text) * 1024
            cfg.max_request_bytes = cfg.max_envelope_size

        def read_timeout() -> str:
            return _ms(cfg.max_timeout)

        def write_timeout(text: str) -> None:
            cfg.max_timeout = int(text) / 1000

        return Group("Config", (
            Setting("MaxEnvelopeSizekb", "uint", read_envelope, write_envelope,
                    minimum=MIN_ENVELOPE_KB, maximum=UINT32_MAX),
            Setting("MaxTimeoutms", "uint", read_timeout, write_timeout, minimum=MIN_TIMEOUT_MS),
            self._stored("max_batch_items", "uint", "MaxBatchItems", minimum=1),
            # MS-WSMV 2.2.4.10 <10>: Windows 7 / 2008 R2 and later allow no value below 4294967295
            self._stored("max_provider_requests", "uint", "MaxProviderRequests", minimum=UINT32_MAX),
            self.groups[URI_CLIENT],
            self.groups[URI_SERVICE],
            self.groups[URI_WINRS],
        ))

    # ------------------------------------------------------------------ rendering
    def render(self, uri: str, locale: str | None = None) -> etree._Element:
        """The representation of the singleton config resource ``uri`` from the live settings."""
        group = self.groups[uri]
        element = etree.Element(f"{{{uri}}}{group.name}", nsmap={"cfg": uri})
        if locale:
            element.set(XML_LANG, locale)
        _render_members(element, uri, group)
        return element

    def listeners(self, to: str | None) -> list[dict[str, str | list[str]]]:
        """The mock's listener: address ``*`` on the configured host, HTTP or HTTPS (the TLS setting),
        the bound port, URL prefix ``wsman``, the certificate's SHA-1 thumbprint over HTTPS.

        The port is the configured one; when the mock listens on an ephemeral port (``port`` 0) the
        port of the request's ``wsa:To`` address stands in for it (mock behaviour: the bound port is
        not recorded in MockConfig), else the transport's default port."""
        cfg = self.config
        https = cfg.tls is not None
        port = cfg.port
        if not port and to:
            try:
                port = urlsplit(to).port or 0
            except ValueError:
                port = 0
        if not port:
            port = self.stored.default_https_port if https else self.stored.default_http_port
        thumbprint = hashlib.sha1(cfg.tls.cert_der).hexdigest().upper() if cfg.tls is not None else ""
        return [{
            "Address": "*",
            "Transport": "HTTPS" if https else "HTTP",
            "Port": str(port),
            "Hostname": "",
            "Enabled": "true",
            "URLPrefix": "wsman",
            "CertificateThumbprint": thumbprint,
            "ListeningOn": [cfg.host],
        }]

    @staticmethod
    def render_listener(listener: dict[str, str | list[str]], locale: str | None) -> etree._Element:
        element = etree.Element(f"{{{URI_LISTENER}}}Listener", nsmap={"cfg": URI_LISTENER})
        if locale:
            element.set(XML_LANG, locale)
        for name, value in listener.items():
            for text in value if isinstance(value, list) else [value]:
                child = etree.SubElement(element, f"{{{URI_LISTENER}}}{name}")
                if text:
                    child.text = text
        return element

    # ------------------------------------------------------------------ operations
    def authorize(self, principal: Principal) -> None:
        """Administrators only (observed Windows behaviour, see the module docstring)."""
        if authz.ADMINISTRATORS not in self.service.sids_of(principal):
            raise make_fault("AccessDenied", "Access is denied. Only administrators may read or change the "
                                             "WinRM configuration.")

    def get(self, env: Envelope, principal: Principal) -> bytes:
        """Transfer Get of a config resource (MS-WSMV 3.1.4.1; DSP0226 7.3)."""
        self.authorize(principal)
        uri = config_uri(env)
        msg.parse_get_request(env)
        if uri == URI_LISTENER:
            element = self.render_listener(self._listener(env), env.header.locale)
        elif uri == URI_PLUGIN:
            element = render_plugin(self._plugin(env), env.header.locale)
        else:
            _no_selectors(env)
            element = self.render(uri, env.header.locale)
        return self._sized(env, msg.build_get_response(env.header.message_id, element))

    def put(self, env: Envelope, principal: Principal) -> bytes:
        """Transfer Put (MS-WSMV 3.1.4.2; DSP0226 7.4): the settings present change, after all of
        them are checked (module docstring); answers the new representation."""
        self.authorize(principal)
        uri = config_uri(env)
        if uri == URI_LISTENER:
            self._listener(env)
            body = msg.parse_put_request(env).item
            if body is not None and any(isinstance(c.tag, str) and etree.QName(c).localname == "ListeningOn"
                                        for c in body):
                raise make_fault("InternalError", "ListeningOn is computed by the service and cannot be set "
                                                  "(MS-WSMV 3.1.4.1.29.5).")
            # MS-WSMV 3.1.4.3 lists Put of a listener as a MUST; the mock would have to bind again.
            raise make_fault("ActionNotSupported", "The mock cannot reconfigure its listener (it would have to "
                                                   "bind again); only Get and Enumerate are served.")
        if uri == URI_PLUGIN:
            plugin = self._plugin(env)
            body = msg.parse_put_request(env).item
            if body is None:
                raise make_fault("InvalidRepresentation", "Put needs the new representation in the body.")
            for apply in list(_plugin_changes(plugin, body)):
                apply()
            return self._sized(env, msg.build_put_response(env.header.message_id,
                                                           render_plugin(plugin, env.header.locale)))
        _no_selectors(env)
        request = msg.parse_put_request(env)
        if request.item is None:
            raise make_fault("InvalidRepresentation", "Put needs the new representation in the body.")
        group = self.groups[uri]
        item = request.item
        qname = etree.QName(item)
        if qname.namespace != uri or qname.localname.lower() != group.name.lower():
            raise _schema_error(f"The body must be {group.name} in namespace {uri}, not "
                                f"{qname.localname} in {qname.namespace}.")
        changes = list(_changes(item, uri, group))
        for setting, value in changes:
            setting.write(value)
        return self._sized(env, msg.build_put_response(env.header.message_id, self.render(uri, env.header.locale)))

    def enumerate(self, env: Envelope, principal: Principal) -> bytes:
        """Enumerate the listeners (MS-WSMV 3.1.4.8; DSP0226 8.2), optimized if asked (8.2.3)."""
        self.authorize(principal)
        uri = config_uri(env)
        request = msg.parse_enumerate_request(env)
        if uri not in (URI_LISTENER, URI_PLUGIN):
            raise make_fault("ActionNotSupported", f"{uri} is a singleton: use Get.")
        if request.filter_dialect is not None or request.filter_text is not None or request.selector_filter:
            raise make_fault("CannotProcessFilter", "The listener and plug-in enumerations take no filter.")
        if request.enumeration_mode not in (None, ENUM_MODE_EPR, ENUM_MODE_OBJECT_AND_EPR):
            raise make_fault("UnsupportedFeature", f"Unknown EnumerationMode {request.enumeration_mode}.",
                             detail=FaultDetail.ENUMERATION_MODE)
        if uri == URI_PLUGIN:
            items = [render_plugin(p, env.header.locale) for p in self.config.plugins]
        else:
            items = [self.render_listener(li, env.header.locale) for li in self.listeners(env.header.to)]
        ctx = self.enumerations.open(uri, items, request.enumeration_mode, "")
        if not request.optimize:
            return msg.build_enumerate_response(env.header.message_id, context=ctx.context_id)
        page = self._page(env, ctx, self._batch(request.max_elements))
        return self._sized(env, msg.build_enumerate_response(env.header.message_id, page))

    def pull(self, env: Envelope, ctx: EnumerationContext[etree._Element], max_elements: int | None) -> bytes:
        """Pull of a listener enumeration (MS-WSMV 3.1.4.9; DSP0226 8.4)."""
        page = self._page(env, ctx, self._batch(max_elements))
        return self._sized(env, msg.build_pull_response(env.header.message_id, page))

    def _batch(self, max_elements: int | None) -> int:
        """MS-WSMV 2.2.4.10 / 3.1.4.1.14: at most MaxBatchItems items per answer."""
        return min(max_elements or 1, self.stored.max_batch_items)

    def _page(self, env: Envelope, ctx: EnumerationContext[etree._Element], max_elements: int) -> msg.EnumerationItems:
        page = msg.EnumerationItems()
        while ctx.position < len(ctx.items) and len(page.items) + len(page.epr_items) < max_elements * (
                2 if ctx.mode == ENUM_MODE_OBJECT_AND_EPR else 1):
            element = ctx.items[ctx.position]
            if ctx.mode != ENUM_MODE_EPR:
                page.items.append(element)
            if ctx.mode is not None:
                page.epr_items.append(_plugin_epr(element, env.header.to) if ctx.resource_uri == URI_PLUGIN
                                      else _listener_epr(element, env.header.to))
            ctx.position += 1
            if ctx.mode == ENUM_MODE_OBJECT_AND_EPR and len(page.items) >= max_elements:
                break
        if ctx.position >= len(ctx.items):
            page.end_of_sequence = True
            self.enumerations.release(ctx.context_id)
        else:
            page.context = ctx.context_id
        return page

    def _listener(self, env: Envelope) -> dict[str, str | list[str]]:
        """The listener named by the Address and Transport selectors (DSP0226 7.3, 14.6)."""
        selectors = {k.lower(): v for k, v in env.header.selectors.items()}
        address, transport = selectors.get("address"), selectors.get("transport")
        if not isinstance(address, str) or not isinstance(transport, str):
            raise make_fault("InvalidSelectors", "A listener is named by the selectors Address and Transport.",
                             detail=FaultDetail.INSUFFICIENT_SELECTORS)
        unexpected = set(selectors) - {"address", "transport"}
        if unexpected:
            raise make_fault("InvalidSelectors", f"Unexpected selectors: {', '.join(sorted(unexpected))}.",
                             detail=FaultDetail.UNEXPECTED_SELECTORS)
        for listener in self.listeners(env.header.to):
            if str(listener["Address"]).lower() == address.lower() and \
                    str(listener["Transport"]).lower() == transport.lower():
                return listener
        raise make_fault("DestinationUnreachable", "The service cannot find the resource identified by the "
                                                   "resource URI and selectors.",
                         detail=FaultDetail.INVALID_RESOURCE_URI, wsman_code=ERROR_WSMAN_RESOURCE_NOT_FOUND)

    def _plugin(self, env: Envelope) -> Plugin:
        """The plug-in named by the selector Name (MS-WSMV 3.1.4.1.34.2; DSP0226 7.3, 14.6)."""
        selectors = {k.lower(): v for k, v in env.header.selectors.items()}
        name = selectors.get("name")
        if not isinstance(name, str):
            raise make_fault("InvalidSelectors", "A plug-in configuration is named by the selector Name.",
                             detail=FaultDetail.INSUFFICIENT_SELECTORS)
        if set(selectors) - {"name"}:
            raise make_fault("InvalidSelectors", "Unexpected selectors: "
                             f"{', '.join(sorted(set(selectors) - {'name'}))}.",
                             detail=FaultDetail.UNEXPECTED_SELECTORS)
        plugin = plugin_named(self.config.plugins, name.strip())
        if plugin is None:
            raise make_fault("DestinationUnreachable", "The service cannot find the resource identified by the "
                                                       "resource URI and selectors.",
                             detail=FaultDetail.INVALID_RESOURCE_URI, wsman_code=ERROR_WSMAN_RESOURCE_NOT_FOUND)
        return plugin

    def _sized(self, env: Envelope, body: bytes) -> bytes:
        """DSP0226 6.2: an answer larger than MaxEnvelopeSize is w:EncodingLimit."""
        requested = env.header.max_envelope_size
        limit = min(requested, self.config.max_envelope_size) if requested else self.config.max_envelope_size
        if len(body) > limit:
            raise make_fault("EncodingLimit", "The response exceeds the MaxEnvelopeSize of the request.",
                             detail=FaultDetail.MAX_ENVELOPE_SIZE_EXCEEDED)
        return body

    # ------------------------------------------------------------------ registration
    def install(self, handlers: dict[str, Handler]) -> None:
        """Route Get, Put, Enumerate of the config resource URIs here, and Pull and Release of the
        contexts this module opened; everything else goes to the handlers already registered."""
        plain = {a: handlers[a] for a in (Action.GET, Action.PUT, Action.ENUMERATE, Action.PULL, Action.RELEASE)}

        def routed(action: str, mine: Handler) -> Handler:
            def handler(env: Envelope, principal: Principal) -> bytes:
                if is_config_resource(env.header.resource_uri):
                    return mine(env, principal)
                return plain[action](env, principal)
            return handler

        def pull(env: Envelope, principal: Principal) -> bytes:
            request = msg.parse_pull_request(env)
            ctx = self.enumerations.take(request.context)
            if ctx is None:
                return plain[Action.PULL](env, principal)
            self.authorize(principal)
            return self.pull(env, ctx, request.max_elements)

        def release(env: Envelope, principal: Principal) -> bytes:
            request = msg.parse_release_request(env)
            if not self.enumerations.release(request.context):
                return plain[Action.RELEASE](env, principal)
            return msg.build_release_response(env.header.message_id)

        handlers[Action.GET] = routed(Action.GET, self.get)
        handlers[Action.PUT] = routed(Action.PUT, self.put)
        handlers[Action.ENUMERATE] = routed(Action.ENUMERATE, self.enumerate)
        handlers[Action.PULL] = pull
        handlers[Action.RELEASE] = release


def _render_members(parent: etree._Element, ns: str, group: Group) -> None:
    for member in group.members:
        child = etree.SubElement(parent, f"{{{ns}}}{member.name}")
        if isinstance(member, Group):
            _render_members(child, ns, member)
        else:
            text = member.read()
            if text:
                child.text = text


def _changes(element: etree._Element, ns: str, group: Group) -> Iterator[tuple[Setting, str]]:
    """The (setting, canonical value) pairs of a Put body, every one checked (module docstring)."""
    seen: set[str] = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        member = group.member(qname.localname) if qname.namespace == ns else None
        if member is None:
            raise _schema_error(f"{group.name} has no element {qname.localname} in namespace {qname.namespace}.")
        if member.name in seen:
            raise _schema_error(f"{member.name} appears twice in {group.name}.")
        seen.add(member.name)
        if isinstance(member, Group):
            yield from list(_changes(child, ns, member))
            continue
        if any(isinstance(c.tag, str) for c in child):
            raise _schema_error(f"{member.name} is a setting and cannot hold elements.")
        yield member, member.parse(child.text or "")


def _no_selectors(env: Envelope) -> None:
    if env.header.selectors:
        raise make_fault("InvalidSelectors", "This configuration resource takes no selectors.",
                         detail=FaultDetail.UNEXPECTED_SELECTORS)


def _listener_epr(element: etree._Element, to: str | None) -> EndpointReference:
    values = {etree.QName(c).localname: (c.text or "") for c in element if isinstance(c.tag, str)}
    return EndpointReference(address=to or ANONYMOUS, resource_uri=URI_LISTENER,
                             selectors={"Address": values.get("Address", ""),
                                        "Transport": values.get("Transport", "")})


#: The PluginConfiguration namespace as the default namespace (the 4.2.4 examples' spelling).
_DEFAULT_NS: Any = {None: NS_PLUGIN}


def render_plugin(plugin: Plugin, locale: str | None = None) -> etree._Element:
    """The PluginType representation of ``plugin`` (MS-WSMV 2.2.4.22; element name and attribute
    order of the 3.1.4.1.34.3.4 and 4.2.4 examples: ``PlugInConfiguration`` Name, Filename, SDKVersion,
    XmlRenderingType, Enabled; then Resources and InitializationParameters in schema order)."""
    el = etree.Element(f"{{{NS_PLUGIN}}}PlugInConfiguration", nsmap=_DEFAULT_NS)
    el.set("Name", plugin.name)
    el.set("Filename", plugin.filename)
    el.set("SDKVersion", str(plugin.sdk_version))
    el.set("XmlRenderingType", plugin.xml_rendering_type)
    el.set("Enabled", _bool(plugin.enabled))
    if locale:
        el.set(XML_LANG, locale)
    resources = etree.SubElement(el, f"{{{NS_PLUGIN}}}Resources")
    for resource in plugin.resources:
        r = etree.SubElement(resources, f"{{{NS_PLUGIN}}}Resource")
        r.set("ResourceUri", resource.resource_uri)
        r.set("SupportsOptions", _bool(resource.supports_options))
        r.set("ExactMatch", _bool(resource.exact_match))
        for sec in resource.security:
            e = etree.SubElement(r, f"{{{NS_PLUGIN}}}Security")
            e.set("Uri", sec.uri)
            e.set("ExactMatch", _bool(sec.exact_match))
            e.set("Sddl", sec.sddl)
        for capability in resource.capabilities:
            etree.SubElement(r, f"{{{NS_PLUGIN}}}Capability").set("Type", capability)
    if plugin.parameters:
        params = etree.SubElement(el, f"{{{NS_PLUGIN}}}InitializationParameters")
        for name, value in plugin.parameters.items():
            param = etree.SubElement(params, f"{{{NS_PLUGIN}}}Param")
            param.set("Name", name)
            param.set("Value", value)
    return el


def _xs_boolean(text: str, what: str) -> bool:
    value = xs_boolean(text)
    if value is not None:
        return value
    raise _schema_error(f"{what} must be an xs:boolean, not {text!r}.")


def _security_change(plugin: Plugin, element: etree._Element) -> Callable[[], None]:
    """A checked change of one Security element (MS-WSMV 4.2.4): Uri names an existing Security of
    the plug-in, Sddl parses (else w:InvalidParameter InvalidValue), ExactMatch is a boolean."""
    uri, sddl = element.get("Uri"), element.get("Sddl")
    if uri is None or sddl is None:
        raise _schema_error("Security needs the attributes Uri and Sddl.")
    target = next((sec for r in plugin.resources for sec in r.security
                   if sec.uri.rstrip("/").lower() == uri.strip().rstrip("/").lower()), None)
    if target is None:
        raise _invalid_value(f"The plug-in {plugin.name} has no Security element for {uri}; the mock does "
                             "not add resources or security entries.")
    try:
        parse_root_sddl(sddl)
    except SddlError as exc:
        raise _invalid_value(f"The Sddl {sddl!r} is not a valid security descriptor: {exc}") from None
    exact_text = element.get("ExactMatch")
    exact = target.exact_match if exact_text is None else _xs_boolean(exact_text, "ExactMatch")

    def apply() -> None:
        target.sddl = sddl.strip()
        target.exact_match = exact
    return apply


_FIXED_ATTRIBUTES = {"Filename": "filename", "SDKVersion": "sdk_version", "XmlRenderingType": "xml_rendering_type"}


def _plugin_changes(plugin: Plugin, body: etree._Element) -> Iterator[Callable[[], None]]:
    """The checked changes of a plug-in Put (MS-WSMV 3.1.4.1.34.2, 4.2.4): a ``Security`` body sets
    that Security's Sddl; a ``PlugInConfiguration`` body may change Enabled and the Sddl of its
    Security elements. Name, Filename, SDKVersion and XmlRenderingType, if present, must be the
    current ones (the mock runs no plug-in DLL) and every Resource must exist, else
    w:InvalidParameter; another root element is w:SchemaValidationError."""
    q = etree.QName(body)
    if q.namespace == NS_PLUGIN and q.localname == "Security":
        yield _security_change(plugin, body)
        return
    if q.namespace != NS_PLUGIN or q.localname.lower() != "pluginconfiguration":
        raise _schema_error(f"The body must be PlugInConfiguration or Security in namespace {NS_PLUGIN}, not "
                            f"{q.localname} in {q.namespace}.")
    name = body.get("Name")
    if name is not None and name.strip().lower() != plugin.name.lower():
        raise _invalid_value(f"Name {name!r} does not match the selector (plug-in {plugin.name}).")
    for attr, field_name in _FIXED_ATTRIBUTES.items():
        value = body.get(attr)
        if value is not None and value.strip() != str(getattr(plugin, field_name)):
            raise _invalid_value(f"{attr} cannot be changed by the mock (it runs no plug-in DLL).")
    enabled_text = body.get("Enabled")
    if enabled_text is not None:
        enabled = _xs_boolean(enabled_text, "Enabled")

        def set_enabled() -> None:
            plugin.enabled = enabled
        yield set_enabled
    for child in body:
        if not isinstance(child.tag, str):
            continue
        cq = etree.QName(child)
        if cq.namespace != NS_PLUGIN:
            raise _schema_error(f"PlugInConfiguration has no element {cq.localname} in {cq.namespace}.")
        if cq.localname in ("InitializationParameters", "Quotas"):
            continue  # settings of the plug-in process; the mock's PowerShell runs none (kept as served)
        if cq.localname != "Resources":
            raise _schema_error(f"PlugInConfiguration has no element {cq.localname}.")
        for res in child:
            if not isinstance(res.tag, str):
                continue
            if etree.QName(res).localname != "Resource":
                raise _schema_error(f"Resources has no element {etree.QName(res).localname}.")
            res_uri = (res.get("ResourceUri") or "").strip().rstrip("/").lower()
            if not any(r.resource_uri.rstrip("/").lower() == res_uri for r in plugin.resources):
                raise _invalid_value(f"The plug-in {plugin.name} has no Resource {res.get('ResourceUri')}; the "
                                     "mock does not add resources.")
            for sec in res.iterfind(f"{{{NS_PLUGIN}}}Security"):
                yield _security_change(plugin, sec)


def _plugin_epr(element: etree._Element, to: str | None) -> EndpointReference:
    return EndpointReference(address=to or ANONYMOUS, resource_uri=URI_PLUGIN,
                             selectors={"Name": element.get("Name", "")})


def is_config_resource(resource_uri: str | None) -> bool:
    """Whether ``resource_uri`` is one of the WinRM config resources served here."""
    return resource_uri is not None and resource_uri.rstrip("/").lower() in _URIS


_ALL_URIS = (URI_CONFIG, URI_SERVICE, URI_SERVICE_AUTH, URI_SERVICE_DEFAULT_PORTS, URI_CLIENT, URI_CLIENT_AUTH,
             URI_CLIENT_DEFAULT_PORTS, URI_WINRS, URI_LISTENER, URI_PLUGIN)
_URIS = frozenset(u.lower() for u in _ALL_URIS)
_CANONICAL = {u.lower(): u for u in _ALL_URIS}


def config_uri(env: Envelope) -> str:
    """The canonical spelling of the request's config resource URI (resource URIs compare
    case-insensitively on Windows: observed Windows behaviour)."""
    return _CANONICAL[(env.header.resource_uri or "").rstrip("/").lower()]


def install_config_handlers(service: WSManService) -> ConfigResources:
    """Create the config resources of ``service`` and register their handlers; returns them."""
    resources = ConfigResources(service)
    resources.install(service._handlers)
    return resources


__all__ = ["NS_CONFIG", "ConfigResources", "Group", "Setting", "StoredSettings", "config_uri",
           "install_config_handlers", "is_config_resource", "render_plugin"]
