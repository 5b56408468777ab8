"""pytest plugin: targets, fixtures, markers, per-case results and reports.

Options
    ``--wm-target``      ``mock`` (default: start the built-in mock) or a WS-Man URL
    ``--wm-inventory``   a TOML inventory of targets (see :mod:`harness.targets.inventory`)
    ``--wm-reports``     directory for ``results.json``, ``matrix.html`` and ``captures/*.pcapng``
    ``--wm-no-validate`` do not validate WS-Man messages against the XSDs

Markers
    ``spec("MS-WMOD 3.2", "MS-WSMV 3.1.4.8")``  spec sections a test checks
    ``requires("wsman", "enumerate")``           target capabilities a test needs; a target
                                                 lacking one skips with "not supported: ..."
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.report import CaseResult, write_reports
from harness.report.results import NOT_SUPPORTED_PREFIX, Outcome
from harness.targets.inventory import InventoryError, Target, load_inventory, target_from_url
from harness.transport.tap import Tap, current_test, default_tap

MOCK = "mock"


@dataclass
class _Session:
    """Plugin state for one pytest session."""

    target_specs: list[str | Target] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    mock: Any = None
    results: list[CaseResult] = field(default_factory=list)
    reports_dir: Path | None = None
    validate: bool = True
    tap: Tap = field(default_factory=default_tap)
    started: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [s if isinstance(s, str) else s.name for s in self.target_specs]


_STATE_KEY = pytest.StashKey[_Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wm-harness", "Windows Management protocol conformance")
    group.addoption("--wm-target", action="store", default=None,
                    help="'mock' (default) or a WS-Man endpoint URL such as http://host:5985/wsman")
    group.addoption("--wm-inventory", action="store", default=None, help="TOML inventory of targets")
    group.addoption("--wm-reports", action="store", default=None, help="write results.json and matrix.html here")
    group.addoption("--wm-no-validate", action="store_true", default=False,
                    help="do not validate WS-Man traffic against the XSDs")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec(*sections): spec sections the test checks (MS-WMOD 3.2, MS-WSMV 3.1.4.8)")
    config.addinivalue_line("markers", "requires(*capabilities): target capabilities the test needs")
    state = _Session()
    inventory = config.getoption("--wm-inventory")
    target = config.getoption("--wm-target")
    try:
        if inventory:
            state.target_specs.extend(load_inventory(Path(inventory)))
        if target and target != MOCK:
            state.target_specs.append(target_from_url(target))
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if not state.target_specs or target == MOCK:
        state.target_specs.insert(0, MOCK)
    reports = config.getoption("--wm-reports")
    state.reports_dir = Path(reports) if reports else None
    state.validate = not config.getoption("--wm-no-validate")
    config.stash[_STATE_KEY] = state


def _state(config: pytest.Config) -> _Session:
    return config.stash[_STATE_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wm_target" in metafunc.fixturenames:
        names = _state(metafunc.config).names
        metafunc.parametrize("wm_target", names, ids=names, indirect=True, scope="session")


def _resolve_target(state: _Session, name: str) -> Target:
    if name in state.targets:
        return state.targets[name]
    spec = next(s for s in state.target_specs if (s if isinstance(s, str) else s.name) == name)
    if isinstance(spec, Target):
        target = spec
    else:
        from harness.targets.mock.runner import MockServerThread

        mock = MockServerThread()
        url = mock.start()
        state.mock = mock
        target = Target(name=MOCK, url=url, username=mock.config.username, password=mock.config.password,
                        is_mock=True, timeout=10.0)
    state.tap.add_secret(target.password)
    state.targets[name] = target
    return target


@pytest.fixture(scope="session")
def wm_target(request: pytest.FixtureRequest) -> Target:
    """The target under test (parametrised over every configured target)."""
    return _resolve_target(_state(request.config), request.param)


@pytest.fixture(scope="session")
def wm_tap(request: pytest.FixtureRequest) -> Tap:
    """The tap that records every exchange of this session."""
    return _state(request.config).tap


@pytest.fixture(scope="session")
def wm_mock_store(wm_target: Target, request: pytest.FixtureRequest) -> Any:
    """The CIM store behind the mock target (only for self-checks; real targets skip)."""
    state = _state(request.config)
    if not wm_target.is_mock or state.mock is None:
        pytest.skip(NOT_SUPPORTED_PREFIX + " the CIM store is only reachable on the built-in mock")
    return state.mock.store


@pytest.fixture
async def wsman(wm_target: Target, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """An async :class:`harness.client.wsman.WSManClient` bound to ``wm_target``."""
    from harness.client.wsman import WSManClient

    state = _state(request.config)
    validator = None
    if state.validate:
        from harness.validate import default_validator

        validator = default_validator()
    async with WSManClient(wm_target, tap=state.tap, validator=validator) as client:
        yield client


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    current_test.set(item.nodeid)
    state.started[item.nodeid] = time.monotonic()
    callspec = getattr(item, "callspec", None)
    if callspec is None or "wm_target" not in callspec.params:
        return
    name = callspec.params["wm_target"]
    spec = next((s for s in state.target_specs if (s if isinstance(s, str) else s.name) == name), None)
    caps = None if spec is None or isinstance(spec, str) else spec.capabilities
    if caps is None:
        from harness.targets.inventory import MOCK_CAPABILITIES

        caps = MOCK_CAPABILITIES
    for marker in item.iter_markers("requires"):
        missing = [c for c in marker.args if c not in caps]
        if missing:
            pytest.skip(f"{NOT_SUPPORTED_PREFIX} target {name} lacks {', '.join(missing)}")


def _markers(item: pytest.Item, name: str) -> list[str]:
    values: list[str] = []
    for marker in item.iter_markers(name):
        values.extend(str(a) for a in marker.args)
    return list(dict.fromkeys(values))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if callspec is None or "wm_target" not in callspec.params:
        return
    finished = report.when == "call" or (report.when == "setup" and not report.passed)
    if not finished:
        return
    state = _state(item.config)
    result_outcome: Outcome
    if report.skipped:
        result_outcome = "skipped"
        longrepr = report.longrepr
        message = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
        message = message.removeprefix("Skipped: ")
    elif report.failed:
        result_outcome = "failed" if report.when == "call" else "error"
        message = report.longreprtext[-4000:]
    else:
        result_outcome = "passed"
        message = None
    state.results.append(
        CaseResult(
            nodeid=item.nodeid,
            name=item.name,
            target=str(callspec.params["wm_target"]),
            outcome=result_outcome,
            specs=_markers(item, "spec"),
            requires=_markers(item, "requires"),
            duration=time.monotonic() - state.started.get(item.nodeid, time.monotonic()),
            message=message,
            wire=state.tap.for_test(item.nodeid),
        )
    )


@pytest.fixture(autouse=True)
def _wm_allure_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    """Label the allure result by protocol and spec section and attach the messages, when allure is on."""
    item = request.node
    active = request.config.pluginmanager.hasplugin("allure_pytest") and request.config.getoption(
        "--alluredir", None)
    specs = _markers(item, "spec")
    if not active or not specs:
        yield
        return
    import allure

    dynamic: Any = allure.dynamic  # allure's API is untyped
    for spec in specs:
        dynamic.tag(spec)
        dynamic.label("spec", spec)
        dynamic.feature(spec.split(" ", 1)[0])
        dynamic.story(spec)
    for cap in _markers(item, "requires")[:1]:
        dynamic.label("protocol", cap)
    yield
    for i, ex in enumerate(_state(request.config).tap.for_test(item.nodeid), 1):
        allure.attach(ex.body, name=f"{i:02d} {ex.protocol} {ex.direction}",
                      attachment_type=allure.attachment_type.XML)


def _write_captures(state: _Session, reports_dir: Path) -> None:
    """``captures/<test>.pcapng`` per suite case and ``captures/all.pcapng`` (harness.capture.synth)."""
    import sys

    from harness.capture.synth import SynthError, write_session_captures

    try:
        names = write_session_captures([(r.nodeid, r.wire) for r in state.results], list(state.tap.exchanges),
                                       reports_dir / "captures", state.tap.secrets)
    except (SynthError, OSError) as exc:
        print(f"wm-harness: packet captures not written: {exc}", file=sys.stderr)
        return
    for r in state.results:
        r.capture = f"captures/{names[r.nodeid]}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE_KEY, None)
    if state is None:
        return
    if state.reports_dir is not None and state.results:
        _write_captures(state, state.reports_dir)
        write_reports(state.results, state.reports_dir)
    if state.mock is not None:
        state.mock.stop()
        state.mock = None
