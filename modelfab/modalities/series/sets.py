"""A collection of series as read from a file (:class:`SeriesSet`) and the limits every reader checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInput, TooLarge
from ...settings import Settings, human_bytes
from .clean import _LENIENT

TS_EXT = ".ts"
TABLE_EXT = {".csv", ".tsv", ".txt", ".tab", ".parquet", ".pq"}
SERIES_EXTENSIONS = TABLE_EXT | {TS_EXT, ".xlsx", ".xlsm"}


@dataclass
class SeriesSet:
    """Series as ``(n_channels, length_i)`` float64 arrays plus ids and labels (None = unlabelled)."""

    series: list[np.ndarray]
    ids: list[str]
    labels: list | None = None
    channel_names: list[str] = field(default_factory=list)
    format: str = ""
    notes: list[str] = field(default_factory=list)
    time_column: str | None = None  # a long table's time column, when the reader found it by itself (at import)

    @property
    def n_channels(self) -> int:
        arrays = [s for s in self.series if isinstance(s, np.ndarray)]
        return int(arrays[0].shape[0]) if arrays else 0

    @property
    def lengths(self) -> np.ndarray:
        """Time steps per series (0 for a series refused at lenient reading: an InvalidInput in its place)."""
        return np.array([s.shape[1] if isinstance(s, np.ndarray) else 0 for s in self.series], dtype=np.int64)

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """``(data (channels, total), offsets (n+1))``: all series side by side."""
        offsets = np.zeros(len(self.series) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(self.lengths)
        data = np.concatenate(self.series, axis=1) if self.series else np.zeros((0, 0))
        return np.ascontiguousarray(data, dtype=np.float64), offsets


def unpack(data: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [data[:, offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


# ------------------------------------------------------------------ checks
def check_limits(sset: SeriesSet, name: str, settings: Settings) -> SeriesSet:
    if not sset.series:
        raise InvalidInput(f"{name}: no series found.", hint="Check the file and the column options.")
    channels = {s.shape[0] for s in sset.series if isinstance(s, np.ndarray)}
    if len(channels) > 1 and not _LENIENT.get():  # prediction: a series with other channels is refused alone
        raise InvalidInput(f"{name}: series have different numbers of channels ({sorted(channels)}); "
                           "expected the same channels in every series.")
    if sset.n_channels > settings.max_channels:
        raise TooLarge(f"{name}: {sset.n_channels} channels; the limit is {settings.max_channels}.",
                       hint="Set MODELFAB_MAX_CHANNELS to raise it.")
    if len(sset.series) > settings.max_rows:
        raise TooLarge(f"{name}: {len(sset.series):,} series; the limit is {settings.max_rows:,}.")
    sizes = sset.lengths * sset.n_channels
    if _LENIENT.get():  # prediction: a series over the limit is refused alone (SeriesPredictor), the others count
        sizes = sizes[sizes <= settings.max_signal_samples]
    total = int(sizes.sum())
    if total > settings.max_signal_samples:
        raise TooLarge(f"{name}: {total:,} values in all; the limit is {settings.max_signal_samples:,}.",
                       hint="Set MODELFAB_MAX_SIGNAL_SAMPLES to raise it, or import fewer series.")
    if len(set(sset.ids)) != len(sset.ids):
        dup = pd.Series(sset.ids).value_counts()
        raise InvalidInput(f"{name}: series id {dup.index[0]!r} appears {dup.iloc[0]} times; expected unique ids.")
    return sset


def _check_file(path: Path, settings: Settings) -> None:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file.")
    size = path.stat().st_size
    if size > settings.max_import_bytes:
        raise TooLarge(f"{path.name}: {human_bytes(size)} is over the import limit of "
                       f"{human_bytes(settings.max_import_bytes)}.", hint="Set MODELFAB_MAX_IMPORT_BYTES to raise it.")
