"""MOF loading: fixtures compile through the pywbem MOF compiler into the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from pywbem import CIMDateTime, CIMInstanceName, Uint32, Uint64

from harness.cim import CimError, CimStatus, CimStore, default_store, fixtures_dir, load_mof_files
from harness.cim.mof import MofLoadError, load_mof_string

NS = "root/cimv2"
QUALIFIERS = """
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
Qualifier Abstract : boolean = false, Scope(class, association, indication), Flavor(EnableOverride, Restricted);
"""


def test_fixtures_dir_found_and_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (fixtures_dir() / "mof" / "qualifiers.mof").is_file()
    monkeypatch.setenv("WMH_FIXTURES", str(tmp_path))
    assert fixtures_dir() == tmp_path


def test_default_store_contents(ro_store: CimStore) -> None:
    assert len(ro_store.enumerate_instances(NS, "Win32_Service")) >= 25
    os_ = ro_store.enumerate_instances(NS, "Win32_OperatingSystem")[0]
    assert os_["Caption"] == "Microsoft Windows Server 2022 Datacenter"
    assert os_["Version"] == "10.0.20348"
    assert isinstance(os_["LastBootUpTime"], CIMDateTime)
    assert isinstance(os_["FreePhysicalMemory"], Uint64)
    cs = ro_store.get_instance(NS, CIMInstanceName("Win32_ComputerSystem", keybindings={"Name": "WMH-MOCK01"}))
    assert cs["TotalPhysicalMemory"] > 0 and isinstance(cs["NumberOfProcessors"], Uint32)
    assert len(ro_store.enumerate_instances(NS, "Win32_NetworkAdapter")) == 2
    assert len(ro_store.enumerate_instances(NS, "Win32_LogicalDisk")) == 2
    assert len(ro_store.enumerate_instances(NS, "Win32_DependentService")) >= 10
    assert len(ro_store.enumerate_instances("root/interop", "CIM_Namespace")) == 3
    assert {n["Name"] for n in ro_store.enumerate_instances("root", "__NAMESPACE")} == {"cimv2", "default", "interop"}
    for ns in ("root", "root/cimv2", "root/default", "root/interop"):
        assert len(ro_store.enumerate_instances(ns, "__SystemSecurity")) == 1
    assert ro_store.get_class("root/default", "StdRegProv").methods["GetStringValue"].qualifiers["Static"].value


def test_qualifier_declarations_loaded(ro_store: CimStore) -> None:
    names = {q.name.lower() for q in ro_store.qualifier_decls(NS)}
    assert {"key", "abstract", "association", "in", "out", "static", "embeddedinstance"} <= names
    assert ro_store.get_qualifier_decl(NS, "KEY").value is False


def test_associations_in_fixtures(ro_store: CimStore) -> None:
    setting = ro_store.associators(NS, CIMInstanceName("Win32_NetworkAdapter", keybindings={"DeviceID": "1"}))
    assert [s.classname for s in setting] == ["Win32_NetworkAdapterConfiguration"]
    assert setting[0]["MACAddress"] == "00:15:5D:4A:01:0A"


def test_undeclared_qualifier_is_rejected() -> None:
    s = CimStore()
    with pytest.raises(MofLoadError) as exc:
        load_mof_string(s, "root/t", QUALIFIERS + "[Bogus] class A { [Key] string K; };")
    assert exc.value.status == CimStatus.FAILED
    assert "Bogus" in exc.value.description


def test_missing_superclass_and_syntax_error() -> None:
    s = CimStore()
    with pytest.raises(MofLoadError):
        load_mof_string(s, "root/t", QUALIFIERS + "class B : Missing { };")
    with pytest.raises(MofLoadError):
        load_mof_string(s, "root/t", QUALIFIERS + "class C { string ; };")


def test_instance_type_checked_by_store() -> None:
    s = CimStore()
    load_mof_string(s, "root/t", QUALIFIERS + "class A { [Key] string K; uint8 Small; };")
    with pytest.raises(MofLoadError):
        load_mof_string(s, "root/t", 'instance of A { K = "x"; Small = 300; };')
    load_mof_string(s, "root/t", 'instance of A { K = "x"; Small = 3; };')
    assert s.get_instance("root/t", CIMInstanceName("A", keybindings={"K": "x"}))["Small"] == 3


def test_duplicate_instance_in_mof_modifies(tmp_path: Path) -> None:
    s = CimStore()
    path = tmp_path / "a.mof"
    path.write_text(QUALIFIERS + 'class A { [Key] string K; string V; };\ninstance of A { K = "x"; V = "1"; };\n')
    again = tmp_path / "b.mof"
    again.write_text('instance of A { K = "x"; V = "2"; };\n')
    load_mof_files(s, "root\\t", [path, again])
    assert s.get_instance("root/t", CIMInstanceName("A", keybindings={"K": "x"}))["V"] == "2"


def test_unreadable_file() -> None:
    with pytest.raises(MofLoadError):
        load_mof_files(CimStore(), "root/t", [Path("does-not-exist.mof")])


def test_default_store_is_fresh_each_time() -> None:
    a, b = default_store(), default_store()
    a.delete_instance(NS, CIMInstanceName("Win32_Service", keybindings={"Name": "WinRM"}))
    assert b.get_instance(NS, CIMInstanceName("Win32_Service", keybindings={"Name": "WinRM"}))["Name"] == "WinRM"
    with pytest.raises(CimError):
        a.get_instance(NS, CIMInstanceName("Win32_Service", keybindings={"Name": "WinRM"}))
