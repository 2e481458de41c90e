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
    # --skip-bad is the import form's checkbox "Skip files that cannot be read"
    (re.compile(r"Fix or remove them, or pass --skip-bad to import the rest\."), "hint.skip_bad"),
    (re.compile(r"Fix or remove the annotation file, or pass --skip-bad to [^.]*\."), "hint.skip_bad_annotation"),
    (re.compile(r"Fix or remove that series; or import with --skip-bad \(Python: skip_bad=True\) to leave out the "
                r"series that cannot be read \(the import lists them\)\."), "hint.skip_bad_series"),
)


# whole messages of the core (and of the upload checks) the browser shows in its own language: pattern -> key,
# the pattern's named groups fill the translation's placeholders
BROWSER_MESSAGES = (
    (re.compile(r"The file is not a readable zip archive\."), "upload.bad_zip"),
    (re.compile(r"Expected a file ending in (?P<expected>[^;]+); got (?P<got>'[^']*'|\"[^\"]*\")\."), "upload.wrong_suffix"),
    (re.compile(r"(?P<file>[^:]+): cannot tell the text encoding \(not UTF-8, GBK/GB18030 or another common one\)\."
                r"(?: Save the file as UTF-8 CSV and import it again\.)?"), "upload.encoding"),
    (re.compile(r"(?P<file>[^:]+): expected an Excel \.xlsx file \(a zip archive\) but got something else\."
                r"(?: Save it again from Excel as \.xlsx, or export CSV\.)?"), "upload.not_xlsx"),
    (re.compile(r"(?P<file>[^:]+): the old Excel \.xls format is not supported\."
                r"(?: Open it in Excel or LibreOffice and save as \.xlsx or \.csv\.)?"), "upload.xls_old"),
)


def for_browser(text: str | None, t) -> str | None:
    """``text`` (an error message with its hint) with CLI hints put in the browser's words (``t``: translator);
    messages the browser knows whole are said in its language."""
    if not text:
        return text
    for pattern, key in BROWSER_MESSAGES:
        m = pattern.fullmatch(text.strip())
        if m:
            return t(key, **m.groupdict())
    for pattern, key in BROWSER_HINTS:
        text = pattern.sub(lambda _m, key=key: t(key), text)
    return text
