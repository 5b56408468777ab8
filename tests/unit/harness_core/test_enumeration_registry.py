from __future__ import annotations

from harness.targets.mock.enumerations import EnumerationRegistry


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_contexts_expire_after_inactivity():
    clock = FakeClock()
    reg: EnumerationRegistry[int] = EnumerationRegistry(idle_expiry=10, max_contexts=5, clock=clock)
    ctx = reg.open("uri", [1, 2, 3], None, "root/cimv2")
    clock.now = 9
    assert reg.take(ctx.context_id) is ctx
    clock.now = 18.5  # 9.5 s after the last use: still alive
    assert reg.take(ctx.context_id) is ctx
    clock.now = 29
    assert reg.take(ctx.context_id) is None


def test_absolute_expiry_and_release():
    clock = FakeClock()
    reg: EnumerationRegistry[int] = EnumerationRegistry(idle_expiry=100, max_contexts=5, clock=clock)
    ctx = reg.open("uri", [1], None, "root/cimv2", expires_in=5)
    clock.now = 6
    assert reg.take(ctx.context_id) is None
    ctx2 = reg.open("uri", [1], None, "root/cimv2")
    assert reg.release(ctx2.context_id)
    assert not reg.release(ctx2.context_id)


def test_registry_is_bounded_and_evicts_the_oldest():
    reg: EnumerationRegistry[int] = EnumerationRegistry(idle_expiry=100, max_contexts=3)
    ids = [reg.open("uri", [i], None, "ns").context_id for i in range(5)]
    assert len(reg) == 3
    assert reg.take(ids[0]) is None and reg.take(ids[4]) is not None
