"""Prediction of recordings much longer than the training ones: scored in segments of the training length."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from modelfab.modalities.signal import make_machine_dataset, make_machine_sound
from modelfab.workspace import Workspace

SR = 16000


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    make_machine_dataset(root / "normal", n_normal=12, n_abnormal=0, seconds=3.0, seed=3)
    w = Workspace.init(root / "ws")
    w.import_recordings(root / "normal", "pump", labels="none")
    m = w.train("pump", task="anomaly", budget=6, max_false_alarm=0.05)
    yield m, root
    w.close()


def _long_with_fault(path, seconds=60.0, fault_at=30.0, fault_s=3.0):
    x = make_machine_sound("normal", seconds=seconds, sample_rate=SR, seed=901)
    a, b = int(fault_at * SR), int((fault_at + fault_s) * SR)
    x[a:b] = make_machine_sound("rubbing", seconds=fault_s, sample_rate=SR, seed=902)
    sf.write(str(path), x, SR, subtype="PCM_16")
    return path


def test_long_file_with_short_fault_is_flagged_in_its_segment(model):
    m, root = model
    assert m.manifest["signal"]["median_duration_s"] == 3.0
    path = _long_with_fault(root / "long.wav")
    row = m.predictor.predict_files([path]).iloc[0]
    assert row["segments"] == 20 and "20 segments of 3 s" in row["note"] and "false alarm" in row["note"]
    assert bool(row["is_anomaly"]) and row["score"] > row["threshold"]
    assert "30.0-33.0s" in row["deviating_times"]
    # the whole-file mean (what was reported before) hides the fault
    rec = m.predictor.read(path, "long.wav")
    from modelfab.recordings import featurise

    whole = m.predictor.anomaly.explain(featurise(rec, m.predictor.options).features)["file_score"]
    assert whole <= row["threshold"] < row["score"]
    up = m.predictor.predict_bytes(path.read_bytes(), "long.wav")  # REST predict-file shares the predictor
    assert up["is_anomaly"] and len(up["segment_scores"]) == 20
    assert [s["start_s"] for s in up["segment_scores"] if s["is_anomaly"]] == [30.0]


def test_training_length_file_is_scored_whole_as_before(model):
    m, root = model
    x = make_machine_sound("normal", seconds=5.0, sample_rate=SR, seed=77)  # < 2 x 3 s: one piece
    sf.write(str(root / "five.wav"), x, SR, subtype="PCM_16")
    row = m.predictor.predict_files([root / "five.wav"]).iloc[0]
    rec = m.predictor.read(root / "five.wav", "five.wav")
    from modelfab.recordings import featurise

    assert row["score"] == pytest.approx(m.predictor.anomaly.explain(featurise(rec, m.predictor.options).features)["file_score"])
    assert "note" not in row or not isinstance(row["note"], str)
    assert m.predictor.segments(int(6.5 * SR), SR) == [(0, 3 * SR), (3 * SR, int(6.5 * SR))]  # a short rest joins


def test_file_at_another_rate_is_resampled_with_a_note(model):
    from scipy.signal import resample_poly

    m, root = model
    x = make_machine_sound("normal", seconds=3.0, sample_rate=SR, seed=78)
    sf.write(str(root / "cd.wav"), resample_poly(x, 441, 160).astype(np.float32), 44100)
    sf.write(str(root / "tel.wav"), resample_poly(x, 1, 2).astype(np.float32), 8000)
    out = m.predictor.predict_files([root / "cd.wav", root / "tel.wav"]).set_index("file")
    assert out.loc["cd.wav", "note"].startswith("Recorded at 44,100 Hz, resampled to the model's 16,000 Hz (the "
                                                "resampling filter weakens sound just under 8,000 Hz")
    assert out.loc["tel.wav", "note"].startswith("Recorded at 8,000 Hz, resampled to the model's 16,000 Hz (it holds "
                                                 "no sound above 4,000 Hz")
