"""Loaded signal models: score recordings (files, uploads, live windows).

A signal package holds the reading options of its dataset (channel,
variable, sample rate, window), so new recordings are read and featurised
exactly as the training recordings were.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInput, UnsupportedFormat
from ..settings import Settings

SEGMENT_FACTOR = 2.0  # a file longer than this many training-median lengths is scored in segments
_FEATURE = re.compile(r"^(logmel_(?:mean|std)|band|env_band)_(\d+)$")


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as the feature extractor uses."""
    f = np.asarray(f, dtype=float)
    log_region = f >= 1000.0
    mel = f / (200.0 / 3)
    mel[log_region] = 15.0 + np.log(f[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=float)
    f = m * (200.0 / 3)
    log_region = m >= 15.0
    f[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m[log_region] - 15.0))
    return f


@lru_cache(maxsize=8)
def _mel_edges(sr: int) -> np.ndarray:
    """Band edges of the 64 mel bands (band i spans edges[i]..edges[i+2]); no librosa import needed."""
    return _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array([sr / 2.0]))[0], 64 + 2))


def describe_feature(name: str, sample_rate: int) -> str:
    """Plain words for a feature: which frequency band (or modulation band) it measures."""
    m = _FEATURE.match(name)
    nyq = sample_rate / 2.0
    if not m:
        return name.replace("_", " ")
    kind, i = m.group(1), int(m.group(2))
    if kind.startswith("logmel"):
        e = _mel_edges(sample_rate)
        lo, hi = e[i], e[i + 2]
        what = "level" if kind.endswith("mean") else "fluctuation"
        return f"sound {what} at {lo:,.0f}-{hi:,.0f} Hz"
    if kind == "band":
        edges = np.geomspace(min(20.0, nyq / 4), nyq, 17)
        edges[0] = 0.0
        return f"energy at {edges[i]:,.0f}-{edges[i + 1]:,.0f} Hz"
    env_hi = min(1000.0, sample_rate / 4.0)
    edges = np.geomspace(min(5.0, env_hi / 8), env_hi, 17)
    return f"impacts/modulation repeating at {edges[i]:,.1f}-{edges[i + 1]:,.1f} Hz"


class SignalPredictor:
    def __init__(self, folder: Path, manifest: dict, settings: Settings | None = None) -> None:
        from ..recordings import SignalOptions

        self.folder = Path(folder)
        self.manifest = manifest
        self.task = manifest["task"]
        sig = manifest.get("signal") or {}
        self.options = SignalOptions.from_dict(sig.get("options") or {})
        self.sample_rate = int(sig.get("sample_rate") or 0)
        self.feature_names = list(sig.get("feature_names") or [])
        self.median_duration_s = float(sig.get("median_duration_s") or 0.0)  # 0: older model, no segments
        self.settings = settings or Settings.from_env()
        self.labels = manifest.get("labels")
        if self.task == "anomaly":
            from ..automl.anomaly import AnomalyModel

            self.anomaly = AnomalyModel.load(self.folder, manifest.get("anomaly_model", "anomaly"))
            t = manifest.get("threshold")
            if t is not None and float(t) != self.anomaly.threshold:
                self.anomaly = self.anomaly.with_threshold(float(t))
            self.threshold = self.anomaly.threshold
        else:
            from ..predictor import TabularPredictor

            self.tabular = TabularPredictor(self.folder, manifest)
            self.learner = self.tabular.learner
            self.threshold = None

    @property
    def input_columns(self) -> list[dict]:
        return [{"name": "recording", "kind": "file"}]

    def window_seconds(self) -> float:
        win, _ = self.options.window(self.sample_rate)
        return win / self.sample_rate

    # -- reading ----------------------------------------------------------
    def read(self, path: Path, source: str | None = None):
        rec = self.options.read(Path(path), self.settings, source=source, sample_rate=self.sample_rate)
        if rec.sample_rate != self.sample_rate:
            raise InvalidInput(f"{source or Path(path).name}: sampled at {rec.sample_rate} Hz; the model was trained "
                               f"at {self.sample_rate} Hz.", hint="Record at the training rate or resample the file.")
        return rec

    # -- scoring ----------------------------------------------------------
    def window_outputs(self, features: np.ndarray) -> np.ndarray:
        """Per-window anomaly scores, or per-window class probabilities."""
        if self.task == "anomaly":
            return self.anomaly.window_scores(features)
        frame = pd.DataFrame(features, columns=self.feature_names)
        return self.learner.predict_raw(self.tabular.preprocessor.transform(frame))

    def segments(self, n_samples: int, rate: int) -> list[tuple[int, int]]:
        """Sample ranges a recording is scored in: the whole file, or, for a file longer than
        ``SEGMENT_FACTOR`` times the training recordings' median length, consecutive segments of that length
        (a remainder shorter than half a segment joins the last one). A short fault then weighs in its
        segment as it would in a training-length clip instead of vanishing in the mean over the whole file."""
        seg = int(round(self.median_duration_s * rate))
        if self.task != "anomaly" or seg <= 0 or n_samples <= SEGMENT_FACTOR * seg:
            return [(0, n_samples)]
        bounds = list(range(0, n_samples - seg // 2, seg))
        return [(a, b) for a, b in zip(bounds, bounds[1:] + [n_samples])]

    def predict_recording(self, rec) -> dict:
        row = self._predict_recording(rec)
        was = rec.meta.get("resampled_from")
        if was:
            _add_note(row, f"Recorded at {was:,} Hz, resampled to the model's {rec.sample_rate:,} Hz"
                           + (f" (it holds no sound above {was / 2:,.0f} Hz, which can score as a deviation)"
                              if was < rec.sample_rate else
                              f" (the resampling filter weakens sound just under {rec.sample_rate / 2:,.0f} Hz: a "
                              "deviation named in the top band can come from it; record at the model's rate to be "
                              "sure)"))
        return row

    def _predict_recording(self, rec) -> dict:
        from ..recordings import featurise

        segs = self.segments(len(rec.samples), rec.sample_rate)
        if self.task == "anomaly" and len(segs) > 1:
            return self._predict_segments(rec, segs)
        ff = featurise(rec, self.options)
        times = np.column_stack([ff.starts_s, ff.starts_s + ff.win_s])
        if self.task == "anomaly":
            ex = self.anomaly.explain(ff.features, times=times, top_windows=3, top_features=5)
            return self._anomaly_row(rec, ex, len(ff.features))
        proba = self.window_outputs(ff.features)
        mean = proba.mean(axis=0)
        best = int(mean.argmax())
        labels = [str(v) for v in self.labels or []]
        out = {"file": rec.source, "prediction": labels[best], "label": labels[best], "confidence": float(mean[best]),
               "probabilities": json.dumps({lab: round(float(p), 6) for lab, p in zip(labels, mean)}, ensure_ascii=False),
               "windows": len(ff.features)}
        for lab, p in zip(labels, mean):
            out[f"proba_{lab}"] = float(p)
        return out

    def _anomaly_row(self, rec, ex: dict, n_windows: int, deviating: str | None = None) -> dict:
        score = ex["file_score"]
        return {
            "file": rec.source, "score": score, "is_anomaly": bool(score > self.threshold),
            "threshold": self.threshold,
            "deviating_times": deviating if deviating is not None else
            "; ".join(f"{w['start_s']:.1f}-{w['end_s']:.1f}s" for w in ex["top_windows"]),
            "deviating_bands": "; ".join(f"{describe_feature(f['feature'], rec.sample_rate)} (z={f['z']:+.1f})"
                                         for f in ex["top_features"][:3]),
            "windows": n_windows, "explanation": ex,
        }

    def _predict_segments(self, rec, segs: list[tuple[int, int]]) -> dict:
        """A long recording: every segment is featurised and aggregated as a training recording was; the file
        scores as its highest segment, flagged times are the segments over the threshold."""
        from dataclasses import replace

        from ..recordings import featurise

        rate, parts, best, n_windows = rec.sample_rate, [], None, 0
        for a, b in segs:
            ff = featurise(replace(rec, samples=rec.samples[a:b]), self.options)
            t0 = a / rate
            times = np.column_stack([ff.starts_s, ff.starts_s + ff.win_s]) + t0
            ex = self.anomaly.explain(ff.features, times=times, top_windows=3, top_features=5)
            n_windows += len(ff.features)
            parts.append({"start_s": round(t0, 3), "end_s": round(b / rate, 3), "score": ex["file_score"],
                          "is_anomaly": bool(ex["file_score"] > self.threshold)})
            if best is None or ex["file_score"] > best["file_score"]:
                best = ex
        flagged = _merge_ranges([(p["start_s"], p["end_s"]) for p in parts if p["is_anomaly"]])
        seg_s = self.median_duration_s
        best = dict(best, segments=parts)
        row = self._anomaly_row(rec, best, n_windows,
                                deviating="; ".join(f"{a:.1f}-{b:.1f}s" for a, b in flagged) if flagged else None)
        row["segments"] = len(segs)
        row["note"] = (f"scored in {len(segs)} segments of {seg_s:g} s (the training recordings' median length; "
                       f"the file is {rec.duration:,.1f} s): the score is the highest segment's"
                       + (f", {sum(p['is_anomaly'] for p in parts)} segment(s) over the threshold" if flagged else "")
                       + ". A long file has more chances of a false alarm than one training-length recording.")
        return row

    def _file_row(self, path: Path, source: str) -> dict:
        row = self.predict_recording(self.read(path, source))
        row.pop("explanation", None)
        return row

    def predict_files(self, paths: list[Path], progress=None) -> pd.DataFrame:
        from ..batch import score_files
        from .signal import SIGNAL_EXTENSIONS, list_recordings

        items: list[tuple[Path, str]] = []
        for p in paths:
            p = Path(p)
            if p.is_dir():
                items += [(f, f.relative_to(p).as_posix()) for f in list_recordings(p)]
            elif p.is_file():
                items.append((p, p.name))
            else:
                raise InvalidInput(f"{p}: no such file or folder.")
        if not items:
            raise InvalidInput(f"No recordings found (expected files ending in {', '.join(sorted(SIGNAL_EXTENSIONS))}).")
        rows = score_files(items, self._file_row, progress)
        if progress:
            progress(len(items), len(items), "")
        first = ["file", "score", "is_anomaly", "threshold"] if self.task == "anomaly" else ["file", "prediction", "label", "probabilities"]
        df = pd.DataFrame(rows)
        return df[[c for c in first if c in df.columns] + [c for c in df.columns if c not in first]]

    def predict_bytes(self, data: bytes, filename: str) -> dict:
        """Score an uploaded recording (REST). The name only chooses the reader."""
        suffix = Path(os.path.basename(filename or "")).suffix.lower()
        from .signal import SIGNAL_EXTENSIONS

        if suffix not in SIGNAL_EXTENSIONS:
            raise UnsupportedFormat(f"Upload a recording ({', '.join(sorted(SIGNAL_EXTENSIONS))}); got {filename!r}.",
                                    hint="Send one recording per request as the multipart field 'file'; for a folder "
                                         "of recordings use `modelfab predict MODEL FOLDER`.")
        with tempfile.TemporaryDirectory(prefix="modelfab-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            safe_name = re.sub(r"[\x00-\x1f\x7f]", "_", os.path.basename(filename))[:200]  # only a label
            row = self.predict_recording(self.read(path, safe_name))
        ex = row.pop("explanation", None)
        if ex is not None:
            row["top_windows"] = ex["top_windows"]
            row["top_features"] = [dict(f, description=describe_feature(f["feature"], self.sample_rate))
                                   for f in ex["top_features"]]
            if "segments" in ex:  # a long upload scored in segments: each one's time range, score and verdict
                row["segment_scores"] = ex["segments"]
        return row

    def predict_records(self, records):
        raise InvalidInput("This model scores recordings: upload a file to /v1/models/{name}/predict-file.")


def _add_note(row: dict, text: str) -> None:
    row["note"] = f"{row['note']} {text}." if row.get("note") else f"{text}."


def _merge_ranges(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in ranges:
        if out and a <= out[-1][1] + 1e-9:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def load_signal_predictor(folder: Path, manifest: dict) -> SignalPredictor:
    return SignalPredictor(folder, manifest)


def batch_predict(ws, model, paths: list[Path], out: Path) -> dict:
    """``modelfab predict`` on recordings: one row per file, written atomically."""
    from ..batch import file_rows_result, output_path, write_frame

    out = output_path(out)
    df = model.predictor.predict_files(paths)
    write_frame(df, out)
    return file_rows_result(model, df, out)
