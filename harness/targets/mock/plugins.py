"""WinRM plug-ins with their own security descriptor (PowerShell session configurations).

MS-WSMV 3.1.4.1.34.1: a server keeps a **Plugins** table; a request whose resource URI matches a
plug-in's ``Resource`` is routed to that plug-in, and (MS-WMOD 2.9.3) authorized against the SDDL of
the matching ``Resource/Security`` element rather than the service-wide RootSDDL
(:mod:`harness.targets.mock.root_sddl`). MS-WSMV 3.1.4.1.34.3.4 names the PowerShell plug-in
``microsoft.powershell`` with resource URI ``http://schemas.microsoft.com/powershell/microsoft.powershell``
and a ``Shell`` capability; its configuration is a PluginType (2.2.4.22) served and changed through
``http://schemas.microsoft.com/wbem/wsman/1/config/plugin`` with selector ``Name`` (3.1.4.1.34.2).

The Sddl is implementation-dependent (3.1.4.1.34.3). Default value (observed Windows behaviour,
Windows 8 / Server 2012 and later, ``Get-PSSessionConfiguration microsoft.powershell`` and the
``remoteSDDL_Win8`` constant of Register-PSSessionConfiguration)::

    O:NSG:BAD:P(A;;GA;;;BA)(A;;GA;;;RM)(A;;GA;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)

Administrators, Remote Management Users and interactive users may open a PowerShell session; what
they can do in it is then bounded by their own rights on the machine (a non-administrator cannot
start or stop services: :mod:`harness.targets.mock.ps_engine`). Opening a shell needs the execute
right (GX, implied by GA) under the same generic mapping as the RootSDDL (MS-DTYP 2.4.3); the check is
:func:`harness.targets.mock.root_sddl.granted`. Only the WinRM plug-in(s) listed here are modelled
(the WMI Provider plug-in and the WinRS cmd shell stay under RootSDDL in this mock).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from harness.cim.security import SddlError
from harness.targets.mock import authorization as authz
from harness.targets.mock.root_sddl import SHELL_RIGHTS, granted, parse_root_sddl

#: MS-PSRP 3.1.5.1 / MS-WSMV 3.1.4.1.34.3.4: the default PowerShell endpoint.
POWERSHELL_PLUGIN = "microsoft.powershell"
POWERSHELL_RESOURCE_URI = "http://schemas.microsoft.com/powershell/microsoft.powershell"
#: Observed Windows behaviour (Windows Server 2012 and later): see the module docstring.
DEFAULT_POWERSHELL_SDDL = "O:NSG:BAD:P(A;;GA;;;BA)(A;;GA;;;RM)(A;;GA;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"


@dataclass
class PluginSecurity:
    """A ``Resource/Security`` element (MS-WSMV 2.2.4.33 SecurityType): the SDDL for ``uri``."""

    uri: str
    sddl: str
    exact_match: bool = True


@dataclass
class PluginResource:
    """A ``Resources/Resource`` element (MS-WSMV 2.2.4.32 ResourceType)."""

    resource_uri: str
    capabilities: list[str]
    security: list[PluginSecurity] = field(default_factory=list)
    supports_options: bool = True
    exact_match: bool = True


@dataclass
class Plugin:
    """One row of the Plugins table: a PluginType (MS-WSMV 2.2.4.22) the mock acts on."""

    name: str
    filename: str
    resources: list[PluginResource]
    sdk_version: int = 2
    xml_rendering_type: str = "text"
    enabled: bool = True
    #: InitializationParameters (Name -> Value), rendered in order.
    parameters: dict[str, str] = field(default_factory=dict)

    def security_for(self, resource_uri: str) -> PluginSecurity | None:
        """The Security element that governs ``resource_uri`` (exact URI, else the longest
        non-exact prefix; MS-WSMV 3.1.4.1.34.1 matching applied to Security/@Uri)."""
        uri = resource_uri.rstrip("/").lower()
        best: PluginSecurity | None = None
        for resource in self.resources:
            for sec in resource.security:
                sec_uri = sec.uri.rstrip("/").lower()
                if sec_uri == uri:
                    return sec
                if not sec.exact_match and uri.startswith(sec_uri + "/") and (
                        best is None or len(sec_uri) > len(best.uri)):
                    best = sec
        return best


def default_plugins() -> list[Plugin]:
    """The plug-ins of a fresh mock: ``microsoft.powershell`` with its Windows default SDDL
    (MS-WSMV 3.1.4.1.34.3.4; the Filename and InitializationParameters are those of Windows
    PowerShell 5.1, observed Windows behaviour)."""
    return [Plugin(
        name=POWERSHELL_PLUGIN,
        filename="%windir%\\system32\\pwrshplugin.dll",
        resources=[PluginResource(POWERSHELL_RESOURCE_URI, ["Shell"],
                                  [PluginSecurity(POWERSHELL_RESOURCE_URI, DEFAULT_POWERSHELL_SDDL)])],
        parameters={"PSVersion": "5.1"},
    )]


def find_plugin(plugins: Iterable[Plugin], resource_uri: str | None) -> Plugin | None:
    """MS-WSMV 3.1.4.1.34.1: the plug-in whose Resource matches ``resource_uri``: an ExactMatch
    resource only by equality, otherwise the longest matching prefix (resource URIs compare
    case-insensitively: observed Windows behaviour)."""
    if not resource_uri:
        return None
    uri = resource_uri.rstrip("/").lower()
    best: tuple[int, Plugin] | None = None
    for plugin in plugins:
        for resource in plugin.resources:
            r_uri = resource.resource_uri.rstrip("/").lower()
            if r_uri == uri:
                return plugin
            if not resource.exact_match and uri.startswith(r_uri + "/") and (best is None or len(r_uri) > best[0]):
                best = (len(r_uri), plugin)
    return best[1] if best else None


def plugin_named(plugins: Iterable[Plugin], name: str) -> Plugin | None:
    """The plug-in whose Name is ``name`` (case-insensitive, as ``winrm get winrm/config/plugin?Name=``)."""
    return next((p for p in plugins if p.name.lower() == name.lower()), None)


def require_plugin_shell(plugin: Plugin, resource_uri: str, sids: Collection[str]) -> None:
    """Raise :class:`~harness.targets.mock.authorization.AccessDenied` unless ``sids`` may create a
    shell of ``plugin``: its Security SDDL for ``resource_uri`` must grant execute (GX or GA, the
    RootSDDL generic mapping; MS-WMOD 2.9.3, MS-DTYP 2.5.3.2). A malformed SDDL, a plug-in without a
    Security element for the URI, or a disabled plug-in denies (fails closed; mock behaviour: the
    fault Windows gives for a disabled plug-in was not confirmed)."""
    if not plugin.enabled:
        raise authz.AccessDenied(f"Access is denied: the plug-in {plugin.name} is disabled.")
    security = plugin.security_for(resource_uri)
    if security is None:
        raise authz.AccessDenied(f"Access is denied: the plug-in {plugin.name} has no security descriptor "
                                 f"for {resource_uri}.")
    try:
        sd = parse_root_sddl(security.sddl)
    except SddlError as exc:
        raise authz.AccessDenied(f"Access is denied: the SDDL of the plug-in {plugin.name} is invalid "
                                 f"({exc}).") from None
    if granted(sd, sids) & SHELL_RIGHTS != SHELL_RIGHTS:
        raise authz.AccessDenied(f"Access is denied: the security descriptor of the session configuration "
                                 f"{plugin.name} does not grant the user Execute (GX).")


__all__ = ["DEFAULT_POWERSHELL_SDDL", "POWERSHELL_PLUGIN", "POWERSHELL_RESOURCE_URI", "Plugin", "PluginResource",
           "PluginSecurity", "default_plugins", "find_plugin", "plugin_named", "require_plugin_shell"]
