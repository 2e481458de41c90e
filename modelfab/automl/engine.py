"""Training a tabular model: validate the target, split, preprocess, search, evaluate.

Everything that costs time asks the one :class:`Budget`; time for the
holdout evaluation, the report and the package is reserved up front so the
wall-clock promise holds.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from ..modalities.tabular import TabularPreprocessor
from ..splits import holdout_split
from .budget import Budget
from .learners import FittedLearner, feature_importance
from .search import CLASSIFICATION_METRICS, REGRESSION_METRICS, Progress, ProgressFn, SearchResult, run_search

TASKS = ("auto", "classification", "regression")
MIN_ROWS = 10


@dataclass
class TrainResult:
    task: str
    metric: str
    labels: list | None
    preprocessor: TabularPreprocessor
    learner: FittedLearner
    learner_name: str
    config: dict
    leaderboard: list[dict]
    metrics: dict
    y_holdout: np.ndarray
    X_holdout: np.ndarray
    holdout_index: np.ndarray  # rows of the (target-cleaned) frame that form the holdout
    proba_holdout: np.ndarray | None
    pred_holdout: np.ndarray | None
    feature_importance: dict[str, float]
    trials: int
    n_train: int
    n_holdout: int
    notes: list[str] = field(default_factory=list)
    ensemble: dict | None = None
    manifest_extra: dict = field(default_factory=dict)  # modality extras for the manifest (e.g. "text")
    # the packaged learner's own predictions on X_holdout when it is not the model the holdout measured
    # (refit on every row after the evaluation); the package check compares with these
    check_raw: np.ndarray | None = None


def reserve_for(total: float) -> float:
    """Seconds kept back from the search for evaluation, report and packaging."""
    return min(60.0, 2.0 + 0.1 * total)


def _target_error(df: pd.DataFrame, target: str) -> InvalidInput:
    close = difflib.get_close_matches(target, [str(c) for c in df.columns], n=3, cutoff=0.5)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}?" if close else (
        "Columns are: " + ", ".join(repr(str(c)) for c in list(df.columns)[:15]) + ("..." if len(df.columns) > 15 else "") + ".")
    return InvalidInput(f"Target column {target!r} is not in the dataset.", hint=hint)


def infer_task(y: pd.Series, kind: str) -> str:
    if kind in ("categorical", "boolean", "text"):
        return "classification"
    nunique = y.nunique()
    if kind == "numeric":
        values = pd.to_numeric(y, errors="coerce").dropna()
        integral = bool(np.all(np.mod(values.to_numpy(), 1) == 0))
        if integral and nunique <= 20:
            return "classification"
        return "regression"
    return "classification"


def _label_sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.integer, np.floating)) else (1, 0.0, str(v))


# Names of the good/normal class: in a two-class target it is the negative one,
# so recall, precision and the threshold speak about the other (the defect).
NORMAL_CLASS_NAMES = frozenset({
    "normal", "ok", "good", "pass", "passed", "free", "healthy", "negative", "no", "false", "0",
    "i.o.", "io", "in_spec", "accept", "accepted", "合格", "正常", "良品", "无缺陷", "否",
})


def _spelling_twins(rare, classes) -> str:
    """'calibration ' (1 row) beside 'calibration': the same class written another way (a space, the case, a dash),
    hard to see in quotes; empty when none of the rare classes has such a twin."""
    from ..modalities.tabular_values import spelling_key

    found = []
    for r in rare:
        same = [c for c in classes if c != r and spelling_key(c) == spelling_key(r)]
        if same:
            found.append(f"{r!r} is {same[0]!r} written another way" + (" (a space at its end)" if str(r).rstrip()
                                                                         == str(same[0]) else ""))
    return ("; ".join(found) + ".") if found else ""


def order_labels(counts: pd.Series) -> list:
    """Class labels in code order. Two classes: the good/normal one (by name)
    first, else the more frequent one first, so the positive class (code 1)
    is the defect/fault or the rarer one."""
    labels = sorted(counts.index.tolist(), key=_label_sort_key)
    if len(labels) != 2:
        return labels
    normal = [lab for lab in labels if str(lab).strip().lower() in NORMAL_CLASS_NAMES]
    if len(normal) == 1:
        return normal + [lab for lab in labels if lab is not normal[0]]
    if counts[labels[0]] < counts[labels[1]]:
        return labels[::-1]
    return labels


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def prepare_target(df: pd.DataFrame, schema: dict, target: str, task: str) -> tuple[pd.DataFrame, np.ndarray, str, list | None, list[str]]:
    if target not in df.columns:
        raise _target_error(df, target)
    if task not in TASKS:
        raise InvalidInput(f"Task must be one of {', '.join(TASKS)}; got {task!r}.")
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    kind = kinds.get(target, "categorical")
    y_raw = df[target]
    notes: list[str] = []
    n_missing = int(y_raw.isna().sum())
    if n_missing == len(df):
        raise InvalidInput(f"Target column {target!r} has no values (all {len(df):,} are missing).",
                           hint="Choose a column that holds the outcome you want to predict.")
    if kind == "id":
        raise InvalidInput(f"Target column {target!r} looks like an identifier (every value is different); "
                           "a model cannot learn to predict it.", hint="Choose the outcome column instead.")
    if n_missing:
        notes.append(f"{n_missing:,} rows without a target value were left out of training.")
        df = df[y_raw.notna()].reset_index(drop=True)
        y_raw = df[target]
    if task == "auto":
        task = infer_task(y_raw, kind)
    if len(df) < MIN_ROWS:
        raise InvalidInput(f"Only {len(df)} rows have a target value; at least {MIN_ROWS} are needed to train and test a model.")
    if task == "regression":
        y = pd.to_numeric(y_raw, errors="coerce")
        bad = int(y.isna().sum())
        if bad:
            raise InvalidInput(f"Regression needs a numeric target, but {bad:,} values of {target!r} are not numbers "
                               f"(e.g. {str(y_raw[y.isna()].iloc[0])[:40]!r}).",
                               hint="Use --task classification, or clean the column.")
        if y.nunique() < 2:
            raise InvalidInput(f"Target column {target!r} has a single value ({y.iloc[0]}); nothing to learn.")
        return df, y.to_numpy(dtype=float), task, None, notes
    values = y_raw.map(_py)
    counts = values.value_counts()
    if len(counts) < 2:
        raise InvalidInput(f"Target column {target!r} has a single class ({counts.index[0]!r}); "
                           "classification needs at least two.",
                           hint="Add examples of the other class(es); for normal-only data use anomaly detection.")
    rare = counts[counts < 2]
    if len(rare):
        twins = _spelling_twins(rare.index[:5], counts.index)
        raise InvalidInput(f"Class(es) {', '.join(repr(c) for c in rare.index[:5])} of {target!r} have only one row; "
                           "each class needs at least two (one to learn from, one to test on)."
                           + (f" {twins}" if twins else ""),
                           hint="Give each class one spelling in the file and import it again." if twins else
                           "Add examples, merge the class into another, or remove the row.")
    if len(counts) > 200:
        raise InvalidInput(f"Target column {target!r} has {len(counts)} classes; at most 200 are supported.",
                           hint="Use --task regression for a numeric quantity.")
    labels = order_labels(counts)
    code = {v: i for i, v in enumerate(labels)}
    y = values.map(code).to_numpy(dtype=np.int64)
    few = counts[counts < 5]
    if len(few):
        notes.append(f"Class(es) {', '.join(f'{c!r} ({n})' for c, n in list(few.items())[:5])} have fewer than 5 "
                     "examples: the 5-fold validation cannot place one in every fold, so scores for them are rough. "
                     "Add examples of them.")
    ratio = counts.max() / counts.min()
    if ratio >= 5:
        notes.append(f"Classes are imbalanced ({ratio:.0f}:1); splits are stratified and metrics that weigh every class "
                     "(balanced accuracy, macro F1, ROC AUC) are reported.")
    return df, y, task, labels, notes


def _rare_class_threshold_note(y_test: np.ndarray, p1: np.ndarray, labels: list) -> str | None:
    """A note when the default threshold (0.5) finds under three quarters of the held-out rows of the second (rarer
    or defect) class: the usual case of a rare defect, where 0.5 is rarely the threshold a plant wants. It names
    the smallest false-alarm rate (1, 5 or 10 %) whose threshold finds clearly more, or says none does."""
    from ..training_threshold import binary_threshold_for_false_alarm

    pos, neg = p1[y_test == 1], p1[y_test == 0]
    if len(pos) < 5 or len(neg) < 20:
        return None
    found = float((pos >= 0.5).mean())
    if found >= 0.75:  # a quarter or more of the defects let through is worth a word (a tester's model missed 36 %)
        return None
    head = (f"At the default threshold (probability of {labels[1]!r} >= 0.5) the model finds {found:.0%} of the "
            f"held-out {labels[1]!r} rows ({int((pos >= 0.5).sum())} of {len(pos)}).")
    for rate in (0.01, 0.05, 0.1):
        try:
            thr = binary_threshold_for_false_alarm(y_test, p1, rate)
        except InvalidInput:  # too many negative rows at probability 1: no threshold for this rate
            continue
        better, flagged = float((pos >= thr).mean()), float((neg >= thr).mean())
        if better >= found + 0.15:
            return (f"{head} A lower threshold finds more: `modelfab models threshold MODEL --max-false-alarm "
                    f"{rate:g}` (or the slider on the model's page) sets {thr:.4g}, where on this holdout it finds "
                    f"{better:.0%} and flags {flagged:.1%} of {labels[0]!r} (measured on the rows that chose it: "
                    "expect a little worse on new rows).")
    if found >= 0.5:
        return None
    return (f"{head} No threshold that flags at most 10% of {labels[0]!r} finds many more: the inputs tell the "
            "classes apart poorly. More examples of the rare class, or inputs that show the cause, would help.")


def check_learners(learners) -> tuple[str, ...]:
    from .search import FLAML_LEARNERS, LEARNERS

    if not learners:
        return LEARNERS
    bad = [x for x in learners if x not in LEARNERS]
    if bad:
        raise InvalidInput(f"Unknown learner(s) {', '.join(map(repr, bad))}; choose from {', '.join(LEARNERS)}.")
    if "mlp" in learners and "lgbm" not in learners:
        raise InvalidInput("The network (mlp) is fitted after the search together with the finished LightGBM; "
                           f"got {', '.join(learners)} without lgbm.", hint="Add lgbm, or leave mlp out.")
    if not any(x in FLAML_LEARNERS for x in learners):
        raise InvalidInput("The network (mlp) is only fitted beside the tree learners of the search; got only "
                           f"{', '.join(learners)}.", hint=f"Add one of {', '.join(FLAML_LEARNERS)}.")
    return tuple(dict.fromkeys(learners))


def default_metric(task: str, n_classes: int) -> str:
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "log_loss"


def class_weights(y: np.ndarray, task: str, metric: str, n_classes: int) -> np.ndarray | None:
    """Row weights that make every class count the same, for the metrics that weigh every class; else None."""
    if task != "classification" or metric not in ("f1", "macro_f1", "balanced_accuracy"):
        return None
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return (len(y) / (n_classes * np.maximum(counts, 1)))[y]


def _without(schema: dict, exclude: tuple[str, ...], target: str) -> dict:
    """``schema`` without the ``exclude`` columns (each must exist and not be the target)."""
    if not exclude:
        return schema
    names = [c["name"] for c in schema["columns"]]
    for col in exclude:
        if col == target:
            raise InvalidInput(f"--exclude {col!r} is the target column; expected input columns to leave out.")
        if col not in names:
            import difflib

            close = difflib.get_close_matches(col, names, n=1)
            raise InvalidInput(f"--exclude {col!r}: no such column.",
                               hint=(f"Did you mean {close[0]!r}? " if close else "") + "Columns are: "
                               + ", ".join(repr(n) for n in names[:15]) + ("..." if len(names) > 15 else "") + ".")
    return dict(schema, columns=[c for c in schema["columns"] if c["name"] not in exclude])


def train_tabular(df: pd.DataFrame, schema: dict, *, target: str, task: str = "auto", budget: Budget,
                  metric: str | None = None, seed: int = 0, groups: np.ndarray | None = None,
                  progress: ProgressFn | None = None, learners: tuple[str, ...] | None = None,
                  ensemble: bool = True, executor=None, exclude: tuple[str, ...] = (),
                  check_copies: bool = True) -> TrainResult:
    """AutoML on a table. ``check_copies``: look for input columns that alone predict the target (tables and
    text; features computed from images or recordings are left out of that check)."""
    from ..evaluation.leakage import note_for, target_copies
    from ..evaluation.metrics import classification_metrics, regression_metrics

    budget.reserve(reserve_for(budget.total))
    schema = _without(schema, exclude, target)
    df, y, task, labels, notes = prepare_target(df, schema, target, task)
    n_classes = len(labels) if labels else 0
    metric = metric or default_metric(task, n_classes)
    table = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric not in table:
        raise InvalidInput(f"Metric {metric!r} does not fit a {task} task; expected one of {', '.join(table)}.")
    if metric in ("ap", "f1") and n_classes > 2:
        raise InvalidInput(f"Metric {metric!r} is for two classes; this target has {n_classes}.",
                           hint="Use macro_f1, accuracy, log_loss or roc_auc.")

    holdout_groups = groups
    if groups is None:  # a table: rows repeating another row's inputs stay on one side of the holdout
        from ..splits import copy_groups

        inputs = [c["name"] for c in schema["columns"] if c["name"] != target and c["kind"] not in ("id", "empty")
                  and c["name"] in df.columns]
        holdout_groups, repeats = copy_groups(df, inputs)
        if holdout_groups is not None:
            notes.append(f"{repeats:,} of {len(df):,} rows repeat another row's inputs exactly; each set of copies "
                         "was kept on one side of the holdout, so its scores are not what the model memorised. If "
                         "the copies are an export error, remove them.")
    train_idx, test_idx = holdout_split(y if task == "classification" else None, len(df), groups=holdout_groups,
                                        seed=seed)
    if any(c["kind"] == "text" and c["name"] != target for c in schema["columns"]):
        train_idx = _fit_text_to_budget(df, schema, target, y, train_idx, test_idx, task, budget, seed, notes)
    pre = TabularPreprocessor().fit(df.iloc[train_idx], schema, exclude=(target,))
    unused = [(c["name"], c["kind"]) for c in schema["columns"] if c["name"] != target and c["kind"] in ("id", "empty")]
    if unused and check_copies:
        shown = ", ".join(f"{n!r} ({'no values' if k == 'empty' else 'an id: a different value on almost every row'})"
                          for n, k in unused[:6])
        notes.append(f"Not used for training: {shown}{' ...' if len(unused) > 6 else ''}.")
    copies = target_copies(df.iloc[train_idx], pre.input_columns, y[train_idx], task=task,
                           n_classes=len(labels) if labels else 0, target=target, seed=seed,
                           seconds=min(5.0, max(1.5, 0.03 * budget.total))) if check_copies else []
    if copies:
        notes.append(note_for(copies, target))
    y_train, y_test = y[train_idx], y[test_idx]
    if task == "classification" and labels:
        untested = [str(labels[c]) for c in sorted(set(np.unique(y_train)) - set(np.unique(y_test)))]
        if untested:  # a class of two rows keeps both to learn from (splits._every_class_tested)
            notes.append(f"Class(es) {', '.join(map(repr, untested[:5]))} have no held-out row (too few to spare one): "
                         "the metrics do not measure them. Add examples of them.")
    text_cols = [c["name"] for c in pre.input_columns if c["kind"] == "text"]
    stage = None
    if text_cols:  # free text: TF-IDF + linear model per column; its out-of-fold scores feed the search
        from ..modalities.text.stage import fit_text_stage

        share = 0.7 if len(text_cols) == len(pre.input_columns) else 0.4
        tried: list[dict] = []

        def on_candidate(row: dict, best: float) -> None:
            tried.append(row)
            if progress is not None:
                progress(Progress(budget.elapsed(), budget.left(), len(tried), best, row["learner"], metric,
                                  f"text model of {row['config']['column']!r}"))

        stage = fit_text_stage(df.iloc[train_idx], text_cols, y_train, n_classes=n_classes, labels=labels,
                               metric=metric, seconds=budget.left_for_search() * share, seed=seed,
                               groups=None if groups is None else groups[train_idx], on_candidate=on_candidate)
        pre.text_models = stage.models
        notes += stage.notes
    X_train = pre.transform(df.iloc[train_idx], text_scores=stage.oof if stage else None)
    X_test = pre.transform(df.iloc[test_idx])

    weights = class_weights(y_train, task, metric, n_classes)
    if stage is not None:
        import flaml  # noqa: F401 - imported before the check below (the import alone can take a second)
    if stage is not None and budget.left() < 1.5:  # the text model used the time: keep it alone, skip the trees
        result = SearchResult(learner=None, learner_name="", config={}, leaderboard=[], metric=metric,
                              best_score=float("nan"), trials=0)
        notes.append(f"The text model of {text_cols[0]!r} used the whole budget: it predicts alone, no tree learner "
                     "was tried" + (" and the other columns are not used" if len(pre.input_columns) > 1 else "")
                     + ". Give a larger --budget.")
    else:
        result = run_search(X_train, y_train, task=task, metric=metric, budget=budget, n_classes=n_classes, seed=seed,
                            groups=None if groups is None else groups[train_idx], sample_weight=weights,
                            progress=progress, learners=check_learners(learners), ensemble=ensemble,
                            executor=executor)
    if stage is not None:
        from .text_pick import pick_text_learner

        pick_text_learner(result, stage, pre, text_cols, task=task, metric=metric, n_classes=n_classes,
                          others=(X_train, y_train, None if groups is None else groups[train_idx]), budget=budget,
                          seed=seed)
    notes += result.notes  # after the pick: a note on how the trees were chosen goes when the text model is kept
    raw = result.learner.predict_raw(X_test)
    if task == "classification":
        metrics = classification_metrics(y_test, raw, [str(v) for v in labels])
        proba, pred = raw, None
    else:
        metrics = regression_metrics(y_test, raw)
        proba, pred = None, raw
    metrics["primary"] = {"name": metric, "validation_score": result.best_score}
    if task == "classification" and n_classes == 2:
        note = _rare_class_threshold_note(y_test, raw[:, 1], labels)
        if note:
            notes.append(note)
    if len(test_idx) < 30:
        notes.append(f"The holdout has only {len(test_idx)} rows: treat its metrics as rough.")
    check_raw = None
    if result.refit is not None:
        refit = _refit_on_every_row(result, X_train, y_train, X_test, y_test, task=task, metric=metric,
                                    n_classes=n_classes, budget=budget, notes=notes)
        if refit is not None:
            result.learner, check_raw = refit, refit.predict_raw(X_test)
    fi = feature_importance(result.learner, pre.feature_names)
    if getattr(result.learner, "format", "") == "text-scores":  # the text model alone: its column is the only input
        fi = {str(result.config.get("column") or text_cols[0]): 1.0}  # (its k class scores at 1/k each said nothing)
    extra = {"target_copies": copies} if copies else {}
    if stage is not None:
        from ..modalities.text.report import holdout_examples

        extra["text"] = {"columns": text_cols, "candidates": {c: m.candidate for c, m in stage.models.items()},
                         "examples": holdout_examples(df.iloc[test_idx][text_cols[0]], y_test, raw, task, labels)}
    return TrainResult(
        task=task, metric=metric, labels=labels, preprocessor=pre, learner=result.learner,
        learner_name=result.learner_name, config=result.config, leaderboard=result.leaderboard,
        metrics=metrics, y_holdout=y_test, X_holdout=X_test, holdout_index=np.asarray(test_idx), proba_holdout=proba, pred_holdout=pred,
        feature_importance=fi, trials=result.trials,
        n_train=len(train_idx), n_holdout=len(test_idx), notes=notes, ensemble=result.ensemble, manifest_extra=extra,
        check_raw=check_raw,
    )


def _refit_on_every_row(result: SearchResult, X_train, y_train, X_test, y_test, *, task: str, metric: str,
                        n_classes: int, budget: Budget, notes: list[str]):
    """Large tables: once the holdout has scored the chosen models, fit them again on the training and holdout
    rows together (as many trees per row, the same settings), in the time left before evaluation and packaging.
    The metrics stay those the holdout measured. None when not even one model fits in the time."""
    X_all, y_all = np.vstack([X_train, X_test]), np.concatenate([y_train, y_test])
    weights = class_weights(y_all, task, metric, n_classes)
    learner, refit = result.refit.run(X_all, y_all, task=task, n_classes=n_classes, seconds=budget.left_for_search(),
                                      sample_weight=weights)
    total = len(result.refit.members)
    if not refit:
        return None
    what = "The model was" if total == 1 else (f"All {total} models of the ensemble were" if refit == total
                                               else f"{refit} of the {total} models of the ensemble were")
    notes.append(f"{what} fitted again on all {len(y_all):,} rows (training and holdout) after the holdout "
                 "evaluation, with the same settings; the holdout metrics are those of the model fitted without "
                 "the holdout rows.")
    return learner


def _fit_text_to_budget(df, schema, target, y, train_idx, test_idx, task, budget: Budget, seed: int,
                        notes: list[str]) -> np.ndarray:
    """Featurising text is the one cost that grows with the rows before any candidate runs: measure it on a
    sample, reserve time to featurise the holdout and check the package, and when the training rows would not
    fit in half the text stage's time, train on a random part of them (noted)."""
    from ..modalities.text.stage import seconds_per_row

    cols = [c["name"] for c in schema["columns"] if c["kind"] == "text" and c["name"] != target]
    per_row = seconds_per_row(df.iloc[train_idx], cols)
    budget.reserve(reserve_for(budget.total) + 2.0 * per_row * len(test_idx))
    room = 0.5 * 0.7 * budget.left_for_search()
    if per_row * len(train_idx) <= room or len(train_idx) <= 1000:
        return train_idx
    keep = max(1000, int(room / per_row))
    rng = np.random.default_rng(seed)
    if task == "classification":  # keep every class: at least 2 rows of each, the rest at random
        picks = [rng.permutation(train_idx[y[train_idx] == c])[:2] for c in np.unique(y[train_idx])]
        first = np.concatenate(picks)
        rest = rng.permutation(np.setdiff1d(train_idx, first))[: max(0, keep - len(first))]
        kept = np.sort(np.concatenate([first, rest]))
    else:
        kept = np.sort(rng.choice(train_idx, keep, replace=False))
    notes.append(f"Featurising the texts of all {len(train_idx):,} training rows would not fit in the budget "
                 f"({budget.total:.0f} s): the model was trained on a random {len(kept):,} of them. "
                 "Give a larger --budget to use them all.")
    return kept
