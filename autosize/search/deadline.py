"""A study's wall budget, counted from the moment the process started.

A user who gives a study 600 s means 600 s of their clock: interpreter start-up,
imports, data loading, the seed, the baselines and every trial count, and the
trial running at the deadline is cut there (it keeps what it has) instead of
finishing its epochs. :class:`Deadline` is that budget; every training call in
the search layer asks it for the seconds left.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

__all__ = ["Deadline", "process_start"]

_IMPORTED_AT = time.time()


def process_start() -> float:
    """When this process started, in ``time.time()`` seconds.

    On Linux from ``/proc`` (so interpreter start-up and imports count); elsewhere,
    or if ``/proc`` cannot be read, when this module was first imported.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            # Field 22 (starttime, clock ticks after boot); the name in field 2 may hold spaces.
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        started_after_boot = ticks / os.sysconf("SC_CLK_TCK")
        now_after_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        started = time.time() - (now_after_boot - started_after_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT
    # A clock oddity must not move the start after our own import.
    return min(started, _IMPORTED_AT)


@dataclass(frozen=True)
class Deadline:
    """``seconds`` of wall clock from ``start`` (``time.time()``); ``seconds=None``: no limit.

    ``reserve`` is kept free at the end of every training budget :meth:`clip` gives out:
    the time a network needs after training (validation, test, upload), so that the
    trial cut at the deadline still finishes by it.
    """

    start: float
    seconds: float | None
    reserve: float = 0.0

    @classmethod
    def after(cls, seconds: float | None, *, start: float | None = None) -> Deadline:
        return cls(time.time() if start is None else start, seconds)

    @property
    def at(self) -> float:
        return math.inf if self.seconds is None else self.start + self.seconds

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit, never negative)."""
        return max(0.0, self.at - time.time())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def training_left(self) -> float:
        """Seconds left for training: what remains less the reserve (``inf`` without a limit)."""
        return self.remaining() - self.reserve

    def clip(self, max_seconds: float | None) -> float | None:
        """A training budget in seconds no longer than what is left (less the reserve)."""
        left = self.training_left()
        if math.isinf(left):
            return max_seconds
        left = max(left, 1e-3)
        return left if max_seconds is None else min(max_seconds, left)
