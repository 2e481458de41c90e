"""Cutting a recording into fixed-length, overlapping analysis windows.

Default window (see :func:`default_window`): **1 s long, 0.5 s hop** at any
rate of 256 Hz or more; 256 samples (hop 128) below that.

Why 1 s for both sound and vibration: the envelope spectrum (bearing
features) then has 1 Hz resolution, enough to separate the ball-pass and
ball-spin frequencies of typical bearings (CWRU drive end at ~1750 rpm:
BPFO ~107 Hz, BSF ~141 Hz, BPFI ~162 Hz, shaft 29 Hz), and one window holds
~30 shaft revolutions and ~100 defect impacts, so statistics such as
kurtosis are stable. For 16 kHz machine sound, 1 s holds 30 short
(64 ms) frames for log-mel statistics, the usual scale for anomalous-sound
detection (DCASE). A 10 s recording gives 19 windows; samples after the last
full window are dropped.
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInput

MIN_WINDOW = 64


def default_window(sample_rate: int) -> tuple[int, int]:
    """(win, hop) in samples: 1 s / 0.5 s (at least 256 / 128 samples)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise InvalidInput(f"expected a positive whole sample rate in Hz, got {sample_rate!r}.",
                           hint="Pass e.g. --sample-rate 16000.")
    win = max(int(sample_rate), 256)
    return win, win // 2


def n_windows(n_samples: int, win: int, hop: int) -> int:
    """How many full windows :func:`frame_windows` returns (0 if too short)."""
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


def frame_windows(samples, win: int, hop: int, *, source: str | None = None,
                  sample_rate: int | None = None) -> np.ndarray:
    """(n_windows, win) read-only view of ``samples`` (no copy).

    Raises InvalidInput if the signal is shorter than one window.
    ``source``/``sample_rate`` only make the error message more useful.
    """
    x = np.asarray(samples)
    who = f"{source}: " if source else ""
    for name, v in (("win", win), ("hop", hop)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise InvalidInput(f"{who}expected {name} as a positive number of samples, got {v!r}.")
    if win < MIN_WINDOW:
        raise InvalidInput(f"{who}expected a window of at least {MIN_WINDOW} samples, got {win}.",
                           hint="Use a longer window.")
    if x.ndim != 1:
        raise InvalidInput(f"{who}expected a 1-D (mono) signal, got shape {x.shape}.", hint="Pick one channel first.")
    if len(x) < win:
        secs = (f" ({len(x) / sample_rate:.3g} s; a window is {win / sample_rate:.3g} s)" if sample_rate else "")
        raise InvalidInput(f"{who}expected at least {win} samples for one window, got {len(x)}{secs}.",
                           hint="Drop recordings that are too short, or use a shorter window.")
    return np.lib.stride_tricks.sliding_window_view(x, int(win))[:: int(hop)]


def window_starts(n_samples: int, win: int, hop: int, sample_rate: int) -> np.ndarray:
    """Start time (s) of each window, e.g. to show where in a recording an anomaly is."""
    return np.arange(n_windows(n_samples, win, hop)) * (hop / float(sample_rate))
