"""Signal feature extraction speed, as x real time on one core.

    .venv/bin/python bench/signal_features.py [--seconds 60] [--repeats 7] [--real]

Measures windowing (1 s / 0.5 s hop) + all feature sets on synthetic
machine sound at 16 kHz and 12 kHz (and per feature set at 16 kHz). With
``--real`` it also times reading + features on ../shared/data (MIMII fan
WAVs, CWRU .mat) when present. Target: >= 200x real time at 16 kHz.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one core means one BLAS thread

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelfab.modalities.signal import (  # noqa: E402
    FEATURE_SETS,
    extract_features,
    frame_windows,
    default_window,
    make_machine_sound,
    read_recording,
    recording_features,
)


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up: filter banks, FFT plans, lazy imports
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts), statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--real", action="store_true", help="also time ../shared/data recordings")
    args = ap.parse_args()
    print(f"signal features: {_pin_one_core()}, {len(FEATURE_SETS)} sets, {args.seconds:g} s of audio per run")

    for sr in (16000, 12000):
        x = make_machine_sound("normal", seconds=args.seconds, sample_rate=sr, seed=1)
        best, med = _time(lambda: recording_features(x, sr), args.repeats)
        n_feat = recording_features(x, sr)[0].shape
        print(f"  {sr:>5} Hz all sets  {n_feat[0]:>4} windows x {n_feat[1]} features: "
              f"best {best * 1e3:7.1f} ms = {args.seconds / best:6.0f}x real time (median {args.seconds / med:.0f}x)")

    sr = 16000
    x = make_machine_sound("normal", seconds=args.seconds, sample_rate=sr, seed=1)
    w = frame_windows(x, *default_window(sr))
    for s in FEATURE_SETS:
        best, _ = _time(lambda: extract_features(w, sr, (s,)), args.repeats)
        print(f"  {sr:>5} Hz {s:<9}  {best * 1e3:7.1f} ms = {args.seconds / best:7.0f}x real time")

    if args.real:
        data = ROOT.parent / "shared" / "data"
        jobs = [(p, {}) for p in sorted((data / "mimii_fan_id00").glob("*/*.wav"))]
        jobs += [(p, {"sample_rate": 12000, "variable": "DE_time"})
                 for p in sorted((data / "cwru_12k_drive_end").glob("*/*.mat"))]
        if not jobs:
            print(f"  --real: {data} not present")
        for label, group in (("MIMII wav", [j for j in jobs if j[0].suffix == ".wav"]),
                             ("CWRU mat", [j for j in jobs if j[0].suffix == ".mat"])):
            if not group:
                continue
            total = 0.0
            t = time.perf_counter()
            for p, kw in group:
                rec = read_recording(p, **kw)
                recording_features(rec.samples, rec.sample_rate)
                total += rec.duration
            dt = time.perf_counter() - t
            print(f"  {label:<10} {len(group):>3} files, {total:6.1f} s: read + features {dt * 1e3:7.1f} ms "
                  f"= {total / dt:5.0f}x real time")


if __name__ == "__main__":
    main()
