"""Synthetic machine sounds: determinism, physics of each fault, datasets on disk, and that features separate them."""

from __future__ import annotations

import numpy as np
import pytest

from modelfab.errors import InvalidInput
from modelfab.modalities.signal import (
    FAULTS,
    label_from,
    list_recordings,
    make_machine_dataset,
    make_machine_sound,
    read_recording,
    recording_features,
)

SR = 16000


def _auc(neg, pos) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    neg, pos = np.asarray(neg, float), np.asarray(pos, float)
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


def _band_power(x, lo, hi, sr=SR):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return spec[(f >= lo) & (f < hi)].sum()


def test_clip_properties_and_determinism():
    for kind in ("normal",) + FAULTS:
        x = make_machine_sound(kind, seconds=1.5, seed=4)
        assert x.dtype == np.float32 and x.shape == (24000,) and np.isfinite(x).all()
        assert np.abs(x).max() <= 1.0 and 0.02 < np.sqrt(np.mean(x ** 2)) < 0.3
        assert np.array_equal(x, make_machine_sound(kind, seconds=1.5, seed=4))
    a, b = make_machine_sound(seed=1), make_machine_sound(seed=2)
    assert not np.allclose(a, b) and abs(np.corrcoef(a, b)[0, 1]) < 0.9
    assert make_machine_sound(sample_rate=12000, seconds=2).shape == (24000,)
    for bad in (dict(kind="broken"), dict(seconds=0), dict(sample_rate=10), dict(rpm=0)):
        with pytest.raises(InvalidInput):
            make_machine_sound(**bad)


def test_hum_follows_rpm():
    for rpm in (1500, 2400):
        x = make_machine_sound(seconds=4.0, rpm=rpm, seed=0)
        spec = np.abs(np.fft.rfft(x))
        f = np.fft.rfftfreq(len(x), 1 / SR)
        low = (f > 5) & (f < 80)
        assert abs(f[low][np.argmax(spec[low])] - rpm / 60) < 0.05 * rpm / 60


def test_each_fault_changes_what_it_should():
    """Same seed -> same base sound, so fault clip minus normal clip is the fault alone (impacts, rubbing)."""
    from scipy.signal import hilbert

    from modelfab.modalities.signal.synth import _machine

    m = _machine(0, SR)
    bpf = 1500 / 60 * m["bearing_order"]

    def rms(x):
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))

    for seed in range(5):
        n = make_machine_sound("normal", seconds=2, seed=seed).astype(np.float64)
        imb = make_machine_sound("imbalance", seconds=2, seed=seed)
        assert _band_power(imb, 20, 30) > 1.3 * _band_power(n, 20, 30)  # 1x (25 Hz) component up
        assert 0.8 < rms(imb) / rms(n) < 1.4

        imp = make_machine_sound("impacts", seconds=2, seed=seed) - n
        assert 0.03 < rms(imp) / rms(n) < 0.3  # moderate: -10 to -30 dB under the machine
        assert _band_power(imp, m["resonance"] - 800, m["resonance"] + 800) > 0.8 * _band_power(imp, 0, SR / 2)
        env = np.abs(hilbert(imp))
        spec = np.abs(np.fft.rfft(env - env.mean()))
        f = np.fft.rfftfreq(len(env), 1 / SR)
        sel = (f > 20) & (f < 500)
        assert abs(f[sel][np.argmax(spec[sel])] - bpf) < 0.03 * bpf  # impacts repeat at the ball-pass rate

        rub = make_machine_sound("rubbing", seconds=2, seed=seed) - n
        assert 0.03 < rms(rub) / rms(n) < 0.4
        lo, hi = m["rub_band"]
        assert _band_power(rub, lo - 100, hi + 100) > 0.95 * _band_power(rub, 0, SR / 2)  # high-frequency
        frames = np.mean(rub[: len(rub) // 160 * 160].reshape(-1, 160) ** 2, axis=1)
        assert 0.02 < np.mean(frames > 0.1 * frames.max()) < 0.4  # intermittent bursts


def _clip_features(kind, seed, machine_id=0):
    F, _ = recording_features(make_machine_sound(kind, seconds=2.0, seed=seed, machine_id=machine_id), SR)
    return F.mean(axis=0)


def test_features_separate_normal_from_faults_unsupervised():
    """Distance to the normal clips (z-scores fitted on normal only) ranks faulty clips above new normal ones."""
    train = np.array([_clip_features("normal", 1000 + i) for i in range(20)])
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-6

    def score(v):
        return float(np.mean(((v - mu) / sd) ** 2))

    normal = [score(_clip_features("normal", 2000 + i)) for i in range(15)]
    per_fault = {k: [score(_clip_features(k, 3000 + i)) for i in range(8)] for k in FAULTS}
    aucs = {k: _auc(normal, v) for k, v in per_fault.items()}
    overall = _auc(normal, sum(per_fault.values(), []))
    assert overall > 0.9, (overall, aucs)
    assert min(aucs.values()) > 0.75, aucs


def test_features_separate_faults_supervised():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def clips(offset, n_normal, n_fault, machine_id):
        X = [_clip_features("normal", offset + i, machine_id) for i in range(n_normal)]
        X += [_clip_features(FAULTS[i % 3], offset + 500 + i, machine_id) for i in range(n_fault)]
        return np.array(X), np.array([0] * n_normal + [1] * n_fault)

    Xtr, ytr = clips(0, 15, 15, machine_id=1)
    Xte, yte = clips(10_000, 12, 12, machine_id=1)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(Xtr, ytr)
    p = clf.predict_proba(Xte)[:, 1]
    assert _auc(p[yte == 0], p[yte == 1]) > 0.9


def test_dataset_on_disk(tmp_path):
    sf = pytest.importorskip("soundfile")
    root = make_machine_dataset(tmp_path / "ds", n_normal=5, n_abnormal=4, seconds=1.0, seed=7)
    files = list_recordings(root)
    rel = [f.relative_to(root).as_posix() for f in files]
    assert rel == ["abnormal/imbalance_0001.wav", "abnormal/impacts_0000.wav", "abnormal/impacts_0003.wav",
                   "abnormal/rubbing_0002.wav"] + [f"normal/normal_{i:04d}.wav" for i in range(5)]
    labels = [label_from(f, root, "folder") for f in files]
    assert labels.count("normal") == 5 and labels.count("abnormal") == 4
    info = sf.info(str(files[0]))
    assert info.subtype == "PCM_16" and info.samplerate == SR and info.frames == SR and info.channels == 1
    rec = read_recording(files[-1])
    assert rec.sample_rate == SR and np.isfinite(rec.samples).all()

    again = make_machine_dataset(tmp_path / "again", n_normal=5, n_abnormal=4, seconds=1.0, seed=7)
    other = make_machine_dataset(tmp_path / "other", n_normal=5, n_abnormal=4, seconds=1.0, seed=8)
    for f in files:
        r = f.relative_to(root)
        assert (again / r).read_bytes() == f.read_bytes()
        assert (other / r).read_bytes() != f.read_bytes()


def test_dataset_by_fault_layout_and_flac(tmp_path):
    root = make_machine_dataset(tmp_path / "bf", n_normal=2, n_abnormal=6, layout="by_fault", seconds=0.5,
                                fmt="flac", sample_rate=12000)
    files = list_recordings(root)
    labels = sorted(label_from(f, root, "folder") for f in files)
    assert labels == ["imbalance", "imbalance", "impacts", "impacts", "normal", "normal", "rubbing", "rubbing"]
    assert all(f.suffix == ".flac" for f in files)
    assert read_recording(files[0]).sample_rate == 12000
    assert label_from(files[0], root, r"regex:^(normal|impacts|imbalance|rubbing)_") == labels[0]
    for bad in (dict(layout="flat"), dict(fmt="mp3"), dict(n_normal=-1)):
        with pytest.raises(InvalidInput):
            make_machine_dataset(tmp_path / "x", **bad)
