"""The CIM repository shared by every protocol of the mock CIMOM (MS-WMOD 2.4).

Classes, qualifier declarations and instances are pywbem objects, kept per namespace. CIM names
(namespaces, classes, properties, methods, parameters, keys) are case-insensitive (DSP0004 5.1).
Every public method takes the store's ``threading.RLock``; listeners run after the lock is released.
Objects handed out are copies: mutating them never changes the store.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pywbem

from harness.cim.errors import CimError, CimStatus
from harness.cim.paths import ObjectPath, parse_object_path
from harness.cim.types import coerce_value, is_embedded, key_identity

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreChange:
    """One successful write; the event sources of the mock derive intrinsic events from it (DSP0200 ch. 7)."""

    kind: Literal["create", "modify", "delete"]
    namespace: str
    path: pywbem.CIMInstanceName
    previous: pywbem.CIMInstance | None
    current: pywbem.CIMInstance | None


MethodProvider = Callable[
    ["CimStore", str, pywbem.CIMInstanceName | str, dict[str, Any]],
    tuple[Any, dict[str, Any]],
]
Listener = Callable[[StoreChange], None]
#: Receives (namespace, event instance) for every extrinsic event (see CimStore.raise_extrinsic).
ExtrinsicListener = Callable[[str, pywbem.CIMInstance], None]
_L = TypeVar("_L", Listener, ExtrinsicListener)


def _own_feature(feature: Any, classname: str) -> Any:
    """A property or method defined or overridden by ``classname``: its origin is set (when not
    already) and it is not propagated (DSP0004 5.1.2.10). Returns ``feature``."""
    feature.class_origin = feature.class_origin or classname
    feature.propagated = False
    return feature


def _propagate_qualifiers(override: Any, inherited: Any) -> None:
    """Copy onto an overriding feature the superclass feature's qualifiers with the ToSubclass
    flavor that it does not redefine (DSP0004 5.6.1.3)."""
    for qname, q in inherited.qualifiers.items():
        if q.tosubclass is not False and qname not in override.qualifiers:
            override.qualifiers[qname] = q.copy()


def _filetime_now() -> int:
    """Now as a FILETIME (100 ns ticks since 1601-01-01), the unit of WMI's TIME_CREATED."""
    return int((time.time() + 11_644_473_600) * 10_000_000)
InstanceKey = tuple[str, tuple[tuple[str, object], ...]]


class _Namespace:
    """The contents of one namespace."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.qualifiers: dict[str, pywbem.CIMQualifierDeclaration] = {}
        self.classes: dict[str, pywbem.CIMClass] = {}
        self.instances: dict[InstanceKey, pywbem.CIMInstance] = {}
        # Creation order as a list with holes, so an enumeration cursor is one integer (constant
        # memory per open enumeration, MS-WMOD 3.2) and survives creations and deletions.
        self.order: list[InstanceKey | None] = []
        self.slot: dict[InstanceKey, int] = {}

    def add_instance(self, key: InstanceKey, instance: pywbem.CIMInstance) -> None:
        if key not in self.instances:
            self.slot[key] = len(self.order)
            self.order.append(key)
        self.instances[key] = instance

    def remove_instance(self, key: InstanceKey) -> None:
        del self.instances[key]
        self.order[self.slot.pop(key)] = None


def _qualifier_true(qualifiers: Mapping[str, Any], name: str) -> bool:
    q = qualifiers.get(name)
    return q is not None and bool(q.value)


def is_key(prop: pywbem.CIMProperty) -> bool:
    """A property is a key if it carries ``Key(true)`` (DSP0004 5.6.3.22)."""
    return _qualifier_true(prop.qualifiers, "Key")


class CimStore:
    """One CIM repository shared by every protocol of the mock (MS-WMOD 2.4). Thread-safe (RLock)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._namespaces: dict[str, _Namespace] = {}
        self._providers: dict[tuple[str, str], MethodProvider] = {}
        self._listeners: list[Listener] = []
        self._extrinsic_listeners: list[ExtrinsicListener] = []
        #: per-namespace opaque data of method providers (e.g. the namespace security descriptor)
        self.provider_state: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ namespaces
    @property
    def namespaces(self) -> list[str]:
        with self._lock:
            return [ns.name for ns in self._namespaces.values()]

    @staticmethod
    def _ns_key(name: str) -> str:
        return name.replace("\\", "/").strip("/").lower()

    def add_namespace(self, name: str) -> None:
        """Create a namespace (idempotent); ``root\\cimv2`` and ``root/cimv2`` are the same namespace."""
        canonical = name.replace("\\", "/").strip("/")
        if not canonical or any(not part for part in canonical.split("/")):
            raise CimError(CimStatus.INVALID_NAMESPACE, f"invalid namespace name {name!r}")
        with self._lock:
            self._namespaces.setdefault(canonical.lower(), _Namespace(canonical))

    def has_namespace(self, name: str) -> bool:
        with self._lock:
            return self._ns_key(name) in self._namespaces

    def normalize_namespace(self, name: str) -> str:
        """``root\\CIMV2`` -> ``root/cimv2`` (as created); INVALID_NAMESPACE if unknown."""
        return self._ns(name).name

    def _ns(self, name: str) -> _Namespace:
        try:
            return self._namespaces[self._ns_key(name)]
        except KeyError:
            raise CimError(CimStatus.INVALID_NAMESPACE, f"namespace {name!r} does not exist") from None

    # ------------------------------------------------------------------ qualifier declarations
    def set_qualifier_decl(self, namespace: str, decl: pywbem.CIMQualifierDeclaration) -> None:
        """Create or replace a qualifier declaration (DSP0004 5.1.2.6, DSP0200 SetQualifier)."""
        with self._lock:
            self._ns(namespace).qualifiers[decl.name.lower()] = decl.copy()

    def get_qualifier_decl(self, namespace: str, name: str) -> pywbem.CIMQualifierDeclaration:
        with self._lock:
            try:
                return self._ns(namespace).qualifiers[name.lower()].copy()
            except KeyError:
                raise CimError(CimStatus.NOT_FOUND, f"qualifier {name!r} is not declared") from None

    def qualifier_decls(self, namespace: str) -> list[pywbem.CIMQualifierDeclaration]:
        with self._lock:
            return [q.copy() for q in self._ns(namespace).qualifiers.values()]

    def delete_qualifier_decl(self, namespace: str, name: str) -> None:
        with self._lock:
            if self._ns(namespace).qualifiers.pop(name.lower(), None) is None:
                raise CimError(CimStatus.NOT_FOUND, f"qualifier {name!r} is not declared")

    # ------------------------------------------------------------------ classes
    def _class(self, ns: _Namespace, classname: str) -> pywbem.CIMClass:
        try:
            return ns.classes[classname.lower()]
        except KeyError:
            raise CimError(CimStatus.INVALID_CLASS, f"class {classname!r} does not exist in {ns.name}") from None

    def _resolve_class(self, ns: _Namespace, cls: pywbem.CIMClass) -> pywbem.CIMClass:
        """Merge inherited properties and methods (DSP0004 5.1.2.10: subclasses inherit the features
        of the superclass; qualifiers with the ToSubclass flavor propagate, DSP0004 5.6.1.3)."""
        resolved = cls.copy()
        if not cls.superclass:
            for prop in resolved.properties.values():
                prop.class_origin = prop.class_origin or cls.classname
                prop.propagated = bool(prop.propagated)
            for meth in resolved.methods.values():
                meth.class_origin = meth.class_origin or cls.classname
                meth.propagated = bool(meth.propagated)
            return resolved
        try:
            parent = ns.classes[cls.superclass.lower()]
        except KeyError:
            raise CimError(
                CimStatus.INVALID_SUPERCLASS,
                f"superclass {cls.superclass!r} of {cls.classname!r} does not exist in {ns.name}",
            ) from None
        resolved.superclass = parent.classname
        props = pywbem.NocaseDict()
        for name, pprop in parent.properties.items():
            local = cls.properties.get(name)
            if local is None:
                inherited = pprop.copy()
                inherited.propagated = True
                inherited.qualifiers = pywbem.NocaseDict(
                    {k: q for k, q in pprop.qualifiers.items() if q.tosubclass is not False}
                )
                props[name] = inherited
            else:
                merged = local.copy()
                _propagate_qualifiers(merged, pprop)
                if merged.value is None and pprop.value is not None:
                    merged.value = copy.deepcopy(pprop.value)
                props[name] = _own_feature(merged, cls.classname)
        for name, lprop in resolved.properties.items():
            if name not in props:
                props[name] = _own_feature(lprop, cls.classname)
        resolved.properties = props
        methods = pywbem.NocaseDict()
        for name, pmeth in parent.methods.items():
            if name in cls.methods:
                local_m = cls.methods[name].copy()
                _propagate_qualifiers(local_m, pmeth)
                methods[name] = _own_feature(local_m, cls.classname)
            else:
                inherited_m = pmeth.copy()
                inherited_m.propagated = True
                methods[name] = inherited_m
        for name, lmeth in resolved.methods.items():
            if name not in methods:
                methods[name] = _own_feature(lmeth, cls.classname)
        resolved.methods = methods
        return resolved

    def add_class(self, namespace: str, cls: pywbem.CIMClass) -> None:
        """Create a class (DSP0200 CreateClass): INVALID_SUPERCLASS if the superclass is missing,
        ALREADY_EXISTS if it exists. The stored class is resolved (inherited features included)."""
        with self._lock:
            ns = self._ns(namespace)
            if cls.classname.lower() in ns.classes:
                raise CimError(CimStatus.ALREADY_EXISTS, f"class {cls.classname!r} already exists")
            ns.classes[cls.classname.lower()] = self._resolve_class(ns, cls)

    def modify_class(self, namespace: str, cls: pywbem.CIMClass) -> None:
        """Replace a class that has no subclasses and no instances (DSP0200 ModifyClass)."""
        with self._lock:
            ns = self._ns(namespace)
            old = self._class(ns, cls.classname)
            if len(self._subclasses(ns, old.classname)) > 1:
                raise CimError(CimStatus.CLASS_HAS_CHILDREN, f"class {old.classname!r} has subclasses")
            if any(k[0] == old.classname.lower() for k in ns.instances):
                raise CimError(CimStatus.CLASS_HAS_INSTANCES, f"class {old.classname!r} has instances")
            ns.classes[old.classname.lower()] = self._resolve_class(ns, cls)

    def delete_class(self, namespace: str, classname: str) -> None:
        """Delete a class, its subclasses and their instances (DSP0200 DeleteClass)."""
        with self._lock:
            ns = self._ns(namespace)
            self._class(ns, classname)
            doomed = {c.lower() for c in self._subclasses(ns, classname)}
            for key in [k for k in ns.instances if k[0] in doomed]:
                ns.remove_instance(key)
            for name in doomed:
                del ns.classes[name]

    def get_class(self, namespace: str, classname: str) -> pywbem.CIMClass:
        """The resolved class (DSP0200 GetClass, LocalOnly=false); INVALID_CLASS / INVALID_NAMESPACE."""
        with self._lock:
            return self._class(self._ns(namespace), classname).copy()

    def class_view(self, namespace: str, classname: str) -> pywbem.CIMClass:
        """Like :meth:`get_class` without the copy, for hot read-only paths (rendering, key lookup).
        The caller must not modify the returned class; classes are replaced, never edited in place."""
        with self._lock:
            return self._class(self._ns(namespace), classname)

    def _subclasses(self, ns: _Namespace, classname: str) -> list[str]:
        root = classname.lower()
        out: list[str] = []
        for cls in ns.classes.values():
            cur: pywbem.CIMClass | None = cls
            while cur is not None:
                if cur.classname.lower() == root:
                    out.append(cls.classname)
                    break
                cur = ns.classes.get(cur.superclass.lower()) if cur.superclass else None
        return out

    def class_names(self, namespace: str, classname: str | None = None, deep: bool = True) -> list[str]:
        """All class names, or ``classname`` and its subclasses (``deep=False``: direct subclasses
        only, DSP0200 EnumerateClassNames DeepInheritance)."""
        with self._lock:
            ns = self._ns(namespace)
            if classname is None:
                if deep:
                    return [c.classname for c in ns.classes.values()]
                return [c.classname for c in ns.classes.values() if not c.superclass]
            base = self._class(ns, classname)
            if deep:
                return self._subclasses(ns, base.classname)
            return [base.classname] + [
                c.classname
                for c in ns.classes.values()
                if c.superclass and c.superclass.lower() == base.classname.lower()
            ]

    def superclass_chain(self, namespace: str, classname: str) -> list[str]:
        """``[classname, superclass, ..., root]`` with the canonical spelling."""
        with self._lock:
            ns = self._ns(namespace)
            chain: list[str] = []
            cur: pywbem.CIMClass | None = self._class(ns, classname)
            while cur is not None and len(chain) < 256:
                chain.append(cur.classname)
                cur = ns.classes.get(cur.superclass.lower()) if cur.superclass else None
            return chain

    def is_subclass(self, namespace: str, classname: str, ancestor: str) -> bool:
        """WQL ISA (DSP0202): ``classname`` equals ``ancestor`` or derives from it; False if unknown."""
        with self._lock:
            try:
                chain = self.superclass_chain(namespace, classname)
            except CimError:
                return classname.lower() == ancestor.lower()
            return ancestor.lower() in (c.lower() for c in chain)

    # ------------------------------------------------------------------ paths and keys
    def _parse_ref(self, text: str) -> pywbem.CIMInstanceName:
        return parse_object_path(text).instance_name()

    def _key_props(self, cls: pywbem.CIMClass) -> list[pywbem.CIMProperty]:
        return [p for p in cls.properties.values() if is_key(p)]

    def _typed_keybindings(
        self, ns: _Namespace, cls: pywbem.CIMClass, keybindings: Mapping[str, Any], *, what: str
    ) -> dict[str, Any]:
        """Coerce keybindings to the class key types; INVALID_PARAMETER if keys are missing or extra."""
        keyprops = self._key_props(cls)
        given = {str(k).lower(): v for k, v in keybindings.items()}
        typed: dict[str, Any] = {}
        for prop in keyprops:
            if prop.name.lower() not in given or given[prop.name.lower()] is None:
                raise CimError(
                    CimStatus.INVALID_PARAMETER,
                    f"{what}: key property {prop.name} of {cls.classname} missing",
                )
            value = coerce_value(
                given.pop(prop.name.lower()),
                prop.type,
                bool(prop.is_array),
                name=prop.name,
                parse_path=self._parse_ref,
            )
            if isinstance(value, pywbem.CIMInstanceName):
                value = self._canonical_ref(ns, value)
            typed[prop.name] = value
        if given:
            raise CimError(
                CimStatus.INVALID_PARAMETER,
                f"{what}: {', '.join(sorted(given))} not key properties of {cls.classname}",
            )
        return typed

    def _canonical_ref(self, ns: _Namespace, ref: pywbem.CIMInstanceName) -> pywbem.CIMInstanceName:
        """Type the keys of a reference whose class is known in this namespace (no host/namespace)."""
        cls = ns.classes.get(ref.classname.lower())
        if cls is None:
            return pywbem.CIMInstanceName(ref.classname, keybindings=dict(ref.keybindings))
        try:
            keys = self._typed_keybindings(ns, cls, ref.keybindings, what="reference")
        except CimError:
            return pywbem.CIMInstanceName(cls.classname, keybindings=dict(ref.keybindings))
        return pywbem.CIMInstanceName(cls.classname, keybindings=keys)

    @staticmethod
    def _identity(classname: str, keybindings: Mapping[str, Any]) -> InstanceKey:
        return (
            classname.lower(),
            tuple(sorted((str(k).lower(), key_identity(v)) for k, v in keybindings.items())),
        )

    def path_of(self, namespace: str, instance: pywbem.CIMInstance) -> pywbem.CIMInstanceName:
        """The instance path built from the class key properties (DSP0004 8.2.5); INVALID_PARAMETER if a
        key is NULL or missing."""
        with self._lock:
            ns = self._ns(namespace)
            cls = self._class(ns, instance.classname)
            values = {
                p.name: instance.properties[p.name].value if p.name in instance.properties else None
                for p in self._key_props(cls)
            }
            keys = self._typed_keybindings(ns, cls, values, what=f"instance of {cls.classname}")
            return pywbem.CIMInstanceName(cls.classname, keybindings=keys)

    def resolve_path(self, namespace: str, path: str | ObjectPath | pywbem.CIMInstanceName) -> pywbem.CIMInstanceName:
        """A typed instance name from an object path text, an :class:`ObjectPath` or an untyped name.

        ``Class="v"`` binds the single key of the class; ``Class=@`` names a singleton (MS-WMI 2.2.1.1).
        """
        with self._lock:
            ns = self._ns(namespace)
            if isinstance(path, str):
                path = parse_object_path(path)
            if isinstance(path, ObjectPath):
                cls = self._class(ns, path.classname)
                if len(path.keys) == 1 and path.keys[0][0] is None:
                    keyprops = self._key_props(cls)
                    if len(keyprops) != 1:
                        raise CimError(
                            CimStatus.INVALID_PARAMETER,
                            f"{cls.classname} has {len(keyprops)} keys; an unnamed key value is ambiguous",
                        )
                    keybindings: Mapping[str, Any] = {keyprops[0].name: path.keys[0][1]}
                else:
                    keybindings = {str(k): v for k, v in path.keys}
            else:
                cls = self._class(ns, path.classname)
                keybindings = path.keybindings
            keys = self._typed_keybindings(ns, cls, keybindings, what=f"path of {cls.classname}")
            return pywbem.CIMInstanceName(cls.classname, keybindings=keys)

    def _find(self, ns: _Namespace, path: pywbem.CIMInstanceName) -> tuple[InstanceKey, pywbem.CIMInstance]:
        cls = self._class(ns, path.classname)
        keys = self._typed_keybindings(ns, cls, path.keybindings, what=f"path of {cls.classname}")
        ident = self._identity(cls.classname, keys)
        found = ns.instances.get(ident)
        if found is not None:
            return ident, found
        # a path naming a superclass finds the instance of a subclass with the same keys
        # (DSP0004 5.1.2.10: key properties are inherited, so instance identity spans the hierarchy)
        want = ident[1]
        for sub in self._subclasses(ns, cls.classname):
            cand = (sub.lower(), want)
            if cand in ns.instances:
                return cand, ns.instances[cand]
        raise CimError(CimStatus.NOT_FOUND, f"instance {path} does not exist in {ns.name}")

    @staticmethod
    def _out(instance: pywbem.CIMInstance, property_list: Sequence[str] | None = None) -> pywbem.CIMInstance:
        # pywbem's copy() is middle-deep (new property and qualifier objects); list values are the only
        # mutable values left shared, so they are copied too. Far cheaper than deepcopy on every read.
        out = instance.copy()
        for prop in out.properties.values():
            if isinstance(prop.value, list):
                prop.value = list(prop.value)
        if property_list is not None:
            wanted = {p.lower() for p in property_list}
            for name in list(out.properties):
                prop = out.properties[name]
                if name.lower() not in wanted and not is_key(prop) and not _key_in_path(out, name):
                    del out.properties[name]
        return out

    # ------------------------------------------------------------------ instances
    def get_instance(
        self, namespace: str, path: pywbem.CIMInstanceName, property_list: Sequence[str] | None = None
    ) -> pywbem.CIMInstance:
        """DSP0200 GetInstance: NOT_FOUND if missing. With ``property_list`` only the named properties
        and the keys are returned; unknown names are ignored (DSP0200 PropertyList)."""
        with self._lock:
            ns = self._ns(namespace)
            _, inst = self._find(ns, path)
            return self._out(inst, property_list)

    def enumerate_instances(self, namespace: str, classname: str, deep: bool = True) -> list[pywbem.CIMInstance]:
        """DSP0200 EnumerateInstances in creation order; ``deep`` includes instances of subclasses."""
        with self._lock:
            ns = self._ns(namespace)
            base = self._class(ns, classname)
            names = {c.lower() for c in self._subclasses(ns, base.classname)} if deep else {base.classname.lower()}
            return [self._out(i) for k, i in ns.instances.items() if k[0] in names]

    def scan_instances(
        self, namespace: str, classname: str, start: int, limit: int, deep: bool = True
    ) -> tuple[list[pywbem.CIMInstance], int, bool]:
        """Up to ``limit`` instances of ``classname`` in creation order from cursor ``start``: returns
        (instances, next cursor, exhausted). A cursor is an integer, so an open enumeration costs
        constant memory however large the result set (DSP0200 EnumerateInstances in pieces)."""
        with self._lock:
            ns = self._ns(namespace)
            base = self._class(ns, classname)
            names = {c.lower() for c in self._subclasses(ns, base.classname)} if deep else {base.classname.lower()}
            order = ns.order
            out: list[pywbem.CIMInstance] = []
            i = max(start, 0)
            while i < len(order) and len(out) < limit:
                key = order[i]
                i += 1
                if key is not None and key[0] in names:
                    out.append(self._out(ns.instances[key]))
            return out, i, i >= len(order)

    def enumerate_instance_names(
        self, namespace: str, classname: str, deep: bool = True
    ) -> list[pywbem.CIMInstanceName]:
        """DSP0200 EnumerateInstanceNames."""
        with self._lock:
            ns = self._ns(namespace)
            base = self._class(ns, classname)
            names = {c.lower() for c in self._subclasses(ns, base.classname)} if deep else {base.classname.lower()}
            return [i.path.copy() for k, i in ns.instances.items() if k[0] in names]

    def _typed_property(self, cls: pywbem.CIMClass, name: str, value: Any) -> pywbem.CIMProperty:
        try:
            cprop = cls.properties[name]
        except KeyError:
            raise CimError(CimStatus.NO_SUCH_PROPERTY, f"{cls.classname} has no property {name!r}") from None
        if isinstance(value, pywbem.CIMProperty):
            value = value.value
        typed = coerce_value(
            value,
            cprop.type,
            bool(cprop.is_array),
            name=cprop.name,
            embedded=is_embedded(cprop.qualifiers),
            parse_path=self._parse_ref,
        )
        embedded_object = cprop.embedded_object
        if embedded_object is None and is_embedded(cprop.qualifiers):
            embedded_object = "instance" if "EmbeddedInstance" in cprop.qualifiers else "object"
        return pywbem.CIMProperty(
            cprop.name,
            typed,
            type=cprop.type,
            is_array=bool(cprop.is_array),
            reference_class=cprop.reference_class,
            embedded_object=embedded_object,
            class_origin=cprop.class_origin,
        )

    def create_instance(self, namespace: str, instance: pywbem.CIMInstance) -> pywbem.CIMInstanceName:
        """DSP0200 CreateInstance / MS-WMOD 2.5.2.1.

        Unknown properties -> NO_SUCH_PROPERTY; values are coerced to the declared types
        (TYPE_MISMATCH / INVALID_PARAMETER); unset properties get the class default (DSP0004 5.1.2.8);
        a NULL key -> INVALID_PARAMETER; an abstract class -> INVALID_CLASS (DSP0004 5.6.3.1);
        an existing path -> ALREADY_EXISTS.
        """
        with self._lock:
            ns = self._ns(namespace)
            cls = self._class(ns, instance.classname)
            if _qualifier_true(cls.qualifiers, "Abstract"):
                raise CimError(CimStatus.INVALID_CLASS, f"class {cls.classname} is abstract")
            props = pywbem.NocaseDict()
            for name, prop in instance.properties.items():
                props[name] = self._typed_property(cls, name, prop)
            stored = pywbem.CIMInstance(cls.classname)
            for cname, cprop in cls.properties.items():
                if cname in props:
                    stored.properties[cprop.name] = props[cname]
                else:
                    stored.properties[cprop.name] = self._typed_property(cls, cprop.name, copy.deepcopy(cprop.value))
            keys = {p.name: stored.properties[p.name].value for p in self._key_props(cls)}
            typed = self._typed_keybindings(ns, cls, keys, what=f"new instance of {cls.classname}")
            for name, value in typed.items():
                stored.properties[name].value = value
            ident = self._identity(cls.classname, typed)
            if ident in ns.instances:
                raise CimError(CimStatus.ALREADY_EXISTS, f"instance {cls.classname} {typed} already exists")
            path = pywbem.CIMInstanceName(cls.classname, keybindings=typed)
            stored.path = path
            ns.add_instance(ident, stored)
            change = StoreChange("create", ns.name, path.copy(), None, self._out(stored))
        self._notify(change)
        return path.copy()

    def modify_instance(
        self, namespace: str, instance: pywbem.CIMInstance, property_list: Sequence[str] | None = None
    ) -> pywbem.CIMInstance:
        """DSP0200 ModifyInstance / MS-WMOD 2.5.2.3: only the properties named in ``property_list`` (or,
        if None, present in ``instance``) change; a named property absent from ``instance`` becomes
        NULL (DSP0200 ModifyInstance PropertyList). Keys cannot change (INVALID_PARAMETER)."""
        with self._lock:
            ns = self._ns(namespace)
            path = instance.path if instance.path is not None else self.path_of(namespace, instance)
            ident, old = self._find(ns, path)
            cls = self._class(ns, old.classname)
            names = list(property_list) if property_list is not None else list(instance.properties)
            new = copy.deepcopy(old)
            for name in names:
                if name not in cls.properties:
                    raise CimError(CimStatus.NO_SUCH_PROPERTY, f"{cls.classname} has no property {name!r}")
                value = instance.properties[name].value if name in instance.properties else None
                prop = self._typed_property(cls, name, value)
                if is_key(cls.properties[name]):
                    if key_identity(prop.value) != key_identity(old.properties[prop.name].value):
                        raise CimError(CimStatus.INVALID_PARAMETER, f"key property {prop.name} cannot be modified")
                    continue
                new.properties[prop.name] = prop
            ns.instances[ident] = new
            change = StoreChange("modify", ns.name, new.path.copy(), self._out(old), self._out(new))
        self._notify(change)
        return self._out(new)

    def delete_instance(self, namespace: str, path: pywbem.CIMInstanceName) -> None:
        """DSP0200 DeleteInstance / MS-WMOD 2.5.2.6; NOT_FOUND if it does not exist (MS-WMOD 2.5.2.7)."""
        with self._lock:
            ns = self._ns(namespace)
            ident, old = self._find(ns, path)
            ns.remove_instance(ident)
            change = StoreChange("delete", ns.name, old.path.copy(), self._out(old), None)
        self._notify(change)

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every successful write; returns the unsubscribe function."""
        return self._register(self._listeners, listener)

    def _register(self, registry: list[_L], listener: _L) -> Callable[[], None]:
        """Append ``listener`` to ``registry`` under the store lock; returns the (idempotent) unsubscribe."""
        with self._lock:
            registry.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in registry:
                    registry.remove(listener)

        return unsubscribe

    def _notify(self, change: StoreChange) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # a failing listener must not undo or block the write
                _log.exception("CIM store listener failed for %s %s", change.kind, change.path)

    def add_extrinsic_listener(self, listener: ExtrinsicListener) -> Callable[[], None]:
        """Call ``listener(namespace, event)`` for every extrinsic event raised; returns the unsubscribe."""
        return self._register(self._extrinsic_listeners, listener)

    def raise_extrinsic(self, namespace: str, event: pywbem.CIMInstance) -> None:
        """Deliver an extrinsic event (an instance of a subclass of ``__ExtrinsicEvent``, WMI event
        classes; MS-WMI 3.1.4.3.x ExecNotificationQuery sees them like intrinsic events).
        INVALID_CLASS if the class is not an extrinsic event class; TIME_CREATED defaults to now."""
        if not self.is_subclass(namespace, event.classname, "__ExtrinsicEvent"):
            raise CimError(CimStatus.INVALID_CLASS, f"{event.classname} is not an extrinsic event class")
        cls = self.get_class(namespace, event.classname)
        out = pywbem.CIMInstance(cls.classname)
        for name, value in event.properties.items():
            out[name] = self._typed_property(cls, name, value.value)
        if out.get("TIME_CREATED") is None and "TIME_CREATED" in cls.properties:
            out["TIME_CREATED"] = self._typed_property(cls, "TIME_CREATED", _filetime_now())
        with self._lock:
            listeners = list(self._extrinsic_listeners)
        for listener in listeners:
            try:
                listener(self.normalize_namespace(namespace), out.copy())
            except Exception:  # a failing listener must not stop the provider
                _log.exception("CIM store extrinsic listener failed for %s", event.classname)

    # ------------------------------------------------------------------ methods
    def register_method(self, classname: str, method: str, provider: MethodProvider) -> None:
        """Register the Python implementation of ``classname.method`` (inherited by subclasses)."""
        with self._lock:
            self._providers[(classname.lower(), method.lower())] = provider

    def invoke_method(
        self, namespace: str, target: pywbem.CIMInstanceName | str, method: str, params: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """DSP0200 InvokeMethod / MS-WMOD 2.5.2.2.

        METHOD_NOT_FOUND if the class has no such method; NOT_FOUND if the target instance is missing;
        INVALID_PARAMETER for an unknown or output-only parameter, or a non-static method invoked on a
        class (DSP0004 5.6.3.47 Static); METHOD_NOT_AVAILABLE if no provider implements it. In-params
        are coerced to the declared types, the return value and out-params to theirs.
        """
        with self._lock:
            ns = self._ns(namespace)
            if isinstance(target, str):
                cls = self._class(ns, target)
                target_out: pywbem.CIMInstanceName | str = cls.classname
            else:
                _, inst = self._find(ns, target)
                cls = self._class(ns, inst.classname)
                target_out = inst.path.copy()
            try:
                meth = cls.methods[method]
            except KeyError:
                raise CimError(CimStatus.METHOD_NOT_FOUND, f"{cls.classname} has no method {method!r}") from None
            if isinstance(target_out, str) and not _qualifier_true(meth.qualifiers, "Static"):
                raise CimError(
                    CimStatus.INVALID_PARAMETER,
                    f"{cls.classname}.{meth.name} is not static and needs an instance path",
                )
            provider = None
            for name in self.superclass_chain(namespace, cls.classname):
                provider = self._providers.get((name.lower(), meth.name.lower()))
                if provider is not None:
                    break
            if provider is None:
                raise CimError(CimStatus.METHOD_NOT_AVAILABLE, f"no provider implements {cls.classname}.{meth.name}")
            in_params: dict[str, Any] = {}
            for pname, value in params.items():
                decl = meth.parameters.get(pname)
                if decl is None or not _is_in(decl):
                    raise CimError(
                        CimStatus.INVALID_PARAMETER,
                        f"{cls.classname}.{meth.name} has no input parameter {pname!r}",
                    )
                in_params[decl.name] = coerce_value(
                    value,
                    decl.type,
                    bool(decl.is_array),
                    name=decl.name,
                    embedded=is_embedded(decl.qualifiers),
                    parse_path=self._parse_ref,
                )
        rv, out = provider(self, ns.name, target_out, in_params)
        typed_out: dict[str, Any] = {}
        for oname, ovalue in out.items():
            decl = meth.parameters.get(oname)
            if decl is None:
                typed_out[oname] = ovalue
                continue
            typed_out[decl.name] = coerce_value(
                ovalue,
                decl.type,
                bool(decl.is_array),
                name=decl.name,
                embedded=is_embedded(decl.qualifiers),
                parse_path=self._parse_ref,
            )
        if meth.return_type and rv is not None:
            rv = coerce_value(rv, meth.return_type, False, name="ReturnValue")
        return rv, typed_out

    # ------------------------------------------------------------------ associations
    def _matching_refs(
        self, ns: _Namespace, path: pywbem.CIMInstanceName, role: str | None
    ) -> list[tuple[pywbem.CIMInstance, str]]:
        """(association instance, role property) pairs whose reference names ``path`` (DSP0200 References)."""
        # observed Windows behaviour: WMI resolves the source object first, so ASSOCIATORS OF /
        # REFERENCES OF a missing instance fails with WBEM_E_NOT_FOUND instead of an empty result
        _, source = self._find(ns, path)
        target = source.path
        want = self._identity(target.classname, target.keybindings)
        found: list[tuple[pywbem.CIMInstance, str]] = []
        for inst in ns.instances.values():
            for pname, prop in inst.properties.items():
                if prop.type != "reference" or prop.value is None:
                    continue
                if role is not None and pname.lower() != role.lower():
                    continue
                ref = self._canonical_ref(ns, prop.value)
                if self._identity(ref.classname, ref.keybindings) == want or self._same_via_subclass(ns, ref, target):
                    found.append((inst, prop.name))
        return found

    def _same_via_subclass(self, ns: _Namespace, ref: pywbem.CIMInstanceName, target: pywbem.CIMInstanceName) -> bool:
        if ref.classname.lower() == target.classname.lower():
            return False
        try:
            k1, _ = self._find(ns, ref)
            k2, _ = self._find(ns, target)
        except CimError:
            return False
        return k1 == k2

    def references(
        self,
        namespace: str,
        path: pywbem.CIMInstanceName,
        result_class: str | None = None,
        role: str | None = None,
    ) -> list[pywbem.CIMInstance]:
        """DSP0200 References: association instances that refer to ``path`` (``result_class`` filters the
        association class, ``role`` the referring property)."""
        with self._lock:
            ns = self._ns(namespace)
            out: list[pywbem.CIMInstance] = []
            seen: set[InstanceKey] = set()
            for inst, _ in self._matching_refs(ns, path, role):
                if result_class is not None and not self.is_subclass(namespace, inst.classname, result_class):
                    continue
                ident = self._identity(inst.classname, inst.path.keybindings)
                if ident not in seen:
                    seen.add(ident)
                    out.append(self._out(inst))
            return out

    def associators(
        self,
        namespace: str,
        path: pywbem.CIMInstanceName,
        assoc_class: str | None = None,
        result_class: str | None = None,
        role: str | None = None,
        result_role: str | None = None,
    ) -> list[pywbem.CIMInstance]:
        """DSP0200 Associators: instances reached from ``path`` through association instances; dangling
        references are skipped."""
        with self._lock:
            ns = self._ns(namespace)
            out: list[pywbem.CIMInstance] = []
            seen: set[InstanceKey] = set()
            for assoc, via in self._matching_refs(ns, path, role):
                if assoc_class is not None and not self.is_subclass(namespace, assoc.classname, assoc_class):
                    continue
                for pname, prop in assoc.properties.items():
                    if prop.type != "reference" or prop.value is None or pname.lower() == via.lower():
                        continue
                    if result_role is not None and pname.lower() != result_role.lower():
                        continue
                    try:
                        ident, other = self._find(ns, prop.value)
                    except CimError:
                        continue
                    if result_class is not None and not self.is_subclass(namespace, other.classname, result_class):
                        continue
                    if ident not in seen:
                        seen.add(ident)
                        out.append(self._out(other))
            return out

    # ------------------------------------------------------------------ queries
    def exec_query(self, namespace: str, query: str, language: str = "WQL") -> list[pywbem.CIMInstance]:
        """DSP0200 ExecQuery with WQL (DSP0202 / MS-WMI 2.2.1): QUERY_LANGUAGE_NOT_SUPPORTED for other
        languages, INVALID_QUERY for bad syntax, INVALID_CLASS for an unknown class."""
        from harness.cim.query import execute_query

        if language.strip().upper() != "WQL":
            raise CimError(CimStatus.QUERY_LANGUAGE_NOT_SUPPORTED, f"query language {language!r} is not supported")
        with self._lock:
            return execute_query(self, namespace, query)

    # ------------------------------------------------------------------ copies
    def clone(self) -> CimStore:
        """A deep copy of namespaces, classes, qualifiers, instances and provider state; method
        providers are shared, listeners are not."""
        with self._lock:
            other = CimStore()
            other._namespaces = copy.deepcopy(self._namespaces)
            other._providers = dict(self._providers)
            other.provider_state = copy.deepcopy(self.provider_state)
            return other


def _key_in_path(instance: pywbem.CIMInstance, name: str) -> bool:
    return instance.path is not None and name in instance.path.keybindings


def _is_in(param: pywbem.CIMParameter) -> bool:
    """Whether a parameter is an input. ``In`` defaults to true (DSP0004 5.6.3.21), but WMI MOF marks
    direction explicitly (every WMI method parameter carries ``[in]`` and/or ``[out]``), so a parameter
    with only ``[out]`` is treated as output-only, as WMI does."""
    if "In" in param.qualifiers:
        return bool(param.qualifiers["In"].value)
    return "Out" not in param.qualifiers
