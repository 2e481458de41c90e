"""Reports and plots: every task builds, images are real PNGs, user text is escaped."""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelfab.errors import InvalidInput
from modelfab.evaluation import plots as P
from modelfab.evaluation.metrics import (
    anomaly_metrics,
    classification_metrics,
    curves,
    regression_metrics,
    threshold_above_for_false_alarm,
)
from modelfab.evaluation.report import ReportInput, build_report, write_report

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "evaluation"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC
    return struct.unpack(">II", png[16:24])


def _images(html: str) -> dict[str, bytes]:
    found = re.findall(r'<figure id="fig-([^"]+)">.*?<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html, re.S)
    return {fid: base64.b64decode(b) for fid, b in found}


def _common(**kw):
    base = dict(model="press-defects", version=3, dataset="press line 4", dataset_version=2,
                dataset_hash="sha256:" + "ab12" * 16, budget_s=60.0, elapsed_s=41.5,
                library_versions={"numpy": np.__version__, "scikit-learn": "1.x"}, created_at="2025-01-01T00:00:00Z")
    base.update(kw)
    return ReportInput(**base)


@pytest.fixture(scope="module")
def binary_input():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    s = np.clip(0.35 * y + rng.normal(0.35, 0.18, 400), 0, 1)
    proba = np.column_stack([1 - s, s])
    labels = ["ok", XSS]
    return _common(task="classification", metrics=classification_metrics(y, proba, labels), labels=labels,
                   y_true=y, proba=proba,
                   feature_importance={f"sensor_{i}": float(v) for i, v in enumerate(rng.exponential(1, 40))} | {XSS: 9.0},
                   leaderboard=[{"learner": "lgbm", "score": 0.93, "metric": "roc_auc", "train_time_s": 1.2,
                                 "config": {"n_estimators": np.int64(100), "learning_rate": 0.1}},
                                {"learner": "xgboost", "score": 0.92, "metric": "roc_auc", "train_time_s": 1.0,
                                 "config": {"subsample": 0.34642895775339777, "列": "故障描述"}},
                                {"learner": "rf", "score": 0.91, "metric": "roc_auc", "train_time_s": 2.5,
                                 "config": {"n_estimators": 300, "note": XSS}}],
                   chosen={"learner": "lgbm", "config": {"n_estimators": 100, "learning_rate": 0.1}},
                   notes=["The holdout has only 400 rows."])


@pytest.fixture(scope="module")
def anomaly_input():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(300), np.ones(40)].astype(int)
    scores = np.r_[rng.normal(0, 1, 300), rng.normal(2.2, 1, 40)]
    thr = threshold_above_for_false_alarm(scores[:300], 0.05)  # the models' rule: flagged when score > threshold
    sr = 16000
    t = np.arange(sr * 2) / sr
    sig = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=len(t))
    sig[sr: int(1.4 * sr)] += 0.4 * np.sin(2 * np.pi * 3000 * t[sr: int(1.4 * sr)])
    return _common(task="anomaly", model="fan-anomaly", metrics=anomaly_metrics(y, scores, thr), y_true=y,
                   scores=scores, threshold=thr,
                   worst_cases=[{"file": "fan/anomaly_0003.wav", "score": 5.2, "samples": sig, "sample_rate": sr,
                                 "highlight": [(1.0, 1.4)]},
                                {"file": XSS, "score": 4.9, "samples": np.column_stack([sig, sig]),
                                 "sample_rate": sr, "highlight": None}])


def test_classification_report(binary_input):
    data, html = build_report(binary_input)
    text = json.dumps(data, allow_nan=False)
    assert "onerror" in text  # JSON keeps the raw label (it is data, not markup)
    assert data["task"] == "classification" and data["metrics"]["accuracy"] == binary_input.metrics["accuracy"]
    assert set(data["figures"]) == {"confusion_matrix", "per_class_errors", "roc", "pr", "calibration",
                                    "feature_importance"}
    assert data["curves"]["auc"] == pytest.approx(binary_input.metrics["roc_auc"])
    imgs = _images(html)
    assert set(imgs) == set(data["figures"])
    w, h = _png_size(imgs["confusion_matrix"])
    assert w > 300 and h > 300
    acc = binary_input.metrics["accuracy"]
    assert "On 400 held-out rows" in html and f"right {100 * acc:.1f}% of the time" in html
    from modelfab.evaluation.report import wilson_interval

    lo, hi = wilson_interval(round(acc * 400), 400)  # a small holdout says how sure its rate is
    assert f"(on new rows likely between {100 * lo:.0f}% and {100 * hi:.0f}%, with 400 checked)" in html
    assert wilson_interval(28, 32) == pytest.approx((0.719, 0.950), abs=1e-3)
    assert wilson_interval(32, 32)[1] == 1.0 and wilson_interval(0, 10) == pytest.approx((0.0, 0.278), abs=1e-3)
    assert "The holdout has only 400 rows." in html
    assert "press line 4" in html and "ab12ab12ab12" in html and "<b>42 s</b> of 60 s budget" in html
    assert 'class="chosen"' in html  # the chosen learner is highlighted in the leaderboard
    assert "learning_rate" in html  # chosen config shown
    # settings for people: 4 significant digits, Chinese names as written, a time without seconds and offset
    assert "0.3464" in html and "0.34642895775339777" not in html and "故障描述" in html
    assert "Created: 2025-01-01 00:00 UTC" in html


def test_user_strings_are_escaped(binary_input):
    inp = _common(**{**binary_input.__dict__, "model": "<script>alert('m')</script>", "dataset": "<b>ds</b>"})
    _, html = build_report(inp)
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<b>ds</b>" not in html and "&lt;b&gt;ds&lt;/b&gt;" in html


def test_html_is_self_contained(binary_input, anomaly_input):
    for inp in (binary_input, anomaly_input):
        _, html = build_report(inp)
        assert not re.search(r"(src|href)=\"(https?:)?//", html)
        assert "http://" not in html and "https://" not in html
        assert "<script" not in html


def test_anomaly_report(anomaly_input):
    data, html = build_report(anomaly_input)
    json.dumps(data, allow_nan=False)
    assert set(data["figures"]) == {"scores", "roc", "confusion_matrix", "case_0", "case_1"}
    assert data["worst_cases"][0] == {"file": "fan/anomaly_0003.wav", "score": 5.2, "highlight": [[1.0, 1.4]]}
    assert "samples" not in json.dumps(data["worst_cases"])
    assert 2 <= len(data["operating_points"]) <= 101
    five = next(r for r in data["false_alarm_table"] if r["target"] == 0.05)
    assert five["false_alarm_rate"] <= 0.05 and five["threshold"] == pytest.approx(anomaly_input.threshold)
    # the table and the cards count alike (score > threshold): one false-alarm rate for one threshold
    assert five["false_alarm_rate"] == pytest.approx(anomaly_input.metrics["false_alarm_rate"]) == 0.05
    assert "Items scoring above this are flagged" in html
    m = anomaly_input.metrics
    assert "On 340 held-out items (300 normal, 40 anomalous)" in html
    assert f"misses {100 * m['miss_rate']:.1f}% of anomalies" in html
    imgs = _images(html)
    assert _png_size(imgs["case_0"])[0] > 400
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_regression_report_and_large_scatter():
    rng = np.random.default_rng(2)
    y = rng.normal(50, 10, 8000)
    yp = y + rng.normal(0, 3, 8000)
    m = regression_metrics(y, yp)
    data, html = build_report(_common(task="regression", metrics=m, y_true=y, y_pred=yp,
                                      feature_importance={"temperature": 0.7, "pressure": 0.3}))
    json.dumps(data, allow_nan=False)
    assert data["figures"] == ["residuals", "feature_importance"]
    assert f"off by {m['mae']:,.4g} on average" in html
    assert "5,000 of 8,000" not in html  # subsampling is stated inside the image, not the page
    assert _png_size(_images(html)["residuals"])[0] > 600


def test_degenerate_reports_still_build():
    # classification holdout with one class only
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    data, html = build_report(_common(task="classification", labels=["ok", "bad"], y_true=np.zeros(3, int), proba=p,
                                      metrics=classification_metrics([0, 0, 0], p, ["ok", "bad"])))
    assert "only one class" in html and "roc" not in data["figures"]
    assert "calibration" in data["figures"]
    json.dumps(data, allow_nan=False)
    # anomaly holdout without anomalies, no threshold given explicitly (taken from the metrics)
    s = np.linspace(0, 1, 50)
    data, html = build_report(_common(task="anomaly", y_true=np.zeros(50, int), scores=s,
                                      metrics=anomaly_metrics(np.zeros(50), s, 0.9)))
    assert "no anomalies" in html and "roc" not in data["figures"] and "scores" in data["figures"]
    # metrics only (no arrays): no plots, still a page
    data, html = build_report(_common(task="regression", metrics=regression_metrics([1, 2, 3], [1, 2, 4])))
    assert data["figures"] == [] and "held-out rows" in html
    # nothing at all
    data, html = build_report(_common(task="classification", metrics={}))
    assert "not available" in html


def test_metrics_are_computed_when_missing():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 90)
    p = rng.dirichlet(np.ones(3), 90)
    data, _ = build_report(_common(task="classification", metrics={}, labels=["a", "b", "c"], y_true=y, proba=p))
    assert data["metrics"]["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))


def test_failing_plot_becomes_a_note(anomaly_input):
    bad = _common(**{**anomaly_input.__dict__, "worst_cases": [{"file": "short.wav", "score": 1.0,
                                                                  "samples": np.zeros(3), "sample_rate": 16000}]})
    data, html = build_report(bad)
    assert "case_0" not in data["figures"]
    assert any("could not be drawn" in n for n in data["notes"])


def test_invalid_report_input():
    with pytest.raises(InvalidInput, match="task"):
        build_report(_common(task="clustering", metrics={}))
    with pytest.raises(InvalidInput, match="budget_s"):
        build_report(_common(task="regression", metrics={}, budget_s=-1))


def test_write_report_atomic_and_artifacts(binary_input, anomaly_input, tmp_path):
    html_path, json_path = write_report(binary_input, tmp_path / "r")
    assert html_path.name == "report.html" and json_path.name == "report.json"
    assert json.loads(json_path.read_text())["model"] == "press-defects"
    assert html_path.read_text().startswith("<!DOCTYPE html>")
    write_report(binary_input, tmp_path / "r")  # overwrite in place
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.html", "report.json"]
    assert oct(html_path.stat().st_mode & 0o777) == "0o644"  # readable by others (mkstemp made it 0600)
    # a path ending in .html is the report itself (it made a folder named x.html; an existing one gave an internal
    # FileExistsError), the JSON beside it; an existing file of another kind is refused
    (tmp_path / "existing.html").write_text("old")
    h, j = write_report(binary_input, tmp_path / "existing.html")
    assert (h, j) == (tmp_path / "existing.html", tmp_path / "existing.json") and h.read_text().startswith("<!DOCTYPE")
    h, _ = write_report(binary_input, tmp_path / "sub" / "new.HTML")
    assert h.is_file() and (tmp_path / "sub" / "new.json").is_file()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="expected a folder for report.html"):
        write_report(binary_input, tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    # Rendered copies for a human to look at (test-artifacts/ is gitignored).
    for name, inp in (("classification", binary_input), ("anomaly", anomaly_input)):
        h, _ = write_report(inp, ARTIFACTS / name)
        for fid, png in _images(h.read_text()).items():
            (ARTIFACTS / name / f"{fid}.png").write_bytes(png)


# --------------------------------------------------------------------- plots
def test_each_plot_returns_png():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 300)
    p = rng.dirichlet(np.ones(4), 300)
    m = classification_metrics(y, p, list("abcd"))
    c = curves(y, p, list("abcd"))
    pngs = [
        P.confusion_matrix_png(m["confusion_matrix"], list("abcd")),
        P.confusion_matrix_png(m["confusion_matrix"], list("abcd"), normalize=False),
        P.roc_png(c), P.pr_png(c), P.calibration_png(c), P.per_class_errors_png(m["per_class"]),
        P.feature_importance_png({"$x$": 1.0, "b": -2.0, "c": float("nan")}),
        P.residuals_png([1.0, 2.0, 3.0], [1.1, 1.9, 3.3]),
        P.score_histogram_png(rng.normal(size=100), [], None),
        P.score_histogram_png([1.0, 1.0], [1.0], 1.0),  # constant scores
        P.spectrogram_png(rng.normal(size=(2, 8000)), 8000, "stereo, channels first", [(0.1, 0.2)]),
    ]
    for png in pngs:
        w, h = _png_size(png)
        assert w > 200 and h > 150


@pytest.mark.parametrize("k", [30, 120])
def test_confusion_matrix_many_classes(k):
    cm = np.random.default_rng(k).integers(0, 20, size=(k, k))
    w, h = _png_size(P.confusion_matrix_png(cm, [f"class number {i} with a long name" for i in range(k)]))
    assert 800 < w < 2500 and 800 < h < 2500


def test_plot_bad_input():
    with pytest.raises(InvalidInput):
        P.confusion_matrix_png([[1, 2], [3, 4]], ["a", "b", "c"])
    with pytest.raises(InvalidInput):
        P.roc_png({"binary": True, "roc": None})
    with pytest.raises(InvalidInput):
        P.spectrogram_png(np.zeros(100), 0, "x")
    with pytest.raises(InvalidInput):
        P.feature_importance_png({})


def test_package_import_is_light():
    code = ("import sys, modelfab.evaluation.metrics, modelfab.evaluation.plots, modelfab.evaluation.report; "
            "heavy = [m for m in ('matplotlib', 'sklearn', 'scipy', 'jinja2', 'pandas') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_modality_sections_render_escaped(binary_input):
    from modelfab.evaluation.report import ReportSection

    png = P.feature_importance_png({"a": 1.0, "b": 0.5})
    binary_input.sections = [ReportSection(title="Top terms " + XSS, text="per class",
                                           figures=[(png, "errors " + XSS)],
                                           table=[{"class": "ok", "terms": XSS}, {"class": "ng", "terms": "刮伤"}])]
    data, html = build_report(binary_input)
    assert XSS not in html and "&lt;img" in html
    assert "刮伤" in html and html.count("data:image/png;base64," + base64.b64encode(png).decode()) == 1
    assert data["sections"][0]["title"].startswith("Top terms") and data["sections"][0]["table"][1]["terms"] == "刮伤"


def test_chinese_labels_render_with_an_installed_cjk_font():
    import warnings

    from matplotlib import font_manager

    if not any(k in p.lower() for p in font_manager.findSystemFonts() for k in ("wqy", "notosanscjk", "notosanssc")):
        pytest.skip("no CJK font installed (.ci/run installs fonts-wqy-microhei)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning from matplotlib
        png = P.confusion_matrix_png([[3, 1], [0, 4]], ["正常", "刮伤"])
    assert png[:8] == PNG_MAGIC


def test_missing_glyphs_give_one_warning_not_one_per_character(recwarn):
    import warnings

    from modelfab.evaluation import plots

    plots._missing_glyphs_once.cache_clear()
    warnings.simplefilter("always")
    for _ in range(2):  # characters no installed font has (emoji), in two plots
        fig = plots._figure(2, 1)
        fig.add_subplot().set_title("\U0001F9EA\U0001F9EB\U0001F9EC")
        assert plots._png(fig)[:4] == b"\x89PNG"
    texts = [str(w.message) for w in recwarn.list]
    assert not [t for t in texts if "missing from font" in t], texts
    assert sum("have no glyph in the installed fonts" in t for t in texts) == 1, texts
