"""Which model a table with one free-text column keeps: the text column's linear model alone, or the tree
learners on its out-of-fold scores (and the other columns)."""

from __future__ import annotations

import numpy as np

from ..modalities.tabular import TabularPreprocessor
from .search import CLASSIFICATION_METRICS, REGRESSION_METRICS

SIGNAL_GAIN = 0.02  # the other columns alone must beat the class shares / the mean by 2 % of the loss
SIGNAL_MAX_ROWS = 20_000
LOG_LOSS_FLOOR = 0.002  # the least log-loss gain that counts as "clearly better" than the text model


def pick_text_learner(result, stage, pre: TabularPreprocessor, text_cols: list[str], *, task: str, metric: str,
                      n_classes: int, others=None, budget=None, seed: int = 0) -> None:
    """Add the text models to the leaderboard; with one text column, keep its linear model alone unless the tree
    learners on its scores (and the other columns) validate clearly better, and never when the other columns
    predict nothing by themselves (``others``: the training matrix, labels and groups to check that on)."""
    from ..modalities.text.column import better
    from ..modalities.text.stage import TextScoresLearner

    table = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    greater = table[metric][1]
    result.leaderboard = sorted(result.leaderboard + stage.leaderboard,
                                key=lambda r: (np.isfinite(r["score"]), r["score"] if greater else -r["score"]),
                                reverse=True)
    col = text_cols[0]
    linear = stage.best_score.get(col, float("nan"))
    # One text column: its linear model alone is a candidate beside the trees, also when the table has other
    # columns (trees on the text model's out-of-fold scores of templated tickets split at 0.99 and sent a new
    # short phrasing of a known fault, and an empty text, to another class at 0.995)
    if result.learner is not None and len(text_cols) != 1:
        return
    # The simpler model is kept unless the trees validate clearly better (by more than fold noise): 1 % of a loss,
    # and for log loss at least 0.002 (near-perfect texts: 0.0000 against 0.0003 is noise, and a 4-tree extra-trees
    # won on it and answered new wordings at 0.5 / 1.0)
    tol = 0.01 * abs(linear) if metric in ("log_loss", "rmse", "mae", "mse", "mape") else 0.002
    if metric == "log_loss":
        tol = max(tol, LOG_LOSS_FLOOR)
    margin = -tol if greater else tol
    trees_win = np.isfinite(result.best_score) and (not np.isfinite(linear)
                                                    or better(metric, result.best_score + margin, linear))
    silent = None
    if result.learner is not None and trees_win and np.isfinite(linear) and others is not None:
        other_idx = _other_columns(pre, stage)
        if other_idx:
            silent = _silent_columns(*others, other_idx, task=task, n_classes=n_classes, budget=budget, seed=seed)
    if silent is not None:  # the trees' gain can only be a re-reading of the text scores: not kept
        trees_win = False
    if result.learner is None or not trees_win:
        model = stage.models[col]
        if result.learner is not None:  # the trees lost: notes on how they were chosen would name the wrong model
            result.notes = [n for n in result.notes if not n.startswith("Learners tied for the best score")]
            cols_named = [c["name"] for c in pre.input_columns if c["name"] != col]
            shown = ", ".join(map(repr, cols_named[:5])) + (" ..." if len(cols_named) > 5 else "")
            if silent is not None:
                result.notes.append(
                    f"Kept the text model of {col!r} ({model.candidate}) alone: {shown} predict nothing by "
                    f"themselves ({silent}), so the trees on them and the text ({result.best_score:.4g} {metric} out "
                    f"of fold, against {linear:.4g}) could only re-read the text (its model's scores, its length), "
                    "which generalises worse to new wordings; the other columns are not used.")
            else:
                result.notes.append(
                    f"Kept the text model of {col!r} ({model.candidate}) alone: out of fold it scored {linear:.4g}, "
                    "the best tree learner on its scores" + (f" and {shown}" if cols_named else "")
                    + f" {result.best_score:.4g} ({metric}); the simpler model is kept unless the trees are clearly "
                    "better" + (", so the other columns are not used." if cols_named else "."))
        names = pre.feature_names
        cols = [names.index(n) for n in model.output_names]
        result.learner = TextScoresLearner(cols, task, n_classes)
        result.learner_name = f"text:{model.candidate.split()[0]}"
        result.config = {"text_model": model.candidate, "column": col}
        result.best_score, result.ensemble = linear, None
        result.refit = None  # the text model stands alone: nothing of the search is refit


def _other_columns(pre: TabularPreprocessor, stage) -> list[int]:
    """Feature positions of the input columns that are not text: neither a text model's scores nor what is
    measured on a text (its length, its number of words: ``COLUMN.length``, ``COLUMN.words``)."""
    text = {n for m in stage.models.values() for n in m.output_names}
    prefixes = tuple(f"{c['name']}." for c in pre.input_columns if c["kind"] == "text")
    return [i for i, n in enumerate(pre.feature_names) if n not in text and not n.startswith(prefixes)]


def _silent_columns(X, y, groups, idx: list[int], *, task: str, n_classes: int, budget, seed: int) -> str | None:
    """None when the columns ``idx`` carry signal by themselves (or there is no time to tell); else a short
    account of their out-of-fold loss against the baseline's. A few small LightGBM fits, 3 folds."""
    if budget is not None and budget.left() < 2.0:
        return None
    import lightgbm as lgb
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(y)) if len(y) <= SIGNAL_MAX_ROWS else np.sort(rng.choice(len(y), SIGNAL_MAX_ROWS, replace=False))
    Xo = np.asarray(X[rows][:, idx], dtype=np.float64)
    yo = y[rows]
    classify = task == "classification"
    if classify and np.bincount(yo.astype(int), minlength=n_classes).min() < 3:
        return None  # a class too rare for 3 folds: no verdict
    if groups is not None:
        folds = GroupKFold(n_splits=3).split(Xo, yo, np.asarray(groups)[rows])
    elif classify:
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed).split(Xo, yo)
    else:
        folds = KFold(n_splits=3, shuffle=True, random_state=seed).split(Xo)
    model_loss = base_loss = 0.0
    params = dict(n_estimators=60, learning_rate=0.1, num_leaves=15, min_child_samples=10, n_jobs=1, verbose=-1,
                  random_state=seed)
    for fit, val in folds:
        if classify:
            shares = (np.bincount(yo[fit].astype(int), minlength=n_classes) + 0.5) / (len(fit) + 0.5 * n_classes)
            p = np.full((len(val), n_classes), 1.0 / n_classes)
            if len(np.unique(yo[fit])) > 1:
                m = lgb.LGBMClassifier(**params).fit(Xo[fit], yo[fit])
                p = np.zeros((len(val), n_classes))
                p[:, m.classes_.astype(int)] = m.predict_proba(Xo[val])
            true = yo[val].astype(int)
            model_loss += -np.log(np.clip(p[np.arange(len(val)), true], 1e-15, 1)).sum()
            base_loss += -np.log(shares[true]).sum()
        else:
            m = lgb.LGBMRegressor(**params).fit(Xo[fit], yo[fit])
            model_loss += float(((m.predict(Xo[val]) - yo[val]) ** 2).sum())
            base_loss += float(((yo[fit].mean() - yo[val]) ** 2).sum())
        if budget is not None and budget.left() < 1.0:
            return None
    if not base_loss > 0 or model_loss < (1 - SIGNAL_GAIN) * base_loss:
        return None
    what = "log loss" if classify else "squared error"
    base = "the class shares" if classify else "the mean"
    return f"out-of-fold {what} {model_loss / len(yo):.3g} against {base_loss / len(yo):.3g} for {base}"
