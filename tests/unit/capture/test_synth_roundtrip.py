"""Synthesised TCP conversations: framing, segmentation, checksums, and a lossless round trip."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from _capture_helpers import exchange

from harness.capture.http1 import extract_messages
from harness.capture.pcapng import LINKTYPE_ETHERNET, LINKTYPE_RAW
from harness.capture.reader import decode_segment, read_frames, reassemble
from harness.capture.synth import (
    SynthError,
    capture_name,
    client_port,
    http_request_bytes,
    synthesise,
    write_capture,
    write_session_captures,
)
from harness.capture.tcpip import TCP_FIN, TCP_PSH, TCP_SYN, internet_checksum


def _big_pair(test_id: str = "t::big", size: int = 10_000, ts: float = 1_700_000_000.0):
    req = exchange("request", b"<r>" + b"q" * size + b"</r>", test_id=test_id, ts=ts)
    resp = exchange("response", b"<s>" + bytes(range(256)) * (size // 64) + b"</s>", test_id=test_id,
                    status=200, ts=ts + 0.01,
                    headers={"Content-Type": "application/soap+xml", "Transfer-Encoding": "chunked",
                             "Content-Length": "5", "Server": "mock"})
    return [req, resp]


@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_RAW])
def test_write_then_read_gives_identical_http_bodies(tmp_path: Path, linktype: int):
    exchanges = _big_pair() + _big_pair("t::other", 3000, 1_700_000_000.005)
    path = tmp_path / "c.pcapng"
    write_capture(exchanges, path, linktype=linktype)
    streams = reassemble(read_frames(path))
    assert len(streams) == 2
    by_port = {s.client[1]: s for s in streams}
    for test_id, pair in (("t::big", exchanges[:2]), ("t::other", exchanges[2:])):
        stream = by_port[client_port(test_id, pair[0].peer)]
        assert stream.server == ("127.0.0.1", 5985) and stream.syn_seen
        [req] = extract_messages(stream.to_server, True)
        [resp] = extract_messages(stream.to_client, False)
        assert req.body == pair[0].body and resp.body == pair[1].body
        assert (req.method, req.target, req.header("Host")) == ("POST", "/wsman", "127.0.0.1:5985")
        assert resp.status == 200 and resp.header("Transfer-Encoding") is None
        assert resp.header("Content-Length") == str(len(pair[1].body))
        assert not stream.to_server.missing and not stream.to_client.missing


def test_segments_respect_the_mss_and_sequence_numbers_are_continuous():
    packets = synthesise(_big_pair(size=20_000), linktype=LINKTYPE_RAW)
    segments = [decode_segment(_frame(p.data, i)) for i, p in enumerate(packets, 1)]
    assert all(s is not None for s in segments)
    segs = [s for s in segments if s is not None]
    assert segs[0].flags & TCP_SYN and segs[1].flags & TCP_SYN and segs[-3].flags & TCP_FIN
    assert max(len(s.payload) for s in segs) == 1460
    next_seq: dict[tuple[str, int], int] = {}
    for s in segs:
        key = (s.src, s.sport)
        if key in next_seq:
            assert s.seq == next_seq[key], "no gap and no overlap in synthesised segments"
        next_seq[key] = (s.seq + len(s.payload) + (1 if s.flags & (TCP_SYN | TCP_FIN) else 0)) & 0xFFFFFFFF
        other = next((v for k, v in next_seq.items() if k != key), None)
        if other is not None and not s.flags & TCP_SYN:
            assert s.ack == other, "every segment acknowledges all the peer has sent"
    data = [s for s in segs if s.payload]
    assert sum(1 for s in data if s.flags & TCP_PSH) == 2, "PSH ends each HTTP message"
    times = [p.timestamp_us for p in packets]
    assert times == sorted(times)


def _frame(data: bytes, number: int):
    from harness.capture.reader import Frame

    return Frame(number, 0, LINKTYPE_RAW, data)


def test_ipv4_and_tcp_checksums_verify():
    for p in synthesise(_big_pair(size=3000), linktype=LINKTYPE_RAW):
        ip = p.data
        assert internet_checksum(ip[:20]) == 0
        tcp = ip[20:]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
        assert internet_checksum(pseudo, tcp) == 0


def test_peer_port_from_url_and_stable_client_port_per_test():
    pair = [exchange("request", b"<a/>", peer="https://host.example:5986/wsman?PSVersion=5"),
            exchange("response", b"<b/>", status=200, peer="https://host.example:5986/wsman?PSVersion=5")]
    seg = decode_segment(_frame(synthesise(pair, linktype=LINKTYPE_RAW)[0].data, 1))
    assert seg is not None and seg.dport == 5986 and seg.sport == client_port("t::case", pair[0].peer)
    assert seg.dst.startswith("198.51.100.") and 49152 <= seg.sport <= 65535
    assert http_request_bytes(pair[0]).startswith(b"POST /wsman?PSVersion=5 HTTP/1.1\r\nHost: host.example:5986\r\n")


def test_header_injection_is_neutralised():
    req = exchange("request", b"<a/>", headers={"X-Evil": "a\r\nAuthorization: Basic Zm9vOmJhcg==",
                                                "Bad Name": "x"})
    head = http_request_bytes(req).split(b"\r\n\r\n")[0]
    assert b"Zm9vOmJhcg==" not in head or b"\r\nAuthorization" not in head
    assert head.count(b"\r\n") == 3  # request line, Host, X-Evil, Content-Length
    assert b"Bad Name" not in head


def test_a_response_without_status_cannot_be_framed():
    with pytest.raises(SynthError):
        synthesise([exchange("response", b"<a/>", status=None)])


def test_session_captures_one_file_per_test_plus_all(tmp_path: Path):
    results = [("suites/a.py::test_x[mock]", _big_pair("suites/a.py::test_x[mock]", 100)),
               ("suites/a.py::test_y[mock]", [])]
    everything = [e for _, w in results for e in w]
    names = write_session_captures(results, everything, tmp_path)
    assert set(names) == {r[0] for r in results}
    assert all((tmp_path / n).is_file() for n in names.values()) and (tmp_path / "all.pcapng").is_file()
    assert capture_name("a/b.py::t[x y]") != capture_name("a/b.py::t[x/y]")
    assert "/" not in capture_name("a/b.py::t[../../etc]")
    assert len(read_frames(tmp_path / names["suites/a.py::test_y[mock]"])) == 0


# ------------------------------------------------------------------------------- credentials
def test_no_capture_ever_contains_the_password_or_the_basic_token(tmp_path: Path, mock_session):
    exchanges, password = mock_session
    token = base64.b64encode(f"wmh:{password}".encode()).decode()
    path = tmp_path / "s.pcapng"
    write_capture(exchanges, path)
    data = path.read_bytes()
    for secret in (password, token):
        assert secret.encode() not in data and secret.encode("utf-16-le") not in data
    assert b"Basic [REDACTED]" in data  # the 401 challenge keeps its scheme only


def test_synthesiser_strips_unredacted_authorization_as_defence_in_depth(tmp_path: Path):
    secret_token = base64.b64encode(b"admin:Pa55word!").decode()
    leaked = exchange("request", b"<Password>Pa55word!</Password><x>Pa55word!</x>",
                      headers={"Authorization": f"Basic {secret_token}", "Cookie": "sid=abc",
                               "Content-Type": "application/soap+xml"})
    path = tmp_path / "leak.pcapng"
    write_capture([leaked], path, secrets=["Pa55word!"])
    data = path.read_bytes()
    assert secret_token.encode() not in data and b"Pa55word!" not in data and b"sid=abc" not in data
    assert b"Authorization: Basic [REDACTED]" in data
    assert b"<Password>[REDACTED]</Password>" in data
