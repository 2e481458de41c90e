"""Importing images: folders, zips, labels, boxes, masks; hostile files refused per file with a reason."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from modelfab.errors import InvalidInput, TooLarge
from modelfab.modalities.image.io import decode_image, list_files, safe_extract_zip, split_images_and_masks
from modelfab.modalities.image.synth import make_image_dataset, make_surface
from modelfab.modalities.registry import detect_kind
from modelfab.settings import Settings


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory):
    return make_image_dataset(tmp_path_factory.mktemp("img") / "surf", n_per_class=4, size=40, masks=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from modelfab.workspace import Workspace

    w = Workspace.init(tmp_path_factory.mktemp("iws") / "ws")
    yield w
    w.close()


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_folder_import_labels_masks_and_idempotence(ws, surfaces):
    ds = ws.import_images(surfaces, "surf").dataset
    assert ds.kind == "image" and ds.n_rows == 12 and ds.n_cols == len(ds.schema["feature_names"]) > 100
    assert ds.stats["labels"] == {"good": 4, "scratch": 4, "spot": 4}
    assert ds.stats["masks"] == 12  # *_mask.png are masks, never images
    assert any(n.startswith("12 mask(s) paired with their images (a file named like X_mask.png") for n in ds.stats["notes"])
    from modelfab.images import load_image_tables

    feats, files = load_image_tables(ws, ds)
    assert list(feats["file"]) == list(files["file"]) and not files["file"].str.contains("_mask").any()
    assert (files.loc[files["label"] == "good", "defect_fraction"] == 0).all()
    assert (files.loc[files["label"] != "good", "defect_fraction"] > 0).all()
    again = ws.import_images(surfaces, "surf")
    assert not again.created and again.dataset.version == 1


def test_csv_labels_and_none(ws, surfaces, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\n" + "".join(f"{p.parent.name}/{p.name},{'ok' if p.parent.name == 'good' else 'ng'}\n"
                                            for p in sorted(surfaces.rglob("*_[0-9].png"))))
    ds = ws.import_images(surfaces, "csvlab", labels=str(csv)).dataset
    assert ds.stats["labels"] == {"ok": 4, "ng": 8}
    assert ds.stats["labels_unmatched_count"] == 0
    with csv.open("a") as f:  # rows naming images that are not there are counted and named
        f.write("good/gone.png,ok\nnowhere.png,ng\n")
    ds = ws.import_images(surfaces, "csvlab2", labels=str(csv)).dataset
    assert ds.stats["labels"] == {"ok": 4, "ng": 8}
    assert ds.stats["labels_unmatched_count"] == 2 and ds.stats["labels_unmatched"] == ["good/gone.png", "nowhere.png"]
    ds2 = ws.import_images(surfaces / "spot", "nolab", labels="none").dataset
    assert ds2.stats["labels"] == {} and ds2.stats["unlabelled"] == 4
    with pytest.raises(InvalidInput, match="CSV"):
        ws.import_images(surfaces, "bad", labels=str(tmp_path / "missing.csv"))


def test_zip_import_and_auto_kind(ws, surfaces, tmp_path):
    z = tmp_path / "surf.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(surfaces.rglob("*.png")):
            zf.write(p, p.relative_to(surfaces).as_posix())
    assert detect_kind(z) == "images" and detect_kind(surfaces) == "images"
    ds = ws.import_images(z, "zipped").dataset
    assert ds.n_rows == 12 and ds.stats["masks"] == 12
    assert ds.content_sha == ws.dataset("surf").content_sha  # same files, same labels, same content
    # without a name, a folder or zip named with spaces gets a usable one (a folder 'line 3 parts' was refused,
    # while a file 'line 3.csv' became 'line_3')
    import shutil

    spaced = shutil.copytree(surfaces, tmp_path / "line 3 parts")
    assert ws.import_images(spaced, None).dataset.name == "line_3_parts"
    assert ws.import_images(z.rename(tmp_path / "line 3.zip"), None).dataset.name == "line_3"


def test_boxes_voc_coco_yolo_with_rescale(ws, tmp_path):
    root = tmp_path / "boxes"
    for sub in ("voc", "coco", "yolo"):
        (root / sub).mkdir(parents=True)
        Image.fromarray(make_surface(64, seed=1)[0]).save(root / sub / f"{sub}1.jpg")
    (root / "annotations").mkdir()
    (root / "annotations" / "voc1.xml").write_text(
        "<annotation><size><width>32</width><height>32</height></size><object><name>spot</name>"
        "<bndbox><xmin>2</xmin><ymin>4</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object></annotation>")
    (root / "coco.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "coco/coco1.jpg", "width": 64, "height": 64}],
        "annotations": [{"image_id": 1, "category_id": 3, "bbox": [5, 6, 10, 20]}],
        "categories": [{"id": 3, "name": "scratch"}]}))
    (root / "classes.txt").write_text("dent\nspot\n")
    (root / "yolo" / "yolo1.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    ds = ws.import_images(root, "boxes").dataset
    assert ds.stats["boxes"] == 3 and ds.stats["box_formats"] == ["coco", "voc", "yolo"]
    assert ds.stats["boxes_rescaled_images"] == 1  # the VOC file was made on a 32x32 copy
    from modelfab.images import boxes_of, load_image_tables

    boxes = boxes_of(load_image_tables(ws, ds)[1])
    assert boxes["voc/voc1.jpg"] == [{"label": "spot", "x0": 4.0, "y0": 8.0, "x1": 20.0, "y1": 24.0}]
    assert boxes["coco/coco1.jpg"] == [{"label": "scratch", "x0": 5.0, "y0": 6.0, "x1": 15.0, "y1": 26.0}]
    assert boxes["yolo/yolo1.jpg"] == [{"label": "spot", "x0": 24.0, "y0": 16.0, "x1": 40.0, "y1": 48.0}]
    (root / "annotations" / "voc1.xml").write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><annotation/>')
    with pytest.raises(InvalidInput, match="DOCTYPE"):
        ws.import_images(root, "boxes")
    # --skip-bad: the image comes without the refused file's boxes, and the import says so
    ds = ws.import_images(root, "boxes", skip_bad=True).dataset
    assert ds.stats["boxes"] == 2 and [a["file"] for a in ds.stats["annotations_refused"]] == ["voc/voc1.jpg"]
    assert "DOCTYPE" in ds.stats["annotations_refused"][0]["reason"] and ds.stats["files"] == 3


def test_mask_conventions():
    files = ["a/x.jpg", "a/x.png", "b/y.png", "b/y_mask.png", "c/z.bmp", "masks/c/z.png", "d/w.png"]
    images, masks = split_images_and_masks(files)
    assert images == ["a/x.jpg", "b/y.png", "c/z.bmp", "d/w.png"]
    assert masks == {"a/x.jpg": "a/x.png", "b/y.png": "b/y_mask.png", "c/z.bmp": "masks/c/z.png"}


def test_formats_modes_and_sizes():
    s = Settings()
    g, _ = make_surface(30, seed=2, height=20)
    rgb = make_surface(24, seed=3, colour=True)[0]
    for fmt, ext, arr in (("BMP", ".bmp", g), ("TIFF", ".tif", g), ("PNG", ".png", rgb), ("JPEG", ".jpg", rgb)):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt)
        im = decode_image(buf.getvalue(), "x" + ext, s, ext)
        assert im.format == fmt and im.gray.shape == arr.shape[:2] and 0 <= im.gray.min() <= im.gray.max() <= 1
        assert (im.rgb is not None) == (arr.ndim == 3)
    buf = io.BytesIO()
    Image.fromarray((g.astype(np.uint16) * 200)).save(buf, "PNG")  # 16-bit grey
    assert decode_image(buf.getvalue(), "w.png", s, ".png").gray.max() <= 1


def test_camera_files_read_as_a_viewer_shows_them():
    """EXIF orientation is applied; 16-bit files are read at container scale and say how many bits they use."""
    s = Settings()
    g, _ = make_surface(40, seed=6, height=24)  # 24 rows x 40 columns, 8-bit
    plain = decode_image(_png(g), "g.png", s, ".png").gray
    turned = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(np.rot90(g)).save(turned, "JPEG", quality=98, exif=exif)  # stored sideways, as cameras do
    upright = decode_image(turned.getvalue(), "g.jpg", s, ".jpg").gray
    assert upright.shape == g.shape and np.abs(upright - plain).mean() < 0.03
    full = io.BytesIO()
    Image.fromarray((g.astype(np.uint32) * 257).astype(np.uint16)).save(full, "PNG")
    got = decode_image(full.getvalue(), "g16.png", s, ".png")
    assert np.abs(got.gray - plain).max() < 2 / 255 and got.bits == 16  # full-range 16-bit = the 8-bit picture
    twelve = io.BytesIO()
    Image.fromarray((g.astype(np.uint32) * 4095 // 255).astype(np.uint16)).save(twelve, "PNG")
    got = decode_image(twelve.getvalue(), "g12.png", s, ".png")
    assert got.bits == 12 and abs(got.gray.mean() - plain.mean() / 16) < 0.01  # container scale: dark, and counted


def test_hostile_files_refused_per_file_with_reason(ws, tmp_path):
    s = Settings()
    good = make_surface(32, seed=5)[0]
    with pytest.raises(InvalidInput, match="named .png but holds JPEG"):
        decode_image(_jpeg(good), "liar.png", s, ".png")
    with pytest.raises(InvalidInput, match="truncated|corrupt"):
        decode_image(_png(good)[:-60], "cut.png", s, ".png")
    with pytest.raises(InvalidInput, match="truncated|corrupt"):
        decode_image(_jpeg(good)[: len(_jpeg(good)) // 2], "cut.jpg", s, ".jpg")
    with pytest.raises(InvalidInput, match="is 1x1 pixels; expected at least 8x8"):
        decode_image(_png(good[:1, :1]), "dot.png", s, ".png")
    with pytest.raises(InvalidInput, match="expected a JPEG, PNG, BMP or TIFF image, got XML"):
        decode_image(b"<svg xmlns='x'/>", "fake.png", s, ".png")
    # a decompression bomb: a tiny PNG announcing 20000 x 20000 pixels
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(TooLarge, match="decompression bomb") as big:
        decode_image(bomb.getvalue(), "bomb.png", s, ".png")
    # over the limit, and over twice the limit (where Pillow's own check fires first): the same limit is named
    half = io.BytesIO()
    Image.new("1", (8000, 8000)).save(half, "PNG")
    with pytest.raises(TooLarge) as over:
        decode_image(half.getvalue(), "big.png", s, ".png")
    limit = f"over the limit of {s.max_image_pixels:,}"
    assert limit in big.value.message and "400,000,000 pixels" in big.value.message
    assert limit in over.value.message and "64,000,000 pixels" in over.value.message
    # in a folder: refused with the reason, or skipped with --skip-bad
    root = tmp_path / "mixed" / "good"
    root.mkdir(parents=True)
    for i in range(3):
        (root / f"ok{i}.png").write_bytes(_png(make_surface(32, seed=i)[0]))
    (root / "liar.png").write_bytes(_jpeg(good))
    (root / "bomb.png").write_bytes(bomb.getvalue())
    (root / "cut.jpg").write_bytes(_jpeg(good)[:300])
    with pytest.raises(InvalidInput) as err:
        ws.import_images(root.parent, "mixed")
    assert "3 of 6 images cannot be used" in err.value.message and "--skip-bad" in err.value.hint
    assert ".." not in err.value.message and ".;" not in err.value.message
    ds = ws.import_images(root.parent, "mixed", skip_bad=True).dataset
    assert ds.n_rows == 3 and sorted(x["file"] for x in ds.stats["skipped"]) == ["good/bomb.png", "good/cut.jpg", "good/liar.png"]
    assert all(x["reason"] for x in ds.stats["skipped"])


def test_zip_slip_bomb_and_links_refused(ws, tmp_path):
    s = Settings()
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../evil.png", _png(make_surface(16)[0]))
    with pytest.raises(InvalidInput, match="zip slip"):
        ws.import_images(slip, "slip")
    assert not (tmp_path / "evil.png").exists()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", b"\0" * (3 * 2**20))
    from dataclasses import replace

    with pytest.raises(TooLarge, match="zip bomb|import limit"):
        safe_extract_zip(bomb, tmp_path, replace(s, max_import_bytes=2**20))
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "out.png").symlink_to(tmp_path / "slip.zip")
    with pytest.raises(InvalidInput, match="symbolic link"):
        list_files(tmp_path / "linked")
    # --skip-bad: the link is refused alone (never read) and the rest is imported
    Image.fromarray(make_surface(16)[0]).save(tmp_path / "linked" / "ok.png")
    ds = ws.import_images(tmp_path / "linked", "linked", skip_bad=True).dataset
    assert ds.stats["files"] == 1 and ds.stats["skipped"][0]["file"] == "out.png"
    assert "symbolic link" in ds.stats["skipped"][0]["reason"]
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    with pytest.raises(InvalidInput, match="not a zip"):
        ws.import_images(tmp_path / "notzip.zip", "nz")


def test_same_name_png_is_a_mask_only_when_it_looks_like_one(ws, tmp_path):
    root = tmp_path / "parts"
    for d in ("good", "spot", "empty"):
        (root / d).mkdir(parents=True)
    g = make_surface(48, seed=7)[0]
    Image.fromarray(g).save(root / "good" / "a.tif")
    Image.fromarray(np.roll(g, 5, axis=1)).save(root / "good" / "a.png")   # a PNG copy of another picture
    Image.fromarray(g).save(root / "spot" / "b.jpg")
    mask = np.zeros_like(g)
    mask[10:20, 10:20] = 255
    Image.fromarray(mask).save(root / "spot" / "b.png")                   # a real mask
    Image.fromarray(g).save(root / "spot" / "c.jpg")
    Image.fromarray(np.zeros((48, 12), np.uint8)).save(root / "spot" / "c_mask.png")  # drawn on another picture
    Image.fromarray(g).save(root / "spot" / "d.jpg")
    Image.fromarray(np.zeros((48, 12), np.uint8)).save(root / "spot" / "d.png")  # same name, mask-like, wrong shape
    red = np.zeros((48, 48, 3), np.uint8)
    red[5:9, 5:9, 0] = 255
    Image.fromarray(g).save(root / "spot" / "e.jpg")
    Image.fromarray(red).save(root / "spot" / "e.png")  # a red defect on black: a mask
    Image.fromarray(g).save(root / "good" / "f.jpg")
    faint = (100 + np.random.default_rng(0).integers(0, 50, g.shape)).astype(np.uint8)
    Image.fromarray(faint).save(root / "good" / "f.png")  # a low-contrast picture (levels 100..149): not a mask
    Image.fromarray(g).save(root / "spot" / "h.jpg")
    Image.fromarray((mask > 0).astype(np.uint8)).save(root / "spot" / "h.png")  # a 0/1 mask (looks black)
    res = ws.import_images(root, "parts", skip_bad=True)
    st = res.dataset.stats
    assert st["pngs_as_images"] == ["good/a.png", "good/f.png"] and st["labels"] == {"good": 4, "spot": 3}  # b, e, h
    assert st["masks"] == 3 and st["empty_folders"] == ["empty"]
    assert [s["file"] for s in st["skipped"]] == ["spot/c.jpg", "spot/d.jpg"]
    assert all("the mask is 12x48" in s["reason"] for s in st["skipped"])
    with pytest.raises(InvalidInput, match="--target names a column of a table.*holds image"):
        ws.train("parts", target="whatever", task="classification", budget=5)


def test_labels_from_file_names_and_zips_of_a_folder(ws, tmp_path):
    """--labels regex:PATTERN reads a label from each file name (as for recordings); a missing labels file is
    named as missing. A zip made of a folder (zip -r photos.zip photos) is read as the folder: the top-level
    COCO file, class folders and empty folders are found; a zip of one folder of images keeps its name as label."""
    import json
    import zipfile

    root = tmp_path / "photos"
    for d in ("a", "b", "empty"):
        (root / d).mkdir(parents=True)
    for i, cls in enumerate(["good", "good", "spot", "spot"]):
        Image.fromarray(make_surface(48, seed=i)[0]).save(root / ("a" if i % 2 else "b") / f"{cls}_{i}.png")
    coco = {"images": [{"id": 1, "file_name": "a/good_1.png", "width": 48, "height": 48}],
            "annotations": [{"image_id": 1, "bbox": [2, 3, 10, 12], "category_id": 1}],
            "categories": [{"id": 1, "name": "scratch"}]}
    (root / "annotations.json").write_text(json.dumps(coco), "utf-8")
    Image.fromarray(make_surface(48, seed=9)[0]).save(root / "a" / ".hidden_1.png")  # a hidden file: left out, said
    (root / "a" / "._good_1.png").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork: left out silently
    res = ws.import_images(root, "byname", labels="regex:^(good|spot)_")
    assert res.dataset.stats["hidden_images"] == 1 and res.dataset.stats["hidden_examples"] == ["a/.hidden_1.png"]
    assert res.dataset.stats["labels"] == {"good": 2, "spot": 2} and res.dataset.options == {"labels": "regex:^(good|spot)_"}
    with pytest.raises(InvalidInput, match="does not exist"):
        ws.import_images(root, "x", labels=str(tmp_path / "nope.csv"))
    with pytest.raises(InvalidInput, match="not a valid regular expression"):
        ws.import_images(root, "x", labels="regex:(")
    direct = ws.import_images(root, "direct").dataset.stats
    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as zf:  # as `zip -r photos.zip photos` makes it: every entry under photos/
        for p in sorted(root.rglob("*")):
            zf.write(p, p.relative_to(tmp_path).as_posix())
    zipped = ws.import_images(z, "zipped").dataset.stats
    assert zipped["boxes"] == direct["boxes"] == 1 and zipped["box_formats"] == ["coco"]
    assert zipped["labels"] == direct["labels"] == {"a": 2, "b": 2} and zipped["empty_folders"] == ["empty"]
    one = tmp_path / "good.zip"  # a zip of one folder of images: the folder is their label, as before
    with zipfile.ZipFile(one, "w") as zf:
        for p in sorted((root / "a").glob("*.png")):
            zf.write(p, f"good/{p.name}")
    assert ws.import_images(one, "one").dataset.stats["labels"] == {"good": 2}


def test_folder_labels_skip_layout_folders_and_name_nested_class_folders():
    from modelfab.modalities.image.io import folder_label_notes, label_from_folder

    assert [label_from_folder(f) for f in ("good/a.png", "train/good/a.png", "images/a.png", "images/train/a.jpg",
                                           "JPEGImages/a.jpg", "a.png", "good/old_backup/a.png")] == \
        ["good", "good", None, None, None, None, "old_backup"]
    notes = folder_label_notes(["good/a.png", "good/b.png", "good/old_backup/c.png", "dent/d.png",
                                "images/e.jpg", "images/f.jpg", "train/good/g.png"])
    assert notes[0].startswith("2 image(s) sit in folders of a dataset layout, not class folders ('images/' (2))")
    assert notes[1].startswith("'good/old_backup/' (1 image(s)) is a folder inside the class folder 'good/'")
    assert len(notes) == 2  # train/good/ is a class folder in a split folder: nothing to say
    assert folder_label_notes(["train/good/a.png", "test/good/b.png", "test/crack/c.png"]) == []


def test_an_unlabelled_coco_set_learns_its_unboxed_images_as_good_and_checks_on_the_boxed(ws, tmp_path):
    """A COCO layout (every image in images/) became one class 'images' and an anomaly model learnt the boxed
    defects as normal."""
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    entries, annotations = [], []
    for i in range(30):
        Image.fromarray(make_surface(48, seed=i)[0]).save(root / "images" / f"p{i:02d}.png")
        entries.append({"id": i, "file_name": f"p{i:02d}.png", "width": 48, "height": 48})
        if i < 8:
            annotations.append({"image_id": i, "category_id": 1, "bbox": [5, 5, 10, 10]})
    (root / "annotations.json").write_text(json.dumps({"images": entries, "annotations": annotations,
                                                       "categories": [{"id": 1, "name": "dent"}]}))
    ds = ws.import_images(root, "cocoset").dataset
    assert ds.stats["labels"] == {} and ds.stats["unlabelled"] == 30 and ds.stats["images_with_boxes"] == 8
    assert any("dataset layout" in n and "'images/' (30)" in n for n in ds.stats["notes"])
    with pytest.raises(InvalidInput) as ei:
        ws.train("cocoset", task="classification", budget=5)
    assert "8 image(s) have boxes marking defects" in ei.value.hint and "--labels FILE.csv" in ei.value.hint
    model = ws.train("cocoset", task="anomaly", budget=20)
    # every good image scored out of fold (30), or a fifth of them held out when the machine is too busy for the
    # folds within the budget (training_image_few.rest_fits)
    assert model.metrics["n_anomaly"] == 8 and model.metrics["n"] in (30, 8 + 4, 8 + 5)
    assert any(n.startswith("8 unlabelled image(s) with boxes") for n in model.manifest["training"]["notes"])


def test_ultralytics_and_voc_twin_folders_pair_their_annotations(ws, tmp_path):
    """images/train/X.jpg beside labels/train/X.txt (the ultralytics layout) imported with 0 boxes, so an
    anomaly model would have learnt the defects as good."""
    root = tmp_path / "yolo"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(make_surface(40, seed=i)[0]).save(root / "images" / split / f"{split}{i}.jpg")
        (root / "labels" / split / f"{split}0.txt").write_text("0 0.5 0.5 0.25 0.5\n")
    (root / "classes.txt").write_text("dent\n")
    ds = ws.import_images(root, "ultra").dataset
    assert ds.stats["boxes"] == 2 and ds.stats["images_with_boxes"] == 2 and ds.stats["box_formats"] == ["yolo"]
    voc = tmp_path / "voc"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    Image.fromarray(make_surface(40, seed=3)[0]).save(voc / "JPEGImages" / "a.jpg")
    (voc / "Annotations" / "a.xml").write_text(
        "<annotation><size><width>40</width><height>40</height></size><object><name>spot</name>"
        "<bndbox><xmin>2</xmin><ymin>4</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object></annotation>")
    assert ws.import_images(voc, "vocset").dataset.stats["boxes"] == 1
