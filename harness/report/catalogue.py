"""The requirement catalogue: which normative statement every suite test checks, and how strictly.

Requirements live in ``fixtures/requirements/*.toml``::

    [[requirement]]
    id = "WSMV-ENUM-1"
    level = "MUST"                     # MUST | SHOULD | MAY | OBSERVED
    specs = ["MS-WSMV 3.1.4.10"]
    text = "Enumerate returns a context ..."
    tests = ["suites/wsman/test_example2_enumeration.py::test_enumeration_needs_several_pulls..."]

The level is the RFC 2119 keyword of the cited section (MS-WSMV 1.1 and DSP0226 3 use RFC 2119
terms); ``OBSERVED`` marks observed Windows behaviour that the specification leaves open. A test
is mapped by node id (without its ``[target]`` parameter) or with the marker
``@pytest.mark.requirement("WSMV-ENUM-1", ...)``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

Level = Literal["MUST", "SHOULD", "MAY", "OBSERVED"]
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "OBSERVED", "MAY")  # strictest first
_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")


class CatalogueError(ValueError):
    """A catalogue file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Requirement:
    """One normative statement a target is checked against."""

    id: str
    level: Level
    text: str
    specs: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()


def base_nodeid(nodeid: str) -> str:
    """``suites/a.py::test_x[mock]@mock`` -> ``suites/a.py::test_x`` (drop parameters and xdist group)."""
    nodeid = nodeid.split("@", 1)[0] if "@" in nodeid.rsplit("::", 1)[-1] else nodeid
    return nodeid.split("[", 1)[0]


def strictest(levels: Iterable[str]) -> Level | None:
    """The strictest of ``levels`` (MUST > SHOULD > OBSERVED > MAY), None when empty."""
    present = set(levels)
    return next((level for level in LEVELS if level in present), None)


@dataclass
class Catalogue:
    """Requirements by id and the reverse index from test node ids."""

    requirements: dict[str, Requirement] = field(default_factory=dict)
    _by_test: dict[str, list[str]] = field(default_factory=dict)

    def add(self, requirement: Requirement) -> None:
        if requirement.id in self.requirements:
            raise CatalogueError(f"requirement {requirement.id} is defined twice")
        self.requirements[requirement.id] = requirement
        for test in requirement.tests:
            self._by_test.setdefault(test, []).append(requirement.id)

    def get(self, requirement_id: str) -> Requirement:
        try:
            return self.requirements[requirement_id]
        except KeyError:
            raise CatalogueError(f"unknown requirement {requirement_id!r}") from None

    def ids_for_test(self, nodeid: str, marker_ids: Sequence[str] = ()) -> list[str]:
        """Requirement ids of a test: its catalogue entries, then its ``requirement`` markers."""
        ids = list(self._by_test.get(base_nodeid(nodeid), []))
        for rid in marker_ids:
            self.get(rid)
            if rid not in ids:
                ids.append(rid)
        return ids

    def level_of(self, ids: Iterable[str]) -> Level | None:
        return strictest(self.get(i).level for i in ids)

    @property
    def tests(self) -> set[str]:
        return set(self._by_test)


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogueError(f"{what} must be a list of strings")
    return tuple(cast(list[str], value))


def requirement_from_entry(entry: dict[str, object], source: str = "catalogue") -> Requirement:
    rid = entry.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise CatalogueError(f"{source}: requirement id {rid!r} must look like WSMV-ENUM-1")
    level = entry.get("level")
    if level not in LEVELS:
        raise CatalogueError(f"{source}: {rid}: level must be one of {', '.join(LEVELS)}, got {level!r}")
    text = entry.get("text", "")
    if not isinstance(text, str):
        raise CatalogueError(f"{source}: {rid}: text must be a string")
    return Requirement(id=rid, level=level, text=text,
                       specs=_strings(entry.get("specs"), f"{source}: {rid}: specs"),
                       tests=_strings(entry.get("tests"), f"{source}: {rid}: tests"))


def load_catalogue(paths: Sequence[Path]) -> Catalogue:
    """Read every ``[[requirement]]`` of the given TOML files into one catalogue."""
    catalogue = Catalogue()
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError(f"cannot read requirement catalogue {path.name}: {exc}") from exc
        entries = data.get("requirement", [])
        if not isinstance(entries, list):
            raise CatalogueError(f"{path.name}: [[requirement]] must be an array of tables")
        for entry in entries:
            catalogue.add(requirement_from_entry(entry, path.name))
    return catalogue


def catalogue_dir() -> Path:
    from harness.cim.mof import fixtures_dir

    return fixtures_dir() / "requirements"


_DEFAULT: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The catalogue of ``fixtures/requirements/*.toml`` (read once per process)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_catalogue(sorted(catalogue_dir().glob("*.toml")))
    return _DEFAULT


def requirements_or_default(requirements: Mapping[str, Requirement] | None) -> Mapping[str, Requirement]:
    """``requirements``, or when None those of :func:`default_catalogue` (none when it cannot be read)."""
    if requirements is not None:
        return requirements
    try:
        return default_catalogue().requirements
    except (OSError, ValueError):  # CatalogueError is a ValueError
        return {}
