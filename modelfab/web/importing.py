"""The import preview of a table: the columns with their inferred kinds, a few values, and a target guess.

The upload stays in its folder under ``<workspace>/tmp/web-uploads/`` (``f000``) until the person
confirms (the import job takes it over) or cancels (the folder is removed). The preview is read once
and kept next to it (``preview.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
    link = f"preview{meta['suffix']}"  # the readers pick the format by suffix: a hard link with one
    path = folder / link
    if not path.exists():
        os.link(folder / "f000", path)
    df = read_table(open_table(path, ws.settings), ws.settings)
    schema = infer_schema(df)
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
            "rows": [[_cell(v) for v in row] for row in head.itertuples(index=False)][:n_sample],
            "link": link}
    cached.write_text(json.dumps(view), "utf-8")
    return view
