"""Which task `--task auto` trains on a dataset of files, and which label is the good one."""

from __future__ import annotations

from modelfab.training import choose_task, resolve_normal_label


def _auto(labels: set[str], normal: str = "normal") -> tuple[str, str]:
    normal = resolve_normal_label(labels, normal)
    return choose_task("auto", ("auto", "classification", "anomaly"), "images", labels, normal_label=normal,
                       max_false_alarm=0.01), normal


def test_a_dataset_of_good_parts_only_trains_a_detector_of_its_one_label():
    """A folder of good parts only ('good', '合格') asked for classification under auto and failed."""
    assert _auto({"good"}) == ("anomaly", "good")
    assert _auto({"合格"}) == ("anomaly", "合格")
    assert _auto(set()) == ("anomaly", "normal")
    assert _auto({"normal", "abnormal"}) == ("anomaly", "normal")
    assert _auto({"OK", "anomaly"}) == ("anomaly", "OK")  # the one label that reads as good
    assert _auto({"good", "scratch", "spot"}) == ("classification", "good")
    assert _auto({"scratch", "spot"}) == ("classification", "normal")
    assert _auto({"good", "ok", "scratch"}) == ("classification", "normal")  # two good-sounding labels: no guess
    assert resolve_normal_label({"good", "bad"}, "bad") == "bad"  # a label the user named is never replaced
    assert resolve_normal_label({"normal", "good"}, "normal") == "normal"
