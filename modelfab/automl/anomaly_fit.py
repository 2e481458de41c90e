"""Fitting an anomaly model from normal-only recordings: candidates, cross-validation, selection.

``fit_anomaly`` trains only on normal files and chooses the detector, its
hyperparameters, the feature scaling and the file aggregation by
cross-validation over *normal files*: each fold holds whole normal files out,
fits on the rest and scores the held-out files. Splits are always by file.

How a candidate is judged
-------------------------
* **Abnormal files given** (semi-supervised): the pooled out-of-fold AUC of
  file scores, held-out normal files vs held-out abnormal files, then, among
  the candidates within one standard error of the best AUC, how far the
  held-out abnormal files sit above the normal ones (in normal-score standard
  deviations; :mod:`~modelfab.automl.anomaly_select` says why). Abnormal files
  are split into the same folds, so the ones a fold learns feature weights
  from are never the ones it is judged on. The labelled abnormals are also used
  to *improve* the model: features are weighted (or restricted) by how far the
  training abnormals moved them, and the weighting strength is one more
  cross-validated choice (strength 0 = unsupervised stays in the running).
* **Normal files only**: a detector that scores everything the same would look
  perfectly "stable", so stability alone cannot choose. The criterion is the
  mean AUC of held-out normal files vs *synthetic faults*: copies of them with
  a few features pushed several normal spreads away
  (:mod:`~modelfab.automl.anomaly_synthetic` describes how). It rewards
  detectors that stay calm on *unseen* normal machines yet see a change. But
  it encodes an assumption about what faults look like, and on real
  recordings (bench/mimii.py) it ranked detector families differently from
  the real faults (and, allowed to switch family on a 0.10 margin, it picked
  a GMM in 2 of 10 splits, AUC 0.63 and 0.25). So without labels only the
  default family is searched (``zmax`` on held-out-scaled features: k,
  scaling, aggregation), and the default (k=1, held-out scaling, mean over
  windows, the best on the real data we have) is kept unless a variant beats
  it by ``SELECTION_MARGIN`` (0.10 AUC). Other detectors are used when
  labelled abnormal files can judge them, or when the caller passes
  ``candidates``. Feature subsets are not chosen without labels (a smaller
  space always looks better against shifts it cannot see); the caller's
  features are used as given.

The threshold is then set on the selected candidate's out-of-fold normal file
scores (see :mod:`~modelfab.automl.anomaly_model`).
"""

from __future__ import annotations

import functools
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from ..errors import InvalidInput
from .anomaly_model import (AGGREGATIONS, AnomalyModel, _group_index, aggregate, file_auc, partial_auc,
                            threshold_for_rate)
from .anomaly_prep import _fit_prep, _floor_scale, heldout_spread
from .anomaly_select import DEFAULT_AGGREGATION, SELECTION_MARGIN, separation
from .anomaly_select import select as _select
from .anomaly_synthetic import _synthetic, _synthetic_auc
from .budget import Budget
from .detectors import detector_cost, make_detector

__all__ = ["fit_anomaly", "CANDIDATES", "DEFAULT_CANDIDATE", "DEFAULT_AGGREGATION", "SELECTION_MARGIN"]


# ----------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class _Candidate:
    detector: str
    params: tuple = ()
    scaling: str = "heldout"  # "heldout" | "standard"
    weighting: float = 0.0  # semi-supervised feature weighting strength
    keep: float = 1.0  # semi-supervised: share of features kept (most separating)

    @property
    def pdict(self) -> dict:
        return dict(self.params)

    def label(self) -> str:
        p = ",".join(f"{k}={v}" for k, v in self.params)
        extra = "" if self.weighting == 0 and self.keep == 1 else f" w={self.weighting:g} keep={self.keep:g}"
        return f"{self.detector}({p}) [{self.scaling}]{extra}"


def _c(name: str, scaling: str = "standard", **params) -> _Candidate:
    return _Candidate(name, tuple(sorted(params.items())), scaling)


DEFAULT_CANDIDATE = _c("zmax", "heldout", k=1, standardize=False)

#: Candidates in the order they are tried (cheap and robust first).
CANDIDATES: tuple[_Candidate, ...] = (
    DEFAULT_CANDIDATE,
    _c("zmax", "standard", k=1, standardize=False),
    _c("zmax", "heldout", k=3, standardize=False),
    _c("gmm", n_components=1, covariance_type="diag"),
    _c("mahalanobis"),
    _c("pca", "heldout", variance=0.9, mode="spe+t2"),
    _c("pca", "standard", variance=0.9, mode="spe+t2"),
    _c("knn", "heldout", k=5),
    _c("knn", "standard", k=5),
    _c("knn", "heldout", k=1),
    _c("ecod"),
    _c("gmm", n_components=4, covariance_type="diag"),
    _c("pca", "standard", variance=0.99, mode="spe"),
    _c("gmm", n_components=8, covariance_type="diag"),
    _c("iforest", n_estimators=100),
)

#: Semi-supervised extras: (weighting strength, share of features kept).
SEMI_VARIANTS = ((2.0, 1.0), (8.0, 1.0), (0.0, 0.25), (0.0, 0.1))
SEMI_DETECTORS = ("zmax", "knn", "gmm", "pca")
#: Without labelled abnormal files only these detectors are tried (see ``_select``).
NORMAL_ONLY_DETECTORS = ("zmax",)  # cheap ones re-tried with weighting/selection


def _scale_dependent(c: _Candidate) -> bool:
    """Feature weights only change detectors that do not re-standardise each feature."""
    return c.detector in ("knn", "pca") or (c.detector == "zmax" and not c.pdict.get("standardize", True))


def _folds(n_groups: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number of each group (shuffled round robin)."""
    perm = rng.permutation(n_groups)
    fold = np.empty(n_groups, dtype=int)
    fold[perm] = np.arange(n_groups) % k
    return fold


# ----------------------------------------------------------------------------- cross-validation
@dataclass
class _FoldData:
    train: np.ndarray  # rows of normal training windows
    test_norm: np.ndarray  # rows of held-out normal windows
    test_abn: np.ndarray  # rows of held-out abnormal windows
    train_abn: np.ndarray  # rows of training abnormal windows (semi-supervised)
    seed: int = 0
    synth_X: np.ndarray | None = None
    synth_g: np.ndarray | None = None
    synth_v: np.ndarray | None = None

    def ensure_synthetic(self, X: np.ndarray, gi: np.ndarray) -> None:
        """Build this fold's synthetic faults on first use (so a tiny budget never pays for them)."""
        if self.synth_X is not None:
            return
        tr = self.train
        spread = _floor_scale(heldout_spread(X[tr], gi[tr]), X[tr].mean(axis=0))
        self.synth_X, self.synth_g, self.synth_v = _synthetic(
            X[self.test_norm], gi[self.test_norm], X[tr], spread, np.random.default_rng(self.seed))


def _scores_by_group(w: np.ndarray, g: np.ndarray, aggs: Sequence[str]) -> dict[str, np.ndarray]:
    """File scores (files in sorted id order) for every aggregation."""
    order = np.argsort(g, kind="stable")
    gs, ws = g[order], w[order]
    cuts = np.flatnonzero(np.diff(gs)) + 1
    starts = np.concatenate([[0], cuts])
    out = {}
    for a in aggs:
        if a == "mean":
            out[a] = np.add.reduceat(ws, starts) / np.diff(np.concatenate([starts, [len(ws)]]))
        elif a == "max":
            out[a] = np.maximum.reduceat(ws, starts)
        else:
            out[a] = np.array([aggregate(part, a) for part in np.split(ws, cuts)])
    return out


def _evaluate(cand: _Candidate, X, gi, folds: list[_FoldData], aggs, semi: bool,
              budget: Budget | None) -> dict | None:
    """Out-of-fold file scores of one candidate for every aggregation; None if the budget ran out."""
    norm = {a: [] for a in aggs}
    abn = {a: [] for a in aggs}
    syn = {a: [] for a in aggs}
    syn_v = []
    norm_ids, abn_ids = [], []  # the group id behind each out-of-fold file score (same order)
    fit_t = score_t = 0.0
    for fd in folds:
        if budget is not None and budget.left_for_search() <= 0:
            return None
        t0 = time.perf_counter()
        Xa = X[fd.train_abn] if semi and len(fd.train_abn) else None
        prep = _fit_prep(X[fd.train], gi[fd.train], cand, Xa)
        det = make_detector(cand.detector, **cand.pdict).fit(prep(X[fd.train]))
        t1 = time.perf_counter()
        fit_t += t1 - t0
        wn = det.score(prep(X[fd.test_norm]))
        for a, v in _scores_by_group(wn, gi[fd.test_norm], aggs).items():
            norm[a].append(v)
        norm_ids.append(np.unique(gi[fd.test_norm]))
        if len(fd.test_abn):
            wa = det.score(prep(X[fd.test_abn]))
            for a, v in _scores_by_group(wa, gi[fd.test_abn], aggs).items():
                abn[a].append(v)
            abn_ids.append(np.unique(gi[fd.test_abn]))
        fd.ensure_synthetic(X, gi)
        if len(fd.synth_X):
            ws = det.score(prep(fd.synth_X))
            for a, v in _scores_by_group(ws, fd.synth_g, aggs).items():
                syn[a].append(v)
            syn_v.append(fd.synth_v)
        score_t += time.perf_counter() - t1
    cat = lambda d: {a: (np.concatenate(v) if v else np.zeros(0)) for a, v in d.items()}  # noqa: E731
    return {"normal": cat(norm), "abnormal": cat(abn), "synthetic": cat(syn),
            "synthetic_variant": np.concatenate(syn_v) if syn_v else np.zeros(0, int),
            "normal_ids": np.concatenate(norm_ids).astype(int) if norm_ids else np.zeros(0, int),
            "abnormal_ids": np.concatenate(abn_ids).astype(int) if abn_ids else np.zeros(0, int),
            "fit_time_s": fit_t, "score_time_s": score_t}


# ----------------------------------------------------------------------------- fit
def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread.

    The matrices here are small (windows x features, a few hundred each) and
    factorised many times (PCA, covariance per candidate and fold): a
    multi-threaded BLAS gains nothing on them and, on a busy machine, its
    threads wait for each other (an SVD of 150 x 220 took 0.43 s instead of
    0.01 s at load 5 on 2 cores, and PCA fits used most of a 60 s budget).
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            from threadpoolctl import threadpool_limits

            limit = threadpool_limits(limits=1, user_api="blas")
        except Exception:  # threadpoolctl (a scikit-learn dependency) missing or unusable: run as is
            limit = nullcontext()
        with limit:
            return fn(*args, **kwargs)
    return wrapper


def _check_inputs(X, groups, y, feature_names, normal_label_mask):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidInput(f"X must be a non-empty 2-D matrix (windows x features); got shape {X.shape}.")
    if not np.all(np.isfinite(X)):
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise InvalidInput(f"{bad} window(s) have NaN or infinite features.",
                           hint="Drop or impute those windows before training.")
    groups = np.asarray(groups)
    if groups.shape != (X.shape[0],):
        raise InvalidInput(f"groups must give one file id per window ({X.shape[0]}); got shape {groups.shape}.")
    names = list(feature_names) if feature_names is not None else [f"f{j}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise InvalidInput(f"feature_names has {len(names)} names for {X.shape[1]} features.")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise InvalidInput(f"y must give one 0/1 label per window ({X.shape[0]}); got shape {y.shape}.")
        if not np.isin(y, (0, 1)).all():
            raise InvalidInput("y must be 0 (normal) or 1 (abnormal) for every window.")
        y = y.astype(int)
    if normal_label_mask is not None:
        normal_label_mask = np.asarray(normal_label_mask, dtype=bool)
        if normal_label_mask.shape != (X.shape[0],):
            raise InvalidInput("normal_label_mask must give one True/False per window.")
    return X, groups, y, names, normal_label_mask


@_one_blas_thread
def fit_anomaly(X, groups, y=None, *, feature_names: Sequence[str] | None = None, budget: Budget,
                max_false_alarm: float = 0.01, normal_label_mask=None, seed: int = 0,
                progress: Callable | None = None, candidates: Sequence[_Candidate] | None = None,
                aggregations: Sequence[str] = AGGREGATIONS, n_folds: int = 5):
    """Fit an :class:`AnomalyModel` on the normal files of ``X``.

    ``y`` (optional, per window): 1 marks windows of known abnormal files
    (a file with any 1 is abnormal). ``normal_label_mask`` (optional, per
    window): when given, only windows marked True (and not abnormal) count as
    normal; the rest are ignored. Returns ``(model, leaderboard, info)``.
    """
    t_start = time.perf_counter()
    X, groups, y, names, nmask = _check_inputs(X, groups, y, feature_names, normal_label_mask)
    if not 0 < float(max_false_alarm) < 1:
        raise InvalidInput(f"max_false_alarm must be between 0 and 1; got {max_false_alarm!r}.")
    keys, gi = _group_index(groups)
    n_groups = len(keys)
    abn_file = np.zeros(n_groups, bool)
    if y is not None:
        np.maximum.at(abn_file, gi, y.astype(bool))
    is_abn = abn_file[gi]
    is_norm = ~is_abn if nmask is None else (nmask & ~is_abn)
    norm_files = np.unique(gi[is_norm])
    abn_files = np.flatnonzero(abn_file)
    notes: list[str] = []
    if is_norm.sum() < 4:
        raise InvalidInput(f"Need at least 4 normal windows to learn from; got {int(is_norm.sum())}.",
                           hint="Add recordings of good machines.")

    # Pseudo-files when there are too few normal files to hold any out.
    cv_gi = gi.copy()
    if len(norm_files) < 3:
        nblocks = 4 if len(norm_files) == 1 else 2
        for f in norm_files:
            rows = np.flatnonzero((gi == f) & is_norm)
            blocks = np.array_split(rows, min(nblocks, len(rows)))
            for b, r in enumerate(blocks):
                cv_gi[r] = n_groups + f * nblocks + b
        notes.append(f"Only {len(norm_files)} normal file(s): cross-validation holds out contiguous blocks of "
                     "windows instead of whole files, so the threshold may be optimistic.")
    cv_norm_files = np.unique(cv_gi[is_norm])

    def _file_keys(ids) -> list:
        # cv ids >= n_groups are blocks of one file (see above): map them back to that file
        out = []
        for i in np.asarray(ids, int):
            f = i if i < n_groups else (i - n_groups) // (4 if len(norm_files) == 1 else 2)
            out.append(keys[f].item() if hasattr(keys[f], "item") else keys[f])
        return out
    semi = len(abn_files) > 0
    rng = np.random.default_rng(seed)
    k = int(max(2, min(n_folds, len(cv_norm_files))))
    nfold = _folds(len(cv_norm_files), k, rng)
    fold_of = dict(zip(cv_norm_files.tolist(), nfold.tolist()))
    afold = _folds(len(abn_files), k, rng) if semi else np.zeros(0, int)
    afold_of = dict(zip(abn_files.tolist(), afold.tolist()))
    row_fold = np.full(len(X), -1)
    for i in np.flatnonzero(is_norm):
        row_fold[i] = fold_of[cv_gi[i]]
    row_afold = np.full(len(X), -1)
    for i in np.flatnonzero(is_abn):
        row_afold[i] = afold_of[gi[i]]
    folds = []
    for f in range(k):
        fd = _FoldData(train=np.flatnonzero(is_norm & (row_fold != f)),
                       test_norm=np.flatnonzero(is_norm & (row_fold == f)),
                       test_abn=np.flatnonzero(is_abn & (row_afold == f)),
                       train_abn=np.flatnonzero(is_abn & (row_afold != f)))
        fd.seed = int(rng.integers(2**31))
        folds.append(fd)

    board_skipped: list[dict] = []
    if candidates is None:
        candidates = list(CANDIDATES)
        if not semi:  # without labels, families are not compared (see _select): only the default's is tried
            for c in candidates:
                if c.detector not in NORMAL_ONLY_DETECTORS:
                    board_skipped.append(_row(c, None, "skipped: needs labelled abnormal files to compare", 0, 0))
            candidates = [c for c in candidates if c.detector in NORMAL_ONLY_DETECTORS]
        if semi:
            candidates += [replace(c, weighting=w, keep=kp) for w, kp in SEMI_VARIANTS
                           for c in CANDIDATES[:11] if c.detector in SEMI_DETECTORS
                           and (kp < 1.0 or _scale_dependent(c))]
    candidates = list(dict.fromkeys(candidates))
    aggs = tuple(aggregations)
    for a in aggs:
        aggregate(np.zeros(1), a)

    def emit(msg: str, best=None):
        if progress is None:
            return
        metric = "cv_auc" if semi else "synthetic_auc"
        try:
            from .search import Progress

            payload = Progress(budget.elapsed(), budget.left(), len(board), best, None, metric, msg)
        except Exception:  # the shared Progress type moved: fall back to a plain dict
            payload = {"elapsed_s": budget.elapsed(), "left_s": budget.left(), "trials": len(board),
                       "best_score": best, "metric": metric, "message": msg}
        progress(payload)

    board: list[dict] = []
    results: dict[int, tuple[_Candidate, dict, dict]] = {}  # order -> (candidate, oof scores, agg -> (key, crit))
    overhead: float | None = None  # measured time of the cheap default (scoring + aggregation overhead)
    unit_time = 0.0  # measured extra seconds per unit of detector cost
    for order, cand in enumerate(candidates):
        left = budget.left_for_search()
        est = 0.0 if overhead is None else overhead + unit_time * detector_cost(cand.detector)
        if left <= 0 or est > left:
            board.append(_row(cand, None, "skipped: budget", 0.0, 0.0))
            continue
        t0 = time.perf_counter()
        try:
            res = _evaluate(cand, X, cv_gi, folds, aggs, semi, budget)
        except (ValueError, np.linalg.LinAlgError, InvalidInput) as exc:
            board.append(_row(cand, None, f"failed: {exc}", 0.0, 0.0))
            continue
        spent = time.perf_counter() - t0
        if res is None:
            board.append(_row(cand, None, "stopped: budget", spent, 0.0))
            continue
        if overhead is None:
            overhead = spent
        elif detector_cost(cand.detector) >= 0.3:
            unit_time = max(unit_time, (spent - overhead) / detector_cost(cand.detector))
        best_agg, best_key, agg_scores = None, None, {}
        for ai, a in enumerate(aggs):
            n_s, a_s, s_s = res["normal"][a], res["abnormal"][a], res["synthetic"][a]
            syn = _synthetic_auc(n_s, s_s, res["synthetic_variant"])
            if semi and a_s.size:
                auc, pauc = file_auc(n_s, a_s), partial_auc(n_s, a_s)
                key = (round(auc, 3), round(pauc, 3), -ai)
                crit = {"cv_auc": auc, "cv_pauc": pauc, "cv_separation": separation(n_s, a_s), "synthetic_auc": syn}
            else:
                key = (round(syn, 3), 0.0, -ai)
                crit = {"synthetic_auc": syn}
            agg_scores[a] = (key, crit)
            if best_key is None or key > best_key:
                best_key, best_agg = key, a
        results[order] = (cand, res, agg_scores)
        row = _row(cand, best_agg, "ok", res["fit_time_s"], res["score_time_s"])
        row.update(agg_scores[best_agg][1])
        row["cv_score"] = best_key[0]
        row["aggregations"] = {a: v[0][0] for a, v in agg_scores.items()}
        row["_order"] = order
        board.append(row)
        emit(f"{cand.label()} {best_agg}: {best_key[0]:.3f}", max(r["cv_score"] for r in board if "_order" in r))

    if not results:  # not even the default could be cross-validated: in-sample threshold
        cand = DEFAULT_CANDIDATE
        best_agg = DEFAULT_AGGREGATION if DEFAULT_AGGREGATION in aggs else aggs[0]
        best_order = -1
        oof_n, oof_a = None, np.zeros(0)
        oof_n_files, oof_a_files = [], []
        notes.append("The budget ran out before cross-validation: the threshold is set on training files "
                     "(in-sample) and will give more false alarms than asked.")
        selection = "default (no time to cross-validate)"
    else:
        best_order, best_agg, why = _select(results, aggs, semi)
        cand, res, _ = results[best_order]
        # the final refit must fit in what is left; else fall back to the first (cheapest) candidate
        first = min(results)
        if best_order != first and budget.left() < res["fit_time_s"] / max(k, 1) * 1.5:
            best_order = first
            cand, res, _ = results[first]
            best_agg = DEFAULT_AGGREGATION if DEFAULT_AGGREGATION in aggs else aggs[0]
            why = "the best candidate could not be refitted in the time left"
            notes.append("Not enough time left to refit the best candidate; kept the first one evaluated.")
        oof_n, oof_a = res["normal"][best_agg], res["abnormal"][best_agg]
        oof_n_files, oof_a_files = _file_keys(res["normal_ids"]), _file_keys(res["abnormal_ids"])
        selection = f"{cand.label()} aggregated by {best_agg}: {why}"
    for row in board:
        row["selected"] = row.pop("_order", None) == best_order and row["status"] == "ok"
        if row["selected"]:
            key, crit = results[best_order][2][best_agg]
            row.update(crit, aggregation=best_agg, cv_score=key[0])

    # final fit on all normal windows
    tr = np.flatnonzero(is_norm)
    prep = _fit_prep(X[tr], cv_gi[tr], cand, X[is_abn] if semi else None)
    det = make_detector(cand.detector, **cand.pdict).fit(prep(X[tr]))
    ref_center = X[tr].mean(axis=0)
    ref_scale = _floor_scale(heldout_spread(X[tr], cv_gi[tr]), ref_center)
    model = AnomalyModel(feature_names=names, detector=det, aggregation=best_agg, threshold=float("inf"),
                         center=prep.center, scale=prep.scale, weights=prep.weights, feature_index=prep.index,
                         ref_center=ref_center, ref_scale=ref_scale, scaling=cand.scaling,
                         max_false_alarm=float(max_false_alarm))
    if oof_n is None:
        w = model.window_scores(X[tr])
        oof_n = np.array([aggregate(w[cv_gi[tr] == g], best_agg) for g in np.unique(cv_gi[tr])])
        oof_n_files = _file_keys(np.unique(cv_gi[tr]))
        source = "training files (in-sample)"
    else:
        source = "held-out normal files (out-of-fold)"
    model.normal_file_scores = np.asarray(oof_n, float)
    model.threshold = threshold_for_rate(oof_n, max_false_alarm)
    model.meta = {"selection": selection, "threshold_source": source, "n_normal_files": int(len(norm_files)),
                  "n_abnormal_files": int(len(abn_files)), "semi_supervised": bool(semi),
                  "candidate": cand.label(), "n_folds": int(k)}
    board += board_skipped
    board.sort(key=lambda r: (not r.get("selected"), r["status"] != "ok", -(r.get("cv_score") or 0.0)))
    info = {
        "oof_normal_scores": [float(v) for v in oof_n],
        "oof_abnormal_scores": [float(v) for v in oof_a],
        # the file (group) behind each score above, same order; pseudo-files map to their file
        "oof_normal_files": oof_n_files,
        "oof_abnormal_files": oof_a_files,
        "selection": selection,
        "criterion": "cv_auc" if semi else "synthetic_auc",
        "threshold": float(model.threshold),
        "threshold_source": source,
        "expected_false_alarm_oof": model.false_alarm_rate(),
        "false_alarm_resolution": 1.0 / max(1, len(oof_n)),
        "n_normal_files": int(len(norm_files)),
        "n_abnormal_files": int(len(abn_files)),
        "n_folds": int(k),
        "notes": notes,
        "elapsed_s": time.perf_counter() - t_start,
    }
    if semi and len(oof_a):
        info["oof_auc"] = file_auc(oof_n, oof_a)
    emit("done", board[0].get("cv_score") if board else None)
    return model, board, info


def _row(cand: _Candidate, agg: str | None, status: str, fit_t: float, score_t: float) -> dict:
    return {"detector": cand.detector, "params": cand.pdict, "scaling": cand.scaling,
            "feature_weighting": cand.weighting, "feature_keep": cand.keep, "aggregation": agg,
            "cv_score": None, "fit_time_s": round(fit_t, 4), "score_time_s": round(score_t, 4), "status": status}
