"""The labelling assistant on a table with a text column: it must read the words, not codes of whole texts."""

from types import SimpleNamespace

import numpy as np

from modelfab.modalities.text.synth import make_reports
from modelfab.web.labeling import Labeling
from modelfab.workspace import Workspace


def test_assistant_suggests_from_the_text_column(tmp_path):
    df = make_reports(90, lang="en", noise=0.0, seed=3)   # 3 classes, told apart by their words only
    df["hours"] = np.random.default_rng(0).permutation(df["hours"].to_numpy())   # no signal beside the text
    df.loc[30:, "label"] = None                               # 30 labelled, 60 to label
    df.to_csv(tmp_path / "reports.csv", index=False)
    with Workspace.init(tmp_path / "ws") as ws:
        ds = ws.import_table(tmp_path / "reports.csv", name="reports").dataset
        assert {c["name"]: c["kind"] for c in ds.schema["columns"]}["text"] == "text"
        lab = Labeling(SimpleNamespace(ws=ws))
        items = lab.items(ds, "label")
        res = lab.assist(ds, items, {}, 0)
        truth = make_reports(90, lang="en", noise=0.0, seed=3)["label"].to_numpy()
        hits = np.mean([s == t for s, t in zip(res["suggest"][30:], truth[30:])])
        # measured: 1.00 suggested right, cross-validated 0.97; codes of whole texts gave 0.28 / 0.17 (chance: 0.33)
        assert res["ready"] and hits >= 0.7, (hits, res["cv_accuracy"])
        assert res["cv_accuracy"] >= 0.6
