"""A model's quality in words on the lists and the model page (with a flag when it is close to guessing), and
"Try it" with a text box for text models, shares as percentages, warnings and a hint naming what the model takes."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest

from modelfab.web.quality import quality

from .conftest import module_site
from .test_ui_robustness import _browser_on

# metrics as the tester's models had them (ws3): the search ranked by log loss or AUC
FAINT = {"accuracy": 0.5, "balanced_accuracy": 0.5, "labels": ["good", "scratch", "spot"], "log_loss": 1.0008, "n": 12,
         "per_class": {"good": {"recall": 0.75, "support": 4}, "scratch": {"recall": 0.25, "support": 4},
                       "spot": {"recall": 0.5, "support": 4}}, "roc_auc": 0.698}
SURF = {"accuracy": 1.0, "balanced_accuracy": 1.0, "labels": ["good", "scratch", "spot"], "log_loss": 7.6e-05, "n": 15,
        "per_class": {k: {"recall": 1.0, "support": 5} for k in ("good", "scratch", "spot")}}
GOOD_ONLY = {"expected_false_alarm": 0.0, "false_alarm_rate": 0.0, "false_alarm_upper_95": 0.072, "n_normal": 40}
ANOM = {"auc": 1.0, "false_alarm_rate": 0.04, "recall": 0.96, "miss_rate": 0.04, "n": 75, "n_anomaly": 50, "n_normal": 25}
RARE = {"accuracy": 0.9, "balanced_accuracy": 0.55, "labels": ["defect", "ok"], "n": 100,
        "per_class": {"defect": {"recall": 0.1, "support": 10}, "ok": {"recall": 1.0, "support": 90}}}


def test_every_kind_has_a_headline_a_person_reads():
    q = quality("classification", SURF)
    assert (q["metric"], q["value"], q["weak"]) == ("accuracy", 1.0, None)  # not "Log loss 7.6e-05"
    q = quality("classification", FAINT)
    assert q["metric"] == "accuracy" and q["weak"] and q["weak"][0] == "quality.weak_majority"
    q = quality("classification", RARE)  # 90% by always answering "ok": balanced accuracy, defects found, flagged
    assert q["metric"] == "balanced_accuracy" and q["found"] == {"label": "defect", "n": 1, "of": 10} and q["weak"]
    q = quality("anomaly", ANOM)
    assert (q["metric"], q["value"], q["false_alarms"], q["weak"]) == ("recall", 0.96, 0.04, None)
    q = quality("anomaly", GOOD_ONLY)  # trained and checked on good items only: the false alarms are what is known
    assert q["metric"] == "false_alarm_rate" and q["normal_only"] and q["weak"] is None
    assert quality("anomaly", dict(ANOM, auc=0.55))["weak"][0] == "quality.weak_auc"
    assert quality("regression", {"r2": 0.92, "rmse": 1.2})["metric"] == "r2"
    assert quality("regression", {"r2": 0.05})["weak"][0] == "quality.weak_r2"
    # a large holdout (20,000 rows): the binomial tail overflowed a float ("int too large to convert to float")
    per = {"ok": {"support": 11000, "recall": 0.5}, "ng": {"support": 9000, "recall": 0.4}}
    big = quality("classification", {"accuracy": 0.455, "balanced_accuracy": 0.45, "n": 20000, "per_class": per})
    assert big["weak"] and big["weak"][0] == "quality.weak_majority"
    good = {"accuracy": 0.9, "balanced_accuracy": 0.9, "n": 20000, "per_class": per}
    assert quality("classification", good)["weak"] is None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from module_site(tmp_path_factory, "quality")


@pytest.fixture(scope="module")
def text_model(site):
    """A text classifier (a text column and a number), trained for a few seconds."""
    import random

    rng = random.Random(4)
    words = {"leak": ["oil leak", "dripping fluid", "seal leaking", "puddle under pump"],
             "electrical": ["fuse blown", "no power", "sparks at motor", "breaker tripped"]}
    rows = ["text,hours,kind"]
    for i in range(80):
        kind = "leak" if i % 2 else "electrical"
        extra = " ".join(rng.sample(["again", "today", "on line 3", "night shift", "reported by operator", "urgent",
                                     "second time this week", "near the press", "after restart"], 3))
        rows.append(f"{rng.choice(words[kind])} {extra} ticket {i},{rng.randint(1, 9)},{kind}")
    csv = site.tmp / "tickets.csv"
    csv.write_text("\n".join(rows) + "\n")
    ds = site.ws.import_table(csv, name="tickets").dataset
    return site.ws.train(ds, target="kind", budget=8, name="tickets")


def _faint_copy(site, model, name: str, metrics: dict, task: str = "classification"):
    """A model row with the tester's metrics on a real package (what the pages read of a faint model)."""
    man = dict(model.manifest, metric="log_loss")
    site.ws.meta.add_model(name=name, task=task, dataset_id=model.row["dataset_id"], package_sha=model.row["package_sha"],
                           manifest=man, metrics=metrics, created_by="admin1", refs=[])
    return site.ws.model(name)


def test_lists_show_accuracy_and_flag_a_model_close_to_guessing(site, text_model):
    faint = _faint_copy(site, text_model, "faint-cls", FAINT)
    _faint_copy(site, text_model, "good-auto", GOOD_ONLY, task="anomaly")
    c = site.client("admin")
    for url in ("/models", "/"):
        page = c.get(url).text
        cells = re.findall(r'<td class="quality-cell">(.*?)</td>', page, re.S)
        text = " | ".join(re.sub(r"<[^>]+>", "", x).strip() for x in cells)
        assert "Log loss" not in text, text
        assert "Accuracy 50.0%" in text and "close to guessing" in text, text
        assert re.search(r"False alarms 0\.0%\s+\(checked on normal items only\)", text), text  # was blank
    page = c.get(f"/models/{faint.name}/{faint.version}").text
    warn = re.search(r'id="weak-model">(.*?)</p>', page, re.S)
    assert warn and "close to guessing" in warn.group(1) and "33%" in warn.group(1), page[:2000]
    # the warning sits by the Promote button, before the facts
    assert page.index('id="weak-model"') < page.index('class="card facts"')
    good = c.get(f"/models/{text_model.name}/{text_model.version}").text
    assert 'id="weak-model"' not in good
    c.cookies.set("mf_lang", "zh")
    assert "接近瞎猜" in c.get("/models").text
    c.cookies.set("mf_lang", "en")


def test_try_a_text_model_by_typing_with_a_warning_for_no_text(site, text_model):
    c = site.client("viewer")
    ref = text_model.ref
    page = c.get(f"/predict?model={quote(ref)}").text
    assert f'data-fields-for="{ref}"' in page and 'name="field:text"' in page and 'name="field:hours"' in page
    by_name = c.get(f"/predict?model={quote(text_model.name)}").text  # a name alone picks that model's version
    assert f'<option value="{ref}" data-takes=' in by_name
    assert re.search(rf'<option value="{re.escape(ref)}" data-takes="[^"]*" selected>', by_name)
    r = c.post("/predict", data={"csrf_token": c.csrf, "model": ref, "field:text": "oil leak under the pump",
                                 "field:hours": "3"})
    assert r.status_code == 200, r.text[:500]
    assert re.search(r'id="verdict">leak<', r.text) and 'id="predict-warning"' not in r.text
    assert re.search(r"<td>leak</td><td class=\"num\">\d+\.\d%</td>", r.text)
    r = c.post("/predict", data={"csrf_token": c.csrf, "model": ref, "field:text": "  ", "field:hours": "3"})
    assert 'id="predict-warning"' in r.text and "no text in" in r.text
    # a table: probabilities read as percentages, and a row without text is pointed out
    rows = b"text,hours\nfuse blown again,2\n,5\n"
    r = c.post("/predict", data={"csrf_token": c.csrf, "model": ref},
               files={"file": ("new.csv", rows, "text/csv")})
    table = re.search(r'id="prediction-table">(.*?)</table>', r.text, re.S).group(1)
    cells = [html.unescape(x) for x in re.findall(r"<td class=\"pred\">([^<]*)</td>", table)]
    assert cells and all(re.fullmatch(r"(\d+\.\d%|<0\.1%|>99\.9%|leak|electrical)", x) for x in cells), cells
    assert "predict-note" in r.text and "have no text" in r.text
    # a 0-byte file is said to be empty, not "choose a file"
    r = c.post("/predict", data={"csrf_token": c.csrf, "model": ref}, files={"file": ("new.csv", b"", "text/csv")})
    assert "new.csv is empty" in r.text and "Choose a file to score." not in r.text


def test_try_it_drop_zone_names_what_the_chosen_model_takes_in_a_browser(site, text_model):
    man = dict(text_model.manifest, modality="image")  # only its kind matters to the drop-down
    site.ws.meta.add_model(name="parts-photo", task="classification", dataset_id=None,
                           package_sha=text_model.row["package_sha"], manifest=man, metrics=SURF, created_by="x", refs=[])
    c = site.client("viewer")
    p, b, page = _browser_on(c)
    try:
        page.goto("http://testserver/predict?model=" + quote(text_model.ref))
        assert "table" in page.inner_text("#predict-drop-text")
        assert page.is_visible(f'[data-fields-for="{text_model.ref}"] textarea')
        # the file is optional when the record is typed
        assert page.evaluate("() => document.querySelector('#predict-form input[type=file]').required") is False
        page.select_option("#predict-model", "parts-photo:1")
        assert "image" in page.inner_text("#predict-drop-text").lower()
        assert not page.is_visible(f'[data-fields-for="{text_model.ref}"] textarea')
        assert page.evaluate("() => document.querySelector('#predict-form input[type=file]').required") is True
    finally:
        b.close()
        p.stop()
