"""Which files of a folder (or an unpacked zip) prediction scores, which it leaves out, and what to say per image.

Masks are not used to predict, so nothing is left out on a weak sign: a same-name PNG beside a TIFF or JPEG
(a preview of the same part), an ``X_label.png`` or a file in a weakly named folder is scored unless it looks
like a black-and-white mask (the test the import makes). Files that are masks by a strong sign (``X_mask.*``
beside ``X``, a ``masks/`` or ``ground_truth/`` tree), masks that look like one, and hidden image files are left
out and listed, so that a count of rows never silently falls short of the images given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InvalidInput


@dataclass
class Listing:
    images: list[str]                                                   # to score (posix, relative to the root)
    left_out: list[tuple[str, str]] = field(default_factory=list)       # (file, why)


def _is_mask(path: Path, rel: str, settings) -> bool:
    from .io import decode_image, looks_like_mask

    try:
        g = decode_image(path.read_bytes(), rel, settings, None, keep_colour=True, min_side=1).gray
    except (InvalidInput, OSError):  # scored, and its error row says why it cannot be read
        return False
    return looks_like_mask(g)


def images_to_score(root: Path, settings) -> Listing:
    from .io import list_files
    from .pairing import pair_masks

    hidden: list[str] = []
    pairing = pair_masks(list_files(root, None, hidden))
    images = list(pairing.images)
    left: list[tuple[str, str]] = []
    for image, mask in sorted(pairing.masks.items()):
        if image in pairing.weak and not _is_mask(Path(root) / mask, mask, settings):
            images.append(mask)  # a picture of its own (a PNG preview beside the raw TIFF)
        else:
            left.append((mask, f"the defect mask of {image}"))
    left += [(m, "a mask file (by its name or folder) that belongs to no image") for m in pairing.unmatched]
    left += [(h, "a hidden file (its name starts with '.')") for h in hidden]
    return Listing(sorted(images), sorted(left))


def left_out_note(left: list[tuple[str, str]]) -> str | None:
    """The note naming the files of the given folders or zips that were not scored."""
    if not left:
        return None
    shown = "; ".join(f"{f} ({why})" for f, why in left[:5])
    more = f" (and {len(left) - 5} more)" if len(left) > 5 else ""
    return (f"{len(left)} file(s) were not scored: {shown}{more}. Masks are not used to predict; to score such a "
            "file anyway, give it on its own (or rename it)")


def low_bit_note(im, info: dict) -> str | None:
    """A 16-bit image holding 12-bit (or fewer) values, when the model was not trained on such images: read at
    16-bit scale it is far darker than a full-range image, which alone can flag it or change its class."""
    if not (im.bits is not None and 8 < im.bits <= 12 and str(im.mode).startswith("I;16")):
        return None
    low, n = info.get("low_bit_images"), info.get("images")
    if low is not None and n and low >= n:  # trained on such images only: nothing to say
        return None
    trained = "" if low is None else (" (none of the training images was)" if not low else
                                      f" (only {low} of the {n} training images were)")
    return (f"stored as {im.bits}-bit values in a 16-bit file{trained}: read at 16-bit scale it looks about "
            f"{2 ** (16 - im.bits)}x darker than a full-range image, which alone can make it an anomaly or change its "
            "class. Give training and prediction images of the same kind (or convert all of them to 8-bit the same way)")
