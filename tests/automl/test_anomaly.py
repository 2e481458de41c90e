"""Anomaly detection from normal-only data: detectors, selection, threshold, budget, explanation.

Generated data only, except the opt-in ``shared_data`` test on MIMII.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace

import numpy as np
import pytest

from modelfab.automl import anomaly as A
from modelfab.automl.anomaly import AnomalyModel, aggregate, file_auc, fit_anomaly, partial_auc
from modelfab.automl.budget import Budget
from modelfab.automl.detectors import DETECTORS, detector_from_state, make_detector
from modelfab.errors import InvalidInput

FAST = [A.DEFAULT_CANDIDATE, A._c("gmm", n_components=1, covariance_type="diag"), A._c("mahalanobis"),
        A._c("knn", "heldout", k=5)]


def normal_files(rng, n_files, n_win=10, d=6, file_sd=0.3, corr=False):
    """Windows of normal files: N(file offset, 1), offsets N(0, file_sd) (machine-to-machine variation)."""
    X, g = [], []
    for f in range(n_files):
        off = rng.normal(0, file_sd, d)
        Z = rng.normal(size=(n_win, d)) + off
        if corr:  # feature 1 follows feature 0 closely
            Z[:, 1] = Z[:, 0] + 0.1 * rng.normal(size=n_win)
        X.append(Z)
        g += [f] * n_win
    return np.vstack(X), np.asarray(g)


def window_auc(neg, pos):
    return file_auc(neg, pos)


# ----------------------------------------------------------------------------- detectors
@pytest.mark.parametrize("name", DETECTORS)
def test_detector_separates_shifted_anomalies(name):
    rng = np.random.default_rng(0)
    Xn = rng.normal(size=(400, 8))
    det = make_detector(name).fit(Xn)
    normal = det.score(rng.normal(size=(200, 8)))
    Xa = rng.normal(size=(200, 8))
    Xa[:, :2] += 4.0
    abnormal = det.score(Xa)
    assert normal.shape == (200,) and np.all(np.isfinite(normal))
    assert window_auc(normal, abnormal) > 0.95, name


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_round_trip_without_pickle(name):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    Z = rng.normal(size=(50, 5)) * 2
    det = make_detector(name).fit(X)
    params, arrays = det.to_state()
    json.dumps(params)  # JSON-able
    assert all(a.dtype != object and a.dtype.kind in "biuf" for a in arrays.values())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        loaded = {k: z[k] for k in z.files}
    det2 = detector_from_state(json.loads(json.dumps(params)), loaded)
    np.testing.assert_array_equal(det.score(Z), det2.score(Z))


def test_our_scoring_matches_scikit_learn():
    from sklearn.ensemble import IsolationForest
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(2)
    X, Z = rng.normal(size=(400, 4)), rng.normal(size=(100, 4)) * 1.5
    ours = make_detector("iforest", n_estimators=30, seed=3).fit(X).score(Z)
    ref = -IsolationForest(n_estimators=30, max_samples=256, random_state=3).fit(X).score_samples(Z)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    for ctype in ("diag", "full"):
        ours = make_detector("gmm", n_components=3, covariance_type=ctype).fit(X).score(Z)
        gm = GaussianMixture(3, covariance_type=ctype, reg_covar=1e-3, random_state=0, max_iter=200).fit(X)
        np.testing.assert_allclose(ours, -gm.score_samples(Z) / 4, atol=1e-9)


def test_detector_refuses_bad_input():
    det = make_detector("zmax").fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(InvalidInput):
        det.score(np.zeros((2, 4)))
    with pytest.raises(InvalidInput):
        det.score(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(InvalidInput):
        make_detector("nope")
    with pytest.raises(InvalidInput):
        make_detector("knn", neighbours=3)


def test_aggregations_and_metrics():
    s = np.array([1.0, 5.0, 2.0, 4.0, 3.0])
    assert aggregate(s, "mean") == 3.0 and aggregate(s, "max") == 5.0 and aggregate(s, "median") == 3.0
    assert aggregate(s, "top2") == 4.5 and aggregate(s, "p50") == 3.0
    with pytest.raises(InvalidInput):
        aggregate(s, "avg")
    assert file_auc([0, 1], [2, 3]) == 1.0 and file_auc([2, 3], [0, 1]) == 0.0 and file_auc([1], [1]) == 0.5
    assert partial_auc([0, 1, 2, 3], [5, 6]) == 1.0
    assert partial_auc([5, 6], [0, 1]) == 0.0


# ----------------------------------------------------------------------------- fit_anomaly
def test_fit_normal_only_detects_shifted_files_and_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    X, g = normal_files(rng, 16)
    names = [f"band_{j}" for j in range(X.shape[1])]
    seen = []
    model, board, info = fit_anomaly(X, g, feature_names=names, budget=Budget(30), max_false_alarm=0.05,
                                     progress=seen.append)
    assert len(seen) == len([r for r in board if r["status"] == "ok"]) + 1
    assert "done" in str(getattr(seen[-1], "message", seen[-1]))
    assert board and any(r["selected"] for r in board) and board[0]["selected"]
    assert {"detector", "params", "aggregation", "cv_score", "fit_time_s"} <= set(board[0])
    assert len(info["oof_normal_scores"]) == 16 and info["oof_abnormal_scores"] == []
    assert "synthetic" in info["selection"] and info["threshold_source"].startswith("held-out")
    # new files: 20 normal, 20 with one band up by 3 (in units of within-file sd)
    Xt, gt = normal_files(rng, 40)
    Xt[gt >= 20, 2] += 3.0
    fs = model.file_scores(Xt, gt)
    assert list(fs) == list(range(40))
    s = np.array(list(fs.values()))
    assert file_auc(s[:20], s[20:]) > 0.95
    flagged = model.predict_files(Xt, gt)
    assert sum(flagged[k] for k in range(20, 40)) >= 15  # most faulty files caught
    # save / load without pickle: identical scores and threshold
    model.save(tmp_path)
    again = AnomalyModel.load(tmp_path)
    np.testing.assert_array_equal(model.window_scores(Xt), again.window_scores(Xt))
    assert again.threshold == model.threshold and again.aggregation == model.aggregation
    with np.load(tmp_path / "anomaly.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    # threshold moves without retraining
    moved = model.with_threshold(model.threshold * 10)
    np.testing.assert_array_equal(moved.window_scores(Xt), model.window_scores(Xt))
    assert not any(moved.predict_files(Xt, gt).values()) or moved.threshold > max(s)
    assert moved.false_alarm_rate() == 0.0
    looser = model.with_false_alarm(0.5)
    assert looser.threshold < model.threshold


def test_threshold_honours_false_alarm_rate_on_new_normal_files():
    rng = np.random.default_rng(4)
    X, g = normal_files(rng, 80, n_win=6, d=5)
    rate = 0.1
    model, _, info = fit_anomaly(X, g, budget=Budget(30), max_false_alarm=rate, candidates=FAST)
    # out-of-fold: at most the allowed share of held-out normal files is above the threshold
    assert np.mean(np.asarray(info["oof_normal_scores"]) > model.threshold) <= rate
    Xt, gt = normal_files(rng, 600, n_win=6, d=5)
    fa = np.mean(list(model.predict_files(Xt, gt).values()))
    assert 0.02 <= fa <= rate + 0.04, fa  # honoured, and not uselessly conservative
    strict = model.with_false_alarm(0.02)
    fa2 = np.mean(list(strict.predict_files(Xt, gt).values()))
    assert fa2 <= 0.02 + 0.02 and fa2 < fa


def test_tiny_budget_returns_quickly_with_a_model():
    rng = np.random.default_rng(5)
    X, g = normal_files(rng, 60, n_win=30, d=40)
    t0 = time.perf_counter()
    model, board, info = fit_anomaly(X, g, budget=Budget(0.3))
    took = time.perf_counter() - t0
    assert took < 2.5, took
    assert np.isfinite(model.threshold)
    assert any(r["status"].startswith(("skipped", "stopped")) for r in board)
    assert model.window_scores(X[:5]).shape == (5,)


def test_exhausted_budget_still_returns_the_default_model():
    ticks = iter([0.0] + [1e6] * 10_000)
    budget = Budget(10, clock=lambda: next(ticks))
    rng = np.random.default_rng(6)
    X, g = normal_files(rng, 10)
    model, board, info = fit_anomaly(X, g, budget=budget)
    assert model.detector.name == "zmax"
    assert info["threshold_source"].startswith("training files")
    assert info["notes"] and all(r["status"].startswith("skipped") for r in board)
    assert any(r["status"] == "skipped: budget" for r in board)


def test_semi_supervised_picks_a_detector_that_separates_better():
    """Faults that break a correlation but leave every feature's range normal: zmax cannot see them."""
    rng = np.random.default_rng(7)
    Xn, gn = normal_files(rng, 20, d=4, file_sd=0.2, corr=True)

    def faulty(n_files, start):
        X, g = normal_files(rng, n_files, d=4, file_sd=0.2)
        X[:, 1] = -X[:, 0] + 0.1 * rng.normal(size=len(X))  # same marginal, opposite correlation
        return X, g + start

    Xa, ga = faulty(8, 100)
    X = np.vstack([Xn, Xa])
    g = np.concatenate([gn, ga])
    y = np.concatenate([np.zeros(len(Xn), int), np.ones(len(Xa), int)])
    semi, board, info = fit_anomaly(X, g, y, budget=Budget(30), candidates=FAST)
    plain, _, _ = fit_anomaly(Xn, gn, budget=Budget(30), candidates=[A.DEFAULT_CANDIDATE])
    assert len(info["oof_abnormal_scores"]) == 8 and info["oof_auc"] > 0.95
    # every held-out score names its file: each file once, normal and abnormal apart
    assert sorted(info["oof_abnormal_files"]) == list(range(100, 108))
    assert sorted(info["oof_normal_files"]) == list(range(20))
    assert len(info["oof_normal_files"]) == len(info["oof_normal_scores"])
    assert "AUC" in info["selection"] and semi.detector.name != "zmax"
    Xt, gt = normal_files(rng, 10, d=4, file_sd=0.2, corr=True)
    Xf, gf = faulty(10, 500)
    auc = lambda m: file_auc(list(m.file_scores(Xt, gt).values()), list(m.file_scores(Xf, gf).values()))  # noqa
    assert auc(semi) > 0.95
    assert auc(plain) < 0.8  # the default alone is (nearly) blind to this fault


def test_semi_supervised_feature_weighting_is_used_when_it_helps():
    """Many noisy irrelevant features: weighting by labelled abnormals should win the CV."""
    rng = np.random.default_rng(8)
    d = 40
    Xn, gn = normal_files(rng, 20, d=d, file_sd=0.8)
    Xa, ga = normal_files(rng, 10, d=d, file_sd=0.8)
    Xa[:, 0] += 1.5
    Xa[:, 1] -= 1.5
    X = np.vstack([Xn, Xa])
    g = np.concatenate([gn, ga + 100])
    y = np.concatenate([np.zeros(len(Xn), int), np.ones(len(Xa), int)])
    base = [A.DEFAULT_CANDIDATE, A._c("knn", "heldout", k=5), A._c("gmm", n_components=1, covariance_type="diag")]
    cands = base + [replace(c, weighting=w, keep=k) for c in base for w, k in A.SEMI_VARIANTS]
    model, board, info = fit_anomaly(X, g, y, budget=Budget(60), candidates=cands)
    sel = next(r for r in board if r["selected"])
    default = next(r for r in board if r["detector"] == "zmax" and r["feature_weighting"] == 0
                   and r["feature_keep"] == 1)
    assert sel["feature_weighting"] > 0 or sel["feature_keep"] < 1
    assert info["oof_auc"] > 0.9 and info["oof_auc"] > default["aggregations"]["mean"] + 0.05
    idx = list(model.feature_index)
    if sel["feature_keep"] < 1:
        assert {0, 1} <= set(idx) and len(idx) < d
    else:
        assert set(np.argsort(-model.weights)[:2]) == {idx.index(0), idx.index(1)}


def test_feature_weights_follow_labelled_abnormals():
    rng = np.random.default_rng(12)
    X, g = normal_files(rng, 10, d=10)
    Xa = rng.normal(size=(30, 10))
    Xa[:, 7] += 3.0
    prep = A._fit_prep(X, g, replace(A.DEFAULT_CANDIDATE, weighting=4.0), Xa)
    assert np.argmax(prep.weights) == 7 and prep.weights[7] == pytest.approx(5.0) and prep.weights.min() >= 1.0
    prep = A._fit_prep(X, g, replace(A.DEFAULT_CANDIDATE, keep=0.1), Xa)
    assert list(prep.index) == [7]
    plain = A._fit_prep(X, g, A.DEFAULT_CANDIDATE, None)
    assert np.all(plain.weights == 1.0) and len(plain.index) == 10


def test_explain_points_at_the_perturbed_window_and_feature():
    rng = np.random.default_rng(9)
    X, g = normal_files(rng, 12, d=8)
    names = [f"band_{j}" for j in range(8)]
    model, _, _ = fit_anomaly(X, g, feature_names=names, budget=Budget(20), candidates=[A.DEFAULT_CANDIDATE])
    Xf, _ = normal_files(rng, 1, d=8)
    Xf[6, 3] += 8.0
    times = np.column_stack([np.arange(10) * 0.5, np.arange(10) * 0.5 + 1.0])
    ex = model.explain(Xf, times=times)
    assert ex["top_windows"][0]["index"] == 6
    assert ex["top_windows"][0]["start_s"] == 3.0 and ex["top_windows"][0]["end_s"] == 4.0
    assert ex["top_features"][0]["feature"] == "band_3" and ex["top_features"][0]["z"] > 2
    assert len(ex["window_scores"]) == 10 and ex["file_score"] == pytest.approx(model.file_score(Xf))


def test_single_normal_file_uses_blocks_of_windows():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(80, 3))
    model, _, info = fit_anomaly(X, np.zeros(80, int), budget=Budget(20), candidates=FAST)
    assert any("blocks" in n for n in info["notes"])
    assert set(info["oof_normal_files"]) == {0} and len(info["oof_normal_files"]) == len(info["oof_normal_scores"])
    assert np.isfinite(model.threshold)


def test_fit_refuses_bad_input():
    rng = np.random.default_rng(11)
    X, g = normal_files(rng, 4)
    with pytest.raises(InvalidInput):
        fit_anomaly(X, g[:-1], budget=Budget(5))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInput):
        fit_anomaly(bad, g, budget=Budget(5))
    with pytest.raises(InvalidInput):
        fit_anomaly(X, g, np.full(len(X), 2), budget=Budget(5))
    with pytest.raises(InvalidInput):
        fit_anomaly(X, g, budget=Budget(5), max_false_alarm=0)
    with pytest.raises(InvalidInput):
        fit_anomaly(X[:3], g[:3], budget=Budget(5))
    model, _, _ = fit_anomaly(X, g, budget=Budget(5), candidates=[A.DEFAULT_CANDIDATE])
    with pytest.raises(InvalidInput):
        model.window_scores(X[:, :3])


# ----------------------------------------------------------------------------- real data (opt-in)
@pytest.mark.shared_data
def test_mimii_fan_normal_only_auc():
    from tests.conftest import shared_data

    root = shared_data("mimii_fan_id00")
    sf = pytest.importorskip("soundfile")
    from modelfab.modalities.signal.features import recording_features

    clips = []
    for label, sub in ((0, "normal"), (1, "abnormal")):
        for p in sorted((root / sub).glob("*.wav")):
            x, sr = sf.read(p, dtype="float32")
            F, names = recording_features(x, sr)
            clips.append((label, F.astype(np.float64)))
    normals = [i for i, c in enumerate(clips) if c[0] == 0]
    abn = [i for i, c in enumerate(clips) if c[0] == 1]
    train, test = normals[:8], normals[8:]
    X = np.vstack([clips[i][1] for i in train])
    g = np.concatenate([[i] * len(clips[i][1]) for i in train])
    model, _, _ = fit_anomaly(X, g, feature_names=names, budget=Budget(10))
    s = [model.file_score(clips[i][1]) for i in test + abn]
    assert file_auc(s[:len(test)], s[len(test):]) >= 0.9
