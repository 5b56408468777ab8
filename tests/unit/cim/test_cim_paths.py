"""Object path parsing and formatting."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pywbem import CIMInstanceName

from harness.cim import CimError, CimStatus, CimStore
from harness.cim.paths import format_object_path, parse_object_path


def test_plain_and_prefixed_paths() -> None:
    p = parse_object_path('Win32_Service.Name="WinRM"')
    assert (p.classname, p.keys, p.host, p.namespace) == ("Win32_Service", (("Name", "WinRM"),), None, None)
    p = parse_object_path('\\\\HOST\\root\\cimv2:Win32_Service.Name="x"')
    assert (p.host, p.namespace) == ("HOST", "root/cimv2")
    p = parse_object_path("//h/root/cimv2:Win32_Process.Handle=1234")
    assert (p.host, p.keys) == ("h", (("Handle", 1234),))
    p = parse_object_path("root\\default:StdRegProv")
    assert (p.namespace, p.is_instance) == ("root/default", False)


def test_multi_key_unnamed_singleton_and_nested() -> None:
    p = parse_object_path('Win32_Environment.Name="Path",UserName="<SYSTEM>"')
    assert p.keys == (("Name", "Path"), ("UserName", "<SYSTEM>"))
    assert parse_object_path("Win32_LogicalDisk='C:'").keys == ((None, "C:"),)
    assert parse_object_path("__SystemSecurity=@").singleton
    nested = parse_object_path('Win32_DependentService.Antecedent="Win32_Service.Name=\\"RpcSs\\"",Dependent="x"')
    assert nested.keys[0] == ("Antecedent", 'Win32_Service.Name="RpcSs"')
    assert parse_object_path("X.B=TRUE,C=0x10").keys == (("B", True), ("C", 16))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".x",
        "X.",
        "X.K",
        "X.K=",
        "X.K='open",
        "X.K=1,",
        "X.K=1 junk",
        "X.K=1,K=2",
        "X=1 2",
        "X?",
        "\\\\\\root:X",
        ":X",
    ],
)
def test_bad_paths(bad: str) -> None:
    with pytest.raises(CimError) as exc:
        parse_object_path(bad)
    assert exc.value.status == CimStatus.INVALID_PARAMETER


def test_resolve_path_against_classes(ro_store: CimStore) -> None:
    assert ro_store.resolve_path("root/cimv2", "Win32_LogicalDisk='C:'") == CIMInstanceName(
        "Win32_LogicalDisk", keybindings={"DeviceID": "C:"}
    )
    with pytest.raises(CimError) as exc:
        ro_store.resolve_path("root/cimv2", "Win32_Environment='Path'")
    assert exc.value.status == CimStatus.INVALID_PARAMETER


def test_format_round_trip() -> None:
    path = CIMInstanceName(
        "Win32_Environment", keybindings={"UserName": 'a"b\\c', "Name": "Path"}, namespace="root/cimv2", host="H"
    )
    text = format_object_path(path)
    assert text == '\\\\H\\root\\cimv2:Win32_Environment.Name="Path",UserName="a\\"b\\\\c"'
    back = parse_object_path(text).instance_name()
    assert dict(back.keybindings) == dict(path.keybindings) and back.namespace == "root/cimv2"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_paths_only_raise_cim_error(text: str) -> None:
    with contextlib.suppress(CimError):
        parse_object_path(text)
