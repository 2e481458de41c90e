"""Per-window features for machine sound and vibration, vectorised over windows.

Feature sets (count; names):

* ``logmel`` (128): 64 log-mel bands (dB) over short frames (n_fft ~64 ms:
  1024 at 16 kHz and 12 kHz, hop n_fft/2), mean and std over the frames of
  the window: ``logmel_mean_0..63``, ``logmel_std_0..63``.
* ``mfcc`` (40): DCT-II (ortho) of the log-mel frames, 20 coefficients, mean
  and std: ``mfcc_mean_0..19``, ``mfcc_std_0..19``.
* ``spectral`` (10): centroid, bandwidth, 85 % rolloff (Hz), flatness (0..1)
  and flux (RMS dB change of the log-mel frame), mean and std over frames:
  ``spectral_centroid_mean`` ... ``spectral_flux_std``.
* ``time`` (8): ``time_mean``, ``time_std``, ``time_rms``, ``time_peak``,
  ``time_crest`` (peak/RMS), ``time_kurtosis`` (Pearson, 3 for Gaussian noise;
  0 for a constant window), ``time_skewness``, ``time_zcr`` (zero crossings of
  the mean-removed signal per sample).
* ``envelope`` (18): bearing-fault features. The window's spectrum is
  high-passed at min(sr/16, 2 kHz) (to keep the impact-excited resonances,
  not the shaft hum), its Hilbert envelope is normalised by its mean, and the
  envelope spectrum's mean power in 16 log-spaced bands from 5 Hz to
  min(1 kHz, sr/4) gives ``env_band_0..15`` (log10); ``env_peak_hz`` is the
  frequency of the highest envelope-spectrum line in that range and
  ``env_peak_ratio`` log10(peak / median).
* ``bands`` (16): log10 energy of the Hann-windowed spectrum of the whole
  window in 16 log-spaced bands from 20 Hz to Nyquist: ``band_0..15``.

Not in the default, asked for by name:

* ``bearing`` (25): vibration features that do not change with the
  sensor's gain or DC offset, for fault diagnosis that has to carry over to
  another load or machine: ``brg_rel_0..15``, log10 of the share of the
  window's energy in each ``bands`` band (the spectrum's shape, not its
  level); the dimensionless waveform statistics of the mean-removed window
  ``brg_crest`` (peak / RMS), ``brg_kurtosis``, ``brg_skewness``,
  ``brg_shape`` (RMS / mean |x|), ``brg_impulse`` (peak / mean |x|),
  ``brg_clearance`` (peak / mean(sqrt|x|)^2); and the modulation of the
  high-passed, mean-normalised Hilbert envelope of ``envelope``:
  ``brg_env_depth`` (std / mean), ``brg_env_kurtosis``, ``brg_env_crest``
  (max / mean).

Presets (names that stand for several sets): ``sound`` = the six default sets
(:data:`FEATURE_SETS`); ``vibration`` = ``spectral``, ``envelope``,
``bearing`` (:data:`VIBRATION_SETS`, 53 features), all of them independent
of the DC offset and of the gain (``bearing`` and ``envelope`` exactly; the
``spectral`` flatness and flux only while the window's RMS is above ~1e-3,
because of their absolute log floors). Why
``vibration`` leaves out ``time``, ``bands``, ``logmel`` and ``mfcc``: on
CWRU bearing data trained on one motor load and tested on another
(bench/cwru_research.py, bench/results/cwru.md), absolute levels and the DC
offset (``time_mean``) differ between recordings of the same fault more than
between faults, and trees latch onto them; relative and dimensionless
features carry over. For anomaly detection, where a louder machine is itself
a symptom, the level-bearing default (``sound``) is the better start.

Everything except ``time_*`` is computed on the window minus its mean (a DC
offset, common in vibration sensors, would otherwise flood the lowest bands);
``time_mean`` keeps it. Computation is float32 (float64 when |x| > 1e12) and
batched over windows: one STFT, one full-length FFT per window (the Hann
spectrum for ``bands`` comes from the same FFT by a 3-tap kernel), one
inverse FFT (Hilbert) and one FFT of the envelope.

All features (220 default, 25 ``bearing``) are finite for any finite input (silence, constants):
logarithms have floors and ratios have guarded denominators. Names do not
depend on the sample rate. One window of ~1 s is the intended input (see
``windows.default_window``); any length >= 64 samples works.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from ...errors import InvalidInput

FEATURE_SETS = ("logmel", "mfcc", "spectral", "time", "envelope", "bands")  # the default (220 features)
EXTRA_SETS = ("bearing",)  # only when asked for by name
ALL_SETS = FEATURE_SETS + EXTRA_SETS  # canonical order of the columns
VIBRATION_SETS = ("spectral", "envelope", "bearing")
PRESETS = {"sound": FEATURE_SETS, "vibration": VIBRATION_SETS}
N_MELS, N_MFCC, N_BANDS, N_ENV_BANDS = 64, 20, 16, 16
BEARING_STATS = ("crest", "kurtosis", "skewness", "shape", "impulse", "clearance",
                 "env_depth", "env_kurtosis", "env_crest")
ENV_FMIN, ENV_FMAX = 5.0, 1000.0
_EPS = 1e-12
_F32_MAX = float(np.finfo(np.float32).max)


def feature_names(feature_sets=FEATURE_SETS) -> list[str]:
    sets = _check_sets(feature_sets)
    names: list[str] = []
    if "logmel" in sets:
        names += [f"logmel_{s}_{i}" for s in ("mean", "std") for i in range(N_MELS)]
    if "mfcc" in sets:
        names += [f"mfcc_{s}_{i}" for s in ("mean", "std") for i in range(N_MFCC)]
    if "spectral" in sets:
        names += [f"spectral_{k}_{s}" for k in ("centroid", "bandwidth", "rolloff", "flatness", "flux")
                  for s in ("mean", "std")]
    if "time" in sets:
        names += [f"time_{k}" for k in ("mean", "std", "rms", "peak", "crest", "kurtosis", "skewness", "zcr")]
    if "envelope" in sets:
        names += [f"env_band_{i}" for i in range(N_ENV_BANDS)] + ["env_peak_hz", "env_peak_ratio"]
    if "bands" in sets:
        names += [f"band_{i}" for i in range(N_BANDS)]
    if "bearing" in sets:
        names += [f"brg_rel_{i}" for i in range(N_BANDS)] + [f"brg_{k}" for k in BEARING_STATS]
    return names


def resolve_feature_sets(feature_sets) -> tuple[str, ...]:
    """The canonical tuple of set names for sets and/or presets: ``"vibration"``, ``"logmel,time"``, a list."""
    return _check_sets(feature_sets)


def _check_sets(feature_sets) -> tuple[str, ...]:
    if isinstance(feature_sets, str):
        feature_sets = [feature_sets]
    sets: set[str] = set()
    for s in feature_sets or ():
        if not isinstance(s, str):
            sets.add(repr(s))
            continue
        for part in filter(None, (p.strip() for p in s.split(","))):
            sets |= set(PRESETS.get(part, (part,)))
    unknown = sorted(sets - set(ALL_SETS))
    if unknown or not sets:
        raise InvalidInput(f"expected feature sets from {', '.join(ALL_SETS)} (or the presets "
                           f"{', '.join(PRESETS)}), got {unknown or 'none'}.",
                           hint="Pass e.g. --features logmel,envelope or --features vibration.")
    return tuple(s for s in ALL_SETS if s in sets)


def _mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style mel filter bank (n_mels, n_fft//2+1): librosa's if installed, else the same formulas."""
    try:
        import librosa
    except ImportError:
        return _slaney_mel(sr, n_fft, n_mels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sr / 2.0)


def _slaney_mel(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa.filters.mel(htk=False, norm="slaney", fmin=0, fmax=sr/2) in plain numpy."""
    step, logstep = 200.0 / 3, np.log(6.4) / 27.0

    def hz_to_mel(f):
        return f / step if f < 1000.0 else 15.0 + np.log(f / 1000.0) / logstep

    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2)
    mel_f = np.where(mels >= 15.0, 1000.0 * np.exp(logstep * (mels - 15.0)), mels * step)
    ramps = mel_f[:, None] - np.fft.rfftfreq(n_fft, 1.0 / sr)[None, :]
    fdiff = np.diff(mel_f)
    w = np.maximum(0.0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    return w * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


def _band_matrix(freqs: np.ndarray, edges: np.ndarray, mean: bool) -> np.ndarray:
    """(n_bins, n_bands) 0/1 (or 1/count) matrix; an empty band takes its nearest bin."""
    m = np.zeros((len(freqs), len(edges) - 1), dtype=np.float32)
    for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        idx = np.flatnonzero((freqs >= lo) & (freqs < hi) & (freqs > 0))
        if idx.size == 0:
            idx = np.array([int(np.argmin(np.abs(freqs - np.sqrt(lo * hi))))])
        m[idx, j] = 1.0 / idx.size if mean else 1.0
    return m


class _Plan:
    """Everything that depends only on (window length, sample rate); cached."""

    def __init__(self, n: int, sr: int):
        from scipy.fft import dct

        self.n, self.sr = n, sr
        n_fft = int(2 ** round(np.log2(0.064 * sr)))
        n_fft = int(np.clip(n_fft, 256, 4096))
        while n_fft > n:
            n_fft //= 2
        self.n_fft, self.hop = n_fft, n_fft // 2
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        self.hann = hann.astype(np.float32)
        self.frame_scale = np.float32(1.0 / np.sum(hann ** 2))
        self.frame_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32)
        self.mel_t = np.ascontiguousarray(_mel_filters(sr, n_fft, N_MELS).T, dtype=np.float32)
        self.dct_t = np.ascontiguousarray(dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:N_MFCC].T,
                                          dtype=np.float32)
        freqs = np.fft.rfftfreq(n, 1.0 / sr)
        nyq = sr / 2.0
        self.full_scale = np.float32(1.0 / (0.375 * n))  # sum(hann^2) for the periodic Hann of length n
        edges = np.geomspace(min(20.0, nyq / 4), nyq * (1 + 1e-9), N_BANDS + 1)
        edges[0] = 0.0
        self.bands = _band_matrix(freqs, edges, mean=False)
        self.hp_bin = int(np.ceil(min(sr / 16.0, 2000.0) * n / sr))
        env_hi = min(ENV_FMAX, sr / 4.0)
        env_lo = min(ENV_FMIN, env_hi / 8)
        self.env_sel = np.flatnonzero((freqs >= env_lo) & (freqs <= env_hi))
        if self.env_sel.size == 0:
            self.env_sel = np.array([1 if len(freqs) > 1 else 0])
        self.env_freqs = freqs[self.env_sel].astype(np.float32)
        self.env_bands = _band_matrix(self.env_freqs, np.geomspace(env_lo, env_hi * (1 + 1e-9), N_ENV_BANDS + 1),
                                      mean=True)


@lru_cache(maxsize=16)
def _plan(n: int, sr: int) -> _Plan:
    return _Plan(n, sr)


def _hann_from_rect(x: np.ndarray, n: int) -> np.ndarray:
    """Spectrum of the Hann-windowed signal from the plain rfft (periodic Hann = 3-tap kernel)."""
    k = x.shape[1]
    left = np.empty_like(x)
    right = np.empty_like(x)
    left[:, 1:] = x[:, :-1]
    left[:, 0] = np.conj(x[:, 1]) if k > 1 else x[:, 0]
    right[:, :-1] = x[:, 1:]
    right[:, -1] = np.conj(x[:, -2] if n % 2 == 0 else x[:, -1]) if k > 1 else x[:, -1]
    return 0.5 * x - 0.25 * (left + right)


def _mean_std(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return a.mean(axis=1), a.std(axis=1)


def _short_frames(x: np.ndarray, P: _Plan, sets) -> list[np.ndarray]:
    from scipy import fft as sfft

    frames = np.lib.stride_tricks.sliding_window_view(x, P.n_fft, axis=1)[:, :: P.hop]
    spec = sfft.rfft(frames * P.hann, axis=-1)
    pw = (spec.real * spec.real + spec.imag * spec.imag) * P.frame_scale  # (m, frames, bins)
    m, nf, nb = pw.shape
    logmel = 10.0 * np.log10((pw.reshape(m * nf, nb) @ P.mel_t).reshape(m, nf, -1) + 1e-10)  # (m, frames, mels)
    out = []
    if "logmel" in sets:
        out += _mean_std(logmel)
    if "mfcc" in sets:
        out += _mean_std((logmel.reshape(m * nf, -1) @ P.dct_t).reshape(m, nf, -1))
    if "spectral" in sets:
        f = P.frame_freqs
        tot = pw.sum(axis=-1) + _EPS
        centroid = (pw @ f) / tot
        bandwidth = np.sqrt(np.maximum((pw @ (f * f)) / tot - centroid * centroid, 0.0))
        cum = np.cumsum(pw, axis=-1)
        rolloff = f[np.argmax(cum >= 0.85 * cum[..., -1:], axis=-1)]
        rolloff = np.where(cum[..., -1] > 0, rolloff, 0.0)
        flatness = np.exp(np.log(pw + 1e-10).mean(axis=-1)) / (pw.mean(axis=-1) + 1e-10)
        if logmel.shape[1] > 1:
            flux = np.sqrt(np.mean(np.diff(logmel, axis=1) ** 2, axis=-1))
        else:
            flux = np.zeros(logmel.shape[:2], np.float32)
        for a in (centroid, bandwidth, rolloff, flatness, flux):
            out += _mean_std(a)
    return out


def _moments(d: np.ndarray):
    """Peak-normalised central moments (no overflow for large counts): scale, var, m3, m4 (float64)."""
    dpk = np.abs(d).max(axis=1)
    scale = np.where(dpk > 0, dpk, 1).astype(d.dtype)
    dn = d / scale[:, None]
    d2 = dn * dn
    var_n = d2.mean(axis=1, dtype=np.float64)
    m3 = (d2 * dn).mean(axis=1, dtype=np.float64)
    m4 = (d2 * d2).mean(axis=1, dtype=np.float64)
    return dpk.astype(np.float64), scale.astype(np.float64), var_n, m3, m4


def _shape_moments(var_n, m3, m4):
    ok = var_n > 1e-12
    safe = np.where(ok, var_n, 1.0)
    return np.where(ok, m4 / safe ** 2, 0.0), np.where(ok, m3 / safe ** 1.5, 0.0)


def _time_stats(x: np.ndarray, d: np.ndarray, mu: np.ndarray) -> list[np.ndarray]:
    _, s64, var_n, m3, m4 = _moments(d)
    std = np.sqrt(var_n) * s64
    rms = np.sqrt(std * std + mu.astype(np.float64) ** 2)
    peak = np.abs(x).max(axis=1).astype(np.float64)
    kurt, skew = _shape_moments(var_n, m3, m4)
    crest = np.where(rms > 0, peak / np.where(rms > 0, rms, 1.0), 0.0)
    sb = np.signbit(d)
    zcr = np.count_nonzero(sb[:, 1:] != sb[:, :-1], axis=1) / max(x.shape[1] - 1, 1)
    return [mu, std, rms, peak, crest, kurt, skew, zcr]


def _ratio(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def _bearing_waveform(d: np.ndarray) -> list[np.ndarray]:
    """DC-free, gain-free waveform statistics (classic condition-monitoring indicators)."""
    peak, s64, var_n, m3, m4 = _moments(d)
    rms = np.sqrt(var_n) * s64
    a = np.abs(d)
    mean_abs = a.mean(axis=1, dtype=np.float64)
    mean_sqrt = np.sqrt(a).mean(axis=1, dtype=np.float64)
    kurt, skew = _shape_moments(var_n, m3, m4)
    return [_ratio(peak, rms), kurt, skew, _ratio(rms, mean_abs), _ratio(peak, mean_abs),
            _ratio(peak, mean_sqrt * mean_sqrt)]


def _spectrum_sets(d: np.ndarray, P: _Plan, sets) -> list[np.ndarray]:
    from scipy import fft as sfft

    n = d.shape[1]
    X = sfft.rfft(d, axis=1)  # complex64 (m, n//2+1)
    out = []
    bearing = "bearing" in sets
    if "envelope" in sets or bearing:
        H = np.zeros((d.shape[0], n), dtype=X.dtype)
        last = X.shape[1] - (1 if n % 2 == 0 else 0)
        H[:, P.hp_bin:last] = 2.0 * X[:, P.hp_bin:last]
        if n % 2 == 0 and P.hp_bin < X.shape[1]:
            H[:, last] = X[:, last]
        env = np.abs(sfft.ifft(H, axis=1))
        mean_env = env.mean(axis=1, keepdims=True)
        env = env / np.maximum(mean_env, 1e-20) - np.where(mean_env > 1e-20, 1.0, 0.0)
    if "envelope" in sets:
        E = sfft.rfft(env, axis=1)[:, P.env_sel]
        pe = (E.real * E.real + E.imag * E.imag) * np.float32(1.0 / n)
        out += [np.log10(pe @ P.env_bands + _EPS)]
        k = np.argmax(pe, axis=1)
        peak = pe[np.arange(len(k)), k]
        med = np.median(pe, axis=1)
        out += [P.env_freqs[k], np.log10((peak + _EPS) / (med + _EPS))]
    if "bands" in sets or bearing:
        Xw = _hann_from_rect(X, n)
        pw = (Xw.real * Xw.real + Xw.imag * Xw.imag) * P.full_scale
        band_e = pw @ P.bands
    if "bands" in sets:
        out += [np.log10(band_e + _EPS)]
    if bearing:
        # share of the energy per band: the spectrum's shape, whatever the sensor gain or machine level
        band_e = band_e.astype(np.float64)
        total = band_e.sum(axis=1, keepdims=True)
        share = np.where(total > 0, band_e / np.where(total > 0, total, 1.0), 1.0 / N_BANDS)
        out += [np.log10(np.maximum(share, 1e-12))]
        out += _bearing_waveform(d)
        e2 = (env * env).mean(axis=1, dtype=np.float64)  # env: envelope / its mean - 1
        e4 = ((env * env) ** 2).mean(axis=1, dtype=np.float64)
        live = mean_env[:, 0] > 1e-20
        out += [np.sqrt(e2), np.where(e2 > 1e-12, e4 / np.where(e2 > 1e-12, e2, 1.0) ** 2, 0.0),
                np.where(live, env.max(axis=1) + 1.0, 0.0)]
    return out


def _columns(parts: list[np.ndarray], m: int) -> np.ndarray:
    cols = [p.reshape(m, -1) for p in parts]
    return np.concatenate(cols, axis=1) if cols else np.zeros((m, 0), np.float32)


def extract_features(windows: np.ndarray, sample_rate: int,
                     feature_sets=FEATURE_SETS) -> tuple[np.ndarray, list[str]]:
    """(n_windows, n_features) float32 and the feature names, for (n_windows, win) windows."""
    sets = _check_sets(feature_sets)
    names = feature_names(sets)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise InvalidInput(f"expected a positive whole sample rate in Hz, got {sample_rate!r}.")
    w = np.asarray(windows)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.dtype.kind not in "iuf":
        raise InvalidInput(f"expected numeric windows of shape (n_windows, win), got {w.dtype} {w.shape}.",
                           hint="Use frame_windows() on a mono recording.")
    m, n = w.shape
    if n < 64:
        raise InvalidInput(f"expected windows of at least 64 samples, got {n}.", hint="Use longer windows.")
    out = np.empty((m, len(names)), dtype=np.float32)
    if m == 0:
        return out, names
    P = _plan(int(n), int(sample_rate))
    chunk = max(1, (1 << 19) // n)
    with np.errstate(all="ignore"):  # only absurd inputs (|x| ~ 1e150) overflow; they are clipped below
        _extract_chunks(w, out, P, sets, chunk)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
    return out, names


def _extract_chunks(w: np.ndarray, out: np.ndarray, P: _Plan, sets, chunk: int) -> None:
    for s in range(0, len(w), chunk):
        x = np.asarray(w[s: s + chunk])
        if not np.isfinite(x).all():
            raise InvalidInput(f"expected finite samples, got NaN/inf in windows {s}..{s + len(x) - 1}.",
                               hint="Clean the recording (read_recording refuses such files).")
        # float32 is plenty (and fast) unless powers of the samples could overflow it.
        dtype = np.float64 if x.size and np.abs(x).max() > 1e12 else np.float32
        x = np.ascontiguousarray(x, dtype=dtype)
        mu = x.mean(axis=1, dtype=np.float64).astype(dtype)
        d = x - mu[:, None]  # short-frame and spectrum features ignore the DC offset (time_mean keeps it)
        if dtype is np.float64:  # the mean of huge samples is rounded: a constant window must still give 0
            d[x.max(axis=1) == x.min(axis=1)] = 0.0
        parts: list[np.ndarray] = []
        if {"logmel", "mfcc", "spectral"} & set(sets):
            parts += _short_frames(d, P, sets)
        if "time" in sets:
            parts += _time_stats(x, d, mu)
        if {"envelope", "bands", "bearing"} & set(sets):
            parts += _spectrum_sets(d, P, sets)
        out[s: s + len(x)] = _columns(parts, len(x))


def recording_features(samples: np.ndarray, sample_rate: int, *, win: int | None = None, hop: int | None = None,
                       feature_sets=FEATURE_SETS, source: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Window a mono signal (default 1 s / 0.5 s) and extract features for every window."""
    from .windows import default_window, frame_windows

    dw, dh = default_window(sample_rate)
    windows = frame_windows(samples, win or dw, hop or dh, source=source, sample_rate=sample_rate)
    return extract_features(windows, sample_rate, feature_sets)
