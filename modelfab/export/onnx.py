"""Export a tabular model package as ONE ONNX graph: preprocessing + model (+ ensemble).

Graph inputs are the model's input columns, one ``[None, 1]`` tensor each:
numeric and boolean columns as double (booleans as 0/1, NaN = missing),
categorical columns as string (unknown or missing -> NaN code), datetime
columns as double epoch seconds UTC (NaN = missing). Outputs: ``label``
(string ``[None]``) and ``probabilities`` (float ``[None, k]``, manifest label
order) for classification; ``prediction`` (double ``[None, 1]``) for regression.

Everything runs in double precision with each learner's own split rule (see
:mod:`.onnx_trees`). After writing, the graph is scored with onnxruntime on
check rows and compared with the package's own predictor; the file only
appears at ``out`` if the two agree within ``tolerance``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import MANIFEST, verify_package
from ..errors import InvalidInput, ModelfabError, UnsupportedFormat

OPSET = 21  # ai.onnx; released with ai.onnx.ml 5, whose TreeEnsemble computes in double
ML_OPSET = 5
IR_VERSION = 10
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "epoch_days")
OUTPUT_NAMES = ("label", "probabilities", "prediction")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_ABS_SECONDS = 1e13  # |epoch seconds| beyond this (~317,000 years) is treated as missing
_SHIFT_ERAS = 30  # 400-year eras added so integer division is floor division for any date after -10,000


class ExportMismatch(ModelfabError):
    """The exported graph does not reproduce the package's predictions."""

    code = "export_mismatch"
    http_status = 500
    exit_code = 1


# Why a model of another kind has no ONNX graph (said when it is asked for one).
NO_ONNX_BECAUSE = {
    "series": "the ROCKET transform (random dilated convolutions with pooling) has no ONNX converter",
    "image": "what it computes has no ONNX converter: a classifier's texture features (scikit-image LBP, GLCM, "
             "Gabor), a defect detector's per-position Gaussians over the EfficientNet-Lite0 features (or its patch "
             "k-NN)",
    "signal": "its audio and vibration features (librosa, scipy) have no ONNX converter",
}


# What the members of a series model compute, by the start of their names (manifest ``series.members``).
_SERIES_PARTS = (
    ("minirocket", "the ROCKET transform (random dilated convolutions with pooling)"),
    ("multirocket", "the ROCKET transform (random dilated convolutions with pooling)"),
    ("features", "the series feature extraction that feeds its LightGBM (distribution, trend, autocorrelation, "
                 "crossings and spectral shape of each channel, computed with numpy)"),
)


def no_onnx_reason(manifest: dict) -> str:
    """Why a package of another modality has no ONNX graph, naming what this model computes (a series model
    says which of its members' transforms has no converter)."""
    modality = manifest.get("modality")
    if modality == "series":
        names = [str(m.get("name", "")) for m in (manifest.get("series") or {}).get("members") or []]
        parts = list(dict.fromkeys(what for n in names for start, what in _SERIES_PARTS if n.startswith(start)))
        if parts:
            return f"{' and '.join(parts)} {'have' if len(parts) > 1 else 'has'} no ONNX converter"
    return NO_ONNX_BECAUSE.get(modality, "no ONNX converter covers its feature extraction")


def export_onnx(folder: Path, out: Path, *, check_data: pd.DataFrame | None = None, tolerance: float = 1e-5,
                model_name: str | None = None, model_version: int | str | None = None, n_check: int = 2000,
                seed: int = 0) -> dict:
    """Write the package at ``folder`` as a single ONNX model at ``out`` and check it.

    Returns ``{"path", "max_abs_diff", "n_checked", "inputs", "outputs", "opset"}``.
    Raises :class:`UnsupportedFormat` (an ``InvalidInput``) for what cannot be
    exported exactly and :class:`ExportMismatch` if the check fails; on any
    error nothing is left at ``out``.
    """
    from ..predictor import TabularPredictor
    from ..storage.blobs import sha256_file

    folder, out = Path(folder), Path(out)
    if out.is_dir():
        raise InvalidInput(f"{out} is a folder; give the path of the .onnx file to write.")
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1):
        raise InvalidInput(f"tolerance must be a number in [0, 1); got {tolerance!r}.")
    if not (isinstance(n_check, int) and n_check >= 1):
        raise InvalidInput(f"n_check must be a positive number of rows; got {n_check!r}.")
    manifest = verify_package(folder)
    if manifest.get("modality", "tabular") != "tabular":
        from ..modalities import registry as modality_registry

        exporter = modality_registry.onnx_exporter(manifest.get("modality"))
        if exporter is not None:
            return exporter(folder, out, manifest, model_name=model_name, model_version=model_version)
        modality = manifest.get("modality")
        why = no_onnx_reason(manifest)
        raise UnsupportedFormat(f"Only table models export to ONNX; this one is for {modality!r} data: {why}.",
                                hint="Serve it over REST with `modelfab serve` (POST /v1/models/NAME/predict), or "
                                     "export its package (`modelfab export MODEL --format mfpkg`) to run it with "
                                     "modelfab on another machine.")
    if manifest.get("task") not in ("classification", "regression"):
        raise UnsupportedFormat(f"Only classification and regression models export to ONNX; this one is "
                                f"{manifest.get('task')!r}.")
    predictor = TabularPredictor(folder, manifest)
    spec = input_spec(predictor.preprocessor.input_columns)
    model, split_values = build_model(predictor, spec)
    meta = {
        "modelfab.format": "modelfab-onnx/1",
        "modelfab.task": predictor.task,
        "modelfab.labels": json.dumps(predictor.labels, default=str),
        "modelfab.manifest_sha256": sha256_file(folder / MANIFEST),
        "modelfab.inputs": json.dumps([{k: c[k] for k in ("column", "name", "kind", "type", "number_format") if k in c}
                                       for c in spec],
                                      ensure_ascii=False),
        "modelfab.input_names": json.dumps({c["column"]: c["name"] for c in spec}, ensure_ascii=False),
        "modelfab.feature_names": json.dumps(predictor.preprocessor.feature_names, ensure_ascii=False),
        "modelfab.learner": str((manifest.get("learner") or {}).get("name", "")),
    }
    if predictor.threshold is not None and len(predictor.labels or []) == 2:
        meta["modelfab.decision_threshold"] = repr(float(predictor.threshold))
    if model_name is not None:
        meta["modelfab.model_name"] = str(model_name)
    if model_version is not None:
        meta["modelfab.model_version"] = str(model_version)
    data = manifest.get("data") or {}
    if data.get("dataset"):
        meta["modelfab.dataset"] = f"{data['dataset']}:{data.get('version', '')}"
    from onnx import helper

    helper.set_model_props(model, meta)
    import onnx

    onnx.checker.check_model(model, full_check=True)

    if check_data is None:
        check_data = generate_rows(spec, split_values, n=n_check, seed=seed)
    elif not isinstance(check_data, pd.DataFrame) or check_data.empty:
        raise InvalidInput("check_data must be a non-empty DataFrame with the model's input columns.")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(model.SerializeToString())
            fh.flush()
            os.fsync(fh.fileno())
        diff, n = check_export(tmp, predictor, spec, check_data, tolerance)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    outputs = ([{"name": "label", "type": "string", "shape": [None]},
                {"name": "probabilities", "type": "float", "shape": [None, len(predictor.labels or [])]}]
               if predictor.task == "classification" else [{"name": "prediction", "type": "double", "shape": [None, 1]}])
    return {"path": str(out), "max_abs_diff": diff, "n_checked": n,
            "inputs": [dict({k: c[k] for k in ("name", "column", "kind", "type", "number_format") if k in c},
                            shape=[None, 1]) for c in spec],
            "outputs": outputs, "opset": {"ai.onnx": OPSET, "ai.onnx.ml": ML_OPSET}}


# -- inputs ---------------------------------------------------------------------------------

def onnx_name(column: str, taken: set[str]) -> str:
    """The column name itself if it is a C identifier (as the ONNX spec asks), else a cleaned one."""
    name = str(column)
    if not _IDENT.match(name) or name in OUTPUT_NAMES or name.startswith("_mf_"):
        name = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name)).strip("_") or "column"
        if name[0].isdigit() or name in OUTPUT_NAMES or name.startswith("mf_"):
            name = "c_" + name
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def input_spec(columns: list[dict]) -> list[dict]:
    refused = [c["name"] for c in columns if c["kind"] not in ("numeric", "boolean", "categorical", "datetime")]
    if refused:
        kinds = sorted({c["kind"] for c in columns if c["name"] in refused})
        raise UnsupportedFormat(
            f"The model uses {', '.join(kinds)} column(s) {', '.join(repr(r) for r in refused[:5])}; their features "
            "(text length and word count; for free text also Unicode NFKC normalisation, character n-grams within "
            "words and Chinese word segmentation) cannot be computed with standard ONNX operators, so the model "
            "cannot be exported exactly.", hint="Serve it with `modelfab serve`, or retrain without those columns "
            "to export to ONNX.")
    if not columns:
        raise UnsupportedFormat("The model has no input columns; there is nothing to export.")
    taken: set[str] = set()
    spec, offset = [], 0
    for c in columns:
        width = len(DATETIME_PARTS) if c["kind"] == "datetime" else 1
        spec.append({"column": c["name"], "name": onnx_name(c["name"], taken), "kind": c["kind"],
                     "type": "string" if c["kind"] == "categorical" else "double",
                     "categories": c.get("categories"), "features": list(range(offset, offset + width))})
        if c.get("number_format"):  # texts like '70,2' or '12.039 mm' at import: the graph takes the number
            spec[-1]["number_format"] = dict(c["number_format"])
        offset += width
    return spec


# -- graph ----------------------------------------------------------------------------------

def build_model(predictor, spec: list[dict]):
    from onnx import TensorProto, helper

    from .onnx_trees import Graph, learner_graph

    g = Graph()
    inputs, parts = [], []
    for c in spec:
        if c["kind"] == "categorical":
            inputs.append(helper.make_tensor_value_info(c["name"], TensorProto.STRING, ["N", 1]))
            parts.append(g.op("LabelEncoder", [c["name"]], "code", domain="ai.onnx.ml", keys_strings=c["categories"],
                              values_tensor=_tensor(np.arange(len(c["categories"]), dtype=np.float64)),
                              default_tensor=_tensor(np.array([np.nan]))))
        else:
            inputs.append(helper.make_tensor_value_info(c["name"], TensorProto.DOUBLE, ["N", 1]))
            parts.append(datetime_features(g, c["name"]) if c["kind"] == "datetime" else c["name"])
    n_features = len(predictor.preprocessor.feature_names)
    x = g.op("Concat", parts, "features", axis=1) if len(parts) > 1 else g.op("Identity", parts, "features")
    labels = predictor.labels or []
    raw = learner_graph(g, predictor.learner, x, n_features, len(labels))
    if predictor.task == "regression":
        g.op("Identity", [raw], outputs=["prediction"])
        outputs = [helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, ["N", 1])]
    else:
        g.op("Cast", [raw], outputs=["probabilities"], to=TensorProto.FLOAT)
        if len(labels) == 2 and predictor.threshold is not None:
            p1 = g.op("Gather", [raw, g.const(np.array(1, np.int64))], axis=1)
            idx = g.cast(g.op("GreaterOrEqual", [p1, g.const(float(predictor.threshold))]), TensorProto.INT64)
        else:
            idx = g.op("ArgMax", [raw], axis=1, keepdims=0)
        g.op("Gather", [g.const(np.array([str(v) for v in labels], dtype=object), "labels"), idx], outputs=["label"])
        outputs = [helper.make_tensor_value_info("label", TensorProto.STRING, ["N"]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(labels)])]
    graph = helper.make_graph(g.nodes, "modelfab", inputs, outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
                              producer_name="modelfab", producer_version=_version())
    model.ir_version = IR_VERSION
    model.doc_string = ("modelfab tabular model: preprocessing and model in one graph. Inputs: one [N, 1] tensor per "
                        "column (see metadata modelfab.inputs).")
    return model, g.split_values


def datetime_features(g, secs: str) -> str:
    """[N, 1] epoch seconds -> [N, 6] year, month, day, dayofweek (Mon=0), hour, epoch_days; integer civil calendar."""
    from onnx import TensorProto

    i64 = lambda v: g.const(np.array(v, np.int64))  # noqa: E731
    finite = g.op("Less", [g.op("Abs", [secs]), g.const(_MAX_ABS_SECONDS)])  # False for NaN and inf
    nan = g.const(np.nan)
    s = g.cast(g.op("Floor", [g.op("Where", [finite, secs, g.const(0.0)])]), TensorProto.INT64)
    shift_days = 146097 * _SHIFT_ERAS  # a multiple of 7 too, so weekdays are unchanged
    sp = g.op("Add", [s, i64(shift_days * 86400)])  # >= 0, so Div truncation == floor division
    dp = g.op("Div", [sp, i64(86400)])
    hour = g.op("Div", [g.op("Sub", [sp, g.op("Mul", [dp, i64(86400)])]), i64(3600)])
    dow = g.op("Mod", [g.op("Add", [dp, i64(3)]), i64(7)])  # 1970-01-01 was a Thursday (3)
    # civil_from_days (H. Hinnant), on days shifted by whole eras
    z = g.op("Add", [dp, i64(719468)])
    era = g.op("Div", [z, i64(146097)])
    doe = g.op("Sub", [z, g.op("Mul", [era, i64(146097)])])
    yoe = g.op("Div", [g.op("Add", [g.op("Sub", [doe, g.op("Div", [doe, i64(1460)])]),
                                    g.op("Sub", [g.op("Div", [doe, i64(36524)]), g.op("Div", [doe, i64(146096)])])]),
                       i64(365)])
    doy = g.op("Sub", [doe, g.op("Sub", [g.op("Add", [g.op("Mul", [yoe, i64(365)]), g.op("Div", [yoe, i64(4)])]),
                                         g.op("Div", [yoe, i64(100)])])])
    mp = g.op("Div", [g.op("Add", [g.op("Mul", [doy, i64(5)]), i64(2)]), i64(153)])
    day = g.op("Add", [g.op("Sub", [doy, g.op("Div", [g.op("Add", [g.op("Mul", [mp, i64(153)]), i64(2)]), i64(5)])]),
                       i64(1)])
    month = g.op("Where", [g.op("Less", [mp, i64(10)]), g.op("Add", [mp, i64(3)]), g.op("Sub", [mp, i64(9)])])
    year = g.op("Add", [g.op("Add", [yoe, g.op("Mul", [era, i64(400)])]), i64(-400 * _SHIFT_ERAS)])
    year = g.op("Add", [year, g.cast(g.op("LessOrEqual", [month, i64(2)]), TensorProto.INT64)])
    cols = [g.op("Where", [finite, g.cast(v, TensorProto.DOUBLE), nan]) for v in (year, month, day, dow, hour)]
    cols.append(g.op("Where", [finite, g.op("Div", [secs, g.const(86400.0)]), nan]))
    return g.op("Concat", cols, "datetime", axis=1)


def _tensor(arr):
    from onnx import numpy_helper

    return numpy_helper.from_array(arr)


def _version() -> str:
    from ..artifacts import library_versions

    return library_versions().get("modelfab", "0")


# -- feeds, check rows, check -----------------------------------------------------------------

def epoch_seconds(s: pd.Series) -> np.ndarray:
    """Datetimes (or strings) -> float epoch seconds UTC, exactly as the preprocessor reads them."""
    from ..modalities.tabular import _to_datetime

    d = _to_datetime(s)
    return (d - pd.Timestamp("1970-01-01")).dt.total_seconds().astype(float).to_numpy()


def frame_to_feeds(df: pd.DataFrame, spec: list[dict]) -> dict[str, np.ndarray]:
    """A DataFrame of raw columns -> the graph's input tensors."""
    from ..modalities.tabular import _to_bool

    missing = [c["column"] for c in spec if c["column"] not in df.columns]
    if missing:
        raise InvalidInput(f"check_data is missing column(s) the model needs: {', '.join(map(repr, missing[:10]))}.")
    feeds = {}
    for c in spec:
        s = df[c["column"]]
        if c["kind"] == "numeric":
            from ..modalities.tabular_values import to_numbers

            v = to_numbers(s, c.get("number_format")).to_numpy(dtype=np.float64)
        elif c["kind"] == "boolean":
            v = _to_bool(s)
        elif c["kind"] == "datetime":
            v = epoch_seconds(s)
        else:
            absent = next(w for w in ("", "__missing__", "__missing_0__") if w not in c["categories"])
            v = np.array([absent if m else str(x) for x, m in zip(s.astype(str), s.isna())], dtype=object)
        feeds[c["name"]] = np.asarray(v).reshape(-1, 1) if c["kind"] == "categorical" else \
            np.asarray(v, dtype=np.float64).reshape(-1, 1)
    return feeds


def generate_rows(spec: list[dict], split_values: dict[int, set[float]], *, n: int, seed: int = 0) -> pd.DataFrame:
    """Check rows from the input schema: values at, next to and between the model's split
    thresholds, random normals, NaN / missing, unseen categories."""
    rng = np.random.default_rng(seed)
    data = {}
    for c in spec:
        f = c["features"]
        if c["kind"] == "categorical":
            pool = list(c["categories"]) + ["__mf_unseen__", None]
            data[c["column"]] = pd.Series([pool[i] for i in rng.integers(0, len(pool), n)], dtype=object)
            continue
        if c["kind"] == "boolean":
            data[c["column"]] = rng.choice(np.array([0.0, 1.0, np.nan]), n)
            continue
        if c["kind"] == "datetime":
            thr = np.asarray(sorted(split_values.get(f[5], ())), dtype=float) * 86400.0
            secs = _numbers(rng, n, thr, center=1.6e9, scale=3e8)
            secs = np.where(np.abs(secs) < 7e9, secs, np.nan)  # inside pandas' datetime range
            data[c["column"]] = pd.to_datetime(pd.Series(secs), unit="s")
            continue
        thr = np.asarray(sorted(split_values.get(f[0], ())), dtype=float)
        data[c["column"]] = _numbers(rng, n, thr)
    return pd.DataFrame(data)


def _numbers(rng, n: int, thr: np.ndarray, center: float = 0.0, scale: float = 1.0) -> np.ndarray:
    out = rng.normal(center, scale, n)
    if len(thr):
        lo, hi = thr.min(), thr.max()
        span = max(hi - lo, abs(hi), 1e-9)
        pick = thr[rng.integers(0, len(thr), n)]
        near = np.stack([pick, np.nextafter(pick, np.inf), np.nextafter(pick, -np.inf),
                         np.float32(pick).astype(np.float64),
                         np.nextafter(np.float32(pick), np.float32(np.inf)).astype(np.float64),
                         np.nextafter(np.float32(pick), np.float32(-np.inf)).astype(np.float64)])
        which = rng.integers(0, 3, n)
        out = np.where(which == 0, near[rng.integers(0, len(near), n), np.arange(n)],
                       np.where(which == 1, rng.uniform(lo - 0.2 * span, hi + 0.2 * span, n), out))
    out[rng.random(n) < 0.03] = 0.0
    extreme = rng.random(n) < 0.02  # far outside the training range, and below float32's normal range
    out[extreme] = rng.choice(np.array([1e30, -1e30, 1e-40, -1e-40, 1e-300]), int(extreme.sum()))
    out[rng.random(n) < 0.1] = np.nan
    return out


def check_export(path: Path, predictor, spec: list[dict], df: pd.DataFrame, tolerance: float) -> tuple[float, int]:
    """Score ``df`` with onnxruntime and with the package; raise ExportMismatch if they differ."""
    import onnxruntime as ort

    feeds = frame_to_feeds(df, spec)
    expected = np.asarray(predictor.predict_raw(df), dtype=np.float64)
    names = ["prediction"] if predictor.task == "regression" else ["label", "probabilities"]
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        results = sess.run(names, feeds)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportMismatch(f"onnxruntime {ort.__version__} could not run the exported graph ({exc}); nothing "
                             "was written.", hint="It needs ai.onnx.ml opset 5 (TreeEnsemble).") from None
    if predictor.task == "regression":
        got = results[0].astype(np.float64).reshape(-1)
        labels_bad = 0
    else:
        label, proba = results
        got = proba.astype(np.float64)
        want = predictor.predict(df)["prediction"].map(str).to_numpy()
        top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((len(expected), 2))
        clear = (top2[:, 1] - top2[:, 0]) > tolerance  # a near-tie may fall either way within tolerance
        if predictor.threshold is not None and expected.shape[1] == 2:
            clear = np.abs(expected[:, 1] - predictor.threshold) > tolerance
        labels_bad = int(((label.astype(str) != want) & clear).sum())
    if got.shape != expected.shape:
        raise ExportMismatch(f"The ONNX graph returns shape {got.shape}; the model returns {expected.shape}.")
    both_nan = np.isnan(got) & np.isnan(expected)
    delta = np.where(both_nan, 0.0, np.abs(got - expected))
    diff = float(np.nanmax(np.where(np.isnan(delta), np.inf, delta))) if delta.size else 0.0
    if diff > tolerance or labels_bad:
        row = int(np.argmax(np.where(np.isnan(delta), np.inf, delta))) // max(1, delta.shape[1] if delta.ndim > 1 else 1)
        raise ExportMismatch(
            f"The exported ONNX graph does not reproduce the model: max abs difference {diff:.3g} (tolerance "
            f"{tolerance:g}) over {len(df):,} rows (worst row {row}), {labels_bad} label(s) differ; nothing was written.",
            hint="Please report this with the model package.")
    return diff, len(df)
