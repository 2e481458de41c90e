"""MIMII/DCASE file-name conventions at import: normal/anomaly labels from names, several machines pooled."""

from __future__ import annotations

import pytest
import soundfile as sf

from modelfab.errors import InvalidInput
from modelfab.modalities.signal import make_machine_sound
from modelfab.modalities.signal.naming import label_from_name, machine_of
from modelfab.workspace import Workspace

SR = 16000


def _flat_mimii(folder, n=4):
    folder.mkdir(parents=True)
    for mid in (0, 2):
        for i in range(n):
            for kind, word in (("normal", "normal"), ("rubbing", "anomaly")):
                x = make_machine_sound(kind, seconds=2.0, sample_rate=SR, seed=100 * mid + i, machine_id=mid)
                sf.write(str(folder / f"{word}_id_{mid:02d}_{i:08d}.wav"), x, SR, subtype="PCM_16")
    return folder


def test_names_give_labels_and_machines():
    assert label_from_name("normal_id_00_00000001.wav") == "normal"
    assert label_from_name("anomaly_id_02_00000003.wav") == "abnormal"
    assert label_from_name("section_00_source_test_anomaly_0001_vel_8.wav") == "abnormal"
    assert label_from_name("section_00_target_train_normal_0003_x.wav") == "normal"
    assert label_from_name("abnormality_0001.wav") is None and label_from_name("supernormal_1.wav") is None
    assert machine_of("anomaly_id_02_00000003.wav") == "id_02"
    assert machine_of("section_01_source_test_normal_0001.wav") == "section_01"
    assert machine_of("fan/id_04/normal/00000001.wav") == "id_04"


def test_flat_mimii_folder_is_labelled_from_names_with_notes(tmp_path):
    folder = _flat_mimii(tmp_path / "flat")
    w = Workspace.init(tmp_path / "ws")
    try:
        ds = w.import_recordings(folder, "flat").dataset
        assert ds.stats["labels"] == {"abnormal": 8, "normal": 8} and ds.stats["unlabelled"] == 0
        notes = " ".join(ds.stats["notes"])
        assert "labels were taken from the file names" in notes and "--labels none" in notes
        assert "2 machines or sections" in notes and "id_00 (8), id_02 (8)" in notes and "One model per machine" in notes
        m = w.train("flat", task="anomaly", budget=4)
        assert m.metrics["n_anomaly"] > 0  # the anomaly_ files are the fault side, not learnt as normal
        assert any("machines or sections" in n for n in m.manifest["training"]["notes"])
        one = w.import_recordings(folder, "one", labels="regex:^(normal|anomaly)_id_00_").dataset
        assert one.stats["labels"] == {"anomaly": 4, "normal": 4} and one.stats["unlabelled"] == 8
        with pytest.raises(InvalidInput, match=r"matches none of the 16 file names.*--labels none"):
            w.import_recordings(folder, "bad", labels="regex:^id_(\\d+)")
    finally:
        w.close()


def test_task_auto_is_a_detector_for_normal_and_anomaly_labels():
    """DCASE/MIMII call the faulty clips 'anomaly': with 'normal' beside them --task auto trains a detector, as it
    does for 'abnormal'; other pairs of labels are classes."""
    from modelfab.training import choose_task

    def auto(labels):
        return choose_task("auto", ("auto", "classification", "anomaly"), "recordings", set(labels),
                           normal_label="normal", max_false_alarm=0.01)

    assert auto({"normal", "anomaly"}) == auto({"normal", "abnormal"}) == auto({"normal"}) == auto(set()) == "anomaly"
    assert auto({"normal", "inner", "outer"}) == auto({"ok", "anomaly"}) == "classification"
