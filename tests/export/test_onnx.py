"""ONNX export: one graph (preprocessing + model) that reproduces the package's predictions.

Packages are built directly for each learner format (fit on preprocessed
features, written with ``write_package``), plus one trained end to end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from modelfab.artifacts import write_package  # noqa: E402
from modelfab.automl.learners import EnsembleLearner, FittedLearner  # noqa: E402
from modelfab.errors import IntegrityError, InvalidInput  # noqa: E402
from modelfab.export import export_onnx  # noqa: E402
from modelfab.export.onnx import (  # noqa: E402
    ExportMismatch, build_model, check_export, datetime_features, input_spec, onnx_name,
)
from modelfab.modalities.tabular import TabularPreprocessor, infer_schema  # noqa: E402
from modelfab.predictor import load_predictor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5


# -- building packages ------------------------------------------------------------------------

def frame(n=400, seed=0, k=2, regression=False, big=False, dt=False, text=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "temp": rng.normal(50, 10, n).round(2),
        "press ure (bar)": rng.normal(0, 1, n) * (1e4 if big else 1),
        "line": rng.choice(["A", "B", "C", "温度"], n),
        "ok": rng.choice(["yes", "no"], n),
    })
    if dt:
        df["when"] = pd.to_datetime(rng.integers(1_500_000_000, 1_700_000_000, n), unit="s")
    if text:
        df["note"] = [" ".join(rng.choice(["motor", "hot", "noise", "belt", "slow", "oil"], 8)) + f" #{i}"
                      for i in range(n)]
    df.loc[rng.random(n) < 0.1, "temp"] = np.nan
    df.loc[rng.random(n) < 0.1, "line"] = None
    score = (df["temp"].fillna(50) - 50) / 10 + df["press ure (bar)"] / (1e4 if big else 1) + (df["line"] == "B")
    if dt:
        score = score + (df["when"].dt.month > 6)
    if regression:
        df["y"] = score * (1000 if big else 1) + rng.normal(0, 0.1, n) + (12345.0 if big else 0.0)
    else:
        cuts = np.quantile(score, np.linspace(0, 1, k + 1)[1:-1])
        df["y"] = np.array(["bad", "good", "meh", "x4"][:k])[np.searchsorted(cuts, score)]
    return df


def fresh_rows(df: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """New rows like the training ones, with missing values and unseen categories."""
    rng = np.random.default_rng(seed)
    rows = frame(n=len(df), seed=seed, dt="when" in df, text="note" in df,
                 big=bool(df["press ure (bar)"].abs().max() > 100)).drop(columns="y")
    rows.loc[rng.random(len(rows)) < 0.1, "line"] = "never-seen"
    rows.loc[rng.random(len(rows)) < 0.1, "press ure (bar)"] = np.nan
    rows.loc[rng.random(len(rows)) < 0.1, "ok"] = None
    if "when" in rows:
        rows.loc[rng.random(len(rows)) < 0.1, "when"] = pd.NaT
    return rows


def _fit(fmt, make, X, y, task, n_classes):
    est = make().fit(X, y)
    obj = est.booster_ if fmt == "lightgbm-text" else est.get_booster() if fmt == "xgboost-json" else (
        est.model if fmt == "mlp-npz" else est)
    classes = [int(c) for c in est.classes_] if hasattr(est, "classes_") else None
    return FittedLearner(fmt, obj, task, n_classes, classes)


def make_package(folder: Path, df: pd.DataFrame, task: str, members: list, weights=None, extra=None,
                 labels=None) -> Path:
    """members: [(format, estimator factory)]; more than one -> an ensemble."""
    folder.mkdir(parents=True)
    pre = TabularPreprocessor().fit(df, infer_schema(df), exclude=("y",))
    X = pre.transform(df)
    if task == "classification":
        labels = labels or sorted(df["y"].unique().tolist())
        y = df["y"].map({v: i for i, v in enumerate(labels)}).to_numpy()
    else:
        labels, y = None, df["y"].to_numpy(float)
    (folder / "preprocess.json").write_text(json.dumps(pre.to_dict()), "utf-8")
    fitted = [_fit(fmt, make, X, y, task, len(labels or [])) for fmt, make in members]
    if len(fitted) > 1:
        learner = EnsembleLearner(fitted, weights or [1.0] * len(fitted), [f for f, _ in members],
                                  [{} for _ in fitted])
        learner.save(folder)
        spec = {"name": "ensemble", "format": "ensemble", "members": learner.specs}
    else:
        file = fitted[0].save(folder)
        spec = {"name": members[0][0], "format": fitted[0].format, "file": file, "classes": fitted[0].classes}
    manifest = {"modality": "tabular", "task": task, "labels": labels, "preprocessor": "preprocess.json",
                "input_schema": {"columns": [{"name": c["name"], "kind": c["kind"]} for c in pre.input_columns]},
                "learner": spec, "data": {"dataset": "t", "version": 1}, **(extra or {})}
    write_package(folder, manifest)
    return folder


def lgbm(**kw):
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if kw.pop("reg", False) else lgb.LGBMClassifier
    return lambda: cls(n_estimators=25, num_leaves=15, min_child_samples=5, verbose=-1, **kw)


def xgbm(**kw):
    import xgboost as xgb

    cls = xgb.XGBRegressor if kw.pop("reg", False) else xgb.XGBClassifier
    return lambda: cls(n_estimators=25, max_depth=4, n_jobs=1, **kw)


def forest(kind, reg=False):
    from sklearn import ensemble

    cls = getattr(ensemble, kind + ("Regressor" if reg else "Classifier"))
    return lambda: cls(n_estimators=15, min_samples_leaf=2, random_state=0, n_jobs=1)


def mlp(reg=False):
    """A network of automl/neural.py, a few epochs on the preprocessed features."""

    class Net:
        def fit(self, X, y):
            from modelfab.automl import neural

            n_classes = 0 if reg else int(np.max(y)) + 1
            trainer = neural._Trainer(X, y, "regression" if reg else "classification", n_classes, seed=0)
            nets = []
            for seed in (0, 1):  # two networks averaged, as finish_mlp keeps them
                trainer.restart(seed)
                for _ in range(5):
                    trainer.epoch()
                nets.append(trainer.arrays())
            self.model = trainer.model(nets)
            if not reg:
                self.classes_ = np.arange(n_classes)
            return self

    return Net


CASES = {
    "lightgbm-binary": (dict(k=2), "classification", [("lightgbm-text", lgbm())]),
    "lightgbm-multiclass": (dict(k=3), "classification", [("lightgbm-text", lgbm())]),
    "xgboost-binary": (dict(k=2), "classification", [("xgboost-json", xgbm())]),
    "xgboost-multiclass": (dict(k=4), "classification", [("xgboost-json", xgbm())]),
    "random-forest": (dict(k=3), "classification", [("skops", forest("RandomForest"))]),
    "extra-trees": (dict(k=2), "classification", [("skops", forest("ExtraTrees"))]),
    "ensemble": (dict(k=3), "classification",
                 [("lightgbm-text", lgbm()), ("xgboost-json", xgbm()), ("skops", forest("ExtraTrees"))]),
    "network-binary": (dict(k=2), "classification", [("mlp-npz", mlp())]),
    "network-multiclass": (dict(k=3), "classification", [("mlp-npz", mlp())]),
    "network-regression": (dict(regression=True, big=True), "regression", [("mlp-npz", mlp(reg=True))]),
    "ensemble-with-network": (dict(k=2), "classification", [("lightgbm-text", lgbm()), ("mlp-npz", mlp())]),
    "lightgbm-regression": (dict(regression=True, big=True), "regression", [("lightgbm-text", lgbm(reg=True))]),
    "xgboost-regression": (dict(regression=True, big=True), "regression", [("xgboost-json", xgbm(reg=True))]),
    "forest-regression": (dict(regression=True, big=True), "regression", [("skops", forest("RandomForest", True))]),
    "ensemble-regression": (dict(regression=True, big=True), "regression",
                            [("xgboost-json", xgbm(reg=True)), ("skops", forest("ExtraTrees", True))]),
}


def score(path: Path, feeds: dict) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


# -- every learner format ---------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_each_format_exports_and_matches(tmp_path, case):
    opts, task, members = CASES[case]
    df = frame(**opts)
    folder = make_package(tmp_path / "pkg", df, task, members, weights=[1.0, 2.0, 1.0][:len(members)])
    out = tmp_path / "model.onnx"
    result = export_onnx(folder, out, model_name="line3", model_version=2)

    assert result["path"] == str(out) and out.is_file()
    assert result["max_abs_diff"] <= TOL and result["n_checked"] >= 1000
    assert result["opset"] == {"ai.onnx": 21, "ai.onnx.ml": 5}
    assert [i["name"] for i in result["inputs"]] == ["temp", "press_ure_bar", "line", "ok"]
    names = [o["name"] for o in result["outputs"]]
    assert names == (["label", "probabilities"] if task == "classification" else ["prediction"])

    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["modelfab.model_name"] == "line3" and meta["modelfab.model_version"] == "2"
    assert json.loads(meta["modelfab.input_names"])["press ure (bar)"] == "press_ure_bar"
    assert len(meta["modelfab.manifest_sha256"]) == 64
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]

    # realistic new rows: missing values, unseen categories
    predictor = load_predictor(folder)
    spec = input_spec(predictor.preprocessor.input_columns)
    rows = fresh_rows(df)
    diff, n = check_export(out, predictor, spec, rows, TOL)
    assert diff <= TOL and n == len(rows)
    if task == "classification":
        assert json.loads(meta["modelfab.labels"]) == predictor.labels


def test_datetime_column_exports_and_matches(tmp_path):
    df = frame(k=2, dt=True)
    folder = make_package(tmp_path / "pkg", df, "classification", [("lightgbm-text", lgbm())])
    result = export_onnx(folder, tmp_path / "m.onnx")
    assert result["max_abs_diff"] <= TOL
    assert {"name": "when", "column": "when", "kind": "datetime", "type": "double", "shape": [None, 1]} in result["inputs"]
    diff, _ = check_export(tmp_path / "m.onnx", load_predictor(folder),
                           input_spec(load_predictor(folder).preprocessor.input_columns), fresh_rows(df), TOL)
    assert diff <= TOL


def test_datetime_features_match_pandas_exactly():
    """year, month, day, dayofweek, hour, epoch_days from epoch seconds, with integer arithmetic in the graph."""
    from onnx import TensorProto, helper

    from modelfab.export.onnx_trees import Graph

    rng = np.random.default_rng(3)
    secs = np.concatenate([
        rng.integers(-5_000_000_000, 7_000_000_000, 3000).astype(float),  # 1811 .. 2191
        rng.uniform(-3e9, 3e9, 500),  # fractional seconds
        [0, -1, 86399, 86400, -86400, -86401, 951_782_400, 951_868_799, 4_107_542_400, -2_208_988_800,
         -9_000_000_000, 9_000_000_000, 1_709_164_800.5],  # epoch edges, leap days 2000/2100, 1900, far dates
    ])
    series = pd.Series(pd.to_datetime(secs, unit="s"))
    series[::97] = pd.NaT
    pre = TabularPreprocessor([{"name": "t", "kind": "datetime"}])
    want = pre.transform(pd.DataFrame({"t": series}))
    g = Graph()
    out = datetime_features(g, "t")
    graph = helper.make_graph(g.nodes, "dt", [helper.make_tensor_value_info("t", TensorProto.DOUBLE, [None, 1])],
                              [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [None, 6])],
                              initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    from modelfab.export.onnx import epoch_seconds

    feed = epoch_seconds(series).reshape(-1, 1)
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"t": feed})[0]
    np.testing.assert_array_equal(got, want)


# -- labels, thresholds, class subsets -------------------------------------------------------

def test_binary_decision_threshold_sets_the_label(tmp_path):
    df = frame(k=2)
    folder = make_package(tmp_path / "pkg", df, "classification", [("xgboost-json", xgbm())],
                          extra={"decision_threshold": 0.2})
    out = tmp_path / "m.onnx"
    export_onnx(folder, out)
    predictor = load_predictor(folder)
    spec = input_spec(predictor.preprocessor.input_columns)
    rows = fresh_rows(df)
    from modelfab.export.onnx import frame_to_feeds

    got = score(out, frame_to_feeds(rows, spec))
    want = predictor.predict(rows)
    assert list(got["label"]) == [str(v) for v in want["prediction"]]
    p1 = got["probabilities"][:, 1]
    between = (p1 >= 0.2) & (p1 < 0.5)
    assert between.any() and (got["label"][between] == "good").all()


def test_estimator_that_saw_a_subset_of_classes(tmp_path):
    df = frame(k=2)
    df["y"] = df["y"].map({"bad": "a", "good": "c"})
    folder = make_package(tmp_path / "pkg", df, "classification", [("skops", forest("RandomForest"))],
                          labels=["a", "b", "c"])
    result = export_onnx(folder, tmp_path / "m.onnx")
    assert result["max_abs_diff"] <= TOL and result["outputs"][1]["shape"] == [None, 3]


def test_single_leaf_trees(tmp_path):
    import lightgbm as lgb

    make = lambda: lgb.LGBMClassifier(n_estimators=10, min_child_samples=25, min_split_gain=2.0, verbose=-1)  # noqa: E731
    folder = make_package(tmp_path / "pkg", frame(k=3, n=60), "classification", [("lightgbm-text", make)])
    dump = lgb.Booster(model_file=str(folder / "model.txt")).dump_model()
    assert any("split_feature" not in t["tree_structure"] for t in dump["tree_info"])
    assert export_onnx(folder, tmp_path / "m.onnx")["max_abs_diff"] <= TOL


# -- a model trained by modelfab itself -------------------------------------------------------

def test_trained_model_exports(tmp_path):
    import modelfab as mf

    df = frame(n=300, k=2, dt=True)
    df.to_csv(tmp_path / "t.csv", index=False)
    ws = mf.Workspace.init(tmp_path / "ws")
    try:
        ds = ws.import_table(tmp_path / "t.csv", name="t").dataset
        model = ws.train(ds, target="y", budget=4)
        result = export_onnx(model.folder, tmp_path / "m.onnx", model_name=model.name, model_version=model.version)
        assert result["max_abs_diff"] <= TOL
        check = fresh_rows(df)
        result = export_onnx(model.folder, tmp_path / "m2.onnx", check_data=check)
        assert result["n_checked"] == len(check) and result["max_abs_diff"] <= TOL
    finally:
        ws.close()


# -- refusals and atomic writes ---------------------------------------------------------------

def test_text_columns_are_refused_clearly(tmp_path):
    folder = make_package(tmp_path / "pkg", frame(k=2, text=True), "classification", [("lightgbm-text", lgbm())])
    with pytest.raises(InvalidInput, match=r"text column\(s\) 'note'.*cannot be computed with standard ONNX"):
        export_onnx(folder, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == [tmp_path / "pkg"]


def test_other_estimators_are_refused_clearly(tmp_path):
    from sklearn.linear_model import LogisticRegression

    folder = make_package(tmp_path / "pkg", frame(k=2).fillna({"temp": 50.0, "line": "A"}), "classification",
                          [("skops", lambda: LogisticRegression(max_iter=200))])
    with pytest.raises(InvalidInput, match="LogisticRegression cannot be exported"):
        export_onnx(folder, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_tampered_package_is_refused(tmp_path):
    folder = make_package(tmp_path / "pkg", frame(k=2), "classification", [("lightgbm-text", lgbm())])
    with open(folder / "model.txt", "a", encoding="utf-8") as fh:
        fh.write("\n")
    with pytest.raises(IntegrityError, match="sha256"):
        export_onnx(folder, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_failed_check_leaves_no_file_and_keeps_an_old_one(tmp_path):
    # XGBoost's own sigmoid is float32, so a zero tolerance cannot hold: the check must fail cleanly.
    folder = make_package(tmp_path / "pkg", frame(k=2), "classification", [("xgboost-json", xgbm())])
    out = tmp_path / "out" / "m.onnx"
    with pytest.raises(ExportMismatch, match="does not reproduce"):
        export_onnx(folder, out, tolerance=0.0)
    assert not out.exists() and list(out.parent.iterdir()) == []
    out.write_bytes(b"previous export")
    with pytest.raises(ExportMismatch):
        export_onnx(folder, out, tolerance=0.0)
    assert out.read_bytes() == b"previous export" and len(list(out.parent.iterdir())) == 1


def test_check_data_must_have_the_columns(tmp_path):
    folder = make_package(tmp_path / "pkg", frame(k=2), "classification", [("lightgbm-text", lgbm())])
    with pytest.raises(InvalidInput, match="missing column"):
        export_onnx(folder, tmp_path / "m.onnx", check_data=pd.DataFrame({"temp": [1.0]}))
    assert not (tmp_path / "m.onnx").exists()


def test_input_names_are_c_identifiers_and_unique():
    taken: set[str] = set()
    names = [onnx_name(c, taken) for c in ["temp", "press ure (bar)", "温度", "1st", "label", "temp", "_mf_x", "a-b"]]
    assert names == ["temp", "press_ure_bar", "column", "c_1st", "c_label", "temp_2", "c_mf_x", "a_b"]
    assert all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n) for n in names)


def test_graph_is_one_model_with_documented_io(tmp_path):
    folder = make_package(tmp_path / "pkg", frame(k=3, dt=True), "classification", [("lightgbm-text", lgbm())])
    predictor = load_predictor(folder)
    model, _ = build_model(predictor, input_spec(predictor.preprocessor.input_columns))
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert types == {"temp": 11, "press_ure_bar": 11, "line": 8, "ok": 11, "when": 11}  # double / string
    assert all(len(i.type.tensor_type.shape.dim) == 2 for i in model.graph.input)
    assert {o.name: o.type.tensor_type.elem_type for o in model.graph.output} == {"label": 8, "probabilities": 1}
    assert {n.op_type for n in model.graph.node} >= {"TreeEnsemble", "LabelEncoder", "Concat", "Softmax"}


# -- docs/onnx.md stays true ------------------------------------------------------------------

def _docs_block() -> str:
    text = (ROOT / "docs" / "onnx.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/onnx.md should hold exactly one python example"
    return blocks[0]


def _run_docs_example(folder: Path, work: Path, rows: pd.DataFrame) -> None:
    """Export ``folder``, write ``rows`` as new_rows.csv, run the docs example without modelfab and compare its
    answers with the package's own on the same file."""
    work.mkdir()
    export_onnx(folder, work / "model.onnx")
    rows.to_csv(work / "new_rows.csv", index=False)
    script = ("import sys\nsys.modules['modelfab'] = None  # the example must not need modelfab\n"
              + _docs_block() + "\nscored.to_csv('scored.csv', index=False)\n")
    (work / "score.py").write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "score.py"], cwd=work, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(work / "scored.csv", dtype={"prediction": str})
    want = load_predictor(folder).predict(pd.read_csv(work / "new_rows.csv"))
    assert list(got["prediction"]) == [str(v) for v in want["prediction"]]
    proba = [c for c in want.columns if c.startswith("proba_")]
    assert list(got.columns) == ["prediction", *proba]
    assert np.abs(got[proba].to_numpy() - want[proba].to_numpy()).max() <= TOL


def test_docs_example_scores_with_onnxruntime_alone(tmp_path):
    df = frame(k=3, dt=True)
    folder = make_package(tmp_path / "pkg", df, "classification", [("lightgbm-text", lgbm())])
    rows = fresh_rows(df)
    rows["when"] = rows["when"].dt.strftime("%Y-%m-%d %H:%M:%S")
    _run_docs_example(folder, tmp_path / "run", rows)


def _plant_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as a German plant writes it: '50,3 °C', '1.486,70' (thousands dots), dates dd.mm.yyyy, ja/nein."""
    out = df.copy()
    out["temp"] = [None if v != v else f"{v:.2f} °C".replace(".", ",") for v in df["temp"]]
    out["press ure (bar)"] = [None if v != v else f"{v * 1000:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
                              for v in df["press ure (bar)"]]
    out["when"] = [None if v is pd.NaT or v != v else v.strftime("%d.%m.%Y %H:%M") for v in df["when"]]
    out["ok"] = df["ok"].map({"yes": "ja", "no": "nein"})
    return out


def test_docs_example_reads_comma_numbers_units_and_day_first_dates_as_modelfab(tmp_path):
    # the example read '50,3 °C' and '1.486,70' with pd.to_numeric (missing) and 03.04.2026 as March 4
    df = _plant_text(frame(k=2, dt=True))
    folder = make_package(tmp_path / "pkg", df, "classification", [("lightgbm-text", lgbm())])
    formats = {c["name"]: c.get("number_format") for c in load_predictor(folder).input_columns}
    assert formats["temp"] == {"decimal": ",", "unit": "°C"} and formats["press ure (bar)"]["decimal"] == ","
    rows = _plant_text(fresh_rows(frame(k=2, dt=True)))
    rows.loc[:4, "temp"] = ["70.25", "abc", "7,0 K", "-1,5 °C", "12,5"]  # a decimal point, no number, another unit
    rows.loc[5:7, "when"] = ["03.04.2026 10:00", "2026-04-03T10:00:00Z", "03.04.2026"]
    _run_docs_example(folder, tmp_path / "run", rows)


def test_docs_yes_no_words_are_modelfabs():
    import ast

    from modelfab.modalities.tabular import FALSE_WORDS, TRUE_WORDS

    tree = ast.parse(_docs_block())
    words = {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name) and t.id in ("TRUE", "FALSE")}
    assert words == {"TRUE": TRUE_WORDS, "FALSE": FALSE_WORDS}
