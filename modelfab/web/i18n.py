"""Message catalogues: gettext PO files under ``locale/<locale>/LC_MESSAGES/messages.po``, read with Babel.

The msgid of every entry is a key (``nav.home``), its msgstr the text, with
``{name}`` placeholders filled by ``str.format``. Every user-visible string of
templates, routes and the page script goes through here; the page script gets
the messages it needs as JSON in the page (``Translator.subset``).
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("en", "zh")
DEFAULT = "en"
LOCALE_DIR = Path(__file__).with_name("locale")
# the UI's language code -> the gettext locale folder it is read from
LOCALES = {"en": "en", "zh": "zh_Hans"}
DOMAIN = "messages"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def N_(key: str) -> str:  # noqa: N802 - gettext's name for "mark for extraction, translate later"
    """Mark a key for extraction where it is chosen now and translated later (``t(key)``)."""
    return key


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """key -> text of one language (read once per process). Fuzzy or empty entries are left out, as
    gettext does, so that they fall back to English (and the tests name them)."""
    from babel.messages.pofile import read_po

    with open(po_path(lang), "rb") as fh:
        cat = read_po(fh, locale=LOCALES[lang], domain=DOMAIN, abort_invalid=True)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string and not m.fuzzy}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie if valid, else the best of Accept-Language (zh-CN, zh-Hans, zh ... -> zh), else English."""
    if cookie in LANGUAGES:
        return cookie
    best, best_q = DEFAULT, -1.0
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q - i * 1e-6  # ties: the first listed wins
    return best


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self.messages = catalogue(self.lang)

    def __call__(self, key: str, **params) -> str:
        text = self.messages.get(key)
        if text is None:  # a missing key is a bug (tests check both catalogues); show the key, never crash
            text = catalogue(DEFAULT).get(key, key)
        if params:
            try:
                return text.format(**params)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    def subset(self, prefix: str) -> dict[str, str]:
        """Messages whose key starts with ``prefix`` (the JSON catalogue of the page's script)."""
        own = {k: v for k, v in self.messages.items() if k.startswith(prefix)}
        if self.lang == DEFAULT:
            return own
        return {k: v for k, v in catalogue(DEFAULT).items() if k.startswith(prefix)} | own
