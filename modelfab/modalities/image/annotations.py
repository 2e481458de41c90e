"""Box annotations: Pascal VOC (.xml), COCO (.json), YOLO (.txt). Kept with the dataset for detection work.

Boxes are returned in pixels of the image as stored: ``{"label", "x0", "y0", "x1", "y1"}``.
Where an annotation declares an image size (VOC ``<size>``, COCO ``width/height``) that
differs from the real image, the boxes are rescaled to the real size and counted, because
annotations made on a resized copy are a common trap.

Where files are looked for, for an image ``DIR/X.ext``: VOC ``DIR/X.xml`` or ``X.xml`` in a
top-level ``annotations``/``Annotations`` folder; YOLO ``DIR/X.txt`` or ``labels/DIR/X.txt``; and for an image in
``.../images/S/X.ext`` (``JPEGImages``), the same path with ``labels`` (``annotations``) in place of that folder, as
ultralytics (``images/train`` beside ``labels/train``) and VOC (``JPEGImages`` beside ``Annotations``) lay them out;
with class names from a top-level ``classes.txt`` (one per line); COCO: every top-level
``*.json`` with ``images`` and ``annotations`` lists (``file_name`` matched by relative path,
then by bare name).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from ...errors import InvalidInput
from ...settings import human_bytes

MAX_ANNOTATION_BYTES = 2 * 2**20
MAX_COCO_BYTES = 256 * 2**20
ANNOTATION_DIRS = ("annotations", "Annotations")


def _read_text(path: Path, limit: int, rel: str) -> str:
    if path.stat().st_size > limit:
        raise InvalidInput(f"{rel}: annotation file is over {human_bytes(limit)}.")
    try:
        return path.read_text("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{rel}: expected a UTF-8 annotation file.") from None


def parse_voc(path: Path, rel: str) -> tuple[list[dict], tuple[int, int] | None]:
    import xml.etree.ElementTree as ET

    text = _read_text(path, MAX_ANNOTATION_BYTES, rel)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise InvalidInput(f"{rel}: XML with a DOCTYPE/ENTITY declaration is refused (entity expansion attacks).")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidInput(f"{rel}: expected Pascal VOC XML, got unparsable XML ({exc}).") from None
    size = None
    w, h = root.findtext("size/width"), root.findtext("size/height")
    try:
        if w and h and int(float(w)) > 0 and int(float(h)) > 0:
            size = (int(float(w)), int(float(h)))
        boxes = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                continue
            boxes.append({"label": (obj.findtext("name") or "").strip(),
                          **{k: float(bb.findtext(k.replace("x0", "xmin").replace("y0", "ymin")
                                                  .replace("x1", "xmax").replace("y1", "ymax")) or "nan")
                             for k in ("x0", "y0", "x1", "y1")}})
    except ValueError as exc:
        raise InvalidInput(f"{rel}: expected numbers in <size>/<bndbox>, got {exc}.") from None
    return boxes, size


def parse_yolo(path: Path, rel: str, classes: list[str], width: int, height: int) -> list[dict]:
    text = _read_text(path, MAX_ANNOTATION_BYTES, rel)
    boxes = []
    for i, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise InvalidInput(f"{rel}: line {i}: expected 'class cx cy w h' (normalised), got {line[:60]!r}.")
        try:
            c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
        except ValueError:
            raise InvalidInput(f"{rel}: line {i}: expected numbers, got {line[:60]!r}.") from None
        label = classes[c] if 0 <= c < len(classes) else str(c)
        boxes.append({"label": label, "x0": (cx - bw / 2) * width, "y0": (cy - bh / 2) * height,
                      "x1": (cx + bw / 2) * width, "y1": (cy + bh / 2) * height})
    return boxes


def load_coco(root: Path, files: list[str]) -> dict[str, tuple[list[dict], tuple[int, int] | None]]:
    """{image file_name (as written): (boxes, declared size)} from the top-level COCO json files."""
    out: dict[str, tuple[list[dict], tuple[int, int] | None]] = {}
    for rel in files:
        p = PurePosixPath(rel)
        if len(p.parts) != 1 and not (len(p.parts) == 2 and p.parts[0] in ANNOTATION_DIRS):
            continue
        if p.suffix.lower() != ".json":
            continue
        try:
            doc = json.loads(_read_text(root / rel, MAX_COCO_BYTES, rel))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{rel}: expected COCO JSON, got invalid JSON ({exc}).") from None
        if not (isinstance(doc, dict) and isinstance(doc.get("images"), list) and isinstance(doc.get("annotations"), list)):
            continue
        cats = {c.get("id"): str(c.get("name")) for c in doc.get("categories", []) if isinstance(c, dict)}
        by_id = {}
        for im in doc["images"]:
            if isinstance(im, dict) and "file_name" in im:
                size = (int(im["width"]), int(im["height"])) if im.get("width") and im.get("height") else None
                by_id[im.get("id")] = str(im["file_name"]).replace("\\", "/")
                out.setdefault(by_id[im.get("id")], ([], size))
        for a in doc["annotations"]:
            if not isinstance(a, dict) or a.get("image_id") not in by_id or not isinstance(a.get("bbox"), list):
                continue
            try:
                x, y, w, h = map(float, a["bbox"][:4])
            except (TypeError, ValueError):
                raise InvalidInput(f"{rel}: expected bbox [x, y, w, h] numbers, got {a.get('bbox')!r}.") from None
            out[by_id[a["image_id"]]][0].append({"label": cats.get(a.get("category_id"), str(a.get("category_id"))),
                                                 "x0": x, "y0": y, "x1": x + w, "y1": y + h})
    return out


IMAGE_DIRS = ("images", "jpegimages")  # the folder whose twin (labels/, Annotations/) holds the annotations

class Annotations:
    """Finds and parses the boxes of every image of a folder listing."""

    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = Path(root)
        self.present = set(files)
        self.coco = load_coco(self.root, files)
        self.coco_by_name: dict[str, list[str]] = {}
        for k in self.coco:
            self.coco_by_name.setdefault(PurePosixPath(k).name, []).append(k)
        classes = self.root / "classes.txt"
        self.classes = ([c.strip() for c in _read_text(classes, MAX_ANNOTATION_BYTES, "classes.txt").splitlines() if c.strip()]
                        if "classes.txt" in self.present else [])
        self.formats: set[str] = set()

    def _find(self, rel: str, ext: str, folders: tuple[str, ...]) -> str | None:
        p = PurePosixPath(rel)
        cands = [str(p.with_suffix(ext))] + [f"{d}/{p.stem}{ext}" for d in folders] + \
                [str(PurePosixPath(d, *p.with_suffix(ext).parts)) for d in folders]
        parts = list(p.with_suffix(ext).parts)
        for i in range(len(parts) - 2, -1, -1):  # ultralytics: images/train/X.jpg <-> labels/train/X.txt (last 'images')
            if parts[i].lower() in IMAGE_DIRS:
                cands += [str(PurePosixPath(*parts[:i], d, *parts[i + 1:])) for d in folders]
                break
        return next((c for c in cands if c in self.present), None)

    def boxes_for(self, rel: str, width: int, height: int) -> tuple[list[dict], bool]:
        """(boxes in real pixels, whether they were rescaled from a declared size)."""
        declared = None
        boxes: list[dict] = []
        voc = self._find(rel, ".xml", ANNOTATION_DIRS)
        if voc:
            boxes, declared = parse_voc(self.root / voc, voc)
            self.formats.add("voc")
        elif rel in self.coco or len(self.coco_by_name.get(PurePosixPath(rel).name, [])) == 1:
            key = rel if rel in self.coco else self.coco_by_name[PurePosixPath(rel).name][0]
            boxes, declared = [dict(b) for b in self.coco[key][0]], self.coco[key][1]
            self.formats.add("coco")
        else:
            yolo = self._find(rel, ".txt", ("labels",))
            if yolo and PurePosixPath(yolo).name != "classes.txt":
                boxes = parse_yolo(self.root / yolo, yolo, self.classes, width, height)
                self.formats.add("yolo")
        rescaled = False
        if declared and declared != (width, height) and boxes:
            sx, sy = width / declared[0], height / declared[1]
            for b in boxes:
                b["x0"], b["x1"], b["y0"], b["y1"] = b["x0"] * sx, b["x1"] * sx, b["y0"] * sy, b["y1"] * sy
            rescaled = True
        for b in boxes:
            for k in ("x0", "y0", "x1", "y1"):
                b[k] = round(float(b[k]), 2)
        return boxes, rescaled
