"""Fitted learners as ONNX tree ensembles that reproduce the native predictions.

Every tree is written as one ``ai.onnx.ml`` ``TreeEnsemble`` (opset 5) in
double precision, with each learner's own comparison rule, so no split
threshold is rounded:

* LightGBM: ``x <= t`` on float64 features with float64 thresholds; NaN goes
  the default way, or is read as 0.0 where the split has no missing type.
* XGBoost: features are rounded to float32 first (as ``DMatrix`` does), then
  ``x < t`` on float32 thresholds. Each tree writes its own output column and
  the columns are summed in float32 in tree order (``CumSum``), which is
  exactly how XGBoost accumulates, so even large regression values agree.
* scikit-learn forests: features rounded to float32 (as ``predict`` does),
  ``x <= t`` on float64 thresholds, NaN following ``missing_go_to_left``;
  per-tree class fractions are summed and divided by the number of trees.

Anything whose semantics we do not reproduce exactly (categorical splits,
linear trees, DART, unusual objectives...) raises :class:`UnsupportedFormat`.
"""

from __future__ import annotations

import json

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..errors import UnsupportedFormat

LEQ, LT = 0, 1  # TreeEnsemble nodes_modes
SUM = 1  # TreeEnsemble aggregate_function


class Graph:
    """A tiny ONNX graph builder: unique names, constants, nodes."""

    PREFIX = "_mf_"

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.split_values: dict[int, set[float]] = {}  # feature index -> thresholds used (for check rows)
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{self.PREFIX}{hint}_{self._count}"

    def const(self, value, hint: str = "c", dtype=None) -> str:
        name = self.fresh(hint)
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype.kind in "OUS":
            tensor = helper.make_tensor(name, TensorProto.STRING, arr.shape,
                                        [str(v).encode("utf-8") for v in arr.ravel()])
        else:
            tensor = numpy_helper.from_array(arr, name)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, *, outputs: list[str] | None = None,
           domain: str = "", **attrs) -> str:
        out = outputs or [self.fresh(hint or op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, out, name=self.fresh("n_" + op_type), domain=domain,
                                           **attrs))
        return out[0]

    def cast(self, x: str, to: int) -> str:
        return self.op("Cast", [x], "cast", to=to)


class TreeSet:
    """Accumulates trees in the flat layout of ``TreeEnsemble`` (ai.onnx.ml opset 5)."""

    def __init__(self, n_targets: int) -> None:
        self.n_targets = n_targets
        self.roots: list[int] = []
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "feat", "mode", "split", "true_id", "true_leaf", "false_id", "false_leaf", "miss", "leaf_target", "leaf_w")}
        self.n_nodes = 0
        self.n_leaves = 0

    def add(self, left, right, feat, thr, miss_left, leaf_w, target, mode: int) -> None:
        """One tree; node 0 is its root; ``left < 0`` marks a leaf; ``leaf_w``/``target`` per node."""
        left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        is_leaf = left < 0
        internal, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
        target = np.broadcast_to(np.asarray(target, np.int64), left.shape)
        leaf_w = np.asarray(leaf_w, np.float64)
        pos = np.full(len(left), -1, np.int64)
        pos[leaves] = self.n_leaves + np.arange(len(leaves))
        c = self.cols
        if len(internal) == 0:  # a single leaf: one dummy split whose both branches reach it
            c["feat"].append(np.zeros(1, np.int64))
            c["mode"].append(np.array([LEQ], np.uint8))
            c["split"].append(np.zeros(1))
            for k in ("true_id", "false_id"):
                c[k].append(pos[:1].copy())
            for k in ("true_leaf", "false_leaf", "miss"):
                c[k].append(np.ones(1, np.int64))
            self.roots.append(self.n_nodes)
            self.n_nodes += 1
        else:
            pos[internal] = self.n_nodes + np.arange(len(internal))
            if is_leaf[0]:
                raise ValueError("tree root is a leaf but the tree has internal nodes")
            lc, rc = left[internal], right[internal]
            feats = np.asarray(feat, np.int64)[internal]
            thrs = np.asarray(thr, np.float64)[internal]
            c["feat"].append(feats)
            c["mode"].append(np.full(len(internal), mode, np.uint8))
            c["split"].append(thrs)
            c["true_id"].append(pos[lc])
            c["true_leaf"].append(is_leaf[lc].astype(np.int64))
            c["false_id"].append(pos[rc])
            c["false_leaf"].append(is_leaf[rc].astype(np.int64))
            c["miss"].append(np.asarray(miss_left, np.int64)[internal])
            self.roots.append(int(pos[0]))
            self.n_nodes += len(internal)
        c["leaf_target"].append(target[leaves])
        c["leaf_w"].append(leaf_w[leaves])
        self.n_leaves += len(leaves)

    def emit(self, g: Graph, x: str) -> str:
        """The TreeEnsemble node on double input ``x``: output [N, n_targets] double (leaf sums)."""
        if not self.roots:
            raise UnsupportedFormat("The model has no trees: there is nothing to export.")
        cat = {k: np.concatenate(v) for k, v in self.cols.items()}
        for f in np.unique(cat["feat"]).tolist():
            vals = np.unique(cat["split"][cat["feat"] == f])
            g.split_values.setdefault(f, set()).update(vals[np.isfinite(vals)].tolist())
        return g.op(
            "TreeEnsemble", [x], "trees", domain="ai.onnx.ml",
            n_targets=self.n_targets, aggregate_function=SUM, post_transform=0, tree_roots=self.roots,
            nodes_featureids=cat["feat"].tolist(), nodes_modes=numpy_helper.from_array(cat["mode"]),
            nodes_splits=numpy_helper.from_array(cat["split"].astype(np.float64)),
            nodes_truenodeids=cat["true_id"].tolist(), nodes_trueleafs=cat["true_leaf"].tolist(),
            nodes_falsenodeids=cat["false_id"].tolist(), nodes_falseleafs=cat["false_leaf"].tolist(),
            nodes_missing_value_tracks_true=cat["miss"].tolist(),
            leaf_targetids=cat["leaf_target"].tolist(),
            leaf_weights=numpy_helper.from_array(cat["leaf_w"].astype(np.float64)),
        )


# -- LightGBM -------------------------------------------------------------------------------

LGB_ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold = 1e-35f
_LGB_IDENTITY = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
_LGB_EXP = {"poisson", "gamma", "tweedie"}


def _lgb_text_values(model_str: str) -> dict[int, tuple[list[float], list[float]]]:
    """Tree index -> (thresholds by split index, leaf values by leaf index), as the model text holds them:
    17 significant digits and real infinities (``dump_model`` clamps those to +-1e300)."""
    out = {}
    for block in model_str.split("end of trees")[0].split("\nTree=")[1:]:
        head, _, body = block.partition("\n")
        fields = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
        out[int(head)] = ([float(v) for v in fields.get("threshold", "").split()],
                          [float(v) for v in fields.get("leaf_value", "").split()])
    return out


def _lgb_flatten(root: dict, exact: tuple[list[float], list[float]]):
    """Nested LightGBM tree JSON -> parallel arrays (node 0 = root), with exact values from the model text."""
    thresholds, leaf_values = exact
    left, right, feat, thr, miss, leaf_w = [], [], [], [], [], []
    stack = [(root, -1, False)]
    while stack:
        node, parent, is_right = stack.pop()
        i = len(left)
        if parent >= 0:
            (right if is_right else left)[parent] = i
        for col in (left, right, feat, thr, miss, leaf_w):
            col.append(0)
        if "split_feature" not in node:
            left[i] = right[i] = -1
            leaf_w[i] = leaf_values[node.get("leaf_index", 0)] if leaf_values else float(node["leaf_value"])
            continue
        if node.get("decision_type") != "<=":
            raise UnsupportedFormat("The LightGBM model has categorical splits, which modelfab cannot export to ONNX "
                                    "exactly.")
        t = thresholds[node["split_index"]]
        missing = node.get("missing_type", "None")
        if missing == "NaN":
            miss[i] = int(bool(node["default_left"]))
        elif missing == "None":  # LightGBM reads NaN as 0.0 here
            miss[i] = int(0.0 <= t)
        else:
            raise UnsupportedFormat(f"The LightGBM model treats zeros as missing (missing_type {missing!r}); "
                                    "modelfab cannot export that to ONNX exactly.")
        feat[i], thr[i] = int(node["split_feature"]), t
        stack.append((node["right_child"], i, True))
        stack.append((node["left_child"], i, False))
    return left, right, feat, thr, miss, leaf_w


def lightgbm_graph(g: Graph, booster, x: str, n_features: int) -> tuple[str, str]:
    """Returns (output [N, k] double, kind) where kind is 'proba1', 'proba' or 'value'."""
    text = booster.model_to_string()
    if "is_linear=1" in text:
        raise UnsupportedFormat("The LightGBM model uses linear trees, which modelfab cannot export to ONNX.")
    exact = _lgb_text_values(text)
    dump = booster.dump_model()
    if dump.get("max_feature_idx", -1) + 1 != n_features:
        raise UnsupportedFormat(f"The LightGBM model expects {dump.get('max_feature_idx', -1) + 1} features; the "
                                f"preprocessor makes {n_features}.")
    k = int(dump["num_tree_per_iteration"])
    trees = TreeSet(k)
    for info in dump["tree_info"]:
        left, right, feat, thr, miss, leaf_w = _lgb_flatten(info["tree_structure"], exact[int(info["tree_index"])])
        trees.add(left, right, feat, thr, miss, leaf_w, int(info["tree_index"]) % k, LEQ)
    out = trees.emit(g, x)
    if dump.get("average_output"):
        out = g.op("Div", [out, g.const(float(len(dump["tree_info"]) // k))])
    tokens = str(dump.get("objective", "")).split()
    name = tokens[0] if tokens else ""
    params = dict(t.split(":", 1) for t in tokens[1:] if ":" in t)
    if "sqrt" in tokens[1:]:
        raise UnsupportedFormat("The LightGBM model was trained with reg_sqrt, which modelfab cannot export.")
    if name in ("binary", "multiclassova", "cross_entropy"):
        scale = float(params.get("sigmoid", 1.0))
        if scale != 1.0:
            out = g.op("Mul", [out, g.const(scale)])
        return g.op("Sigmoid", [out]), "proba1" if k == 1 else "proba"
    if name == "multiclass":
        return g.op("Softmax", [out], axis=1), "proba"
    if name in _LGB_IDENTITY:
        return out, "value"
    if name in _LGB_EXP:
        return g.op("Exp", [out]), "value"
    raise UnsupportedFormat(f"The LightGBM objective {name!r} is not one modelfab can export to ONNX.")


# -- XGBoost --------------------------------------------------------------------------------

XGB_CHUNK_COLUMNS = 256  # per-tree output columns held at once (memory: rows x 256 x 12 bytes)
_XGB_IDENTITY = {"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:squaredlogerror"}


def _xgb_base_margin(objective: str, base_score: float) -> np.float32:
    bs = np.float32(base_score)
    if objective == "binary:logistic":  # ProbToMargin, in float32 as XGBoost does
        with np.errstate(all="ignore"):
            return np.float32(-np.log(np.float32(1.0) / bs - np.float32(1.0)))
    return bs


def xgboost_graph(g: Graph, booster, x32: str, n_features: int) -> tuple[str, str]:
    model = json.loads(booster.save_raw("json"))["learner"]
    objective = model["objective"]["name"]
    gb = model["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise UnsupportedFormat(f"The XGBoost booster is {gb.get('name')!r}; only gbtree exports to ONNX.")
    mp = model["learner_model_param"]
    if int(mp.get("num_target", 1)) != 1:
        raise UnsupportedFormat("Multi-target XGBoost models cannot be exported to ONNX.")
    if int(mp["num_feature"]) != n_features:
        raise UnsupportedFormat(f"The XGBoost model expects {mp['num_feature']} features; the preprocessor makes "
                                f"{n_features}.")
    if objective not in _XGB_IDENTITY | {"binary:logistic", "multi:softprob"}:
        raise UnsupportedFormat(f"The XGBoost objective {objective!r} is not one modelfab can export to ONNX.")
    k = max(1, int(mp.get("num_class", 0)))
    scores = [float(v) for v in str(mp["base_score"]).strip("[]").split(",") if v.strip()]
    bases = [_xgb_base_margin(objective, scores[c] if len(scores) == k else scores[0]) for c in range(k)]
    trees_json, info = gb["model"]["trees"], gb["model"]["tree_info"]
    per_class = [[t for t, c in enumerate(info) if c == cls] for cls in range(k)]
    rounds = len(per_class[0])
    if rounds == 0 or any(len(p) != rounds for p in per_class):
        raise UnsupportedFormat("The XGBoost model has no trees or an uneven number of trees per class.")
    # Trees go in chunks of rounds; inside a chunk every tree writes its own column, then the columns are
    # added in tree order in float32 (CumSum) onto the running margin: XGBoost's own arithmetic, in bounded memory.
    chunk = max(1, XGB_CHUNK_COLUMNS // k)
    rank = {t: r for p in per_class for r, t in enumerate(p)}
    first = {p[0] for p in per_class}
    sets = [TreeSet(min(chunk, rounds - start) * k) for start in range(0, rounds, chunk)]
    for t, tree in enumerate(trees_json):
        if any(int(s) != 0 for s in tree.get("split_type", [])):
            raise UnsupportedFormat("The XGBoost model has categorical splits, which modelfab cannot export to ONNX.")
        cond = np.asarray(tree["split_conditions"], np.float64).astype(np.float32)
        leaf_w = (bases[info[t]] + cond).astype(np.float32) if t in first else cond  # rows start at the base margin
        r = rank[t]
        sets[r // chunk].add(tree["left_children"], tree["right_children"], tree["split_indices"],
                             cond.astype(np.float64), np.asarray(tree["default_left"], np.int64),
                             leaf_w.astype(np.float64), (r % chunk) * k + info[t], LT)
    last = None
    for ts in sets:
        per_tree = g.cast(ts.emit(g, x32), TensorProto.FLOAT)
        cube = g.op("Reshape", [per_tree, g.const(np.array([-1, ts.n_targets // k, k], np.int64))])
        if last is not None:
            cube = g.op("Concat", [g.op("Unsqueeze", [last, g.const(np.array([1], np.int64))]), cube], axis=1)
        summed = g.op("CumSum", [cube, g.const(np.array(1, np.int64))])
        last = g.op("Gather", [summed, g.const(np.array(-1, np.int64))], axis=1)
    margin = g.cast(last, TensorProto.DOUBLE)
    if objective == "binary:logistic":
        return g.op("Sigmoid", [margin]), "proba1"
    if objective == "multi:softprob":
        return g.op("Softmax", [margin], axis=1), "proba"
    return margin, "value"


# -- scikit-learn forests -------------------------------------------------------------------

SKLEARN_FORESTS = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
                   "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"}


def sklearn_graph(g: Graph, est, x32: str, n_features: int, classification: bool) -> tuple[str, str]:
    kind = type(est).__name__
    if kind not in SKLEARN_FORESTS:
        raise UnsupportedFormat(f"A {kind} cannot be exported to ONNX by modelfab (supported: random forests, "
                                "extra trees and decision trees).")
    estimators = list(getattr(est, "estimators_", [est]))
    if getattr(est, "n_outputs_", 1) != 1:
        raise UnsupportedFormat("Multi-output scikit-learn models cannot be exported to ONNX.")
    if getattr(est, "n_features_in_", n_features) != n_features:
        raise UnsupportedFormat(f"The model expects {est.n_features_in_} features; the preprocessor makes {n_features}.")
    n_out = len(est.classes_) if classification else 1
    trees = TreeSet(n_out)
    for tree_est in estimators:
        tr = tree_est.tree_
        miss = np.asarray(getattr(tr, "missing_go_to_left", np.zeros(tr.node_count)), np.int64)
        if classification:
            value = tr.value[:, 0, :n_out].astype(np.float64)
            norm = value.sum(axis=1, keepdims=True)
            norm[norm == 0.0] = 1.0
            value = value / norm
            left, right = np.asarray(tr.children_left, np.int64), np.asarray(tr.children_right, np.int64)
            for c in range(n_out):  # one copy per class (a TreeEnsemble leaf feeds one target), zero parts cut
                part = _nonzero_part(left, right, value[:, c])
                if part is not None:
                    idx, lp, rp = part
                    trees.add(lp, rp, tr.feature[idx], tr.threshold[idx], miss[idx],
                              np.where(left[idx] < 0, value[idx, c], 0.0), c, LEQ)
        else:
            trees.add(tr.children_left, tr.children_right, tr.feature, tr.threshold, miss,
                      tr.value[:, 0, 0].astype(np.float64), 0, LEQ)
    out = g.op("Div", [trees.emit(g, x32), g.const(float(len(estimators)))])
    return out, "proba" if classification else "value"


def _nonzero_part(left: np.ndarray, right: np.ndarray, w: np.ndarray):
    """The tree where leaf weights ``w`` can be non-zero: a subtree whose leaves are all 0.0 becomes one 0.0 leaf
    (adding +0.0 changes no sum). Returns (kept node indices, their left, their right) or None if all is 0."""
    is_leaf = left < 0
    levels = [np.zeros(1, np.int64)]
    while True:
        inner = levels[-1][~is_leaf[levels[-1]]]
        if not len(inner):
            break
        levels.append(np.concatenate([left[inner], right[inner]]))
    nz = is_leaf & (w != 0.0)
    for level in reversed(levels):
        inner = level[~is_leaf[level]]
        nz[inner] = nz[left[inner]] | nz[right[inner]]
    if not nz[0]:
        return None
    keep = np.zeros(len(left), bool)
    keep[0] = True
    for level in levels:
        grow = level[keep[level] & ~is_leaf[level] & nz[level]]
        keep[left[grow]] = keep[right[grow]] = True
    idx = np.flatnonzero(keep)
    pos = np.full(len(left), -1, np.int64)
    pos[idx] = np.arange(len(idx))
    grow = ~is_leaf[idx] & nz[idx]
    return idx, np.where(grow, pos[left[idx]], -1), np.where(grow, pos[right[idx]], -1)


# -- learners -------------------------------------------------------------------------------

class Features:
    """The feature matrix [N, F] double, and (made on first use) its float32-rounded copy."""

    def __init__(self, g: Graph, x64: str) -> None:
        self.g, self.x64, self._x32, self._xlgb = g, x64, None, None

    @property
    def x_lightgbm(self) -> str:
        """LightGBM reads every |x| <= kZeroThreshold (1e-35f) as exactly 0.0 (dense rows become sparse pairs)."""
        if self._xlgb is None:
            g = self.g
            tiny = g.op("LessOrEqual", [g.op("Abs", [self.x64]), g.const(LGB_ZERO_THRESHOLD)])
            self._xlgb = g.op("Where", [tiny, g.const(0.0), self.x64])  # NaN stays NaN
        return self._xlgb

    @property
    def x32(self) -> str:
        if self._x32 is None:
            self._x32 = self.g.cast(self.g.cast(self.x64, TensorProto.FLOAT), TensorProto.DOUBLE)
        return self._x32


def fitted_graph(g: Graph, learner, x: Features, n_features: int, n_classes: int) -> str:
    """One FittedLearner -> [N, n_classes] probabilities or [N, 1] values (double), as ``predict_raw``."""
    classification = learner.task == "classification"
    if learner.format == "lightgbm-text":
        out, kind = lightgbm_graph(g, learner.obj, x.x_lightgbm, n_features)
    elif learner.format == "xgboost-json":
        out, kind = xgboost_graph(g, learner.obj, x.x32, n_features)
    elif learner.format == "skops":
        out, kind = sklearn_graph(g, learner.obj, x.x32, n_features, classification)
    elif learner.format == "mlp-npz":
        from .onnx_mlp import mlp_graph

        out, kind = mlp_graph(g, learner.obj, x.x64)
    else:
        raise UnsupportedFormat(f"Model format {learner.format!r} cannot be exported to ONNX.")
    if (kind == "value") != (not classification):
        raise UnsupportedFormat(f"The {learner.format} model's output does not fit a {learner.task} task.")
    if not classification:
        return out
    width = 1 if kind == "proba1" else _width(learner)
    if kind == "proba1":  # probability of class 1 -> [1 - p, p], as predict_raw does
        out = g.op("Concat", [g.op("Sub", [g.const(np.ones((1, 1)), "one"), out]), out], axis=1)
        width = 2
    if width != n_classes:  # the estimator saw a subset of the classes: put its columns in place
        cls = learner.classes if learner.classes is not None else list(
            getattr(learner.obj, "classes_", range(width)))
        place = np.zeros((width, n_classes))
        for j, c in enumerate(cls):
            place[j, int(c)] = 1.0
        out = g.op("MatMul", [out, g.const(place, "place")])
    return out


def _width(learner) -> int:
    if learner.format == "skops":
        return len(learner.obj.classes_)
    if learner.format == "mlp-npz":
        return learner.obj.n_outputs
    if learner.format == "lightgbm-text":
        return int(learner.obj.num_model_per_iteration())
    return max(1, int(json.loads(learner.obj.save_config())["learner"]["learner_model_param"].get("num_class", 1)))


def learner_graph(g: Graph, learner, x64: str, n_features: int, n_classes: int) -> str:
    """FittedLearner or EnsembleLearner -> double output, the same numbers as ``learner.predict_raw``."""
    x = Features(g, x64)
    if getattr(learner, "format", None) != "ensemble":
        return fitted_graph(g, learner, x, n_features, n_classes)
    total = None
    for member, weight in zip(learner.members, learner.weights):
        part = g.op("Mul", [fitted_graph(g, member, x, n_features, n_classes), g.const(float(weight), "w")])
        total = part if total is None else g.op("Add", [total, part])
    return total
