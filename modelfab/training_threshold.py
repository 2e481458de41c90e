"""Moving a threshold without retraining: a new model version of an anomaly detector (its score
threshold) or of a binary classifier (its ``decision_threshold`` on the second label's probability)."""

from __future__ import annotations

import shutil

import numpy as np

from .training import finish, package_folder


PRECISION_NOTE = "cannot be checked precisely"  # how that note is found again when the threshold moves
FEW_NORMAL = 30  # fewer held-out normal items than this: the note is always given, whatever the rate


def rate_precision_note(n_normal: int, rate: float, what: str, n_above: int = 0) -> str | None:
    """A note when the ``n_normal`` held-out normal items that set the threshold (``n_above`` of them above it;
    ``what``: what they are) are too few to check ``rate``: fewer than 1 / ``rate`` or than FEW_NORMAL, or the 95 %
    upper bound of the rate on new items over three times the rate (and over 10 %)."""
    from .evaluation.metrics import false_alarm_upper_bound

    if not n_normal or not rate:
        return None
    upper = false_alarm_upper_bound(n_above, n_normal)
    if n_normal >= max(1 / rate, FEW_NORMAL) and upper <= max(0.1, 3 * rate):
        return None
    return (f"Only {n_normal} held-out {what} set the threshold: a false-alarm rate of {rate:.1%} {PRECISION_NOTE} "
            f"with so few; on new {what} it may be as high as {upper:.0%} ({n_above} of {n_normal} above the "
            f"threshold; 95 % upper bound). Give more {what} to train on (a few hundred) for a threshold you can "
            "trust, and check it on new ones with `modelfab predict`.")


def rethreshold(model, *, threshold: float | None, max_false_alarm: float | None):
    from .evaluation.metrics import anomaly_metrics

    pred = model.predictor
    hold = model.holdout()
    manifest = {k: v for k, v in model.manifest.items() if k not in ("files", "format", "format_version")}
    if model.manifest.get("modality") == "image":
        # image detectors keep their held-out scores in holdout.npz, not in the model: the threshold is set there,
        # by the same rule as in training; the other metrics (pixel AUROC, shortcut check) do not depend on it
        new, rate, expected = _image_threshold(hold, threshold, max_false_alarm)
        metrics = dict(model.manifest.get("metrics") or {})
    else:
        am = pred.anomaly.with_false_alarm(max_false_alarm) if max_false_alarm is not None else pred.anomaly.with_threshold(threshold)
        new, rate, expected, metrics = float(am.threshold), float(am.max_false_alarm), am.false_alarm_rate(), {}
    if new == float(pred.threshold) and rate == model.manifest.get("max_false_alarm", rate):
        return model  # the same threshold: nothing to register (a new version would differ in its number only)
    manifest["threshold"] = new
    manifest["max_false_alarm"] = rate
    n_above = 0
    if "scores" in hold and len(hold["scores"]):
        from .evaluation.metrics import false_alarm_upper_bound

        y, sc = np.asarray(hold["y_true"], int), np.asarray(hold["scores"], float)
        metrics.update(anomaly_metrics(y, sc, new))
        metrics["expected_false_alarm"] = expected
        n_above = int(np.sum(sc[y == 0] > new))
        if "false_alarm_upper_95" in metrics:
            metrics["false_alarm_upper_95"] = false_alarm_upper_bound(n_above, int(np.sum(y == 0)))
        manifest["metrics"] = metrics
    manifest["derived_from"] = {"model": model.ref, "package_sha": model.row["package_sha"],
                                "change": f"threshold {pred.threshold:.6g} -> {new:.6g}"}
    training = dict(manifest.get("training") or {})
    if training.get("notes"):  # a note on the old rate would now mislead: said again for the new one
        notes = [n for n in training["notes"] if PRECISION_NOTE not in str(n)]
        n_normal = int(np.sum(np.asarray(hold.get("y_true", []), int) == 0))
        what = "defect-free images" if model.manifest.get("modality") == "image" else "normal items"
        notes += [n for n in [rate_precision_note(n_normal, rate, what, n_above)] if n]
        training["notes"] = notes
        manifest["training"] = training
    return _copy_and_register(model, manifest)


def _image_threshold(hold: dict, threshold: float | None, max_false_alarm: float | None) -> tuple[float, float, float]:
    """(threshold, its false-alarm rate, the same) on the held-out defect-free images' scores of an image detector."""
    import math

    from .errors import InvalidInput
    from .training_image import threshold_at_rate

    if "scores" not in hold or "y_true" not in hold:
        raise InvalidInput("This model kept no held-out scores, so its threshold cannot be moved.",
                           hint="Retrain it with this version of modelfab.")
    s_norm = np.asarray(hold["scores"], float)[np.asarray(hold["y_true"], int) == 0]
    if max_false_alarm is not None:
        if not 0 < float(max_false_alarm) < 1:
            raise InvalidInput(f"--max-false-alarm must be a share between 0 and 1 (0.01 = 1 in 100); "
                               f"got {max_false_alarm!r}.")
        if not len(s_norm):
            raise InvalidInput("This model kept no held-out defect-free scores to set a false-alarm rate on.",
                               hint="Give --threshold instead.")
        t = threshold_at_rate(s_norm, float(max_false_alarm))
    else:
        t = float(threshold)
        if not math.isfinite(t):
            raise InvalidInput(f"The threshold must be a finite number; got {threshold!r}.")
    rate = float(np.mean(s_norm > t)) if len(s_norm) else float("nan")
    return t, (float(max_false_alarm) if max_false_alarm is not None else rate), rate


def binary_threshold_for_false_alarm(y_true, proba1, max_false_alarm: float) -> float:
    """The lowest probability threshold at which at most ``max_false_alarm`` of the held-out
    negative rows (the first label) are flagged as the positive (second) label."""
    from .errors import InvalidInput

    if not (0.0 <= max_false_alarm < 1.0):
        raise InvalidInput(f"--max-false-alarm must be a share in [0, 1) (0.01 = 1 in 100); got {max_false_alarm!r}.")
    neg = np.sort(np.asarray(proba1, float)[np.asarray(y_true, int) == 0])[::-1]
    if not len(neg):
        raise InvalidInput("The stored holdout has no rows of the negative (first) label, so a false-alarm rate "
                           "cannot be set.", hint="Give --threshold instead.")
    k = int(np.floor(max_false_alarm * len(neg) + 1e-9))  # rows of the negative label allowed above the threshold
    if k >= len(neg):
        return 0.0
    thr = float(np.nextafter(neg[k], np.inf))  # just above the (k+1)-th highest negative: it and all below pass
    if thr > 1.0:
        raise InvalidInput(f"No threshold reaches a false-alarm rate of {max_false_alarm:g}: too many held-out "
                           "negative rows have probability 1.", hint="Give --threshold 1 or a larger rate.")
    return thr


def rethreshold_binary(model, *, threshold: float | None, max_false_alarm: float | None):
    """A new version of a binary classifier with ``decision_threshold`` set (class 2 when
    P(class 2) >= threshold); metrics recomputed on the stored holdout at that threshold."""
    from .errors import InvalidInput
    from .evaluation.metrics import classification_metrics

    hold = model.holdout()
    labels = [str(v) for v in model.manifest.get("labels") or []]
    if max_false_alarm is not None:
        if "proba" not in hold:
            raise InvalidInput(f"{model.ref} has no stored holdout probabilities to set a false-alarm rate on.",
                               hint="Give --threshold instead.")
        threshold = binary_threshold_for_false_alarm(hold["y_true"], np.asarray(hold["proba"], float)[:, 1],
                                                     max_false_alarm)
    threshold = float(threshold)
    if not (0.0 <= threshold <= 1.0):
        raise InvalidInput(f"The threshold of a classifier is a probability of {labels[1]!r} in [0, 1]; "
                           f"got {threshold!r}.", hint="Try 0.3 to flag more rows as the second label, 0.7 for fewer.")
    manifest = {k: v for k, v in model.manifest.items() if k not in ("files", "format", "format_version")}
    old = model.manifest.get("decision_threshold")
    if threshold == (0.5 if old is None else float(old)):
        return model  # the same threshold: nothing to register
    manifest["decision_threshold"] = threshold
    if "y_true" in hold and "proba" in hold and len(hold["y_true"]):
        metrics = dict(model.manifest.get("metrics") or {})
        metrics.update(classification_metrics(np.asarray(hold["y_true"], int), np.asarray(hold["proba"], float),
                                              labels, threshold=threshold))
        manifest["metrics"] = metrics
    manifest["derived_from"] = {"model": model.ref, "package_sha": model.row["package_sha"],
                                "change": f"decision threshold {0.5 if old is None else old:.6g} -> {threshold:.6g}"}
    training = dict(manifest.get("training") or {})
    training["notes"] = [n for n in training.get("notes") or [] if not str(n).startswith(CHOSEN_ON_HOLDOUT)] + [
        f"{CHOSEN_ON_HOLDOUT} ({threshold:.4g}), so its metrics here are somewhat optimistic: expect new rows to do "
        "a little worse (most with few held-out rows of the rarer class)."]
    manifest["training"] = training
    return _copy_and_register(model, manifest)


CHOSEN_ON_HOLDOUT = "The decision threshold was chosen on the same held-out rows these metrics come from"


def _copy_and_register(model, manifest: dict):
    ds = model.ws.meta.get_dataset_by_id(model.row["dataset_id"]) if model.row.get("dataset_id") else None
    with package_folder(model.ws) as folder:
        for rel in model.manifest["files"]:
            dst = folder.joinpath(*rel.split("/"))
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model.folder / rel, dst)
        return finish(model.ws, folder, manifest, None, name=model.name, ds=_DsRef(ds))


class _DsRef:
    def __init__(self, row):
        self.id = row["id"] if row else None
