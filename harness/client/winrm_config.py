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
from typing import TYPE_CHECKING

from lxml import etree

from harness.wire.wsman import messages as msg
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.ns import Action

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


# ---------------------------------------------------------------------------------- client I/O
async def get_config(client: WSManClient, resource_uri: str = URI_CONFIG,
                     selectors: Mapping[str, str | EndpointReference] | None = None) -> ConfigTree:
    """``winrm get winrm/config[/...]``: Transfer Get of a config resource (MS-WSMV 3.1.4.1)."""
    env = await client.exchange(msg.build_get_request(client.header(Action.GET, resource_uri, selectors)))
    try:
        resp = msg.parse_get_response(env)
    except WSManDecodeError as exc:
        raise ConfigError(f"malformed GetResponse: {exc.reason}") from None
    if resp.item is None:
        raise ConfigError("GetResponse with an empty body")
    return parse_config(resp.item)


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


__all__ = ["NS_CONFIG", "ROOT_ELEMENTS", "URI_CLIENT", "URI_CLIENT_AUTH", "URI_CLIENT_DEFAULT_PORTS", "URI_CONFIG",
           "URI_LISTENER", "URI_SERVICE", "URI_SERVICE_AUTH", "URI_SERVICE_DEFAULT_PORTS", "URI_WINRS",
           "ConfigError", "ConfigTree", "ConfigValue", "config_element", "enumerate_listeners", "format_value",
           "get_config", "parse_config", "put_config", "root_element_of"]
