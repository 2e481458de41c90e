"""Feature sets at import (``features=``, ``--features``): stored with the dataset, used by training and prediction."""

from __future__ import annotations

import numpy as np
import pytest

from modelfab.errors import InvalidInput
from modelfab.modalities.signal import make_machine_sound
from modelfab.modalities.signal.features import feature_names
from modelfab.recordings import SignalOptions, featurise, load_signal_tables, resolve_options
from modelfab.training_signal import BAGGED_LEARNERS
from modelfab.workspace import Workspace
from tests.conftest import cli_json

SR = 12000
KINDS = ("normal", "impacts", "imbalance", "rubbing")


def _machine(folder, *, machine_id: int, rpm: float, gain: float, offset: float, seed: int):
    """One .npy vibration recording per condition, as a sensor with its own gain and DC offset records it."""
    folder.mkdir(parents=True)
    for i, kind in enumerate(KINDS):
        x = make_machine_sound(kind, seconds=3.0, sample_rate=SR, rpm=rpm, seed=seed + i, machine_id=machine_id)
        np.save(folder / f"{kind}_{machine_id}.npy", gain * x.astype(np.float64) + offset)
    return folder


def test_resolve_options_expands_presets_and_fixes_the_vibration_window():
    vib = resolve_options(SignalOptions(feature_sets=("vibration",)))
    assert vib.feature_sets == ("spectral", "envelope", "bearing") and vib.window_s == 0.25
    assert vib.window(SR) == (3000, 1500)
    own = resolve_options(SignalOptions(feature_sets=("vibration",), window_s=1.0))
    assert own.window_s == 1.0  # an explicit window wins
    default = resolve_options(SignalOptions())
    assert default == SignalOptions() and default.window(SR) == (SR, SR // 2)  # the sound default is unchanged
    assert resolve_options(SignalOptions(feature_sets=("sound", "bearing"))).window_s is None
    with pytest.raises(InvalidInput, match="presets"):
        resolve_options(SignalOptions(feature_sets=("vibrato",)))


def test_vibration_preset_flows_through_import_train_predict(tmp_path):
    train_dir = _machine(tmp_path / "a", machine_id=0, rpm=1500, gain=1.0, offset=0.0, seed=10)
    test_dir = _machine(tmp_path / "b", machine_id=1, rpm=1560, gain=4.0, offset=0.7, seed=50)
    w = Workspace.init(tmp_path / "ws")
    try:
        ds = w.import_recordings(train_dir, "vib", labels=r"regex:^([a-z]+)_", sample_rate=SR,
                                 features="vibration").dataset
        assert ds.schema["feature_names"] == feature_names("vibration") and ds.n_cols == 53
        assert ds.options["feature_sets"] == ["spectral", "envelope", "bearing"] and ds.options["window_s"] == 0.25
        assert ds.n_rows == 4 * 23  # 3 s, 0.25 s windows every 0.125 s
        again = w.import_recordings(train_dir, "vib", labels=r"regex:^([a-z]+)_", sample_rate=SR,
                                    features=("spectral", "envelope", "bearing"))
        assert not again.created  # the preset and its sets spelled out are the same import
        m = w.train("vib", task="classification", budget=10)
        assert m.manifest["signal"]["options"]["feature_sets"] == ["spectral", "envelope", "bearing"]
        assert m.manifest["learner"]["name"] in BAGGED_LEARNERS  # one recording per class
        assert any("bagged trees" in n for n in m.manifest["training"]["notes"])
        assert m.manifest["learner"]["config"]["n_estimators"] >= 32  # grown from the search's tiny forest
        # prediction featurises exactly as the import did (same sets, same 0.25 s windows)
        p = m.predictor
        stored, _ = load_signal_tables(w, ds)
        rec = p.read(train_dir / "impacts_0.npy", "impacts_0.npy")
        again_feats = featurise(rec, p.options).features
        assert np.array_equal(again_feats, stored.loc[stored.file == "impacts_0.npy", p.feature_names].to_numpy())
        own = p.predict_files([train_dir])
        assert (own["label"] == own["file"].str.split("_").str[0]).mean() >= 0.75
        other = p.predict_files([test_dir])  # another machine, sensor gain and offset: runs, labels from the set
        assert (other["error"] == "").all() and set(other["label"]) <= set(KINDS)
    finally:
        w.close()


def test_cli_import_features(tmp_path):
    data = _machine(tmp_path / "a", machine_id=0, rpm=1500, gain=1.0, offset=0.0, seed=3)
    w = Workspace.init(tmp_path / "ws")
    w.close()
    res = cli_json("data", "import", str(data), "--name", "v", "--sample-rate", str(SR), "--labels", "none",
                   "--features", "vibration", "--workspace", str(w.root))
    assert res["options"]["feature_sets"] == ["spectral", "envelope", "bearing"] and res["options"]["window_s"] == 0.25
    assert res["stats"]["windows"] == 4 * 23
    again = Workspace.open(w.root)
    try:
        with pytest.raises(InvalidInput, match="vibes"):  # (the CLI turns this into a one-line error)
            again.import_recordings(data, sample_rate=SR, features="vibes")
    finally:
        again.close()
