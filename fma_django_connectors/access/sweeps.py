"""Clean-ups a process runs now and then, not on every request: at most once per interval per process."""

from __future__ import annotations

import threading


class PeriodicSweep:
    """Says when a clean-up is due: the first call after ``interval_seconds`` since the last one (thread-safe)."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self.last = 0.0
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        """True (and counted as run) when the clean-up is due at ``now``, seconds since the epoch."""
        with self._lock:
            if now - self.last < self.interval_seconds:
                return False
            self.last = now
            return True
