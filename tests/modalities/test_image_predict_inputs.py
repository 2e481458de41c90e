"""Image prediction inputs: same-name files beside each other are all scored, masks left out are said, the class
folder's label is kept beside the prediction, 12-bit frames in 16-bit files are noted, uploads without an
extension are sniffed; class spellings said at training; the cross-fit gives way to the budget (findings F3, F6,
F12, F21, F22, F24)."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from modelfab.errors import InvalidInput
from modelfab.modalities.image.synth import make_surface
from modelfab.workspace import Workspace


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts") / "parts"
    for i in range(14):
        d = root / ("good" if i < 10 else "Good")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_surface(48, seed=i)[0]).save(d / f"g{i}.png")
    (root / "spot").mkdir()
    for i in range(3):
        Image.fromarray(make_surface(48, seed=100 + i, defect="spot")[0]).save(root / "spot" / f"s{i}.png")
    w = Workspace.init(tmp_path_factory.mktemp("ws") / "ws")
    w.import_images(root, "parts")
    m = w.train("parts", task="anomaly", normal_label="good", budget=20, name="parts")
    yield m
    w.close()


def test_training_says_the_other_spellings_of_the_normal_label(model):
    notes = model.manifest["training"]["notes"]
    assert any("differ only in case" in n and "'Good' (4) / 'good' (10)" in n for n in notes)
    assert any(n.startswith("Only images labelled 'good' are learnt as good: those labelled 'Good' (4) count as "
                            "defective") for n in notes)


def _folder_with_pairs(root):
    good = root / "good"
    good.mkdir(parents=True)
    for i in range(3):  # a raw TIFF and its PNG preview, per part: both are images
        a = make_surface(48, seed=200 + i)[0]
        Image.fromarray(a).save(good / f"p{i}.tif")
        Image.fromarray(a).save(good / f"p{i}.png")
    a = make_surface(48, seed=300)[0]
    Image.fromarray(a).save(good / "q.jpg")
    mask = np.zeros((48, 48), np.uint8)
    mask[5:10, 5:10] = 255
    Image.fromarray(mask).save(good / "q.png")          # same name, looks like a mask: left out, said
    Image.fromarray(a).save(root / "top.png")
    Image.fromarray(mask).save(root / "top_mask.png")    # a mask by its name: left out, said
    return root


def test_same_name_pictures_are_all_scored_and_masks_left_out_are_said(model, tmp_path):
    root = _folder_with_pairs(tmp_path / "pairs")
    out = model.predictor.predict_files(root)
    assert sorted(out["file"]) == ["good/p0.png", "good/p0.tif", "good/p1.png", "good/p1.tif", "good/p2.png",
                                   "good/p2.tif", "good/q.jpg", "top.png"]
    assert (out["error"] == "").all()
    both = out.set_index("file")["score"]
    assert np.isclose(both["good/p0.png"], both["good/p0.tif"])
    note = out.attrs["notes"][0]
    assert note.startswith("2 file(s) were not scored: good/q.png (the defect mask of good/q.jpg); top_mask.png "
                           "(the defect mask of top.png)")
    z = tmp_path / "pairs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(root.rglob("*.*")):
            zf.write(p, p.relative_to(root).as_posix())
    zipped = model.predictor.predict_files(z)
    assert len(zipped) == 8 and "pairs.zip/good/q.png (the defect mask" in zipped.attrs["notes"][0]
    # the CLI says it too
    from modelfab.modalities.image_model import batch_predict

    result = batch_predict(model.ws, model, [root], tmp_path / "p.csv")
    assert result["rows"] == 8 and result["notes"][0].startswith("2 file(s) were not scored")


def test_the_class_folder_is_kept_beside_the_prediction(model, tmp_path):
    root = _folder_with_pairs(tmp_path / "pairs")
    out = model.predictor.predict_files([root, root / "top.png"])
    assert list(out.columns)[-1] == "folder_label"
    labels = dict(zip(out["file"], out["folder_label"]))
    assert labels["pairs/good/p0.png"] == "good" and labels["pairs/top.png"] == "" and labels["top.png"] == ""
    single = model.predictor.predict_files(root / "top.png")  # files alone: no folder, no column
    assert "folder_label" not in single.columns


def test_a_12_bit_frame_in_a_16_bit_file_gets_a_note(model, tmp_path):
    a = make_surface(48, seed=3)[0].astype(np.uint16)
    Image.fromarray(a * 16).save(tmp_path / "g12.png")  # 12-bit values (max 4080)
    Image.fromarray(a * 257).save(tmp_path / "g16.png")  # the full 16-bit range
    out = model.predictor.predict_files([tmp_path / "g12.png", tmp_path / "g16.png"]).set_index("file")
    assert out.loc["g12.png", "note"].startswith("stored as 12-bit values in a 16-bit file (none of the training "
                                                 "images was)")
    assert out.loc["g16.png", "note"] == ""
    assert model.manifest["image"]["low_bit_images"] == 0 and model.manifest["image"]["images"] == 17


def test_an_upload_without_an_extension_is_sniffed(model):
    buf = io.BytesIO()
    Image.fromarray(make_surface(48, seed=3)[0]).save(buf, format="PNG")
    row = model.predictor.predict_bytes(buf.getvalue(), "blob")
    assert row["file"] == "blob" and row["score"] > 0
    with pytest.raises(InvalidInput, match="expected a JPEG, PNG, BMP or TIFF image, got text"):
        model.predictor.predict_bytes(b"hello, world", "blob")
    with pytest.raises(InvalidInput, match="Upload an image"):
        model.predictor.predict_bytes(buf.getvalue(), "x.txt")


def test_cross_fitting_gives_way_when_a_fit_is_slower_than_guessed():
    from modelfab.training_image_few import rest_fits

    # the tester's run: the first of 4 folds took 12 s on a busy machine (3 folds + the kept model to go), 49
    # defective images, 43 s of the budget left
    assert not rest_fits(12.0, 4, 0.06 * 49, 43.0)
    assert rest_fits(4.0, 4, 0.06 * 49, 43.0)
