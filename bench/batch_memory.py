"""Peak memory of `modelfab predict` on a large table (issue 5: 10 million rows x 30 columns under 2 GB RSS).

    .venv/bin/python bench/batch_memory.py [--rows 10000000] [--cols 30]

Writes a Parquet file of random float32 columns in row groups of 500k (never holding it whole),
trains a small LightGBM model on 5,000 rows with the same columns, then runs
`modelfab predict MODEL big.parquet -o out.parquet` as a child process and reads its peak RSS
(getrusage of the children). Writes bench/out/batch_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--cols", type=int, default=30)
    args = ap.parse_args()
    import modelfab as mf

    cols = [f"x{i}" for i in range(args.cols)]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        tmp = Path(tmp)
        small = pd.DataFrame(rng.normal(size=(5000, args.cols)).astype(np.float32), columns=cols)
        small["y"] = (small[cols[:3]].sum(axis=1) > 0).map({True: "bad", False: "good"})
        small.to_csv(tmp / "train.csv", index=False)
        ws = mf.Workspace.init(tmp / "ws")
        ds = ws.import_table(tmp / "train.csv", name="mem").dataset
        ws.train(ds, target="y", budget=20, learners=("lgbm",), ensemble=False)
        big = tmp / "big.parquet"
        schema = pa.schema([(c, pa.float32()) for c in cols])
        t0 = time.monotonic()
        with pq.ParquetWriter(big, schema) as w:
            left = args.rows
            while left:
                n = min(500_000, left)
                w.write_table(pa.table({c: rng.normal(size=n).astype(np.float32) for c in cols}, schema=schema))
                left -= n
        write_s = time.monotonic() - t0
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "modelfab", "predict", "mem", str(big), "-o", str(tmp / "out.parquet"),
                        "--workspace", str(ws.root)], check=True, stdout=subprocess.DEVNULL)
        predict_s = time.monotonic() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out_rows = pq.ParquetFile(tmp / "out.parquet").metadata.num_rows
        input_mb = big.stat().st_size / 2**20
    row = {"rows": args.rows, "cols": args.cols, "input_mb": round(input_mb), "write_s": round(write_s, 1),
           "predict_s": round(predict_s, 1), "rows_per_s": round(args.rows / predict_s), "peak_rss_mb": round(peak_mb),
           "children_peak_before_mb": round(before / 1024), "out_rows": out_rows, "under_2gb": peak_mb < 2048,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
           "load_average_1m": round(os.getloadavg()[0], 2)}
    Path(__file__).with_name("out").mkdir(exist_ok=True)
    Path(__file__).with_name("out").joinpath("batch_memory.json").write_text(json.dumps(row, indent=2))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
