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


def _big_image_dataset(ws, tmp_path, n: int = 10_000):
    """An image dataset row with n images (metadata only: the dataset page reads no image)."""
    labels = ["good" if i % 4 else "scratch" for i in range(n)]
    files = pd.DataFrame({"file": [f"{lab}/i{i:05d}.png" for i, lab in enumerate(labels)], "label": labels,
                          "sha256": ["0" * 64] * n, "width": 64, "height": 64, "channels": 1, "format": "PNG",
                          "mode": "L", "bytes": 900, "mean_intensity": 0.5,
                          "mask": [f"{lab}/i{i:05d}_mask.png" if lab == "scratch" else None for i, lab in enumerate(labels)],
                          "mask_sha256": None, "defect_fraction": [0.01 if lab == "scratch" else None for lab in labels],
                          "boxes": "", "n_boxes": 0})
    feats = pd.DataFrame({"file": files["file"], "label": files["label"], "f0": np.zeros(n)})
    files.to_parquet(tmp_path / "img-files.parquet", index=False)
    feats.to_parquet(tmp_path / "img-features.parquet", index=False)
    stats = {"files": n, "labels": {"good": n - n // 4, "scratch": n // 4}, "unlabelled": 0, "masks": n // 4,
             "boxes": 0, "images_with_boxes": 0, "skipped": [],
             "sizes": {"distinct": 1, "min_width": 64, "max_width": 64, "min_height": 64, "max_height": 64}}
    ws.meta.add_dataset(name="bigimg", kind="image", content_sha="2" * 64,
                        data_sha=ws.blobs.put_file(tmp_path / "img-features.parquet"), source_name="bigimg",
                        n_rows=n, n_cols=1, schema={"kind": "image", "feature_names": ["f0"], "columns": []},
                        stats=stats, options={}, created_by="t",
                        refs=[("files", ws.blobs.put_file(tmp_path / "img-files.parquet"))])


def _big_series_dataset(ws, tmp_path, n: int = 10_000, length: int = 100):
    """A series dataset row with n one-channel series of ``length`` values."""
    labels = [f"c{i % 3}" for i in range(n)]
    np.savez(tmp_path / "series.npz", data=np.zeros((1, n * length)), offsets=np.arange(n + 1) * length)
    pd.DataFrame({"id": [f"s{i}" for i in range(n)], "length": length, "label": labels}).to_parquet(
        tmp_path / "series-index.parquet", index=False)
    stats = {"series": n, "channels": 1, "length": {"min": length, "max": length}, "format": "ts",
             "labels": {f"c{k}": labels.count(f"c{k}") for k in range(3)}}
    ws.meta.add_dataset(name="bigser", kind="series", content_sha="3" * 64,
                        data_sha=ws.blobs.put_file(tmp_path / "series.npz"), source_name="bigser", n_rows=n,
                        n_cols=1, schema={"kind": "series", "label_kind": "categorical", "columns": []}, stats=stats,
                        options={}, created_by="t", refs=[("index", ws.blobs.put_file(tmp_path / "series-index.parquet"))])


def test_image_and_series_pages_load_fast_with_ten_thousand_items(web, tmp_path, monkeypatch):
    _big_image_dataset(web.ws, tmp_path)
    _big_series_dataset(web.ws, tmp_path)
    c = web.client("admin")
    import modelfab.series

    def no_values(*args):
        raise AssertionError("the series page loaded every value of the dataset to list 50 series")

    monkeypatch.setattr(modelfab.series, "load_series", no_values)  # the list needs the index only
    for path, item, shown in (("/datasets/bigimg/1", '<li id="img-', 50), ("/datasets/bigimg/1?page=150", '<li id="img-', 50),
                              ("/datasets/bigimg/1?label=scratch&page=40", '<li id="img-', 50),
                              ("/datasets/bigser/1", '<tr id="ser-', 50), ("/datasets/bigser/1?page=190", '<tr id="ser-', 50),
                              ("/datasets/bigser/1?label=c2&page=60", '<tr id="ser-', 50), ("/train", None, 0)):
        assert c.get(path).status_code == 200, path  # warm: the tables are read once per dataset version
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = c.get(path)
            times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and len(r.content) < 200_000, path  # paged, not 10,000 items
        if item:
            assert r.text.count(item) == shown, path
        assert min(times) < 0.3, f"{path}: {min(times) * 1000:.0f} ms"
    assert "img-9999" in c.get("/datasets/bigimg/1?page=200").text and 'scratch 2500' in c.get("/datasets/bigimg/1").text
    assert c.get("/datasets/bigser/1/thumb/10000.png").status_code == 404  # bounds from the index too
    monkeypatch.undo()
    r = c.get("/datasets/bigser/1/thumb/9999.png")  # a thumbnail does load the values (once), then is cached
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    # labelling them: 100 items a page with their small pictures, the queue after one assistant fit
    for name, item in (("bigimg", lambda i: f"good/i{i:05d}.png"), ("bigser", lambda i: f"s{i}")):
        ds = web.ws.dataset(name)
        for i in range(1, 800, 4):  # 200 items made unlabelled: the queue's first page is full
            web.store.add_label(ds.id, item(i), None, "admin1")
    for path in ("/label/bigimg/1", "/label/bigimg/1?page=80", "/label/bigimg/1?filter=queue",
                 "/label/bigser/1", "/label/bigser/1?page=90", "/label/bigser/1?filter=queue"):
        assert c.get(path).status_code == 200, path  # warm: items, features and the fit are cached per version
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = c.get(path)
            times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and r.text.count('class="row-thumb') == 100 and len(r.content) < 300_000, path
        assert min(times) < 0.3, f"{path}: {min(times) * 1000:.0f} ms"
