"""Enumerate + Pull of a large result set through the mock's WS-Man service, with tracemalloc.

The store is filled with N Win32_Environment instances (Name, UserName, VariableValue), then one
Enumerate (MS-WSMV 3.1.4.8; DSP0226 8.2) and Pulls of ``--page`` items (DSP0226 8.4) run until
EndOfSequence, in process (no HTTP), with tracemalloc tracing only that phase. A mock that holds
the result set lazily shows the same peak for every N; one that materialises the result set at
Enumerate shows a peak proportional to N. The figures for several N in the same run are the
comparison (the peer is the smaller N).

Run: python benchmarks/bench_enumeration.py [--sizes 10000,100000] [--page 500]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import pywbem

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

ENVIRONMENT = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Environment"
NS = "root/cimv2"


def filled_store(n: int) -> CimStore:
    store = default_store()
    for i in range(n):
        store.create_instance(NS, pywbem.CIMInstance("Win32_Environment", properties={
            "Name": f"WMH_BENCH_{i:07d}", "UserName": "<SYSTEM>", "VariableValue": f"value-{i:07d}-" + "x" * 24}))
    return store


def enumerate_all(service: WSManService, page: int) -> tuple[int, int]:
    """(items, round trips) of Enumerate + Pull until EndOfSequence."""
    who = Principal("bench")
    header = Header(action=Action.ENUMERATE, resource_uri=ENVIRONMENT)
    status, body = service.handle(msg.build_enumerate_request(header, msg.EnumerateRequest()), who)
    assert status == 200, body[:500]
    context = msg.parse_enumerate_response(parse_envelope(body)).context
    items, trips = 0, 1
    while context is not None:
        status, body = service.handle(msg.build_pull_request(
            Header(action=Action.PULL, resource_uri=ENVIRONMENT), msg.PullRequest(context, page)), who)
        assert status == 200, body[:500]
        result = msg.parse_pull_response(parse_envelope(body))
        items += len(result.items)
        trips += 1
        context = None if result.end_of_sequence else result.context
    return items, trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated instance counts")
    parser.add_argument("--page", type=int, default=500, help="MaxElements per Pull")
    args = parser.parse_args()
    print(f"{'N':>8} {'fill s':>8} {'enum s':>8} {'items/s':>9} {'pulls':>6} {'peak MiB':>9} {'peak B/item':>12}")
    for n in (int(x) for x in args.sizes.split(",")):
        start = time.perf_counter()
        store = filled_store(n)
        fill = time.perf_counter() - start
        service = WSManService(store, MockConfig(password="bench"))
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        items, trips = enumerate_all(service, args.page)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        total = items
        print(f"{n:>8} {fill:>8.1f} {elapsed:>8.1f} {total / elapsed:>9.0f} {trips:>6} {peak / 2**20:>9.1f} "
              f"{peak / max(total, 1):>12.0f}")
        del service, store
        gc.collect()


if __name__ == "__main__":
    main()
