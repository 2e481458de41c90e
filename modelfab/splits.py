"""Train/holdout splits: stratified for classes, grouped for recordings.

A group (a source file, a machine, a batch) never straddles train and
holdout, so nothing leaks from one to the other.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInput


def holdout_split(y: np.ndarray | None, n: int, *, groups: np.ndarray | None = None, fraction: float = 0.2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, holdout). ``y`` given means stratify by class."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    idx = np.arange(n)
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
            return tuple(train_test_split(idx, test_size=test_size, stratify=y, random_state=seed))  # type: ignore[return-value]
        except ValueError:
            pass
    return tuple(train_test_split(idx, test_size=test_size, random_state=seed))  # type: ignore[return-value]
