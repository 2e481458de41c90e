"""Recordings at several sample rates in one import: resampled to the most common rate, with a note."""

from __future__ import annotations

import soundfile as sf
from scipy.signal import resample_poly

from modelfab.modalities.signal import make_machine_sound
from modelfab.workspace import Workspace


def test_mixed_rates_are_noted_and_the_most_common_rate_wins(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(2):  # sorted first, but the fewer
        x = make_machine_sound("normal", seconds=2.0, sample_rate=16000, seed=i)
        sf.write(str(folder / f"a_{i}.wav"), resample_poly(x, 3, 1), 48000, subtype="PCM_16")
    for i in range(3):
        sf.write(str(folder / f"b_{i}.wav"), make_machine_sound("normal", seconds=2.0, seed=10 + i), 16000,
                 subtype="PCM_16")
    w = Workspace.init(tmp_path / "ws")
    try:
        ds = w.import_recordings(folder, "mixed", labels="none").dataset
        assert ds.schema["sample_rate"] == 16000
        assert ("The recordings have different sample rates: 16,000 Hz (3 files), 48,000 Hz (2 files). All were "
                "resampled to 16,000 Hz, the most common rate") in " ".join(ds.stats["notes"])
        (folder / "b_2.wav").unlink()  # a tie: the higher rate (resampling down loses nothing)
        tie = w.import_recordings(folder, "tie", labels="none").dataset
        assert tie.schema["sample_rate"] == 48000 and "resampled to 48,000 Hz" in " ".join(tie.stats["notes"])
    finally:
        w.close()


def test_missing_sample_rate_is_one_message_naming_the_option(tmp_path):
    import numpy as np
    import pytest

    from modelfab.errors import InvalidInput

    folder = tmp_path / "vib"
    folder.mkdir()
    for i in range(5):
        np.save(folder / f"run_{i}.npy", make_machine_sound("normal", seconds=1.0, sample_rate=12000, seed=i))
    w = Workspace.init(tmp_path / "ws")
    try:
        for skip_bad in (False, True):  # --skip-bad used to lose the reason ("None of the 5 recordings could be read")
            with pytest.raises(InvalidInput, match=r"5 of 5 recordings \(\.npy: run_0\.npy, run_1\.npy, run_2\.npy, "
                                                   r"\.\.\.\) store no sample rate") as ei:
                w.import_recordings(folder, "vib", labels="none", skip_bad=skip_bad)
            assert "--sample-rate" in ei.value.hint and str(ei.value).count("expected a sample rate") == 0
        for f in folder.iterdir():
            f.write_bytes(b"junk")
        with pytest.raises(InvalidInput, match=r"None of the 5 recordings .* could be read \(run_0\.npy and 4 more: "
                                               r"expected a NumPy \.npy file"):
            w.import_recordings(folder, "vib", labels="none", sample_rate=12000, skip_bad=True)
    finally:
        w.close()
