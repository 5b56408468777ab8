"""Throughput of TLS decryption in ``wmh check-pcap --tls-keylog`` against tshark on the same capture.

Run: ``python benchmarks/bench_tls.py [--mb 10] [--repeat 3] [--tls 1.3|1.2]``.

The capture is a real HTTPS WinRM session (Basic over TLS, Enumerate / Pull of Win32_Service
repeated until the recording reaches ``--mb`` megabytes) between our client and the mock's HTTPS
application, recorded by the TCP relay of the capture tests (the TLS records as they crossed the
socket) and written as a pcapng on port 5986 with the client's key log (``SSLKEYLOGFILE``).
Timed on that file (best of ``--repeat``):

* ours, decrypt only:  read + TCP reassembly + :func:`harness.capture.tls.decrypt_tcp_stream`
* ours, check, no XSD: ``check_capture(path, keylog=..., validate=False)`` (decrypt, HTTP, WS-Man)
* tshark decrypt:      ``tshark -r FILE -o tls.keylog_file:KEYS -d tcp.port==5986,tls -Y http -T fields
                       -e http.request.method -e http.response.code``

Figures are MB/s of capture file; the ratio is tshark time / our time (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "capture"))

from _timing import best_time

from harness.capture.check import check_capture
from harness.capture.reader import read_frames, reassemble
from harness.capture.tls import decrypt_tcp_stream, read_keylog, tls_stream
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target


async def record(megabytes: float, version: str, keylog: Path) -> bytes:
    from test_tls_decrypt_live import PASSWORD, USER, https_relay, tls12, tls13, tls_pcapng

    tune: Callable[[ssl.SSLContext], None] = tls13 if version == "1.3" else tls12("ECDHE-ECDSA-AES128-GCM-SHA256")
    os.environ["SSLKEYLOGFILE"] = str(keylog)
    async with https_relay(tune) as (url, rec):
        target = Target(name="mock", url=url, auth="basic", username=USER, password=PASSWORD, verify_tls=False,
                        is_mock=True)
        async with WSManClient(target) as client:
            while sum(len(c[3]) for c in rec.chunks) < megabytes * 1e6:
                await client.enumerate_all(wmi_uri("Win32_Service"), max_elements=20)
    del os.environ["SSLKEYLOGFILE"]
    return bytes(tls_pcapng(rec))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tls", choices=("1.3", "1.2"), default="1.3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wmh-bench-tls-") as tmp:
        keys, capture = Path(tmp) / "keys.log", Path(tmp) / "https.pcapng"
        capture.write_bytes(asyncio.run(record(args.mb, args.tls, keys)))
        size = capture.stat().st_size / 1e6
        keylog = read_keylog(keys)

        def decrypt_only() -> int:
            total = 0
            for stream in reassemble(read_frames(capture)):
                if tls_stream(stream):
                    plain, _ = decrypt_tcp_stream(stream, keylog)
                    total += plain.to_server.length + plain.to_client.length
            return total

        t_dec, plain_bytes = best_time(decrypt_only, args.repeat)
        t_check, report = best_time(lambda: check_capture(capture, keylog=keylog, validate=False), args.repeat)
        assert report.passed, "the benchmark capture must check clean"
        print(f"capture: {size:.1f} MB, TLS {args.tls}, {len(report.messages)} HTTP messages, "
              f"{plain_bytes / 1e6:.1f} MB of plaintext")
        print(f"ours, decrypt only:      {size / t_dec:8.1f} MB/s ({t_dec:.3f} s)")
        print(f"ours, check, no XSD:     {size / t_check:8.1f} MB/s ({t_check:.3f} s)")
        tshark = shutil.which("tshark")
        if tshark is None:
            print("tshark decrypt:          skipped (tshark not installed)")
            return
        cmd = [tshark, "-n", "-r", str(capture), "-o", f"tls.keylog_file:{keys}", "-d", "tcp.port==5986,tls",
               "-Y", "http", "-T", "fields", "-e", "http.request.method", "-e", "http.response.code"]
        t_ts, out = best_time(lambda: subprocess.run(cmd, capture_output=True, check=True).stdout, args.repeat)
        print(f"tshark decrypt:          {size / t_ts:8.1f} MB/s ({t_ts:.3f} s, {len(out.splitlines())} HTTP lines)")
        print(f"ratio tshark / ours:     decrypt only {t_ts / t_dec:.1f}x, check {t_ts / t_check:.1f}x")


if __name__ == "__main__":
    main()
