"""Pages stay fast with 10,000 items in a dataset (paged lists, cached tables)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


def _big_signal_dataset(ws, tmp_path, n: int = 10_000):
    """A recordings dataset row with n files (metadata only: no audio is read by these pages)."""
    files = pd.DataFrame({"file": [f"{'normal' if i % 5 else 'abnormal'}/c{i:05d}.wav" for i in range(n)],
                          "label": ["normal" if i % 5 else "abnormal" for i in range(n)],
                          "sha256": ["0" * 64] * n, "sample_rate": 8000, "duration_s": 0.3, "n_windows": 1,
                          "n_channels": 1, "bytes": 4844})
    feats = pd.DataFrame({"file": files["file"], "label": files["label"], "t0": 0.0, "t1": 0.25,
                          "f0": np.zeros(n)})
    files.to_parquet(tmp_path / "files.parquet", index=False)
    feats.to_parquet(tmp_path / "features.parquet", index=False)
    files_sha = ws.blobs.put_file(tmp_path / "files.parquet")
    data_sha = ws.blobs.put_file(tmp_path / "features.parquet")
    stats = {"files": n, "windows": n, "labels": {"abnormal": n // 5, "normal": n - n // 5}, "unlabelled": 0,
             "duration_s": 0.3 * n, "skipped": []}
    schema = {"kind": "signal", "feature_names": ["f0"], "sample_rate": 8000, "columns": []}
    ws.meta.add_dataset(name="big", kind="signal", content_sha="1" * 64, data_sha=data_sha, source_name="big",
                        n_rows=n, n_cols=1, schema=schema, stats=stats, options={}, created_by="t",
                        refs=[("files", files_sha)])


def test_pages_load_fast_with_ten_thousand_items(web, tmp_path):
    _big_signal_dataset(web.ws, tmp_path)
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.standard_normal(10_000), "y": rng.integers(0, 2, 10_000)}).to_csv(tmp_path / "t.csv", index=False)
    web.ws.import_table(tmp_path / "t.csv", name="tab")
    c = web.client("admin")
    ds = web.ws.dataset("big")
    for i in range(200):  # a labels layer of some size
        web.store.add_label(ds.id, f"normal/c{i * 5 + 1:05d}.wav", "rattle", "admin1")
    for path in ("/", "/datasets/big/1", "/datasets/big/1?page=150", "/datasets/big/1?label=rattle",
                 "/label/big/1", "/label/big/1?page=80", "/label/big/1?filter=queue", "/label/big/1?filter=disagree",
                 "/label/tab/1?column=y", "/label/tab/1?column=y&page=90", "/datasets/tab/1?page=150", "/train",
                 "/models", "/compare"):
        assert c.get(path).status_code == 200, path  # warm: the file table is read once per dataset
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = c.get(path)
            times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and len(r.content) < 200_000, path  # paged, not 10,000 rows
        assert min(times) < 0.3, f"{path}: {min(times) * 1000:.0f} ms"
