"""CSV predictions written for Excel: a byte-order mark only when the output holds non-ASCII text."""

from __future__ import annotations

import pandas as pd

from modelfab.batch import csv_encoding, write_frame


def test_a_byte_order_mark_only_for_non_ascii_output(tmp_path):
    write_frame(pd.DataFrame({"file": ["a.png"], "prediction": ["污点"], "proba_污点": [0.9]}), tmp_path / "zh.csv")
    assert (tmp_path / "zh.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(tmp_path / "zh.csv")["prediction"].tolist() == ["污点"]
    write_frame(pd.DataFrame({"file": ["a.png"], "prediction": ["good"]}), tmp_path / "en.csv")
    assert (tmp_path / "en.csv").read_bytes().startswith(b"file,")
    assert csv_encoding(pd.DataFrame({"x": [1.5], "y": ["scratch"]})) == "utf-8"
