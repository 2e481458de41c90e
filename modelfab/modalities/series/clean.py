"""Cleaning one series as it is read: gaps filled (and counted for the import notes), the end of a shorter
series trimmed, and what happens to a series that cannot be used (refused, kept for prediction to refuse it
alone, or left out and listed)."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInput

MIN_LENGTH = 3

_LENIENT = contextvars.ContextVar("modelfab_series_lenient", default=False)


@contextmanager
def lenient_reading():
    """Within: readers keep a series that cannot be cleaned (too short, empty) as it is, for the caller to
    refuse it alone (batch prediction scores the others) instead of refusing the whole file."""
    token = _LENIENT.set(True)
    try:
        yield
    finally:
        _LENIENT.reset(token)


_SKIP = contextvars.ContextVar("modelfab_series_skip", default=None)


@contextmanager
def skipping_bad_series():
    """Within: readers leave out a series that cannot be cleaned (too short, empty, channels of different
    lengths) instead of refusing the whole file; yields the list of reasons, one per series left out."""
    skipped: list[str] = []
    token = _SKIP.set(skipped)
    try:
        yield skipped
    finally:
        _SKIP.reset(token)


@dataclass
class Fill:
    """What cleaning did to the missing values of series (summed over a file for its import notes)."""

    inner: int = 0        # inside a channel: linear interpolation
    edge: int = 0         # before the first or after the last value of a channel: its nearest value
    edge_series: int = 0  # series with such edge values
    example: str = ""     # where the first edge fill was
    inner_series: int = 0  # series with gaps inside
    inner_example: str = ""  # where the first gap inside was

    def add(self, other: "Fill") -> None:
        self.inner += other.inner
        self.edge += other.edge
        self.edge_series += other.edge_series
        self.example = self.example or other.example
        self.inner_series += other.inner_series
        self.inner_example = self.inner_example or other.inner_example

    def notes(self) -> list[str]:
        out = []
        if self.inner:
            where = f" (in {self.inner_series:,} series, e.g. {self.inner_example})" if self.inner_example else ""
            out.append(f"{_values(self.inner)} inside series {_were(self.inner)} filled by linear interpolation"
                       f"{where}.")
        if self.edge:
            out.append(f"{_values(self.edge)} before the first or after the last value of a channel (in "
                       f"{self.edge_series:,} series, e.g. {self.example}) {_were(self.edge)} filled with the "
                       "channel's nearest value, repeated (the empty end of a shorter series is not filled).")
        return out


def _values(n: int) -> str:
    return f"{n:,} missing value{'' if n == 1 else 's'}"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


SHORT_HINT = ("Fix or remove that series; or import with --skip-bad (Python: skip_bad=True) to leave out the "
              "series that cannot be read (the import lists them).")


def _read_clean(x: np.ndarray, where: str, fill: Fill) -> np.ndarray | None:
    """The series cleaned, its fills added to ``fill``; None when it cannot be cleaned and bad series are being
    skipped (its reason is listed); lenient reading keeps it as it is, for the caller to refuse it alone."""
    try:
        x, one = clean_series_detail(x, where)
    except InvalidInput as exc:
        skipped = _SKIP.get()
        if skipped is not None:
            skipped.append(exc.message.rstrip("."))
            return None
        if not _LENIENT.get():
            raise InvalidInput(exc.message, hint=exc.hint or SHORT_HINT) from None
        x = np.asarray(x, dtype=np.float64)
        return x[None, :] if x.ndim == 1 else x
    fill.add(one)
    return x


def empty_label_note(labels: list, column: str) -> list[str]:
    """A note when the label column is empty for every series (training would then have nothing to learn)."""
    if labels and all(v is None for v in labels):
        return [f"The label column {column!r} is empty in all {len(labels):,} series, so they are unlabelled: "
                "check that it is the right column, or label them later (--labels FILE.csv, or the browser)."]
    return []


def skipped_note(skipped: list[str]) -> list[str]:
    if not skipped:
        return []
    shown = "; ".join(skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
    return [f"{len(skipped):,} series could not be imported and were left out: {shown}."]


def clean_series(x: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    """(series, number of values filled): see :func:`clean_series_detail`."""
    x, fill = clean_series_detail(x, where)
    return x, fill.inner + fill.edge


def clean_series_detail(x: np.ndarray, where: str) -> tuple[np.ndarray, Fill]:
    """Steps after the last value of every channel trimmed (unequal lengths: the end of a shorter series); gaps
    inside a channel interpolated; missing values before the first or after the last value of a channel (other
    channels, or the steps before, have values there) set to its nearest value, counted apart."""
    x = np.array(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        what = "a single number" if x.ndim == 0 else f"a {x.ndim}-D array of shape {x.shape}"
        raise InvalidInput(f"{where}: expected a series (a list of numbers, or one list per channel); got {what}.")
    if np.isinf(x).any():
        raise InvalidInput(f"{where}: contains an infinite value; expected finite numbers.")
    present = ~np.isnan(x).all(axis=0)
    if not present.any():
        raise InvalidInput(f"{where}: has no values.", hint="Remove the empty series or fill it in.")
    x = x[:, : int(np.flatnonzero(present)[-1]) + 1]
    fill = Fill()
    if np.isnan(x).any():
        t = np.arange(x.shape[1])
        for c in range(x.shape[0]):
            ok = ~np.isnan(x[c])
            if not ok.any():
                raise InvalidInput(f"{where}: channel {c} has no values.")
            first, last = int(np.flatnonzero(ok)[0]), int(np.flatnonzero(ok)[-1])
            edge = first + (x.shape[1] - 1 - last)
            fill.inner += int((~ok).sum()) - edge
            fill.edge += edge
            x[c] = np.interp(t, t[ok], x[c, ok])
        if fill.edge:
            fill.edge_series, fill.example = 1, where
        if fill.inner:
            fill.inner_series, fill.inner_example = 1, where
    if x.shape[1] < MIN_LENGTH:
        raise InvalidInput(f"{where}: has {x.shape[1]} time step(s); at least {MIN_LENGTH} are needed.")
    return x, fill
