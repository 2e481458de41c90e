"""Loaded image models: score image files, uploads (REST) and folders; report grids with heat maps.

A classification package holds the AutoML learner over the image features of
``modalities/image/features.py`` (same ``features_version``); an anomaly package holds a patch
k-NN memory (``image_anomaly.npz``) or per-position Gaussians over a packaged backbone's features
(``image_anomaly.npz`` with ``mean`` and ``precision_upper``) whose cell scores give the heat map.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import IntegrityError, InvalidInput, UnsupportedFormat, describe_value
from ..settings import Settings


SIZE_FACTOR = 16  # an image with this many times more (or fewer) pixels than any training image gets a note


class ImagePredictor:
    def __init__(self, folder: Path, manifest: dict, settings: Settings | None = None) -> None:
        from .image.features import FEATURES_VERSION

        self.folder = Path(folder)
        self.manifest = manifest
        self.task = manifest["task"]
        self.labels = manifest.get("labels")
        self.settings = settings or Settings.from_env()
        info = manifest.get("image") or {}
        if info.get("features_version") not in (None, FEATURES_VERSION):
            raise IntegrityError(f"This image model uses image features version {info.get('features_version')}; this "
                                 f"modelfab computes version {FEATURES_VERSION}.", hint="Use the modelfab that trained it.")
        if self.task == "anomaly":
            self.anomaly = load_anomaly_model(self.folder, info["anomaly"])
            self.anomaly.threshold = float(manifest.get("threshold", self.anomaly.threshold))
            self.threshold = self.anomaly.threshold
        else:
            from ..predictor import TabularPredictor

            self.tabular = TabularPredictor(self.folder, manifest)
            self.learner = self.tabular.learner
            self.feature_names = list(info.get("feature_names") or [])
            self.threshold = None

    @property
    def input_columns(self) -> list[dict]:
        return [{"name": "image", "kind": "file"}]

    # -- scoring ----------------------------------------------------------
    def predict_image(self, im) -> dict:
        """One decoded image (``ImageData``) -> a result row (anomaly rows carry ``score_map``)."""
        from .image.scoring_inputs import low_bit_note

        row = self._predict_image(im)
        info = self.manifest.get("image") or {}
        lo_hi = info.get("pixels")
        area = im.size[0] * im.size[1]
        notes = [low_bit_note(im, info)]
        if lo_hi and (area > SIZE_FACTOR * lo_hi[1] or area * SIZE_FACTOR < lo_hi[0]):
            notes.append(f"{im.size[0]}x{im.size[1]} is far from the training images' sizes ({lo_hi[0]:,} to "
                         f"{lo_hi[1]:,} pixels): the answer may not hold; check the camera or the crop")
        if self.task != "anomaly" and im.rgb is not None and info.get("colour") is False:
            notes.append("a colour image; every training image was grey, so its colour was never seen in training: "
                         "the answer may not hold (check the camera, or train with colour images)")
        if any(notes):
            row["note"] = "; ".join(n for n in notes if n)
        return row

    def _predict_image(self, im) -> dict:
        if self.task == "anomaly":
            score, smap = self.anomaly.score_image(im.gray)
            cy, cx = np.unravel_index(int(np.argmax(smap)), smap.shape)
            sy, sx = im.gray.shape[0] / smap.shape[0], im.gray.shape[1] / smap.shape[1]
            return {"file": im.source, "score": score, "is_anomaly": bool(score > self.threshold),
                    "threshold": self.threshold, "hotspot_x": int((cx + 0.5) * sx), "hotspot_y": int((cy + 0.5) * sy),
                    "width": im.size[0], "height": im.size[1], "score_map": smap}
        from .image.features import image_features

        feats = image_features(im.gray, im.rgb)
        frame = pd.DataFrame([[feats[n] for n in self.feature_names]], columns=self.feature_names)
        proba = self.tabular.predict_raw(frame)[0]
        labels = [str(v) for v in self.labels or []]
        best = int(np.argmax(proba))
        out = {"file": im.source, "prediction": labels[best], "label": labels[best], "confidence": float(proba[best]),
               "probabilities": json.dumps({lab: round(float(p), 6) for lab, p in zip(labels, proba)}, ensure_ascii=False)}
        for lab, p in zip(labels, proba):
            out[f"proba_{lab}"] = float(p)
        return out

    def read(self, path: Path, source: str | None = None):
        from .image.io import read_image

        return read_image(Path(path), self.settings, source or Path(path).name)

    def predict_files(self, paths: "list[Path] | Path | str", progress=None) -> pd.DataFrame:
        """One row per image of ``paths`` (one path, or a list of them: files, folders, or .zip files of images,
        unpacked safely into a temporary folder); an image that cannot be read gets its reason in ``error`` and the
        others are scored. The columns are the same whichever images fail."""
        import tempfile

        from ..batch import score_files
        from .image.io import IMAGE_EXTENSIONS, content_root, label_from_folder, safe_extract_zip
        from .image.scoring_inputs import images_to_score, left_out_note

        if isinstance(paths, (str, os.PathLike)):  # one path: a list of one (not its characters)
            paths = [paths]
        with tempfile.TemporaryDirectory(prefix="modelfab-predict-") as tmp:
            items: list[tuple[Path, str]] = []
            given: list[str] = []  # each image's path as the caller gave it, for names that would repeat
            truth: list[str | None] = []  # the label of the class folder each image sits in (folders and zips)
            left: list[tuple[str, str]] = []  # files of the folders and zips not scored (masks), said in a note
            foldered = False
            for p in paths:
                p = Path(p)
                if p.is_dir() or (p.is_file() and p.suffix.lower() == ".zip"):
                    foldered = True
                    if p.is_dir():  # several folders: each row names its folder (two folders may hold an x.png)
                        folder, prefix = p, f"{p.resolve().name}/" if len(paths) > 1 else ""
                    else:
                        folder, prefix = content_root(safe_extract_zip(p, Path(tmp), self.settings)), f"{p.name}/"
                    listing = images_to_score(folder, self.settings)
                    items += [(folder / rel, prefix + rel) for rel in listing.images]
                    given += [f"{_as_given(p)}/{rel}" for rel in listing.images]
                    truth += [label_from_folder(rel) for rel in listing.images]
                    left += [(prefix + f, why) for f, why in listing.left_out]
                elif p.is_file():
                    items.append((p, p.name))
                    given.append(_as_given(p))
                    truth.append(None)
                else:
                    raise InvalidInput(f"{p}: no such file or folder.")
            counts = Counter(name for _, name in items)  # test/good/000.png and test/spot/000.png given as files
            items = [(path, g if counts[name] > 1 else name) for (path, name), g in zip(items, given)]
            if not items:
                raise InvalidInput(f"No images found (expected files ending in {', '.join(sorted(IMAGE_EXTENSIONS))}, "
                                   "folders of them or .zip files of them).")
            rows = score_files(items, self._file_row, progress)
        if self.task == "anomaly":
            columns = ["file", "score", "is_anomaly", "threshold", "hotspot_x", "hotspot_y", "width", "height"]
        else:
            labels = [str(v) for v in self.labels or []]
            # `prediction` as every other kind names it; `label` (the same) kept for existing scripts
            columns = ["file", "prediction", "label", "probabilities", "confidence"] + [f"proba_{lab}" for lab in labels]
        extra = []
        if foldered:  # the class folder an image came from (its true label when the folders are classes)
            for row, t in zip(rows, truth):
                row["folder_label"] = t
            extra = ["folder_label"]
        df = pd.DataFrame(rows, columns=columns + ["error", "note"] + extra)
        df["note"] = df["note"].fillna("")
        if extra:  # an image given alone, or at the top of a folder: no class folder
            df["folder_label"] = df["folder_label"].fillna("")
        note = left_out_note(left)
        df.attrs["notes"] = [note] if note else []
        for c in ("hotspot_x", "hotspot_y", "width", "height"):
            if c in df.columns:
                df[c] = df[c].astype("Int64")  # whole numbers stay whole when a row has none
        if "is_anomaly" in df.columns:
            df["is_anomaly"] = df["is_anomaly"].astype("boolean")
        return df

    def _file_row(self, path: Path, source: str) -> dict:
        row = self.predict_image(self.read(path, source))
        row.pop("score_map", None)
        return row

    def predict_bytes(self, data: bytes, filename: str) -> dict:
        """Score an uploaded image (REST). The bytes are sniffed; the name's extension, when it has one, must agree
        (a browser's Blob arrives as 'blob': its bytes alone say what it is)."""
        from .image.io import IMAGE_EXTENSIONS, decode_image

        base = os.path.basename(filename or "")
        suffix = Path(base).suffix.lower()
        if suffix and suffix not in IMAGE_EXTENSIONS:
            raise UnsupportedFormat(f"Upload an image ({', '.join(sorted(IMAGE_EXTENSIONS))}); got {filename!r}.",
                                    hint="Send one image per request as the multipart field 'file'; for a folder "
                                         "or .zip of images use `modelfab predict MODEL FOLDER`.")
        safe = re.sub(r"[\x00-\x1f\x7f]", "_", base)[:200]  # the name as sent (a label in the answer only)
        row = self.predict_image(decode_image(data, safe or "upload", self.settings, suffix or None))
        smap = row.pop("score_map", None)
        if smap is not None:
            row["heatmap"] = {"rows": int(smap.shape[0]), "cols": int(smap.shape[1]),
                              "cell_px": [row["width"] / smap.shape[1], row["height"] / smap.shape[0]],
                              "values": np.round(smap, 4).tolist()}
        if "probabilities" in row:
            row["probabilities"] = json.loads(row["probabilities"])
            for k in [k for k in row if k.startswith("proba_")]:
                row.pop(k)
        return row

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Predictions for a frame with an ``image`` column of file paths (or a path, or a list of paths:
        as ``predict_files``)."""
        if isinstance(df, (str, os.PathLike)) or (
                isinstance(df, (list, tuple)) and df and all(isinstance(p, (str, os.PathLike)) for p in df)):
            return self.predict_files(df)
        if not isinstance(df, pd.DataFrame):
            raise InvalidInput(f"An image model scores image files: expected a path (str or Path), a list of paths "
                               f"or a DataFrame with an 'image' column of paths; got {describe_value(df)}.",
                               hint="For bytes in memory use predictor.predict_bytes(data, 'name.png').")
        col = "image" if "image" in df.columns else "file" if "file" in df.columns else None
        if col is None:
            raise InvalidInput("An image model needs a column 'image' with image file paths.")
        return self.predict_files([Path(p) for p in df[col]])

    def predict_records(self, records):
        raise InvalidInput("This model scores images: upload a file to /v1/models/{name}/predict-file.")


def load_anomaly_model(folder: Path, spec: dict):
    """The image anomaly model of a package: per-position Gaussians on the packaged backbone's features, or
    (packages without ``kind``, and training without the backbone) the patch k-NN on handcrafted features."""
    kind = spec.get("kind", "patch-knn")
    if kind == "patch-knn":
        from .image.patchknn import PatchKNN

        return PatchKNN.load(folder, spec)
    from .image.padim import KINDS, PositionGaussian

    if kind not in KINDS:
        raise IntegrityError(f"Unknown image anomaly model {kind!r} (this modelfab knows 'patch-knn' and "
                             f"{', '.join(map(repr, KINDS))}).", hint="Use the modelfab that trained it.")
    return PositionGaussian.load(folder, spec)


def load_image_predictor(folder: Path, manifest: dict) -> ImagePredictor:
    return ImagePredictor(folder, manifest)


def batch_predict(ws, model, paths: list[Path], out: Path) -> dict:
    """``modelfab predict`` on images: one row per image, written atomically."""
    from ..batch import file_rows_result, output_path, write_frame

    out = output_path(out)
    df = model.predictor.predict_files(paths)
    write_frame(df, out)
    result = file_rows_result(model, df, out)
    if df.attrs.get("notes"):  # files of the folders left out (masks), said
        result["notes"] = list(df.attrs["notes"])
    return result


# ------------------------------------------------------------------ report
MAX_GRID = 12


def _grid_png(items: list[dict], title: str) -> bytes:
    """A grid of thumbnails; items: {"gray", "caption", optional "heat" (same shape), optional "mask"}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluation.plots import use_cjk_fonts

    use_cjk_fonts()  # captions name files and classes: 划痕_02.png drew as boxes
    n = len(items)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, it in zip(axes.ravel(), items):
        ax.imshow(it["gray"], cmap="gray", vmin=0, vmax=1)
        if it.get("heat") is not None:
            ax.imshow(it["heat"], cmap="jet", alpha=0.4, vmin=it.get("vmin"), vmax=it.get("vmax"))
        if it.get("mask") is not None and it["mask"].any():
            ax.contour(it["mask"].astype(float), levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(it["caption"], fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def report_sections(model) -> list:
    from ..evaluation.report import ReportSection

    m = model.manifest
    data = m.get("data", {})
    try:
        ds = model.ws.dataset(f"{data['dataset']}:{data['version']}")
    except Exception:  # the dataset may have been removed; the report still builds
        return [ReportSection("Images", "The training images are no longer in this workspace: no image grid.")]
    refs = model.ws.meta.blob_refs(f"datasets:{ds.id}")
    hold = model.holdout()
    files = list(data.get("holdout_files") or [])
    sections = []
    shortcuts = (m.get("image") or {}).get("shortcuts")
    if m["task"] == "anomaly":
        sections.append(_anomaly_grid(model, refs, files, hold, _labels_of(model, ds)))
        located = _where_section(m.get("metrics") or {})
        if located is not None:
            sections.append(located)
    else:
        sections.append(_error_grid(model, refs, files, hold))
        meaning = _feature_meaning(m.get("feature_importance") or {})
        if meaning is not None:
            sections.append(meaning)
    if shortcuts:
        sections.append(ReportSection("Shortcut check", "How well image size or brightness alone predicts the label "
                                      "(compare with always guessing the largest class). Much better than that means the "
                                      "model could be learning how images were taken rather than the defect.",
                                      table=[{"signal": k, "accuracy alone": round(v, 4) if isinstance(v, float) else v}
                                             for k, v in shortcuts.items()]))
    return sections


def _feature_meaning(importance: dict, top: int = 12):
    """The most important image features in words (their names, int_skew or glcm_contrast_8, say nothing to a
    quality engineer); None when there are none."""
    import math

    from ..evaluation.report import ReportSection
    from .image.features import describe_image_feature

    ranked = sorted(((str(k), float(v)) for k, v in importance.items() if v is not None and math.isfinite(float(v))
                     and float(v) > 0), key=lambda kv: -kv[1])[:top]
    rows = [{"feature": k, "what it measures": describe_image_feature(k) or "-", "importance": round(v, 4)}
            for k, v in ranked]
    if not rows:
        return None
    return ReportSection("What the top image features measure",
                         "The classifier reads numbers computed from each image (brightness, texture, edges, spots), "
                         "not the pixels. The ones it relies on most, in words: a model resting on brightness alone "
                         "may be learning the lighting rather than the defect.", table=rows)


def _labels_of(model, ds) -> dict:
    """{file: its label at import} of a dataset version (the defect type, for the captions)."""
    from ..images import load_image_tables

    try:
        _, table = load_image_tables(model.ws, ds)
    except Exception:  # noqa: BLE001 - captions then say "defect"
        return {}
    return {str(f): str(v) for f, v in zip(table["file"], table["label"]) if isinstance(v, str) and v}


def _where_section(metrics: dict):
    """The checks against the defect masks: does the heat map point at the defect, and is the defect what is
    found (not the way defective images were taken)?"""
    from ..evaluation.report import ReportSection

    rows = []
    if metrics.get("pixel_auroc") is not None:
        rows.append({"check": "pixel AUROC (heat map vs masks)", "value": round(float(metrics["pixel_auroc"]), 3),
                     "reads": "a pixel inside a marked defect scores above a pixel outside one this share of the time "
                              "(1 = the heat map covers the defects exactly, 0.5 = it points anywhere)"})
    if metrics.get("painted_out_auroc") is not None:
        n = metrics.get("painted_out_images") or ["?", "?"]
        rows.append({"check": "painted-out AUROC (shortcut check)", "value": round(float(metrics["painted_out_auroc"]), 3),
                     "reads": f"with their marked defects painted over, {n[0]} defective images still score above {n[1]} "
                              "good ones this share of the time: near 0.5 = the model finds the defects themselves; "
                              "well above = defective images differ elsewhere too (how they were taken), which the "
                              "detection rate partly rests on"})
    if not rows:
        return None
    return ReportSection("Does it find the defect where it is?", "Measured on the held-out defective images that have "
                         "a defect mask.", table=rows)


def _load(model, refs, rel):
    from .image.io import read_image

    return read_image(model.ws.blob_path(refs[f"file:{rel}"]), model.ws.settings, rel)


def _error_grid(model, refs, files, hold):
    from ..evaluation.report import ReportSection

    labels = [str(v) for v in model.manifest.get("labels") or []]
    y, proba = hold.get("y_true"), hold.get("proba")
    if y is None or proba is None or len(files) != len(y):
        return ReportSection("Misclassified images", "The held-out images are not recorded in this package.")
    pred = proba.argmax(1)
    wrong = np.flatnonzero(pred != y)
    wrong = wrong[np.argsort(-proba[wrong, pred[wrong]])][:MAX_GRID]
    if not len(wrong):
        text = (f"All {len(y)} held-out images were classified correctly; below, the {min(8, len(y))} it was "
                "least sure of (true label -> predicted, confidence).")
        wrong = np.argsort(proba[np.arange(len(y)), pred])[: min(8, len(y))]
        title = "Least confident held-out images"
    else:
        text = (f"{int((pred != y).sum())} of {len(y)} held-out images were misclassified; the most confident "
                "mistakes first (true label -> predicted, confidence).")
        title = "Misclassified held-out images"
    items = []
    for i in wrong:
        im = _load(model, refs, files[i])
        items.append({"gray": im.gray, "caption": f"{_short_name(files[i])}\n{labels[y[i]]} -> {labels[pred[i]]} "
                                                  f"({proba[i, pred[i]]:.0%})"})
    return ReportSection(title, text + " (Heat maps are drawn for anomaly models only: a classifier on "
                         "whole-image texture features has no per-pixel map.)", figures=[(_grid_png(items, title), title)])


def _anomaly_grid(model, refs, files, hold, labels: dict | None = None):
    from ..evaluation.report import ReportSection
    from .image.io import read_mask

    pred = model.predictor
    scores, y = hold.get("scores"), hold.get("y_true")
    if scores is None or len(files) != len(scores):
        return ReportSection("Most anomalous images", "The held-out images are not recorded in this package.")
    order = np.argsort(-scores)
    top = list(order[:8])
    misses = [i for i in np.argsort(scores) if y[i] == 1 and scores[i] <= pred.threshold][:4]
    items = []
    for i in top + [i for i in misses if i not in top]:
        im = _load(model, refs, files[i])
        _, smap = pred.anomaly.score_image(im.gray)
        heat = pred.anomaly.heatmap(smap, im.gray.shape)
        sha = refs.get(f"mask:{files[i]}")
        mask = read_mask(model.ws.blob_path(sha), model.ws.settings, im.gray.shape, files[i]) if sha else None
        verdict = "flagged" if scores[i] > pred.threshold else "passed"
        truth = (labels or {}).get(str(files[i])) or ("defect" if y[i] else "good")
        items.append({"gray": im.gray, "heat": heat, "mask": mask, "vmin": 0, "vmax": max(pred.threshold * 1.5, float(np.max(smap)), 1e-6),
                      "caption": f"{_short_name(files[i])}\n{truth}, score {scores[i]:.2f} ({verdict})"})
    title = "Most anomalous held-out images, then missed defects"
    text = ("Held-out images (defect-free images never seen in training, and every defective image) with the "
            "highest anomaly scores, then defective images the model passed. Red = where the image deviates most "
            "from the defect-free ones: the colours run from 0 to 1.5 x the threshold, or to the image's highest "
            "score when that is higher, so that a defect far above the threshold stands out from the rest of its "
            "image (which may be above the threshold too). The white outline is the defect mask when one was "
            "imported.")
    return ReportSection(title, text, figures=[(_grid_png(items, title), title)])


def _as_given(p: Path) -> str:
    """A path as the caller wrote it (relative to the working folder when it is under it), with '/'."""
    try:
        return Path(os.path.relpath(p)).as_posix()
    except ValueError:  # another drive (Windows)
        return p.as_posix()


def _short_name(rel) -> str:
    """A grid caption's file: its last folder and name (spot/000.png beside good/000.png), the end kept if long."""
    parts = Path(str(rel)).parts[-2:]
    name = "/".join(parts)
    return name if len(name) <= 28 else "…" + name[-27:]
