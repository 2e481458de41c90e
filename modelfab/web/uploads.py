"""Uploads and archives, kept inside the workspace.

* Request bodies are parsed as they stream in; a file part is written to a
  random name under ``<workspace>/tmp/web-uploads/`` and refused (and
  deleted) as soon as it passes the size limit. The name the browser sent
  is only shown back (sanitised) and its suffix picks a reader.
* Zips of recordings are checked from their directory first (``..``,
  absolute paths, drive letters, symlinks, entry count, total size, ratio),
  then extracted with the real byte counts checked again while writing.
* Server-side folders must resolve inside ``MODELFAB_UI_IMPORT_ROOT``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl

from ..errors import InvalidInput, TooLarge, UnsupportedFormat
from ..settings import human_bytes

UPLOAD_DIR = "web-uploads"
_SAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def display_name(filename: str | None) -> str:
    """A file name fit to show: last path part, no control or odd characters, at most 120 chars."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE.sub("_", base).strip(" .")[:120]
    return base or "upload"


def safe_suffix(filename: str | None, allowed: tuple[str, ...]) -> str:
    name = display_name(filename).lower()
    for suffix in sorted(allowed, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise UnsupportedFormat(f"Expected a file ending in {', '.join(allowed)}; got {display_name(filename)!r}.")


def upload_root(ws) -> Path:
    d = ws.tmp_dir / UPLOAD_DIR
    d.mkdir(exist_ok=True)
    return d


def new_upload_dir(ws) -> Path:
    d = upload_root(ws) / secrets.token_hex(16)
    d.mkdir()
    return d


def upload_dir(ws, token: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", token or ""):
        raise InvalidInput("Unknown upload.")
    return upload_root(ws) / token


ABANDONED_AFTER_S = 2 * 24 * 3600  # a preview nobody confirmed or cancelled in two days


def sweep_uploads(ws, older_than_s: float = ABANDONED_AFTER_S) -> int:
    """Remove upload folders last touched more than ``older_than_s`` ago (previews left open, uploads of a server
    that stopped mid-import); run when the UI starts, when no import job runs. Returns how many went."""
    import shutil
    import time

    root = upload_root(ws)
    if not root.is_dir():
        return 0
    cutoff, gone = time.time() - older_than_s, 0
    for d in root.iterdir():
        if d.is_dir() and not d.is_symlink() and re.fullmatch(r"[0-9a-f]{32}", d.name) and d.stat().st_mtime < cutoff:
            shutil.rmtree(d, ignore_errors=True)
            gone += 1
    return gone


def keep_name(up: "UploadedFile", suffix: str) -> Path:
    """Move an uploaded file to a path named as the user's file (sanitised as the REST API does, in a folder
    of its own beside it), so that readers name its items and errors after it (``sines_test_0``,
    ``parts.csv``), never after an internal name. The new path, also set on ``up``."""
    stem = re.sub(r"[^\w.\-]", "_", Path(display_name(up.raw_name)).stem)[:100].lstrip(".") or "upload"
    folder = up.path.with_name(up.path.name + ".named")
    folder.mkdir(exist_ok=True)
    target = folder / (stem + suffix)
    up.path.rename(target)
    up.path = target
    return target


def check_table_upload(up: "UploadedFile", suffix: str, t) -> None:
    """Refuse, in the browser's language (``t``), a workbook that cannot be read before it is kept: a
    password-protected .xlsx is an OLE compound file, not a zip (the reader said 'not a zip archive')."""
    from ..modalities.tabular_io import EXCEL_EXT, OLE_MAGIC

    if suffix in EXCEL_EXT:
        with open(up.path, "rb") as fh:
            head = fh.read(len(OLE_MAGIC))
        if head == OLE_MAGIC:
            raise UnsupportedFormat(t("upload.xlsx_locked", file=up.filename))


def upload_file_name(filename: str | None, name: str, suffix: str) -> str:
    """A safe file name for an upload in its own folder: the uploaded name's stem with anything but letters (any
    script), digits, '_', '-', '.' replaced, never hidden or empty; the checked suffix."""
    stem = re.sub(r"_+", "_", re.sub(r"[^\w.\-]+", "_", Path(str(filename or "")).stem)).strip("._")[:100]
    return f"{stem if stem and stem != 'f000' else name}{suffix}"


@dataclass
class UploadedFile:
    field: str
    filename: str          # sanitised, for display only
    raw_name: str          # as sent (never used as a path)
    path: Path             # random name inside the workspace
    size: int = 0


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    folder: Path | None = None

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    def file(self, name: str) -> UploadedFile | None:
        return next((f for f in self.files if f.field == name and f.size > 0), None)

    def empty_file(self, name: str) -> UploadedFile | None:
        """A file the browser sent with a name but no bytes (a 0-byte file; no file chosen has no name)."""
        return next((f for f in self.files if f.field == name and f.size == 0 and f.raw_name), None)

    def cleanup(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


async def read_form(request, ws, *, max_file_bytes: int, max_form_bytes: int, max_parts: int = 50) -> Form:
    """Parse a urlencoded or multipart body; files go to a fresh folder in the workspace tmp dir."""
    ctype = request.headers.get("content-type", "")
    base = ctype.split(";")[0].strip().lower()
    if base == "multipart/form-data":
        return await _read_multipart(request, ws, ctype, max_file_bytes, max_form_bytes, max_parts)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_form_bytes:
            raise TooLarge(f"The form is over {max_form_bytes:,} bytes.")
    if base in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_parts * 20)
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("The form could not be read.") from None
        form = Form()
        for k, v in pairs:
            form.fields.setdefault(k, v)
        return form
    if base == "application/json":
        import json

        try:
            data = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidInput("Expected a JSON object.")
        return Form(fields={str(k): v for k, v in data.items()})
    raise UnsupportedFormat(f"Unexpected content type {base!r}.")


async def _read_multipart(request, ws, ctype, max_file_bytes, max_form_bytes, max_parts) -> Form:
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("The upload has no multipart boundary.")
    form = Form(folder=new_upload_dir(ws))
    state: dict = {"headers": {}, "field": b"", "value": b"", "part": None, "fh": None, "buf": None,
                   "parts": 0, "form_bytes": 0, "error": None}

    def on_part_begin():
        state["headers"] = {}
        state["parts"] += 1
        if state["parts"] > max_parts:
            raise InvalidInput(f"Too many parts in the upload (more than {max_parts}).")

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        # latin-1 keeps the bytes: a browser sends a file name as raw UTF-8 (爆裂.csv), decoded from them below
        # (read as UTF-8 here, parse_options_header could not encode it back: every Chinese file name failed)
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"].decode("latin-1")
        state["field"], state["value"] = b"", b""

    def on_headers_finished():
        disp, opts = parse_options_header(state["headers"].get("content-disposition", ""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in opts:
            raw = opts[b"filename"].decode("utf-8", "replace")
            path = form.folder / f"f{len(form.files):03d}"
            up = UploadedFile(field=name, filename=display_name(raw), raw_name=raw, path=path)
            form.files.append(up)
            state["part"], state["fh"], state["buf"] = up, open(path, "wb"), None
        else:
            state["part"], state["fh"], state["buf"] = name, None, bytearray()

    def on_part_data(data, start, end):
        n = end - start
        if state["fh"] is not None:
            up = state["part"]
            up.size += n
            if up.size > max_file_bytes:
                raise TooLarge(f"{up.filename} is over the upload limit of {human_bytes(max_file_bytes)}.")
            state["fh"].write(data[start:end])
        else:
            state["form_bytes"] += n
            if state["form_bytes"] > max_form_bytes:
                raise TooLarge(f"The form fields are over {max_form_bytes:,} bytes.")
            state["buf"].extend(data[start:end])

    def on_part_end():
        if state["fh"] is not None:
            state["fh"].close()
            state["fh"] = None
        elif isinstance(state["part"], str):
            form.fields.setdefault(state["part"], state["buf"].decode("utf-8", "replace"))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        if state["fh"] is not None:
            state["fh"].close()
        form.cleanup()
        if isinstance(exc, InvalidInput):
            raise
        if isinstance(exc, Exception) and type(exc).__module__.startswith("python_multipart"):
            raise InvalidInput("The upload could not be read (malformed multipart body).") from None
        raise
    return form


# -- zips of recordings --------------------------------------------------------
@dataclass
class ZipLimits:
    max_entries: int
    max_total_bytes: int
    max_ratio: int


def _member_path(name: str) -> PurePosixPath | None:
    """The relative path of a zip member, or None to skip it (folders, __MACOSX, hidden); InvalidInput if unsafe."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or "\x00" in raw:
        raise InvalidInput(f"The zip holds an absolute path ({display_name(name)!r} ...): refused.")
    p = PurePosixPath(raw)
    if any(part == ".." for part in p.parts):
        raise InvalidInput("The zip holds a path with '..' (it would write outside its folder): refused.")
    if raw.endswith("/"):
        return None
    parts = [x for x in p.parts if x not in ("", ".")]
    if not parts or parts[0] == "__MACOSX" or any(x.startswith(".") for x in parts):
        return None
    return PurePosixPath(*parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_zip(path: Path, limits: ZipLimits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Members to extract, after checking the whole directory. Raises InvalidInput / TooLarge."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UnsupportedFormat("The file is not a readable zip archive.") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise TooLarge(f"The zip holds {len(infos):,} entries; the limit is {limits.max_entries:,}.")
        total = 0
        out = []
        seen: set[str] = set()
        from ..modalities.image.io import zip_member_names  # names without the UTF-8 flag: UTF-8 or GBK bytes

        for info, name in zip(infos, zip_member_names(infos)):
            rel = _member_path(name)
            if _is_symlink(info):
                raise InvalidInput(f"The zip holds a symbolic link ({display_name(name)!r}): refused.")
            if rel is None or info.is_dir():
                continue
            key = rel.as_posix().lower()
            if key in seen:
                raise InvalidInput(f"The zip holds {rel.as_posix()!r} twice.")
            seen.add(key)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise TooLarge(f"The zip unpacks to more than {human_bytes(limits.max_total_bytes)}.")
            if info.file_size > 1_000_000 and info.file_size > limits.max_ratio * max(1, info.compress_size):
                raise TooLarge(f"{rel.as_posix()!r} is compressed more than {limits.max_ratio}:1 "
                               "(a zip bomb?): refused.")
            out.append((info, rel))
        return out


def extract_zip(path: Path, dest: Path, limits: ZipLimits) -> int:
    """Extract the checked members into ``dest`` (created, must be empty); returns the file count."""
    members = check_zip(path, limits)
    dest.mkdir(parents=True, exist_ok=True)
    real = dest.resolve()
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info, rel in members:
            target = dest.joinpath(*rel.parts)
            if not target.resolve().is_relative_to(real):  # belt and braces
                raise InvalidInput(f"{rel.as_posix()!r} would be written outside the import folder: refused.")
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with zf.open(info) as src, open(target, "xb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    total += len(chunk)
                    if written > info.file_size or total > limits.max_total_bytes:
                        raise TooLarge("The zip unpacks to more than its directory says: refused.")
                    dst.write(chunk)
    return len(members)


# -- server-side folders -------------------------------------------------------
def resolve_in_root(root: Path | None, rel: str) -> Path:
    """``rel`` inside ``root``, following no link out of it. InvalidInput otherwise."""
    if root is None:
        raise InvalidInput("Importing from a server folder is off.",
                           hint="Set MODELFAB_UI_IMPORT_ROOT to the folder that may be imported from, and restart.")
    real_root = Path(root).resolve()
    rel = (rel or "").replace("\\", "/").strip()
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel) or any(p == ".." for p in rel.split("/")) or "\x00" in rel:
        raise InvalidInput("Pick a folder inside the import root (no absolute paths or '..').")
    target = real_root.joinpath(*[p for p in rel.split("/") if p not in ("", ".")])
    resolved = target.resolve()
    if not resolved.is_relative_to(real_root):
        raise InvalidInput("That folder is outside the import root (a link out of it?): refused.")
    if not resolved.is_dir():
        raise InvalidInput("No such folder inside the import root.")
    return resolved


def list_folders(root: Path | None, depth: int = 2, limit: int = 500) -> list[str]:
    """Folders under the import root (relative posix paths), links that leave it skipped."""
    if root is None or not Path(root).is_dir():
        return []
    real_root = Path(root).resolve()
    out: list[str] = []
    for dirpath, dirnames, _ in os.walk(real_root, followlinks=False):
        d = Path(dirpath)
        level = len(d.relative_to(real_root).parts)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n != "__MACOSX")
        if level >= depth:
            dirnames[:] = []
        for n in dirnames:
            p = d / n
            if p.is_symlink() and not p.resolve().is_relative_to(real_root):
                continue
            out.append(p.relative_to(real_root).as_posix())
            if len(out) >= limit:
                return out
    return out
