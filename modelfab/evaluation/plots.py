"""Report plots, each returned as PNG bytes.

matplotlib is imported lazily inside the functions, figures are built with
``matplotlib.figure.Figure`` on an explicit Agg canvas (no pyplot, no global
state), so this module is cheap to import and safe in threads/servers.
"""

from __future__ import annotations

import functools
import io

import numpy as np

from ..errors import InvalidInput

DPI = 100
MAX_SCATTER = 5000
BLUE, ORANGE, GREY, RED = "#1f77b4", "#ff7f0e", "#7f7f7f", "#d62728"


CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "SimHei",
             "Microsoft YaHei", "PingFang SC")


@functools.lru_cache(maxsize=1)
def use_cjk_fonts() -> None:
    """Let labels in Chinese (class names, columns) render: fall back per glyph to an installed CJK font."""
    import matplotlib
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    extra = [name for name in CJK_FONTS if name in installed]
    if not extra:  # matplotlib's font cache may predate the font's installation: look once more
        for path in font_manager.findSystemFonts():
            low = path.lower()
            if any(k in low for k in ("wqy", "notosanscjk", "notosanssc", "sourcehansans", "simhei", "msyh")):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
        extra = [name for name in CJK_FONTS if name in installed]
    if extra:
        matplotlib.rcParams["font.family"] = ["DejaVu Sans", *extra]


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    use_cjk_fonts()
    fig = Figure(figsize=(w, h), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    missing = [w for w in caught if "missing from font" in str(w.message)]
    for w in caught:
        if w not in missing:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:
        _missing_glyphs_once()
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def _missing_glyphs_once() -> None:
    """One line instead of matplotlib's warning per character and per plot."""
    import warnings

    warnings.warn("Some characters of the labels (e.g. Chinese) have no glyph in the installed fonts and show as "
                  "boxes in the plots; install a CJK font (e.g. apt-get install fonts-wqy-microhei or fonts-noto-cjk).",
                  UserWarning, stacklevel=3)


def _short(text, n: int = 24) -> str:
    """Shorten to n characters keeping both ends ("long class na…ber 12"), so
    names that differ only at the end stay distinguishable."""
    text = str(text)
    if len(text) <= n:
        return text
    tail = (n - 1) // 3
    return text[: n - 1 - tail] + "…" + text[len(text) - tail:]


def _safe(text) -> str:
    """Keep matplotlib from reading user text as mathtext ($...$)."""
    return str(text).replace("$", r"\$")


# ------------------------------------------------------------ classification
def confusion_matrix_png(cm, labels, normalize: bool = True) -> bytes:
    """Heat map of the confusion matrix (rows = true class, columns = predicted).
    Colour is the share of each true class (when ``normalize``); cells show
    counts (and shares) for up to 30 classes."""
    cm = np.asarray(cm, dtype=float)
    k = len(labels)
    if cm.shape != (k, k) or k == 0:
        raise InvalidInput(f"Confusion matrix must be {k}x{k} for {k} labels; got shape {cm.shape}.")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    shown = share if normalize else cm
    size = float(np.clip(1.6 + 0.42 * k, 4.5, 14.0))
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(cm.max(), 1), aspect="equal")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("share of the true class" if normalize else "count")
    fs = float(np.clip(13 - 0.2 * k, 7.5, 11))
    if k <= 30:
        for i in range(k):
            for j in range(k):
                c = int(cm[i, j])
                if c == 0 and k > 12:
                    continue  # empty cells stay blank in big matrices
                text = f"{c}\n{share[i, j]:.0%}" if (normalize and k <= 12 and c) else f"{c}"
                dark = shown[i, j] > (0.55 if normalize else 0.55 * max(cm.max(), 1))
                ax.text(j, i, text, ha="center", va="center", fontsize=fs,
                        color="white" if dark else ("black" if c else "#b0b0b0"))
    if k <= 60:
        names = [_safe(_short(x, 22)) for x in labels]
        ax.set_xticks(range(k), names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=fs)
        ax.set_yticks(range(k), names, fontsize=fs)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Confusion matrix" + (" (colour = share of each true class)" if normalize else ""))
    return _png(fig)


def per_class_errors_png(per_class: dict) -> bytes:
    """Share of each class's holdout items the model got wrong (1 - recall),
    worst first, annotated 'wrong of total'. At most 30 classes are shown."""
    rows = [(name, v["recall"], int(v.get("support") or 0)) for name, v in per_class.items()
            if v.get("recall") is not None and v.get("support")]
    if not rows:
        raise InvalidInput("No class has holdout examples; nothing to plot.")
    rows.sort(key=lambda r: (-(1 - r[1]), -r[2]))
    hidden = max(0, len(rows) - 30)
    rows = rows[:30]
    err = np.array([1 - r[1] for r in rows])
    wrong = [round((1 - r[1]) * r[2]) for r in rows]
    fig = _figure(7.5, 1.2 + 0.32 * len(rows))
    ax = fig.add_subplot()
    pos = np.arange(len(rows))[::-1]
    ax.barh(pos, err * 100, color=[RED if e > 0 else GREY for e in err], height=0.6)
    for p, e, w, r in zip(pos, err, wrong, rows):
        ax.text(e * 100 + 1, p, f"{w} of {r[2]}", va="center", fontsize=9)
    ax.set_yticks(pos, [_safe(_short(r[0], 28)) for r in rows], fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(0, 115)
    ax.set_xlabel("Items of this class the model got wrong (%)")
    title = "Errors per class (worst first)"
    ax.set_title(title + (f" — {hidden} more classes not shown" if hidden else ""))
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _curve_sets(curves: dict, key: str) -> list[tuple[str, dict]]:
    if curves.get("binary"):
        return [(str(curves.get("positive_label", "positive")), curves)] if curves.get(key) else []
    return [(str(name), c) for name, c in (curves.get("per_class") or {}).items() if c.get(key)]


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def roc_png(curves: dict) -> bytes:
    """ROC curve(s) from :func:`metrics.curves` (one per class for multiclass)."""
    sets = _curve_sets(curves, "roc")
    if not sets:
        raise InvalidInput("No ROC curve to draw: the holdout needs both positive and negative examples.")
    fig = _figure(6.0, 5.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="random guess")
    if curves.get("max_fpr"):
        ax.axvspan(0, float(curves["max_fpr"]), color=GREY, alpha=0.12, lw=0,
                   label=f"pAUC region (false alarms ≤ {float(curves['max_fpr']):.0%})")
    for (name, c), col in zip(sets, _colors(len(sets))):
        auc = c.get("auc")
        lab = _safe(_short(name, 24)) + (f" (AUC {auc:.3f})" if auc is not None else "")
        ax.plot(c["roc"]["fpr"], c["roc"]["tpr"], color=col, lw=2, label=lab, drawstyle="default")
    op = curves.get("operating_point")
    if op and op[0] is not None and op[1] is not None:
        ax.plot([op[0]], [op[1]], "o", color=RED, ms=8, label="chosen threshold")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel(curves.get("fpr_label", "False positive rate (other classes wrongly flagged)"))
    ax.set_ylabel(curves.get("tpr_label", "True positive rate (cases of the class caught)"))
    ax.set_title(curves.get("title", "ROC curve" + ("" if curves.get("binary") else "s (one class vs the rest)")))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def pr_png(curves: dict) -> bytes:
    """Precision-recall curve(s) with the no-skill baseline (the prevalence)."""
    sets = _curve_sets(curves, "pr")
    if not sets:
        raise InvalidInput("No precision-recall curve to draw: the holdout needs positive examples.")
    fig = _figure(6.0, 5.2)
    ax = fig.add_subplot()
    for (name, c), col in zip(sets, _colors(len(sets))):
        ap = c.get("average_precision")
        lab = _safe(_short(name, 24)) + (f" (AP {ap:.3f})" if ap is not None else "")
        ax.plot(c["pr"]["recall"], c["pr"]["precision"], color=col, lw=2, label=lab)
        if len(sets) == 1 and c.get("prevalence") is not None:
            ax.axhline(c["prevalence"], ls="--", color=GREY, lw=1, label=f"random guess ({c['prevalence']:.1%})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.03)
    ax.set_xlabel("Recall (share of actual cases caught)")
    ax.set_ylabel("Precision (share of alarms that are right)")
    ax.set_title("Precision vs recall" + ("" if curves.get("binary") else " (one class vs the rest)"))
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def calibration_png(curves: dict) -> bytes:
    """Reliability diagram: predicted probability vs observed frequency, with
    the number of items per probability bin underneath."""
    sets = _curve_sets(curves, "calibration")
    if not sets:
        raise InvalidInput("No calibration data to draw.")
    fig = _figure(6.0, 6.0)
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
    ax, axh = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="perfectly calibrated")
    width = 0.08 / len(sets)  # bars of all classes share each 0.1-wide bin
    for i, ((name, c), col) in enumerate(zip(sets, _colors(len(sets)))):
        cal = c["calibration"]
        ax.plot(cal["mean_predicted"], cal["fraction_positive"], marker="o", color=col, lw=1.5,
                label=_safe(_short(name, 24)))
        b = np.floor(np.clip(cal["mean_predicted"], 0, 0.9999) * 10) / 10
        axh.bar(b + 0.01 + (i + 0.5) * width, cal.get("count", [0] * len(b)), width=width, color=col, alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Observed share that is this class")
    ax.set_title("Are the probabilities trustworthy? (calibration)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    axh.set_xlim(0, 1)
    axh.set_xlabel("Predicted probability")
    axh.set_ylabel("items")
    axh.grid(alpha=0.3)
    return _png(fig)


def feature_importance_png(importances: dict[str, float], top: int = 25) -> bytes:
    """Horizontal bars of the ``top`` most important features (by absolute value)."""
    items = [(str(k), float(v)) for k, v in (importances or {}).items() if v is not None and np.isfinite(v)]
    if not items:
        raise InvalidInput("No feature importances to plot.")
    items.sort(key=lambda kv: -abs(kv[1]))
    used = [kv for kv in items if kv[1] != 0] or items  # inputs the model never used are counted, not drawn
    unused = len(items) - len(used)
    hidden = max(0, len(used) - top)
    items = used[:top]
    fig = _figure(7.5, 1.2 + 0.3 * len(items))
    ax = fig.add_subplot()
    pos = np.arange(len(items))[::-1]
    ax.barh(pos, [v for _, v in items], color=BLUE, height=0.65)
    ax.set_yticks(pos, [_safe(_short(k, 36)) for k, _ in items], fontsize=9)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ax.set_xlabel("Importance (higher = the model relies on it more)")
    ax.set_title(f"Most important inputs (top {len(items)}" + (f" of {len(items) + hidden}" if hidden else "")
                 + (f"; {unused} not used at all)" if unused else ")"))
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


# ---------------------------------------------------------------- regression
def residuals_png(y_true, y_pred) -> bytes:
    """Predicted vs actual scatter (with the ideal line) and a histogram of errors."""
    y, p = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    if len(y) != len(p) or len(y) == 0:
        raise InvalidInput(f"y_true and y_pred must be non-empty and equally long; got {len(y)} and {len(p)}.")
    if len(y) > MAX_SCATTER:
        idx = np.random.default_rng(0).choice(len(y), MAX_SCATTER, replace=False)
        ys, ps = y[idx], p[idx]
    else:
        ys, ps = y, p
    fig = _figure(11.0, 4.8)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.scatter(ys, ps, s=10, alpha=0.5 if len(ys) > 500 else 0.8, color=BLUE, edgecolors="none")
    lo, hi = float(min(ys.min(), ps.min())), float(max(ys.max(), ps.max()))
    pad = (hi - lo) * 0.03 or 1.0
    ax1.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", color=RED, lw=1, label="perfect prediction")
    ax1.set_xlim(lo - pad, hi + pad)
    ax1.set_ylim(lo - pad, hi + pad)
    ax1.set_xlabel("Actual value")
    ax1.set_ylabel("Predicted value")
    ax1.set_title("Predicted vs actual" + (f" ({MAX_SCATTER:,} of {len(y):,} points)" if len(y) > MAX_SCATTER else ""))
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)
    err = p - y
    ax2.hist(err, bins=min(50, max(10, int(np.sqrt(len(err))))), color=BLUE, alpha=0.85)
    ax2.axvline(0, color=RED, ls="--", lw=1)
    ax2.set_xlabel("Error (predicted − actual)")
    ax2.set_ylabel("Number of rows")
    ax2.set_title("How big are the errors?")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------- anomaly
def score_histogram_png(normal_scores, anomaly_scores, threshold: float | None) -> bytes:
    """Overlaid histograms of normal and anomalous scores with the threshold."""
    n = np.asarray(normal_scores if normal_scores is not None else [], dtype=float).ravel()
    a = np.asarray(anomaly_scores if anomaly_scores is not None else [], dtype=float).ravel()
    n, a = n[np.isfinite(n)], a[np.isfinite(a)]
    if not len(n) and not len(a):
        raise InvalidInput("No scores to plot.")
    both = np.concatenate([n, a] + ([[float(threshold)]] if threshold is not None else []))
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, int(np.clip(np.sqrt(len(n) + len(a)) * 2, 15, 60)) + 1)
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    if len(n):
        ax.hist(n, bins=bins, color=BLUE, alpha=0.55, label=f"normal ({len(n):,})")
    if len(a):
        ax.hist(a, bins=bins, color=ORANGE, alpha=0.55, label=f"anomaly ({len(a):,})")
    if threshold is not None:
        ax.axvline(float(threshold), color=RED, lw=2, ls="--", label=f"threshold {float(threshold):.4g}")
        ymax = ax.get_ylim()[1]
        ax.text(float(threshold), ymax * 0.97, "  flagged as anomaly →", color=RED, va="top", fontsize=9)
    ax.set_xlabel("Anomaly score (higher = more unusual)")
    ax.set_ylabel("Number of items")
    ax.set_title("Scores of normal and anomalous items")
    ax.legend(loc="upper left" if threshold is None or float(threshold) > (lo + hi) / 2 else "upper right", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def spectrogram_png(samples, sample_rate: int, title: str, highlight: list | None = None) -> bytes:
    """Log-power spectrogram of a recording; ``highlight`` (t0, t1) ranges in
    seconds are shaded (e.g. the frames that drove the anomaly score)."""
    from scipy.signal import spectrogram

    x = np.asarray(samples, dtype=float)
    if x.ndim == 2:  # (n, channels) or (channels, n): mix down
        x = x.mean(axis=1 if x.shape[0] >= x.shape[1] else 0)
    x = x.ravel()
    if not sample_rate or sample_rate <= 0:
        raise InvalidInput(f"sample_rate must be positive; got {sample_rate!r}.")
    if len(x) < 16 or not np.all(np.isfinite(x)):
        raise InvalidInput("The recording is too short or contains NaN values; cannot draw a spectrogram.")
    nperseg = int(min(len(x), max(64, 2 ** round(np.log2(max(sample_rate * 0.025, 1))))))
    # Cap the number of time columns so long recordings stay small.
    hop = max(nperseg // 2, len(x) // 1500)
    f, t, sxx = spectrogram(x, fs=sample_rate, nperseg=nperseg, noverlap=max(0, nperseg - hop), scaling="density")
    db = 10 * np.log10(sxx + 1e-12)
    vmax = float(np.percentile(db, 99.5))
    vmin = max(vmax - 80.0, float(np.percentile(db, 2)))
    duration = len(x) / sample_rate
    fig = _figure(9.0, 3.8)
    ax = fig.add_subplot()
    khz = f[-1] >= 2000
    fy = f / 1000 if khz else f
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                   extent=(0.0, duration, float(fy[0]), float(fy[-1])), interpolation="nearest")
    fig.colorbar(im, ax=ax, pad=0.01).set_label("power (dB)")
    for i, (t0, t1) in enumerate(highlight or []):
        # Outline only (plus a band along the top) so the highlighted content stays visible.
        ax.axvspan(float(t0), float(t1), facecolor="none", edgecolor="cyan", lw=2, ls="--",
                   label="most unusual part" if i == 0 else None)
        ax.axvspan(float(t0), float(t1), ymin=0.96, ymax=1.0, facecolor="cyan", alpha=0.9, edgecolor="none")
    if highlight:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(0, duration)
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Frequency (kHz)" if khz else "Frequency (Hz)")
    ax.set_title(_safe(_short(title, 90)))
    return _png(fig)
