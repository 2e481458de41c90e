"""Reading signal recordings (sound, vibration) safely, listing folders, labels.

Sizes and channel counts are checked from headers *before* any sample is
decoded (the WAV header and ``soundfile.info``, the .npy header, the .mat
variable headers (see ``formats``), Parquet metadata, a line count for CSV);
``.npy`` files are memory-mapped with ``allow_pickle=False``. Every problem a
user can cause is an :class:`~modelfab.errors.InvalidInput` (or its
subclasses ``UnsupportedFormat`` / ``TooLarge``) whose one-line message names
the file, says what was expected, what was found and what to do.

Conventions:

* Audio (.wav/.flac/.ogg) is decoded by libsndfile to float32; integer PCM
  is scaled to [-1, 1]. Other formats keep their values (physical units).
* 2-D arrays (.npy, .mat): the longer axis is time, the shorter one channels.
* Audio files are sniffed by their first bytes (RIFF/RF64/BW64 ... WAVE,
  fLaC, OggS; MP3 by ID3 or a frame sync) and refused when the bytes are not
  the container the extension says (e.g. MP3 data named .wav).
* Truncated files are refused with InvalidInput: a WAV whose data chunk is
  shorter than its header says (except the "size unknown" 0xFFFFFFFF of
  streaming writers: read to the end), compressed audio (FLAC/OGG) the decoder
  cannot finish, and .npy files shorter than their header says.
* ``sample_rate``: for files that store a rate (audio; .mat with an ``fs``-like
  variable) it is a resampling target; for the others it is the rate.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InvalidInput, TooLarge, UnsupportedFormat
from ...settings import Settings
from .containers import UNKNOWN_DATA_SIZE, check_container, check_wav_size, riff_header

SIGNAL_EXTENSIONS = {".wav", ".flac", ".ogg", ".mat", ".npy", ".csv", ".parquet"}
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg"}


class MissingSampleRate(InvalidInput):
    """A file format without a sample rate (.npy, CSV, Parquet, .mat without fs) read without --sample-rate."""


@dataclass
class Recording:
    samples: np.ndarray  # float32, 1-D, finite
    sample_rate: int
    source: str
    n_channels_in_file: int
    meta: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass
class _Raw:
    data: np.ndarray  # (frames, channels), any numeric dtype
    rate: int | None
    meta: dict
    names: list[str] | None = None


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:200].rstrip(". ")


def _limits(src: str, frames: int, channels: int, settings: Settings, what: str = "", held: int | None = None) -> None:
    """Channel count and size checks before decoding. ``held``: channels kept in memory when fewer than the file's
    (audio is decoded block by block keeping one), which is what the sample limit counts."""
    if channels <= 0:
        raise InvalidInput(f"{src}: expected at least 1 channel, got {channels}{what}.",
                           hint="The file is damaged or not a signal; re-export it.")
    if channels > settings.max_channels:
        raise TooLarge(f"{src}: expected at most {settings.max_channels} channels, got {channels}{what}.",
                       hint="Split the channels into separate files or raise MODELFAB_MAX_CHANNELS.")
    kept = channels if held is None else min(held, channels)
    if frames * kept > settings.max_signal_samples:
        raise TooLarge(f"{src}: expected at most {settings.max_signal_samples:,} samples per recording, got "
                       f"{frames:,} frames x {kept} channel{'s' if kept != 1 else ''}"
                       f"{f' (one kept of {channels})' if kept < channels else ''}{what}.",
                       hint="Cut the recording into shorter files or raise MODELFAB_MAX_SIGNAL_SAMPLES.")


def _check_rate(value, src: str, what: str = "sample_rate") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not math.isfinite(value) or value != int(value) or not 1 <= value <= 10_000_000:
        raise InvalidInput(f"{src}: expected {what} as a whole number of Hz between 1 and 10,000,000, got {value!r}.",
                           hint="Pass e.g. --sample-rate 16000.")
    return int(value)


# --------------------------------------------------------------------------- readers
def _read_audio(p: Path, src: str, variable, settings: Settings, channel=None) -> _Raw:
    import soundfile as sf

    meta: dict = {}
    check_container(p, src)
    if p.suffix.lower() == ".wav":
        hdr = riff_header(p)
        if hdr and "channels" in hdr:
            _limits(src, 0, hdr["channels"], settings, " in its WAV header")
        if hdr:
            check_wav_size(hdr, src)
            if hdr.get("data_declared") == UNKNOWN_DATA_SIZE:
                meta["data_size_unknown"] = True  # a streamed WAV: read to the end of the file
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile: not audio, damaged header, ...
        raise UnsupportedFormat(f"{src}: expected a readable {p.suffix.lower()} audio file, but libsndfile says: "
                                f"{_short(exc)}.", hint="Check that the file is really audio; re-export it as WAV.")
    _limits(src, int(info.frames), int(info.channels), settings, held=1)
    try:
        if info.channels == 1:
            data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        else:  # decode block by block, keeping only the channel asked for: a long stereo file is not held twice
            picked = _channel_index(channel, int(info.channels), src)
            data, rate = _read_audio_channel(sf, p, info, picked)
            meta.update(picked=picked, channels_in_file=int(info.channels))
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"{src}: expected {info.frames:,} decodable frames, but decoding failed: {_short(exc)}.",
                           hint="The file is damaged or truncated; re-export or drop it.")
    if meta.get("truncated") is None and len(data) < info.frames:
        meta["truncated"] = True
    meta.update(format=str(info.format).lower(), subtype=str(info.subtype))
    return _Raw(data, int(rate), meta)


def _channel_index(channel, n: int, src: str, names: list[str] | None = None) -> int | str:
    """The channel asked for (None: 0; an index, its digits, a name of ``names``, or 'mean') as an index or
    'mean', checked against the ``n`` channels (for audio: before anything is decoded)."""
    if channel is None:
        channel = 0
    if isinstance(channel, str) and channel.strip().lower() == "mean":
        return "mean"
    if isinstance(channel, str) and names and channel in names:
        channel = names.index(channel)
    elif isinstance(channel, str) and re.fullmatch(r"\s*\d+\s*", channel):
        channel = int(channel)
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < n:
        shown = f" ({listing(names)})" if names else ""
        raise InvalidInput(f"{src}: expected channel 0..{n - 1}{shown} or 'mean', got {channel!r}.",
                           hint="Pick an existing channel with --channel.")
    return int(channel)


AUDIO_BLOCK_FRAMES = 1 << 20


def _read_audio_channel(sf, p: Path, info, channel: int | str) -> tuple[np.ndarray, int]:
    out = np.empty((int(info.frames), 1), dtype=np.float32)
    done = 0
    for block in sf.blocks(str(p), blocksize=AUDIO_BLOCK_FRAMES, dtype="float32", always_2d=True):
        part = block.mean(axis=1, dtype=np.float64) if channel == "mean" else block[:, channel]
        n = min(len(part), len(out) - done)
        out[done:done + n, 0] = part[:n]
        done += n
        if done >= len(out):
            break
    return out[:done], int(info.samplerate)


def _read_npy(p: Path, src: str, variable, settings: Settings) -> _Raw:
    fmt = np.lib.format
    with open(p, "rb") as fh:
        try:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as exc:  # ValueError, SyntaxError, tokenize errors from a damaged header
            raise UnsupportedFormat(f"{src}: expected a NumPy .npy file, but its header is not valid ({_short(exc)}).",
                                    hint="Save the array with numpy.save().")
        offset = fh.tell()
    if dtype.hasobject:
        raise UnsupportedFormat(f"{src}: expected a numeric array, got Python objects (loading them needs pickle, "
                                f"which is refused for safety).", hint="Save a float or integer array with numpy.save().")
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise UnsupportedFormat(f"{src}: expected a real numeric array (int/float), got dtype {dtype}.",
                                hint="Convert it to float32 before saving.")
    if len(shape) not in (1, 2):
        raise InvalidInput(f"{src}: expected a 1-D (samples) or 2-D (samples x channels) array, got shape {shape}.",
                           hint="Reshape or split the array before saving.")
    frames, channels = (shape[0], 1) if len(shape) == 1 else (max(shape), min(shape))
    if frames * channels == 0:
        raise InvalidInput(f"{src}: expected samples, got an empty array of shape {shape}.", hint="Drop the file.")
    _limits(src, frames, channels, settings)
    need = frames * channels * dtype.itemsize
    have = p.stat().st_size - offset
    if have < need:
        raise InvalidInput(f"{src}: header declares shape {shape} ({need:,} bytes) but the file holds only "
                           f"{have:,} bytes of data.", hint="The file is truncated; save it again.")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"{src}: expected a readable .npy array, got an error: {_short(exc)}.",
                           hint="Save the array again with numpy.save().")
    data = arr.reshape(-1, 1) if arr.ndim == 1 else (arr if arr.shape[0] >= arr.shape[1] else arr.T)
    return _Raw(data, None, {"format": "npy", "dtype": str(dtype)})


def _read_mat(p: Path, src: str, variable, settings: Settings) -> _Raw:
    from .formats import read_mat

    return read_mat(p, src, variable, settings)


def _read_csv(p: Path, src: str, variable, settings: Settings) -> _Raw:
    from .formats import read_csv

    return read_csv(p, src, settings)


def _read_parquet(p: Path, src: str, variable, settings: Settings) -> _Raw:
    from .formats import read_parquet

    return read_parquet(p, src, settings)


_READERS = {".wav": _read_audio, ".flac": _read_audio, ".ogg": _read_audio, ".npy": _read_npy,
            ".mat": _read_mat, ".csv": _read_csv, ".parquet": _read_parquet}


# --------------------------------------------------------------------------- public
def _pick_channel(raw: _Raw, channel, src: str) -> tuple[np.ndarray, object]:
    picked = _channel_index(channel, raw.data.shape[1], src, raw.names)
    if picked == "mean":
        return raw.data.mean(axis=1, dtype=np.float64), "mean"
    return raw.data[:, picked], picked


def _resample(x: np.ndarray, rate: int, target: int, src: str, settings: Settings) -> np.ndarray:
    from fractions import Fraction

    from scipy.signal import resample_poly

    frac = Fraction(target, rate)
    if not Fraction(1, 1024) <= frac <= 1024:
        raise InvalidInput(f"{src}: expected a resampling ratio within 1/1024..1024, got {rate} Hz -> {target} Hz.",
                           hint="Pick a target rate closer to the recording's rate.")
    if max(frac.numerator, frac.denominator) > 1000:  # awkward ratio: approximate (error < 1e-5 relative)
        frac = frac.limit_denominator(1000)
    if len(x) * frac > settings.max_signal_samples:
        raise TooLarge(f"{src}: resampling {rate} Hz -> {target} Hz would give {int(len(x) * frac):,} samples, "
                       f"more than the limit {settings.max_signal_samples:,}.", hint="Pick a lower target rate.")
    return resample_poly(x, frac.numerator, frac.denominator).astype(np.float32)


def _one_line(text: str, limit: int = 400) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def listing(names, limit: int = 12) -> str:
    names = [str(n) for n in names]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


def read_recording(path, *, channel: int | str | None = None, sample_rate: int | None = None,
                   variable: str | None = None, settings: Settings | None = None,
                   source: str | None = None) -> Recording:
    """Read one recording as mono float32. See the module docstring for conventions.

    Every error is an InvalidInput (or subclass) with a one-line, printable message, even when the
    file name or the names inside the file contain control characters.
    """
    try:
        return _read_recording(path, channel, sample_rate, variable, settings, source)
    except InvalidInput as exc:
        exc.message = _one_line(exc.message)
        exc.args = (exc.message,)
        raise


def _read_recording(path, channel, sample_rate, variable, settings, source) -> Recording:
    settings = settings or Settings()
    p = Path(path)
    src = source if source is not None else str(path)
    ext = p.suffix.lower()
    if ext not in _READERS:
        raise UnsupportedFormat(f"{src}: expected one of {', '.join(sorted(SIGNAL_EXTENSIONS))}, got "
                                f"'{ext or 'no extension'}'.", hint="Convert the recording to WAV, FLAC, .npy or CSV.")
    target = _check_rate(sample_rate, src)
    if not p.is_file():
        raise InvalidInput(f"{src}: expected an existing regular file, got nothing there.", hint="Check the path.")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(f"{src}: expected a recording, got an empty file (0 bytes).", hint="Drop or re-export it.")
    if size > settings.max_import_bytes:
        raise TooLarge(f"{src}: expected at most {settings.max_import_bytes:,} bytes, got {size:,}.",
                       hint="Split the recording or raise MODELFAB_MAX_IMPORT_BYTES.")
    if ext in AUDIO_EXTENSIONS:
        raw = _read_audio(p, src, variable, settings, channel)
    else:
        raw = _READERS[ext](p, src, variable, settings)
    frames, n_ch = raw.data.shape
    if frames == 0:
        raise InvalidInput(f"{src}: expected samples, got 0 frames.", hint="Drop the file or re-export it.")
    if "picked" in raw.meta:  # the audio reader kept only the channel asked for
        chosen = raw.meta.pop("picked")
        n_ch = raw.meta.pop("channels_in_file")
        x = raw.data[:, 0]
    else:
        x, chosen = _pick_channel(raw, channel, src)
    with np.errstate(over="ignore", invalid="ignore"):  # too large for float32 -> inf -> counted below
        x = np.asarray(x, dtype=np.float32)
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise InvalidInput(f"{src}: expected finite samples, got {bad:,} non-finite (NaN/inf/empty) samples in "
                           f"channel {chosen}.", hint="Clean or drop the file.")
    meta = {**raw.meta, "channel": chosen}
    rate = raw.rate
    if rate is None:
        if target is None:
            raise MissingSampleRate(f"{src}: expected a sample rate, but {meta.get('format', ext)} files do not store "
                                    f"one.", hint="Pass --sample-rate (e.g. 12000 for CWRU 12k files).")
        rate = target
    elif target is not None and target != rate:
        x = _resample(x, rate, target, src, settings)
        meta["resampled_from"] = rate
        rate = target
    return Recording(np.ascontiguousarray(x, dtype=np.float32), int(rate), src, int(n_ch), meta)


def list_recordings(root) -> list[Path]:
    """Recordings under ``root`` (recursive), sorted by relative path.

    Hidden files/folders and ``__MACOSX`` are skipped. A symbolic link (file
    or folder) that resolves outside ``root`` raises InvalidInput; linked
    folders inside ``root`` are not followed (their files are listed anyway).
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"{root}: expected a folder of recordings, got no such folder.", hint="Check the path.")
    real_root = root.resolve()
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in list(dirnames):
            sub = d / name
            if name.startswith(".") or name == "__MACOSX":
                dirnames.remove(name)
            elif sub.is_symlink():
                _check_link(sub, root, real_root)
                dirnames.remove(name)
        for name in filenames:
            f = d / name
            if name.startswith(".") or f.suffix.lower() not in SIGNAL_EXTENSIONS:
                continue
            if f.is_symlink():
                _check_link(f, root, real_root)
            if f.is_file():
                found.append((f.relative_to(root).as_posix(), f))
    return [f for _, f in sorted(found)]


def _check_link(link: Path, root: Path, real_root: Path) -> None:
    target = link.resolve()
    if target != real_root and real_root not in target.parents:
        raise InvalidInput(f"{link.relative_to(root)}: expected files inside {root}, got a symbolic link to {target} "
                           f"outside it.", hint="Copy the file into the folder instead of linking it.")


def _rel(path: Path, root: Path) -> Path:
    try:
        return Path(path).relative_to(root)
    except ValueError:
        return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve()))


def check_label_regex(source: str) -> None:
    """``--labels regex:PATTERN`` (recordings and images): the pattern must compile."""
    try:
        re.compile(source[6:])
    except re.error as exc:
        raise InvalidInput(f"--labels regex {source[6:]!r} is not a valid regular expression ({exc}).",
                           hint="Example: --labels 'regex:^(good|scratch|spot)_' (the first group is the label).") from None


def label_from(path: Path, root: Path, source: str) -> str | None:
    """Label of one file: "folder", "none" or "regex:PATTERN" (see module docs)."""
    if source == "none":
        return None
    if source == "folder":
        parts = _rel(Path(path), Path(root)).parts
        return parts[0] if len(parts) > 1 and parts[0] not in ("", ".", "..") else None
    if isinstance(source, str) and source.startswith("regex:"):
        try:
            m = re.search(source[6:], Path(path).name)
        except re.error as exc:
            raise InvalidInput(f"expected a valid regular expression after 'regex:', got {source[6:]!r} ({exc}).",
                               hint="Example: regex:(B0\\d\\d|IR0\\d\\d|normal)")
        if m is None:
            return None
        groups = [g for g in m.groups() if g is not None]
        return groups[0] if groups else m.group(0)
    raise InvalidInput(f"expected a label source 'folder', 'none' or 'regex:PATTERN', got {source!r}.",
                       hint="Pass e.g. --labels folder (a file,label CSV is read with read_labels_csv).")


MAX_LABELS_BYTES = 256 * 2**20


def _labels_text(p: Path) -> tuple[str, str]:
    """(text, delimiter) of a labels file: its encoding and delimiter sniffed as a table import does
    (UTF-8 with or without BOM, UTF-16, GBK/GB18030; comma, semicolon, tab, |)."""
    from ..tabular_io import sniff_delimiter, sniff_encoding

    if p.stat().st_size > MAX_LABELS_BYTES:
        raise TooLarge(f"{p.name}: the labels file is over {MAX_LABELS_BYTES // 2**20} MB; expected a file,label CSV.")
    data = p.read_bytes()
    encoding = sniff_encoding(data[:2 * 2**20], p.name)
    try:
        text = data.decode(encoding).lstrip("\ufeff")
    except (UnicodeDecodeError, LookupError) as exc:
        raise InvalidInput(f"{p.name}: expected a labels CSV in one text encoding; read as {encoding} it fails "
                           f"({_short(exc)}).", hint="Save the label file as UTF-8 CSV.") from None
    return text, sniff_delimiter(text, p.suffix.lower())


def read_labels_csv(path) -> dict[str, str]:
    """``file,label`` CSV -> {file (posix relative path or bare name): label}. Empty labels are skipped. The
    encoding and the delimiter are sniffed as for a table (``tabular_io.sniff_encoding``/``sniff_delimiter``)."""
    import io

    p = Path(path)
    try:
        text, delimiter = _labels_text(p)
        with io.StringIO(text, newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
            if "file" not in fields or "label" not in fields:
                raise InvalidInput(f"{p.name}: expected columns 'file' and 'label', got {reader.fieldnames}.",
                                   hint="Add a header row: file,label")
            out: dict[str, str] = {}
            for i, row in enumerate(reader, start=2):
                f = (row.get(fields["file"]) or "").strip().replace("\\", "/").removeprefix("./")
                lab = (row.get(fields["label"]) or "").strip()
                if not f or not lab:
                    continue
                if out.get(f, lab) != lab:
                    raise InvalidInput(f"{p.name}: line {i}: expected one label per file, got {out[f]!r} and "
                                       f"{lab!r} for {f}.", hint="Remove the duplicate row.")
                out[f] = lab
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{p.name}: expected a readable CSV with columns file,label, got {_short(exc)}.",
                           hint="Save the label file as UTF-8 CSV.")
    return out


def unmatched_labels(files: list[Path], root: Path, labels: dict[str, str]) -> list[str]:
    """The entries of a labels CSV that name no file (neither by relative path nor by bare name)."""
    known = {_rel(Path(f), Path(root)).as_posix() for f in files} | {Path(f).name for f in files}
    return sorted(k for k in labels if k not in known)


def labels_for_files(files: list[Path], root: Path, labels: dict[str, str]) -> dict[Path, str | None]:
    """Match CSV labels to files by relative path first, then by bare name (must be unambiguous)."""
    by_name: dict[str, list[Path]] = {}
    for f in files:
        by_name.setdefault(Path(f).name, []).append(f)
    out: dict[Path, str | None] = {}
    for f in files:
        rel = _rel(Path(f), Path(root)).as_posix()
        if rel in labels:
            out[f] = labels[rel]
        elif Path(f).name in labels:
            if len(by_name[Path(f).name]) > 1:
                raise InvalidInput(f"labels CSV: expected unique file names, got {Path(f).name!r} in several folders.",
                                   hint="Use relative paths (e.g. normal/a.wav) in the file column.")
            out[f] = labels[Path(f).name]
        else:
            out[f] = None
    return out
