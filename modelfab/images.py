"""Importing a folder (or .zip) of images as a dataset version.

Every image is checked and decoded once (see ``modalities/image/io.py`` for the refusals),
its classification features are computed once (the feature cache: training does not
recompute them), its defect mask and boxes are read. The dataset version stores the
original images and masks (blobs), a file table (size, label, mask, boxes as JSON) and the
feature table. Blobs first, metadata row last; identical content + options = no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import pandas as pd

from .errors import InvalidInput
from .registry import check_name

LABEL_SOURCES = ("folder", "none")


@dataclass(frozen=True)
class ImageOptions:
    """How images are labelled. Stored with the dataset and every model trained on it."""

    labels: str = "folder"  # folder | none | regex:PATTERN | path to a CSV (file,label)

    def to_dict(self) -> dict:
        if self.labels.startswith("regex:"):
            return {"labels": self.labels}
        return {"labels": self.labels if self.labels in LABEL_SOURCES else "csv"}


def _featurise(path: Path, rel: str, settings) -> dict:
    from .modalities.image.features import image_features
    from .modalities.image.io import read_image

    im = read_image(path, settings, rel)
    return image_features(im.gray, im.rgb)


def _examine(path: Path, rel: str, mask: Path | None, mask_rel: str | None, weak: bool, settings) -> dict:
    """Decode and check one image and its mask (runs in a worker process). Errors come back as text. ``weak``:
    the mask was paired by a weak sign (an ``_label`` name, a same-name PNG): a picture there is no mask."""
    from .modalities.image.io import examine_mask, read_image
    from .storage.blobs import sha256_file

    try:
        im = read_image(path, settings, rel)
        out = {"file": rel, "sha256": sha256_file(path), "width": im.size[0], "height": im.size[1],
               "channels": 3 if im.rgb is not None else 1, "format": im.format, "mode": im.mode,
               "bytes": path.stat().st_size, "mean_intensity": round(float(im.gray.mean()), 5),
               "turned": im.turned, "bits": im.bits, "pages": im.pages}
        if mask is not None:
            m = examine_mask(mask, settings, im.gray.shape, mask_rel, pictures_allowed=weak)
            if m is None:  # a picture of the same name, not a mask: it is imported as an image
                out["not_a_mask"] = mask_rel
                return out
            out.update(mask=mask_rel, mask_sha256=sha256_file(mask), defect_fraction=round(float(m.mean()), 6))
        return out
    except InvalidInput as exc:
        reason = exc.message[len(rel) + 2:] if exc.message.startswith(rel + ": ") else exc.message
        if mask_rel and exc.message.startswith(mask_rel + ": "):
            reason = "its mask " + exc.message
        return {"file": rel, "error": reason + (f" {exc.hint}" if exc.hint else "")}


def _labels(root: Path, images: list[str], source: str) -> tuple[dict[str, str | None], list[str], list[str]]:
    """Each image's label, the entries of a labels CSV that name no image, and what reading the labels says."""
    from .modalities.image.io import label_from_folder

    if source == "folder":
        return {f: label_from_folder(f) for f in images}, [], []
    if source == "none":
        return {f: None for f in images}, [], []
    if source.startswith("regex:"):  # from the file name, as for recordings: the first group (or the match)
        from .modalities.signal.io import check_label_regex, label_from

        check_label_regex(source)
        return {f: label_from(root / f, root, source) for f in images}, [], []
    csv_path = Path(source)
    if not csv_path.is_file():
        what = "is a folder" if csv_path.is_dir() else "does not exist"
        raise InvalidInput(f"--labels must be folder, none, regex:PATTERN or a CSV file (file,label); got {source!r}, "
                           f"which {what}.", hint="Check the path of the labels file.")
    from .modalities.image.labels import match_labels, read_image_labels

    table = read_image_labels(csv_path)
    found = match_labels(root, images, table)
    return found.labels, found.unmatched, table.notes + found.notes


def _run(fn, jobs: list[tuple], settings, progress, total: int, offset: int = 0) -> list:
    """``fn(*job, settings)`` for every job, in worker processes when there are many."""
    from joblib import Parallel, delayed

    workers = min(os.cpu_count() or 1, 4)
    results: list = []
    if workers == 1 or len(jobs) < 48:
        for i, job in enumerate(jobs):
            if progress:
                progress(offset + i, total, job[1])
            results.append(fn(*job, settings))
        return results
    chunk = 64
    with Parallel(n_jobs=workers) as par:
        for start in range(0, len(jobs), chunk):
            if progress:
                progress(offset + start, total, jobs[start][1])
            results += par(delayed(fn)(*job, settings) for job in jobs[start:start + chunk])
    return results


def import_images(ws, path: str | os.PathLike, name: str | None, opts: ImageOptions, *, skip_bad: bool = False,
                  progress: Callable[[int, int, str], None] | None = None):
    from .datasets import _default_name
    from .modalities.image.io import content_root, safe_extract_zip

    src = Path(path)
    if src.is_file():
        tmp = safe_extract_zip(src, ws.tmp_dir, ws.settings)
        try:
            return _import_folder(ws, content_root(tmp), name or _default_name(src), src.name, opts, skip_bad,
                                  progress)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not src.is_dir():
        raise InvalidInput(f"{src}: expected a folder of images or a .zip of them, got no such file or folder.")
    return _import_folder(ws, src, name or _default_name(src.resolve(), folder=True), src.name, opts, skip_bad,
                          progress)


def _import_folder(ws, root: Path, name: str, source_name: str, opts: ImageOptions, skip_bad: bool, progress):
    from .datasets import DatasetVersion, ImportResult, current_user
    from .modalities.image.annotations import Annotations
    from .modalities.image.features import FEATURES_VERSION, feature_names
    from .modalities.image.io import IMAGE_EXTENSIONS, list_files, pair_masks

    name = check_name(name, "dataset")
    require_image_extra()
    refused: list[dict] = []  # links out of the folder, with --skip-bad (an error without it)
    hidden: list[str] = []  # .name.png files: left out as hidden files are, and said
    files = list_files(root, refused if skip_bad else None, hidden)
    pairing = pair_masks(files)
    images, masks = pairing.images, pairing.masks
    if not images:
        raise InvalidInput(f"No images in {source_name}: expected files ending in {', '.join(sorted(IMAGE_EXTENSIONS))}.")
    labels, unmatched, label_notes = _labels(root, images, opts.labels)
    jobs = [(root / f, f, root / masks[f] if f in masks else None, masks.get(f), f in pairing.weak)
            for f in images]
    total = 2 * len(jobs)  # progress: checking every image, then featurising the new ones
    results = _run(_examine, jobs, ws.settings, progress, total)
    pictures = [r.pop("not_a_mask") for r in results if "not_a_mask" in r]
    if pictures:  # same-name PNGs that are pictures: images of their own (their label from their folder or the CSV)
        images = images + pictures
        labels, unmatched, label_notes = _labels(root, images, opts.labels)
        results += _run(_examine, [(root / f, f, None, None, False) for f in pictures], ws.settings, None, 0)
    empty = _empty_folders(root, images, pairing.mask_dirs) if opts.labels == "folder" else []
    skipped = refused + [{"file": r["file"], "reason": r["error"]} for r in results if "error" in r]
    good = [r for r in results if "error" not in r]
    if skipped and not skip_bad:
        shown = "; ".join(f"{s['file']}: {s['reason'].rstrip('.')}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise InvalidInput(f"{len(skipped)} of {len(images)} images cannot be used: {shown}{more}.",
                           hint="Fix or remove them, or pass --skip-bad to import the rest.")
    if not good:
        raise InvalidInput(f"None of the {len(images)} images in {source_name} could be read.")
    notes = Annotations(root, files)
    rescaled, bad_notes = 0, []
    for r in good:
        r["label"] = labels.get(r["file"])
        try:
            boxes, was_rescaled = notes.boxes_for(r["file"], r["width"], r["height"])
        except InvalidInput as exc:  # a refused annotation file: with --skip-bad the image comes without boxes
            if not skip_bad:
                raise InvalidInput(exc.message, hint="Fix or remove the annotation file, or pass --skip-bad to "
                                   "import its image without boxes.") from None
            bad_notes.append({"file": r["file"], "reason": exc.message})
            boxes, was_rescaled = [], False
        rescaled += bool(was_rescaled)
        r["boxes"] = json.dumps(boxes) if boxes else ""
        r["n_boxes"] = len(boxes)
    names = feature_names()
    content = _content_sha(good, opts.to_dict(), FEATURES_VERSION)
    turned = sorted(r["file"] for r in good if r.get("turned"))
    low_bits = sorted(r["file"] for r in good if r.get("bits") is not None and 8 < r["bits"] <= 12
                      and str(r.get("mode", "")).startswith("I;16"))
    multipage = sorted(r["file"] for r in good if (r.get("pages") or 1) > 1)
    from .modalities.image.io import mask_by_stem_only

    by_stem = {m for f, m in masks.items() if mask_by_stem_only(f, m)}
    same_name_pngs = [p for p in pictures if p in by_stem]  # said by the pngs_as_images note
    mask_notes = _mask_notes(pairing, int(sum(bool(r.get("mask")) for r in good)),
                             [p for p in pictures if p not in by_stem], multipage)
    if opts.labels == "folder":
        from .modalities.image.io import folder_label_notes

        mask_notes = folder_label_notes([r["file"] for r in good]) + mask_notes
    from .modalities.image.labels import class_spelling_notes

    mask_notes = label_notes + class_spelling_notes(Counter(str(r["label"]) for r in good if r["label"])) + mask_notes
    existing = ws.meta.find_dataset(name, content)
    if existing is not None:
        return ImportResult(DatasetVersion.from_row(existing), created=False, notes=_notes_of(existing))
    rows = _run(_featurise, [(root / r["file"], r["file"]) for r in good], ws.settings, progress, total, len(jobs))
    if progress:
        progress(total, total, "")
    feats = pd.DataFrame(rows, columns=names).astype(np.float64)
    table = pd.DataFrame(good)
    for col in ("mask", "mask_sha256", "defect_fraction"):
        if col not in table:
            table[col] = None
    feats.insert(0, "label", table["label"].to_numpy())
    feats.insert(0, "file", table["file"].to_numpy())
    refs = []
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        for r in good:
            refs.append((f"file:{r['file']}", ws.blobs.put_file(root / r["file"])))
            if r.get("mask"):
                refs.append((f"mask:{r['file']}", ws.blobs.put_file(root / r["mask"])))
        fpath, tpath = Path(tmp) / "features.parquet", Path(tmp) / "files.parquet"
        feats.to_parquet(fpath, index=False)
        table.to_parquet(tpath, index=False)
        refs.append(("files", ws.blobs.put_file(tpath)))
        data_sha = ws.blobs.put_file(fpath)
    sizes = Counter(zip(table["width"], table["height"]))
    schema = {"kind": "image", "feature_names": names, "features_version": FEATURES_VERSION,
              "colour": bool((table["channels"] == 3).any()),
              "columns": [{"name": "file", "kind": "id"}, {"name": "label", "kind": "categorical"}]
              + [{"name": n, "kind": "numeric"} for n in names]}
    stats = {"files": len(good), "labels": dict(Counter(str(v) for v in table["label"].dropna())),
             "unlabelled": int(table["label"].isna().sum()), "masks": int(table["mask"].notna().sum()),
             "boxes": int(table["n_boxes"].sum()), "images_with_boxes": int((table["n_boxes"] > 0).sum()),
             "box_formats": sorted(notes.formats), "boxes_rescaled_images": rescaled,
             "sizes": {"distinct": len(sizes), "min_width": int(table["width"].min()),
                       "max_width": int(table["width"].max()), "min_height": int(table["height"].min()),
                       "max_height": int(table["height"].max()),
                       "most_common": [f"{w}x{h}" for (w, h), _ in sizes.most_common(3)]},
             "colour_images": int((table["channels"] == 3).sum()), "skipped": skipped,
             "annotations_refused": bad_notes,
             "labels_unmatched": unmatched[:50], "labels_unmatched_count": len(unmatched),
             "pngs_as_images": same_name_pngs[:50], "empty_folders": empty[:50], "upright_images": len(turned),
             "hidden_images": len(hidden), "hidden_examples": sorted(hidden)[:5],
             "low_bit_16bit_images": len(low_bits), "low_bit_examples": low_bits[:5],
             "mask_folders": sorted(pairing.mask_dirs), "masks_unmatched": pairing.unmatched[:50],
             "masks_unmatched_count": len(pairing.unmatched), "multipage_tiffs": len(multipage),
             "multipage_examples": multipage[:5], "notes": mask_notes}
    row = ws.meta.add_dataset(
        name=name, kind="image", content_sha=content, data_sha=data_sha, source_name=source_name,
        n_rows=len(table), n_cols=len(names), schema=schema, stats=stats, options=opts.to_dict(),
        created_by=current_user(), refs=refs,
    )
    return ImportResult(DatasetVersion.from_row(row), created=True, notes=mask_notes)


def _mask_notes(pairing, n_masks: int, pictures: list[str], multipage: list[str]) -> list[str]:
    """What the import says about masks and multi-page TIFFs (``stats["notes"]``, and ``ImportResult.notes``)."""
    notes = []
    if pairing.mask_dirs:
        notes.append(f"{n_masks} mask(s) paired with their images; mask folder(s), never imported as images: "
                     f"{', '.join(sorted(pairing.mask_dirs)[:5])}")
    elif n_masks:
        notes.append(f"{n_masks} mask(s) paired with their images (a file named like X_mask.png beside X.*); masks are "
                     "never imported as images")
    if pairing.unmatched:
        n = len(pairing.unmatched)
        more = f" (and {n - 5} more)" if n > 5 else ""
        notes.append(f"{n} mask file(s) match no image (or are a second mask for one image) and were not used: "
                     f"{', '.join(pairing.unmatched[:5])}{more}. A mask X_mask.png (or X.png) under ground_truth/R/ "
                     "belongs to the image R/X.* or <split>/R/X.*; check the names")
    if pictures:
        notes.append(f"{len(pictures)} file(s) named or placed like a mask (X_label, X_gt, a mask folder) are "
                     f"pictures, not two-level masks, and were imported as images: {', '.join(pictures[:5])}")
    if multipage:
        notes.append(f"{len(multipage)} multi-page TIFF(s): the first page of each was used "
                     f"({', '.join(multipage[:3])}); save the pages as separate images to use them all")
    return notes


def _notes_of(row) -> list[str]:
    from .datasets import DatasetVersion

    return list((DatasetVersion.from_row(row).stats or {}).get("notes") or [])


def _content_sha(rows: list[dict], options: dict, features_version) -> str:
    """What makes two imports the same version: each image's content, label, mask and boxes, the options and the
    features version (and, since 2026-12, which images were turned upright)."""
    def none(v):
        return None if v is None or (isinstance(v, float) and v != v) else v

    version = {"files": [(r["file"], r["sha256"], none(r["label"]), none(r.get("mask_sha256")), none(r["boxes"]) or "")
                         for r in rows], "options": options, "features": features_version}
    turned = sorted(r["file"] for r in rows if none(r.get("turned")))
    if turned:  # read upright since 2026-12: a folder imported before (sideways) is another version now
        version["upright"] = turned
    return hashlib.sha256(json.dumps(version, sort_keys=True).encode()).hexdigest()


def relabel_images(ws, ds, labels: dict[str, str | None]):
    """A new version of image dataset ``ds`` with other labels (``labels``: file -> label, None for unlabelled;
    files not named keep theirs). Images, masks and boxes stay the same blobs: nothing is read or featurised
    again. The same labels as ``ds`` (or as an existing version): that version, ``created=False``."""
    from collections import Counter

    from .datasets import DatasetVersion, ImportResult, current_user, text_or_none

    feats, table = load_image_tables(ws, ds)
    for f, lab in labels.items():
        if lab is not None and not isinstance(lab, str):
            raise InvalidInput(f"A label is text; got {lab!r} for {f}.")
    unknown = sorted(set(labels) - set(table["file"]))
    if unknown:
        raise InvalidInput(f"{len(unknown)} of the labelled files are not in {ds.ref}: {', '.join(unknown[:3])}.")

    table = table.copy()
    before = [text_or_none(v) for v in table["label"]]
    after = [text_or_none(labels[f]) if f in labels else b for f, b in zip(table["file"], before)]
    if after == before:
        return ImportResult(ds, created=False)
    table["label"] = pd.Series(after, index=table.index, dtype="object")  # None stays None (not NaN)
    options = {"labels": "csv"}  # labels from a list (the labelling page's layer), as from a labels file
    content = _content_sha([dict(r, label=lab) for r, lab in zip(table.to_dict("records"), after)], options,
                           ds.schema.get("features_version"))
    existing = ws.meta.find_dataset(ds.name, content)
    if existing is not None:
        return ImportResult(DatasetVersion.from_row(existing), created=False)
    feats = feats.copy()
    by_file = dict(zip(table["file"], after))
    feats["label"] = pd.Series([by_file[f] for f in feats["file"]], index=feats.index, dtype="object")
    old = ws.meta.blob_refs(f"datasets:{ds.id}")
    refs = [(k, v) for k, v in old.items() if k.startswith(("file:", "mask:"))]
    with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
        fpath, tpath = Path(tmp) / "features.parquet", Path(tmp) / "files.parquet"
        feats.to_parquet(fpath, index=False)
        table.to_parquet(tpath, index=False)
        refs.append(("files", ws.blobs.put_file(tpath)))
        data_sha = ws.blobs.put_file(fpath)
    stats = dict(ds.stats or {})
    stats.update(labels=dict(Counter(v for v in after if v is not None)),
                 unlabelled=int(sum(v is None for v in after)), relabelled_from=ds.ref)
    row = ws.meta.add_dataset(
        name=ds.name, kind="image", content_sha=content, data_sha=data_sha, source_name=ds.source_name,
        n_rows=len(table), n_cols=ds.n_cols, schema=ds.schema, stats=stats, options=options,
        created_by=current_user(), refs=refs,
    )
    return ImportResult(DatasetVersion.from_row(row), created=True)


def _empty_folders(root: Path, images: list[str], mask_dirs: set[str] = frozenset()) -> list[str]:
    """Top-level folders (class folders) that hold no image (mask folders aside)."""
    from .modalities.image.io import MASK_FOLDER

    used = {PurePosixPath(f).parts[0] for f in images if len(PurePosixPath(f).parts) > 1}
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and d.name not in (MASK_FOLDER, "__MACOSX", "annotations", "Annotations", "labels")
                  and d.name not in mask_dirs and d.name not in used)


def require_image_extra() -> None:
    from importlib.util import find_spec

    if find_spec("skimage") is None or find_spec("PIL") is None:
        raise InvalidInput("Images need scikit-image and Pillow, which are not installed.",
                           hint="pip install 'modelfab[image]'")


def load_image_tables(ws, ds) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, file table) of an image dataset version."""
    if ds.kind != "image":
        raise InvalidInput(f"Dataset {ds.ref} holds {ds.kind} data, not images.")
    refs = ws.meta.blob_refs(f"datasets:{ds.id}")
    return pd.read_parquet(ws.blob_path(ds.data_sha)), pd.read_parquet(ws.blob_path(refs["files"]))


def image_blob(ws, ds, rel: str, kind: str = "file") -> Path | None:
    """Local path of an image (``kind="file"``) or its mask (``kind="mask"``) in a dataset version."""
    sha = ws.meta.blob_refs(f"datasets:{ds.id}").get(f"{kind}:{rel}")
    return None if sha is None else ws.blob_path(sha)


def boxes_of(files: pd.DataFrame) -> dict[str, list[dict]]:
    """{file: boxes} for the images that have box annotations."""
    return {r.file: json.loads(r.boxes) for r in files.itertuples() if r.boxes}
