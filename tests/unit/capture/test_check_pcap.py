"""WS-Man checks over captures and ``wmh check-pcap`` (exit codes 0 / 1 / 2)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from _capture_helpers import exchange

from harness.capture.check import check_capture, register_decryptor_factory
from harness.capture.synth import write_capture
from harness.cli import main
from harness.transport.tap import Exchange
from harness.wire.wsman import Header, build_envelope
from harness.wire.wsman.faults import build_fault, make_fault
from harness.wire.wsman.ns import Action

REPO = Path(__file__).resolve().parents[3]  # the checkout (tests/unit/capture/<this file>)

REFERENCE = REPO / "captures" / "mock-wsman.pcapng"


def _write(tmp_path: Path, exchanges: list[Exchange]) -> Path:
    path = tmp_path / "x.pcapng"
    write_capture(exchanges, path)
    return path


def test_a_real_session_against_the_mock_checks_clean(tmp_path: Path, mock_session):
    exchanges, _ = mock_session
    report = check_capture(_write(tmp_path, exchanges))
    assert report.passed, [(m.index, m.errors) for m in report.messages if m.errors]
    assert len(report.messages) == len(exchanges)
    actions = [m.action.rsplit("/", 1)[-1] for m in report.messages if m.action]
    assert {"Get", "GetResponse", "Enumerate", "EnumerateResponse", "Pull", "PullResponse"} <= set(actions)
    statuses = [m.http for m in report.messages if m.direction == "response"]
    assert any(s.startswith("500") for s in statuses) and any(s.startswith("401") for s in statuses)
    assert [m.verdict for m in report.messages if m.http.startswith("401")] == ["info"]


def test_a_tampered_body_is_reported_with_the_xsd_error(tmp_path: Path, mock_session):
    exchanges, _ = mock_session
    i = next(i for i, e in enumerate(exchanges) if b"GetResponse" in e.body)
    tampered = list(exchanges)
    tampered[i] = replace(exchanges[i], body=exchanges[i].body.replace(b"<a:Action>", b"<a:Action bogus='1'>", 1))
    report = check_capture(_write(tmp_path, tampered))
    assert not report.passed
    [bad] = [m for m in report.messages if m.verdict == "fail"]
    assert bad.direction == "response" and bad.action is not None and bad.action.endswith("GetResponse")
    assert any(e.startswith("XSD:") and "bogus" in e for e in bad.errors), bad.errors


def _request(action: str = Action.GET) -> tuple[bytes, str]:
    header = Header(action=action, resource_uri="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/X")
    return build_envelope(header), header.message_id


def test_relates_to_status_and_action_rules(tmp_path: Path):
    req, mid = _request()
    wrong_relates = build_envelope(Header(action=Action.GET_RESPONSE, relates_to="uuid:someone-else", reply_to=None))
    wrong_action = build_envelope(Header(action=Action.PUT_RESPONSE, relates_to=mid, reply_to=None))
    fault = build_fault(make_fault("InvalidSelectors"), relates_to=mid)
    good = build_envelope(Header(action=Action.GET_RESPONSE, relates_to=mid, reply_to=None))
    cases = {
        "RelatesTo": (wrong_relates, 200),
        "does not answer": (wrong_action, 200),
        "HTTP 200 carrying a SOAP fault": (fault, 200),
        "HTTP 500 without a SOAP fault": (good, 500),
    }
    for expected, (body, status) in cases.items():
        path = _write(tmp_path, [exchange("request", req), exchange("response", body, status=status, ts=1.7e9 + 1)])
        report = check_capture(path)
        assert not report.passed
        resp = report.messages[1]
        assert resp.verdict == "fail" and any(expected in e for e in resp.errors), (expected, resp.errors)
    ok = check_capture(_write(tmp_path, [exchange("request", req), exchange("response", good, status=200,
                                                                             ts=1.7e9 + 1)]))
    assert ok.passed


def test_unanswered_request_fails(tmp_path: Path):
    req, _ = _request()
    report = check_capture(_write(tmp_path, [exchange("request", req)]))
    assert not report.passed and "no response" in report.messages[0].errors[0]


ENCRYPTED = {"Content-Type": 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary'
                             '="Encrypted Boundary"'}


def test_encrypted_bodies_need_a_password_and_a_decryptor(tmp_path: Path, capsys, monkeypatch):
    body = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n..."
    path = _write(tmp_path, [exchange("request", body, headers=ENCRYPTED),
                             exchange("response", body, status=200, headers=ENCRYPTED, ts=1.7e9 + 1)])
    report = check_capture(path)
    assert not report.passed and {m.verdict for m in report.messages} == {"encrypted"}
    assert report.messages[0].errors == ["encrypted: needs --password"]
    monkeypatch.setenv("WMH_TEST_PCAP_PW", "pw")
    assert main(["check-pcap", str(path), "--password-env", "WMH_TEST_PCAP_PW"]) == 1
    assert "no decryptor" in capsys.readouterr().out


def test_decryptor_extension_point(tmp_path: Path, monkeypatch):
    import harness.capture.check as check_mod

    monkeypatch.setattr(check_mod, "_decryptor_factories", [])
    req, mid = _request()
    resp = build_envelope(Header(action=Action.GET_RESPONSE, relates_to=mid, reply_to=None))
    plain = {b"ENC-REQ": req, b"ENC-RESP": resp}
    register_decryptor_factory(lambda pw: (lambda stream, msg, before: plain[msg.body]) if pw == "pw" else None)
    path = _write(tmp_path, [exchange("request", b"ENC-REQ", headers=ENCRYPTED),
                             exchange("response", b"ENC-RESP", status=200, headers=ENCRYPTED, ts=1.7e9 + 1)])
    assert check_capture(path, password="pw").passed
    assert not check_capture(path, password="other").passed


def test_cli_exit_codes_and_json(tmp_path: Path, capsys):
    assert main(["check-pcap", str(REFERENCE)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["check-pcap", str(REFERENCE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and data["messages"][0]["index"] == 1
    assert {"stream", "direction", "action", "verdict", "errors"} <= set(data["messages"][0])
    junk = tmp_path / "junk.pcapng"
    junk.write_bytes(b"\x0a\x0d\x0d\x0a\x10")
    assert main(["check-pcap", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "Traceback" not in err
    assert main(["check-pcap", str(tmp_path / "absent.pcapng")]) == 2
    req, _ = _request()
    assert main(["check-pcap", str(_write(tmp_path, [exchange("request", req)]))]) == 1


def test_reference_capture_is_ours_and_clean():
    """captures/mock-wsman.pcapng comes from our mock (python -m harness.capture.reference)."""
    report = check_capture(REFERENCE)
    assert report.passed and report.streams == 1 and len(report.messages) >= 12
    assert b"wm-harness" in REFERENCE.read_bytes()[:64]


@pytest.mark.parametrize("name", ["mock-wsman.pcapng"])
def test_reference_capture_has_no_credentials(name: str):
    data = (REPO / "captures" / name).read_bytes()
    assert b"WWW-Authenticate: Basic [REDACTED]" in data
    for line in data.split(b"\r\n"):
        if line.lower().startswith((b"authorization:", b"www-authenticate:")):
            assert line.endswith(b"[REDACTED]"), line
