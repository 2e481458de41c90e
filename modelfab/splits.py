"""Train/holdout splits: stratified for classes, grouped for recordings.

A group (a source file, a machine, a batch) never straddles train and
holdout, so nothing leaks from one to the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


MANY_GROUPS = 500
REPEATS_WORTH_GROUPING = 0.005  # rows repeating another row's inputs, as a share of all rows


def copy_groups(df: "pd.DataFrame", columns: list[str]) -> tuple[np.ndarray | None, int]:
    """(a group number per row, rows with the same values in ``columns`` sharing one, or None when under
    ``REPEATS_WORTH_GROUPING`` of the rows repeat; the number of repeating rows). A row and its copy on both
    sides of the holdout make the holdout score what the model memorised."""
    import pandas as pd

    if not columns or len(df) < 2:
        return None, 0
    h = pd.util.hash_pandas_object(df[columns], index=False).to_numpy()
    _, inverse = np.unique(h, return_inverse=True)
    repeats = int(len(h) - inverse.max() - 1)
    if repeats < max(2, REPEATS_WORTH_GROUPING * len(h)):
        return None, repeats
    return inverse, repeats


def holdout_split(y: np.ndarray | None, n: int, *, groups: np.ndarray | None = None, fraction: float = 0.2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, holdout). ``y`` given means stratify by class."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    idx = np.arange(n)
    if groups is not None and len(np.unique(groups)) > MANY_GROUPS:
        # many groups (rows that repeat): split one row per group, stratified by its class, then take every row
        # of a group to its side (sklearn's StratifiedGroupKFold took 13 s for 20,000 groups)
        _, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
        _, test_g = holdout_split(None if y is None else np.asarray(y)[first], len(first), fraction=fraction, seed=seed)
        test = np.isin(inverse, test_g)
        return idx[~test], idx[test]
    if groups is not None:
        groups = np.asarray(groups)
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise InvalidInput(f"Need at least 2 groups (files) to hold some out for testing; got {n_groups}.")
        if y is not None:
            n_splits = max(2, min(int(round(1 / fraction)), n_groups))
            try:
                splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                train, test = next(splitter.split(idx, y, groups))
                if len(np.unique(y[train])) == len(np.unique(y)):
                    train, test = _every_class_tested(np.asarray(y), train, test, groups)
                    if len(np.unique(np.asarray(y)[train])) == len(np.unique(y)):
                        return train, test
            except ValueError:
                pass
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        return next(splitter.split(idx, y, groups))
    test_size = max(int(round(n * fraction)), 1)
    if y is not None:
        n_classes = len(np.unique(y))
        test_size = max(test_size, n_classes)
        try:
            train, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
            return _every_class_tested(y, train, test)
        except ValueError:
            pass
    return tuple(train_test_split(idx, test_size=test_size, random_state=seed))  # type: ignore[return-value]


def _every_class_tested(y: np.ndarray, train: np.ndarray, test: np.ndarray,
                        groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split rounds a class of 3-4 rows to none held out (4 of 204 rows at 20 %: 0.8 -> 0): its
    accuracy would be unknown while the headline counts every class. One row (its group: all of it) of each class
    with at least three rows (in three groups) goes to the holdout, in exchange for one of the class the holdout
    holds most of; a group never straddles the two sides. A class of two keeps both to learn from: with one, the
    search's folds would lack it (XGBoost refuses such a fold), and the engine says it was not tested."""
    y = np.asarray(y)
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    in_test = np.zeros(len(y), bool)
    in_test[test] = True
    for lab in np.unique(y):
        rows = y == lab
        if in_test[rows].any() or len(np.unique(g[rows])) < 3:
            continue
        held = y[in_test]
        vals, num = np.unique(held, return_counts=True)
        spare = None
        for v in vals[np.argsort(-num, kind="stable")]:
            cand = np.unique(g[in_test & (y == v)])
            if len(cand) > 1:  # the class keeps a held-out row after giving one group back
                spare = cand[0]
                break
        if spare is None:
            break
        move = g[np.flatnonzero(rows & ~in_test)[0]]
        in_test[g == move] = True
        in_test[g == spare] = False
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)
