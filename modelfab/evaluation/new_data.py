"""A registered model measured on new labelled data (``modelfab evaluate MODEL PATH``): the acceptance step of an
integrator (next week's labelled images, the official TEST split of a UCR set, a table whose target column is
filled in). The model predicts the file or folder as ``modelfab predict`` does; the true labels come from the
same input: a table's target column, images' or recordings' class folders, a series file's own labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInput


def evaluate_on(model, path, *, label_column: str | None = None, normal_label: str | None = None) -> dict:
    """Metrics of ``model`` on the labelled items of ``path``: ``{"model", "input", "task", "n", "metrics",
    "notes"}``; ``metrics`` as the training holdout's (classification: accuracy, balanced accuracy, macro F1,
    confusion matrix, per class; regression: MAE, RMSE, R2; anomaly: AUC, detection and false-alarm rates at the
    model's threshold). ``label_column``: a table's (or a series table's) column of true labels (default: the
    model's target / label column); ``normal_label``: anomaly models, the label of good items (default: the
    model's, else the one label that reads as good: good, ok, 合格, ...)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or folder.", hint="Give the file or folder of labelled items.")
    man = model.manifest
    task, modality = man["task"], man.get("modality", "tabular")
    pred, truth, notes = _predicted_with_truth(model, path, modality, label_column)
    ok = truth.notna().to_numpy() & (truth.astype(str).str.strip() != "").to_numpy()
    if "error" in pred.columns:
        refused = pred["error"].fillna("").astype(str).str.len().to_numpy() > 0
        if refused.any():
            notes.append(f"{int(refused.sum())} item(s) could not be scored and are left out (e.g. "
                         f"{str(pred.loc[refused, 'error'].iloc[0])[:120]}).")
        ok &= ~refused
    if not ok.any():
        raise InvalidInput(f"{path.name}: no item has a true label to compare with; expected "
                           + _where_labels(modality, man),
                           hint="Give labelled items (or --label-column for a table's true values).")
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} item(s) without a true label are left out.")
    pred, truth = pred[ok].reset_index(drop=True), truth[ok].reset_index(drop=True)
    if task == "regression":
        from .metrics import regression_metrics

        y = pd.to_numeric(truth, errors="coerce")
        bad = y.isna().to_numpy()
        if bad.all():
            raise InvalidInput(f"{path.name}: the true values are not numbers (e.g. {str(truth.iloc[0])[:30]!r}).")
        metrics = regression_metrics(y[~bad].to_numpy(float), pred.loc[~bad, "prediction"].to_numpy(float))
    elif task == "anomaly":
        from .metrics import anomaly_metrics

        normal = _normal_label(man, set(truth.astype(str)), normal_label)
        y = (truth.astype(str) != normal).astype(int).to_numpy()
        notes.append(f"Items labelled {normal!r} are the normal ones; every other label counts as a defect.")
        metrics = anomaly_metrics(y, pred["score"].to_numpy(float), float(man["threshold"]))
    else:
        metrics, more = _classification(man, pred, truth)
        notes += more
    n = int(metrics.get("n", len(truth)))  # the items measured (labels the model does not know are left out)
    return {"model": model.ref, "input": str(path), "task": task, "n": n, "metrics": metrics, "notes": notes}


def _normal_label(man: dict, labels: set[str], given: str | None) -> str:
    """The label of good items: ``given``; else the model's when the data has it; else the data's one label that
    reads as good (good, ok, normal, pass, 合格, ...)."""
    if given is not None:
        if given not in labels:
            raise InvalidInput(f"--normal-label {given!r} names no folder of the data; its labels are "
                               f"{', '.join(map(repr, sorted(labels)[:8]))}.")
        return given
    model_normal = str(man.get("normal_label") or "normal")
    if model_normal in labels:
        return model_normal
    from ..training import resolve_normal_label

    found = resolve_normal_label(labels, "normal")
    if found not in labels:
        raise InvalidInput(f"Which label are the good items? The model's normal label {model_normal!r} names none of "
                           f"the data's labels ({', '.join(map(repr, sorted(labels)[:8]))}).",
                           hint="Pass --normal-label LABEL (the folder of good items).")
    return found


def _series_labels(model, path: Path, label_column: str | None) -> dict:
    """Series id -> its label, read from a long or wide table with the label column of training (or
    ``label_column``): prediction reads the series without it."""
    from ..series import SeriesOptions, read_file

    opts = SeriesOptions.from_dict(model.predictor.options)
    col = label_column or opts.label_column
    if not col:
        raise InvalidInput("The model was trained on labels from a labels file, not a column: expected "
                           "--label-column naming the column of true labels.")
    from dataclasses import replace

    from ..modalities.series.io import lenient_reading

    with lenient_reading():  # a series prediction refuses alone keeps its place here too
        sset = read_file(path, model.ws.settings, replace(opts.for_prediction(), label_column=col, labels_file=None),
                         with_labels=True)
    return {str(i): (None if lab is None else str(lab)) for i, lab in zip(sset.ids, sset.labels or [])}


def _where_labels(modality: str, man: dict) -> str:
    return {"tabular": f"the model's target column {man.get('target')!r} filled in",
            "image": "images in class folders (good/, scratch/, ...)",
            "signal": "recordings in class folders (normal/, fault/, ...)",
            "series": "a file with its class labels (a .ts file's labels, or the label column of training)",
            }.get(modality, "labelled items")


def _predicted_with_truth(model, path: Path, modality: str, label_column: str | None
                          ) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    import warnings

    man = model.manifest
    notes: list[str] = []
    if modality == "tabular":
        from ..modalities.tabular_io import open_table, read_table

        if not path.is_file():
            raise InvalidInput(f"{path}: expected a table file (CSV, Parquet, Excel) for a table model; got a folder.")
        src = open_table(path, model.ws.settings)
        df = read_table(src, model.ws.settings)
        col = label_column or man.get("target")
        if col in {c["name"] for c in model.predictor.used_columns} and col != man.get("target"):
            raise InvalidInput(f"{col!r} is an input of the model, not its true values; expected the column of true "
                               f"values (the model's target is {man.get('target')!r}).")
        if col not in df.columns:
            raise InvalidInput(f"{path.name}: expected the true values in column {col!r}; got columns "
                               f"{', '.join(map(repr, list(df.columns)[:8]))}.",
                               hint="Name the column with --label-column.")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            pred = model.predictor.predict(df.drop(columns=[col]))
        notes += list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)))
        truth = df[col].reset_index(drop=True)
        if man["task"] == "regression" and not pd.api.types.is_numeric_dtype(truth):
            from ..modalities.tabular_values import detect_number_format, to_numbers

            truth = to_numbers(truth, detect_number_format(truth, src.delimiter))  # '21,3' as training read it
        return pred.reset_index(drop=True), truth, notes
    if modality == "series":
        if label_column is not None and path.suffix.lower() == ".ts":
            raise InvalidInput("--label-column names a table's column; a .ts file carries its labels itself.",
                               hint="Leave out --label-column.")
        pred = model.predictor.predict_file(path)
        notes += list(pred.attrs.get("notes", []))
        truth = pred["label"] if "label" in pred.columns else pd.Series([None] * len(pred), index=pred.index)
        if label_column is not None or not truth.notna().any():  # a long/wide table: its label column, by id
            truth = pred["id"].astype(str).map(_series_labels(model, path, label_column))
        return pred.reset_index(drop=True), truth.reset_index(drop=True), notes
    if label_column is not None:
        raise InvalidInput("--label-column is for tables and series; images and recordings take their labels from "
                           "class folders.")
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".parquet", ".xlsx", ".xls", ".ts"):
        kind = "images" if modality == "image" else "recordings"
        raise InvalidInput(f"{model.ref} is a model of {kind}: expected a folder (or .zip) of {kind} in class folders; "
                           f"got the table {path.name}.", hint=f"Give {kind} sorted into one folder per class.")
    pred = model.predictor.predict_files([path])
    notes += list(pred.attrs.get("notes", []))
    if modality == "image":
        truth = pred["folder_label"] if "folder_label" in pred.columns else pd.Series([""] * len(pred))
    else:  # recordings: the first folder of each file's path inside PATH
        truth = pred["file"].astype(str).map(lambda f: f.split("/")[0] if "/" in f else "")
    return pred.reset_index(drop=True), truth.reset_index(drop=True), notes


def _classification(man: dict, pred: pd.DataFrame, truth: pd.Series) -> tuple[dict, list[str]]:
    from .metrics import classification_metrics

    labels = [str(v) for v in man.get("labels") or []]
    said = truth.astype(str).str.strip()
    known = said.isin(labels).to_numpy()
    notes = []
    if not known.all():
        unknown = list(dict.fromkeys(said[~known]))[:5]
        notes.append(f"{int((~known).sum())} item(s) carry labels the model does not know "
                     f"({', '.join(map(repr, unknown))}; its classes: {', '.join(map(repr, labels))}) and are left out.")
    if not known.any():
        raise InvalidInput(f"None of the true labels is a class of the model ({', '.join(map(repr, labels))}).",
                           hint="Check that this is the right model for the data.")
    cols = [f"proba_{lab}" for lab in labels]
    missing = [c for c in cols if c not in pred.columns]
    if missing:
        raise InvalidInput(f"The predictions have no {missing[0]!r} column; cannot compare probabilities.")
    proba = pred.loc[known, cols].to_numpy(float)
    codes = np.array([labels.index(v) for v in said[known]])
    threshold = man.get("decision_threshold") if len(labels) == 2 else None  # a moved binary threshold
    return classification_metrics(codes, proba, labels, threshold=threshold), notes
