"""The WinRM service configuration resources (``winrm get/set winrm/config``), client side.

Windows exposes the configuration of its WinRM service as WS-Management resources under
``http://schemas.microsoft.com/wbem/wsman/1/config`` (learn.microsoft.com, "Installation and
configuration for Windows Remote Management": ``winrm get winrm/config``, ``winrm enumerate
winrm/config/listener``): the whole tree (``Config``), ``.../config/service`` (``Service``),
``.../config/service/auth`` (``Auth``), ``.../config/client`` (``Client``), ``.../config/client/auth``,
``.../config/winrs`` (``Winrs``) and the enumerable ``.../config/listener`` (``Listener``, selectors
``Address`` and ``Transport``), plus ``.../client/defaultports`` and ``.../service/defaultports``
(MS-WSMV 3.1.4.3). Each representation is one element in the ``cfg`` namespace, one child per
setting in the order of the MS-WSMV 2.2.4.x schema, nested groups (``Auth``, ``DefaultPorts``, and
in a full ``Config`` the ``Client``, ``Service`` and ``Winrs`` groups) in the SAME namespace as their
parent: the whole ``winrm/config`` tree is in ``.../config`` (MS-WSMV 4.2.1). Values are text
(``true``/``false``, decimal numbers, ``*Timeoutms`` in milliseconds, ``MaxEnvelopeSizekb`` in KiB;
MS-WSMV 4.2.1, 2.2.4.10). A sub-resource answered on its own (``.../config/service``) uses its
resource URI as the namespace (observed Windows behaviour, ``winrm get winrm/config/service
-format:xml``; the MS-WSMV 4.2.3 certificate-mapping examples follow the same rule, while the
2.2.4.36 schema text declares ServiceType only in ``.../config``, the namespace it has inside
``Config``). Put takes the whole representation (MS-WSMV 4.2.2) or the settings to change.
They are read with Transfer Get (MS-WSMV 3.1.4.1; DSP0226 7.3), changed with Transfer Put of the
settings to change (MS-WSMV 3.1.4.2; DSP0226 7.4) and listeners are enumerated (DSP0226 8.2).

This module is sans-IO except for the ``async`` helpers at the end, which drive a
:class:`harness.client.wsman.WSManClient`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from harness.wire.wsman import messages as msg
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.ns import Action
from harness.wire.xmlsafe import xs_boolean

if TYPE_CHECKING:
    from harness.client.wsman import WSManClient
    from harness.wire.wsman.header import EndpointReference

NS_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
URI_CONFIG = NS_CONFIG
URI_SERVICE = NS_CONFIG + "/service"
URI_SERVICE_AUTH = URI_SERVICE + "/auth"
URI_CLIENT = NS_CONFIG + "/client"
URI_CLIENT_AUTH = URI_CLIENT + "/auth"
#: MS-WSMV 3.1.4.3: Put MUST be supported on client/defaultports (cfg:ClientDefaultPortsType) and MAY
#: be on service/defaultports (cfg:ServiceDefaultPortsType).
URI_CLIENT_DEFAULT_PORTS = URI_CLIENT + "/defaultports"
URI_SERVICE_DEFAULT_PORTS = URI_SERVICE + "/defaultports"
URI_WINRS = NS_CONFIG + "/winrs"
URI_LISTENER = NS_CONFIG + "/listener"
#: MS-WSMV 3.1.4.1.34.2: the plug-in configurations (selector ``Name``), each a PluginType (2.2.4.22)
#: in the PluginConfiguration namespace.
URI_PLUGIN = NS_CONFIG + "/plugin"
NS_PLUGIN = NS_CONFIG + "/PluginConfiguration"
#: The PluginConfiguration namespace as the default namespace (the 4.2.4 examples' spelling).
_DEFAULT_NS: Any = {None: NS_PLUGIN}

#: Resource URI -> local name of its representation's root element: the element names of MS-WSMV
#: 2.2.4.4-2.2.4.42 (Config, Client, Service, Winrs, Auth, DefaultPorts, Listener).
ROOT_ELEMENTS: dict[str, str] = {
    URI_CONFIG: "Config",
    URI_SERVICE: "Service",
    URI_SERVICE_AUTH: "Auth",
    URI_CLIENT: "Client",
    URI_CLIENT_AUTH: "Auth",
    URI_CLIENT_DEFAULT_PORTS: "DefaultPorts",
    URI_SERVICE_DEFAULT_PORTS: "DefaultPorts",
    URI_WINRS: "Winrs",
    URI_LISTENER: "Listener",
}

#: A value to Put: text, a bool ("true"/"false"), a number, or a nested group.
ConfigValue = str | bool | int | Mapping[str, "ConfigValue"]


class ConfigError(ValueError):
    """A configuration representation that is not one (wrong shape, unknown resource URI)."""


@dataclass
class ConfigTree:
    """One cfg element: its local name, namespace and children in document order. A leaf
    setting's value is its text ("" for an empty element such as ``<cfg:TrustedHosts/>``); a group
    (``Auth``, ``DefaultPorts``, the ``Service`` inside ``Config``) is a nested tree. A repeated
    setting (``ListeningOn``) keeps every value in :attr:`repeated`."""

    name: str
    namespace: str
    values: dict[str, str | ConfigTree] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str | ConfigTree:
        return self.values[name]

    def text(self, name: str) -> str:
        """The text of the leaf setting ``name`` (KeyError if absent, ConfigError if a group)."""
        value = self.values[name]
        if isinstance(value, ConfigTree):
            raise ConfigError(f"{name} is a group, not a setting")
        return value

    def group(self, name: str) -> ConfigTree:
        """The nested group ``name`` (KeyError if absent, ConfigError if a leaf)."""
        value = self.values[name]
        if not isinstance(value, ConfigTree):
            raise ConfigError(f"{name} is a setting, not a group")
        return value

    def names(self) -> list[str]:
        """The child element names in document order (the order Windows writes them)."""
        return list(self.values)


def root_element_of(resource_uri: str) -> str:
    """The representation's root element name for a config resource URI (ConfigError otherwise)."""
    try:
        return ROOT_ELEMENTS[resource_uri.rstrip("/").lower()]
    except KeyError:
        raise ConfigError(f"{resource_uri} is not a WinRM configuration resource") from None


def format_value(value: str | bool | int) -> str:
    """A setting value as Windows writes it: ``true``/``false``, decimal integers, text as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_element(resource_uri: str, values: Mapping[str, ConfigValue], *, root: str | None = None) -> etree._Element:
    """``<cfg:Service xmlns:cfg="<resource_uri>"><cfg:AllowUnencrypted>true</cfg:AllowUnencrypted>…``:
    the (partial) representation of a Put (DSP0226 7.4), in the resource URI's namespace."""
    ns = resource_uri.rstrip("/")
    name = root or root_element_of(ns)
    element = etree.Element(f"{{{ns}}}{name}", nsmap={"cfg": ns})
    _fill(element, ns, values)
    return element


def _fill(parent: etree._Element, ns: str, values: Mapping[str, ConfigValue]) -> None:
    for key, value in values.items():
        child = etree.SubElement(parent, f"{{{ns}}}{key}")
        if isinstance(value, Mapping):
            _fill(child, ns, value)
        else:
            text = format_value(value)
            if text:
                child.text = text


def parse_config(element: etree._Element) -> ConfigTree:
    """A cfg representation as a :class:`ConfigTree` (ConfigError on mixed namespaces)."""
    qname = etree.QName(element)
    tree = ConfigTree(qname.localname, qname.namespace or "")
    for child in element:
        if not isinstance(child.tag, str):
            continue
        cq = etree.QName(child)
        if (cq.namespace or "") != tree.namespace:
            raise ConfigError(f"{cq.localname} is in namespace {cq.namespace}, not {tree.namespace}")
        if any(isinstance(c.tag, str) for c in child):
            tree.values[cq.localname] = parse_config(child)
            continue
        text = (child.text or "").strip()
        if cq.localname in tree.values:
            tree.repeated.setdefault(cq.localname, [tree.text(cq.localname)]).append(text)
        else:
            tree.values[cq.localname] = text
    return tree


# ---------------------------------------------------------------------------------- plug-ins
@dataclass
class PluginSecurityInfo:
    """A ``Security`` element of a plug-in resource (MS-WSMV 2.2.4.22; 4.2.4): ``Uri``, ``Sddl``."""

    uri: str
    sddl: str
    exact_match: bool


@dataclass
class PluginResourceInfo:
    """A ``Resources/Resource`` of a plug-in: its ResourceUri, Security elements, Capability types."""

    resource_uri: str
    security: list[PluginSecurityInfo] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)


@dataclass
class PluginInfo:
    """A PluginType representation (``winrm get winrm/config/plugin?Name=...``; MS-WSMV 2.2.4.22)."""

    name: str
    filename: str
    sdk_version: str
    xml_rendering_type: str
    enabled: bool
    resources: list[PluginResourceInfo] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)

    def sddl_for(self, resource_uri: str) -> str | None:
        """The Sddl of the Security element whose Uri is ``resource_uri`` (case-insensitive)."""
        for resource in self.resources:
            for sec in resource.security:
                if sec.uri.rstrip("/").lower() == resource_uri.rstrip("/").lower():
                    return sec.sddl
        return None


def _xs_bool(text: str | None, default: bool) -> bool:
    if text is None:
        return default
    value = xs_boolean(text)
    if value is not None:
        return value
    raise ConfigError(f"not an xs:boolean: {text!r}")


def parse_plugin(element: etree._Element) -> PluginInfo:
    """A ``PlugInConfiguration`` element (any spelling of ``PluginConfiguration``; the 3.1.4.1.34.3
    and 4.2.4 examples write ``PlugInConfiguration``, the 2.2.4.22 schema ``PluginConfiguration``)."""
    q = etree.QName(element)
    if q.namespace != NS_PLUGIN or q.localname.lower() != "pluginconfiguration":
        raise ConfigError(f"not a PluginConfiguration: {q.localname} in {q.namespace}")
    info = PluginInfo(name=element.get("Name", ""), filename=element.get("Filename", ""),
                      sdk_version=element.get("SDKVersion", ""),
                      xml_rendering_type=element.get("XmlRenderingType", ""),
                      enabled=_xs_bool(element.get("Enabled"), True))
    for child in element:
        if not isinstance(child.tag, str) or etree.QName(child).namespace != NS_PLUGIN:
            continue
        local = etree.QName(child).localname
        if local == "InitializationParameters":
            for param in child.iterfind(f"{{{NS_PLUGIN}}}Param"):
                info.parameters[param.get("Name", "")] = param.get("Value", "")
        elif local == "Resources":
            for res in child.iterfind(f"{{{NS_PLUGIN}}}Resource"):
                resource = PluginResourceInfo(res.get("ResourceUri", ""))
                for sec in res.iterfind(f"{{{NS_PLUGIN}}}Security"):
                    resource.security.append(PluginSecurityInfo(sec.get("Uri", ""), sec.get("Sddl", ""),
                                                                _xs_bool(sec.get("ExactMatch"), False)))
                resource.capabilities = [c.get("Type", "") for c in res.iterfind(f"{{{NS_PLUGIN}}}Capability")]
                info.resources.append(resource)
    return info


def security_element(uri: str, sddl: str, *, exact_match: bool | None = None) -> etree._Element:
    """The Put body that sets one plug-in Security SDDL (MS-WSMV 4.2.4): ``<Security Uri= Sddl=/>``."""
    el = etree.Element(f"{{{NS_PLUGIN}}}Security", nsmap=_DEFAULT_NS)
    el.set("Uri", uri)
    if exact_match is not None:
        el.set("ExactMatch", "true" if exact_match else "false")
    el.set("Sddl", sddl)
    return el


# ---------------------------------------------------------------------------------- client I/O
async def _get_item(client: WSManClient, resource_uri: str,
                    selectors: Mapping[str, str | EndpointReference] | None) -> etree._Element:
    """The body item of a Transfer Get (DSP0226 7.3); ConfigError when it is malformed or empty."""
    env = await client.exchange(msg.build_get_request(client.header(Action.GET, resource_uri, selectors)))
    try:
        resp = msg.parse_get_response(env)
    except WSManDecodeError as exc:
        raise ConfigError(f"malformed GetResponse: {exc.reason}") from None
    if resp.item is None:
        raise ConfigError("GetResponse with an empty body")
    return resp.item


async def get_config(client: WSManClient, resource_uri: str = URI_CONFIG,
                     selectors: Mapping[str, str | EndpointReference] | None = None) -> ConfigTree:
    """``winrm get winrm/config[/...]``: Transfer Get of a config resource (MS-WSMV 3.1.4.1)."""
    return parse_config(await _get_item(client, resource_uri, selectors))


async def put_config(client: WSManClient, resource_uri: str, values: Mapping[str, ConfigValue],
                     selectors: Mapping[str, str | EndpointReference] | None = None) -> ConfigTree:
    """``winrm set winrm/config/... @{Name="value"}``: Transfer Put of the named settings only
    (MS-WSMV 3.1.4.2; DSP0226 7.4). Returns the new representation (Get again if the answer has
    none)."""
    body = config_element(resource_uri, values)
    env = await client.exchange(msg.build_put_request(client.header(Action.PUT, resource_uri, selectors), body))
    try:
        resp = msg.parse_put_response(env)
    except WSManDecodeError as exc:
        raise ConfigError(f"malformed PutResponse: {exc.reason}") from None
    if resp.item is None:
        return await get_config(client, resource_uri, selectors)
    return parse_config(resp.item)


async def enumerate_listeners(client: WSManClient) -> list[ConfigTree]:
    """``winrm enumerate winrm/config/listener`` (DSP0226 8.2, 8.4): every listener."""
    result = await client.enumerate_all(URI_LISTENER)
    return [parse_config(item.element) for item in result.items]


async def get_plugin(client: WSManClient, name: str) -> PluginInfo:
    """``winrm get winrm/config/plugin?Name=<name>`` (MS-WSMV 3.1.4.1.34.2)."""
    return parse_plugin(await _get_item(client, URI_PLUGIN, {"Name": name}))


async def put_plugin_security(client: WSManClient, name: str, uri: str, sddl: str) -> PluginInfo:
    """Set the Sddl of plug-in ``name``'s Security element ``uri`` with a Put of a ``Security`` body
    (MS-WSMV 4.2.4; ``Set-PSSessionConfiguration -SecurityDescriptorSddl``); the new configuration."""
    header = client.header(Action.PUT, URI_PLUGIN, {"Name": name})
    env = await client.exchange(msg.build_put_request(header, security_element(uri, sddl)))
    try:
        resp = msg.parse_put_response(env)
    except WSManDecodeError as exc:
        raise ConfigError(f"malformed PutResponse: {exc.reason}") from None
    if resp.item is None:
        return await get_plugin(client, name)
    return parse_plugin(resp.item)


async def enumerate_plugins(client: WSManClient) -> list[PluginInfo]:
    """``winrm enumerate winrm/config/plugin`` (DSP0226 8.2, 8.4): every plug-in configuration."""
    result = await client.enumerate_all(URI_PLUGIN)
    return [parse_plugin(item.element) for item in result.items]


__all__ = ["NS_CONFIG", "NS_PLUGIN", "ROOT_ELEMENTS", "URI_CLIENT", "URI_CLIENT_AUTH", "URI_CLIENT_DEFAULT_PORTS",
           "URI_CONFIG", "URI_LISTENER", "URI_PLUGIN", "URI_SERVICE", "URI_SERVICE_AUTH", "URI_SERVICE_DEFAULT_PORTS",
           "URI_WINRS", "ConfigError", "ConfigTree", "ConfigValue", "PluginInfo", "PluginResourceInfo",
           "PluginSecurityInfo", "config_element", "enumerate_listeners", "enumerate_plugins", "format_value",
           "get_config", "get_plugin", "parse_config", "parse_plugin", "put_config", "put_plugin_security",
           "root_element_of", "security_element"]
