"""The requirement catalogue: loading, lookups, and that every suite test is catalogued."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.catalogue import (
    CatalogueError,
    Requirement,
    base_nodeid,
    catalogue_dir,
    default_catalogue,
    load_catalogue,
    strictest,
)

REPO = Path(__file__).resolve().parents[3]

_COLLECT = """
import json, sys
import pytest

class Collector:
    def __init__(self):
        self.items = []
    def pytest_collection_finish(self, session):
        for item in session.items:
            ids = [str(a) for m in item.iter_markers("requirement") for a in m.args]
            self.items.append({"nodeid": item.nodeid, "markers": ids})

c = Collector()
code = pytest.main(["suites", "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[c])
print("ITEMS=" + json.dumps(c.items))
sys.exit(int(code))
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "req.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_catalogue_loads_and_indexes_tests():
    cat = default_catalogue()
    req = cat.get("WSMV-ENUM-1")
    assert req.level == "MUST" and "MS-WSMV 3.1.4.10" in req.specs
    nodeid = "suites/wsman/test_example2_enumeration.py::test_pull_with_a_forged_context_is_a_fault[win-a]"
    assert cat.ids_for_test(nodeid) == ["WSMV-ENUM-3"]
    assert cat.ids_for_test(nodeid, ["WSMV-ENUM-1"]) == ["WSMV-ENUM-3", "WSMV-ENUM-1"]
    assert cat.level_of(["WSMV-ENUM-5", "WSMV-ENUM-2"]) == "SHOULD"
    with pytest.raises(CatalogueError, match="unknown requirement"):
        cat.ids_for_test(nodeid, ["NOPE-1"])
    assert all(p.suffix == ".toml" for p in catalogue_dir().iterdir())


def test_every_suite_test_maps_to_a_requirement():
    """Nobody adds a suite test without saying which requirement (and level) it checks."""
    proc = subprocess.run([sys.executable, "-c", _COLLECT], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ITEMS="))
    items = json.loads(line.removeprefix("ITEMS="))
    assert len(items) >= 40
    cat = default_catalogue()
    unmapped = sorted({base_nodeid(i["nodeid"]) for i in items if not cat.ids_for_test(i["nodeid"], i["markers"])})
    assert not unmapped, "suite tests missing from fixtures/requirements/*.toml:\n" + "\n".join(unmapped)
    collected = {base_nodeid(i["nodeid"]) for i in items}
    stale = sorted(cat.tests - collected)
    assert not stale, "catalogue names tests that no longer exist:\n" + "\n".join(stale)


def test_bad_catalogues_are_refused_with_a_reason(tmp_path: Path):
    with pytest.raises(CatalogueError, match="level must be one of"):
        load_catalogue([_write(tmp_path, '[[requirement]]\nid = "A-1"\nlevel = "OPTIONAL"\n')])
    with pytest.raises(CatalogueError, match="must look like"):
        load_catalogue([_write(tmp_path, '[[requirement]]\nid = "lower"\nlevel = "MUST"\n')])
    with pytest.raises(CatalogueError, match="defined twice"):
        load_catalogue([_write(tmp_path, '[[requirement]]\nid = "A-1"\nlevel = "MUST"\n'
                                         '[[requirement]]\nid = "A-1"\nlevel = "MAY"\n')])
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue([_write(tmp_path, "[[requirement]\n")])
    with pytest.raises(CatalogueError, match="tests must be a list"):
        load_catalogue([_write(tmp_path, '[[requirement]]\nid = "A-1"\nlevel = "MUST"\ntests = "x"\n')])


def test_node_ids_and_levels():
    assert base_nodeid("suites/a.py::test_x[mock-a]") == "suites/a.py::test_x"
    assert base_nodeid("suites/a.py::test_x[mock]@mock") == "suites/a.py::test_x"
    assert base_nodeid("suites/a.py::T::test_x") == "suites/a.py::T::test_x"
    assert strictest(["MAY", "OBSERVED"]) == "OBSERVED"
    assert strictest(["SHOULD", "MUST"]) == "MUST"
    assert strictest([]) is None
    assert Requirement("A-1", "MAY", "t").tests == ()
