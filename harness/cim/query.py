"""Execution of parsed WQL statements against a :class:`~harness.cim.store.CimStore`.

Called by :meth:`CimStore.exec_query` with the store lock held (DSP0200 ExecQuery, MS-WMI 2.2.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pywbem

from harness.cim.errors import CimError, CimStatus
from harness.cim.wql import WqlQuery, WqlSyntaxError, evaluate_where, parse_wql, where_properties

if TYPE_CHECKING:
    from harness.cim.store import CimStore

#: System properties that WQL accepts in a SELECT list or WHERE clause without a class declaration.
SYSTEM_PROPERTIES = frozenset({"__CLASS", "__THIS", "__RELPATH", "__PATH"})


def _check_property(cls: pywbem.CIMClass, name: str) -> None:
    """WMI rejects a query naming a property the class does not have (observed Windows behaviour:
    WBEM_E_INVALID_QUERY for ``SELECT Foo FROM Win32_Service``)."""
    head = name.split(".", 1)[0]
    if head.upper() in SYSTEM_PROPERTIES or head in cls.properties:
        return
    raise WqlSyntaxError(f"{cls.classname} has no property {head!r}")


def project(instance: pywbem.CIMInstance, properties: tuple[str, ...] | None, keys: list[str]) -> pywbem.CIMInstance:
    """``SELECT a, b``: keep the named properties and the keys (WMI keeps the keys so that the
    projected instance still has its path)."""
    if properties is None:
        return instance
    wanted = {p.split(".", 1)[0].lower() for p in properties} | {k.lower() for k in keys}
    for name in list(instance.properties):
        if name.lower() not in wanted:
            del instance.properties[name]
    return instance


def _keys_of(store: CimStore, namespace: str, classname: str) -> list[str]:
    cls = store.get_class(namespace, classname)
    return [p.name for p in cls.properties.values() if "Key" in p.qualifiers and p.qualifiers["Key"].value]


def _select(store: CimStore, namespace: str, query: WqlQuery) -> list[pywbem.CIMInstance]:
    cls = store.get_class(namespace, query.classname)
    for name in query.properties or ():
        _check_property(cls, name)
    for prop in where_properties(query.where):
        _check_property(cls, prop.name)

    def isa(classname: str, ancestor: str) -> bool:
        return store.is_subclass(namespace, classname, ancestor)

    out: list[pywbem.CIMInstance] = []
    for inst in store.enumerate_instances(namespace, cls.classname, deep=True):
        if query.where is None or evaluate_where(query.where, inst, isa):
            out.append(project(inst, query.properties, _keys_of(store, namespace, inst.classname)))
    return out


def _has_qualifier(store: CimStore, namespace: str, classname: str, qualifier: str | None) -> bool:
    if qualifier is None:
        return True
    return qualifier in store.get_class(namespace, classname).qualifiers


def _assoc(store: CimStore, namespace: str, query: WqlQuery) -> list[pywbem.CIMInstance]:
    """ASSOCIATORS OF / REFERENCES OF (WQL; DSP0200 Associators / References semantics)."""
    if query.classdefs_only or query.schema_only:
        raise CimError(
            CimStatus.NOT_SUPPORTED,
            "ClassDefsOnly / SchemaOnly return class definitions; use the class operations instead",
        )
    assert query.parsed_path is not None
    path = store.resolve_path(namespace, query.parsed_path)
    if query.kind == "associators":
        found = store.associators(
            namespace,
            path,
            assoc_class=query.assoc_class,
            result_class=query.result_class,
            role=query.role,
            result_role=query.result_role,
        )
        if query.required_assoc_qualifier is not None:
            assoc_names: list[str] = []
            for a in store.references(namespace, path, result_class=query.assoc_class, role=query.role):
                if a.classname not in assoc_names and _has_qualifier(
                    store, namespace, a.classname, query.required_assoc_qualifier
                ):
                    assoc_names.append(a.classname)
            found = []
            for name in assoc_names:
                for inst in store.associators(
                    namespace,
                    path,
                    assoc_class=name,
                    result_class=query.result_class,
                    role=query.role,
                    result_role=query.result_role,
                ):
                    if inst.path not in [f.path for f in found]:
                        found.append(inst)
    else:
        found = store.references(namespace, path, result_class=query.result_class, role=query.role)
    found = [i for i in found if _has_qualifier(store, namespace, i.classname, query.required_qualifier)]
    if query.keys_only:
        found = [project(i, (), _keys_of(store, namespace, i.classname)) for i in found]
    return found


def execute_query(store: CimStore, namespace: str, text: str) -> list[pywbem.CIMInstance]:
    """Parse and run one WQL data query."""
    query = parse_wql(text)
    if query.kind == "select":
        return _select(store, namespace, query)
    return _assoc(store, namespace, query)
