"""Server-side enumeration contexts (DSP0226 8; MS-WSMV 3.1.4.10-3.1.4.13).

A context holds the remaining result set of one Enumerate. Contexts expire after a period of
inactivity (MS-WSMV 3.1.4.10: the server may invalidate a context; Windows does so after the
operation timeout) and are bounded in number so an abandoned client cannot exhaust memory.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class EnumerationContext(Generic[T]):
    """The remaining items of one enumeration and how they are rendered."""

    context_id: str
    resource_uri: str
    items: Sequence[T]
    mode: str | None
    position: int = 0
    last_used: float = 0.0
    expires_at: float | None = None
    namespace: str = "root/cimv2"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def exhausted(self) -> bool:
        return self.position >= len(self.items)


class EnumerationRegistry(Generic[T]):
    """Thread-safe map of live enumeration contexts with inactivity expiry."""

    def __init__(self, idle_expiry: float, max_contexts: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_expiry = idle_expiry
        self._max = max_contexts
        self._clock = clock
        self._contexts: OrderedDict[str, EnumerationContext[T]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def idle_expiry(self) -> float:
        """Seconds of inactivity after which a context expires (``winrm/config`` EnumerationTimeoutms)."""
        return self._idle_expiry

    @idle_expiry.setter
    def idle_expiry(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("the enumeration time-out must be positive")
        with self._lock:
            self._idle_expiry = seconds

    def open(self, resource_uri: str, items: Sequence[T], mode: str | None, namespace: str,
             expires_in: float | None = None) -> EnumerationContext[T]:
        now = self._clock()
        ctx = EnumerationContext(
            context_id="uuid:" + str(uuid.uuid4()).upper(),
            resource_uri=resource_uri,
            items=items,
            mode=mode,
            last_used=now,
            expires_at=None if expires_in is None else now + expires_in,
            namespace=namespace,
        )
        with self._lock:
            self._expire(now)
            while len(self._contexts) >= self._max:
                self._contexts.popitem(last=False)
            self._contexts[ctx.context_id] = ctx
        return ctx

    def take(self, context_id: str) -> EnumerationContext[T] | None:
        """The live context with this id (touching it), or None if unknown or expired."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            ctx = self._contexts.get(context_id)
            if ctx is not None:
                ctx.last_used = now
                self._contexts.move_to_end(context_id)
            return ctx

    def release(self, context_id: str) -> bool:
        with self._lock:
            return self._contexts.pop(context_id, None) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._contexts)

    def _expire(self, now: float) -> None:
        dead = [
            cid for cid, ctx in self._contexts.items()
            if now - ctx.last_used > self._idle_expiry or (ctx.expires_at is not None and now > ctx.expires_at)
        ]
        for cid in dead:
            del self._contexts[cid]
