"""Which files of an image folder are defect masks, and the image each belongs to.

For an image ``DIR/X.ext`` (any image format, and so for masks):

1. beside it: ``DIR/X_mask.*``, then ``DIR/X_label.*`` and ``DIR/X_gt.*`` (Kolektor: ``kos01/Part0_label.bmp``
   beside ``kos01/Part0.jpg``);
2. a mask tree: a folder named ``masks`` or ``ground_truth`` (always), or ``gt``, ``mask``, ``label``, ``labels``
   (only when at least half of its image files pair with an image: a class folder of that name stays a class),
   at any level, mirroring the image folders. ``P/ground_truth/R/X[_mask].*`` is the mask of ``P/R/X.*`` or,
   one level down, of ``P/S/R/X.*`` (MVTec AD: ``ground_truth/scratch/000_mask.png`` belongs to
   ``test/scratch/000.png``; when several split folders hold that image, the one named ``test``);
3. ``DIR/X.png`` when the image itself is not a PNG (the magnetic-tile layout).

Files in a mask tree are never imported as images; those that pair with no image are listed (``unmatched``).
A "weak" pairing (``_label``/``_gt`` suffixes, the weakly named folders, a same-name PNG) holds only when the
file looks like a mask (two levels, see ``io.examine_mask``): otherwise it is a picture, imported as an image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_SUFFIX = "_mask"
WEAK_SUFFIXES = ("_label", "_gt")
MASK_FOLDER = "masks"
STRONG_MASK_DIRS = (MASK_FOLDER, "ground_truth")
WEAK_MASK_DIRS = ("gt", "mask", "label", "labels")
MASK_DIRS = STRONG_MASK_DIRS + WEAK_MASK_DIRS
SPLIT_PREFERRED = "test"


@dataclass
class Pairing:
    images: list[str]                                   # files imported as images
    masks: dict[str, str]                               # image -> its mask file
    weak: set[str] = field(default_factory=set)         # images whose mask holds only if it looks like one
    unmatched: list[str] = field(default_factory=list)  # mask-tree files (or second masks) paired with no image
    mask_dirs: set[str] = field(default_factory=set)    # the mask trees found (posix paths)


def _is_image(rel: str) -> bool:
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


def _tree_of(p: PurePosixPath) -> int | None:
    """Index of the (innermost) mask-tree folder in ``p``'s folders, or None."""
    found = None
    for i, part in enumerate(p.parts[:-1]):
        if part.lower() in MASK_DIRS:
            found = i
    return found


def _strip_suffix(stem: str) -> tuple[str, str | None]:
    low = stem.lower()
    for s in (MASK_SUFFIX,) + WEAK_SUFFIXES:
        if low.endswith(s) and len(stem) > len(s):
            return stem[: -len(s)], s
    return stem, None


def pair_masks(files: list[str]) -> Pairing:
    """Split a folder listing (posix relative paths) into images and their masks (see the module's doc)."""
    cands = [f for f in files if _is_image(f)]
    in_tree: dict[str, int] = {}
    for f in cands:
        i = _tree_of(PurePosixPath(f))
        if i is not None:
            in_tree[f] = i
    plain = [f for f in cands if f not in in_tree]
    by_dir_stem: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for f in plain:
        p = PurePosixPath(f)
        by_dir_stem.setdefault((p.parts[:-1], p.stem), []).append(f)

    # 1. beside: X_mask.* / X_label.* / X_gt.* next to an image X.*
    beside: dict[str, tuple[str, str]] = {}  # mask file -> (image, suffix)
    for f in plain:
        p = PurePosixPath(f)
        base, suffix = _strip_suffix(p.stem)
        if suffix is None:
            continue
        owners = [g for g in by_dir_stem.get((p.parts[:-1], base), []) if g != f]
        if owners:
            beside[f] = (sorted(owners, key=lambda g: IMAGE_SUFFIXES.index(PurePosixPath(g).suffix.lower()))[0], suffix)
    images_plain = [f for f in plain if f not in beside]

    # 2. mask trees: index the images by (folders before, folders after, stem), with and without a split level
    direct: dict[tuple[tuple[str, ...], str], list[str]] = {}
    split: dict[tuple[tuple[str, ...], tuple[str, ...], str], list[tuple[str, str]]] = {}
    for f in images_plain:
        p = PurePosixPath(f)
        d = p.parts[:-1]
        direct.setdefault((d, p.stem), []).append(f)
        for i in range(len(d)):
            split.setdefault((d[:i], d[i + 1:], p.stem), []).append((f, d[i]))
    tree_match: dict[str, str | None] = {}
    trees: dict[tuple[str, ...], list[str]] = {}
    for f, i in in_tree.items():
        p = PurePosixPath(f)
        pre, name, rest = p.parts[:i], p.parts[i], p.parts[i + 1:-1]
        trees.setdefault(p.parts[: i + 1], []).append(f)
        base = _strip_suffix(p.stem)[0]
        hits = direct.get((pre + rest, base)) or direct.get((pre + rest, p.stem))
        if not hits and (rest or name.lower() in STRONG_MASK_DIRS):  # a split level: test/<R>/X
            found = split.get((pre, rest, base)) or split.get((pre, rest, p.stem)) or []
            found = [(g, s) for g, s in found if s.lower() not in MASK_DIRS]
            preferred = [g for g, s in found if s.lower() == SPLIT_PREFERRED]
            hits = preferred if len({s for _, s in found}) > 1 else [g for g, _ in found]
        tree_match[f] = sorted(hits, key=lambda g: IMAGE_SUFFIXES.index(PurePosixPath(g).suffix.lower()))[0] \
            if hits else None
    confirmed: set[tuple[str, ...]] = set()
    for key, members in trees.items():
        if key[-1].lower() in STRONG_MASK_DIRS or 2 * sum(tree_match[m] is not None for m in members) >= len(members):
            confirmed.add(key)
    tree_files = {f for f in in_tree if PurePosixPath(f).parts[: in_tree[f] + 1] in confirmed}
    # a folder that is not a mask tree holds images (a class named 'mask'); the innermost tree decides
    images = sorted(images_plain + [f for f in in_tree if f not in tree_files])

    # 3. same-name PNG beside a non-PNG image (weak)
    image_set = set(images)
    same_name = {}
    for f in images:
        p = PurePosixPath(f)
        if p.suffix.lower() != ".png":
            png = str(p.with_suffix(".png"))
            if png in image_set:
                same_name[png] = f

    masks: dict[str, str] = {}
    weak: set[str] = set()
    unmatched: list[str] = []

    def give(image: str, mask: str, is_weak: bool) -> None:
        if image in masks:  # a second mask for one image: not used, and said
            unmatched.append(mask)
            return
        masks[image] = mask
        if is_weak:
            weak.add(image)

    for m, (img, suffix) in sorted(beside.items(), key=lambda kv: (kv[1][1] != MASK_SUFFIX, kv[0])):
        give(img, m, suffix != MASK_SUFFIX)
    for m in sorted(tree_files):
        img = tree_match[m]
        if img is None or img not in image_set:
            unmatched.append(m)
        else:
            key = PurePosixPath(m).parts[: in_tree[m] + 1]
            give(img, m, key[-1].lower() not in STRONG_MASK_DIRS)
    for png, img in sorted(same_name.items()):
        if img not in masks and png not in masks:
            give(img, png, True)
    images = [f for f in images if not (f in same_name and masks.get(same_name[f]) == f)]
    return Pairing(images, masks, weak, sorted(unmatched), {"/".join(k) for k in confirmed})


def mask_by_stem_only(image: str, mask: str) -> bool:
    """Whether ``mask`` was paired with ``image`` only because it has the same name ending in .png (it may be
    another image: a PNG copy beside a TIFF), not by the _mask suffix or the masks/ folder."""
    return PurePosixPath(image).suffix.lower() != ".png" and mask == str(PurePosixPath(image).with_suffix(".png"))
