from __future__ import annotations

from pathlib import Path

import pytest

from harness.targets.inventory import InventoryError, load_inventory, target_from_url


def test_inventory_takes_credentials_from_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("T_USER", "admin")
    monkeypatch.setenv("T_PASS", "pw")
    inv = tmp_path / "inv.toml"
    inv.write_text('[[target]]\nname="a"\nurl="http://h:5985/wsman"\nusername_env="T_USER"\n'
                   'password_env="T_PASS"\ncapabilities=["wsman","get"]\n')
    [target] = load_inventory(inv)
    assert (target.username, target.password) == ("admin", "pw")
    assert target.supports("get") and not target.supports("put")
    assert "pw" not in repr(target)


def test_inventory_refuses_inline_passwords(tmp_path: Path):
    inv = tmp_path / "inv.toml"
    inv.write_text('[[target]]\nname="a"\nurl="http://h/wsman"\npassword="x"\n')
    with pytest.raises(InventoryError, match="environment variable"):
        load_inventory(inv)


def test_missing_environment_variable_is_reported(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NOPE_WMH", raising=False)
    inv = tmp_path / "inv.toml"
    inv.write_text('[[target]]\nname="a"\nurl="http://h/wsman"\npassword_env="NOPE_WMH"\n')
    with pytest.raises(InventoryError, match="NOPE_WMH"):
        load_inventory(inv)


def test_target_urls_are_checked():
    with pytest.raises(InventoryError):
        target_from_url("ftp://h/wsman")
    with pytest.raises(InventoryError):
        target_from_url("http://u:p@h/wsman")
    assert target_from_url("http://h:5985/wsman").host == "h"
