"""DCE/RPC in captures: a live WMI-over-DCOM session recorded at the socket by the tap, written to
pcapng and dissected (C706 12.6; MS-RPCE 3.3.1.5.2; MS-NLMP 3.4; MS-WMI 3.1.4; MS-WMIO 2.2.1)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from harness.capture.check import CaptureReport, MessageReport, check_capture, format_report, run_check_pcap
from harness.capture.dcerpc_synth import write_capture_all
from harness.capture.reader import read_frames
from harness.capture.reference import record_wmi_exchanges
from harness.cim.mof import default_store
from harness.cli import main as wmh_main
from harness.transport.tap import Exchange
from harness.wire.dcom.pdu import AuthLevel, stub_span

PASSWORD = "Dce-Rpc-Capture-7!"
NS = "root/cimv2"
SERVICE_PROPERTIES = len(default_store().get_class(NS, "Win32_Service").properties)
SERVICE_COUNT = len(default_store().enumerate_instances(NS, "Win32_Service"))


def _record(level: int) -> list[Exchange]:
    """One real session of our WMI client against the mock WMI server, through a fresh tap."""
    async def work(client: Any) -> None:
        await client.get_object('Win32_Service.Name="WinRM"')
        await client.exec_query("SELECT * FROM Win32_Service")

    return record_wmi_exchanges(work, PASSWORD, auth_level=level)


@pytest.fixture(scope="module")
def privacy_session() -> list[Exchange]:
    return _record(AuthLevel.PKT_PRIVACY)


def _write(exchanges: list[Exchange], path: Path) -> Path:
    write_capture_all(exchanges, path, secrets=[PASSWORD])
    return path


def _by_method(report: CaptureReport, method: str, direction: str) -> list[MessageReport]:
    return [m for m in report.messages if m.action == method and m.direction == direction]


def test_tap_records_raw_pdus_per_direction(privacy_session: list[Exchange]) -> None:
    assert privacy_session and all(e.protocol == "dcerpc" for e in privacy_session)
    assert {e.direction for e in privacy_session} == {"request", "response"}
    assert all(e.body[:2] == b"\x05\x00" and len(e.body) == int.from_bytes(e.body[8:10], "little")
               for e in privacy_session)
    assert all(e.peer.startswith("ncacn_ip_tcp:127.0.0.1[") for e in privacy_session)
    assert len({e.peer for e in privacy_session}) == 2   # endpoint mapper and object exporter


def test_capture_without_password_names_calls_and_keeps_sealed_stubs_closed(
        privacy_session: list[Exchange], tmp_path: Path) -> None:
    path = _write(privacy_session, tmp_path / "wmi.pcapng")
    assert PASSWORD.encode() not in path.read_bytes() and PASSWORD.encode("utf-16-le") not in path.read_bytes()
    report = check_capture(path, validate=False)
    assert report.streams == 2
    verdicts = {m.verdict for m in report.messages}
    assert "fail" not in verdicts and verdicts <= {"pass", "encrypted", "info"}
    binds = [m for m in report.messages if m.http.startswith("DCE/RPC bind call")]
    assert [b.action for b in binds if b.direction == "request"] == ["IRemoteSCMActivator", "IWbemLevel1Login"]
    login = _by_method(report, "IWbemLevel1Login::NTLMLogin", "request")
    assert len(login) == 1 and login[0].verdict == "encrypted"
    assert _by_method(report, "IWbemServices::GetObject", "response")[0].verdict == "encrypted"
    assert any(m.action == "IEnumWbemClassObject" for m in report.messages)   # alter_context mapping


def test_capture_with_password_decrypts_and_decodes_wmi_objects(
        privacy_session: list[Exchange], tmp_path: Path) -> None:
    path = _write(privacy_session, tmp_path / "wmi.pcapng")
    report = check_capture(path, password=PASSWORD, validate=False)
    assert report.passed, format_report(report)
    (get,) = _by_method(report, "IWbemServices::GetObject", "response")
    assert get.objects == ["NTLM PKT_PRIVACY", f"Win32_Service instance, {SERVICE_PROPERTIES} properties",
                           "HRESULT 0x00000000"]
    nexts = _by_method(report, "IEnumWbemClassObject::Next", "response")
    assert len(nexts) > 1, "the Next response is fragmented"
    last = nexts[-1]
    assert f"{SERVICE_COUNT} x Win32_Service instance, {SERVICE_PROPERTIES} properties" in last.objects
    assert "HRESULT 0x00000001" in last.objects   # WBEM_S_FALSE: the enumeration ended
    assert all("(fragment)" in m.http for m in nexts[:-1])
    text = format_report(report) + json.dumps(report.to_json())
    assert PASSWORD not in text


def test_wrong_password_is_reported_not_guessed(privacy_session: list[Exchange], tmp_path: Path) -> None:
    path = _write(privacy_session, tmp_path / "wmi.pcapng")
    report = check_capture(path, password=PASSWORD + "x", validate=False)
    assert not report.passed
    assert any("password does not produce the NTLMv2 response" in e for m in report.messages for e in m.errors)
    assert _by_method(report, "IWbemServices::GetObject", "response")[0].verdict == "encrypted"


def test_tampered_sealed_bytes_are_reported(privacy_session: list[Exchange], tmp_path: Path) -> None:
    exchanges = list(privacy_session)
    # the first response on the object exporter carrying an instance: GetObject's (largest early response)
    orpc_peer = exchanges[-1].peer
    index = next(i for i, e in enumerate(exchanges)
                 if e.peer == orpc_peer and e.direction == "response" and len(e.body) > 1000)
    body = bytearray(exchanges[index].body)
    start, end = stub_span(bytes(body))
    body[(start + end) // 2] ^= 0x01
    exchanges[index] = dataclasses.replace(exchanges[index], body=bytes(body))
    report = check_capture(_write(exchanges, tmp_path / "tampered.pcapng"), password=PASSWORD, validate=False)
    failed = [m for m in report.messages if m.verdict == "fail"]
    assert len(failed) == 1, format_report(report)
    assert "does not verify" in " ".join(failed[0].errors)
    assert failed[0].action == "IWbemServices::GetObject"
    # the sequence numbers move on: the next sealed PDUs still verify
    assert _by_method(report, "IEnumWbemClassObject::Next", "response")[-1].verdict == "pass"


def test_integrity_session_is_readable_without_the_password(tmp_path: Path) -> None:
    exchanges = _record(AuthLevel.PKT_INTEGRITY)
    path = _write(exchanges, tmp_path / "integrity.pcapng")
    plain = check_capture(path, validate=False)
    assert plain.passed, format_report(plain)
    (get,) = _by_method(plain, "IWbemServices::GetObject", "response")
    assert f"Win32_Service instance, {SERVICE_PROPERTIES} properties" in get.objects
    assert "signature not checked" in get.objects[0]
    checked = check_capture(path, password=PASSWORD, validate=False)
    assert checked.passed
    assert _by_method(checked, "IWbemServices::GetObject", "response")[0].objects[0] == "NTLM PKT_INTEGRITY"


def test_wmh_check_pcap_password_env(privacy_session: list[Exchange], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(privacy_session, tmp_path / "wmi.pcapng")
    assert read_frames(path)
    monkeypatch.setenv("WMH_TEST_DCERPC_PW", PASSWORD)
    assert wmh_main(["check-pcap", str(path), "--password-env", "WMH_TEST_DCERPC_PW"]) == 0
    out = capsys.readouterr().out
    assert "IWbemServices::ExecQuery" in out and "Win32_Service instance" in out
    assert PASSWORD not in out
    code, _ = run_check_pcap(str(path), as_json=True, password=None)
    assert code == 1   # sealed PDUs stay unchecked without the password


WMI_SUITE = '''
import pytest

@pytest.mark.requires("wmi")
async def test_query_over_wmi(wmi):
    assert await wmi.exec_query("SELECT * FROM Win32_Service WHERE Name = 'WinRM'")
'''


def test_wm_reports_captures_hold_the_wmi_session(tmp_path: Path) -> None:
    """``--wm-reports``: the per-test pcapng has the DCE/RPC streams of the ``wmi`` fixture's client."""
    import os
    import subprocess
    import sys

    (tmp_path / "test_wmi_tiny.py").write_text(WMI_SUITE)
    reports = tmp_path / "reports"
    env = dict(os.environ, WMH_MOCK_PASSWORD=PASSWORD)
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_wmi_tiny.py", "-q", "-p", "no:cacheprovider",
                           "-o", "asyncio_mode=auto", f"--wm-reports={reports}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (case,) = json.loads((reports / "results.json").read_text())["cases"]
    capture = reports / case["capture"]
    assert PASSWORD.encode("utf-16-le") not in capture.read_bytes()
    report = check_capture(capture, password=PASSWORD, validate=False)
    assert report.passed, format_report(report)
    (query,) = _by_method(report, "IWbemServices::ExecQuery", "request")
    assert query.objects == ["NTLM PKT_PRIVACY"]
    assert any("Win32_Service instance" in o for m in report.messages for o in m.objects)
