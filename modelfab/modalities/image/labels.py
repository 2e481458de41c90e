"""An image labels file (``--labels FILE.csv``): reading it, matching its rows to the images, and what to say.

The file names each image and its class. Its header may name the columns in English or Chinese
(``file,label``, ``文件,标签``, ...); a two-column file whose header names neither is read by position,
and one whose first row already names an image has no header: both said in a note. Labels lose the
spaces around them (said, with examples). A row's path matches an image by its path relative to the
imported folder (``\\`` and ``./`` allowed), by its bare name when that is unique, or, written as an
absolute path (labelling tools export them), by the part of it inside the folder: resolved against the
folder when it lies inside it, else by its longest ending that is an image's relative path. Nothing
outside the folder is ever read: a row only ever names one of the listed images.

Classes whose names differ only in case, spaces or dashes ('good' / 'Good') are said at import and at
training, as for a table's categories.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ...errors import InvalidInput

FILE_HEADERS = ("file", "filename", "file_name", "path", "filepath", "file_path", "image", "image_path", "img",
                "文件", "文件名", "文件名称", "图片", "图片名", "图片名称", "图像", "路径", "文件路径", "图片路径")
LABEL_HEADERS = ("label", "class", "category", "class_name", "标签", "类别", "分类", "类型", "标注", "结果")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass
class LabelsFile:
    labels: dict[str, str]                                # path as written (``/`` separators) -> label
    notes: list[str] = field(default_factory=list)        # what reading it did (columns by position, spaces)


def _norm_header(cell: str) -> str:
    return re.sub(r"[\s\-]+", "_", (cell or "").strip().lower())


def _looks_like_image(cell: str) -> bool:
    return PurePosixPath((cell or "").strip().replace("\\", "/")).suffix.lower() in IMAGE_SUFFIXES


def read_image_labels(path) -> LabelsFile:
    """Read a labels CSV (encoding and delimiter sniffed as for a table); raise InvalidInput when it cannot be."""
    from ..signal.io import _labels_text, _short

    p = Path(path)
    try:
        text, delimiter = _labels_text(p)
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{p.name}: expected a readable CSV with columns file,label, got {_short(exc)}.",
                           hint="Save the label file as UTF-8 CSV.") from None
    if not rows:
        raise InvalidInput(f"{p.name}: expected a header row file,label and one row per image, got an empty file.",
                           hint="Write one row per image: its path in the folder, a comma, its class.")
    header = [_norm_header(c) for c in rows[0]]
    fi = next((i for i, c in enumerate(header) if c in FILE_HEADERS), None)
    li = next((i for i, c in enumerate(header) if c in LABEL_HEADERS and i != fi), None)
    notes: list[str] = []
    body, first_line = rows[1:], 2
    if fi is None or li is None:
        width = max(len(r) for r in rows[:50])
        if width != 2:
            raise InvalidInput(f"{p.name}: expected columns 'file' and 'label', got {rows[0]}.",
                               hint="Name the column of image paths 'file' and the column of classes 'label' in "
                                    "the first row (文件,标签 is understood too).")
        if fi is None and li is None and _looks_like_image(rows[0][0]):
            body, first_line = rows, 1
            notes.append(f"{p.name} has no header row (its first row names the image {rows[0][0].strip()!r}): read "
                         "as file,label by position, every row an image")
        else:
            notes.append(f"{p.name}: the header {rows[0]} names no known columns (file,label or 文件,标签): the first "
                         "column was read as the image path and the second as its label")
        fi, li = (1 - li, li) if li is not None else (fi if fi is not None else 0, 1 - (fi or 0))
    out: dict[str, str] = {}
    trimmed: list[str] = []
    for i, row in enumerate(body, start=first_line):
        f = (row[fi] if fi < len(row) else "").strip().replace("\\", "/")
        while f.startswith("./"):
            f = f[2:]
        raw = row[li] if li < len(row) else ""
        lab = raw.strip()
        if not f or not lab:
            continue
        if lab != raw:
            trimmed.append(raw)
        if out.get(f, lab) != lab:
            raise InvalidInput(f"{p.name}: line {i}: expected one label per file, got {out[f]!r} and {lab!r} for {f}.",
                               hint="Remove the duplicate row.")
        out[f] = lab
    if trimmed:
        shown = ", ".join(f"{t!r} -> {t.strip()!r}" for t, _ in Counter(trimmed).most_common(3))
        notes.append(f"{len(trimmed)} label(s) of {p.name} had spaces before or after them, which were removed ({shown}): "
                     "such labels name the same class as without the spaces")
    return LabelsFile(out, notes)


def _is_absolute(f: str) -> bool:
    return f.startswith("/") or bool(re.match(r"^[A-Za-z]:/", f))


def _inside(f: str, root: Path) -> str | None:
    """The path of absolute ``f`` relative to ``root`` when it lies inside it (posix), else None."""
    if not Path(f).is_absolute():  # C:/... on Linux: matched by its ending only
        return None
    for base, target in ((root.absolute(), Path(os.path.normpath(f))), (root.resolve(), Path(f).resolve())):
        try:
            rel = target.relative_to(base).as_posix()
        except ValueError:
            continue
        if rel and rel != "." and not rel.startswith(".."):
            return rel
    return None


@dataclass
class Matched:
    labels: dict[str, str | None]       # image -> its label (None: no row names it)
    unmatched: list[str]                 # rows (paths as written) that name no image
    notes: list[str]


def match_labels(root: Path, images: list[str], table: LabelsFile) -> Matched:
    """Give each image (posix path relative to ``root``) its label from the labels file (see the module's doc)."""
    image_set = set(images)
    by_name: dict[str, list[str]] = {}
    for f in images:
        by_name.setdefault(PurePosixPath(f).name, []).append(f)
    by_fold = {f.casefold(): f for f in images}
    out: dict[str, str | None] = {f: None for f in images}
    source: dict[str, str] = {}
    unmatched, absolute, case_only = [], 0, []
    for key, lab in table.labels.items():
        hit = None
        if _is_absolute(key):
            hit = _inside(key, Path(root))
            if hit not in image_set:  # made on another machine, or a zip: the longest ending that is an image
                parts = PurePosixPath(key).parts
                hit = next(("/".join(parts[i:]) for i in range(1, len(parts)) if "/".join(parts[i:]) in image_set), None)
            absolute += hit is not None
        else:
            norm = os.path.normpath(key).replace("\\", "/") if key not in image_set else key
            if norm in image_set:
                hit = norm
            elif "/" not in norm and norm in by_name:
                if len(by_name[norm]) > 1:
                    raise InvalidInput(f"labels CSV: expected unique file names, got {norm!r} in several folders.",
                                       hint="Use relative paths (e.g. good/a.png) in the file column.")
                hit = by_name[norm][0]
        if hit is None:
            unmatched.append(key)
            folded = by_fold.get(key.casefold()) or by_fold.get(os.path.normpath(key).replace("\\", "/").casefold())
            if folded is not None:
                case_only.append((key, folded))
            continue
        if out[hit] is not None and out[hit] != lab:
            raise InvalidInput(f"labels CSV: expected one label per image, got {out[hit]!r} (row {source[hit]!r}) and "
                               f"{lab!r} (row {key!r}) for {hit}.", hint="Remove one of the two rows.")
        out[hit], source[hit] = lab, key
    notes = []
    got = Counter(v for v in out.values() if v is not None)
    lost = Counter(lab for key, lab in table.labels.items() if key in set(unmatched) and lab not in got)
    if lost:
        shown = ", ".join(f"{lab!r} ({n} row(s))" for lab, n in lost.most_common(5))
        example = next(k for k in unmatched if table.labels[k] in lost)
        notes.append(f"WARNING: class(es) {shown} of the labels file got no image at all: none of their rows names a "
                     f"file in the folder (e.g. {example!r}), so the class is missing from this data set. Give paths "
                     "relative to the imported folder (good/a.png) and import again")
    if absolute:
        notes.append(f"{absolute} row(s) of the labels file give absolute paths: matched by their part inside the "
                     "imported folder")
    if case_only:
        shown = ", ".join(f"{k!r} (the folder has {f!r})" for k, f in case_only[:3])
        notes.append(f"{len(case_only)} row(s) of the labels file differ only in case from a file in the folder: "
                     f"{shown}. File names are case-sensitive here: write them as in the folder and import again")
    return Matched(out, sorted(unmatched), notes)


def class_spelling_notes(counts: dict[str, int], what: str = "Labels") -> list[str]:
    """A note when class names differ only in case, spaces, dashes or underscores ('good' / 'Good'): each is a
    class of its own, which is rarely what was meant (the note tables give for such category values)."""
    from ..tabular_values import spelling_key

    counts = {str(k): v for k, v in counts.items()}
    groups: dict[str, list[str]] = {}
    for lab in sorted(counts):
        groups.setdefault(spelling_key(lab), []).append(lab)
    twins = [g for g in groups.values() if len(g) > 1]
    if not twins:
        return []
    shown = "; ".join(" / ".join(f"{v!r} ({counts[v]})" for v in g[:4]) for g in twins[:3])
    more = f" and {len(twins) - 3} more" if len(twins) > 3 else ""
    return [f"{what} that differ only in case, spaces or dashes ({shown}{more}): each spelling is a class of its own. "
            "If they mean the same, rename the folders (or fix the labels file) to one spelling and import again"]
