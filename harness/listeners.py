"""A thread-safe list of no-argument callbacks: the one fan-out used by the mock's clock, event
source and waiting requests (sans-IO: callbacks run in the notifying thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Listeners:
    """Callbacks added with :meth:`add` (which returns their remover) and called by :meth:`notify`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def add(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` on every :meth:`notify`; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def notify(self) -> None:
        """Call every listener, from this thread (a listener added or removed meanwhile is not
        affected by this round)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


__all__ = ["Listeners"]
