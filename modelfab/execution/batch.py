"""Batch prediction tasks: the model package travels to the workers as its files (verified by
sha256 and loaded without unpickling, like everywhere else), row chunks travel as DataFrames."""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

_PREDICTORS: dict[str, object] = {}  # one loaded model per worker process and package


def package_payload(folder: Path, keep_columns: bool) -> dict:
    """The files of a model package folder, to be shipped to workers once per run."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    key = hashlib.sha256(files.get("manifest.json", b"")).hexdigest()
    return {"files": files, "key": key, "keep_columns": keep_columns}


def _predictor(shared: dict):
    key = shared["key"]
    if key not in _PREDICTORS:
        from ..predictor import load_predictor

        root = Path(tempfile.mkdtemp(prefix="modelfab-model-"))
        atexit.register(shutil.rmtree, root, True)
        folder = root / "package"
        for rel, data in shared["files"].items():
            target = (folder / rel).resolve()
            if not target.is_relative_to(folder.resolve()):  # never write outside the folder
                raise ValueError(f"Unsafe path in model package: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _PREDICTORS[key] = load_predictor(folder)  # verifies every file's sha256 against the manifest
    return _PREDICTORS[key]


def predict_chunk(shared: dict, chunk):
    """The rows of one chunk with their predictions: the same frame the local loop writes."""
    pred = _predictor(shared).predict(chunk)
    return chunk.join(pred, rsuffix="_pred") if shared["keep_columns"] else pred
