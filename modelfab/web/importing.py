"""The import preview of a table: the columns with their inferred kinds, a few values, and a target guess.

The upload stays in its folder under ``<workspace>/tmp/web-uploads/`` (``f000``) until the person
confirms (the import job takes it over) or cancels (the folder is removed). The preview is read once
and kept next to it (``preview.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ModelfabError

TARGET_NAMES = ("label", "target", "quality", "grade", "class", "y", "defect", "result", "status", "ok", "outcome")


def preview(ws, folder: Path, meta: dict, n_sample: int = 8) -> dict:
    from ..modalities.tabular import column_stats, infer_schema
    from ..modalities.tabular_io import open_table, read_table
    from .views import _cell

    cached = folder / "preview.json"
    try:
        return json.loads(cached.read_text("utf-8"))
    except (OSError, ValueError):
        pass
    from .uploads import upload_file_name

    # the readers pick the format by suffix and name the file in their errors: a hard link named as the
    # uploaded file (errors said 'preview.xlsx'), the job renames the upload to the same name later
    link = upload_file_name(meta.get("filename"), meta["name"], meta["suffix"])
    path = folder / link
    if not path.exists():
        os.link(folder / "f000", path)
    def as_uploaded(text: str) -> str:  # said as the person named the file (the link has '_' for spaces and such)
        return text.replace(link, meta["filename"]) if meta.get("filename") else text

    try:
        src = open_table(path, ws.settings)
        df = read_table(src, ws.settings)
    except ModelfabError as exc:
        exc.message = as_uploaded(exc.message)
        raise
    schema = infer_schema(df, src.delimiter)
    from ..modalities.tabular_values import apply_number_formats, spelling_notes

    # what the import will do, said before it does it: decimal commas and units read, spellings of one value
    format_notes = apply_number_formats(df, schema, meta.get("filename") or link) + spelling_notes(df, schema)
    stats = column_stats(df, schema)
    columns = []
    for c in schema["columns"][:300]:
        st = stats.get(c["name"], {})
        sample = [_cell(v) for v in df[c["name"]].dropna().unique()[:5]]
        columns.append({"name": c["name"], "kind": c["kind"], "missing": int(st.get("missing", 0) or 0),
                        "unique": st.get("unique"), "sample": sample})
    guess = next((c["name"] for c in columns if c["name"].lower() in TARGET_NAMES), "")
    head = df.head(n_sample)
    view = {"columns": columns, "n_rows": int(len(df)), "n_cols": int(len(df.columns)), "target_guess": guess,
            "series_guess": series_guess(columns, len(df)),
            "notes": [as_uploaded(n) for n in src.notes] + format_notes,  # title rows, merged cells, formats
            "rows": [[_cell(v) for v in row] for row in head.itertuples(index=False)][:n_sample],
            "link": link}
    cached.write_text(json.dumps(view), "utf-8")
    return view


SERIES_ID_NAMES = ("id", "series", "machine", "unit", "sensor", "device", "asset", "run", "编号", "设备", "机台")
SERIES_TIME_NAMES = ("t", "time", "timestamp", "step", "cycle", "date", "datetime", "时间", "时刻", "日期")


def series_guess(columns: list[dict], n_rows: int) -> dict:
    """Columns that could make the rows time series (long format): an id whose values repeat (each a series of
    several rows) and a time; only guesses for the form (the person ticks "these are time series")."""
    def named(c, words):
        low = c["name"].lower()
        return any(low == w or low.startswith(w + "_") or low.endswith("_" + w) or w in low and not w.isascii()
                   for w in words)

    repeat = [c for c in columns if c["kind"] in ("categorical", "id", "numeric") and c.get("unique")
              and 2 <= c["unique"] <= n_rows / 3]
    sid = next((c["name"] for c in repeat if named(c, SERIES_ID_NAMES)), "")
    time = next((c["name"] for c in columns if c["name"] != sid and (c["kind"] == "datetime"
                                                                      or named(c, SERIES_TIME_NAMES))), "")
    return {"id": sid, "time": time}
