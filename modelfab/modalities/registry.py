"""Which modality module loads which kind of model package.

A new kind of data registers its predictor loader here; nothing else in
the tree needs to change.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable

# modality name -> "module:function" returning a predictor for (folder, manifest)
_LOADERS = {
    "signal": "modelfab.modalities.signal_model:load_signal_predictor",
    "image": "modelfab.modalities.image_model:load_image_predictor",
    "series": "modelfab.modalities.series_model:load_series_predictor",
}


# modality name -> "module:function(ws, model, paths, out) -> dict" for `modelfab predict`
_BATCH = {
    "signal": "modelfab.modalities.signal_model:batch_predict",
    "image": "modelfab.modalities.image_model:batch_predict",
    "series": "modelfab.modalities.series_model:batch_predict",
}

# dataset kind -> "module:function" that trains on it (tables are the built-in default). Signature:
#   fn(ws, ds, *, target, task, budget, metric, name, seed, progress, normal_label, max_false_alarm) -> Model
_TRAINERS = {
    "signal": "modelfab.training_signal:train_signal",
    "image": "modelfab.training_image:train_image",
    "series": "modelfab.training_series:train_series",
}

# modality name -> "module:function(model) -> list[ReportSection]": extra report sections
# (e.g. image grids of errors with heat maps, series plots, top terms per class).
_REPORT_SECTIONS: dict[str, str] = {}
_REPORT_SECTIONS["image"] = "modelfab.modalities.image_model:report_sections"
_REPORT_SECTIONS["series"] = "modelfab.modalities.series_model:report_sections"
_REPORT_SECTIONS["tabular"] = "modelfab.modalities.text.report:text_sections"  # top terms of text columns

# modality name -> "module:function(folder, out, manifest, *, model_name, model_version) -> dict" for
# `modelfab export --format onnx` of non-tabular models (same result keys as export.onnx.export_onnx).
_ONNX_EXPORTERS: dict[str, str] = {}


def _resolve(table: dict, modality: str) -> Callable | None:
    target = table.get(modality)
    if target is None:
        return None
    module, func = target.split(":")
    return getattr(import_module(module), func)


def predictor_loader(modality: str) -> Callable | None:
    return _resolve(_LOADERS, modality)


def trainer(kind: str) -> Callable | None:
    return _resolve(_TRAINERS, kind)


def report_sections(modality: str) -> Callable | None:
    return _resolve(_REPORT_SECTIONS, modality)


def onnx_exporter(modality: str) -> Callable | None:
    return _resolve(_ONNX_EXPORTERS, modality)


def batch_predictor(modality: str) -> Callable:
    fn = _resolve(_BATCH, modality)
    if fn is None:
        from ..errors import InvalidInput

        raise InvalidInput(f"Batch prediction is not available for {modality!r} models.")
    return fn


IMPORT_KINDS = ("auto", "table", "recordings")  # extended as kinds of data are added
IMPORT_KINDS += ("images",)  # a folder or .zip of JPEG/PNG/BMP/TIFF images (auto-detected)
IMPORT_KINDS += ("series",)  # time series: long/wide CSV or Parquet (--kind series), UCR/UEA .ts (auto)


def detect_kind(path) -> str:
    """What ``modelfab data import PATH`` imports when ``--kind auto``: a file is a table, a folder holds recordings."""
    from pathlib import Path

    from .series.ucr import series_file_kind

    if Path(path).is_file() and series_file_kind(path):  # a .ts file, or a UCR archive table (NAME_TRAIN.tsv)
        return "series"
    from .image.io import looks_like_image_folder, zip_holds_images

    if (Path(path).is_dir() and looks_like_image_folder(Path(path))) or (
            Path(path).is_file() and Path(path).suffix.lower() == ".zip" and zip_holds_images(Path(path))):
        return "images"
    return "recordings" if Path(path).is_dir() else "table"
