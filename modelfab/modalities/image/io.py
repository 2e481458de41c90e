"""Reading images safely: type sniffing, Pillow limits, truncation, masks, folders and zips.

Every image is checked before it is decoded: the first bytes must be a
JPEG, PNG, BMP or TIFF signature that agrees with the file's extension, the
pixel count must be under ``Settings.max_image_pixels`` (Pillow's own
``MAX_IMAGE_PIXELS`` is set from it, and its bomb warning is an error), and a
file that ends early is refused (``LOAD_TRUNCATED_IMAGES`` stays off).

Masks (non-zero = defect, any size with the image's shape; resized to it) are
paired with their images by ``pairing.py``: ``X_mask``/``X_label``/``X_gt``
beside ``X``, mirror trees (``masks/``, ``ground_truth/`` as in MVTec AD, ...)
and a same-name PNG beside a non-PNG image.
"""

from __future__ import annotations

import io
import re
import os
import shutil
import tempfile
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ...errors import InvalidInput, TooLarge
from ...settings import human_bytes
from .pairing import MASK_DIRS, MASK_FOLDER, MASK_SUFFIX, mask_by_stem_only, pair_masks  # noqa: F401 (re-exported)

IMAGE_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
MAX_ZIP_ENTRIES = 200_000


@dataclass
class ImageData:
    """One decoded image: ``gray`` (H, W) float32 in [0, 1]; ``rgb`` (H, W, 3) when the image has colour."""

    source: str
    gray: np.ndarray
    rgb: np.ndarray | None
    format: str
    mode: str
    bits: int | None = None  # 16-bit images: the bits the brightest pixel needs (12 for a 12-bit camera frame)
    turned: bool = False  # the EXIF orientation was applied
    pages: int = 1  # a multi-page TIFF: how many pages it holds (the first one is read)

    @property
    def size(self) -> tuple[int, int]:  # (width, height) as Pillow says it
        return int(self.gray.shape[1]), int(self.gray.shape[0])


def sniff(head: bytes) -> str | None:
    """The image format the first bytes announce (JPEG, PNG, BMP, TIFF), or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _what(head: bytes) -> str:
    if head[:4] == b"PK\x03\x04":
        return "a zip archive"
    if head[:4] == b"GIF8":
        return "GIF data"
    if head[:4] == b"RIFF":
        return "RIFF (WEBP/WAV) data"
    if head[:5] in (b"<?xml", b"<svg ") or head[:4] == b"<svg":
        return "XML/SVG text"
    if not head:
        return "an empty file"
    if head[:4] == b"%PDF":
        return "a PDF document"
    text = None  # text (a CSV, a .ts file, JSON, a note): say so and show its start, not its bytes
    for cut in range(64, 60, -1):  # the 64 bytes may end inside a character
        try:
            text = head[:cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.splitlines()[0][:40] if text.strip() else ""
        return f"text starting {first!r}" if first else "text"
    return f"unknown data starting {head[:8].hex(' ')}"


def set_pillow_limits(settings) -> None:
    """Pillow's global limits, set explicitly (called before every decode)."""
    from PIL import Image, ImageFile, PngImagePlugin

    Image.MAX_IMAGE_PIXELS = int(settings.max_image_pixels)
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    PngImagePlugin.MAX_TEXT_CHUNK = 1 * 2**20
    PngImagePlugin.MAX_TEXT_MEMORY = 8 * 2**20


MIN_SIDE = 8  # pixels: below this an image holds no texture to learn from (a thumbnail, a tracking pixel)


def decode_image(data: bytes, source: str, settings, suffix: str | None = None, *, keep_colour: bool = True,
                 min_side: int = MIN_SIDE) -> ImageData:
    """Decode image bytes with every check; raise InvalidInput("SOURCE: reason") when refused."""
    from PIL import Image, UnidentifiedImageError

    fmt = sniff(data[:32])
    if fmt is None:
        raise InvalidInput(f"{source}: expected a JPEG, PNG, BMP or TIFF image, got {_what(data[:32])}.",
                           hint="Export the image as JPEG/PNG/BMP/TIFF.")
    if suffix is not None:
        claimed = IMAGE_EXTENSIONS.get(suffix.lower())
        if claimed is None:
            raise InvalidInput(f"{source}: expected a file ending in {', '.join(sorted(IMAGE_EXTENSIONS))}, got {suffix!r}.")
        if claimed != fmt:
            raise InvalidInput(f"{source}: named {suffix} but holds {fmt} data (the file lies about its type).",
                               hint=f"Rename it to the right extension or re-export it as {claimed}.")
    set_pillow_limits(settings)
    limit = int(settings.max_image_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                w, h = im.size
                if w < min_side or h < min_side:
                    raise InvalidInput(f"{source}: is {w}x{h} pixels; expected at least {min_side}x{min_side}.",
                                       hint="Use the full-size picture, not a thumbnail.")
                if w * h > limit:
                    raise TooLarge(f"{source}: {w}x{h} = {w * h:,} pixels is over the limit of {limit:,} "
                                   "(a decompression bomb or a very large image).",
                                   hint="Downscale the image, or raise MODELFAB_MAX_IMAGE_PIXELS if it is genuine.")
                pages = int(getattr(im, "n_frames", 1) or 1)
                im.load()
                upright = _upright(im)
                gray, rgb, mode, bits = _to_arrays(upright, keep_colour)
                turned = upright is not im
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own check, at open
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "its declared size"
        raise TooLarge(f"{source}: {size} is over the limit of {limit:,} (a decompression bomb or a very large image).",
                       hint="Downscale the image, or raise MODELFAB_MAX_IMAGE_PIXELS if it is genuine.") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{source}: starts like {fmt} but Pillow cannot read it (corrupt file).") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        text = str(exc)
        why = "truncated (the file ends early)" if "truncated" in text.lower() else f"corrupt ({text[:120]})"
        raise InvalidInput(f"{source}: {fmt} image is {why}.", hint="Re-copy or re-export the file.") from None
    return ImageData(source, gray, rgb, fmt, mode, bits, turned, pages)


def _upright(im):
    """The image as a viewer shows it: the EXIF orientation (cameras, phones) applied to the pixels."""
    from PIL import ImageOps

    try:
        turned = im.getexif().get(0x0112, 1) not in (0, 1)
    except Exception:  # an unreadable EXIF block: take the pixels as stored
        return im
    return ImageOps.exif_transpose(im) if turned else im


def used_bits(a: np.ndarray) -> int:
    """Bits a 16-bit image actually uses (its brightest pixel): 12 for a 12-bit camera frame in a 16-bit file."""
    peak = int(np.nanmax(a)) if a.size else 0
    return max(1, peak.bit_length())


def _to_arrays(im, keep_colour: bool) -> tuple[np.ndarray, np.ndarray | None, str, int | None]:
    """(gray, rgb or None, Pillow mode, bits used: for 16-bit and integer images only)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Scaled by the container (65535), never by the image's own range: a dark frame stays dark (an anomaly
        # to find), and frames of one camera keep their relative brightness. The import counts frames that
        # use 12 bits or fewer (``ImageData.bits``).
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(a / top, 0, 1).astype(np.float32), None, mode, used_bits(a)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        lo, hi = np.nanmin(a), np.nanmax(a)
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return np.nan_to_num(a).astype(np.float32), None, mode, None
    if mode in ("1", "L", "LA"):
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0, None, mode, None
    rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    colour = keep_colour and bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() > 2 / 255
                                  or np.abs(rgb[..., 0] - rgb[..., 2]).max() > 2 / 255)
    return gray.astype(np.float32), rgb if colour else None, mode, None


def read_image(path: Path, settings, source: str | None = None) -> ImageData:
    """Read and check an image file; its type must agree with the extension of ``source`` (or of the path)."""
    path = Path(path)
    source = source or path.name
    size = path.stat().st_size
    if size > settings.max_import_bytes:
        raise TooLarge(f"{source}: {human_bytes(size)} is over the import limit of {human_bytes(settings.max_import_bytes)}.")
    return decode_image(path.read_bytes(), source, settings, PurePosixPath(source).suffix or path.suffix)


def read_mask(path: Path, settings, shape: tuple[int, int], source: str) -> np.ndarray:
    """A defect mask as bool (H, W) at the image's ``shape``."""
    m = decode_image(Path(path).read_bytes(), source, settings, None, keep_colour=False, min_side=1).gray
    return resize_mask(m > 0, shape)


def examine_mask(path: Path, settings, shape: tuple[int, int], source: str, *,
                 pictures_allowed: bool = False) -> np.ndarray | None:
    """The mask as bool at ``shape``. A mask looks like one when nearly all its pixels are at its darkest or
    brightest level (colour is fine: a red defect on black). A mask of another aspect ratio than its image is
    refused: it was drawn on another picture. ``pictures_allowed``: a file that does not look like a mask
    gives None, whatever its size (a same-name picture, see mask_by_stem_only)."""
    im = decode_image(Path(path).read_bytes(), source, settings, None, keep_colour=True, min_side=1)
    g = im.gray
    if pictures_allowed and not looks_like_mask(g):
        return None
    h, w = g.shape
    if abs(w / h - shape[1] / shape[0]) > 0.02 * (shape[1] / shape[0]) + 1.0 / min(h, shape[0]):
        raise InvalidInput(f"{source}: the mask is {w}x{h} but its image is {shape[1]}x{shape[0]}; expected the same "
                           "size (or the same shape at another scale).",
                           hint="Export the mask at the image's size, or remove it.")
    return resize_mask(g > 0, shape)


def looks_like_mask(g: np.ndarray) -> bool:
    """Whether nearly all pixels are at the darkest or brightest level: the levels between, relative to the
    range, are none in a 0/1 mask and nearly all in a low-contrast picture (say grey levels 100..149)."""
    lo, hi = float(g.min()), float(g.max())
    tol = 0.1 * (hi - lo)
    return (float(((g > lo + tol) & (g < hi - tol)).mean()) if hi > lo else 0.0) < 0.02


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask at ``shape`` (H, W), nearest neighbour (unchanged when it already has that shape)."""
    from PIL import Image

    if mask.shape == tuple(shape):
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(im.resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 0


# ---------------------------------------------------------------- folders
def list_files(root: Path, refused: list | None = None, hidden: list | None = None) -> list[str]:
    """Every regular file under ``root`` (posix relative paths), skipping hidden entries and ``__MACOSX``.
    ``hidden``: given a list, the hidden image files left out (``.name.png``; not macOS's ``._name`` copies) are
    added to it, for the import to say so.

    A symbolic link is refused when it leads outside ``root``: an error, or, given a ``refused`` list, an entry
    ``{"file", "reason"}`` there and the listing goes on without it. Linked folders are not followed.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"{root}: expected a folder of images or a .zip, got no such folder.", hint="Check the path.")
    real = root.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in list(dirnames):
            if name.startswith(".") or name == "__MACOSX":
                dirnames.remove(name)
            elif (d / name).is_symlink():
                _check_link(d / name, root, real, refused)
                dirnames.remove(name)
        for name in filenames:
            f = d / name
            if name.startswith("."):
                if hidden is not None and not name.startswith("._") and f.suffix.lower() in IMAGE_EXTENSIONS:
                    hidden.append(f.relative_to(root).as_posix())
                continue
            if f.is_symlink() and not _check_link(f, root, real, refused):
                continue
            if f.is_file():
                out.append(f.relative_to(root).as_posix())
    return sorted(out)


def _check_link(link: Path, root: Path, real: Path, refused: list | None = None) -> bool:
    """True when ``link`` stays inside ``root``; else an error, or (given ``refused``) an entry there and False."""
    target = link.resolve()
    if target != real and real not in target.parents:
        exc = InvalidInput(f"{link.relative_to(root)}: expected files inside {root}, got a symbolic link to a "
                           "place outside it.", hint="Copy the file into the folder instead of linking it.")
        if refused is None:
            raise exc
        refused.append({"file": link.relative_to(root).as_posix(), "reason": exc.message})
        return False
    return True


def split_images_and_masks(files: list[str]) -> tuple[list[str], dict[str, str]]:
    """(image files, {image: mask file}) from a folder listing (``pairing.pair_masks`` has the details)."""
    found = pair_masks(files)
    return found.images, found.masks


def list_images(root: Path) -> list[str]:
    return split_images_and_masks(list_files(root))[0]


# Folders of a dataset layout, never a class: COCO/YOLO/VOC keep every image in images/ (or images/train/),
# JPEGImages/ or a split folder. An image directly in one of them is unlabelled.
LAYOUT_FOLDERS = frozenset({"images", "imgs", "img", "jpegimages", "train", "training", "val", "valid", "validation",
                            "test", "testing"})


def label_from_folder(rel: str) -> str | None:
    """``--labels folder``: the name of the folder that holds the image (None at the top level, or in a folder of a
    dataset layout such as ``images/`` or ``train/``: see :data:`LAYOUT_FOLDERS`)."""
    parts = PurePosixPath(rel).parts
    if len(parts) < 2 or parts[-2].casefold() in LAYOUT_FOLDERS:
        return None
    return parts[-2]


def folder_label_notes(images: list[str]) -> list[str]:
    """What ``--labels folder`` made of the folders that a person should know: images left unlabelled because
    their folder is a layout folder (``images/``), and class folders inside another class folder (a stray
    ``good/old_backup/`` became a class of its own)."""
    notes = []
    parents = [PurePosixPath(f).parent for f in images if len(PurePosixPath(f).parts) > 1]
    layout = Counter(p.name for p in parents if p.name.casefold() in LAYOUT_FOLDERS)
    if layout:
        shown = ", ".join(f"'{k}/' ({n})" for k, n in layout.most_common(4))
        notes.append(f"{sum(layout.values())} image(s) sit in folders of a dataset layout, not class folders ({shown}): "
                     "they are imported unlabelled (boxes and masks are kept). Give classes with --labels FILE.csv "
                     "(file,label), or label them in the browser")
    classes = Counter(str(p) for p in parents if p.name.casefold() not in LAYOUT_FOLDERS)  # folder -> images
    nested = []
    for folder, n in sorted(classes.items()):
        outer = next((str(a) for a in PurePosixPath(folder).parents if str(a) in classes), None)
        if outer is not None:
            nested.append((folder, n, outer))
    for folder, n, outer in nested[:5]:
        notes.append(f"'{folder}/' ({n} image(s)) is a folder inside the class folder '{outer}/': its images got the "
                     f"label '{PurePosixPath(folder).name}'. If that is not a class, move the folder out or delete it "
                     "and import again, or give labels with --labels FILE.csv")
    return notes


# ---------------------------------------------------------------- zips
def content_root(folder: Path) -> Path:
    """The folder a zip was made of: ``zip -r photos.zip photos`` puts everything under ``photos/``. When the
    unpacked folder holds nothing but one folder, and that folder holds folders (class folders, masks/), that
    one is the root: its class folders, top-level annotation files and empty folders are read as in a folder
    import. A single folder of images alone stays as it is (its name is their label, e.g. ``good/``)."""
    entries = [p for p in Path(folder).iterdir() if p.name != "__MACOSX" and not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        inner = entries[0]
        if any(p.is_dir() and not p.is_symlink() and not p.name.startswith(".") for p in inner.iterdir()):
            return inner
    return Path(folder)


ZIP_UTF8_FLAG = 0x800


def _mostly_common_chinese(texts: list[str]) -> bool:
    """Whether nearly all non-ASCII characters are in GB2312 (the common Chinese characters and punctuation): cp437
    bytes of a German name read as GBK also give Chinese characters ('Größe' gives 'Gr斸e'), but rare ones."""
    high = [c for t in texts for c in t if ord(c) > 127]

    def common(c: str) -> bool:
        try:
            c.encode("gb2312")
            return True
        except UnicodeEncodeError:
            return False

    return bool(high) and sum(map(common, high)) / len(high) > 0.8


def zip_member_names(infos: list[zipfile.ZipInfo]) -> list[str]:
    """Each member's name as its maker meant it. A name without the UTF-8 flag (bit 0x800) is read by zipfile as
    cp437; Info-ZIP on Linux stores UTF-8 bytes without the flag, and Windows stores the local code page (GBK on
    Chinese Windows). The raw bytes of every unflagged name with non-ASCII bytes are decoded as UTF-8 when all of
    them are valid UTF-8, else as GB18030 when all decode to mostly common Chinese characters, else the cp437
    reading stays. Decided for the whole archive: its names come from one machine."""
    raw = [None if i.flag_bits & ZIP_UTF8_FLAG else i.filename.encode("cp437") for i in infos]
    odd = [r for r in raw if r is not None and not r.isascii()]
    enc = None
    for cand in ("utf-8", "gb18030") if odd else ():
        try:
            texts = [r.decode(cand) for r in odd]
        except UnicodeDecodeError:
            continue
        if cand == "utf-8" or _mostly_common_chinese(texts):
            enc = cand
            break
    return [r.decode(enc) if enc and r is not None else i.filename for i, r in zip(infos, raw)]


def safe_extract_zip(src: Path, dest_parent: Path, settings) -> Path:
    """Unpack a zip of images into a new folder under ``dest_parent``; refuses zip slip, links and bombs."""
    src = Path(src)
    if not zipfile.is_zipfile(src):
        raise InvalidInput(f"{src.name}: expected a folder of images or a .zip of them, got a file that is not a zip.")
    out = Path(tempfile.mkdtemp(prefix="images-", dir=dest_parent))
    limit = int(settings.max_import_bytes)
    try:
        with zipfile.ZipFile(src) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise TooLarge(f"{src.name}: {len(infos):,} entries; at most {MAX_ZIP_ENTRIES:,} are accepted.")
            total = 0
            for info, name in zip(infos, zip_member_names(infos)):  # every check below is on the decoded name
                pp = PurePosixPath(name)
                if (pp.is_absolute() or ".." in pp.parts or "\\" in name or not pp.parts
                        or (pp.parts and ":" in pp.parts[0])):
                    raise InvalidInput(f"{src.name}: entry {name!r} points outside the archive (zip slip): refused.",
                                       hint="Re-create the zip from inside the image folder.")
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InvalidInput(f"{src.name}: entry {name!r} is a symbolic link: refused.")
                if info.is_dir():  # kept: an empty class folder is worth a note, as in a folder import
                    out.joinpath(*pp.parts).mkdir(parents=True, exist_ok=True)
                    continue
                total += info.file_size
                if total > limit:
                    raise TooLarge(f"{src.name} unpacks to more than {human_bytes(limit)} (the import limit): "
                                   "refused (zip bomb or too large).")
                target = out.joinpath(*pp.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(target, "wb") as fout:
                    copied = 0
                    for chunk in iter(lambda: fin.read(1 << 20), b""):
                        copied += len(chunk)
                        if copied > info.file_size:
                            raise TooLarge(f"{src.name}: entry {name!r} is larger than its header says: refused (zip bomb).")
                        fout.write(chunk)
        return out
    except zipfile.BadZipFile as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise InvalidInput(f"{src.name}: the zip is damaged ({exc}).") from None
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def looks_like_image_folder(path: Path, sample: int = 2000) -> bool:
    """For ``--kind auto``: a folder with at least one image file (checked on the first files found)."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        for name in filenames:
            n += 1
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                return True
            if n > sample:
                return False
    return False


def zip_holds_images(path: Path) -> bool:
    """For ``--kind auto``: a .zip whose entries include image files."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zip_member_names(zf.infolist()[:MAX_ZIP_ENTRIES])
            return any(PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS for n in names)
    except (zipfile.BadZipFile, OSError):
        return False
