"""Readers for container formats: MATLAB .mat (without trusting the file), CSV, Parquet.

CSV / Parquet: one numeric column per channel; a time column (``time``,
``t``, ``timestamp``, ...) and non-numeric columns are ignored. CSV
delimiter (``,`` ``;`` tab), a decimal comma (with ``;``) and a missing
header row are detected. The sample count is bounded before parsing (line
count x columns for CSV, row-group metadata for Parquet).

MATLAB:

* v5 / v7 (``save -v7``, also compressed): parsed here, in pure Python +
  numpy. ``scipy.io.loadmat`` is *not* used for v5: its compiled reader
  crashes the process (segmentation fault) on some damaged files, found by
  fuzzing. Every length and shape in the file is checked against the file
  size and the settings before anything is allocated; compressed variables
  are inflated with a bound (no zip bombs).
* v4: ``scipy.io`` (its v4 reader is plain Python), after ``whosmat``.
* v7.3: HDF5 via h5py (dataset shapes are checked before reading).

Only real numeric arrays with at most 2 dimensions are signal candidates;
cells, structs, chars, sparse, logical and complex arrays are skipped.
"""

from __future__ import annotations

import math
import mmap
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from ...errors import InvalidInput, TooLarge, UnsupportedFormat
from ...settings import Settings
from .io import _check_rate, _limits, _Raw, _short, listing

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TIME_COL = re.compile(r"(t|time.*|timestamp|seconds?|sec)", re.I)
_RATE_NAME = re.compile(r"(fs|sr|srate|fsamp|sample_?rate|sampling_?(rate|frequency)|samplerate)", re.I)
# MAT v5 storage types -> numpy, and numeric array classes.
_MI = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MX = {6: "double", 7: "single", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32",
       14: "int64", 15: "uint64"}
_NUMERIC = set(_MX.values())
_MAX_VARIABLES = 100_000


class _Bad(ValueError):
    pass


def _tag(buf, pos: int, end: int, e: str) -> tuple[int, int, int, int]:
    """(type, nbytes, data_pos, next_pos) of the data element at ``pos``."""
    if pos + 8 > end:
        raise _Bad("an element header runs past the end of its container")
    word, nbytes = struct.unpack_from(e + "II", buf, pos)
    if word >> 16:  # small data element: type and size share the first word
        if word >> 16 > 4:
            raise _Bad("bad small data element")
        return word & 0xFFFF, word >> 16, pos + 4, pos + 8
    if pos + 8 + nbytes > end:
        raise _Bad(f"an element of {nbytes:,} bytes runs past the end of the file")
    return word, nbytes, pos + 8, pos + 8 + ((nbytes + 7) & ~7)


def _matrix(buf, pos: int, end: int, e: str, with_data: bool) -> dict:
    """Parse the inside of one miMATRIX element (flags, dims, name[, real part])."""
    t, n, d, pos = _tag(buf, pos, end, e)
    if t != 6 or n < 8:
        raise _Bad("bad array flags")
    flags = struct.unpack_from(e + "I", buf, d)[0]
    cls = flags & 0xFF
    t, n, d, pos = _tag(buf, pos, end, e)
    if t != 5 or n % 4 or not 8 <= n <= 256:
        raise _Bad("bad dimensions")
    dims = struct.unpack_from(f"{e}{n // 4}i", buf, d)
    if min(dims) < 0:
        raise _Bad("negative dimension")
    t, n, d, pos = _tag(buf, pos, end, e)
    if t != 1 or n > 256:
        raise _Bad("bad variable name")
    name = bytes(buf[d:d + n]).decode("latin-1")
    numeric = cls in _MX and not flags & 0x0800 and not flags & 0x0200  # not complex, not logical
    out = {"name": name, "class": _MX.get(cls, f"class{cls}") if numeric else "other", "shape": tuple(dims)}
    if with_data and numeric:
        t, n, d, _ = _tag(buf, pos, end, e)
        count = math.prod(dims)
        if t not in _MI or n != count * np.dtype(_MI[t]).itemsize:
            raise _Bad(f"variable {name}: data of type {t} and {n:,} bytes does not match shape {dims}")
        arr = np.frombuffer(buf, dtype=np.dtype(_MI[t]).newbyteorder(e), count=count, offset=d)
        out["data"] = np.array(arr.reshape(dims, order="F"))  # copy: the buffer may be an mmap
    return out


def _v5_entries(mm, e: str) -> list[dict]:
    entries, pos, size = [], 128, len(mm)
    while pos + 8 <= size:
        if len(entries) >= _MAX_VARIABLES:
            raise _Bad(f"more than {_MAX_VARIABLES:,} variables")
        t, n = struct.unpack_from(e + "II", mm, pos)
        end = pos + 8 + n
        if end > size:
            raise _Bad(f"a variable of {n:,} bytes runs past the end of the file")
        if t == 14 and n:
            entries.append({**_matrix(mm, pos + 8, end, e, False), "at": pos + 8, "end": end})
        elif t == 15:
            dec = zlib.decompressobj()
            head = dec.decompress(mm[pos + 8:end], 4096)
            t2, n2 = struct.unpack_from(e + "II", head, 0) if len(head) >= 8 else (0, 0)
            if t2 == 14 and n2:
                info = _matrix(head, 8, min(len(head), 8 + n2), e, False)
                entries.append({**info, "at": pos + 8, "end": end, "zlen": 8 + n2})
        pos = end
    return entries


def _v5_values(mm, e: str, entries: dict, names: list[str]) -> dict:
    values = {}
    for name in names:
        ent = entries[name]
        if "zlen" not in ent:
            values[name] = _matrix(mm, ent["at"], ent["end"], e, True)["data"]
            continue
        need = 8 + 4096 + math.prod(ent["shape"]) * 8  # headers + data, at most 8 bytes per element
        buf = zlib.decompressobj().decompress(mm[ent["at"]:ent["end"]], min(ent["zlen"], need))
        values[name] = _matrix(buf, 8, len(buf), e, True)["data"]
    return values


def _pick(src: str, entries: list[tuple[str, tuple]], variable: str | None) -> tuple[str, list, list]:
    """entries: numeric (name, shape) pairs with <= 2 dims. Returns (signal, rpm variables, rate variables)."""
    rpm = sorted(n for n, s in entries if "rpm" in n.lower() and math.prod(s) <= 16)
    rate = sorted(n for n, s in entries if _RATE_NAME.fullmatch(n) and math.prod(s) == 1)
    cands = [(n, s) for n, s in entries if n not in rpm and n not in rate]
    if variable:
        try:
            rx = re.compile(variable)
        except re.error as exc:
            raise InvalidInput(f"{src}: expected a valid regular expression for variable, got {variable!r} ({exc}).")
        cands = [(n, s) for n, s in cands if rx.search(n)]
    if not cands:
        names = listing(n for n, _ in entries)
        want = f"a numeric variable matching {variable!r}" if variable else "a numeric 1-D or 2-D array"
        raise InvalidInput(f"{src}: expected {want}, got numeric variables: {names}.",
                           hint="Pass --variable with a regex matching the signal variable.")
    cands.sort(key=lambda c: (-math.prod(c[1]), c[0]))
    return cands[0][0], rpm, rate


def _orient(data) -> np.ndarray:
    data = np.asarray(data)
    data = data if data.ndim == 2 else data.reshape(-1, 1)
    return data if data.shape[0] >= data.shape[1] else data.T


def _finish(src: str, values: dict, name: str, rpm: list, rate: list, fmt: str) -> _Raw:
    meta: dict = {"format": fmt, "variable": name}
    for n in rpm[:1]:
        v = np.asarray(values[n], dtype=np.float64).ravel()
        if v.size and np.isfinite(v[0]):
            meta["rpm"] = int(v[0]) if float(v[0]).is_integer() else float(v[0])
            meta["rpm_variable"] = n
    file_rate = None
    for n in rate[:1]:
        file_rate = _check_rate(float(np.asarray(values[n], dtype=np.float64).ravel()[0]), src,
                                f"the sample rate stored in variable {n}")
    data = _orient(values[name])
    if data.dtype.kind not in "iuf":
        raise InvalidInput(f"{src}: expected numbers in variable {name}, got {data.dtype}.")
    return _Raw(data, file_rate, meta)


def _choose(src: str, listing: list[tuple[str, tuple, str]], variable, settings: Settings):
    numeric = [(n, tuple(s)) for n, s, c in listing if c in _NUMERIC and len(s) <= 2 and n and not n.startswith("__")]
    name, rpm, rate = _pick(src, numeric, variable)
    shape = dict(numeric)[name]
    if math.prod(shape) == 0:
        raise InvalidInput(f"{src}: expected samples in variable {name}, got an empty array {shape}.",
                           hint="Drop the file.")
    _limits(src, max(shape), min(shape), settings, f" in variable {name}")
    return name, rpm, rate


def read_mat(p: Path, src: str, variable: str | None, settings: Settings) -> _Raw:
    with open(p, "rb") as fh:
        head = fh.read(520)
    if head[:8] == _HDF5_MAGIC or head[512:520] == _HDF5_MAGIC:
        return _read_h5(p, src, variable, settings)
    bad = f"{src}: expected a MATLAB .mat file (v4, v5/v7 or v7.3), but it could not be parsed"
    hint = "Save it again in MATLAB with save(..., '-v7')."
    if len(head) >= 4 and 0 in head[:4]:
        return _read_v4(p, src, variable, settings, bad, hint)
    e = {b"IM": "<", b"MI": ">"}.get(head[126:128])
    if len(head) < 128 or e is None:
        raise UnsupportedFormat(f"{bad} (no MAT v5 header).", hint=hint)
    with open(p, "rb") as fh:  # the map is freed with its last reference (closing it early breaks views)
        mm = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
    try:
        entries = {x["name"]: x for x in _v5_entries(mm, e)}
        name, rpm, rate = _choose(src, [(n, x["shape"], x["class"]) for n, x in entries.items()], variable, settings)
        values = _v5_values(mm, e, entries, [name, *rpm, *rate])
    except (_Bad, zlib.error, struct.error, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{bad} ({_short(exc)}).", hint=hint)
    return _finish(src, values, name, rpm, rate, "mat")


def _read_v4(p: Path, src: str, variable, settings: Settings, bad: str, hint: str) -> _Raw:
    import scipy.io

    try:
        listing = scipy.io.whosmat(str(p))
    except Exception as exc:
        raise UnsupportedFormat(f"{bad} ({_short(exc)}).", hint=hint)
    name, rpm, rate = _choose(src, listing, variable, settings)
    try:
        values = scipy.io.loadmat(str(p), variable_names=[name, *rpm, *rate])
    except Exception as exc:
        raise InvalidInput(f"{bad} ({_short(exc)}).", hint=hint)
    return _finish(src, values, name, rpm, rate, "mat-v4")


def _read_h5(p: Path, src: str, variable, settings: Settings) -> _Raw:
    import h5py

    bad = f"{src}: expected a MATLAB v7.3 (HDF5) .mat file, but it could not be read"
    hint = "Save it again in MATLAB with save(..., '-v7.3')."
    try:
        fh = h5py.File(p, "r")
    except Exception as exc:
        raise UnsupportedFormat(f"{bad} ({_short(exc)}).", hint=hint)
    with fh:
        listing: list[tuple[str, tuple, str]] = []

        def visit(name, obj):
            if len(listing) > _MAX_VARIABLES:
                raise _Bad(f"more than {_MAX_VARIABLES:,} datasets")
            if isinstance(obj, h5py.Dataset) and not name.startswith("#") and obj.dtype.kind in "iuf" \
                    and obj.attrs.get("MATLAB_class", b"double") not in (b"char", b"logical"):
                listing.append((name, tuple(obj.shape) or (1,), "double"))
        try:
            fh.visititems(visit)
            name, rpm, rate = _choose(src, listing, variable, settings)
            values = {n: fh[n][()] for n in [name, *rpm, *rate]}
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(f"{bad} ({_short(exc)}).", hint=hint)
    return _finish(src, values, name, rpm, rate, "mat-v7.3")


# --------------------------------------------------------------------------- CSV / Parquet
def _count_lines(p: Path) -> int:
    n = 0
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n + 1


def read_csv(p: Path, src: str, settings: Settings) -> _Raw:
    import pandas as pd

    with open(p, "rb") as fh:
        head = fh.read(65536)
    if b"\x00" in head:
        raise UnsupportedFormat(f"{src}: expected CSV text, got binary data.", hint="Export the signal as CSV text.")
    lines = [ln for ln in head.decode("utf-8-sig", errors="replace").splitlines() if ln.strip()][:3]
    if not lines:
        raise InvalidInput(f"{src}: expected CSV rows of samples, got no data.", hint="Drop the file.")
    sep = max(",;\t", key=lines[0].count) if any(c in lines[0] for c in ",;\t") else ","
    decimal = "," if sep == ";" and re.search(r"\d,\d", lines[-1]) else "."

    def is_num(s: str) -> bool:
        try:
            float(s.strip().replace(decimal, "."))
            return True
        except ValueError:
            return False

    first = lines[0].split(sep)
    header = None if all(is_num(c) for c in first) else 0
    est = _count_lines(p) * max(1, len(first) - 1)
    if est > settings.max_signal_samples:
        raise TooLarge(f"{src}: expected at most {settings.max_signal_samples:,} samples per recording, got about "
                       f"{est:,} (lines x value columns).", hint="Split the CSV or raise MODELFAB_MAX_SIGNAL_SAMPLES.")
    opts = dict(sep=sep, decimal=decimal, header=header, encoding="utf-8-sig", encoding_errors="replace")
    try:
        sample = pd.read_csv(p, nrows=200, **opts)
        cols = [c for c in sample.columns
                if pd.api.types.is_numeric_dtype(sample[c]) and not _TIME_COL.fullmatch(str(c).strip())]
        if not cols:
            raise InvalidInput(f"{src}: expected numeric columns (one per channel), got columns "
                               f"{listing(sample.columns)}.", hint="Export the samples as numbers.")
        _limits(src, 0, len(cols), settings)
        df = pd.read_csv(p, usecols=cols, dtype=np.float64, **opts)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"{src}: expected numeric CSV columns, got a parse error: {_short(exc)}.",
                           hint="Keep only numeric channel columns (and optionally a time column).")
    return _Raw(df.to_numpy(), None, {"format": "csv", "columns": [str(c) for c in cols]}, [str(c) for c in cols])


def read_parquet(p: Path, src: str, settings: Settings) -> _Raw:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
        schema, rows = pf.schema_arrow, pf.metadata.num_rows
    except Exception as exc:
        raise UnsupportedFormat(f"{src}: expected a Parquet file, got something unreadable ({_short(exc)}).",
                                hint="Export the signal again as Parquet or CSV.")
    cols = [f.name for f in schema if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
            and not _TIME_COL.fullmatch(f.name.strip())]
    if not cols:
        raise InvalidInput(f"{src}: expected numeric columns (one per channel), got {listing(schema.names)}.",
                           hint="Store the samples as numeric columns.")
    _limits(src, rows, len(cols), settings)
    try:
        table = pf.read(columns=cols)
        data = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in cols])
    except Exception as exc:
        raise InvalidInput(f"{src}: expected readable Parquet columns, got an error: {_short(exc)}.",
                           hint="Export the signal again.")
    return _Raw(data, None, {"format": "parquet", "columns": cols}, cols)
