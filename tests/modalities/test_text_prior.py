"""A text with no term the text model knows (empty, missing, only unseen words) scores the training class shares
(regression: the mean), not the linear model's intercepts, which after calibration could be near-certain of one
class; the prior survives saving and loading, and the training rows' scores follow the same rule."""

from __future__ import annotations

import numpy as np
import pytest

from modelfab.errors import IntegrityError
from modelfab.modalities.text.column import TextColumnModel, fit_text_column
from modelfab.modalities.text.synth import make_reports


@pytest.fixture(scope="module")
def fitted():
    df = make_reports(150, lang="en", seed=5)
    labels = sorted(df["label"].unique())
    y = df["label"].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    texts = df["text"].tolist()
    texts[:5] = [""] * 5  # training rows without text get the prior too
    model, oof, _, _ = fit_text_column(texts, y, column="text", n_classes=len(labels), labels=labels,
                                       metric="log_loss", seconds=5, seed=0)
    return model, oof, y


def test_no_known_term_scores_the_class_shares(fitted):
    model, oof, y = fitted
    shares = np.bincount(y) / len(y)
    for text in ("", "12345 zzqqxx", "\u2603"):
        np.testing.assert_allclose(model.scores([text])[0], shares)
    np.testing.assert_allclose(oof[:5], np.tile(shares, (5, 1)))
    known = model.scores(["oil leak under the gearbox"])[0]
    assert known.max() > 0.6  # texts with known terms are scored by the linear model as before


def test_prior_is_saved_and_loaded(fitted, tmp_path):
    model, _, y = fitted
    model.save(tmp_path, "text_0")
    back = TextColumnModel.load(tmp_path, "text_0")
    np.testing.assert_allclose(back.prior, model.prior)
    np.testing.assert_allclose(back.scores(["", "oil leak"]), model.scores(["", "oil leak"]))


def test_a_malformed_prior_is_an_integrity_error(fitted, tmp_path):
    import json

    model, _, _ = fitted
    model.save(tmp_path, "text_0")
    info = json.loads((tmp_path / "text_0.json").read_text("utf-8"))
    info["prior"] = [0.5]
    (tmp_path / "text_0.json").write_text(json.dumps(info), "utf-8")
    with pytest.raises(IntegrityError, match="'prior' must be 3 finite number"):
        TextColumnModel.load(tmp_path, "text_0")


def test_regression_prior_is_the_mean():
    df = make_reports(80, lang="en", seed=6)
    y = df["hours"].to_numpy(dtype=float)
    model, _, _, _ = fit_text_column(df["text"].tolist(), y, column="text", n_classes=0, labels=[], metric="r2",
                                     seconds=3, seed=0)
    np.testing.assert_allclose(model.scores([""]), [[y.mean()]])
