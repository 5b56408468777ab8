"""CimStore semantics: namespaces, classes, instance operations, listeners, methods."""

from __future__ import annotations

import threading

import pytest
from pywbem import CIMClass, CIMInstance, CIMInstanceName, CIMProperty, CIMQualifier, Uint8, Uint32

from harness.cim import CimError, CimStatus, CimStore, StoreChange

NS = "root/cimv2"


def svc(name: str) -> CIMInstanceName:
    return CIMInstanceName("Win32_Service", keybindings={"Name": name})


def env(name: str, user: str = "<SYSTEM>", value: str | None = "v") -> CIMInstance:
    inst = CIMInstance("Win32_Environment")
    inst["Name"] = name
    inst["UserName"] = user
    if value is not None:
        inst["VariableValue"] = value
    return inst


def status_of(exc: pytest.ExceptionInfo[CimError]) -> CimStatus:
    return exc.value.status


# ---------------------------------------------------------------- namespaces and classes


def test_namespaces_normalized(ro_store: CimStore) -> None:
    assert {"root/cimv2", "root/interop", "root/default"} <= set(ro_store.namespaces)
    assert ro_store.normalize_namespace("ROOT\\CIMv2") == "root/cimv2"
    assert ro_store.has_namespace("root\\interop")
    assert not ro_store.has_namespace("root/nope")
    with pytest.raises(CimError) as exc:
        ro_store.normalize_namespace("root/nope")
    assert status_of(exc) == CimStatus.INVALID_NAMESPACE


def test_add_namespace_idempotent_and_validated() -> None:
    s = CimStore()
    s.add_namespace("root\\test")
    s.add_namespace("ROOT/TEST")
    assert s.namespaces == ["root/test"]
    with pytest.raises(CimError) as exc:
        s.add_namespace("root//x")
    assert status_of(exc) == CimStatus.INVALID_NAMESPACE


def test_get_class_errors(ro_store: CimStore) -> None:
    with pytest.raises(CimError) as exc:
        ro_store.get_class(NS, "Win32_Nothing")
    assert status_of(exc) == CimStatus.INVALID_CLASS
    with pytest.raises(CimError) as exc:
        ro_store.get_class("root/none", "Win32_Service")
    assert status_of(exc) == CimStatus.INVALID_NAMESPACE


def test_class_lookup_is_case_insensitive_and_resolved(ro_store: CimStore) -> None:
    cls = ro_store.get_class(NS, "WIN32_service")
    assert cls.classname == "Win32_Service"
    # inherited from CIM_ManagedElement through five levels, with its origin
    assert cls.properties["caption"].class_origin == "CIM_ManagedElement"
    assert cls.properties["Name"].qualifiers["Key"].value is True
    assert "StartService" in cls.methods


def test_class_hierarchy(ro_store: CimStore) -> None:
    assert ro_store.superclass_chain(NS, "win32_service") == [
        "Win32_Service",
        "Win32_BaseService",
        "CIM_Service",
        "CIM_LogicalElement",
        "CIM_ManagedSystemElement",
        "CIM_ManagedElement",
    ]
    assert ro_store.is_subclass(NS, "Win32_Service", "cim_logicalelement")
    assert not ro_store.is_subclass(NS, "CIM_Service", "Win32_Service")
    names = ro_store.class_names(NS, "CIM_Service")
    assert names[0] == "CIM_Service" and "Win32_Service" in names
    assert ro_store.class_names(NS, "CIM_Service", deep=False) == ["CIM_Service", "Win32_BaseService"]
    assert "CIM_ManagedElement" in ro_store.class_names(NS, deep=False)


def test_add_class_errors() -> None:
    s = CimStore()
    s.add_namespace("root/t")
    s.add_class("root/t", CIMClass("A", properties={"K": CIMProperty("K", None, type="string")}))
    with pytest.raises(CimError) as exc:
        s.add_class("root/t", CIMClass("a"))
    assert status_of(exc) == CimStatus.ALREADY_EXISTS
    with pytest.raises(CimError) as exc:
        s.add_class("root/t", CIMClass("B", superclass="Missing"))
    assert status_of(exc) == CimStatus.INVALID_SUPERCLASS


def test_modify_and_delete_class() -> None:
    s = CimStore()
    s.add_namespace("root/t")
    key = CIMProperty("K", None, type="string", qualifiers=[CIMQualifier("Key", True)])
    s.add_class("root/t", CIMClass("A", properties=[key]))
    s.add_class("root/t", CIMClass("B", superclass="A"))
    with pytest.raises(CimError) as exc:
        s.modify_class("root/t", CIMClass("A", properties=[key]))
    assert status_of(exc) == CimStatus.CLASS_HAS_CHILDREN
    inst = CIMInstance("B")
    inst["K"] = "x"
    s.create_instance("root/t", inst)
    with pytest.raises(CimError) as exc:
        s.modify_class("root/t", CIMClass("B", superclass="A"))
    assert status_of(exc) == CimStatus.CLASS_HAS_INSTANCES
    s.delete_class("root/t", "A")
    assert s.class_names("root/t") == []


# ---------------------------------------------------------------- get / enumerate


def test_get_instance_case_insensitive_key(ro_store: CimStore) -> None:
    inst = ro_store.get_instance(NS, CIMInstanceName("win32_SERVICE", keybindings={"name": "winrm"}))
    assert inst["Name"] == "WinRM"
    assert inst.path == svc("WinRM")
    assert inst.path.namespace is None


def test_get_instance_via_superclass_path(ro_store: CimStore) -> None:
    inst = ro_store.get_instance(NS, CIMInstanceName("Win32_BaseService", keybindings={"Name": "Spooler"}))
    assert inst.classname == "Win32_Service"


def test_get_instance_property_list_keeps_keys(ro_store: CimStore) -> None:
    inst = ro_store.get_instance(NS, svc("WinRM"), property_list=["state", "NoSuchProp"])
    assert set(inst.properties) == {"Name", "State"}


def test_get_instance_not_found_and_bad_keys(ro_store: CimStore) -> None:
    with pytest.raises(CimError) as exc:
        ro_store.get_instance(NS, svc("NoSuchService"))
    assert status_of(exc) == CimStatus.NOT_FOUND
    with pytest.raises(CimError) as exc:
        ro_store.get_instance(NS, CIMInstanceName("Win32_Service", keybindings={"Bogus": "x"}))
    assert status_of(exc) == CimStatus.INVALID_PARAMETER


def test_numeric_key_from_text(ro_store: CimStore) -> None:
    inst = ro_store.get_instance(NS, CIMInstanceName("Win32_NetworkAdapterConfiguration", keybindings={"Index": "1"}))
    assert inst["IPAddress"][0] == "192.168.56.10"


def test_returned_objects_are_copies(store: CimStore) -> None:
    inst = store.get_instance(NS, svc("WinRM"))
    inst["State"] = "Mutated"
    assert store.get_instance(NS, svc("WinRM"))["State"] == "Running"


def test_enumerate_deep_shallow_and_order(ro_store: CimStore) -> None:
    services = ro_store.enumerate_instances(NS, "Win32_Service")
    assert len(services) >= 25
    assert [s["Name"] for s in services[:3]] == ["WinRM", "Winmgmt", "Spooler"]
    assert len(ro_store.enumerate_instances(NS, "CIM_Service")) == len(services)
    assert ro_store.enumerate_instances(NS, "CIM_Service", deep=False) == []
    everything = ro_store.enumerate_instances(NS, "CIM_ManagedSystemElement")
    assert {i.classname for i in everything} >= {"Win32_Service", "Win32_Process", "Win32_LogicalDisk"}


# ---------------------------------------------------------------- create


def test_create_fills_defaults_and_returns_path(store: CimStore) -> None:
    path = store.create_instance(NS, env("WMH_TEST", value="1"))
    assert path == CIMInstanceName("Win32_Environment", keybindings={"Name": "WMH_TEST", "UserName": "<SYSTEM>"})
    inst = store.get_instance(NS, path)
    assert inst["VariableValue"] == "1"
    assert "SystemVariable" in inst.properties and inst["SystemVariable"] is None
    startup = CIMInstance("Win32_ProcessStartup")
    startup["Title"] = "t"
    # Win32_ProcessStartup has no key; its ErrorMode default comes from the class
    store.create_instance(NS, startup)
    assert store.enumerate_instances(NS, "Win32_ProcessStartup")[0]["ErrorMode"] == 1


def test_create_coerces_types(store: CimStore) -> None:
    inst = CIMInstance("Win32_NetworkAdapterConfiguration")
    inst["Index"] = CIMProperty("Index", "7", type="string")
    inst["IPEnabled"] = CIMProperty("IPEnabled", "true", type="string")
    inst["IPAddress"] = ["10.0.0.1"]
    path = store.create_instance(NS, inst)
    got = store.get_instance(NS, path)
    assert isinstance(got["Index"], Uint32) and got["Index"] == 7
    assert got["IPEnabled"] is True
    assert got.properties["IPAddress"].is_array


@pytest.mark.parametrize(
    ("prop", "value", "status"),
    [
        ("NoSuchProperty", "x", CimStatus.NO_SUCH_PROPERTY),
        ("SystemVariable", ["a"], CimStatus.TYPE_MISMATCH),
        ("SystemVariable", "maybe", CimStatus.INVALID_PARAMETER),
        ("VariableValue", Uint8(3), CimStatus.TYPE_MISMATCH),
    ],
)
def test_create_rejects_bad_properties(store: CimStore, prop: str, value: object, status: CimStatus) -> None:
    inst = env("X")
    inst.properties[prop] = CIMProperty(prop, value)
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, inst)
    assert status_of(exc) == status


def test_create_integer_range_and_kind(store: CimStore) -> None:
    inst = CIMInstance("Win32_NetworkAdapterConfiguration")
    inst["Index"] = CIMProperty("Index", "4294967296", type="string")
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, inst)
    assert status_of(exc) == CimStatus.INVALID_PARAMETER
    inst["Index"] = CIMProperty("Index", 1.5, type="real64")
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, inst)
    assert status_of(exc) == CimStatus.TYPE_MISMATCH


def test_create_requires_keys(store: CimStore) -> None:
    inst = CIMInstance("Win32_Environment")
    inst["Name"] = "OnlyName"
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, inst)
    assert status_of(exc) == CimStatus.INVALID_PARAMETER


def test_create_already_exists_case_insensitively(store: CimStore) -> None:
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, env("path"))
    assert status_of(exc) == CimStatus.ALREADY_EXISTS


def test_create_abstract_and_unknown_class(store: CimStore) -> None:
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, CIMInstance("CIM_Service", properties={"Name": "x"}))
    assert status_of(exc) == CimStatus.INVALID_CLASS
    with pytest.raises(CimError) as exc:
        store.create_instance(NS, CIMInstance("Win32_Nothing"))
    assert status_of(exc) == CimStatus.INVALID_CLASS


# ---------------------------------------------------------------- modify / delete


def test_modify_changes_only_named_properties(store: CimStore) -> None:
    before = store.get_instance(NS, svc("Spooler"))
    change = CIMInstance("Win32_Service", path=svc("Spooler"))
    change["StartMode"] = "Manual"
    change["DisplayName"] = "ignored because not in property_list"
    after = store.modify_instance(NS, change, property_list=["StartMode"])
    assert after["StartMode"] == "Manual"
    assert after["DisplayName"] == before["DisplayName"]
    for name in before.properties:
        if name != "StartMode":
            assert after[name] == before[name], name


def test_modify_without_property_list_uses_given_properties(store: CimStore) -> None:
    change = CIMInstance("Win32_Service", path=svc("Spooler"))
    change["Description"] = "new"
    after = store.modify_instance(NS, change)
    assert after["Description"] == "new"
    assert after["State"] == "Running"


def test_modify_named_but_absent_property_becomes_null(store: CimStore) -> None:
    change = CIMInstance("Win32_Service", path=svc("Spooler"))
    after = store.modify_instance(NS, change, property_list=["Description"])
    assert after["Description"] is None


def test_modify_errors(store: CimStore) -> None:
    change = CIMInstance("Win32_Service", properties={"Name": "Other"})
    change.path = svc("Spooler")
    with pytest.raises(CimError) as exc:
        store.modify_instance(NS, change)
    assert status_of(exc) == CimStatus.INVALID_PARAMETER
    change = CIMInstance("Win32_Service", path=svc("Spooler"))
    change["Bogus"] = "x"
    with pytest.raises(CimError) as exc:
        store.modify_instance(NS, change)
    assert status_of(exc) == CimStatus.NO_SUCH_PROPERTY
    change = CIMInstance("Win32_Service", path=svc("Nope"))
    change["State"] = "x"
    with pytest.raises(CimError) as exc:
        store.modify_instance(NS, change)
    assert status_of(exc) == CimStatus.NOT_FOUND
    change = CIMInstance("Win32_Service", path=svc("Spooler"))
    change["ProcessId"] = CIMProperty("ProcessId", True)
    with pytest.raises(CimError) as exc:
        store.modify_instance(NS, change)
    assert status_of(exc) == CimStatus.TYPE_MISMATCH


def test_modify_same_key_value_allowed(store: CimStore) -> None:
    change = CIMInstance("Win32_Service", properties={"Name": "SPOOLER", "State": "Stopped"})
    change.path = svc("Spooler")
    assert store.modify_instance(NS, change)["Name"] == "Spooler"


def test_delete_then_not_found(store: CimStore) -> None:
    path = CIMInstanceName("Win32_Environment", keybindings={"Name": "TEMP", "UserName": "<SYSTEM>"})
    store.delete_instance(NS, path)
    with pytest.raises(CimError) as exc:
        store.delete_instance(NS, path)
    assert status_of(exc) == CimStatus.NOT_FOUND
    with pytest.raises(CimError) as exc:
        store.get_instance(NS, path)
    assert status_of(exc) == CimStatus.NOT_FOUND


# ---------------------------------------------------------------- listeners and threads


def test_listeners_receive_changes_and_unsubscribe(store: CimStore) -> None:
    seen: list[StoreChange] = []
    unsubscribe = store.add_listener(seen.append)
    path = store.create_instance(NS, env("L1"))
    change = CIMInstance("Win32_Environment", path=path)
    change["VariableValue"] = "2"
    store.modify_instance(NS, change)
    store.delete_instance(NS, path)
    unsubscribe()
    store.create_instance(NS, env("L2"))
    assert [c.kind for c in seen] == ["create", "modify", "delete"]
    assert seen[0].previous is None and seen[0].current is not None
    assert seen[1].previous is not None and seen[1].previous["VariableValue"] == "v"
    assert seen[1].current is not None and seen[1].current["VariableValue"] == "2"
    assert seen[2].current is None and seen[2].path == path
    assert all(c.namespace == "root/cimv2" for c in seen)


def test_listener_runs_outside_the_lock(store: CimStore) -> None:
    """Another thread can use the store while a listener runs (no deadlock)."""
    results: list[bool] = []

    def listener(change: StoreChange) -> None:
        worker = threading.Thread(target=lambda: results.append(bool(store.enumerate_instances(NS, "Win32_Service"))))
        worker.start()
        worker.join(timeout=5)
        results.append(not worker.is_alive())

    store.add_listener(listener)
    store.create_instance(NS, env("T1"))
    assert results == [True, True]


def test_failing_listener_does_not_break_write(store: CimStore) -> None:
    def boom(change: StoreChange) -> None:
        raise RuntimeError("listener bug")

    store.add_listener(boom)
    path = store.create_instance(NS, env("T2"))
    assert store.get_instance(NS, path)["Name"] == "T2"


def test_concurrent_creates(store: CimStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.create_instance(NS, env(f"C{n}_{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    names = {i["Name"] for i in store.enumerate_instances(NS, "Win32_Environment")}
    assert {f"C{n}_{i}" for n in range(4) for i in range(20)} <= names


# ---------------------------------------------------------------- methods


def test_invoke_errors(store: CimStore) -> None:
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, svc("WinRM"), "NoSuchMethod", {})
    assert status_of(exc) == CimStatus.METHOD_NOT_FOUND
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, svc("NoSuchService"), "StartService", {})
    assert status_of(exc) == CimStatus.NOT_FOUND
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, svc("WinRM"), "ChangeStartMode", {"Bogus": "x"})
    assert status_of(exc) == CimStatus.INVALID_PARAMETER
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, "Win32_Service", "StartService", {})
    assert status_of(exc) == CimStatus.INVALID_PARAMETER
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, "Win32_Process", "Create", {"ProcessId": 5})
    assert status_of(exc) == CimStatus.INVALID_PARAMETER
    os_path = store.enumerate_instances(NS, "Win32_OperatingSystem")[0].path
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, os_path, "Reboot", {})
    assert status_of(exc) == CimStatus.METHOD_NOT_AVAILABLE
    with pytest.raises(CimError) as exc:
        store.invoke_method(NS, svc("WinRM"), "ChangeStartMode", {"StartMode": 5})
    assert status_of(exc) == CimStatus.TYPE_MISMATCH


def test_provider_resolution_through_superclass_and_coercion() -> None:
    s = CimStore()
    s.add_namespace("root/t")
    key = CIMProperty("K", None, type="string", qualifiers=[CIMQualifier("Key", True)])
    from pywbem import CIMMethod, CIMParameter

    meth = CIMMethod("Go", return_type="uint32", parameters=[CIMParameter("N", type="uint16")])
    s.add_class("root/t", CIMClass("Base", properties=[key], methods=[meth]))
    s.add_class("root/t", CIMClass("Derived", superclass="Base"))
    inst = CIMInstance("Derived")
    inst["K"] = "a"
    path = s.create_instance("root/t", inst)
    calls: list[tuple[object, dict[str, object]]] = []

    def provider(store: CimStore, ns: str, target: object, params: dict[str, object]) -> tuple[object, dict]:  # type: ignore[type-arg]
        calls.append((target, params))
        return 7, {}

    s.register_method("BASE", "go", provider)
    rv, out = s.invoke_method("root/t", CIMInstanceName("derived", keybindings={"k": "A"}), "GO", {"n": "12"})
    assert rv == 7 and isinstance(rv, Uint32) and out == {}
    assert calls[0][0] == path
    assert calls[0][1] == {"N": 12}
