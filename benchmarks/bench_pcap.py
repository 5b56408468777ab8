"""Throughput of ``wmh check-pcap`` against tshark on the same capture, measured in the same run.

Run: ``python benchmarks/bench_pcap.py [--mb 20] [--repeat 3] [--quick]``.

The capture is synthesised with ``harness.capture.synth`` from a real WS-Man session against our
own mock (``harness.capture.reference``: Identify, a 401, Get, Enumerate / Pull / Release, a
fault), repeated on fresh TCP connections until it reaches ``--mb`` megabytes. Timed on that file:

* ours, no XSD:   ``check_capture(path, validate=False)``: pcapng reader, TCP reassembly, HTTP/1.1
                  extraction, WS-Man classification and request/response pairing
* ours, XSD:      the same plus XSD validation of every SOAP body (``wmh check-pcap``'s default)
* tshark fields:  ``tshark -r FILE -Y http -T fields -e http.request.method -e http.response.code``
* tshark -V:      ``tshark -r FILE -V`` (full dissection of every frame, printed to /dev/null)

Both tshark commands decode the server port as HTTP (``-d tcp.port==PORT,http``). Figures are
MB/s of capture file; the ratio is tshark time / our time (> 1: we are faster). The tshark
columns are skipped with the reason when tshark is not installed. Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from _timing import best_time

from harness.capture.check import check_capture
from harness.capture.reference import record_mock_exchanges
from harness.capture.synth import write_capture
from harness.transport.tap import Exchange

SERVER_PORT = 5985  # WinRM HTTP (MS-WSMV 2.1)
PEER = f"http://127.0.0.1:{SERVER_PORT}/wsman"


def build_capture(path: Path, megabytes: float) -> tuple[int, int, int]:
    """Write a pcapng of about ``megabytes`` MB; returns (packets, HTTP messages, sessions)."""
    session, password = record_mock_exchanges()
    session_bytes = sum(len(e.body) + 400 for e in session)  # bodies plus headers and TCP/IP framing
    copies = max(1, int(megabytes * 1e6 / session_bytes))
    span = max(e.timestamp for e in session) - min(e.timestamp for e in session) + 0.01
    exchanges: list[Exchange] = []
    for n in range(copies):
        exchanges += [replace(e, test_id=f"bench/pcap::session-{n}", peer=PEER, timestamp=e.timestamp + n * span)
                      for e in session]
    packets = write_capture(exchanges, path, secrets=[password])
    while path.stat().st_size < megabytes * 1e6 * 0.9 and copies < 1_000_000:  # estimate was low: add more
        extra = copies // 4 + 1
        exchanges += [replace(e, test_id=f"bench/pcap::session-{copies + n}", peer=PEER,
                              timestamp=e.timestamp + (copies + n) * span) for n in range(extra) for e in session]
        copies += extra
        packets = write_capture(exchanges, path, secrets=[password])
    return packets, len(exchanges), copies


def tshark_run(args: list[str]) -> Callable[[], int]:
    def run() -> int:
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, timeout=600)
        return proc.stdout.count(b"\n")

    return run


def tshark_discard(args: list[str]) -> Callable[[], int]:
    def run() -> int:
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
        return 0

    return run


def row(name: str, mb: float, seconds: float, ours: float | None = None) -> None:
    ratio = f"   time / ours-no-XSD time {seconds / ours:6.2f}x" if ours is not None else ""
    print(f"{name:<34} {seconds:8.3f} s {mb / seconds:9.2f} MB/s{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=float, default=20.0, help="capture size in MB (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best taken (default 3)")
    parser.add_argument("--quick", action="store_true", help="2 MB, one run each")
    args = parser.parse_args()
    megabytes, repeat = (2.0, 1) if args.quick else (args.mb, max(1, args.repeat))

    with tempfile.TemporaryDirectory(prefix="wmh-bench-pcap-") as tmp:
        path = Path(tmp) / "wsman.pcapng"
        packets, messages, sessions = build_capture(path, megabytes)
        mb = path.stat().st_size / 1e6
        print(f"capture: {mb:.1f} MB, {packets} packets, {messages} HTTP messages, {sessions} TCP connections")

        check_capture(path, validate=True)  # warm up: compile the schemas once, outside the timings
        t_plain, report_plain = best_time(lambda: check_capture(path, validate=False), repeat)
        t_xsd, report_xsd = best_time(lambda: check_capture(path, validate=True), repeat)
        if len(report_plain.messages) != messages or len(report_xsd.messages) != messages:
            raise SystemExit(f"check-pcap found {len(report_plain.messages)} / {len(report_xsd.messages)} "
                             f"messages, expected {messages}")
        if not report_xsd.passed:
            raise SystemExit("check-pcap failed messages of our own mock's session")
        row("ours: check-pcap, no XSD", mb, t_plain)
        row("ours: check-pcap, XSD validation", mb, t_xsd, t_plain)

        tshark = shutil.which("tshark")
        if tshark is None:
            print("tshark: skipped (not installed; Debian: apt-get install -y tshark)")
            return
        decode = ["-d", f"tcp.port=={SERVER_PORT},http"]
        fields = [tshark, "-n", "-r", str(path), *decode, "-Y", "http", "-T", "fields",
                  "-e", "http.request.method", "-e", "http.response.code"]
        t_fields, lines = best_time(tshark_run(fields), repeat)
        if lines != messages:
            print(f"note: tshark -Y http printed {lines} lines for {messages} HTTP messages")
        row("tshark -Y http -T fields", mb, t_fields, t_plain)
        t_full, _ = best_time(tshark_discard([tshark, "-n", "-r", str(path), *decode, "-V"]), repeat)
        row("tshark -V (full dissection)", mb, t_full, t_plain)
        print(f"ratios (tshark time / our time, > 1: ours faster): no XSD vs fields {t_fields / t_plain:.2f}x, "
              f"vs -V {t_full / t_plain:.2f}x; XSD vs fields {t_fields / t_xsd:.2f}x, vs -V {t_full / t_xsd:.2f}x")


if __name__ == "__main__":
    main()
