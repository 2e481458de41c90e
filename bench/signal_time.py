"""Time for import + train + report of 40 ten-second clips with a 60 s budget (2 cores).

    .venv/bin/python bench/signal_time.py [--budget 60] [--folder DIR]

Without --folder it generates 40 synthetic 10 s machine-sound clips
(28 normal, 12 abnormal, 16 kHz). Writes bench/out/signal_time.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import modelfab as mf
from modelfab.modalities.signal import make_machine_dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or make_machine_dataset(Path(tmp) / "clips", n_normal=28, n_abnormal=12, seconds=10.0, seed=7)
        # One clock for the whole job: import time counts against the budget, and training
        # (which writes the report itself) gets what is left.
        from modelfab.automl.budget import Budget

        t0 = time.monotonic()
        clock = Budget(args.budget)
        ws = mf.Workspace.init(Path(tmp) / "ws")
        ds = ws.import_recordings(folder, "clips").dataset
        t_import = time.monotonic() - t0
        model = ws.train(ds, task="anomaly", budget=args.budget, budget_clock=clock)
        t_train = time.monotonic() - t0 - t_import
        total = time.monotonic() - t0
        report = ws.root / "reports" / f"{model.name}-v{model.version}" / "report.html"
        if not report.is_file():
            raise SystemExit(f"no report at {report}: training left no time to write it")
    row = {"clips": ds.stats["files"], "audio_s": ds.stats["duration_s"], "import_s": round(t_import, 2),
           "train_s": round(t_train, 2), "total_s": round(total, 2), "budget_s": args.budget,
           "within_budget": total <= args.budget, "auc": model.metrics.get("auc"),
           "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    Path(__file__).with_name("out").mkdir(exist_ok=True)
    Path(__file__).with_name("out").joinpath("signal_time.json").write_text(json.dumps(row, indent=2))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
