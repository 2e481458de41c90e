"""Holdout blocks for classes with a single recording (pure function, no training)."""

import numpy as np
import pandas as pd

from modelfab.training_signal import _time_blocks


def _windows(file: str, seconds: float, win: float, hop: float) -> pd.DataFrame:
    t0 = np.arange(0, seconds - win + 1e-9, hop)
    return pd.DataFrame({"file": file, "t0": t0, "t1": t0 + win})


def test_time_blocks_fit_the_recording_length():
    frame = pd.concat([_windows("long.wav", 10.0, 1.0, 0.5), _windows("short.wav", 3.0, 1.0, 0.5)],
                      ignore_index=True)
    kept, groups = _time_blocks(frame)
    blocks = pd.Series(groups).groupby(kept["file"].to_numpy()).nunique()
    assert blocks["long.wav"] == 5 and blocks["short.wav"] == 2  # 3 s of 1 s windows: 2 blocks, not 5 empty ones
    assert (kept["file"] == "short.wav").sum() == 4  # only the window across the middle is dropped
    for g in np.unique(groups):  # no window crosses its block: blocks do not overlap in time
        part = kept[groups == g]
        other = kept[(groups != g) & (kept["file"] == part["file"].iloc[0])]
        assert not ((other["t0"].to_numpy()[:, None] < part["t1"].to_numpy()[None, :])
                    & (other["t1"].to_numpy()[:, None] > part["t0"].to_numpy()[None, :])).any()
