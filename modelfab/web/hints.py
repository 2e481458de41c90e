"""Hints of modelfab's errors that name a command-line flag or command, in words that fit the browser.

The core's messages end with hints for the CLI ("Pass --normal-label ...", "See `modelfab models list`.");
shown in the web UI they point to the form or page that does the same.
"""

from __future__ import annotations

import re

# an English hint sentence of the core -> the key of what the browser says instead
BROWSER_HINTS = (
    (re.compile(r"Pass --normal-label with the label of [^.]*\."), "hint.normal_label"),
    (re.compile(r"See `modelfab models list`\."), "hint.models_page"),
    (re.compile(r"See `modelfab data list`\."), "hint.datasets_page"),
    (re.compile(r"See `modelfab tokens list`\."), "hint.tokens_page"),
)


def for_browser(text: str | None, t) -> str | None:
    """``text`` (an error message with its hint) with CLI hints put in the browser's words (``t``: translator)."""
    if not text:
        return text
    for pattern, key in BROWSER_HINTS:
        text = pattern.sub(lambda _m, key=key: t(key), text)
    return text
