"""Windowing and features: shapes, names, finiteness, and real values on signals with known answers."""

from __future__ import annotations


import numpy as np
import pytest

from modelfab.errors import InvalidInput
from modelfab.modalities.signal import (
    FEATURE_SETS,
    default_window,
    extract_features,
    feature_names,
    frame_windows,
    make_machine_sound,
    n_windows,
    recording_features,
    window_starts,
)
from modelfab.modalities.signal.features import ALL_SETS, VIBRATION_SETS, _slaney_mel, resolve_feature_sets

SR = 16000
PER_SET = {"logmel": 128, "mfcc": 40, "spectral": 10, "time": 8, "envelope": 18, "bands": 16}


def _tone(freq, seconds=1.0, sr=SR, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _feat(x, sr=SR, sets=FEATURE_SETS):
    F, names = extract_features(np.asarray(x)[None, :], sr, sets)
    return dict(zip(names, F[0].astype(float)))


# ----------------------------------------------------------------------------- windows
def test_default_window():
    assert default_window(16000) == (16000, 8000)
    assert default_window(12000) == (12000, 6000)
    assert default_window(48000) == (48000, 24000)
    assert default_window(100) == (256, 128)
    for bad in (0, -1, 16000.5, "16000", True):
        with pytest.raises(InvalidInput):
            default_window(bad)


def test_frame_windows_is_a_view_with_the_right_content():
    x = np.arange(10_000, dtype=np.float32)
    w = frame_windows(x, 4000, 1500)
    assert w.shape == (5, 4000) == (n_windows(10_000, 4000, 1500), 4000)
    assert np.shares_memory(w, x)
    assert np.array_equal(w[3], x[4500:8500])
    assert np.allclose(window_starts(10_000, 4000, 1500, 1000), [0, 1.5, 3.0, 4.5, 6.0])
    assert frame_windows(x, 10_000, 1).shape == (1, 10_000)


def test_frame_windows_refuses_short_or_bad_input():
    with pytest.raises(InvalidInput) as ei:
        frame_windows(np.zeros(15_999), 16000, 8000, source="pump/a.wav", sample_rate=16000)
    msg = str(ei.value)
    assert "pump/a.wav" in msg and "15999" in msg and "16000" in msg and "\n" not in msg
    with pytest.raises(InvalidInput):
        frame_windows(np.zeros((2, 20000)), 16000, 8000)
    for win, hop in ((0, 1), (100, 0), (32, 16), (100.0, 50)):
        with pytest.raises(InvalidInput):
            frame_windows(np.zeros(1000), win, hop)
    assert n_windows(100, 200, 50) == 0


# ----------------------------------------------------------------------------- shapes and names
def test_shapes_names_and_counts():
    x = make_machine_sound("normal", seconds=3.0)
    F, names = recording_features(x, SR)
    assert F.shape == (5, 220) and F.dtype == np.float32 and np.isfinite(F).all()
    assert len(set(names)) == len(names) == 220 and names == feature_names()
    for s, n in PER_SET.items():
        Fs, ns = extract_features(frame_windows(x, SR, SR // 2), SR, (s,))
        assert Fs.shape == (5, n) and len(ns) == n
        assert np.array_equal(Fs, F[:, [names.index(k) for k in ns]])  # same values alone or together
    assert {"logmel_mean_12", "time_kurtosis", "env_band_3", "env_peak_hz", "band_15", "mfcc_std_19",
            "spectral_rolloff_mean"} <= set(names)
    _, ns = extract_features(np.zeros((1, 2048)), SR, ["bands", "time"])
    assert ns == feature_names(("time", "bands"))  # canonical order, whatever order was asked
    for bad in ([], ["nope"], ("logmel", "chroma")):
        with pytest.raises(InvalidInput):
            extract_features(np.zeros((1, 2048)), SR, bad)


def test_names_do_not_depend_on_rate_and_odd_rates_work():
    for sr, n in ((1000, 256), (8000, 8000), (12000, 12000), (44100, 44100), (16000, 999), (16000, 64)):
        x = np.random.default_rng(sr).normal(0, 0.1, (3, n)).astype(np.float32)
        F, names = extract_features(x, sr)
        assert F.shape == (3, 220) and names == feature_names() and np.isfinite(F).all(), (sr, n)


def test_bad_windows_are_refused():
    with pytest.raises(InvalidInput):
        extract_features(np.zeros((2, 32)), SR)
    x = np.zeros((2, 4096), np.float32)
    x[1, 7] = np.nan
    with pytest.raises(InvalidInput):
        extract_features(x, SR)
    with pytest.raises(InvalidInput):
        extract_features(np.zeros((2, 3, 4096)), SR)
    with pytest.raises(InvalidInput):
        extract_features(np.zeros((2, 4096)), 0)
    assert extract_features(np.zeros((0, 4096)), SR)[0].shape == (0, 220)


@pytest.mark.parametrize("kind", ["silence", "constant", "huge_constant", "tiny", "huge", "impulse", "square",
                                  "int16"])
def test_all_features_finite_for_degenerate_input(kind):
    n = 12000
    x = {
        "silence": np.zeros(n),
        "constant": np.full(n, 0.3),
        "huge_constant": np.full(n, -3e300),
        "tiny": np.random.default_rng(0).normal(0, 1e-30, n),
        "huge": np.random.default_rng(0).normal(0, 1e30, n),
        "impulse": np.eye(1, n, 5000)[0],
        "square": np.sign(np.sin(np.arange(n) / 3.0)),
        "int16": (np.random.default_rng(0).normal(0, 3000, n)).astype(np.int16),
    }[kind]
    F, names = extract_features(np.stack([x, x]), 12000, ALL_SETS)
    assert np.isfinite(F).all(), [nm for nm, v in zip(names, F[0]) if not np.isfinite(v)]
    # the same recording twice gives the same features, up to float32 rounding (numpy 2.4's SIMD FFT paths differ
    # by row: 1e-7 relative, and 1e-6 on the near-zero MFCCs of silence)
    assert np.allclose(F[0], F[1], rtol=1e-5, atol=1e-5)
    f = dict(zip(names, F[0]))
    if kind in ("tiny", "huge", "int16"):  # Gaussian noise at any scale
        assert f["time_kurtosis"] == pytest.approx(3.0, abs=0.3) and f["spectral_flatness_mean"] > 0.3
    if kind == "huge":
        assert f["time_std"] == pytest.approx(1e30, rel=0.05) and f["band_15"] > 50
    if kind in ("silence", "constant", "huge_constant"):
        assert f["time_std"] == 0 and f["time_kurtosis"] == 0 and f["time_zcr"] == 0 and f["time_crest"] >= 0
        assert f["spectral_centroid_mean"] == 0
        # no shape without a signal: zero statistics and an even spread over the bands
        assert all(f[k] == 0 for k in names if k.startswith("brg_") and not k.startswith("brg_rel_"))
        assert len({f[f"brg_rel_{i}"] for i in range(16)}) == 1 and f["brg_rel_0"] == pytest.approx(-np.log10(16))
    if kind in ("tiny", "huge", "int16"):
        assert f["brg_kurtosis"] == pytest.approx(3.0, abs=0.3) and f["brg_shape"] == pytest.approx(1.2533, rel=0.02)
    if kind == "square":
        assert f["brg_crest"] == pytest.approx(1.0, abs=0.02) and f["brg_kurtosis"] == pytest.approx(1.0, abs=0.02)


# ----------------------------------------------------------------------------- values with known answers
def test_time_features_of_a_sine_and_of_noise():
    f = _feat(_tone(200, amp=0.5), sets=("time",))
    assert f["time_rms"] == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert f["time_peak"] == pytest.approx(0.5, rel=1e-3)
    assert f["time_crest"] == pytest.approx(np.sqrt(2), rel=1e-3)
    assert f["time_kurtosis"] == pytest.approx(1.5, rel=1e-2)
    assert abs(f["time_skewness"]) < 1e-2 and abs(f["time_mean"]) < 1e-3
    assert f["time_zcr"] == pytest.approx(2 * 200 / SR, rel=0.02)
    g = _feat(np.random.default_rng(1).normal(0.2, 0.1, SR), sets=("time",))
    assert g["time_kurtosis"] == pytest.approx(3.0, abs=0.15) and g["time_mean"] == pytest.approx(0.2, abs=2e-3)
    assert g["time_std"] == pytest.approx(0.1, rel=0.02)


def test_spectral_shape_of_a_tone():
    f = _feat(_tone(1000), sets=("spectral",))
    assert f["spectral_centroid_mean"] == pytest.approx(1000, rel=0.03)
    assert f["spectral_rolloff_mean"] == pytest.approx(1000, abs=40)
    assert f["spectral_bandwidth_mean"] < 100 and f["spectral_flatness_mean"] < 0.01
    noise = _feat(np.random.default_rng(2).normal(0, 0.1, SR), sets=("spectral",))
    assert noise["spectral_flatness_mean"] > 0.3 and noise["spectral_centroid_mean"] == pytest.approx(4000, rel=0.05)
    steady = _feat(np.random.default_rng(3).normal(0, 0.1, SR), sets=("spectral",))["spectral_flux_mean"]
    bursty = np.random.default_rng(3).normal(0, 0.1, SR) * np.repeat(np.tile([1.0, 0.01], 8), SR // 16)
    assert _feat(bursty, sets=("spectral",))["spectral_flux_mean"] > 2 * steady


def test_logmel_and_mfcc_are_consistent():
    F, names = extract_features(_tone(2000)[None, :], SR, ("logmel", "mfcc"))
    f = F[0]
    mean = f[:64]
    mel = _slaney_mel(SR, 1024, 64)
    centre_bin = np.argmax(mel, axis=1) * SR / 1024
    assert abs(centre_bin[np.argmax(mean)] - 2000) < 150  # loudest mel band is the one around 2 kHz
    from scipy.fft import dct

    mfcc_mean = f[names.index("mfcc_mean_0"): names.index("mfcc_mean_19") + 1]
    assert np.allclose(mfcc_mean, dct(mean.astype(np.float64), type=2, norm="ortho")[:20], atol=1e-2)
    quiet = extract_features((_tone(2000) * 0.01)[None, :], SR, ("logmel",))[0][0]
    assert np.allclose(quiet[:64][mean > -60] - mean[mean > -60], -40, atol=0.5)  # 0.01 amplitude = -40 dB


def test_mel_filters_match_librosa():
    librosa = pytest.importorskip("librosa")
    for sr, n_fft in ((16000, 1024), (12000, 1024), (1000, 256)):
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=64, fmin=0.0, fmax=sr / 2)
        assert np.allclose(_slaney_mel(sr, n_fft, 64), ref, atol=1e-7)


def test_band_energy_peaks_where_the_tone_is():
    names = feature_names(("bands",))
    lo = np.argmax([_feat(_tone(60), sets=("bands",))[n] for n in names])
    hi = np.argmax([_feat(_tone(6000), sets=("bands",))[n] for n in names])
    assert lo < 4 and hi >= 14
    f = _feat(_tone(6000, amp=0.5), sets=("bands",))
    g = _feat(_tone(6000, amp=0.05), sets=("bands",))
    assert g[names[hi]] - f[names[hi]] == pytest.approx(-2.0, abs=0.01)  # 20 dB less = 2 decades of energy


def _bearing(rate_hz, sr=12000, seconds=1.0, seed=0):
    """Impacts at rate_hz exciting a 3 kHz resonance, in noise; like a bearing defect."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    train = np.zeros(n)
    train[(np.arange(0, seconds, 1 / rate_hz) * sr).astype(int)] = 1.0
    t = np.arange(int(0.004 * sr)) / sr
    ir = np.exp(-t / 0.0006) * np.sin(2 * np.pi * 3000 * t)
    return (np.convolve(train, ir)[:n] + rng.normal(0, 0.05, n)).astype(np.float32)


def test_envelope_finds_the_defect_frequency():
    for rate in (107.0, 162.0):  # CWRU-like BPFO / BPFI at ~1797 rpm
        f = _feat(_bearing(rate), 12000, ("envelope",))
        assert abs(f["env_peak_hz"] - rate) <= 1.5, f["env_peak_hz"]
        assert f["env_peak_ratio"] > 2.0
    calm = _feat(np.random.default_rng(5).normal(0, 0.05, 12000), 12000, ("envelope",))
    assert calm["env_peak_ratio"] < 1.6
    # A 30 Hz shaft hum below the high-pass must not create an envelope line.
    hum = _feat(_tone(30, sr=12000) + np.random.default_rng(6).normal(0, 0.05, 12000), 12000, ("envelope",))
    assert hum["env_peak_ratio"] < 1.6


def test_presets_and_bearing_names_are_stable():
    assert resolve_feature_sets("vibration") == VIBRATION_SETS == ("spectral", "envelope", "bearing")
    assert resolve_feature_sets("sound") == FEATURE_SETS
    assert resolve_feature_sets(" bearing, sound ") == ALL_SETS  # comma lists, canonical order
    assert resolve_feature_sets(["time", "vibration"]) == ("spectral", "time", "envelope", "bearing")
    names = feature_names("bearing")
    assert names == [f"brg_rel_{i}" for i in range(16)] + [
        "brg_crest", "brg_kurtosis", "brg_skewness", "brg_shape", "brg_impulse", "brg_clearance",
        "brg_env_depth", "brg_env_kurtosis", "brg_env_crest"]
    vib = feature_names("vibration")
    assert len(vib) == 53 and vib[:10] == feature_names("spectral") and vib[-25:] == names
    assert feature_names() == feature_names("sound") and len(feature_names()) == 220  # the default is unchanged
    x = _bearing(107.0)
    F, ns = extract_features(x[None, :], 12000, ALL_SETS)
    alone, _ = extract_features(x[None, :], 12000, ("bearing",))
    assert np.array_equal(F[0, [ns.index(k) for k in names]], alone[0])  # same values alone or with the others
    for bad in ("vibrations", "sound,chroma", " , ", [3]):
        with pytest.raises(InvalidInput, match="presets sound, vibration"):
            resolve_feature_sets(bad)


def test_bearing_values_of_a_sine_and_of_impacts():
    f = _feat(_tone(200, sr=12000), 12000, ("bearing",))
    assert f["brg_crest"] == pytest.approx(np.sqrt(2), rel=1e-3)
    assert f["brg_kurtosis"] == pytest.approx(1.5, rel=1e-2) and abs(f["brg_skewness"]) < 1e-2
    assert f["brg_shape"] == pytest.approx(np.pi / (2 * np.sqrt(2)), rel=1e-3)
    assert f["brg_impulse"] == pytest.approx(np.pi / 2, rel=1e-3)
    assert f["brg_rel_0"] < -6 and max(f[f"brg_rel_{i}"] for i in range(16)) > -0.01  # all energy in one band
    impacts = _feat(_bearing(107.0), 12000, ("bearing",))
    calm = _feat(np.random.default_rng(5).normal(0, 0.05, 12000), 12000, ("bearing",))
    assert impacts["brg_env_depth"] > 2 * calm["brg_env_depth"]
    assert impacts["brg_env_kurtosis"] > calm["brg_env_kurtosis"] + 1 and impacts["brg_kurtosis"] > calm["brg_kurtosis"]


def test_vibration_features_ignore_gain_and_dc_offset():
    x = np.stack([_bearing(107.0, seconds=0.25, seed=s) for s in range(3)]) * 2.0  # ~0.1 RMS, like g units
    F0, names = extract_features(x, 12000, ALL_SETS)
    vib = [names.index(k) for k in feature_names("vibration")]
    for gain, offset in ((10.0, 0.0), (0.1, 0.0), (1.0, 5.0), (1000.0, -300.0)):
        F, _ = extract_features(gain * x + offset, 12000, ALL_SETS)
        assert np.allclose(F[:, vib], F0[:, vib], rtol=2e-3, atol=2e-3), (gain, offset)
        # ... while the level and offset features of the default do move (the test can tell)
        moved = np.abs(F - F0).max(axis=0) > 0.1
        assert moved[names.index("band_8")] == (gain != 1.0) and moved[names.index("time_mean")] == (offset != 0)


def test_windows_in_one_batch_equal_windows_one_by_one():
    x = make_machine_sound("impacts", seconds=40.0, seed=3)
    W = frame_windows(x, SR, SR // 2)
    assert len(W) > 64  # more than one internal chunk
    F, _ = extract_features(W, SR)
    for i in (0, 31, 32, 33, len(W) - 1):
        single = extract_features(W[i: i + 1], SR)[0][0]
        assert np.allclose(F[i], single, rtol=1e-4, atol=1e-4)
