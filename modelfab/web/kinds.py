"""Dataset pages of images and time series: paged lists, filters by label, thumbnails rendered once.

Images: a grid of thumbnails (the defect mask tinted red, annotation boxes drawn), with size, mask
and box counts. Series: a list with a small line plot of each series (every channel), its length
and label. Thumbnails are cached in the workspace's cache folder under the content they show
(image blob sha; series dataset sha + position), so 10,000 items render once and then cost a read.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ..errors import NotFound
from ..datasets import text_or_none
from .media import cached_png
from .views import _label_page

THUMB_PX = 176  # longest side of an image thumbnail
LARGE_IMAGE_PX = 512  # longest side of the image the labelling page shows
SERIES_THUMB_PX = (260, 70)  # width, height of a series thumbnail
LARGE_SERIES_PX = (720, 220)  # and of the plot the labelling page shows
FILTER_KEYS = ("pages", "page", "n_match", "n_all", "label_counts", "unlabelled")  # what _label_filters.html reads


def _labels_filter(files, label: str, page: int, page_size: int) -> dict:
    """Rows of ``files`` (a table with ``label``) that match the label filter, one page of them, and counts."""
    current = [None if v is None or v != v or str(v) == "" else str(v) for v in files["label"]]
    return dict(_label_page(current, label, page, page_size), labels=current)


# -- images --------------------------------------------------------------------------------------
def image_files(site, ds):
    """The file table of an image dataset version with the blob sha of each image and mask (``sha``,
    ``mask_sha``), read once per version like the recordings table: a thumbnail then needs no lookup."""
    def build():
        from ..images import load_image_tables

        _, files = load_image_tables(site.ws, ds)
        refs = site.ws.meta.blob_refs(f"datasets:{ds.id}")
        files = files.reset_index(drop=True)
        files["sha"] = [refs.get(f"file:{f}") for f in files["file"]]
        files["mask_sha"] = [refs.get(f"mask:{f}") for f in files["file"]]
        return files

    return site.cached(f"image:{ds.id}", build)


def image_view(site, ds, page: int, label: str, page_size: int) -> dict:
    files = image_files(site, ds)
    sel = _labels_filter(files, label, page, page_size)
    items = []
    for i in sel["shown"]:
        r = files.iloc[i]
        items.append({"idx": i, "file": str(r["file"]), "label": sel["labels"][i], "width": int(r["width"]),
                      "height": int(r["height"]), "mask": _marks_defect(r),
                      "boxes": int(r.get("n_boxes") or 0)})
    return {"images": items, **{k: sel[k] for k in FILTER_KEYS}}


def _marks_defect(row) -> bool:
    """The image has a mask that marks something (an all-zero mask says "no defect here")."""
    if not text_or_none(row.get("mask")):
        return False
    frac = row.get("defect_fraction")
    return frac is None or frac != frac or float(frac) > 0


def image_thumb(site, ds, idx: int, px: int = THUMB_PX) -> Path:
    """A PNG of image ``idx`` (longest side at most ``px``) with its defect mask tinted red and its boxes drawn."""
    files = image_files(site, ds)
    if not 0 <= idx < len(files):
        raise NotFound("No such image.")
    row = files.iloc[idx]
    rel, sha, mask_sha = str(row["file"]), text_or_none(row["sha"]), text_or_none(row["mask_sha"])
    if not sha:
        raise NotFound("No such image.")
    boxes_json = text_or_none(row.get("boxes"))
    boxes = json.loads(boxes_json) if boxes_json else []
    drawn = hashlib.sha256(boxes_json.encode()).hexdigest()[:16] if boxes else "noboxes"  # where, not how many
    key = f"img-{sha}-{mask_sha or 'nomask'}-{drawn}-{px}"
    return cached_png(site.ws, key, lambda: _render_image(site.ws, rel, sha, mask_sha, boxes, px))


def _rgb8(im) -> np.ndarray:
    """A decoded image (``ImageData``) as (H, W, 3) uint8 RGB; grey images get three equal channels."""
    rgb = im.rgb if im.rgb is not None else np.repeat(im.gray[..., None], 3, axis=2)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _render_image(ws, rel: str, sha: str, mask_sha: str | None, boxes: list[dict], px: int = THUMB_PX) -> bytes:
    from PIL import Image, ImageDraw

    from ..modalities.image.io import read_image, read_mask

    im = read_image(ws.blob_path(sha), ws.settings, rel)  # the same checks and limits as the import
    rgb = _rgb8(im)
    if mask_sha is not None:
        m = read_mask(ws.blob_path(mask_sha), ws.settings, im.gray.shape, rel)
        tint = rgb.astype(np.float32)
        tint[m] = 0.45 * tint[m] + 0.55 * np.array([230, 40, 40], np.float32)
        rgb = tint.astype(np.uint8)
    pic = Image.fromarray(rgb, "RGB")
    h, w = im.gray.shape
    scale = min(1.0, px / max(h, w))
    pic = pic.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    if boxes:
        draw = ImageDraw.Draw(pic)
        for b in boxes:
            try:
                x0, y0, x1, y1 = (float(b[k]) * scale for k in ("x0", "y0", "x1", "y1"))
            except (KeyError, TypeError, ValueError):
                continue
            draw.rectangle((x0, y0, x1, y1), outline=(255, 196, 0), width=2)
    buf = io.BytesIO()
    pic.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# -- time series ---------------------------------------------------------------------------------
def series_data(site, ds):
    """(data, offsets, index) of a series dataset version, cached per version (for rendering thumbnails)."""
    from ..series import load_series

    return site.cached(f"series:{ds.id}", lambda: load_series(site.ws, ds))


def series_index(site, ds):
    """The index table (id, length[, label]) of a series dataset version, cached per version: the list
    and the thumbnails' bounds need it, not the values (which can be large: 10,000 long series)."""
    from ..series import load_series_index

    return site.cached(f"series-index:{ds.id}", lambda: load_series_index(site.ws, ds))


def series_view(site, ds, page: int, label: str, page_size: int) -> dict:
    index = series_index(site, ds)
    numeric = ds.schema.get("label_kind") == "numeric"
    if "label" in index and not numeric:
        sel = _labels_filter(index, label, page, page_size)
        shown_labels = sel["labels"]
    else:  # numeric targets (regression) or no labels: no filter by value, the value is shown
        sel = _label_page([None] * len(index), "", page, page_size)
        values = index["label"] if "label" in index else [None] * len(index)
        shown_labels = [None if v is None or v != v else f"{float(v):.6g}" for v in values]
    items = [{"idx": i, "id": str(index["id"].iloc[i]), "label": shown_labels[i], "length": int(index["length"].iloc[i])}
             for i in sel["shown"]]
    return {"series": items, "numeric_label": numeric,
            **{k: sel[k] for k in FILTER_KEYS}}


def series_thumb(site, ds, idx: int, px: tuple[int, int] = SERIES_THUMB_PX) -> Path:
    if not 0 <= idx < len(series_index(site, ds)):
        raise NotFound("No such series.")

    def render() -> bytes:  # the values are loaded only when a thumbnail is not cached yet
        data, offsets, _ = series_data(site, ds)
        return render_series_png(np.asarray(data[:, offsets[idx]:offsets[idx + 1]]).T, *px)

    size = "" if tuple(px) == SERIES_THUMB_PX else f"-{px[0]}x{px[1]}"
    return cached_png(site.ws, f"ser2-{ds.data_sha}-{idx}{size}", render)  # ser2: one band per channel


SERIES_COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")


def render_series_png(x: np.ndarray, width_px: int = 260, height_px: int = 70) -> bytes:
    """One series (time x channels, or time) as a small line plot, one colour per channel, no axes. Channels are
    drawn one above the other, each on its own scale (a channel near 0 is not flat next to one near 20); the
    page's legend names them in the same colours (SERIES_COLOURS)."""
    from matplotlib.figure import Figure

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    fig.patch.set_facecolor("#ffffff")
    colours = SERIES_COLOURS
    step = max(1, len(x) // 1000)  # at most ~1000 points a line
    n = min(x.shape[1], len(colours))
    band = 0.92 / max(1, n)
    for c in range(n):
        ax = fig.add_axes((0, 0.04 + (n - 1 - c) * band, 1, band * 0.94))  # channel 1 on top
        y = x[::step, c]
        ok = np.isfinite(y)
        if ok.any():
            ax.plot(np.flatnonzero(ok) * step, y[ok], color=colours[c], linewidth=1.1)
            lo, hi = float(np.min(y[ok])), float(np.max(y[ok]))
            pad = (hi - lo) * 0.08 or max(abs(hi), 1.0) * 0.05
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(0, max(1, len(x) - 1))
        ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    return buf.getvalue()


# -- "Try it" for image and series models --------------------------------------------------------
def predict_image_upload(ws, m, up) -> dict:
    """An uploaded image scored by an image model, with a picture (the anomaly heat map laid over it)."""
    from ..modalities.image.io import IMAGE_EXTENSIONS, read_image
    from .uploads import safe_suffix

    safe_suffix(up.raw_name, tuple(sorted(IMAGE_EXTENSIONS)))
    # the import's reader: its file-size limit (the UI's upload limit may be set higher), then the type,
    # pixel and truncation checks; the type is checked against the extension of the (sanitised) name
    im = read_image(up.path, ws.settings, up.filename)
    row = m.predictor.predict_image(im)
    smap = row.pop("score_map", None)
    png = _overlay_png(im, smap, row.get("threshold"))
    return {"kind": "image", "task": m.task, "file": up.filename, "row": row,
            "picture": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}


def _overlay_png(im, smap, threshold, longest: int = 360) -> bytes:
    """The image, scaled so that its longest side is ``longest`` px; for anomaly models the score map on top (transparent where low,
    opaque yellow-red where the score reaches the threshold)."""
    from matplotlib import colormaps
    from PIL import Image

    h, w = im.gray.shape
    scale = longest / max(h, w)  # small images are enlarged too, so that the heat map can be read
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    base = np.asarray(Image.fromarray(_rgb8(im), "RGB").resize(size, Image.BICUBIC), dtype=np.float32)
    if smap is not None and np.size(smap):
        top = max(float(np.nanmax(smap)), float(threshold or 0), 1e-12)
        heat = np.clip(np.nan_to_num(np.asarray(smap, np.float32)) / top, 0, 1)
        heat = np.asarray(Image.fromarray((heat * 255).astype(np.uint8)).resize(size, Image.BILINEAR),
                          dtype=np.float32) / 255.0
        colour = colormaps["inferno"](heat)[..., :3] * 255
        alpha = (0.65 * heat ** 1.5)[..., None]
        base = (1 - alpha) * base + alpha * colour
    buf = io.BytesIO()
    Image.fromarray(base.astype(np.uint8), "RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def predict_series_upload(ws, m, up) -> dict:
    """An uploaded file of series scored by a series model: one row per series, as the table result shows it.
    The upload is read where it lies, with the model's reading options and the import's limits, and holds at
    most as many series as a table upload holds rows."""
    from ..modalities.series.io import SERIES_EXTENSIONS
    from .uploads import keep_name, safe_suffix
    from .views import _check_records, _prediction_table

    suffix = safe_suffix(up.raw_name, tuple(sorted(SERIES_EXTENSIONS)))
    path = keep_name(up, suffix)  # ids and messages name the user's file (sines_test_0), as the CLI and REST do
    sset = m.predictor.read_file(path)
    _check_records(len(sset.series), ws.settings, "series")
    m.predictor.check_request(sset.series)
    out = _prediction_table(m, up, m.predictor.predict_series(sset.series, sset.ids))
    out["warnings"] = list(sset.notes)  # what reading did to the values (gaps filled, ...), as the CLI says it
    return out
