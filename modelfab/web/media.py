"""Waveform + spectrogram pictures of recordings: rendered once per file content, cached in the workspace."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np

AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg"}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def thumb_path(ws, key: str) -> Path:
    return ws.cache_dir / "web" / "thumbs" / key[:2] / f"{key}.png"


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def cached_png(ws, key: str, render: Callable[[], bytes]) -> Path:
    """The PNG cached under ``key`` (the content it shows), rendered by ``render()`` on first use;
    one render per key at a time, written atomically. Every thumbnail of the UI goes through here."""
    out = thumb_path(ws, key)
    if out.is_file():
        return out
    with _lock(key):
        if not out.is_file():
            png = render()
            out.parent.mkdir(parents=True, exist_ok=True)
            part = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
            part.write_bytes(png)
            os.replace(part, out)
    return out


def thumbnail(ws, ds, rel: str, sha: str) -> Path:
    """The cached PNG of one recording of ``ds`` (rendered on first use)."""
    def render() -> bytes:
        from ..recordings import SignalOptions

        opts = SignalOptions.from_dict(ds.options or {})
        with tempfile.TemporaryDirectory(dir=ws.tmp_dir) as tmp:
            copy = Path(tmp) / ("rec" + Path(rel).suffix.lower())
            shutil.copyfile(ws.blob_path(sha), copy)
            rec = opts.read(copy, ws.settings, source=rel, sample_rate=ds.schema.get("sample_rate"))
        return render_png(np.asarray(rec.samples, dtype=np.float32), int(rec.sample_rate))

    return cached_png(ws, sha, render)


def render_png(x: np.ndarray, sr: int, width_px: int = 360, height_px: int = 128) -> bytes:
    """Waveform (top) and log spectrogram (bottom) in one small PNG, no axes."""
    import io

    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    fig.patch.set_facecolor("#ffffff")
    ax1 = fig.add_axes((0, 0.62, 1, 0.38))
    ax2 = fig.add_axes((0, 0, 1, 0.6))
    n = len(x)
    if n:
        step = max(1, n // 2000)
        env = np.abs(x[: n - n % step].reshape(-1, step)).max(axis=1) if step > 1 else np.abs(x)
        t = np.arange(len(env))
        ax1.fill_between(t, -env, env, color="#2563eb", linewidth=0)
        peak = float(env.max()) or 1.0
        ax1.set_ylim(-peak * 1.05, peak * 1.05)
        ax1.set_xlim(0, max(1, len(env) - 1))
        spec = _spectrogram(x, sr)
        ax2.imshow(spec, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
    for ax in (ax1, ax2):
        ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    return buf.getvalue()


def _spectrogram(x: np.ndarray, sr: int, n_fft: int = 512, max_frames: int = 400) -> np.ndarray:
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    hop = max(n_fft // 4, (len(x) - n_fft) // max_frames + 1)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).T
    db = 20 * np.log10(mag + 1e-9)
    top = db.max()
    return np.clip(db, top - 70, top)
