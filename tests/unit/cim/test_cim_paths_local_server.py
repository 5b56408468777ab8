"""Object paths naming the local server ``.`` or a dotted host (MS-WMI 2.2.1.1)."""

from __future__ import annotations

import pytest

from harness.cim import CimError, CimStore
from harness.cim.paths import parse_object_path

NS = "root/cimv2"


@pytest.mark.parametrize(
    "text",
    [
        '\\\\.\\root\\cimv2:Win32_Service.Name="WinRM"',
        '//./root/cimv2:Win32_Service.Name="WinRM"',
        '\\\\host.example.com\\root\\cimv2:Win32_Service.Name="WinRM"',
        '//10.0.0.5/root/cimv2:Win32_Service.Name="WinRM"',
    ],
)
def test_local_and_dotted_server_names(text: str) -> None:
    p = parse_object_path(text)
    assert p.classname == "Win32_Service"
    assert p.keys == (("Name", "WinRM"),)
    assert p.namespace == "root/cimv2"
    assert p.host is not None and p.host in (".", "host.example.com", "10.0.0.5")
    assert p.is_instance


def test_local_server_class_singleton_and_unnamed_key() -> None:
    assert parse_object_path("\\\\.\\root\\cimv2:Win32_Service").is_instance is False
    single = parse_object_path("\\\\.\\root\\cimv2:__SystemSecurity=@")
    assert (single.host, single.singleton) == (".", True)
    unnamed = parse_object_path("\\\\.\\root\\cimv2:Win32_LogicalDisk='C:'")
    assert unnamed.keys == ((None, "C:"),)


def test_colon_inside_key_value_is_not_a_namespace_separator() -> None:
    p = parse_object_path('\\\\.\\root\\cimv2:Win32_LogicalDisk.DeviceID="C:"')
    assert (p.namespace, p.keys) == ("root/cimv2", (("DeviceID", "C:"),))


@pytest.mark.parametrize("text", ["\\\\", "\\\\.", '\\\\.\\:A.B="x"', '\\\\\\root:A.B="x"'])
def test_malformed_server_prefixes_raise_cim_error(text: str) -> None:
    with pytest.raises(CimError):
        parse_object_path(text)


def test_local_server_path_resolves_in_store(ro_store: CimStore) -> None:
    name = ro_store.resolve_path(NS, '\\\\.\\root\\cimv2:Win32_Service.Name="WinRM"')
    assert ro_store.get_instance(NS, name)["Name"] == "WinRM"
