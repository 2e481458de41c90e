"""Data-set layouts met in the wild: MVTec AD mask trees, Kolektor _label masks, zips without the UTF-8 flag
(Linux Info-ZIP, Chinese Windows), multi-page TIFFs, label files in GBK or with semicolons."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from modelfab.errors import InvalidInput
from modelfab.modalities.image.io import safe_extract_zip, split_images_and_masks, zip_holds_images
from modelfab.modalities.image.pairing import pair_masks
from modelfab.modalities.image.synth import make_surface
from modelfab.settings import Settings


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from modelfab.workspace import Workspace

    w = Workspace.init(tmp_path_factory.mktemp("lws") / "ws")
    yield w
    w.close()


def _save(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def _defect(seed: int, kind: str = "scratch"):
    img, mask = make_surface(48, seed=seed, defect=kind)
    return img, (mask * 255).astype(np.uint8)


def test_mvtec_layout_masks_paired_never_images(ws, tmp_path):
    """part/{train,test}/<class>/NNN.png with ground_truth/<defect>/NNN_mask.png: 16 masks paired, none imported
    as an image; labels from the image's folder; an orphan mask and the mask folder named in the notes."""
    root = tmp_path / "part"
    for i in range(6):
        _save(root / "train" / "good" / f"{i:03d}.png", make_surface(48, seed=i, defect="good")[0])
    for i in range(3):
        _save(root / "test" / "good" / f"{i:03d}.png", make_surface(48, seed=10 + i, defect="good")[0])
    fmt = {"scratch": "png", "spot": "bmp"}  # masks in any image format
    for k in ("scratch", "spot"):
        for i in range(4):
            img, m = _defect(20 + i, k)
            _save(root / "test" / k / f"{i:03d}.png", img)
            _save(root / "ground_truth" / k / f"{i:03d}_mask.{fmt[k]}", m)
    _save(root / "ground_truth" / "spot" / "009_mask.png", _defect(40, "spot")[1])  # no image 009
    res = ws.import_images(root, "part")
    st = res.dataset.stats
    assert st["files"] == 17 and st["masks"] == 8
    assert st["labels"] == {"good": 9, "scratch": 4, "spot": 4}  # train/test are not labels
    assert st["masks_unmatched"] == ["ground_truth/spot/009_mask.png"] and st["masks_unmatched_count"] == 1
    assert st["mask_folders"] == ["ground_truth"] and st["empty_folders"] == []
    assert any("8 mask(s) paired" in n for n in res.notes) and any("009_mask.png" in n for n in res.notes)
    from modelfab.images import load_image_tables

    files = load_image_tables(ws, res.dataset)[1]
    assert not files["file"].str.startswith("ground_truth").any()
    by_file = dict(zip(files["file"], files["mask"]))
    assert by_file["test/scratch/001.png"] == "ground_truth/scratch/001_mask.png"
    assert by_file["test/spot/002.png"] == "ground_truth/spot/002_mask.bmp"
    assert (files.loc[files["label"] != "good", "defect_fraction"] > 0).all()
    from tests.conftest import run_cli  # the CLI's summary says it too (it printed only its own notes)

    shown = run_cli("data", "import", str(root), "--name", "part", "-w", str(ws.root)).stdout
    assert "8 mask(s) paired" in shown.replace("\n", " "), shown


def test_mask_trees_and_suffixes_by_name():
    files = ["a/test/s/0.png", "a/train/s/0.png", "a/ground_truth/s/0_mask.png",  # two splits: test's
             "gt/x/1.jpg", "x/1.jpg",                                            # gt/ mirrors the folders
             "labels/y/2.tif", "y/2.png",                                        # labels/ too, a TIFF mask
             "k/Part0.jpg", "k/Part0_label.bmp", "k/Part1.jpg", "k/Part1_GT.png",  # beside, any case
             "mask/3.jpg", "no_mask/3.jpg", "mask/4.jpg",                        # classes named mask/no_mask
             "masks/z/5_mask.png"]                                               # a mask tree, no image
    found = pair_masks(files)
    assert found.masks == {"a/test/s/0.png": "a/ground_truth/s/0_mask.png", "x/1.jpg": "gt/x/1.jpg",
                           "y/2.png": "labels/y/2.tif", "k/Part0.jpg": "k/Part0_label.bmp",
                           "k/Part1.jpg": "k/Part1_GT.png"}
    assert found.images == ["a/test/s/0.png", "a/train/s/0.png", "k/Part0.jpg", "k/Part1.jpg", "mask/3.jpg",
                            "mask/4.jpg", "no_mask/3.jpg", "x/1.jpg", "y/2.png"]
    assert found.unmatched == ["masks/z/5_mask.png"] and found.mask_dirs == {"a/ground_truth", "gt", "labels", "masks"}
    assert found.weak == {"x/1.jpg", "y/2.png", "k/Part0.jpg", "k/Part1.jpg"}  # looked at before they count
    assert split_images_and_masks(files) == (found.images, found.masks)


def test_kolektor_label_masks_and_a_picture_named_label(ws, tmp_path):
    """kosNN/PartK_label.bmp beside kosNN/PartK.jpg is its mask (all black when there is no defect); a picture
    named X_label.png beside X.png is not two-level: it stays an image and the import says so."""
    root = tmp_path / "kolektor"
    for f in range(3):
        for k in range(2):
            img, m = _defect(f * 10 + k) if f == 0 and k == 1 else (make_surface(48, seed=f * 10 + k, defect="good")[0],
                                                                    np.zeros((48, 48), np.uint8))
            _save(root / f"kos{f:02d}" / f"Part{k}.jpg", img)
            _save(root / f"kos{f:02d}" / f"Part{k}_label.bmp", m)
    _save(root / "kos02" / "photo.png", make_surface(48, seed=77, defect="good")[0])
    _save(root / "kos02" / "photo_label.png", make_surface(48, seed=78, defect="good")[0])  # a picture
    res = ws.import_images(root, "kol")
    st = res.dataset.stats
    assert st["masks"] == 6 and st["files"] == 8 and st["labels"] == {"kos00": 2, "kos01": 2, "kos02": 4}
    assert any("photo_label.png" in n and "pictures" in n for n in res.notes)
    from modelfab.images import load_image_tables

    files = load_image_tables(ws, res.dataset)[1].set_index("file")
    assert files.loc["kos00/Part1.jpg", "defect_fraction"] > 0 and files.loc["kos01/Part0.jpg", "defect_fraction"] == 0
    assert files.loc["kos02/photo_label.png", "label"] == "kos02"


class _RawName(zipfile.ZipInfo):
    """A member whose name is stored as these bytes, without the UTF-8 flag (as Info-ZIP and Windows write)."""

    def __init__(self, raw: bytes):
        super().__init__(raw.decode("cp437"))
        self.raw = raw

    def _encodeFilenameFlags(self):
        return self.raw, self.flag_bits & ~0x800


def _zip(path, members: dict[bytes, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for raw, data in members.items():
            zf.writestr(_RawName(raw), data)
    return path


def _png(a) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_zip_names_without_the_utf8_flag(ws, tmp_path, encoding):
    # 乗 is 0x81 0x5C in GBK: its second byte is a backslash, so the checks must see the decoded name
    names = ["缺陷 划痕/b0.png", "缺陷 划痕/b1.png", "良品/乗0.png", "良品/g1.png"]
    z = _zip(tmp_path / f"{encoding}.zip", {n.encode(encoding): _png(make_surface(48, seed=i)[0])
                                             for i, n in enumerate(names)})
    assert all(not i.flag_bits & 0x800 for i in zipfile.ZipFile(z).infolist())
    assert zip_holds_images(z)
    st = ws.import_images(z, f"cn{encoding[:3]}").dataset.stats
    assert st["labels"] == {"缺陷 划痕": 2, "良品": 2}
    out = safe_extract_zip(z, tmp_path, Settings())
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == sorted(names)


def test_zip_names_cp437_kept_and_slip_checked_after_decoding(tmp_path):
    z = _zip(tmp_path / "de.zip", {"Größe/a.png".encode("cp437"): _png(make_surface(48, seed=1)[0])})
    out = safe_extract_zip(z, tmp_path, Settings())
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.png")] == ["Größe/a.png"]
    slip = _zip(tmp_path / "slip.zip", {"../缺陷.png".encode("gbk"): b"x", "缺陷/ok.png".encode("gbk"): b"x"})
    with pytest.raises(InvalidInput, match="zip slip"):
        safe_extract_zip(slip, tmp_path, Settings())
    assert not (tmp_path / "缺陷.png").exists()


def test_multipage_tiff_first_page_said(ws, tmp_path):
    root = tmp_path / "tiffs"
    pages = [Image.fromarray(make_surface(48, seed=s, defect="good")[0]) for s in range(3)]
    (root / "good").mkdir(parents=True)
    pages[0].save(root / "good" / "multi.tif", save_all=True, append_images=pages[1:])
    pages[1].save(root / "good" / "single.tif")
    res = ws.import_images(root, "tiffs")
    assert res.dataset.stats["multipage_tiffs"] == 1 and res.dataset.stats["multipage_examples"] == ["good/multi.tif"]
    assert any("1 multi-page TIFF(s): the first page of each was used" in n for n in res.notes)
    again = ws.import_images(root, "tiffs")  # the same version: the notes are said again
    assert not again.created and again.notes == res.notes


def test_image_labels_file_in_gbk_with_semicolons(ws, tmp_path):
    root = tmp_path / "cls"
    for i in range(4):
        _save(root / f"{i}.png", make_surface(48, seed=i)[0])
    lab = tmp_path / "labels.csv"
    lab.write_bytes("file;label\n0.png;良品\n1.png;良品\n2.png;划痕\n3.png;划痕\n".encode("gbk"))
    assert ws.import_images(root, "gbklab", labels=str(lab)).dataset.stats["labels"] == {"良品": 2, "划痕": 2}


def test_browser_zip_uploads_decode_names_as_the_cli_does(tmp_path):
    """The web import unpacks uploads with its own checks (web/uploads.py): the same names as the CLI reads."""
    from modelfab.web.uploads import ZipLimits, extract_zip

    names = ["缺陷 划痕/b0.png", "良品/乗0.png"]
    z = _zip(tmp_path / "gbk.zip", {n.encode("gbk"): _png(make_surface(48, seed=i)[0]) for i, n in enumerate(names)})
    out = tmp_path / "out"
    assert extract_zip(z, out, ZipLimits(100, 10**8, 100)) == 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == sorted(names)
