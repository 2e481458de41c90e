"""Choosing one anomaly-model candidate from its cross-validated scores.

:func:`~modelfab.automl.anomaly_fit.fit_anomaly` cross-validates every
candidate (detector, scaling, semi-supervised feature weighting) and every file
aggregation; :func:`select` picks one of them.

With labelled abnormal files (semi-supervised)
----------------------------------------------
1. **Out-of-fold AUC** of held-out normal files vs held-out labelled abnormal
   files decides first. Every candidate whose AUC is within one standard error
   of the best (Hanley & McNeil at the best AUC, and never less than one
   swapped normal/abnormal pair) is treated as tied: with a handful of labelled
   files, one swapped pair is noise, not evidence.
2. Among the tied, the largest **separation** wins: how many standard
   deviations of the held-out normal file scores the median held-out abnormal
   file sits above their mean (:func:`separation`). AUC saturates at 1.0 as
   soon as every abnormal file scores above every normal one, so on an easy
   fault most candidates tie there; separation keeps measuring *how far* the
   known faults are pushed from normal, which is what the feature weighting
   learned from the labelled abnormals is for. A detector that scores the
   faults just above the normal files a fold saw is fragile: an unseen normal
   machine that strays in some feature the fault does not touch will overtake
   them (bench/mimii.py: one fold's held-out normal fans had high-frequency
   band variations 10-16 spreads out, above the faults' level rise, and the
   unweighted default lost 0.78 AUC there while every weighted variant kept
   1.0). Both numbers are out-of-fold: the weights a fold uses are learned
   from its training abnormals only, and it is judged on the others.
3. Then pAUC, then the earlier (cheaper, more robust) candidate.

Normal files only
-----------------
The default (first candidate, mean over windows) unless a challenger beats its
synthetic-fault AUC by :data:`SELECTION_MARGIN`: the synthetic criterion
encodes an assumption about what faults look like, and on real recordings
(bench/mimii.py) its ranking of detector *families* did not match real
faults, so only a clear win overrides the default.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .anomaly_model import auc_standard_error
from .anomaly_synthetic import SYNTH_SHIFTS

__all__ = ["select", "separation", "DEFAULT_AGGREGATION", "SELECTION_MARGIN"]

DEFAULT_AGGREGATION = "mean"
SELECTION_MARGIN = 0.10  # normal-only: how much a challenger must beat the default by


def separation(normal: Sequence[float], abnormal: Sequence[float]) -> float:
    """(median abnormal score - mean normal score) / sd of the normal scores; NaN if undefined.

    Scale-free (a detector's scores may be in any unit), so candidates with
    different detectors and weights compare. The sd is floored at a tiny share
    of the mean so that identical normal scores do not divide by zero.
    """
    n = np.asarray(normal, dtype=np.float64)
    a = np.asarray(abnormal, dtype=np.float64)
    n, a = n[np.isfinite(n)], a[np.isfinite(a)]
    if n.size < 2 or a.size == 0:
        return float("nan")
    sd = max(float(n.std(ddof=1)), 1e-9 * abs(float(n.mean())), 1e-12)
    return float((np.median(a) - n.mean()) / sd)


def _tolerance(best_auc: float, n_neg: int, n_pos: int) -> float:
    """One standard error at the best AUC, at least one swapped pair."""
    if n_neg < 1 or n_pos < 1:
        return 1e-9
    return max(auc_standard_error(best_auc, n_neg, n_pos), 1.0 / (n_neg * n_pos), 1e-9)


def select(results: dict, aggs: Sequence[str], semi: bool) -> tuple[int, str, str]:
    """(candidate order, aggregation, reason) from cross-validated results.

    ``results``: candidate order -> (candidate, out-of-fold scores, aggregation
    -> (key, criteria)); criteria hold ``cv_auc``, ``cv_pauc`` and
    ``cv_separation`` with labelled abnormal files, ``synthetic_auc`` always.
    """
    first = min(results)
    dagg = DEFAULT_AGGREGATION if DEFAULT_AGGREGATION in aggs else aggs[0]
    if semi:
        return _select_semi(results, aggs, first)
    flat = [(o, a, v[0]) for o, (_, _, scores) in results.items() for a, v in scores.items()]
    base = results[first][2][dagg][0][0]
    o, a, key = max(flat, key=lambda t: (t[2][0], -t[0], t[2][2]))
    shifts = "/".join(f"{d:g}" for d in SYNTH_SHIFTS)
    if (o != first or a != dagg) and key[0] >= base + SELECTION_MARGIN:
        return o, a, (f"synthetic-fault AUC {key[0]:.3f} beat the default's {base:.3f} by at least "
                      f"{SELECTION_MARGIN} (held-out normal files vs copies with a few features pushed "
                      f"{shifts} normal spreads away)")
    return first, dagg, (f"default kept: synthetic-fault AUC {base:.3f}, no candidate beat it by "
                         f"{SELECTION_MARGIN} (held-out normal files vs copies with a few features pushed "
                         f"{shifts} normal spreads away)")


def _select_semi(results: dict, aggs: Sequence[str], first: int) -> tuple[int, str, str]:
    rows = []  # (order, aggregation, aggregation index, criteria)
    for o, (_, _, scores) in results.items():
        for ai, a in enumerate(aggs):
            if a in scores and "cv_auc" in scores[a][1]:
                rows.append((o, a, ai, scores[a][1]))
    if not rows:  # no held-out abnormal file could be scored: fall back to the normal-only rule
        return select(results, aggs, semi=False)
    res = results[first][1]
    a0 = rows[0][1]
    n_neg, n_pos = res["normal"][a0].size, res["abnormal"][a0].size
    best_auc = max(round(r[3]["cv_auc"], 3) for r in rows)
    tol = _tolerance(best_auc, n_neg, n_pos)
    tied = [r for r in rows if round(r[3]["cv_auc"], 3) >= best_auc - tol - 1e-12]

    def rank(r):
        sep = r[3].get("cv_separation", float("nan"))
        return (sep if math.isfinite(sep) else -math.inf, round(r[3]["cv_pauc"], 3), -r[0], -r[2])

    o, a, _, crit = max(tied, key=rank)
    sep = crit.get("cv_separation", float("nan"))
    how_far = (f"the median held-out abnormal file scores {sep:.1f} normal-score standard deviations above the "
               "normal files") if math.isfinite(sep) else "undefined (too few held-out normal files)"
    return o, a, (f"out-of-fold AUC {crit['cv_auc']:.3f} (pAUC {crit['cv_pauc']:.3f}) of held-out normal vs "
                  f"held-out labelled abnormal files, within one standard error ({tol:.3f}) of the best "
                  f"({best_auc:.3f}); of the {len(tied)} tied, the largest separation: {how_far}")
