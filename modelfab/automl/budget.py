"""One wall-clock budget that every step asks "how much time is left"."""

from __future__ import annotations

import re
import time

from ..errors import InvalidInput

_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(h|min|m|sec|s|)", re.IGNORECASE)


def parse_duration(text: str | int | float) -> float:
    """Parse ``90``, ``"90s"``, ``"2m"``, ``"1m30s"``, ``"1h"`` into seconds (> 0)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower().replace(" ", "")
        pos, seconds, matched = 0, 0.0, False
        while pos < len(raw):
            m = _PART.match(raw, pos)
            if not m or m.end() == pos:
                matched = False
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos, matched = m.end(), True
        if not matched:
            raise InvalidInput(
                f"Budget must be a duration like 60, 90s, 2m or 1m30s; got {text!r}."
            )
    if not seconds > 0:
        raise InvalidInput(f"Budget must be more than 0 seconds; got {text!r}.")
    if seconds > 7 * 24 * 3600:
        raise InvalidInput(f"Budget must be at most 7 days; got {text!r}.")
    return seconds


class Budget:
    """A wall-clock budget started at construction.

    ``left()`` is the time remaining; ``reserve(s)`` sets aside time the
    caller needs at the end (refit, evaluation, packaging) so that
    ``left_for_search()`` never eats into it.
    """

    def __init__(self, seconds: float, *, clock=time.monotonic) -> None:
        if not seconds > 0:
            raise InvalidInput(f"Budget must be more than 0 seconds; got {seconds!r}.")
        self.total = float(seconds)
        self._clock = clock
        self._start = clock()
        self._reserved = 0.0

    def elapsed(self) -> float:
        return self._clock() - self._start

    def left(self) -> float:
        return max(0.0, self.total - self.elapsed())

    def reserve(self, seconds: float) -> None:
        self._reserved = max(0.0, float(seconds))

    def left_for_search(self) -> float:
        return max(0.0, self.left() - self._reserved)

    def promise_left(self) -> float:
        """Seconds until the promise to the user is broken: the budget plus 10% plus 5 s."""
        return self.left() + 0.1 * self.total + 5.0

    def can_start_search(self) -> bool:
        """A search can still start: there is time left, or (when data preparation ran long, e.g. on a
        busy machine) a 1 s search plus ~3 s of evaluation and packaging still fit in the promise."""
        return self.left() >= 1.0 or self.promise_left() >= 4.0

    def expired(self) -> bool:
        return self.left() <= 0.0

    def __repr__(self) -> str:
        return f"Budget(total={self.total:.1f}s, elapsed={self.elapsed():.1f}s)"
