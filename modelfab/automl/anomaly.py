"""Anomaly detection from normal-only recordings: selection, threshold, explanation.

Data: one row per window (~1 s of a recording), one feature vector per row,
and the file (group) every window came from. Splits are always by file.

This module is the public entry point; the code lives in focused modules:

* :mod:`~modelfab.automl.anomaly_model`: :class:`AnomalyModel` (scaler +
  detector + file aggregation + threshold, explanation, save/load without
  pickle), :func:`aggregate`, :func:`file_auc`, :func:`partial_auc` and
  :func:`threshold_for_rate` (how the threshold is set).
* :mod:`~modelfab.automl.anomaly_fit`: :func:`fit_anomaly`, the candidates,
  cross-validation over normal files and how a candidate is judged and chosen.
* :mod:`~modelfab.automl.anomaly_prep`: feature scaling (held-out spread) and
  semi-supervised feature weighting.
* :mod:`~modelfab.automl.anomaly_synthetic`: synthetic faults, the criterion
  when there are no labelled abnormal files.
* :mod:`~modelfab.automl.detectors`: the detectors themselves.
"""

from __future__ import annotations

# Besides the public names, the module-level names of the former single module stay importable from
# here (tests and bench/mimii.py use ``_c``, ``_fit_prep``, ``DEFAULT_CANDIDATE``, ``SEMI_VARIANTS``,
# ``make_detector``).
from .anomaly_fit import (CANDIDATES, DEFAULT_AGGREGATION, DEFAULT_CANDIDATE, NORMAL_ONLY_DETECTORS,  # noqa: F401
                          SELECTION_MARGIN, SEMI_DETECTORS, SEMI_VARIANTS, _c, _Candidate, fit_anomaly)
from .anomaly_model import (AGGREGATIONS, STATE_VERSION, AnomalyModel, aggregate, auc_standard_error,  # noqa: F401
                            file_auc, partial_auc, threshold_for_rate)
from .anomaly_prep import _fit_prep, heldout_spread  # noqa: F401
from .anomaly_synthetic import SYNTH_CLUSTER_CORR, SYNTH_KINDS, SYNTH_MAX_ROWS, SYNTH_SHIFTS  # noqa: F401
from .detectors import DETECTORS, Detector, detector_cost, detector_from_state, make_detector  # noqa: F401

__all__ = ["DETECTORS", "AGGREGATIONS", "Detector", "AnomalyModel", "fit_anomaly", "aggregate", "file_auc",
           "partial_auc", "threshold_for_rate"]
