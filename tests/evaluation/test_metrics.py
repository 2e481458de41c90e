"""Metric values against sklearn and hand computation, plus degenerate holdouts."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from modelfab.errors import InvalidInput
from modelfab.evaluation.metrics import (
    anomaly_metrics,
    anomaly_operating_points,
    classification_metrics,
    curves,
    partial_auc,
    regression_metrics,
    threshold_above_for_false_alarm,
    threshold_for_false_alarm,
)


@pytest.fixture(autouse=True)
def _no_warnings():
    """Degenerate inputs must not spray sklearn/numpy warnings either."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _proba(rng, y, k, signal=1.5):
    logits = rng.normal(size=(len(y), k))
    logits[np.arange(len(y)), y] += signal
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


# ------------------------------------------------------------ classification
@pytest.mark.parametrize("k", [2, 5])
def test_classification_matches_sklearn(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 500)
    p = _proba(rng, y, k)
    labels = [f"c{i}" for i in range(k)]
    m = classification_metrics(y, p, labels)
    pred = (p[:, 1] >= 0.5).astype(int) if k == 2 else p.argmax(axis=1)
    assert m["n"] == 500
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=range(k)).tolist()
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=range(k))
    for c, name in enumerate(labels):
        pc = m["per_class"][name]
        assert (pc["precision"], pc["recall"], pc["f1"], pc["support"]) == pytest.approx((prec[c], rec[c], f1[c], sup[c]))
    if k == 2:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
        assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p[:, 1]))
        assert m["threshold"] == 0.5
    else:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
        assert m["average_precision"] is None and m["threshold"] is None
    assert m["labels"] == labels
    json.dumps(m, allow_nan=False)


def test_binary_threshold_hand_computed():
    y = [0, 0, 1, 1]
    p1 = np.array([0.1, 0.6, 0.4, 0.9])
    p = np.column_stack([1 - p1, p1])
    m = classification_metrics(y, p, ["ok", "bad"])
    assert m["accuracy"] == 0.5
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]
    m = classification_metrics(y, p, ["ok", "bad"], threshold=0.35)
    assert m["threshold"] == 0.35
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["accuracy"] == 0.75
    assert m["per_class"]["bad"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                                     "support": 2}
    assert m["roc_auc"] == pytest.approx(0.75)  # pairs: (0.4>0.1), (0.9>both), 0.4<0.6 -> 3/4
    # MCC by hand: tp=2 tn=1 fp=1 fn=0 -> (2*1-1*0)/sqrt(3*2*1*2)
    assert m["mcc"] == pytest.approx(2 / math.sqrt(12))


def test_single_class_holdout_gives_none_not_crash():
    p = np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6]])
    m = classification_metrics([0, 0, 0], p, ["ok", "bad"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["roc_auc"] is None and m["average_precision"] is None and m["mcc"] is None
    assert m["per_class"]["bad"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    assert m["per_class"]["ok"]["recall"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)  # only the class that is present counts
    # all positive holdout: AP defined, AUC not
    m = classification_metrics([1, 1], [[0.2, 0.8], [0.6, 0.4]], ["ok", "bad"])
    assert m["roc_auc"] is None and m["average_precision"] == pytest.approx(1.0)


def test_class_missing_from_holdout_and_constant_predictions():
    rng = np.random.default_rng(0)
    y = rng.choice([0, 1, 3], size=200)  # class 2 never occurs
    p = _proba(rng, y, 4)
    m = classification_metrics(y, p, ["a", "b", "c", "d"])
    present = [0, 1, 3]
    expected = np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in present])
    assert m["roc_auc"] == pytest.approx(expected)
    assert m["per_class"]["c"]["support"] == 0 and m["per_class"]["c"]["recall"] is None
    # constant predictions: everything predicted "a"
    const = np.tile([0.7, 0.1, 0.1, 0.1], (200, 1))
    m = classification_metrics(y, const, ["a", "b", "c", "d"])
    assert m["accuracy"] == pytest.approx(np.mean(y == 0))
    assert m["mcc"] == 0.0
    assert m["roc_auc"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["precision"] is None and m["per_class"]["b"]["f1"] == 0.0
    assert m["per_class"]["c"]["f1"] is None  # never true, never predicted: undefined, not averaged
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, np.zeros_like(y), average="macro", zero_division=0))
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"y_true": [0, 2], "proba": [[0.5, 0.5], [0.5, 0.5]], "labels": ["a", "b"]}, "codes"),
    ({"y_true": [0, 1], "proba": [[0.5, 0.5]], "labels": ["a", "b"]}, "shape"),
    ({"y_true": [0, 1], "proba": [[0.5, np.nan], [0.5, 0.5]], "labels": ["a", "b"]}, "NaN"),
    ({"y_true": [0, 1], "proba": [[0.5, 0.5], [0.5, 0.5]], "labels": ["a", "a"]}, "unique"),
    ({"y_true": [0, 1], "proba": [[0.5, 0.5], [0.5, 0.5]], "labels": ["a"]}, "two labels"),
    ({"y_true": [], "proba": np.zeros((0, 2)), "labels": ["a", "b"]}, "empty"),
    ({"y_true": [0, 1], "proba": [[0.5, 0.5], [0.5, 0.5]], "labels": ["a", "b"], "threshold": 1.5}, "threshold"),
    ({"y_true": [0, 1], "proba": [[0.2, 0.3, 0.5]] * 2, "labels": ["a", "b", "c"], "threshold": 0.5}, "two classes"),
])
def test_classification_rejects_bad_input(kwargs, match):
    kwargs = dict(kwargs)
    with pytest.raises(InvalidInput, match=match):
        classification_metrics(kwargs.pop("y_true"), kwargs.pop("proba"), kwargs.pop("labels"), **kwargs)


# ---------------------------------------------------------------- regression
def test_regression_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 300)
    yp = y + rng.normal(0, 1, 300)
    m = regression_metrics(y, yp)
    assert m["n"] == 300
    assert m["r2"] == pytest.approx(skm.r2_score(y, yp))
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, yp)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, yp))
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, yp))
    assert m["max_error"] == pytest.approx(skm.max_error(y, yp))


def test_regression_degenerate():
    m = regression_metrics([0, 2, 4], [1, 1, 5])
    assert m["mape"] == pytest.approx((1 / 2 + 1 / 4) / 2)  # the zero target is skipped
    assert m["max_error"] == 1.0 and m["mae"] == 1.0
    assert regression_metrics([0, 0], [1, 2])["mape"] is None
    assert regression_metrics([3, 3, 3], [3, 2, 4])["r2"] is None  # constant truth
    one = regression_metrics([5.0], [4.0])
    assert one["r2"] is None and one["rmse"] == 1.0
    with pytest.raises(InvalidInput, match="rows"):
        regression_metrics([1, 2], [1])
    with pytest.raises(InvalidInput, match="NaN"):
        regression_metrics([1, np.nan], [1, 2])


# -------------------------------------------------------------------- curves
def test_curves_binary_downsampled_and_exact_endpoints():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 5000)
    p1 = np.clip(0.3 * y + rng.random(5000) * 0.7, 0, 1)
    c = curves(y, np.column_stack([1 - p1, p1]), ["ok", "bad"])
    assert c["binary"] and c["positive_label"] == "bad"
    roc, pr = c["roc"], c["pr"]
    assert 50 < len(roc["fpr"]) <= 200 and len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"])
    assert len(pr["precision"]) == len(pr["recall"]) <= 200
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert all(math.isfinite(t) for t in roc["thresholds"])
    assert c["auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    # the downsampled curve still integrates to (almost) the exact AUC
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(c["auc"], abs=0.01)
    cal = c["calibration"]
    assert sum(cal["count"]) == 5000 and len(cal["mean_predicted"]) <= 10
    json.dumps(c, allow_nan=False)


def test_calibration_hand_computed_and_single_class():
    p1 = np.array([0.05, 0.15, 0.15, 0.95])
    c = curves([0, 0, 1, 1], np.column_stack([1 - p1, p1]), ["a", "b"])
    assert c["calibration"] == {"mean_predicted": pytest.approx([0.05, 0.15, 0.95]),
                                "fraction_positive": [0.0, 0.5, 1.0], "count": [1, 2, 1]}
    c = curves([0, 0], [[0.9, 0.1], [0.6, 0.4]], ["a", "b"])
    assert c["roc"] is None and c["pr"] is None and c["auc"] is None
    assert c["calibration"]["fraction_positive"] == [0.0, 0.0]


def test_curves_multiclass_limits_to_ten_classes():
    rng = np.random.default_rng(3)
    k = 12
    y = np.concatenate([np.repeat(np.arange(10), 30), [10, 11]])  # classes 10 and 11 are the rarest
    p = _proba(rng, y, k)
    c = curves(y, p, [f"c{i}" for i in range(k)])
    assert not c["binary"]
    assert list(c["per_class"]) == [f"c{i}" for i in range(10)]
    assert c["omitted_classes"] == ["c10", "c11"]
    assert c["per_class"]["c3"]["auc"] == pytest.approx(skm.roc_auc_score(y == 3, p[:, 3]))


# ------------------------------------------------------------------- anomaly
@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.1, 0.333, 1.0])
def test_threshold_for_false_alarm_honours_rate_and_is_smallest(rate):
    s = np.random.default_rng(4).normal(size=997)
    t = threshold_for_false_alarm(s, rate)
    assert np.mean(s >= t) <= rate + 1e-12
    lower = s[s < t]
    if len(lower):  # the next candidate below would break the promise
        assert np.mean(s >= lower.max()) > rate


def test_threshold_for_false_alarm_ties_and_bad_input():
    s = np.array([5.0, 5.0, 5.0, 1.0])
    t = threshold_for_false_alarm(s, 0.5)  # 3 of 4 tie at the top: threshold must lie above them
    assert t > 5.0 and np.mean(s >= t) == 0.0
    assert threshold_for_false_alarm(s, 0.75) == 5.0
    assert threshold_for_false_alarm(s, 1.0) == 1.0
    with pytest.raises(InvalidInput):
        threshold_for_false_alarm(s, 1.5)
    with pytest.raises(InvalidInput):
        threshold_for_false_alarm([], 0.1)


def _hand_example():
    # normals score 0..9, anomalies 9.5, 8.5 and 3 (a tie with the normal 3)
    y = np.r_[np.zeros(10), np.ones(3)].astype(int)
    s = np.r_[np.arange(10.0), [9.5, 8.5, 3.0]]
    return y, s


def test_anomaly_metrics_hand_computed():
    y, s = _hand_example()
    m = anomaly_metrics(y, s, threshold=5.0, max_fpr=0.1)
    # AUC: 9.5 beats 10 normals, 8.5 beats 9, 3 beats 3 and ties 1 -> 22.5 / 30
    assert m["auc"] == pytest.approx(22.5 / 30)
    # FPR in [0, 0.1]: TPR is 1/3 (only 9.5 above the top normal) -> area 0.1/3, standardised 1/3
    assert m["pauc"] == pytest.approx(1 / 3)
    assert anomaly_metrics(y, s, 5.0, max_fpr=0.2)["pauc"] == pytest.approx((0.1 / 3 + 0.1 * 2 / 3) / 0.2)
    # McClish value is sklearn's, and is the documented transform of the raw partial area
    assert m["pauc_mcclish"] == pytest.approx(skm.roc_auc_score(y, s, max_fpr=0.1))
    a, p = m["pauc"] * 0.1, 0.1
    assert m["pauc_mcclish"] == pytest.approx(0.5 * (1 + (a - p * p / 2) / (p - p * p / 2)))
    assert m["pauc"] != pytest.approx(m["pauc_mcclish"])
    # operating point at 5.0 (flagged when score > threshold, as the packages flag): normals 6..9 flagged (4/10),
    # the normal at exactly 5.0 not; anomalies 9.5 and 8.5 flagged (2/3)
    assert (m["n"], m["n_normal"], m["n_anomaly"]) == (13, 10, 3)
    assert m["confusion_matrix"] == [[6, 4], [1, 2]]
    assert m["false_alarm_rate"] == 0.4
    assert m["miss_rate"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(2 / 6) and m["f1"] == pytest.approx(4 / 9)
    assert m["threshold"] == 5.0
    json.dumps(m, allow_nan=False)


def test_pauc_matches_dcase_definition_on_random_scores():
    rng = np.random.default_rng(5)
    normal, anomaly = rng.normal(0, 1, 200), rng.normal(1, 1, 50)
    y = np.r_[np.zeros(200), np.ones(50)]
    s = np.r_[normal, anomaly]
    # DCASE: mean over the floor(p * N-) highest-scoring normals of the share of anomalies above each
    top = np.sort(normal)[::-1][:20]
    expected = np.mean([(anomaly > v).mean() for v in top])
    assert partial_auc(y, s, 0.1) == pytest.approx(expected)
    assert anomaly_metrics(y, s, 0.0)["pauc"] == pytest.approx(expected)


def test_anomaly_metrics_one_class_and_bad_input():
    m = anomaly_metrics([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.9], threshold=0.5)
    assert m["auc"] is None and m["pauc"] is None and m["pauc_mcclish"] is None
    assert m["false_alarm_rate"] == 0.25 and m["miss_rate"] is None and m["recall"] is None
    assert m["precision"] == 0.0 and m["f1"] == 0.0
    m = anomaly_metrics([1, 1], [0.1, 0.9], threshold=2.0)  # nothing flagged, all anomalies
    assert m["false_alarm_rate"] is None and m["miss_rate"] == 1.0 and m["precision"] is None
    with pytest.raises(InvalidInput, match="0 \\(normal\\)"):
        anomaly_metrics([0, 2], [0.1, 0.2], 0.5)
    with pytest.raises(InvalidInput, match="rows"):
        anomaly_metrics([0, 1], [0.1], 0.5)
    with pytest.raises(InvalidInput, match="threshold"):
        anomaly_metrics([0, 1], [0.1, 0.2], float("nan"))


def test_anomaly_operating_points_monotone_and_complete():
    y, s = _hand_example()
    pts = anomaly_operating_points(y, s, n=21)
    assert 2 <= len(pts) <= 21
    thr = [p["threshold"] for p in pts]
    fa = [p["false_alarm_rate"] for p in pts]
    miss = [p["miss_rate"] for p in pts]
    assert thr == sorted(thr) and len(set(thr)) == len(thr)
    assert fa[0] == 1.0 and miss[0] == 0.0 and fa[-1] == 0.0 and miss[-1] == 1.0
    assert all(a >= b for a, b in zip(fa, fa[1:])) and all(a <= b for a, b in zip(miss, miss[1:]))
    for p in pts:  # each point agrees with a brute-force count
        assert p["false_alarm_rate"] == pytest.approx(np.mean(s[y == 0] >= p["threshold"]))
        assert p["miss_rate"] == pytest.approx(np.mean(s[y == 1] < p["threshold"]))
    only_normal = anomaly_operating_points([0, 0, 0], [1.0, 2.0, 3.0])
    assert all(p["miss_rate"] is None for p in only_normal)
    json.dumps(pts, allow_nan=False)


def test_a_perfect_log_loss_is_positive_zero_not_minus_zero():
    """-mean(log 1) is -0.0, which reports, JSON and `models list` showed as "-0.000"."""
    m = classification_metrics(np.array([0, 1, 1]), np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), ["a", "b"])
    assert m["log_loss"] == 0.0 and math.copysign(1.0, m["log_loss"]) == 1.0
    assert '"log_loss": 0.0' in json.dumps(m)


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.1, 0.333, 1.0])
def test_threshold_above_flags_at_most_the_rate_and_uses_all_of_it(rate):
    """The anomaly models' rule (flagged: score > threshold): at most floor(rate x n) normal items above, and
    exactly that many when there are no ties (80 scores at 5 %: 4 flagged, not 3)."""
    for n in (80, 997):
        s = np.random.default_rng(n).normal(size=n)
        t = threshold_above_for_false_alarm(s, rate)
        assert int(np.sum(s > t)) == int(np.floor(rate * n + 1e-9))
    ties = np.array([5.0, 5.0, 5.0, 1.0])
    assert np.sum(ties > threshold_above_for_false_alarm(ties, 0.5)) <= 2
    with pytest.raises(InvalidInput):
        threshold_above_for_false_alarm([], 0.1)

