"""TCP reassembly: out-of-order, duplicated/retransmitted and missing segments (RFC 9293 3.4, 3.10.7.4)."""

from __future__ import annotations

import random

from _capture_helpers import exchange

from harness.capture.check import check_capture_bytes
from harness.capture.http1 import extract_messages
from harness.capture.pcapng import LINKTYPE_RAW, Packet, pcap_bytes, pcapng_bytes
from harness.capture.reader import Frame, decode_segment, frames_from_bytes, reassemble
from harness.capture.synth import synthesise

REQ = b"<req>" + b"A" * 9000 + b"</req>"
RESP = b"<resp>" + bytes(range(256)) * 60 + b"</resp>"


def _packets() -> list[Packet]:
    return synthesise([exchange("request", REQ), exchange("response", RESP, status=200, ts=1_700_000_000.5)],
                      linktype=LINKTYPE_RAW)


def _payload_len(p: Packet) -> int:
    seg = decode_segment(Frame(0, 0, LINKTYPE_RAW, p.data))
    assert seg is not None
    return len(seg.payload)


def _bodies(packets: list[Packet]):
    [stream] = reassemble(frames_from_bytes(pcapng_bytes(packets, LINKTYPE_RAW)))
    reqs = extract_messages(stream.to_server, True)
    resps = extract_messages(stream.to_client, False, [m.method for m in reqs])
    return stream, reqs, resps


def test_in_order_capture_reassembles_exactly():
    stream, [req], [resp] = _bodies(_packets())
    assert (req.body, resp.body) == (REQ, RESP)
    assert stream.to_client.duplicates == stream.to_client.out_of_order == 0


def test_shuffled_segments_are_put_back_in_order():
    packets = _packets()
    rng = random.Random(7)
    head, data, tail = packets[:3], packets[3:-3], packets[-3:]
    rng.shuffle(data)
    stream, [req], [resp] = _bodies(head + data + tail)
    assert (req.body, resp.body) == (REQ, RESP)
    assert stream.to_server.out_of_order + stream.to_client.out_of_order > 0
    assert not stream.to_server.missing and not stream.to_client.missing


def test_duplicates_and_retransmissions_are_dropped():
    packets = _packets()
    data_idx = [i for i, p in enumerate(packets) if _payload_len(p) > 0]
    dup = packets[:]
    for i in reversed(data_idx[::2]):
        dup.insert(i + 1, packets[i])  # every other data segment twice (a retransmission)
    dup.append(packets[data_idx[0]])  # a very late duplicate of the first
    stream, [req], [resp] = _bodies(dup)
    assert (req.body, resp.body) == (REQ, RESP)
    assert stream.to_server.duplicates + stream.to_client.duplicates == len(data_idx[::2]) + 1


def test_missing_segment_is_reported_with_its_byte_range_and_fails_the_message():
    packets = _packets()
    data_idx = [i for i, p in enumerate(packets) if _payload_len(p) > 0]
    lost = data_idx[2]  # the third request segment
    stream, reqs, _ = _bodies(packets[:lost] + packets[lost + 1:])
    assert stream.to_server.missing == [(2 * 1460, 3 * 1460)]
    assert not reqs[0].complete and "missing" in reqs[0].errors[0]
    report = check_capture_bytes(pcapng_bytes(packets[:lost] + packets[lost + 1:], LINKTYPE_RAW))
    assert not report.passed
    assert any("bytes 2920-4379 missing" in n for n in report.stream_notes)
    assert report.messages[0].verdict == "fail"


def test_capture_without_handshake_still_reassembles():
    packets = _packets()[3:]  # capture started after the SYNs
    stream, [req], [resp] = _bodies(packets)
    assert not stream.syn_seen and stream.server[1] == 5985
    assert (req.body, resp.body) == (REQ, RESP)


def test_two_messages_pipelined_in_one_segment_and_chunked_bodies():
    payload_req = (b"POST /wsman HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                   b"POST /wsman HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\nwxyz\r\n2;ext=1\r\n12\r\n0\r\nTrailer: x\r\n\r\n")
    from harness.capture.tcpip import TCP_ACK, TCP_PSH, ipv4_bytes, ipv4_packet, tcp_segment

    c, s = ipv4_bytes("10.0.0.1"), ipv4_bytes("10.0.0.2")
    seg = tcp_segment(c, s, 50000, 5985, 1000, 1, TCP_ACK | TCP_PSH, payload_req)
    frames = frames_from_bytes(pcap_bytes([Packet(1, ipv4_packet(c, s, 1, seg))], LINKTYPE_RAW))
    [stream] = reassemble(frames)
    msgs = extract_messages(stream.to_server, True)
    assert [m.body for m in msgs] == [b"abc", b"wxyz12"]


def test_garbage_between_messages_is_reported_and_parsing_resyncs():
    payload = (b"GARBAGE\r\n\r\nPOST /wsman HTTP/1.1\r\nContent-Length: 2\r\n\r\nok")
    from harness.capture.tcpip import TCP_ACK, ipv4_bytes, ipv4_packet, tcp_segment

    c, s = ipv4_bytes("10.0.0.1"), ipv4_bytes("10.0.0.2")
    seg = tcp_segment(c, s, 50000, 5985, 1000, 1, TCP_ACK, payload)
    [stream] = reassemble(frames_from_bytes(pcap_bytes([Packet(1, ipv4_packet(c, s, 1, seg))], LINKTYPE_RAW)))
    bad, good = extract_messages(stream.to_server, True)
    assert "malformed HTTP" in bad.errors[0] and good.body == b"ok"


def test_random_bytes_never_crash_the_reader():
    rng = random.Random(1)
    base = pcapng_bytes(_packets(), LINKTYPE_RAW)
    for _ in range(200):
        data = bytearray(base)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            check_capture_bytes(bytes(data), validate=False)
        except Exception as exc:
            from harness.capture.reader import CaptureReadError

            assert isinstance(exc, CaptureReadError), repr(exc)


def test_coverage_ranges_agree_with_a_brute_force_set():
    from harness.capture.reader import _Coverage

    rng = random.Random(3)
    for _ in range(200):
        cov, seen = _Coverage(), set()
        for _ in range(30):
            a = rng.randrange(200)
            b = a + rng.randrange(1, 30)
            assert cov.contains(a, b) == all(x in seen for x in range(a, b))
            cov.add(a, b)
            seen.update(range(a, b))
        assert all(s < e for s, e in zip(cov.starts, cov.ends, strict=True))
        assert all(e < s for e, s in zip(cov.ends, cov.starts[1:], strict=False))


def test_a_fully_shuffled_multi_stream_capture_checks_clean(mock_session):
    exchanges, _ = mock_session
    from dataclasses import replace

    many = [replace(e, test_id=f"t{i}", timestamp=e.timestamp + i) for i in range(3) for e in exchanges]
    packets = synthesise(many, linktype=LINKTYPE_RAW)
    random.Random(5).shuffle(packets)
    report = check_capture_bytes(pcapng_bytes(packets, LINKTYPE_RAW))
    assert report.streams == 3 and report.passed, [m.errors for m in report.messages if m.errors]
    assert len(report.messages) == len(many)


def test_port_reuse_after_close_is_a_new_stream():
    first = synthesise([exchange("request", b"<one/>"), exchange("response", b"<r1/>", status=200)],
                       linktype=LINKTYPE_RAW)
    second = synthesise([exchange("request", b"<two/>", ts=1_700_000_100.0, test_id="t::case"),
                         exchange("response", b"<r2/>", status=200, ts=1_700_000_100.1)], linktype=LINKTYPE_RAW)
    # same test id and peer: the same 4-tuple; the ISNs are equal too, so shift the second connection's
    from harness.capture.tcpip import ipv4_packet, tcp_segment

    def shifted(p: Packet) -> Packet:
        seg = decode_segment(Frame(0, 0, LINKTYPE_RAW, p.data))
        assert seg is not None
        src, dst = p.data[12:16], p.data[16:20]
        tcp = tcp_segment(src, dst, seg.sport, seg.dport, seg.seq + 7777, (seg.ack + 7777) if seg.ack else 0,
                          seg.flags, seg.payload, mss=1460 if seg.flags & 0x02 else None)
        return Packet(p.timestamp_us, ipv4_packet(src, dst, 9, tcp))

    streams = reassemble(frames_from_bytes(pcapng_bytes(first + [shifted(p) for p in second], LINKTYPE_RAW)))
    assert len(streams) == 2
    assert [extract_messages(s.to_server, True)[0].body for s in streams] == [b"<one/>", b"<two/>"]
