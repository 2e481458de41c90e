"""Model packages: hashes verified, pickle refused, zip-slip refused, format versions."""

import io
import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest

from modelfab.artifacts import export_mfpkg, extract_mfpkg, verify_package, write_package
from modelfab.automl.learners import FittedLearner
from modelfab.errors import IntegrityError, InvalidInput


@pytest.fixture
def package(trained, tmp_path):
    _, model = trained
    dst = tmp_path / "pkg"
    shutil.copytree(model.folder, dst)
    return dst


def test_trained_package_is_complete_and_pickle_free(trained):
    _, model = trained
    manifest = verify_package(model.folder)
    assert manifest["format_version"] == 1 and manifest["task"] == "classification"
    files = set(manifest["files"])
    assert {"preprocess.json", "holdout.npz"} <= files
    learner = manifest["learner"]
    members = learner["members"] if learner["format"] == "ensemble" else [learner]
    for m in members:
        assert m["file"] in files
        assert m["format"] in ("lightgbm-text", "xgboost-json", "skops")
    assert manifest["labels"] == ["ok", "defect"]  # binary: the rarer class is the positive one
    assert manifest["data"]["dataset"] == "factory" and len(manifest["data"]["data_sha"]) == 64
    assert "lightgbm" in manifest["library_versions"]
    for rel in files:
        head = (model.folder / rel).read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


def test_tampered_file_is_refused(package):
    rel = "preprocess.json"
    with open(package / rel, "ab") as fh:
        fh.write(b" ")
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        verify_package(package)


def test_pickle_files_are_refused_even_if_hashed(package):
    (package / "model.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(IntegrityError, match="pickle"):
        verify_package(package)
    (package / "model.pkl").unlink()
    # pickle content under an innocent name, with a matching hash in the manifest
    (package / "extra.json").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    manifest = json.loads((package / "manifest.json").read_text())
    write_package(package, {k: v for k, v in manifest.items() if k != "files"})
    with pytest.raises(IntegrityError, match="pickle"):
        verify_package(package)


def test_unlisted_file_and_newer_format_refused(package):
    (package / "notes.txt").write_text("hi")
    with pytest.raises(IntegrityError, match="does not list"):
        verify_package(package)
    (package / "notes.txt").unlink()
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["format_version"] = 99
    (package / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="newer than this modelfab"):
        verify_package(package)


def test_skops_untrusted_types_refused(tmp_path):
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier().fit(np.random.rand(10, 2), [0, 1] * 5)
    sio.dump(clf, tmp_path / "model.skops")
    with pytest.raises(IntegrityError, match="trusted list"):
        FittedLearner.load(tmp_path, "skops", "classification", 2, None)


def test_mfpkg_roundtrip_and_zip_slip(package, tmp_path):
    out = export_mfpkg(package, tmp_path / "m.mfpkg")
    dest = tmp_path / "unpacked"
    dest.mkdir()
    folder = extract_mfpkg(out, dest)
    assert verify_package(folder)["task"] == "classification"

    evil = tmp_path / "evil.mfpkg"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr("../../escape.txt", "owned")
    with pytest.raises(IntegrityError, match="Unsafe path"):
        extract_mfpkg(evil, dest)
    assert not (tmp_path / "escape.txt").exists()
    assert list(dest.iterdir()) == [folder]  # the failed extraction left nothing

    with pytest.raises(InvalidInput, match="not a .mfpkg"):
        (tmp_path / "x.mfpkg").write_bytes(b"not a zip")
        extract_mfpkg(tmp_path / "x.mfpkg", dest)


def test_symlink_entries_refused(package, tmp_path):
    evil = tmp_path / "link.mfpkg"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("model.txt")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    evil.write_bytes(buf.getvalue())
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(IntegrityError, match="symlink"):
        extract_mfpkg(evil, dest)


def test_loaded_model_predicts_like_training(trained, factory_csv):
    import pandas as pd

    ws, model = trained
    df = pd.read_csv(factory_csv).head(50)
    pred = model.predict(df)
    assert list(pred.columns) == ["prediction", "proba_ok", "proba_defect", "confidence"]
    picked = pred[["proba_ok", "proba_defect"]].to_numpy()[range(len(pred)), (pred["prediction"] == "defect").astype(int)]
    assert np.allclose(pred["confidence"], picked)  # the probability of the label it predicted
    assert set(pred["prediction"]) <= {"ok", "defect"}
    assert np.allclose(pred[["proba_defect", "proba_ok"]].sum(axis=1), 1.0)
    again = ws.model("factory:1").predict(df)  # a fresh load from the registry
    assert np.allclose(again["proba_ok"], pred["proba_ok"])


@pytest.mark.parametrize("kind", ["rf", "et", "lgbm", "xgb"])
def test_each_learner_format_roundtrips(tmp_path, kind):
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    from modelfab.automl.learners import from_flaml

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[::7, 1] = np.nan
    y = (X[:, 0] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    est = {"rf": RandomForestClassifier(n_estimators=5), "et": ExtraTreesClassifier(n_estimators=5),
           "lgbm": lgb.LGBMClassifier(n_estimators=5, verbose=-1), "xgb": xgb.XGBClassifier(n_estimators=5)}[kind]
    est.fit(X, y)
    learner = from_flaml(kind, est, "classification", 3)
    learner.save(tmp_path)
    loaded = FittedLearner.load(tmp_path, learner.format, "classification", 3, learner.classes)
    assert np.allclose(loaded.predict_raw(X), est.predict_proba(X), atol=1e-6)


def test_ensemble_roundtrip(tmp_path):
    import lightgbm as lgb
    from sklearn.ensemble import RandomForestClassifier

    from modelfab.automl.learners import EnsembleLearner, from_flaml, load_learner

    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    a = from_flaml("lgbm", lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y), "classification", 2)
    b = from_flaml("rf", RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), "classification", 2)
    ens = EnsembleLearner([a, b], [3, 1], ["lgbm", "rf"], [{}, {}])
    ens.save(tmp_path)
    expected = 0.75 * a.predict_raw(X) + 0.25 * b.predict_raw(X)
    assert np.allclose(ens.predict_raw(X), expected)
    loaded = load_learner(tmp_path, {"format": "ensemble", "members": ens.specs}, "classification", 2)
    assert np.allclose(loaded.predict_raw(X), expected)
    with pytest.raises(IntegrityError, match="missing"):
        load_learner(tmp_path, {"format": "ensemble", "members": [dict(ens.specs[0], file="../x.txt")]}, "classification", 2)
