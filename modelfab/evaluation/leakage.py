"""Columns that give the target away: one input column that alone predicts the target on (nearly) every
training row.

Such a column is usually a copy of the label under another name (a defect code beside the defect type, an
inspection result recorded after the fact, a previous model's output). The model then learns the copy,
scores perfectly on the holdout, and fails on new rows where the column is missing or means something else.
Sometimes the relation is genuine (a hard physical limit), so this is a note for the person training, not a
refusal; ``--exclude`` leaves a column out.

The check is cheap and runs on at most ``MAX_ROWS`` training rows: a category (or a repeated value) must map
to one class, a number must split the classes with a few thresholds (a depth-limited tree on that column
alone), and for regression a number must rank with the target (|Spearman| >= 0.999). With a rare class the
share of rows alone says little (a column that misses a tenth of 1 % defects errs on 0.1 % of rows), so the
rule's error is also taken class by class: a column whose rule gets every class right on at least
``1 - BALANCED_ERROR`` of its rows (and errs on at most ``RULE_ERROR`` of all rows) is named too. Categories
and flags are checked before numbers (cheaper, and where copies usually are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_ROWS = 20_000
MAX_COLUMNS = 300
MIN_ROWS = 20
RULE_ERROR = 0.005  # a column "determines" the target when its one-column rule errs on at most 0.5 % of rows
SHARE_OF_BASE = 0.1  # ... and on at most a tenth of the rows the majority class alone gets wrong
BALANCED_ERROR = 0.05  # ... or errs on at most 5 % of each class's rows (a rare class: an inspector's verdict)


def _errors(wrong: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(share of rows a rule gets wrong, its worst share of wrong rows in any one class)."""
    worst = max(float(wrong[y == c].mean()) for c in np.unique(y))
    return float(wrong.mean()), worst


def _class_rule_error(values: pd.Series, y: np.ndarray) -> tuple[float, float] | None:
    """Errors (see ``_errors``) of "each value -> its most common class" when values repeat (not an id); None
    when they do not."""
    keys = values.astype(str).where(values.notna(), "\0missing")
    counts = keys.map(keys.value_counts())
    if (counts >= 2).mean() < 0.9 or keys.nunique() > len(keys) / 2:
        return None  # mostly unique values: any id "determines" the rows it names
    table = pd.crosstab(keys, y)
    rule = table.idxmax(axis=1)
    return _errors(keys.map(rule).to_numpy() != y, y)


def _threshold_rule_error(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[float, float]:
    from sklearn.tree import DecisionTreeClassifier

    ok = np.isfinite(x)
    if ok.sum() < MIN_ROWS:
        return 1.0, 1.0
    tree = DecisionTreeClassifier(max_leaf_nodes=max(2, 2 * n_classes), min_samples_leaf=2, random_state=0)
    tree.fit(x[ok].reshape(-1, 1), y[ok])
    wrong = np.ones(len(x), bool)  # a missing value is a miss of the rule
    wrong[ok] = tree.predict(x[ok].reshape(-1, 1)) != y[ok]
    return _errors(wrong, y)


def _numbers(s: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    return None


def target_copies(df: pd.DataFrame, columns: list[dict], y: np.ndarray, *, task: str, n_classes: int,
                  target: str, seed: int = 0, seconds: float = 2.0) -> list[dict]:
    """The input ``columns`` (schema entries) that alone predict ``y`` on the rows of ``df``: a list of
    {"column", "rule", "agreement"} (agreement: share of rows the one-column rule gets right, or |Spearman|).
    Stops looking after ``seconds`` (the columns checked by then are reported)."""
    import time

    import sklearn.tree  # noqa: F401  (its first import takes seconds; not on the clock of the columns)

    deadline = time.monotonic() + seconds
    n = len(df)
    if n < MIN_ROWS:
        return []
    if n > MAX_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(n, MAX_ROWS, replace=False))
        df, y = df.iloc[pick], y[pick]
    found = []
    if task == "classification":
        base_error = 1.0 - np.bincount(y.astype(int), minlength=max(n_classes, 1)).max() / len(y)
        if base_error <= 0:
            return []
        limit = min(RULE_ERROR, SHARE_OF_BASE * base_error)
    cheap_first = sorted(columns[:MAX_COLUMNS], key=lambda c: {"boolean": 0, "categorical": 1}.get(c["kind"], 2))
    for col in cheap_first:
        if time.monotonic() > deadline:
            break
        name, kind = col["name"], col["kind"]
        if name == target or kind in ("id", "empty") or name not in df.columns:
            continue
        s = df[name]
        if task == "classification":
            tries = []
            err = _class_rule_error(s, y)
            if err is not None:
                tries.append((err, "each value stands for one class"))
            x = _numbers(s) if kind in ("numeric", "boolean") else None
            if x is not None:
                tries.append((_threshold_rule_error(x, y, n_classes), "a few thresholds on it split the classes"))
            hits = [(err, rule) for (err, worst), rule in tries
                    if err <= limit or (err <= RULE_ERROR and worst <= BALANCED_ERROR)]
            if hits:
                err, rule = min(hits, key=lambda t: t[0])  # the first (the plainer) rule on a tie
                found.append({"column": name, "rule": rule, "agreement": round(1.0 - err, 4)})
        else:
            x = _numbers(s) if kind == "numeric" else None
            if x is None:
                continue
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.mean() < 0.99 or np.ptp(x[ok]) == 0:
                continue
            rho = pd.Series(x[ok]).corr(pd.Series(y[ok]), method="spearman")
            if np.isfinite(rho) and abs(rho) >= 0.999:
                found.append({"column": name, "rule": "it rises and falls with the target", "agreement": round(abs(float(rho)), 4)})
    order = {c["name"]: i for i, c in enumerate(columns)}
    return sorted(found, key=lambda f: order[f["column"]])  # as the table has them


def note_for(found: list[dict], target: str) -> str | None:
    if not found:
        return None
    shown = "; ".join(f"{f['column']!r} ({f['rule']}: {f['agreement']:.1%} of training rows)" for f in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    first = found[0]["column"]
    if not first.replace("_", "").replace("-", "").replace(".", "").isalnum():  # spaces, commas: quote it
        first = "'" + first.replace("'", "'\\''") + "'"
    return (f"Column(s) that alone predict {target!r}: {shown}{more}. If such a column copies the label or is "
            f"recorded after the outcome, new data will not carry it and the metrics here are too good: train "
            f"again with --exclude {first}.")
