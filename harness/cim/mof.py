"""MOF loading into the :class:`~harness.cim.store.CimStore` (DSP0004 Annex A MOF syntax).

The real pywbem ``MOFCompiler`` parses the MOF; :class:`StoreRepository` is the repository connection
it writes through (pywbem's ``BaseRepositoryConnection`` interface), so qualifier declarations are
checked, classes are created through :meth:`CimStore.add_class` (inheritance resolved, superclass
checked) and instances through :meth:`CimStore.create_instance` (types and keys checked).

Fixture layout (``fixtures/mof``): ``qualifiers.mof`` and ``system.mof`` are compiled into every
namespace first; every directory below holding ``*.mof`` files is a namespace named by its relative
path (``root/cimv2/*.mof`` -> ``root/cimv2``), its files compiled in name order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pywbem

from harness.cim.errors import CimError, CimStatus
from harness.cim.store import CimStore

ENV_FIXTURES = "WMH_FIXTURES"
PRELUDE_FILES = ("qualifiers.mof", "system.mof")


class MofLoadError(CimError):
    """MOF text that does not compile (status FAILED; the description has file, line and reason)."""

    def __init__(self, description: str) -> None:
        super().__init__(CimStatus.FAILED, description)


def _cim_error(exc: CimError) -> pywbem.CIMError:
    return pywbem.CIMError(int(exc.status), exc.description)


class StoreRepository(pywbem.BaseRepositoryConnection):  # type: ignore[misc]
    """pywbem repository connection that writes the compiled MOF into a :class:`CimStore`."""

    def __init__(self, store: CimStore, namespace: str) -> None:
        self._store = store
        self._default_namespace = namespace

    def _getns(self) -> str:
        return self._default_namespace

    def _setns(self, value: str) -> None:
        self._default_namespace = value

    default_namespace = property(_getns, _setns)

    def _ns(self, kwargs: dict[str, Any]) -> str:
        ns = kwargs.get("namespace") or self._default_namespace
        return str(ns)

    # --- instances
    def EnumerateInstanceNames(self, *args: Any, **kwargs: Any) -> list[pywbem.CIMInstanceName]:
        classname = args[0] if args else kwargs["ClassName"]
        try:
            return self._store.enumerate_instance_names(self._ns(kwargs), classname)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def CreateInstance(self, *args: Any, **kwargs: Any) -> pywbem.CIMInstanceName:
        inst = args[0] if args else kwargs["NewInstance"]
        try:
            return self._store.create_instance(self._ns(kwargs), inst)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def ModifyInstance(self, *args: Any, **kwargs: Any) -> None:
        inst = args[0] if args else kwargs["ModifiedInstance"]
        ns = inst.path.namespace if inst.path is not None and inst.path.namespace else self._ns(kwargs)
        try:
            self._store.modify_instance(ns, inst)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def DeleteInstance(self, *args: Any, **kwargs: Any) -> None:
        path = args[0] if args else kwargs["InstanceName"]
        try:
            self._store.delete_instance(path.namespace or self._ns(kwargs), path)
        except CimError as exc:
            raise _cim_error(exc) from exc

    # --- classes
    def GetClass(self, *args: Any, **kwargs: Any) -> pywbem.CIMClass:
        classname = args[0] if args else kwargs["ClassName"]
        try:
            return self._store.get_class(self._ns(kwargs), classname)
        except CimError as exc:
            status = pywbem.CIM_ERR_NOT_FOUND if exc.status == CimStatus.INVALID_CLASS else int(exc.status)
            raise pywbem.CIMError(status, exc.description) from exc

    def CreateClass(self, *args: Any, **kwargs: Any) -> None:
        cls = args[0] if args else kwargs["NewClass"]
        try:
            self._store.add_class(self._ns(kwargs), cls)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def ModifyClass(self, *args: Any, **kwargs: Any) -> None:
        cls = args[0] if args else kwargs["ModifiedClass"]
        ns = args[1] if len(args) > 1 else self._ns(kwargs)
        try:
            self._store.modify_class(ns, cls)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def DeleteClass(self, *args: Any, **kwargs: Any) -> None:
        classname = args[0] if args else kwargs["ClassName"]
        try:
            self._store.delete_class(self._ns(kwargs), classname)
        except CimError as exc:
            raise _cim_error(exc) from exc

    # --- qualifier declarations
    def EnumerateQualifiers(self, *args: Any, **kwargs: Any) -> list[pywbem.CIMQualifierDeclaration]:
        try:
            return self._store.qualifier_decls(self._ns(kwargs))
        except CimError as exc:
            raise _cim_error(exc) from exc

    def GetQualifier(self, *args: Any, **kwargs: Any) -> pywbem.CIMQualifierDeclaration:
        name = args[0] if args else kwargs["QualifierName"]
        try:
            return self._store.get_qualifier_decl(self._ns(kwargs), name)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def SetQualifier(self, *args: Any, **kwargs: Any) -> None:
        decl = args[0] if args else kwargs["QualifierDeclaration"]
        try:
            self._store.set_qualifier_decl(self._ns(kwargs), decl)
        except CimError as exc:
            raise _cim_error(exc) from exc

    def DeleteQualifier(self, *args: Any, **kwargs: Any) -> None:
        name = args[0] if args else kwargs["QualifierName"]
        try:
            self._store.delete_qualifier_decl(self._ns(kwargs), name)
        except CimError as exc:
            raise _cim_error(exc) from exc


def _compiler(store: CimStore, namespace: str, messages: list[str]) -> pywbem.MOFCompiler:
    return pywbem.MOFCompiler(StoreRepository(store, namespace), log_func=messages.append)


def load_mof_string(store: CimStore, namespace: str, text: str, filename: str = "<string>") -> None:
    """Compile MOF text into ``namespace`` (created if missing); :class:`MofLoadError` on failure."""
    store.add_namespace(namespace)
    ns = store.normalize_namespace(namespace)
    messages: list[str] = []
    try:
        _compiler(store, ns, messages).compile_string(text, ns, filename=filename)
    except pywbem.MOFCompileError as exc:
        detail = exc.get_err_msg() if hasattr(exc, "get_err_msg") else str(exc)
        raise MofLoadError(f"{filename}: {detail}") from None
    except pywbem.CIMError as exc:
        raise MofLoadError(f"{filename}: {exc}") from None


def load_mof_files(store: CimStore, namespace: str, paths: Sequence[Path]) -> None:
    """Compile MOF files, in the given order, into ``namespace`` with the pywbem MOF compiler."""
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MofLoadError(f"cannot read {path}: {exc}") from None
        load_mof_string(store, namespace, text, filename=Path(path).name)


def fixtures_dir() -> Path:
    """``<repo>/fixtures``, found by walking up from this file; the env var ``WMH_FIXTURES`` overrides."""
    env = os.environ.get(ENV_FIXTURES)
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "fixtures"
        if (candidate / "mof").is_dir():
            return candidate
    raise CimError(CimStatus.FAILED, "cannot find the fixtures directory; set WMH_FIXTURES")


def fixture_namespaces(mof_dir: Path) -> dict[str, list[Path]]:
    """Namespace name -> MOF files of the fixture tree (see the module docstring)."""
    out: dict[str, list[Path]] = {}
    for directory in sorted({p.parent for p in mof_dir.rglob("*.mof")}):
        if directory == mof_dir:
            continue
        out[directory.relative_to(mof_dir).as_posix()] = sorted(directory.glob("*.mof"))
    return out


def load_fixture_tree(store: CimStore, mof_dir: Path) -> None:
    """Load every namespace of a fixture tree: the prelude files, then the namespace's own files."""
    prelude = [mof_dir / name for name in PRELUDE_FILES if (mof_dir / name).is_file()]
    for namespace, files in fixture_namespaces(mof_dir).items():
        load_mof_files(store, namespace, [*prelude, *files])


@functools.lru_cache(maxsize=4)
def _compiled(mof_dir: str) -> CimStore:
    from harness.cim.providers import install_system_instances

    store = CimStore()
    load_fixture_tree(store, Path(mof_dir))
    install_system_instances(store)
    return store


def default_store() -> CimStore:
    """A fresh store with ``fixtures/mof`` loaded (root, root/cimv2, root/default, root/interop) and the
    method providers of :mod:`harness.cim.providers` registered. The compiled MOF is cached per
    process; every call returns an independent deep copy."""
    from harness.cim.providers import register_providers

    mof_dir = (fixtures_dir() / "mof").resolve()
    store = _compiled(str(mof_dir)).clone()
    register_providers(store)
    return store
