"""Image labels: classes spelt several ways, labels files with absolute or wrongly cased paths, Chinese or unknown
headers (black-box findings F3, F4, F19)."""

import pytest
from PIL import Image

from modelfab.errors import InvalidInput
from modelfab.modalities.image.synth import make_surface
from modelfab.workspace import Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = Workspace.init(tmp_path_factory.mktemp("imglab") / "ws")
    yield w
    w.close()


def _save(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_surface(48, seed=seed)[0]).save(path)


def test_class_folders_that_differ_only_in_case_are_said(ws, tmp_path):
    root = tmp_path / "case"
    for i, d in enumerate(["good", "good", "Good", "scratch", "Scratch ", "spot"]):
        _save(root / d / f"{i}.png", i)
    res = ws.import_images(root, "case")
    assert res.dataset.stats["labels"] == {"good": 2, "Good": 1, "scratch": 1, "Scratch ": 1, "spot": 1}
    said = [n for n in res.notes if "differ only in case" in n]
    assert len(said) == 1 and "'Good' (1) / 'good' (2)" in said[0] and "'Scratch ' (1) / 'scratch' (1)" in said[0]
    assert "spot" not in said[0]
    assert not [n for n in ws.import_images(tmp_path / "case" / "good", "one").notes if "differ only" in n]


def test_labels_file_spaces_stripped_and_said(ws, tmp_path):
    root = tmp_path / "flat"
    for i in range(4):
        _save(root / f"{i}.png", i)
    lab = tmp_path / "labels.csv"
    lab.write_text("file,label\n0.png,scratch \n1.png,scratch\n2.png, good\n3.png,Good\n", "utf-8")
    res = ws.import_images(root, "spaces", labels=str(lab))
    assert res.dataset.stats["labels"] == {"scratch": 2, "good": 1, "Good": 1}
    stripped = [n for n in res.notes if "spaces before or after" in n]
    assert stripped and stripped[0].startswith("2 label(s) of labels.csv") and "'scratch ' -> 'scratch'" in stripped[0]
    assert any("'Good' (1) / 'good' (1)" in n for n in res.notes)


def test_labels_file_absolute_paths_inside_the_folder_match(ws, tmp_path):
    root = tmp_path / "flat"
    for i in range(6):
        _save(root / ("lineA" if i % 2 else "lineB") / f"Img_{i}.png", i)
    lab = tmp_path / "labels.csv"
    lab.write_text("file,label\n"
                   "lineB\\Img_0.png,good\n"                              # Windows separators
                   "./lineA/Img_1.png,good\n"                              # ./
                   f"{root / 'lineB' / 'Img_2.png'},spot\n"                 # absolute, inside the folder
                   f"{tmp_path / 'flat' / '..' / 'flat' / 'lineA' / 'Img_3.png'},spot\n"
                   "C:\\Users\\anna\\export\\flat\\lineB\\Img_4.png,spot\n"  # made on another machine
                   "linea/img_5.png,good\n"                                # another case: said, not matched
                   f"{tmp_path / 'elsewhere.png'},good\n", "utf-8")       # outside the folder: not matched
    res = ws.import_images(root, "abs", labels=str(lab))
    st = res.dataset.stats
    assert st["labels"] == {"good": 2, "spot": 3} and st["unlabelled"] == 1
    assert st["labels_unmatched"] == sorted(["linea/img_5.png", str(tmp_path / "elsewhere.png")])
    assert any(n.startswith("3 row(s) of the labels file give absolute paths") for n in res.notes)
    case = [n for n in res.notes if "differ only in case from a file" in n]
    assert case and "'linea/img_5.png' (the folder has 'lineA/Img_5.png')" in case[0]
    # the same folder zipped: the absolute paths of the folder on disk match by their part inside it
    import shutil

    z = shutil.make_archive(str(tmp_path / "flat"), "zip", tmp_path, "flat")
    assert ws.import_images(z, "abszip", labels=str(lab)).dataset.stats["labels"] == {"good": 2, "spot": 3}


def test_a_class_of_the_labels_file_that_gets_no_image_is_said_loudly(ws, tmp_path):
    root = tmp_path / "flat"
    for i in range(4):
        _save(root / f"{i}.png", i)
    lab = tmp_path / "labels.csv"
    lab.write_text("file,label\n0.png,good\n1.png,good\n/nowhere/x/2b.png,spot\n/nowhere/x/3b.png,spot\n", "utf-8")
    res = ws.import_images(root, "lost", labels=str(lab))
    assert res.dataset.stats["labels"] == {"good": 2}
    assert res.notes[0].startswith("WARNING: class(es) 'spot' (2 row(s)) of the labels file got no image at all")


def test_labels_file_with_a_chinese_or_unknown_header_or_none(ws, tmp_path):
    root = tmp_path / "flat"
    for i in range(4):
        _save(root / f"IMG_{i}.png", i)
    rows = "".join(f"IMG_{i}.png,{'合格' if i % 2 else '划痕'}\n" for i in range(4))
    zh = tmp_path / "zh.csv"
    zh.write_bytes(("文件,标签\n" + rows).encode("gbk"))
    res = ws.import_images(root, "zh", labels=str(zh))
    assert res.dataset.stats["labels"] == {"合格": 2, "划痕": 2}
    other = tmp_path / "other.csv"
    other.write_bytes(("图号,结论\n" + rows).encode("gbk"))
    res = ws.import_images(root, "other", labels=str(other))
    assert res.dataset.stats["labels"] == {"合格": 2, "划痕": 2}
    assert any("names no known columns" in n and "first column was read as the image path" in n for n in res.notes)
    bare = tmp_path / "bare.csv"
    bare.write_text(rows, "utf-8")
    res = ws.import_images(root, "bare", labels=str(bare))
    assert res.dataset.stats["labels"] == {"合格": 2, "划痕": 2}
    assert any("has no header row" in n for n in res.notes)
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b,c\nIMG_0.png,x,1\n", "utf-8")
    with pytest.raises(InvalidInput, match="expected columns 'file' and 'label'") as exc:
        ws.import_images(root, "wide", labels=str(wide))
    assert "Add a header row" not in (exc.value.hint or "") and "in the first row" in exc.value.hint
