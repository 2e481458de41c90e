"""Scoring an uploaded file (REST ``predict-file``) and shaping each answer row as ``/predict`` answers it."""

from __future__ import annotations

import json

from ..errors import TooLarge, UnsupportedFormat


def _score_upload(m, data: bytes, filename: str, settings) -> dict:
    import os
    import tempfile
    from pathlib import Path

    if hasattr(m.predictor, "predict_bytes"):  # recordings, images, files of series
        result = m.predictor.predict_bytes(data, filename)
        # every answer has `predictions`, a list of rows, as /predict has; `result` stays for older clients
        rows = result["predictions"] if isinstance(result.get("predictions"), list) else [result]
        answer = {"predictions": [_as_prediction(r) for r in rows], "result": result}
        if result.get("notes"):  # what reading did to the values (a series' gaps filled, ...), as tables say it
            answer["notes"] = list(result["notes"])
        return answer
    suffix = Path(os.path.basename(filename)).suffix.lower()
    if suffix not in (".csv", ".tsv", ".parquet", ".pq", ".xlsx"):
        raise UnsupportedFormat(f"Upload a CSV, Parquet or Excel table for this model; got {filename!r}.")
    from ..modalities.tabular_io import open_table, read_table

    with tempfile.TemporaryDirectory(prefix="modelfab-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        df = read_table(open_table(path, settings), settings)
    if len(df) > settings.max_records_per_request:
        raise TooLarge(f"{len(df):,} rows in one upload; the limit is {settings.max_records_per_request:,}.",
                       hint="Use `modelfab predict` for large files.")
    import warnings

    with warnings.catch_warnings():  # the notes go to the client, not the server's log
        warnings.simplefilter("ignore", UserWarning)
        pred = m.predictor.predict(df)
    rows = [_as_prediction(r) for r in json.loads(pred.to_json(orient="records", double_precision=15))]
    _echo_unused(rows, df, m.predictor)
    answer = {"predictions": rows}
    if pred.attrs.get("notes"):  # values given but not readable ('abc', 'n/a' for a date): scored as missing
        answer["notes"] = list(pred.attrs["notes"])
    return answer


ECHOED_COLUMNS = 5


def _echo_unused(rows: list[dict], df, predictor) -> None:
    """Each answer row repeats the uploaded table's columns the model does not read (an order number, a part id:
    up to :data:`ECHOED_COLUMNS`), so a client can match answers to its rows; a name the answer already uses is
    left out."""
    used = {c["name"] for c in getattr(predictor, "input_columns", [])}
    target = (getattr(predictor, "manifest", None) or {}).get("target")
    taken = set().union(*(r.keys() for r in rows)) if rows else set()
    extra = [c for c in df.columns if c not in used and c != target and str(c) not in taken][:ECHOED_COLUMNS]
    if not extra:
        return
    values = json.loads(df[extra].to_json(orient="records", date_format="iso"))
    for row, echo in zip(rows, values):
        row.update(echo)


def _as_prediction(row: dict) -> dict:
    """A row of a file's answer in /predict's terms as well: ``prediction`` (a classifier's ``label``) and
    ``probabilities`` as an object (``proba_<class>`` columns, or the JSON text a CSV row holds); the row's own
    fields stay."""
    out = dict(row)
    if "prediction" not in out and "label" in out and "score" not in out:
        out = {"prediction": out["label"], **out}
    probs = out.get("probabilities")
    if isinstance(probs, str):
        try:
            out["probabilities"] = json.loads(probs)
        except ValueError:
            pass
    elif probs is None:
        cols = {k[len("proba_"):]: v for k, v in out.items() if k.startswith("proba_")}
        if cols:
            out["probabilities"] = cols
    probs = out.get("probabilities")
    if isinstance(probs, dict) and probs and all(v is None for v in probs.values()):
        out["probabilities"] = probs = None  # a refused item: null, as /predict answers it
    if "confidence" not in out and isinstance(probs, dict) and str(out.get("prediction")) in probs:
        out["confidence"] = probs[str(out["prediction"])]  # every classifier row has it, as /predict's do
    for key in ("warning", "error", "note"):  # said only when there is something to say, as /predict does
        if out.get(key) in ("", None) and key in out:
            del out[key]
    if "confidence" in out and out["confidence"] is None:  # a refused item has none
        del out["confidence"]
    return out
