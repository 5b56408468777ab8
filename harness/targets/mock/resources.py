"""Resource URI and selector resolution for the mock's WMI plug-in.

MS-WSMV 2.2.4.x / 3.1.4.x name WMI classes by resource URI:

- ``http://schemas.microsoft.com/wbem/wsman/1/wmi/<namespace>/<class>`` (namespace path with ``/``);
- ``http://schemas.microsoft.com/wbem/wsman/1/wmicimv2/<class>``, the ``root/cimv2`` alias;
- ``http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/<class>`` for DMTF classes, the namespace in
  the ``__cimnamespace`` selector (DSP0227 7.x), ``root/cimv2`` when absent;
- ``.../wmi/<namespace>/*`` and ``http://schemas.dmtf.org/wbem/wscim/1/*``: every class, for
  enumerations whose filter names the class (WQL, association filters).

Selectors name key properties (DSP0226 7.2): a missing key is ``InsufficientSelectors``, an
unknown one ``UnexpectedSelectors``, a value of the wrong type ``TypeMismatch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pywbem

from harness.cim.errors import CimError, CimStatus
from harness.cim.store import CimStore
from harness.cim.types import coerce_value
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.ns import RESOURCE_CIM_PREFIX, RESOURCE_WMI_PREFIX

WMICIMV2_ALIAS = "http://schemas.microsoft.com/wbem/wsman/1/wmicimv2/"
CIM_ALL_CLASSES = "http://schemas.dmtf.org/wbem/wscim/1/*"
CIM_NAMESPACE_SELECTOR = "__cimnamespace"
DEFAULT_NAMESPACE = "root/cimv2"


class SelectorError(Exception):
    """Selectors that do not name an instance; ``detail`` is the DSP0226 fault detail name."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(reason)
        self.detail = detail
        self.reason = reason


class UnknownResource(Exception):
    """A resource URI that no plug-in serves (``wsa:DestinationUnreachable``, DSP0226 7.1)."""


@dataclass(frozen=True)
class Resource:
    """What a resource URI and selector set resolve to."""

    uri: str
    namespace: str
    class_name: str | None  # None: every class (wildcard URI)
    dmtf: bool

    def uri_for(self, class_name: str) -> str:
        if self.dmtf:
            return RESOURCE_CIM_PREFIX + class_name
        return f"{RESOURCE_WMI_PREFIX}{self.namespace}/{class_name}"


def resolve_resource(uri: str | None, selectors: dict[str, str | EndpointReference], store: CimStore) -> Resource:
    """Map a resource URI (and ``__cimnamespace``) to namespace and class; checks both exist."""
    if not uri:
        raise UnknownResource("the request has no wsman:ResourceURI")
    lowered = uri.lower()
    dmtf = False
    if lowered.startswith(RESOURCE_WMI_PREFIX.lower()):
        rest = uri[len(RESOURCE_WMI_PREFIX):].strip("/")
        namespace, _, class_name = rest.rpartition("/")
    elif lowered.startswith(WMICIMV2_ALIAS.lower()):
        namespace, class_name = DEFAULT_NAMESPACE, uri[len(WMICIMV2_ALIAS):].strip("/")
    elif lowered.startswith(RESOURCE_CIM_PREFIX.lower()) or lowered == CIM_ALL_CLASSES.lower():
        dmtf = True
        class_name = "*" if lowered == CIM_ALL_CLASSES.lower() else uri[len(RESOURCE_CIM_PREFIX):].strip("/")
        ns_sel = selectors.get(CIM_NAMESPACE_SELECTOR, DEFAULT_NAMESPACE)
        if not isinstance(ns_sel, str):
            raise SelectorError("TypeMismatch", "__cimnamespace must be text")
        namespace = ns_sel
    else:
        raise UnknownResource(f"no plug-in serves the resource URI {uri}")
    if not namespace or not class_name or "/" in class_name:
        raise UnknownResource(f"resource URI {uri} does not name a namespace and a class")
    if not store.has_namespace(namespace):
        raise CimError(CimStatus.INVALID_NAMESPACE, f"namespace {namespace} does not exist")
    namespace = store.normalize_namespace(namespace)
    if class_name == "*":
        return Resource(uri, namespace, None, dmtf)
    cls = store.class_view(namespace, class_name)  # raises INVALID_CLASS
    return Resource(uri, namespace, cls.classname, dmtf)


def instance_path(resource: Resource, selectors: dict[str, str | EndpointReference],
                  store: CimStore) -> pywbem.CIMInstanceName:
    """The instance the selectors name (DSP0226 7.2; MS-WSMV 3.1.4.1.x).

    With no selectors, a class with exactly one instance names that instance (observed Windows
    behaviour: ``winrm get wmicimv2/Win32_OperatingSystem`` works without selectors).
    """
    if resource.class_name is None:
        raise SelectorError("InsufficientSelectors", "a wildcard resource URI names no instance")
    cls = store.class_view(resource.namespace, resource.class_name)
    given = {k: v for k, v in selectors.items() if k != CIM_NAMESPACE_SELECTOR}
    keys = {name.lower(): prop for name, prop in cls.properties.items() if prop.qualifiers.get("key")
            and prop.qualifiers["key"].value}
    if not given:
        instances = store.enumerate_instances(resource.namespace, resource.class_name, deep=False)
        if len(instances) == 1 and instances[0].path is not None:
            return store.path_of(resource.namespace, instances[0])
        raise SelectorError("InsufficientSelectors", f"{resource.class_name} needs selectors "
                            f"{', '.join(p.name for p in keys.values()) or '(none)'}")
    bindings: dict[str, object] = {}
    for name, value in given.items():
        prop = keys.get(name.lower())
        if prop is None:
            raise SelectorError("UnexpectedSelectors", f"{name} is not a key of {resource.class_name}")
        if isinstance(value, EndpointReference):
            raise SelectorError("TypeMismatch", f"selector {name} holds an EPR; {prop.type} expected")
        try:
            bindings[prop.name] = coerce_value(value, prop.type, False, name=prop.name)
        except CimError as exc:
            raise SelectorError("TypeMismatch", f"selector {name}: {exc.description}") from None
    missing = [p.name for k, p in keys.items() if p.name not in bindings]
    if missing:
        raise SelectorError("InsufficientSelectors", f"missing selector(s) {', '.join(missing)}")
    return pywbem.CIMInstanceName(resource.class_name, keybindings=bindings)


def selectors_of(path: pywbem.CIMInstanceName) -> dict[str, str | EndpointReference]:
    """The selector set that addresses ``path`` (key values as their XML text)."""
    out: dict[str, str | EndpointReference] = {}
    for name, value in path.keybindings.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, pywbem.CIMInstanceName):
            out[name] = EndpointReference(resource_uri=RESOURCE_WMI_PREFIX + "root/cimv2/" + value.classname,
                                          selectors=selectors_of(value))
        else:
            out[name] = str(value)
    return out
