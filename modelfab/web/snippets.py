"""Code snippets that call a model on ``modelfab serve``, shaped as the server wants them per modality.

Images and recordings are uploaded as a file to ``/predict-file`` (multipart field ``file``); series are
sent as JSON ``values`` (one channel) or ``channels`` (one list per channel); tables and text as JSON
records with every input column, filled with the first row of the training dataset where it can be read
(else ``null``, which the server reads as missing).
"""

from __future__ import annotations

import json
import math

# an example upload per file modality: the name only shows which kind of file to send
FILE_EXAMPLE = {"image": "part.png", "signal": "recording.wav"}
SERIES_EXAMPLE = [0.0, 0.5, 1.0, 0.5]
MAX_TEXT = 80


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (bool, int, float)) or v is None:
        return v
    s = str(v)
    return s[:MAX_TEXT]


def example_record(ws, model) -> dict:
    """The model's input columns with the first row of its training dataset (``null`` where unknown)."""
    cols = [c["name"] for c in (model.manifest.get("input_schema") or {}).get("columns", [])]
    rec = {c: None for c in cols}
    data = model.manifest.get("data") or {}
    try:
        import pyarrow.parquet as pq

        ds = ws.dataset(f"{data.get('dataset')}:{int(data.get('version'))}")
        pf = pq.ParquetFile(ws.blob_path(ds.data_sha))
        have = [c for c in cols if c in pf.schema_arrow.names]
        if have and pf.num_row_groups:
            first = pf.read_row_group(0, columns=have).slice(0, 1).to_pylist()
            if first:
                rec.update({k: _plain(v) for k, v in first[0].items()})
    except Exception:  # the dataset is gone or is not a table: nulls are still a valid request
        pass
    return rec


def request_of(ws, model) -> dict:
    """{route, file} for an upload, {route, body} for JSON: what a working request to ``model`` sends."""
    man = model.manifest or {}
    modality = man.get("modality", "tabular")
    if modality in FILE_EXAMPLE:
        return {"route": "predict-file", "file": FILE_EXAMPLE[modality]}
    if modality == "series":
        n = int((man.get("series") or {}).get("n_channels", 1))
        rec = {"values": SERIES_EXAMPLE} if n == 1 else {"channels": [SERIES_EXAMPLE] * n}
        return {"route": "predict", "body": {"records": [rec]}}
    return {"route": "predict", "body": {"records": [example_record(ws, model)]}}


def snippets(ws, model, base: str = "http://127.0.0.1:8000", token: str | None = None) -> dict:
    """{curl, python, route, url, series} for ``model`` on the server at ``base``. ``token``: the token's
    value written into the snippets, else they read it from the environment variable TOKEN."""
    req = request_of(ws, model)
    url = f"{base}/v1/models/{model.name}/{req['route']}"
    auth_sh = f"'Authorization: Bearer {token}'" if token else '"Authorization: Bearer $TOKEN"'
    auth_py = json.dumps(f"Bearer {token}") if token else '"Bearer " + os.environ["TOKEN"]'
    imports = "import httpx" if token else "import os, httpx"
    if "file" in req:
        f = req["file"]
        curl = f"curl -s -X POST {url} \\\n  -H {auth_sh} -F file=@{f}"
        python = (f"{imports}\nwith open({json.dumps(f)}, \"rb\") as fh:\n"
                  f"    r = httpx.post({json.dumps(url)},\n"
                  f"                   headers={{\"Authorization\": {auth_py}}},\n"
                  f"                   files={{\"file\": ({json.dumps(f)}, fh)}})\nprint(r.json())")
    else:
        body = json.dumps(req["body"], ensure_ascii=False)
        quoted = "'" + body.replace("'", "'\\''") + "'"
        curl = (f"curl -s -X POST {url} \\\n  -H {auth_sh} -H 'Content-Type: application/json' \\\n"
                f"  -d {quoted}")
        python = (f"{imports}\nr = httpx.post({json.dumps(url)},\n"
                  f"               headers={{\"Authorization\": {auth_py}}},\n"
                  f"               json={req['body']!r})\nprint(r.json())")
    series = None
    if (model.manifest or {}).get("modality") == "series":
        spec = model.manifest.get("series") or {}
        series = {"channels": int(spec.get("n_channels", 1)), "min": spec.get("min_length"),
                  "max": spec.get("max_length")}
    return {"curl": curl, "python": python, "route": req["route"], "url": url, "request": req, "series": series}


def served_model(ws, deployment: dict):
    """The model a deployment's snippet should call: its own, or (all production models) the first one in
    production, as ``modelfab serve`` without names serves them; None when it serves none."""
    try:
        if deployment.get("model"):
            return ws.model(deployment["model"])
        rows = ws.meta.models_in_stage("production")
        return ws.model(f"{rows[0]['name']}:{rows[0]['version']}") if rows else None
    except Exception:  # the model was deleted since: no snippet rather than a wrong one
        return None
