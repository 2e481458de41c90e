"""Importing a folder of recordings (machine sound, vibration) as a dataset version.

Every recording is read, checked, cut into windows and featurised once; the
dataset version stores the original files (blobs), a file table and the
window features (the feature cache: a second training does not recompute).
Every window remembers its source file, so splits are by file.

Blobs first, metadata row last; identical folder + options = no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .errors import InvalidInput
from .settings import human_bytes
from .registry import check_name

FEATURES_VERSION = 2  # 2: new ``bearing`` set and presets; exactly constant windows of huge samples give 0 spread
VIBRATION_WINDOW_S = 0.25  # default window of the ``vibration`` preset (bench/results/cwru.md)


@dataclass(frozen=True)
class SignalOptions:
    """How recordings are read and windowed. Stored with the dataset and every model trained on it."""

    labels: str = "folder"               # folder | none | regex:PATTERN | path to a CSV (file,label)
    channel: str | None = None           # None = first channel, an index, or "mean"
    sample_rate: int | None = None       # resample target (audio) or the rate of files that lack one
    variable: str | None = None          # .mat variable regex, e.g. DE_time
    window_s: float | None = None        # default: 1 s
    hop_s: float | None = None           # default: window / 2
    feature_sets: tuple[str, ...] = ("logmel", "mfcc", "spectral", "time", "envelope", "bands")  # or a preset

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["feature_sets"] = list(self.feature_sets)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SignalOptions":
        d = dict(d)
        d["feature_sets"] = tuple(d.get("feature_sets") or cls.feature_sets)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def window(self, sample_rate: int) -> tuple[int, int]:
        from .modalities.signal import default_window

        win, hop = default_window(sample_rate)
        if self.window_s:
            win = max(64, int(round(self.window_s * sample_rate)))
            hop = max(1, win // 2)
        if self.hop_s:
            hop = max(1, int(round(self.hop_s * sample_rate)))
        return win, hop

    def read(self, path: Path, settings, source: str | None = None, sample_rate: int | None = None):
        from .modalities.signal import read_recording

        channel: int | str | None = self.channel
        if isinstance(channel, str) and channel.isdigit():
            channel = int(channel)
        return read_recording(path, channel=channel, sample_rate=sample_rate or self.sample_rate,
                              variable=self.variable, settings=settings, source=source)


@dataclass
class FileFeatures:
    features: np.ndarray
    starts_s: np.ndarray
    win_s: float
    sample_rate: int
    duration_s: float


def featurise(rec, opts: SignalOptions) -> FileFeatures:
    from .modalities.signal import extract_features, frame_windows

    win, hop = opts.window(rec.sample_rate)
    windows = frame_windows(rec.samples, win, hop, source=rec.source, sample_rate=rec.sample_rate)
    feats, _ = extract_features(windows, rec.sample_rate, opts.feature_sets)
    starts = np.arange(len(windows)) * hop / rec.sample_rate
    return FileFeatures(feats, starts, win / rec.sample_rate, rec.sample_rate, len(rec.samples) / rec.sample_rate)


@dataclass
class SkippedFile:
    file: str
    reason: str


@dataclass
class _Collected:
    rows: list = field(default_factory=list)
    files: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def _label_map(root: Path, files: list[Path], source: str) -> tuple[dict[Path, str | None], list[str]]:
    """Label of every file, and notes on how they were found."""
    from .modalities.signal import label_from, labels_for_files, read_labels_csv

    if source == "folder":
        return _folder_labels(root, files)
    if source == "none":
        return {f: None for f in files}, []
    if source.startswith("regex:"):
        from .modalities.signal.io import check_label_regex

        check_label_regex(source)
        labels = {f: label_from(f, root, source) for f in files}
        if all(v is None for v in labels.values()):
            shown = ", ".join(f.name for f in files[:3]) + (", ..." if len(files) > 3 else "")
            raise InvalidInput(f"--labels {source} matches none of the {len(files)} file names ({shown}), so every "
                               "recording would be unlabelled.",
                               hint="The pattern is searched in each file's name (not its folder); its first group "
                                    "is the label. Fix the pattern, or pass --labels none to import them unlabelled.")
        return labels, []
    csv_path = Path(source)
    if not csv_path.is_file():
        raise InvalidInput(f"--labels must be folder, none, regex:PATTERN or a CSV file (file,label); got {source!r}.")
    return labels_for_files(files, root, read_labels_csv(csv_path)), []


def _folder_labels(root: Path, files: list[Path]) -> tuple[dict[Path, str | None], list[str]]:
    """Class folders; without them (or with only train/test-like folders), MIMII/DCASE-style file names
    (``normal_id_00_...``, ``..._anomaly_0001_...``) give normal/abnormal labels."""
    from .modalities.signal import label_from
    from .modalities.signal.naming import SPLIT_FOLDERS, label_from_name

    labels = {f: label_from(f, root, "folder") for f in files}
    folders = {v for v in labels.values() if v is not None}
    if folders and not {v.lower() for v in folders} <= SPLIT_FOLDERS:
        return labels, []
    named = {f: label_from_name(f.name) for f in files}
    if not any(named.values()):
        return labels, []
    counts = Counter(v for v in named.values() if v is not None)
    left = sum(1 for v in named.values() if v is None)
    where = f"the folders ({', '.join(sorted(folders))}) are not classes, so " if folders else "no class folders, so "
    note = (f"{where}labels were taken from the file names (MIMII/DCASE convention: normal_..., anomaly_..., "
            f"..._normal_..., ..._anomaly_...): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + (f", {left} file(s) without either word left unlabelled" if left else "")
            + ". Pass --labels none (all unlabelled), --labels regex:PATTERN or --labels FILE.csv to label otherwise.")
    return named, [note]


def _target_rate(files: list[Path], opts: SignalOptions) -> tuple[int | None, str | None]:
    """One sample rate for the whole dataset: the given one, else the most common audio rate (on a tie the
    highest: resampling down loses nothing the lower-rate files have), and a note naming the rates found."""
    if opts.sample_rate:
        return opts.sample_rate, None
    import soundfile as sf

    rates = Counter()
    for f in files:
        if f.suffix.lower() in (".wav", ".flac", ".ogg"):
            try:
                rates[sf.info(str(f)).samplerate] += 1
            except Exception:  # the real read reports the problem
                continue
    if len(rates) < 2:
        return None, None
    rate = max(rates, key=lambda r: (rates[r], r))
    found = ", ".join(f"{r:,} Hz ({n} file{'s' if n > 1 else ''})" for r, n in sorted(rates.items()))
    return rate, (f"The recordings have different sample rates: {found}. All were resampled to {rate:,} Hz, the most "
                  f"common rate; new recordings are resampled to it too. Pass --sample-rate to choose another.")


def resolve_options(opts: SignalOptions) -> SignalOptions:
    """Canonical feature sets (presets expanded) and, for the ``vibration`` preset without a window, its window.

    The result is what is stored with the dataset and its models, so prediction does not depend on defaults
    that may change later.
    """
    from .modalities.signal.features import VIBRATION_SETS, resolve_feature_sets

    sets = resolve_feature_sets(opts.feature_sets)
    opts = replace(opts, feature_sets=sets)
    if sets == VIBRATION_SETS and opts.window_s is None:
        opts = replace(opts, window_s=VIBRATION_WINDOW_S)
    return opts


def import_recordings(ws, folder: str | os.PathLike, name: str | None, opts: SignalOptions, *, skip_bad: bool = False,
                      progress: Callable[[int, int, str], None] | None = None):
    from .datasets import DatasetVersion, ImportResult, current_user
    from .modalities.signal import SIGNAL_EXTENSIONS, feature_names, list_recordings
    from .modalities.signal.io import MissingSampleRate
    from .storage.blobs import sha256_file

    opts = resolve_options(opts)
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder of recordings.")
    from .datasets import _default_name

    name = check_name(name or _default_name(root.resolve(), folder=True), "dataset")
    files = list_recordings(root)
    if not files:
        raise InvalidInput(f"No recordings in {root}: expected files ending in {', '.join(sorted(SIGNAL_EXTENSIONS))}.")
    labels, notes = _label_map(root, files, opts.labels)
    rate, rate_note = _target_rate(files, opts)
    notes += [rate_note] if rate_note else []
    names = feature_names(opts.feature_sets)
    col = _Collected()
    no_rate: list[str] = []
    for i, f in enumerate(files):
        rel = f.relative_to(root).as_posix()
        if progress:
            progress(i, len(files), rel)
        try:
            if f.stat().st_size > ws.settings.max_import_bytes:
                raise InvalidInput(f"{rel}: {human_bytes(f.stat().st_size)} is over the import limit.")
            rec = opts.read(f, ws.settings, source=rel, sample_rate=rate)
            ff = featurise(rec, opts)
        except InvalidInput as exc:
            if isinstance(exc, MissingSampleRate):
                no_rate.append(rel)
            reason = exc.message[len(rel) + 2:] if exc.message.startswith(rel + ": ") else exc.message
            col.skipped.append(SkippedFile(rel, reason + (f" {exc.hint}" if exc.hint else "")))
            continue
        label = labels.get(f)
        col.files.append({"file": rel, "label": label, "sha256": sha256_file(f), "sample_rate": ff.sample_rate,
                          "duration_s": round(ff.duration_s, 4), "n_windows": len(ff.features),
                          "n_channels": rec.n_channels_in_file, "bytes": f.stat().st_size})
        block = pd.DataFrame(ff.features, columns=names)
        block.insert(0, "t1", ff.starts_s + ff.win_s)
        block.insert(0, "t0", ff.starts_s)
        block.insert(0, "label", label)
        block.insert(0, "file", rel)
        col.rows.append(block)
    if progress:
        progress(len(files), len(files), "")
    if no_rate and (not skip_bad or not col.files):
        kinds = sorted({Path(r).suffix.lower() for r in no_rate})
        raise InvalidInput(f"{len(no_rate)} of {len(files)} recordings ({', '.join(kinds)}: "
                           f"{', '.join(no_rate[:3])}{', ...' if len(no_rate) > 3 else ''}) store no sample rate, "
                           "and none was given.",
                           hint="Pass --sample-rate with the rate they were recorded at (e.g. --sample-rate 12000 for "
                                "CWRU 12k files, 25600 for a 25.6 kHz DAQ).")
    if col.skipped and not skip_bad:
        shown = "; ".join(f"{s.file}: {s.reason.rstrip('.')}" for s in col.skipped[:5])
        more = f" (and {len(col.skipped) - 5} more)" if len(col.skipped) > 5 else ""
        raise InvalidInput(f"{len(col.skipped)} of {len(files)} recordings cannot be used: {shown}{more}.",
                           hint="Fix or remove them, or pass --skip-bad to import the rest.")
    if not col.files:
        first: dict[str, list[str]] = {}
        for sk in col.skipped:
            first.setdefault(sk.reason.rstrip("."), []).append(sk.file)
        shown = "; ".join(f"{fs[0]}{f' and {len(fs) - 1} more' if len(fs) > 1 else ''}: {r}"
                          for r, fs in list(first.items())[:3])
        raise InvalidInput(f"None of the {len(files)} recordings in {root} could be read ({shown}).",
                           hint="Fix the files or the import options the reasons name.")
    from .modalities.signal.naming import machines_note

    pooled = machines_note([f["file"] for f in col.files], "The dataset holds")
    notes += [pooled] if pooled else []
    rates = {f["sample_rate"] for f in col.files}
    if len(rates) > 1:
        raise InvalidInput(f"Recordings have different sample rates ({sorted(rates)} Hz).",
                           hint="Pass --sample-rate to resample them to one rate.")
    content = hashlib.sha256(json.dumps({"files": [(f["file"], f["sha256"], f["label"]) for f in col.files],
                                         "options": opts.to_dict(), "features": FEATURES_VERSION},
                                        sort_keys=True).encode()).hexdigest()
    existing = ws.meta.find_dataset(name, content)
    if existing is not None:
        return ImportResult(DatasetVersion.from_row(existing), created=False)
    feats = pd.concat(col.rows, ignore_index=True)
    table = pd.DataFrame(col.files)
    refs = []
    by_rel = {f.relative_to(root).as_posix(): f for f in files}
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        for rec in col.files:
            refs.append((f"file:{rec['file']}", ws.blobs.put_file(by_rel[rec["file"]])))
        fpath, tpath = Path(tmp) / "features.parquet", Path(tmp) / "files.parquet"
        feats.to_parquet(fpath, index=False)
        table.to_parquet(tpath, index=False)
        refs.append(("files", ws.blobs.put_file(tpath)))
        data_sha = ws.blobs.put_file(fpath)
    label_counts = Counter(str(f["label"]) for f in col.files if f["label"] is not None)
    schema = {"kind": "signal", "feature_names": names, "sample_rate": rates.pop(),
              "columns": [{"name": "file", "kind": "id"}, {"name": "label", "kind": "categorical"}]
              + [{"name": n, "kind": "numeric"} for n in names]}
    stats = {"files": len(col.files), "windows": len(feats), "labels": dict(label_counts),
             "unlabelled": sum(1 for f in col.files if f["label"] is None),
             "duration_s": round(float(table["duration_s"].sum()), 2),
             "skipped": [s.__dict__ for s in col.skipped], "notes": notes}
    row = ws.meta.add_dataset(
        name=name, kind="signal", content_sha=content, data_sha=data_sha, source_name=str(root.name),
        n_rows=len(feats), n_cols=len(names), schema=schema, stats=stats, options=opts.to_dict(),
        created_by=current_user(), refs=refs,
    )
    return ImportResult(DatasetVersion.from_row(row), created=True)


def load_signal_tables(ws, ds) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(window features, file table) of a signal dataset version."""
    if ds.kind != "signal":
        raise InvalidInput(f"Dataset {ds.ref} holds {ds.kind} data, not recordings.")
    refs = ws.meta.blob_refs(f"datasets:{ds.id}")
    feats = pd.read_parquet(ws.blob_path(ds.data_sha))
    files = pd.read_parquet(ws.blob_path(refs["files"]))
    return feats, files


def recording_blob(ws, ds, rel: str) -> Path:
    sha = ws.meta.blob_refs(f"datasets:{ds.id}").get(f"file:{rel}")
    if sha is None:
        raise InvalidInput(f"{rel} is not a recording of dataset {ds.ref}.")
    return ws.blob_path(sha)
