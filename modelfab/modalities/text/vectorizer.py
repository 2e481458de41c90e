"""TF-IDF of word and character n-gram blocks, with plain state (term lists + idf arrays).

Each block is sublinear-tf x idf, L2-normalised on its own, and the blocks are
stacked side by side. Fitting uses scikit-learn's CountVectorizer with our own
analyzer; a loaded model rebuilds the same CountVectorizer from the stored terms.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import scipy.sparse as sp

from ...errors import IntegrityError
from .tokens import AnalyzerConfig, char_terms, word_terms

MAX_TERMS = {"w": 200_000, "c": 200_000}
_ANALYZERS = {"w": word_terms, "c": char_terms}


def _counter(block: str, cfg: AnalyzerConfig, vocabulary=None, min_df: int = 1, max_features=None):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(analyzer=partial(_ANALYZERS[block], cfg=cfg), vocabulary=vocabulary, min_df=min_df,
                           max_features=max_features, dtype=np.float64)


def _weight(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    X = counts.tocsr(copy=True).astype(np.float64)
    X.data = 1.0 + np.log(X.data)  # sublinear tf
    X = X @ sp.diags(idf)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X)


class TfidfBlocks:
    def __init__(self, cfg: AnalyzerConfig, terms: dict[str, list[str]] | None = None,
                 idf: dict[str, np.ndarray] | None = None) -> None:
        self.cfg = cfg
        self.terms = terms or {}
        self.idf = idf or {}
        self._counters: dict = {}

    @property
    def n_features(self) -> int:
        return sum(len(t) for t in self.terms.values())

    def feature_names(self) -> list[str]:
        return [f"{b}:{t}" for b in self.terms for t in self.terms[b]]

    def fit_transform(self, texts: list[str]) -> sp.csr_matrix:
        n = len(texts)
        min_df = 2 if n >= 200 else 1
        blocks = []
        for b in ("w", "c"):
            cv = _counter(b, self.cfg, min_df=min_df, max_features=MAX_TERMS[b])
            try:
                counts = cv.fit_transform(texts)
            except ValueError:  # empty vocabulary (e.g. every text empty): this block has no terms
                continue
            vocab = cv.vocabulary_
            terms = [""] * len(vocab)
            for t, i in vocab.items():
                terms[i] = t
            df = np.asarray((counts > 0).sum(axis=0)).ravel()
            self.terms[b] = terms
            self.idf[b] = np.log((1.0 + n) / (1.0 + df)) + 1.0
            blocks.append(_weight(counts, self.idf[b]))
        if not blocks:
            self.terms, self.idf = {"w": []}, {"w": np.zeros(0)}
            return sp.csr_matrix((n, 0))
        return sp.hstack(blocks, format="csr")

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        blocks = []
        for b, terms in self.terms.items():
            if not terms:
                blocks.append(sp.csr_matrix((len(texts), 0)))
                continue
            if b not in self._counters:
                self._counters[b] = _counter(b, self.cfg, vocabulary={t: i for i, t in enumerate(terms)})
            blocks.append(_weight(self._counters[b].transform(texts), self.idf[b]))
        return sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((len(texts), 0))

    # -- state --------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"analyzer": self.cfg.to_dict(), "blocks": list(self.terms), "terms": self.terms}
        return meta, {f"idf_{b}": self.idf[b] for b in self.terms}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "TfidfBlocks":
        cfg = AnalyzerConfig.from_dict(meta.get("analyzer") or {})
        terms, idf = {}, {}
        for b in meta.get("blocks") or []:
            if b not in _ANALYZERS or not isinstance(meta.get("terms", {}).get(b), list):
                raise IntegrityError(f"Text vocabulary block {b!r} is unknown or malformed.")
            terms[b] = [str(t) for t in meta["terms"][b]]
            idf[b] = np.asarray(arrays.get(f"idf_{b}"), dtype=np.float64)
            if idf[b].shape != (len(terms[b]),):
                raise IntegrityError(f"Text vocabulary block {b!r} has {len(terms[b])} terms but {idf[b].size} idf values.")
        return cls(cfg, terms, idf)
