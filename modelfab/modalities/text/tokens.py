"""Text normalisation and the analyzers that turn one text into its terms.

The analyzer configuration is stored in the model package, so a loaded model
tokenises exactly as training did. Terms carry a block prefix: ``w:`` words and
word n-grams, ``c:`` character n-grams.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

from ...errors import InvalidInput, IntegrityError

MAX_TEXT_CHARS = 10_000  # longer texts are cut: their first and last 5,000 characters decide
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?|\d+(?:[.,]\d+)*|[!?]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_KEEP = re.compile(r"[^\W_]|[!?！？]")  # a segment with a letter, digit or ideograph (or ! ?) is a term


def normalise(text) -> str:
    """NFKC, lower case, whitespace collapsed, at most MAX_TEXT_CHARS characters: a longer text keeps its beginning
    and its end (a long report's conclusion, "cause: bearing worn", is usually last)."""
    if text is None:
        return ""
    s = str(text)
    if len(s) > 2 * MAX_TEXT_CHARS:
        s = s[:MAX_TEXT_CHARS] + " " + s[-MAX_TEXT_CHARS:]
    s = _SPACE.sub(" ", unicodedata.normalize("NFKC", s).lower()).strip()
    if len(s) <= MAX_TEXT_CHARS:
        return s
    half = MAX_TEXT_CHARS // 2
    return s[:half] + " " + s[-(MAX_TEXT_CHARS - half - 1):]


def cjk_share(texts: list[str]) -> float:
    """Share of CJK characters among the non-space characters of a sample of texts."""
    sample = "".join(texts[:2000])
    letters = len(sample) - sample.count(" ")
    return len(_CJK.findall(sample)) / letters if letters else 0.0


def _segmenter_version() -> str | None:
    try:
        from importlib.metadata import version

        import rjieba  # noqa: F401

        return version("rjieba")
    except Exception:  # not installed (the optional `text` extra)
        return None


@dataclass(frozen=True)
class AnalyzerConfig:
    lang: str  # "cjk" | "latin"
    words: str  # "regex" | "rjieba"
    word_ngrams: tuple[int, int]
    char_ngrams: tuple[int, int]
    segmenter_version: str | None = None

    @classmethod
    def for_texts(cls, texts: list[str]) -> "AnalyzerConfig":
        if cjk_share(texts) >= 0.3:
            ver = _segmenter_version()
            return cls("cjk", "rjieba" if ver else "regex", (1, 2), (1, 3), ver)
        return cls("latin", "regex", (1, 2), (2, 5), None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AnalyzerConfig":
        try:
            cfg = cls(str(d["lang"]), str(d["words"]), tuple(int(x) for x in d["word_ngrams"]),
                      tuple(int(x) for x in d["char_ngrams"]), d.get("segmenter_version"))
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"Text analyzer settings are malformed ({exc}).") from None
        if cfg.words not in ("regex", "rjieba") or cfg.lang not in ("cjk", "latin"):
            raise IntegrityError(f"Unknown text analyzer {cfg.words!r}/{cfg.lang!r} in the model package.")
        if cfg.words == "rjieba" and _segmenter_version() is None:
            raise InvalidInput("This model segments Chinese text with rjieba, which is not installed.",
                               hint="pip install 'modelfab[text]' (or: pip install rjieba).")
        return cfg


def words(text: str, cfg: AnalyzerConfig) -> list[str]:
    if cfg.words == "rjieba":
        import rjieba

        return [t for t in rjieba.cut(text) if _KEEP.search(t)]
    return _WORD.findall(text)


def _ngrams(tokens: list[str], lo: int, hi: int, sep: str) -> list[str]:
    out = tokens[:] if lo <= 1 else []
    for n in range(max(2, lo), hi + 1):
        out += [sep.join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return out


def word_terms(text: str, cfg: AnalyzerConfig) -> list[str]:
    return _ngrams(words(text, cfg), *cfg.word_ngrams, sep=" ")


def char_terms(text: str, cfg: AnalyzerConfig) -> list[str]:
    lo, hi = cfg.char_ngrams
    if cfg.lang == "cjk":  # character n-grams of the whole text (no spaces in Chinese)
        chars = text.replace(" ", "")
        return [chars[i:i + n] for n in range(lo, hi + 1) for i in range(len(chars) - n + 1)]
    out: list[str] = []  # like sklearn's char_wb: n-grams inside space-padded words
    for w in text.split():
        w = f" {w} "
        for n in range(lo, hi + 1):
            out += [w[i:i + n] for i in range(len(w) - n + 1)]
    return out
