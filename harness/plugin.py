"""pytest plugin: targets, fixtures, markers, per-case results and reports.

Options
    ``--wm-target``      ``mock`` (default: start the built-in mock) or a WS-Man URL
    ``--wm-inventory``   a TOML inventory of targets (see :mod:`harness.targets.inventory`)
    ``--wm-reports``     directory for ``results.json``, ``matrix.html`` and ``captures/*.pcapng``
    ``--wm-no-validate`` do not validate WS-Man messages against the XSDs
    ``--wm-profile``     a named capability set (harness.targets.capabilities.PROFILES) for the targets
    ``--wm-live-capture`` with ``--wm-reports``: also capture the mock targets' real loopback traffic
                         (scapy; needs root or CAP_NET_RAW) into ``captures/live.pcapng``, redacted
                         (harness.capture.live)

Inventory entries with ``url = "mock"`` start one more built-in mock each (fleets); under
pytest-xdist (``-n 2 --dist loadgroup``) every target is one ``xdist_group``, each worker starts
its own mocks and writes a results shard that the controller merges into one report.

Markers
    ``spec("MS-WMOD 3.2", "MS-WSMV 3.1.4.8")``  spec sections a test checks
    ``requires("wsman", "enumerate")``           target capabilities a test needs; a target
                                                 lacking one skips with "not supported: ..."
    ``requirement("WSMV-ENUM-1")``               catalogue requirements a test checks (besides the
                                                 node-id mapping of fixtures/requirements/*.toml)

Fixture ``wm_outcome(outcome, detail)`` records which of several acceptable outcomes a test saw.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.report import CaseResult, write_reports
from harness.report.results import NOT_SUPPORTED_PREFIX, Outcome
from harness.report.session import OutcomeRecorder
from harness.targets.inventory import InventoryError, Target, load_inventory, target_from_url
from harness.transport.tap import Tap, current_test, default_tap

MOCK = "mock"


@dataclass
class _Session:
    """Plugin state for one pytest session."""

    target_specs: list[str | Target] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    results: list[CaseResult] = field(default_factory=list)
    reports_dir: Path | None = None
    validate: bool = True
    tap: Tap = field(default_factory=default_tap)
    started: dict[str, float] = field(default_factory=dict)
    mocks: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    worker: str | None = None  # pytest-xdist worker id
    xdist_controller: bool = False
    live_capture: bool = False  # --wm-live-capture
    live: list[Any] = field(default_factory=list)  # harness.capture.live.LiveCapture, one per mock

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
    group.addoption("--wm-profile", action="store", default=None,
                    help="named capability set for targets without listed capabilities "
                         "(windows, mock, read-only, dmtf-wsman, identify-only)")
    group.addoption("--wm-live-capture", action="store_true", default=False,
                    help="with --wm-reports: capture the mock targets' loopback traffic live (root or "
                         "CAP_NET_RAW) into captures/live.pcapng, credentials redacted")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec(*sections): spec sections the test checks (MS-WMOD 3.2, MS-WSMV 3.1.4.8)")
    config.addinivalue_line("markers", "requires(*capabilities): target capabilities the test needs")
    config.addinivalue_line("markers", "requirement(*ids): catalogue requirements the test checks (WSMV-ENUM-1)")
    state = _Session()
    state.profile = config.getoption("--wm-profile")
    if state.profile is not None:
        from harness.targets.capabilities import CapabilityError, profile

        try:
            profile(state.profile)
        except CapabilityError as exc:
            raise pytest.UsageError(str(exc)) from exc
    workerinput = getattr(config, "workerinput", None)
    state.worker = str(workerinput["workerid"]) if workerinput else None
    state.xdist_controller = workerinput is None and bool(getattr(config.option, "numprocesses", None))
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
    state.live_capture = bool(config.getoption("--wm-live-capture"))
    if state.xdist_controller and state.reports_dir is not None:
        from harness.report.session import clear_shards

        clear_shards(state.reports_dir)
        _clear_worker_captures(state.reports_dir)
    if state.reports_dir is not None:
        # WMI over DCOM: every RpcClient records its PDUs into the session tap, so the captures
        # hold the DCE/RPC streams too (harness.capture.dcerpc_synth); undone in pytest_unconfigure.
        from harness.transport.dcerpc_client import set_capture_tap

        set_capture_tap(state.tap)
    config.stash[_STATE_KEY] = state


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is not None and state.reports_dir is not None:
        from harness.transport.dcerpc_client import capture_tap, set_capture_tap

        if capture_tap() is state.tap:
            set_capture_tap(None)


def _state(config: pytest.Config) -> _Session:
    return config.stash[_STATE_KEY]


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: one xdist group per target (harness.report.fleet)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from harness.report.fleet import TargetGroupScheduling

    return TargetGroupScheduling(config, _state(config).names, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wm_target" in metafunc.fixturenames:
        names = _state(metafunc.config).names
        params = [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in names]  # one xdist group per target
        metafunc.parametrize("wm_target", params, ids=names, indirect=True, scope="session")


def _resolve_target(state: _Session, name: str) -> Target:
    if name in state.targets:
        return state.targets[name]
    spec = next(s for s in state.target_specs if (s if isinstance(s, str) else s.name) == name)
    if isinstance(spec, Target) and not spec.is_mock:
        target = spec
    else:
        from dataclasses import replace

        from harness.targets.mock.config import MockConfig
        from harness.targets.mock.events import ManualClock
        from harness.targets.mock.runner import MockServerThread

        # The event clock runs in real time and can be jumped forward by wm_mock_eventing
        # (heartbeats, expiry and publisher refreshes without sleeping; DSP0226 10.2.5).
        mock = MockServerThread(config=MockConfig(event_clock=ManualClock(base=time.monotonic)))
        url = mock.start()
        state.mocks[name] = mock
        base = spec if isinstance(spec, Target) else Target(name=MOCK, url=url)
        target = replace(base, url=url, username=mock.config.username, password=mock.config.password,
                         is_mock=True, timeout=10.0)
        if mock.wmi_endpoint is not None:
            target = replace(target, wmi_host=mock.wmi_endpoint[0], wmi_port=mock.wmi_endpoint[1])
        if state.live_capture:
            _start_live_capture(state, name, mock)
    target = _with_capabilities(state, target)
    state.tap.add_secret(target.password)
    state.targets[name] = target
    return target


def _start_live_capture(state: _Session, name: str, mock: Any) -> None:
    """``--wm-live-capture``: sniff the mock's HTTP and WMI ports on ``lo`` (harness.capture.live), or say why not."""
    import sys
    from urllib.parse import urlsplit

    from harness.capture.live import LiveCapture

    if state.reports_dir is None:
        print("wm-harness: live capture not started: --wm-live-capture needs --wm-reports", file=sys.stderr)
        return
    ports = [urlsplit(mock.url).port or 0]
    if mock.wmi is not None:
        ports += [mock.wmi.epm_port, mock.wmi.orpc_port]
    live = LiveCapture(ports)
    why = live.start()
    if why is not None:
        print(f"wm-harness: live capture of {name} not started: {why}", file=sys.stderr)
        return
    state.live.append(live)


def _write_live_captures(state: _Session, reports_dir: Path) -> None:
    """Stop the live captures and write ``captures/live.pcapng`` (``live-<worker>.pcapng`` on an xdist
    worker; ``live-<n>.pcapng`` for every further mock of a fleet), redacted with the tap's secrets."""
    import sys

    from harness.capture.live import LiveCaptureError

    stem = _all_capture_name(state.worker).replace("all", "live", 1).removesuffix(".pcapng")
    for i, live in enumerate(state.live):
        path = reports_dir / "captures" / (f"{stem}.pcapng" if i == 0 else f"{stem}-{i}.pcapng")
        try:
            live.write(path, state.tap.secrets)
        except LiveCaptureError as exc:
            print(f"wm-harness: live capture not written: {exc}", file=sys.stderr)
    state.live.clear()


def _with_capabilities(state: _Session, target: Target) -> Target:
    """Apply ``profile`` / ``--wm-profile``, or detect capabilities (harness.targets.capabilities)."""
    from dataclasses import replace

    from harness.targets.capabilities import CapabilityError, detect_capabilities_sync, profile

    name = target.profile or (state.profile if target.detect_capabilities or not target.is_mock else None)
    if name is not None:
        try:
            return replace(target, capabilities=profile(name), detect_capabilities=False)
        except CapabilityError as exc:
            raise pytest.UsageError(f"target {target.name}: {exc}") from exc
    if target.detect_capabilities and not target.is_mock:
        detection = detect_capabilities_sync(target, tap=state.tap)
        return replace(target, capabilities=detection.capabilities, detect_capabilities=False)
    return target


@pytest.fixture(scope="session")
def wm_target(request: pytest.FixtureRequest) -> Target:
    """The target under test (parametrised over every configured target)."""
    return _resolve_target(_state(request.config), request.param)


@pytest.fixture(scope="session")
def wm_tap(request: pytest.FixtureRequest) -> Tap:
    """The tap that records every exchange of this session."""
    return _state(request.config).tap


def _mock_or_skip(target: Target, request: pytest.FixtureRequest, why: str) -> Any:
    """The built-in mock behind ``target``; skips the test (NOT_SUPPORTED_PREFIX + ``why``) on a real target."""
    mock = _state(request.config).mocks.get(target.name)
    if not target.is_mock or mock is None:
        pytest.skip(NOT_SUPPORTED_PREFIX + why)
    return mock


@pytest.fixture(scope="session")
def wm_mock_store(wm_target: Target, request: pytest.FixtureRequest) -> Any:
    """The CIM store behind the mock target (only for self-checks; real targets skip)."""
    mock = _mock_or_skip(wm_target, request, " the CIM store is only reachable on the built-in mock")
    return mock.store


@pytest.fixture(scope="session")
def wm_mock_config(wm_target: Target, request: pytest.FixtureRequest) -> Any:
    """The built-in mock's settings (``MockConfig``: listener auth policy, users), for suites that
    switch Windows policy knobs; real targets skip. Tests restore what they change."""
    mock = _mock_or_skip(wm_target, request, " listener policy can only be changed on the built-in mock")
    return mock.config


@pytest.fixture(scope="session")
def wm_mock_server(wm_target: Target, request: pytest.FixtureRequest) -> Any:
    """The built-in mock itself (``harness.targets.mock.runner.MockServerThread``), for mock-only
    checks of its insides (leaked contexts, tasks, connections: MS-WMOD 2.10.1); real targets skip."""
    mock = _mock_or_skip(wm_target, request, " the server's insides are only reachable on the built-in mock")
    return mock


@pytest.fixture
def wm_mock_eventing(wm_target: Target, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The built-in mock's eventing handle (:class:`harness.targets.mock.publisher.MockEventing`):
    advance its event clock, point its publisher at a subscription manager (MS-WSMV 3.1.4.1.30),
    bound the subscription queues. Real targets skip. Publisher and queue bound are restored afterwards."""
    mock = _mock_or_skip(wm_target, request, " the event clock and publisher are only reachable on the built-in mock")
    from harness.targets.mock.publisher import MockEventing

    source = mock.service.events if mock.service is not None else None
    eventing = MockEventing(mock.config, source)
    refresh = mock.config.subscription_manager_refresh
    queue_size = source.queue_size if source is not None else None
    try:
        yield eventing
    finally:
        eventing.point_publisher(None, refresh=refresh)
        if source is not None and queue_size is not None:
            source.queue_size = queue_size


_OUTCOME_KEY = pytest.StashKey[OutcomeRecorder]()


@pytest.fixture
def wm_outcome(request: pytest.FixtureRequest) -> OutcomeRecorder:
    """Record which of several outcomes the specification allows the target showed (INFORMATIONAL)."""
    recorder = OutcomeRecorder()
    request.node.stash[_OUTCOME_KEY] = recorder
    return recorder


def _validator(state: _Session) -> Any:
    """The XSD validator of the WS-Man clients (harness.validate), or None under ``--wm-no-validate``."""
    if not state.validate:
        return None
    from harness.validate import default_validator

    return default_validator()


@pytest.fixture
async def wsman(wm_target: Target, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """An async :class:`harness.client.wsman.WSManClient` bound to ``wm_target``."""
    from harness.client.wsman import WSManClient

    state = _state(request.config)
    async with WSManClient(wm_target, tap=state.tap, validator=_validator(state)) as client:
        yield client


@pytest.fixture
async def wsman2005(wm_target: Target, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A :class:`harness.client.wsman.WSManClient` of ``wm_target`` that writes the Windows Server
    2003 R2 dialect (MS-WSMAN, WS-Management 2005/06; harness.wire.wsman.dialect). Suites mark
    ``requires("wsman2005")``."""
    from harness.client.wsman import WSManClient

    state = _state(request.config)
    async with WSManClient(wm_target, tap=state.tap, validator=_validator(state), dialect="wsman2005") as client:
        yield client


@pytest.fixture
async def wmi(wm_target: Target) -> AsyncIterator[Any]:
    """An async :class:`harness.client.wmi.WmiClient` (WMI over DCOM, MS-WMI) bound to ``wm_target``'s
    root/cimv2: the mock's WMI role, or port 135 of the target host (``wmi_host`` / ``wmi_port``)."""
    from harness.client.wmi import WmiClient

    host = wm_target.wmi_host or wm_target.host
    port = wm_target.wmi_port or 135
    client = await WmiClient.connect(host, port, wm_target.username or "", wm_target.password or "",
                                     timeout=wm_target.timeout)
    try:
        yield client
    finally:
        await client.close()


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    current_test.set(item.nodeid)
    state.started[item.nodeid] = time.monotonic()
    callspec = getattr(item, "callspec", None)
    if callspec is None or "wm_target" not in callspec.params:
        return
    name = callspec.params["wm_target"]
    caps = _resolve_target(state, name).capabilities
    for marker in item.iter_markers("requires"):
        missing = [c for c in marker.args if c not in caps]
        if missing:
            pytest.skip(f"{NOT_SUPPORTED_PREFIX} target {name} lacks {', '.join(missing)}")


_REQUIREMENTS_KEY = pytest.StashKey[tuple[list[str], str | None]]()
_EXPECTED_FAILURE_KEY = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Map every target case to its requirements, mark the target's expected failures
    (strict xfail: an unexpected pass fails the run) and run the sanity cases first and last."""
    from harness.report.catalogue import CatalogueError, default_catalogue
    from harness.report.session import expected_failure_entry, sanity_rank

    state = _state(config)
    names = state.names
    specs = {s if isinstance(s, str) else s.name: s for s in state.target_specs}
    target_items = [i for i in items if "wm_target" in getattr(getattr(i, "callspec", None), "params", {})]
    if not target_items:
        return
    try:
        catalogue = default_catalogue()
        for item in target_items:
            ids = catalogue.ids_for_test(item.nodeid, _markers(item, "requirement"))
            item.stash[_REQUIREMENTS_KEY] = (ids, catalogue.level_of(ids))
    except CatalogueError as exc:
        raise pytest.UsageError(f"requirement catalogue: {exc}") from exc
    for item in target_items:
        name = item.callspec.params["wm_target"]  # type: ignore[attr-defined]
        spec = specs.get(name)
        if isinstance(spec, Target) and spec.expected_failures:
            entry = expected_failure_entry(spec.expected_failures, item.nodeid, item.stash[_REQUIREMENTS_KEY][0])
            if entry is not None:
                item.stash[_EXPECTED_FAILURE_KEY] = entry
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"expected failure on {name} ({entry})"))

    def key(item: pytest.Item) -> tuple[int, int]:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "wm_target" not in params:
            return (-1, 1)
        return (names.index(params["wm_target"]), sanity_rank(item.nodeid))

    items.sort(key=key)


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
    wasxfail = getattr(report, "wasxfail", None)
    xpass_strict = report.failed and str(report.longrepr).startswith("[XPASS(strict)]")
    if wasxfail is not None and report.skipped:
        result_outcome = "failed"
        message = f"expected failure ({wasxfail})\n" + report.longreprtext[-4000:]
    elif xpass_strict:
        result_outcome = "passed"
        message = f"unexpected pass of an expected failure: {report.longreprtext}"
    elif report.skipped:
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
            requirements=item.stash.get(_REQUIREMENTS_KEY, ([], None))[0],
            level=item.stash.get(_REQUIREMENTS_KEY, ([], None))[1],
            expected_failure=_EXPECTED_FAILURE_KEY in item.stash,
            observations=list(item.stash[_OUTCOME_KEY].notes) if _OUTCOME_KEY in item.stash else [],
            worker=state.worker,
        )
    )


@pytest.fixture(autouse=True)
def _wm_allure_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    """Label the allure result by protocol, spec section, catalogue requirement, its level and the
    matching severity (harness.report.allure) and attach the messages, when allure is on."""
    item = request.node
    active = request.config.pluginmanager.hasplugin("allure_pytest") and request.config.getoption(
        "--alluredir", None)
    specs = _markers(item, "spec")
    requirement_ids, level = item.stash.get(_REQUIREMENTS_KEY, ([], None))
    if not active or not (specs or requirement_ids):
        yield
        return
    import allure

    from harness.report.allure import requirement_labels

    dynamic: Any = allure.dynamic  # allure's API is untyped
    for name, value in requirement_labels(requirement_ids, level):
        dynamic.label(name, value)
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


def _all_capture_name(worker: str | None) -> str:
    """``all.pcapng``, or ``all-<worker>.pcapng`` for a pytest-xdist worker (the controller merges them)."""
    if worker is None:
        return "all.pcapng"
    return f"all-{re.sub(r'[^A-Za-z0-9_-]+', '_', worker)}.pcapng"


def _clear_worker_captures(reports_dir: Path) -> None:
    """Remove per-worker whole-session captures a previous run left behind (controller, before workers start)."""
    captures = reports_dir / "captures"
    if captures.is_dir():
        for path in captures.glob("all-*.pcapng"):
            path.unlink(missing_ok=True)


def _merge_worker_captures(reports_dir: Path) -> None:
    """The controller under pytest-xdist: ``captures/all-<worker>.pcapng`` merged, in time order, into
    ``captures/all.pcapng`` (harness.capture.merge)."""
    import sys

    from harness.capture.merge import CaptureMergeError, merge_pcapng_files

    sources = sorted((reports_dir / "captures").glob("all-*.pcapng"))
    if not sources:
        return
    try:
        merge_pcapng_files(sources, reports_dir / "captures" / "all.pcapng")
    except CaptureMergeError as exc:
        print(f"wm-harness: worker captures not merged: {exc}", file=sys.stderr)


def _write_captures(state: _Session, reports_dir: Path) -> None:
    """``captures/<test>.pcapng`` per suite case and ``captures/all.pcapng`` (``all-<worker>.pcapng`` on a
    pytest-xdist worker) (harness.capture.synth for HTTP, harness.capture.dcerpc_synth for the DCE/RPC PDUs
    of WMI over DCOM)."""
    import sys

    from harness.capture.dcerpc_synth import write_session_captures_all
    from harness.capture.synth import SynthError

    try:
        names = write_session_captures_all([(r.nodeid, r.wire) for r in state.results],
                                           list(state.tap.exchanges), reports_dir / "captures",
                                           state.tap.secrets, all_name=_all_capture_name(state.worker))
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
        if state.worker is not None:  # an xdist worker: its shard; the controller merges
            from harness.report.session import write_shard

            write_shard(state.results, state.reports_dir, state.worker)
        else:
            write_reports(state.results, state.reports_dir)
    if state.xdist_controller and state.reports_dir is not None:
        from harness.report.session import read_shards

        merged = read_shards(state.reports_dir)
        if merged:
            write_reports(merged, state.reports_dir)
        _merge_worker_captures(state.reports_dir)
    if state.reports_dir is not None and state.live:
        _write_live_captures(state, state.reports_dir)
    for mock in state.mocks.values():
        mock.stop()
    state.mocks.clear()
