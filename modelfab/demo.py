"""Demo data made by code (nothing is downloaded): a factory quality table.

Rows are parts coming off four lines over three shifts; sensors drift,
some readings are missing, and the quality label ("ok"/"defect") depends
on tool wear, temperature, pressure and the line/shift in a non-linear way,
with a little label noise, as real inspection data has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def make_factory_table(n_rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2026-03-02T06:00")
    minutes = np.sort(rng.integers(0, 60 * 24 * 28, n_rows))
    ts = t0 + minutes.astype("timedelta64[m]")
    hour = (minutes // 60 + 6) % 24
    shift = np.where((hour >= 6) & (hour < 14), "A", np.where((hour >= 14) & (hour < 22), "B", "C"))
    line = rng.choice(["L1", "L2", "L3", "L4"], n_rows, p=[0.3, 0.3, 0.25, 0.15])
    batch = rng.choice([f"MB-{i:03d}" for i in range(40)], n_rows)
    tool_wear = (minutes % 2000) / 2000 * 100 + rng.normal(0, 4, n_rows)  # tool changed every ~33 h
    temperature = 68 + 6 * np.sin(minutes / 1440 * 2 * np.pi) + (line == "L3") * 3 + rng.normal(0, 1.5, n_rows)
    pressure = rng.normal(5.0, 0.35, n_rows) + (line == "L4") * 0.3
    speed = rng.normal(1450, 60, n_rows)
    humidity = np.clip(rng.normal(45, 8, n_rows), 15, 90)
    vibration = 0.8 + 0.012 * tool_wear + rng.gamma(2.0, 0.08, n_rows)
    cycle = 31 + 0.05 * tool_wear + rng.normal(0, 0.8, n_rows)
    risk = (
        -4.0
        + 0.11 * np.maximum(tool_wear - 60, 0)
        + 0.9 * np.maximum(temperature - 71, 0)
        + 3.0 * (np.abs(pressure - 5.0) > 0.55)
        + 2.0 * ((line == "L3") & (shift == "C"))
        + 1.5 * (vibration > 2.0)
        + 0.04 * (humidity - 45)
    )
    p = 1 / (1 + np.exp(-risk))
    defect = rng.random(n_rows) < p
    flip = rng.random(n_rows) < 0.02
    defect = np.where(flip, ~defect, defect)
    df = pd.DataFrame({
        "part_id": [f"P{100000 + i}" for i in range(n_rows)],
        "timestamp": pd.to_datetime(ts).strftime("%Y-%m-%d %H:%M"),
        "line": line,
        "shift": shift,
        "material_batch": batch,
        "temperature_c": temperature.round(2),
        "pressure_bar": pressure.round(3),
        "spindle_rpm": speed.round(0),
        "humidity_pct": humidity.round(1),
        "vibration_rms": vibration.round(3),
        "tool_wear_pct": np.clip(tool_wear, 0, 100).round(1),
        "cycle_time_s": cycle.round(2),
        "quality": np.where(defect, "defect", "ok"),
    })
    for col, frac in (("temperature_c", 0.03), ("humidity_pct", 0.08), ("vibration_rms", 0.02), ("pressure_bar", 0.01)):
        df.loc[rng.random(n_rows) < frac, col] = np.nan
    return df


def write_factory_csv(path: str | Path, n_rows: int = 4000, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_factory_table(n_rows, seed).to_csv(path, index=False)
    return path
