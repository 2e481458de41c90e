"""Every user-visible string goes through the gettext catalogues, and both languages translate every key."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from modelfab.web.i18n import LANGUAGES, LOCALE_DIR, LOCALES, catalogue, pick_language, placeholders, po_path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "modelfab" / "web"
TEMPLATES = sorted((WEB / "templates").glob("*.html"))


def _keys_used() -> set[str]:
    keys: set[str] = set()
    for tpl in TEMPLATES:
        keys |= set(re.findall(r"\bt\('([a-z0-9_.]+)'", tpl.read_text("utf-8")))
    # the app is split into modules (app.py, site.py, routes/*.py, ...): read them all
    app = "\n".join(p.read_text("utf-8") for p in sorted(WEB.rglob("*.py")))
    keys |= set(re.findall(r't_of\(request\)\("([a-z0-9_.]+)"', app))
    keys |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', app))
    keys |= set(re.findall(r'PageError\(\d+, "([a-z0-9_.]+)"', app))
    keys |= set(re.findall(r'"(error\.[a-z_]+)"', app))
    keys |= set(re.findall(r'\bT\("([a-z0-9_.]+)"', (WEB / "static" / "app.js").read_text("utf-8")))
    return keys


def _dynamic_keys() -> set[str]:
    """Keys built from a prefix and a value in templates and script: every value needs its key."""
    from modelfab.modalities.tabular import KINDS
    from modelfab.web.app import BUDGETS
    from modelfab.web.store import ROLES
    from modelfab.web.worker import RUNNERS

    states = ("queued", "running", "cancelling", "cancelled", "done", "failed")
    tasks = ("auto", "classification", "regression", "anomaly")
    keys = {f"role.{r}" for r in ROLES} | {f"state.{s}" for s in states} | {f"job.js.state_{s}" for s in states}
    keys |= {f"task.{x}" for x in tasks} | {f"train.js.task_{x}" for x in tasks[1:]}
    keys |= {f"stage.{x}" for x in ("none", "production", "archived")} | {f"kind.{k}" for k in ("table", "signal", "image", "series")}
    keys |= {f"colkind.{k}" for k in KINDS} | {f"train.js.kind_{k}" for k in KINDS}
    keys |= {f"metric_help.{k}" for k in ("auc", "pauc", "roc_auc", "accuracy", "balanced_accuracy", "file_accuracy",
                                          "f1_macro", "recall", "precision", "false_alarm_rate", "miss_rate", "r2",
                                          "rmse", "mae")}
    keys |= {f"predict.drop_{k}" for k in ("recording", "image", "table", "series")}
    keys |= {f"budget.{v}" for v, _ in BUDGETS} | {f"lang.{x}" for x in LANGUAGES} | {f"jobkind.{k}" for k in RUNNERS}
    return keys


def test_catalogues_have_the_same_keys_and_placeholders():
    en, zh = catalogue("en"), catalogue("zh")
    assert set(en) == set(zh), f"only in en: {sorted(set(en) - set(zh))}; only in zh: {sorted(set(zh) - set(en))}"
    for key in en:
        assert en[key].strip() and zh[key].strip(), key
        assert placeholders(en[key]) == placeholders(zh[key]), key
    assert {p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")} == set(LOCALES.values())
    assert set(LOCALES) == set(LANGUAGES)


def _read_po(lang: str):
    from babel.messages.pofile import read_po

    with open(po_path(lang), "rb") as fh:
        return read_po(fh, locale=LOCALES[lang], abort_invalid=True)


def _extracted() -> dict[str, str]:
    """What `pybabel extract -F babel.cfg -k t modelfab/web` finds: msgid -> first place it is used."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    found: dict[str, str] = {}
    keywords = dict(DEFAULT_KEYWORDS, t=None)
    for filename, lineno, msgid, _comments, _context in extract_from_dir(str(WEB), method_map, options_map,
                                                                         keywords=keywords):
        found.setdefault(msgid if isinstance(msgid, str) else msgid[0], f"{filename}:{lineno}")
    return found


def test_babel_extraction_finds_every_string_and_each_is_translated():
    found = _extracted()
    places = {v.split(":")[0].split("/")[0] for v in found.values()}
    assert {"templates", "static", "routes"} <= places and len(found) > 250, places  # templates, script, python
    # a msgid ending in "." or "_" is the start of a key built at run time ("state." ~ job.state)
    prefixes = {k for k in found if k.endswith((".", "_"))}
    keys = set(found) - prefixes
    dynamic = _dynamic_keys()
    for p in prefixes:
        assert any(k.startswith(p) for k in dynamic), f"{p!r} ({found[p]}) builds keys the tests do not list"
    for lang in LANGUAGES:
        entries = {m.id: m for m in _read_po(lang) if m.id}
        problems = []
        for k in sorted(keys | dynamic):
            m = entries.get(k)
            where = found.get(k, "a key built at run time")
            if m is None:
                problems.append(f"{k} ({where}) is not in {po_path(lang).relative_to(ROOT)}")
            elif not str(m.string).strip():
                problems.append(f"{k} ({where}) is untranslated (empty msgstr) in {lang}")
            elif m.fuzzy:
                problems.append(f"{k} ({where}) is marked fuzzy in {lang}: check the text and drop the flag")
        assert not problems, "\n".join(problems)
    # the extraction sees at least what a plain search of the sources sees (babel.cfg covers every file)
    searched = {k for k in _keys_used() if not k.endswith((".", "_")) and k != "error.html"}
    assert not searched - keys, sorted(searched - keys)


def test_every_key_used_exists_in_every_language():
    used = {k for k in _keys_used() if not k.endswith((".", "_")) and k != "error.html"} | _dynamic_keys()
    assert len(used) > 250
    for lang in LANGUAGES:
        missing = sorted(used - set(catalogue(lang)))
        assert not missing, f"{lang} lacks {missing}"


def test_chinese_is_actually_translated():
    en, zh = catalogue("en"), catalogue("zh")
    same = [k for k in en if en[k] == zh[k] and re.search(r"[A-Za-z]{4,}", en[k])]
    # product and language names, codes and examples may stay as they are
    assert set(same) <= {"app.name", "lang.en", "lang.zh", "unit.hz", "metric.r2"}, same


class _Text(HTMLParser):
    SKIP = {"pre", "code", "kbd", "script", "style", "var"}

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1
        for name, value in attrs:  # visible attributes must come from the catalogue too
            if name in ("title", "placeholder", "alt", "aria-label") and value:
                self.chunks.append(value)

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.depth = max(0, self.depth - 1)

    def handle_data(self, data):
        if not self.depth:
            self.chunks.append(data)


@pytest.mark.parametrize("tpl", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_hard_coded_text(tpl):
    src = tpl.read_text("utf-8")
    src = re.sub(r"\{#.*?#\}", "", src, flags=re.S)
    src = re.sub(r"\{\{.*?\}\}", "", src, flags=re.S)
    src = re.sub(r"\{%.*?%\}", "", src, flags=re.S)
    parser = _Text()
    parser.feed(src)
    text = " ".join(parser.chunks)
    words = re.findall(r"[^\W\d_]{2,}", text)
    assert not words, f"{tpl.name}: text outside the catalogue: {words[:10]}"


def test_script_has_no_hard_coded_text():
    js = (WEB / "static" / "app.js").read_text("utf-8")
    js = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.S)
    # every place the script writes text for people takes it from T(...)
    sinks = [r'toast\(\s*"[^"]*[A-Za-z]', r'setText\([^,()]+,\s*"[^"]*[A-Za-z]', r'textContent\s*=\s*"[^"]*[A-Za-z]',
             r'createTextNode\(\s*"[^"]*[A-Za-z]', r'innerHTML\s*=\s*"[^"]+"', r'\balert\(',
             r'\bconfirm\((?!form\.getAttribute\("data-confirm"\)\))']  # a confirm says the page's translated text
    found = [m.group(0) for pat in sinks for m in re.finditer(pat, js)]
    assert not found, found
    assert "T(" in js


def test_language_comes_from_the_browser_and_can_be_switched(web):
    assert pick_language(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert pick_language(None, "en-US,en;q=0.9,zh;q=0.8") == "en"
    assert pick_language(None, "de-DE,zh-Hans;q=0.5") == "zh"
    assert pick_language(None, "fr") == "en" and pick_language("zh", "en") == "zh" and pick_language("xx", "") == "en"
    c = web.client("admin")
    page = c.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert '<html lang="zh-CN">' in page and "概览" in page and "退出登录" in page
    r = c.post("/lang", data={"csrf_token": c.csrf, "lang": "zh", "next": "/models"})
    assert r.status_code == 303 and r.headers["location"] == "/models" and "mf_lang=zh" in r.headers["set-cookie"]
    assert "模型" in c.get("/models", headers={"Accept-Language": "en"}).text  # the choice beats the browser
    c.post("/lang", data={"csrf_token": c.csrf, "lang": "en"})
    assert "Overview" in c.get("/").text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pages_show_no_raw_keys(web, lang):
    c = web.client("admin")
    c.cookies.set("mf_lang", lang)
    keys = set(catalogue(lang))
    for path in ("/", "/import", "/train", "/models", "/predict", "/users", "/nope-not-found"):
        html = re.sub(r"<script.*?</script>", " ", c.get(path).text, flags=re.S)
        text = re.sub(r"<[^>]+>", " ", html)
        leaked = [k for k in keys if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", text)]
        assert not leaked, (path, leaked)
    assert json.loads(json.dumps(catalogue(lang)))  # plain JSON, loadable by the page script
    data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', c.get("/models").text, re.S)
    messages = json.loads(data.group(1))["messages"]  # the page script's catalogue, from the PO data
    assert messages and all(messages[k] == catalogue(lang)[k] for k in messages)
