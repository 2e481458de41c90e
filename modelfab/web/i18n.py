"""Message catalogues: one JSON file per language under ``i18n/``; every user-visible string goes through here."""

from __future__ import annotations

import json
import string
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("en", "zh")
DEFAULT = "en"
CATALOGUE_DIR = Path(__file__).with_name("i18n")


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    with open(CATALOGUE_DIR / f"{lang}.json", encoding="utf-8") as fh:
        return json.load(fh)


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
        """Messages whose key starts with ``prefix`` (for the page's script)."""
        return {k: v for k, v in self.messages.items() if k.startswith(prefix)}
