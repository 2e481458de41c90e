"""The report section of a series model: the held-out series it got wrong (or furthest off), plotted with one
panel per channel, so that a channel of small values is not drawn flat under one of large values."""

from __future__ import annotations

import numpy as np

def report_sections(model) -> list:
    """Plots of the held-out series the model got wrong (or, for regression, got furthest off)."""
    from ...evaluation.report import ReportSection

    hold = model.holdout()
    if "ex_data" not in hold:
        return []
    from .sets import unpack

    series = unpack(hold["ex_data"], hold["ex_offsets"])
    idx = hold["ex_index"]
    y, ids = hold["y_true"], hold.get("ids")
    m = model.manifest
    figs, rows = [], []
    for s, i in zip(series, idx):
        sid = str(ids[i]) if ids is not None else str(i)
        if m["task"] == "regression":
            pred = float(hold["y_pred"][i])
            title = f"{sid}: true {float(y[i]):.4g}, predicted {pred:.4g}"
            rows.append({"series": sid, "true": round(float(y[i]), 6), "predicted": round(pred, 6)})
        else:
            p = hold["proba"][i]
            labels = [str(v) for v in m.get("labels") or []]
            truth, guess = labels[int(y[i])], labels[int(p.argmax())]
            if truth == guess:
                continue
            title = f"{sid}: true {truth}, predicted {guess} ({p.max():.0%})"
            rows.append({"series": sid, "true": truth, "predicted": guess, "confidence": round(float(p.max()), 4)})
        figs.append((_series_png(s, title, m.get("series", {}).get("channel_names")), title))
        if len(figs) >= 8:
            break
    if m["task"] == "classification" and not figs:
        return [ReportSection("Misclassified series", "Every held-out series was classified correctly.")]
    what = ("held-out series furthest off" if m["task"] == "regression" else "held-out series the model got wrong")
    return [ReportSection("Misclassified series" if m["task"] == "classification" else "Worst predicted series",
                          f"The {what}, as plotted values over time (one panel per channel, each on its own scale): look for a shared shape, a sensor fault or a "
                          "label that may be wrong.", figs, rows)]


PANELS = 6  # up to this many channels: one panel each; more: one panel, each channel scaled to 0..1


def series_figure(s: np.ndarray, title: str, channel_names=None):
    """The figure of one series: a panel per channel, each with its own y-axis (a pressure of ~5 beside a
    temperature of ~45 keeps its shape); over PANELS channels, one panel with each channel scaled to its own
    0..1 range (said on the axis)."""
    from ...evaluation.plots import _figure, _safe

    n = s.shape[0]
    names = [_safe(channel_names[c] if channel_names and c < len(channel_names) else f"channel {c}") for c in range(n)]
    t = np.arange(s.shape[1])
    panels = n if n <= PANELS else 1
    fig = _figure(6.5, 2.2 if panels == 1 else 0.4 + 1.1 * panels)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    if panels == n:
        for c, ax in enumerate(axes):
            ax.plot(t, s[c], lw=1.0, color=f"C{c}")
            if n > 1:
                ax.set_ylabel(names[c][:18], fontsize=7)
    else:
        lo, hi = np.nanmin(s, axis=1, keepdims=True), np.nanmax(s, axis=1, keepdims=True)
        scaled = (s - lo) / np.where(hi > lo, hi - lo, 1.0)
        for c in range(n):
            axes[0].plot(t, scaled[c], lw=0.8, label=names[c])
        axes[0].set_ylabel("each channel scaled\nto its own 0..1", fontsize=7)
        axes[0].legend(fontsize=6, loc="best", ncol=2)
    axes[0].set_title(_safe(title), fontsize=9)
    axes[-1].set_xlabel("time step", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=7)
    return fig


def _series_png(s: np.ndarray, title: str, channel_names=None) -> bytes:
    from ...evaluation.plots import _png

    return _png(series_figure(s, title, channel_names))
