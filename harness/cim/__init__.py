"""CIM model layer: the store, WQL, MOF loading and method providers (MS-WMOD 2.4)."""

from harness.cim.errors import CimError, CimStatus
from harness.cim.mof import default_store, fixtures_dir, load_mof_files
from harness.cim.store import CimStore, MethodProvider, StoreChange
from harness.cim.wql import WqlQuery, WqlSyntaxError, evaluate_where, parse_wql

__all__ = [
    "CimError",
    "CimStatus",
    "CimStore",
    "MethodProvider",
    "StoreChange",
    "WqlQuery",
    "WqlSyntaxError",
    "default_store",
    "evaluate_where",
    "fixtures_dir",
    "load_mof_files",
    "parse_wql",
]
