"""Synthetic rotating-machine sounds, so demos and tests need no real data.

A *machine* (``machine_id``) fixes the harmonic profile of its hum, the
shape of its broadband (airflow/structure) noise, its bearing geometry
(ball-pass order) and the structural resonance that bearing impacts excite.
A *clip* (``seed``) varies speed (+-1 %), harmonic amplitudes and phases,
noise, a slow amplitude drift, the overall gain (+-15 %, e.g. microphone
placement) and, for faults, the fault severity (0.4..1). Faults sit at a
moderate level: visible to spectral / envelope features, not to the eye.

* ``normal``: hum at the shaft frequency rpm/60 and its harmonics, a little
  electrical hum at 100 Hz, shaped noise, slow drift.
* ``impacts``: bearing defect: short decaying bursts of the resonance, at a
  ball-pass-like rate (3-5.5 x shaft) with slip jitter, modulated once per
  revolution (inner-race-like).
* ``imbalance``: stronger 1x component, some 2x, and once-per-revolution
  amplitude modulation of the whole sound.
* ``rubbing``: intermittent high-frequency friction-noise bursts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InvalidInput

FAULTS = ("impacts", "imbalance", "rubbing")
KINDS = ("normal",) + FAULTS
LAYOUTS = ("normal_abnormal", "by_fault")


def _machine(machine_id: int, sr: int) -> dict:
    rng = np.random.default_rng([7919, int(machine_id)])
    nyq = sr / 2.0
    k = np.arange(1, 61)
    return {
        "harm": rng.uniform(0.3, 1.0, 60) / k ** 0.7,
        "bumps": [(rng.uniform(0.05, 0.7) * nyq, rng.uniform(0.02, 0.1) * nyq, rng.uniform(1.0, 4.0))
                  for _ in range(3)],
        "tilt": rng.uniform(0.3, 0.7),
        "bearing_order": rng.uniform(3.0, 5.5),
        "resonance": rng.uniform(0.3, 0.6) * nyq,
        "decay_s": rng.uniform(0.6e-3, 1.5e-3),
        "rub_band": (rng.uniform(0.3, 0.45) * nyq, rng.uniform(0.7, 0.9) * nyq),
    }


def _shaped_noise(rng, n: int, sr: int, shape) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= shape(f)
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)) + 1e-12)


def make_machine_sound(kind: str = "normal", *, seconds: float = 2.0, sample_rate: int = 16000, rpm: float = 1500,
                       seed: int = 0, machine_id: int = 0) -> np.ndarray:
    """One clip, float32 in [-1, 1], ``round(seconds * sample_rate)`` samples."""
    if kind not in KINDS:
        raise InvalidInput(f"expected a sound kind from {', '.join(KINDS)}, got {kind!r}.")
    if not (0 < seconds <= 3600) or not (1000 <= sample_rate <= 384_000) or not (60 <= rpm <= 60_000):
        raise InvalidInput(f"expected 0 < seconds <= 3600, 1000 <= sample_rate <= 384000 and 60 <= rpm <= 60000, "
                           f"got seconds={seconds}, sample_rate={sample_rate}, rpm={rpm}.")
    sr, n = int(sample_rate), max(1, int(round(seconds * sample_rate)))
    M = _machine(machine_id, sr)
    rng = np.random.default_rng([int(machine_id), int(seed), 0])
    t = np.arange(n) / sr

    # Shaft rotation with a slow speed wobble.
    f0 = rpm / 60.0 * (1 + rng.normal(0, 0.01))
    inst = f0 * (1 + 0.003 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(inst) / sr

    k_max = int(min(60, (0.45 * sr) // f0))
    amps = M["harm"][:k_max] * (1 + 0.1 * rng.standard_normal(k_max)).clip(0.5, 1.5)
    phis = rng.uniform(0, 2 * np.pi, k_max)
    hum = np.zeros(n)
    for k in range(1, k_max + 1):
        hum += amps[k - 1] * np.sin(k * phase + phis[k - 1])
    hum = hum / _rms(hum) * 0.06
    hum += 0.004 * np.sin(2 * np.pi * 100.0 * t + rng.uniform(0, 2 * np.pi))

    def noise_shape(f):
        g = 1.0 / (1.0 + f / 200.0) ** M["tilt"]
        for c, w, a in M["bumps"]:
            g = g * (1 + a * np.exp(-0.5 * ((f - c) / w) ** 2))
        return g

    x = hum + 0.04 * _shaped_noise(rng, n, sr, noise_shape)
    drift = 1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))
    x *= drift

    if kind != "normal":
        frng = np.random.default_rng([int(machine_id), int(seed), 1 + FAULTS.index(kind)])
        sev = frng.uniform(0.4, 1.0)
        x = _add_fault(kind, x, phase + phis[0], f0, sr, M, frng, sev)

    x *= 1 + 0.15 * (2 * rng.random() - 1)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _add_fault(kind, x, phase, f0, sr, M, rng, sev) -> np.ndarray:
    """``phase``: shaft angle, aligned with the hum's 1x component."""
    n = len(x)
    if kind == "impacts":
        period = 1.0 / (f0 * M["bearing_order"])
        times, tt = [], rng.uniform(0, period)
        while tt < n / sr:
            times.append(tt)
            tt += period * (1 + 0.005 * rng.standard_normal())
        idx = np.minimum((np.asarray(times) * sr).astype(int), n - 1)
        train = np.zeros(n)
        np.add.at(train, idx, (1 + 0.3 * rng.standard_normal(len(idx))) * (1 + 0.5 * np.cos(phase[idx])))
        L = int(8 * M["decay_s"] * sr) + 1
        tl = np.arange(L) / sr
        ir = np.exp(-tl / M["decay_s"]) * np.sin(2 * np.pi * M["resonance"] * (1 + 0.02 * rng.standard_normal()) * tl)
        from scipy.signal import fftconvolve

        bursts = fftconvolve(train, ir)[:n]
        return x + bursts / (np.abs(bursts).max() + 1e-12) * 0.15 * sev
    if kind == "imbalance":
        x = x * (1 + 0.15 * sev * np.sin(phase + rng.uniform(0, 2 * np.pi)))
        return x + 0.04 * sev * np.sin(phase + rng.uniform(-0.5, 0.5)) \
            + 0.015 * sev * np.sin(2 * phase + rng.uniform(0, 2 * np.pi))
    # rubbing: friction noise in a high band, in bursts of 20-80 ms, 2-6 per second.
    lo, hi = M["rub_band"]
    noise = _shaped_noise(rng, n, sr, lambda f: ((f > lo) & (f < hi)).astype(float))
    gate = np.zeros(n)
    n_bursts = max(1, int(rng.uniform(2, 6) * n / sr))
    for start in rng.integers(0, n, n_bursts):
        L = int(rng.uniform(0.02, 0.08) * sr)
        seg = np.hanning(L)[: max(0, min(L, n - start))]
        gate[start: start + len(seg)] = np.maximum(gate[start: start + len(seg)], seg)
    return x + noise * gate * 0.06 * sev


def make_machine_dataset(out_dir, *, n_normal: int = 20, n_abnormal: int = 8, layout: str = "normal_abnormal",
                         seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0, fmt: str = "wav",
                         rpm: float = 1500, machine_id: int = 0) -> Path:
    """Write a labelled folder of clips (16-bit PCM); deterministic for a seed. Returns ``out_dir``.

    ``layout="normal_abnormal"``: ``normal/normal_0000.wav``, ``abnormal/<fault>_0000.wav`` (faults cycle
    through FAULTS). ``layout="by_fault"``: ``normal/...``, ``impacts/...``, ``imbalance/...``, ``rubbing/...``.
    """
    import soundfile as sf

    if layout not in LAYOUTS:
        raise InvalidInput(f"expected layout {' or '.join(LAYOUTS)}, got {layout!r}.")
    if fmt not in ("wav", "flac"):
        raise InvalidInput(f"expected fmt 'wav' or 'flac', got {fmt!r}.")
    if n_normal < 0 or n_abnormal < 0:
        raise InvalidInput(f"expected non-negative clip counts, got n_normal={n_normal}, n_abnormal={n_abnormal}.")
    out = Path(out_dir)
    seeds = np.random.default_rng([int(seed), 104729]).integers(0, 2**31 - 1, n_normal + n_abnormal)
    jobs = [("normal", "normal", f"normal_{i:04d}") for i in range(n_normal)]
    for j in range(n_abnormal):
        fault = FAULTS[j % len(FAULTS)]
        folder = "abnormal" if layout == "normal_abnormal" else fault
        jobs.append((fault, folder, f"{fault}_{j:04d}"))
    for (kind, folder, stem), s in zip(jobs, seeds):
        x = make_machine_sound(kind, seconds=seconds, sample_rate=sample_rate, rpm=rpm, seed=int(s),
                               machine_id=machine_id)
        (out / folder).mkdir(parents=True, exist_ok=True)
        sf.write(str(out / folder / f"{stem}.{fmt}"), x, int(sample_rate), subtype="PCM_16", format=fmt.upper())
    out.mkdir(parents=True, exist_ok=True)
    return out
