"""Model registry: versions per name, stored as blobs + one metadata row.

Register = every package file into the blob store (verified), then the
row with its manifest in one transaction. Loading materialises a package
into the workspace cache and verifies every hash before parsing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .artifacts import MANIFEST, verify_package
from .errors import IntegrityError, InvalidInput, NotFound
from .storage.blobs import sha256_file

STAGES = ("none", "staging", "production", "archived")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def check_name(name: str, what: str = "model") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{what.capitalize()} name must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit; got {name!r}."
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (latest) or ``NAME:VERSION``."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("Expected a model reference NAME or NAME:VERSION.")
    name, _, ver = ref.partition(":")
    check_name(name)
    if not ver:
        return name, None
    if not ver.isdigit() or int(ver) < 1:
        raise InvalidInput(f"Version in {ref!r} must be a whole number from 1; got {ver!r}.")
    return name, int(ver)


def register_package(meta, blobs, folder: Path, *, name: str, dataset_id: int | None, created_by: str) -> dict:
    check_name(name)
    manifest = verify_package(folder)
    refs = []
    for rel in manifest["files"]:
        sha = blobs.put_file(folder / rel)
        refs.append((f"file:{rel}", sha))
    package_sha = blobs.put_file(folder / MANIFEST)
    return meta.add_model(name=name, task=manifest["task"], dataset_id=dataset_id, package_sha=package_sha,
                          manifest=manifest, metrics=manifest.get("metrics", {}), created_by=created_by, refs=refs)


def materialise(meta, blobs, row: dict, cache_root: Path) -> Path:
    """Folder holding the verified package of a model row (cached by package hash)."""
    final = Path(cache_root) / row["package_sha"]
    if final.is_dir():
        try:  # the cached manifest must be the registered one, and every file must match it
            if sha256_file(final / MANIFEST) != row["package_sha"]:
                raise IntegrityError("cached manifest differs from the registered one")
            verify_package(final)
            return final
        except Exception:
            shutil.rmtree(final, ignore_errors=True)
    refs = meta.blob_refs(f"models:{row['id']}")
    if "package" not in refs:
        raise NotFound(f"Model {row['name']}:{row['version']} has no stored package.")
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".load-", dir=cache_root))
    try:
        blobs.copy_to(refs["package"], tmp / MANIFEST)
        manifest = json.loads((tmp / MANIFEST).read_text("utf-8"))
        for rel in manifest.get("files", {}):
            sha = refs.get(f"file:{rel}")
            if sha is None:
                raise NotFound(f"Model {row['name']}:{row['version']} is missing its file {rel}.")
            blobs.copy_to(sha, tmp.joinpath(*Path(rel).parts))
        verify_package(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process won the race: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
