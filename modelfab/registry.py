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
# letters and digits of any script (维修工单, Prüfstand), '_', '-', '.': safe in paths and URLs, no '/' or '..'
_NAME = re.compile(r"^[^\W_][\w.\-]{0,99}$")


def check_name(name: str, what: str = "model") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what.capitalize()} name must be 1-100 letters (any script), digits, '_', '-' or '.', starting with a letter or "
            f"digit; got {name!r}."
        )
    return name


def check_alias(alias: str) -> str:
    """Aliases follow the model-name rules, and are never digits only (those read as versions)."""
    if not isinstance(alias, str) or not _NAME.fullmatch(alias) or alias.isdigit():
        raise InvalidInput(
            "Alias must be 1-100 letters (any script), digits, '_', '-' or '.', starting with a letter or digit and not "
            f"digits only (e.g. champion, line3-current); got {alias!r}."
        )
    return alias


def split_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``NAME`` (latest), ``NAME:VERSION`` or ``NAME@ALIAS`` as (name, version, alias); nothing looked up."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("Expected a model reference NAME, NAME:VERSION or NAME@ALIAS.")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        check_name(name)
        return name, None, check_alias(alias)
    name, _, ver = ref.partition(":")
    check_name(name)
    if not ver:
        return name, None, None
    if not ver.isdigit() or int(ver) < 1:
        raise InvalidInput(f"Version in {ref!r} must be a whole number from 1; got {ver!r}.")
    return name, int(ver), None


def parse_ref(ref: str, meta=None) -> tuple[str, int | None]:
    """``NAME`` (latest), ``NAME:VERSION``, or ``NAME@ALIAS`` (needs ``meta``: the version the alias points at)."""
    name, version, alias = split_ref(ref)
    if alias is None:
        return name, version
    if meta is None:
        raise InvalidInput(f"{ref!r} names an alias; resolving it needs the workspace's metadata.")
    return name, meta.resolve_alias(name, alias)["version"]


def resolve_ref(meta, ref: str) -> dict:
    """The model row a reference names (one lookup for NAME@ALIAS)."""
    name, version, alias = split_ref(ref)
    return meta.resolve_alias(name, alias) if alias else meta.get_model(name, version)


def set_alias(meta, row: dict, alias: str, set_by: str) -> dict:
    """Point ``NAME@ALIAS`` at the model version ``row`` (moving it if it exists)."""
    return meta.set_alias(row["name"], check_alias(alias), row["id"], set_by=set_by)


def remove_alias(meta, name: str, alias: str) -> dict:
    return meta.remove_alias(check_name(name), check_alias(alias))


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


def registered_copy(rows: list[dict], manifest: dict) -> dict | None:
    """The version among ``rows`` (one name's) whose manifest is ``manifest``, the names it was exported under
    aside: the same files, threshold and metrics, so the same model."""
    def same(m: dict) -> dict:
        return {k: v for k, v in m.items() if k not in ("exported_name", "exported_version")}

    wanted = same(manifest)
    return next((r for r in reversed(rows) if same(r["manifest"]) == wanted), None)


def verify_stored(meta, blobs, row: dict) -> int:
    """Read every stored file of a model version (manifest and package files) from the blob store and check
    its sha256; raise IntegrityError naming the first bad one. Returns the number of files checked.
    ``models promote`` calls it: a version whose files were changed must not reach production."""
    ref = f"{row['name']}:{row['version']}"
    refs = meta.blob_refs(f"models:{row['id']}")
    if "package" not in refs:
        raise IntegrityError(f"{ref} has no stored package; expected its manifest among the blobs.",
                             hint="Import the model package again (modelfab models import FILE).")
    for role, sha in sorted(refs.items(), key=lambda kv: kv[0] != "package"):
        what = "manifest" if role == "package" else role.removeprefix("file:")
        try:
            with blobs.open(sha) as fh:
                while fh.read(1 << 20):
                    pass
        except (IntegrityError, NotFound) as exc:
            got = "is missing" if isinstance(exc, NotFound) else "does not match its sha256 (it was changed)"
            raise IntegrityError(
                f"{ref} failed its integrity check: its stored {what} (blob {sha[:12]}) {got}.",
                hint="Nothing was changed; restore the workspace from a backup, or import the model package "
                     "again (modelfab models import FILE) and promote that version.") from None
    manifest = json.loads(blobs.get_bytes(refs["package"]).decode("utf-8"))
    missing = [rel for rel in manifest.get("files", {}) if f"file:{rel}" not in refs]
    if missing:
        raise IntegrityError(f"{ref} failed its integrity check: its manifest lists {missing[0]}, which is not "
                             "stored.", hint="Import the model package again (modelfab models import FILE).")
    return len(refs)


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
