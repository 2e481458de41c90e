"""Synthetic faults: judging anomaly detectors without labelled abnormal files.

A detector that scores everything the same would look perfectly "stable", so
stability alone cannot choose between candidates trained on normal files only.
We use synthetic faults: every held-out normal file gets copies in which one
feature (or ~5% of them) is pushed 3, 6 or 9 times its normal file-to-file
spread, on all windows (persistent) or on a contiguous third (intermittent),
either alone, with the features that nearly duplicate it (|r| >= 0.7), or with
every feature along its normal correlation. The criterion is the mean AUC of
held-out normal files vs those copies. It rewards detectors that stay calm on
*unseen* normal machines yet see a change. But it encodes an assumption about
what faults look like; how :func:`~modelfab.automl.anomaly_fit.fit_anomaly`
limits its say is explained there.
"""

from __future__ import annotations

import numpy as np

from .anomaly_model import file_auc

SYNTH_SHIFTS = (3.0, 6.0, 9.0)
SYNTH_KINDS = ("independent", "correlated", "cluster")
SYNTH_CLUSTER_CORR = 0.7
SYNTH_MAX_ROWS = 20000  # synthetic windows scored per fold, at most


def _synthetic(Xte: np.ndarray, gte: np.ndarray, Xtr: np.ndarray, spread: np.ndarray, rng: np.random.Generator,
               max_rows: int = SYNTH_MAX_ROWS):
    """Synthetic faulty copies of held-out normal files: (X, copy-file ids, variant id per copy-file).

    A synthetic fault pushes one feature (or ~5% of them) ``delta`` normal
    spreads away, and moves every other feature along with it as it co-varies
    on normal data (its regression on the pushed feature): a band that gets
    louder also raises the features that measure the same band. Independent
    single-feature shifts would instead reward detectors that watch the
    correlation structure, which real faults rarely break on their own.
    Variants: shift size (``SYNTH_SHIFTS``) x one feature or ~5% x on every
    window (persistent) or a contiguous third (intermittent). With many
    windows, each file gets a random subset of the variants.
    """
    d = Xte.shape[1]
    m_big = max(2, int(round(0.05 * d))) if d > 2 else 1
    variants = [(s, mm, p, c) for s in SYNTH_SHIFTS for mm in (1, m_big) for p in (True, False)
                for c in SYNTH_KINDS]
    Zt = (Xtr - Xtr.mean(axis=0)) / spread
    full_cov = Zt.T @ Zt / len(Zt) if d <= 2000 else None
    files = np.unique(gte)
    per_file = int(np.clip(max_rows // max(1, len(Xte)), 2, len(variants)))
    out_X, out_g, out_v = [], [], []
    gid = 0
    for g in files:
        rows = np.flatnonzero(gte == g)
        chosen = range(len(variants)) if per_file >= len(variants) else \
            np.sort(rng.choice(len(variants), per_file, replace=False))
        for v in chosen:
            delta, m, persistent, kind = variants[v]
            feats = rng.choice(d, size=min(m, d), replace=False)
            sign = rng.choice([-1.0, 1.0], size=len(feats))
            if kind in ("correlated", "cluster"):
                # (d, m) covariance with the pushed features
                cov = full_cov[:, feats] if full_cov is not None else Zt.T @ Zt[:, feats] / len(Zt)
                var = np.maximum(np.diag(cov[feats]), 1e-12)
                beta = cov / var
                if kind == "cluster":  # only features that measure nearly the same thing move along
                    sd = np.sqrt(np.maximum(np.diag(full_cov) if full_cov is not None
                                            else np.einsum("ij,ij->j", Zt, Zt) / len(Zt), 1e-12))
                    corr = cov / (sd[:, None] * np.sqrt(var)[None, :])
                    beta = np.where(np.abs(corr) >= SYNTH_CLUSTER_CORR, beta, 0.0)
                shift = (beta * sign).sum(axis=1) * delta * spread
            else:
                shift = np.zeros(d)
                shift[feats] = sign * delta * spread[feats]
            Xs = Xte[rows].copy()
            if persistent or len(rows) < 3:
                Xs += shift
            else:
                span = max(1, len(rows) // 3)
                a = int(rng.integers(0, len(rows) - span + 1))
                Xs[a:a + span] += shift
            out_X.append(Xs)
            out_g.append(np.full(len(rows), gid))
            out_v.append(int(v))
            gid += 1
    return np.vstack(out_X), np.concatenate(out_g), np.asarray(out_v)


def _synthetic_auc(normal: np.ndarray, synth: np.ndarray, variants: np.ndarray) -> float:
    if synth.size == 0 or normal.size == 0:
        return float("nan")
    return float(np.mean([file_auc(normal, synth[variants == v]) for v in np.unique(variants)]))
