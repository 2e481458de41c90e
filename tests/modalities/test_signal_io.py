"""Reading recordings: round-trips of every format, channels, resampling, hostile files, listing, labels."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from modelfab.errors import InvalidInput, TooLarge, UnsupportedFormat
from modelfab.modalities.signal import (
    SIGNAL_EXTENSIONS,
    label_from,
    labels_for_files,
    list_recordings,
    read_labels_csv,
    read_recording,
)
from modelfab.settings import Settings

sf = pytest.importorskip("soundfile")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _signal(n=4000, ch=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.9, 0.9, (n, ch)).astype(np.float32)


def _one_line(exc_info, name: str):
    msg = str(exc_info.value)
    assert "\n" not in msg and name in msg, msg
    return msg


def _wav_bytes(channels=1, rate=16000, bits=16, data=b"\x00" * 200, data_size=None, riff_size=None):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("subtype,tol", [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-7),
                                         ("FLOAT", 0), ("DOUBLE", 1e-7)])
def test_wav_subtypes_round_trip(tmp_path, subtype, tol):
    x = _signal()
    p = tmp_path / "a.wav"
    sf.write(p, x, 16000, subtype=subtype)
    rec = read_recording(p)
    assert rec.samples.dtype == np.float32 and rec.samples.ndim == 1 and len(rec.samples) == 4000
    assert rec.sample_rate == 16000 and rec.n_channels_in_file == 1
    assert rec.meta["subtype"] == subtype and rec.meta["format"] == "wav"
    assert np.abs(rec.samples - x[:, 0]).max() <= tol + 1e-9
    assert rec.source == str(p)


def test_pcm_is_scaled_to_unit_range(tmp_path):
    p = tmp_path / "full.wav"
    sf.write(p, np.array([32767, -32768, 0, 16384], dtype=np.int16), 8000, subtype="PCM_16")
    rec = read_recording(p)
    assert np.allclose(rec.samples, [32767 / 32768, -1.0, 0.0, 0.5])


def test_wave_format_extensible_multichannel_channel_choice(tmp_path):
    x = _signal(3000, 4)
    p = tmp_path / "multi.wav"
    sf.write(p, x, 48000, subtype="PCM_24", format="WAVEX")
    assert open(p, "rb").read(22)[20:22] == b"\xfe\xff"  # WAVE_FORMAT_EXTENSIBLE tag
    assert np.allclose(read_recording(p).samples, x[:, 0], atol=1e-6)
    assert read_recording(p).meta["channel"] == 0
    assert np.allclose(read_recording(p, channel=2).samples, x[:, 2], atol=1e-6)
    assert np.allclose(read_recording(p, channel="3").samples, x[:, 3], atol=1e-6)
    assert np.allclose(read_recording(p, channel="mean").samples, x.mean(axis=1), atol=1e-6)
    assert read_recording(p).n_channels_in_file == 4
    for bad in (4, -1, "left", True):
        with pytest.raises(InvalidInput) as ei:
            read_recording(p, channel=bad)
        assert "0..3" in _one_line(ei, "multi.wav")


def test_multichannel_audio_is_decoded_block_by_block_keeping_one_channel(tmp_path, monkeypatch):
    from modelfab.modalities.signal import io as signal_io

    monkeypatch.setattr(signal_io, "AUDIO_BLOCK_FRAMES", 1000)  # 5,500 frames: six blocks, the last one short
    x = _signal(5500, 3)
    sf.write(tmp_path / "s.flac", x, 16000, subtype="PCM_24")
    full = sf.read(tmp_path / "s.flac", dtype="float32", always_2d=True)[0]
    for channel, want in ((None, full[:, 0]), (2, full[:, 2]), ("1", full[:, 1]),
                          ("mean", full.astype(np.float64).mean(axis=1))):
        rec = read_recording(tmp_path / "s.flac", channel=channel)
        assert rec.samples.shape == (5500,) and np.allclose(rec.samples, want, atol=1e-7)
        assert rec.n_channels_in_file == 3 and rec.meta["channel"] == (0 if channel is None else
                                                                         "mean" if channel == "mean" else int(channel))
        assert "picked" not in rec.meta and "truncated" not in rec.meta
    with pytest.raises(InvalidInput, match=r"expected channel 0\.\.2 or 'mean', got 3"):
        read_recording(tmp_path / "s.flac", channel=3)


def test_flac_and_ogg(tmp_path):
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "a.flac", x, 16000, subtype="PCM_16")
    assert np.abs(read_recording(tmp_path / "a.flac").samples - x).max() < 1e-4
    sf.write(tmp_path / "a.ogg", x, 16000, format="OGG", subtype="VORBIS")
    rec = read_recording(tmp_path / "a.ogg")
    assert rec.sample_rate == 16000 and abs(len(rec.samples) - 16000) < 1100
    n = min(len(rec.samples), 16000)
    assert np.corrcoef(rec.samples[:n], x[:n])[0, 1] > 0.95  # lossy, but the same tone


def test_resampling_keeps_frequency(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    sf.write(tmp_path / "cd.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), sr, subtype="FLOAT")
    rec = read_recording(tmp_path / "cd.wav", sample_rate=16000)
    assert rec.sample_rate == 16000 and rec.meta["resampled_from"] == sr
    assert abs(len(rec.samples) - 16000) <= 1
    spec = np.abs(np.fft.rfft(rec.samples))
    assert abs(np.argmax(spec) * 16000 / len(rec.samples) - 1000) < 2
    assert abs(np.sqrt(np.mean(rec.samples[100:-100] ** 2)) - 0.5 / np.sqrt(2)) < 0.01
    assert read_recording(tmp_path / "cd.wav", sample_rate=sr).meta.get("resampled_from") is None


def test_mat_v5_cwru_like(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    x = np.random.default_rng(1).normal(0, 0.1, (5000, 1))
    p = tmp_path / "12k_Drive_End_IR014_1_170.mat"
    scipy_io.savemat(p, {"X170_DE_time": x, "X170_FE_time": x[:3000] * 2, "X170RPM": np.array([[1797]], np.uint16),
                         "note": "text"})
    rec = read_recording(p, sample_rate=12000, variable="DE_time")
    assert rec.meta["variable"] == "X170_DE_time" and rec.meta["rpm"] == 1797 and rec.sample_rate == 12000
    assert np.allclose(rec.samples, x[:, 0].astype(np.float32))
    assert read_recording(p, sample_rate=12000).meta["variable"] == "X170_DE_time"  # largest numeric array
    assert read_recording(p, sample_rate=12000, variable="FE").meta["variable"] == "X170_FE_time"
    with pytest.raises(InvalidInput) as ei:
        read_recording(p, sample_rate=12000, variable="BA_time")
    assert "X170_DE_time" in _one_line(ei, p.name)
    with pytest.raises(InvalidInput) as ei:
        read_recording(p)
    assert "--sample-rate" in _one_line(ei, p.name)


def test_mat_v5_rate_variable_and_row_vector(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    x = np.sin(np.arange(8000) / 5.0)
    scipy_io.savemat(tmp_path / "r.mat", {"sig": x[None, :], "fs": 8000.0})
    rec = read_recording(tmp_path / "r.mat")
    assert rec.sample_rate == 8000 and len(rec.samples) == 8000 and rec.n_channels_in_file == 1
    assert len(read_recording(tmp_path / "r.mat", sample_rate=4000).samples) == 4000
    scipy_io.savemat(tmp_path / "c.mat", {"name": "only text"})
    with pytest.raises(InvalidInput):
        read_recording(tmp_path / "c.mat", sample_rate=1000)


def test_mat_v7_compressed_v4_and_big_endian(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    x = np.random.default_rng(3).normal(size=(2000, 2))
    for name, kw in (("z.mat", dict(do_compression=True)), ("v4.mat", dict(format="4"))):
        scipy_io.savemat(tmp_path / name, {"sig": x, "fs": np.array([[2000.0]]), "RPM": 1750}, **kw)
        rec = read_recording(tmp_path / name, channel="mean")
        assert rec.sample_rate == 2000 and rec.meta["rpm"] == 1750 and rec.n_channels_in_file == 2
        assert np.allclose(rec.samples, x.mean(axis=1))

    def element(t, data):
        return struct.pack(">II", t, len(data)) + data + b"\0" * (-len(data) % 8)
    body = (element(6, struct.pack(">II", 6, 0)) + element(5, struct.pack(">ii", 10, 1)) + element(1, b"bev")
            + element(9, np.arange(10, dtype=">f8").tobytes()))
    head = b"MATLAB 5.0 MAT-file, big-endian".ljust(116) + b"\0" * 8 + struct.pack(">H", 0x0100) + b"MI"
    (tmp_path / "be.mat").write_bytes(head + struct.pack(">II", 14, len(body)) + body)
    assert np.array_equal(read_recording(tmp_path / "be.mat", sample_rate=10).samples, np.arange(10))


def test_damaged_mat_that_crashes_scipy_is_refused_cleanly(tmp_path):
    """scipy.io.loadmat reads out of bounds on this file (SIGBUS/SIGSEGV or a random error); we must not."""
    scipy_io = pytest.importorskip("scipy.io")
    x = np.random.default_rng(0).normal(0, 0.3, (3000, 2)).astype(np.float32)
    p = tmp_path / "crash.mat"
    scipy_io.savemat(p, {"X1_DE_time": x[:, :1].astype(float), "X1RPM": np.array([[1797]])})
    raw = bytearray(p.read_bytes())
    for i, v in [(63, 8), (193, 87), (242, 1), (555, 248), (600, 155), (633, 17)]:
        raw[i] = v
    p.write_bytes(raw)
    with pytest.raises(InvalidInput) as ei:
        read_recording(p, sample_rate=12000)
    assert "does not match shape" in _one_line(ei, "crash.mat")


def test_random_damage_never_leaks_a_raw_exception(tmp_path):
    """Small seeded fuzz: truncations and byte flips of every format give a result or an InvalidInput."""
    scipy_io = pytest.importorskip("scipy.io")
    h5py = pytest.importorskip("h5py")
    pd = pytest.importorskip("pandas")
    x = _signal(1500, 2)
    sf.write(tmp_path / "s.wav", x, 16000, subtype="PCM_24", format="WAVEX")
    sf.write(tmp_path / "s.flac", x, 16000)
    np.save(tmp_path / "s.npy", x)
    scipy_io.savemat(tmp_path / "s.mat", {"X1_DE_time": x[:, :1].astype(float), "X1RPM": np.array([[1797]])})
    scipy_io.savemat(tmp_path / "z.mat", {"X1_DE_time": x[:, :1].astype(float)}, do_compression=True)
    with h5py.File(tmp_path / "h.mat", "w", userblock_size=512) as f:
        f["X"] = x.T
    pd.DataFrame(x, columns=["a", "b"]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame(x, columns=["a", "b"]).to_parquet(tmp_path / "s.parquet")
    rng = np.random.default_rng(42)
    outcomes = set()
    for name in ("s.wav", "s.flac", "s.npy", "s.mat", "z.mat", "h.mat", "s.csv", "s.parquet"):
        good = (tmp_path / name).read_bytes()
        for i in range(25):
            bad = bytearray(good[: rng.integers(1, len(good))] if i % 3 == 0 else good)
            for _ in range(rng.integers(1, 12)):
                pos = rng.integers(0, min(len(bad), 700) if i % 3 == 1 else len(bad))
                bad[pos] = rng.integers(256)
            p = tmp_path / f"bad_{name}"
            p.write_bytes(bad)
            try:
                rec = read_recording(p, sample_rate=None if name.endswith((".wav", ".flac")) else 16000)
                assert rec.samples.dtype == np.float32 and np.isfinite(rec.samples).all()
                outcomes.add("ok")
            except InvalidInput as exc:
                assert "\n" not in str(exc) and p.name in str(exc)
                outcomes.add("refused")
    assert outcomes == {"ok", "refused"}


def test_mat_v73_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    x = np.random.default_rng(2).normal(0, 1, 3000)
    p = tmp_path / "v73.mat"
    with h5py.File(p, "w", userblock_size=512) as f:
        f.create_dataset("X097_DE_time", data=x[None, :])  # MATLAB stores N x 1 as 1 x N in HDF5
        f.create_dataset("X097RPM", data=np.array([[1796.0]]))
        f.create_dataset("#refs#/junk", data=np.zeros((10000,)))
    with open(p, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116))
    rec = read_recording(p, sample_rate=12000, variable="DE_time")
    assert np.allclose(rec.samples, x.astype(np.float32)) and rec.meta["rpm"] == 1796
    assert rec.meta["format"] == "mat-v7.3"
    with pytest.raises(TooLarge):
        read_recording(p, sample_rate=12000, settings=Settings(max_signal_samples=1000))


def test_npy_1d_2d_and_orientation(tmp_path):
    x = _signal(2000, 3)
    np.save(tmp_path / "a.npy", x[:, 0].astype(np.float64))
    np.save(tmp_path / "b.npy", (x * 1000).astype(np.int16))
    np.save(tmp_path / "c.npy", np.asfortranarray(x.T))  # channels first
    assert np.allclose(read_recording(tmp_path / "a.npy", sample_rate=100).samples, x[:, 0])
    b = read_recording(tmp_path / "b.npy", sample_rate=100, channel="mean")
    assert np.allclose(b.samples, (x * 1000).astype(np.int16).mean(axis=1), atol=1e-3)  # physical units kept
    c = read_recording(tmp_path / "c.npy", sample_rate=100, channel=1)
    assert c.n_channels_in_file == 3 and np.allclose(c.samples, x[:, 1])
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "a.npy")
    assert "--sample-rate" in _one_line(ei, "a.npy")


def test_csv_variants(tmp_path):
    x = _signal(500, 2)
    t = np.arange(500) / 1000
    lines = ["time,vib_x,vib_y,label"] + [f"{a},{b},{c},ok" for a, b, c in zip(t, x[:, 0], x[:, 1])]
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n")
    rec = read_recording(tmp_path / "h.csv", sample_rate=1000)
    assert rec.n_channels_in_file == 2 and rec.meta["columns"] == ["vib_x", "vib_y"]
    assert np.allclose(rec.samples, x[:, 0], atol=1e-6)
    assert np.allclose(read_recording(tmp_path / "h.csv", sample_rate=1000, channel="vib_y").samples, x[:, 1], atol=1e-6)
    (tmp_path / "n.csv").write_text("\n".join(f"{v:.6f}" for v in x[:, 1]))
    assert np.allclose(read_recording(tmp_path / "n.csv", sample_rate=1000).samples, x[:, 1], atol=1e-6)
    (tmp_path / "de.csv").write_text("Zeit;Kanal1\n" + "\n".join(f"{i};{v:.6f}".replace(".", ",") for i, v in
                                                                  enumerate(x[:, 0])))
    assert np.allclose(read_recording(tmp_path / "de.csv", sample_rate=1000, channel="Kanal1").samples, x[:, 0],
                       atol=1e-6)
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "h.csv")
    assert "--sample-rate" in _one_line(ei, "h.csv")


def test_csv_bad_values(tmp_path):
    rows = [f"{i * 0.1}" for i in range(300)]
    (tmp_path / "gap.csv").write_text("v\n" + "\n".join(rows[:100] + [""] * 1 + rows[100:]) + "\n1e999\n")
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "gap.csv", sample_rate=10)
    assert "non-finite" in _one_line(ei, "gap.csv")
    (tmp_path / "txt.csv").write_text("v\n" + "\n".join(rows) + "\noops\n")
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "txt.csv", sample_rate=10)
    _one_line(ei, "txt.csv")
    (tmp_path / "words.csv").write_text("name,comment\na,b\nc,d\n")
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "words.csv", sample_rate=10)
    assert "numeric" in _one_line(ei, "words.csv")


def test_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    x = _signal(800, 2)
    pd.DataFrame({"time": np.arange(800) / 100, "a": x[:, 0], "b": x[:, 1], "s": ["x"] * 800}).to_parquet(
        tmp_path / "p.parquet")
    rec = read_recording(tmp_path / "p.parquet", sample_rate=100, channel="b")
    assert rec.n_channels_in_file == 2 and np.allclose(rec.samples, x[:, 1])
    with pytest.raises(TooLarge):
        read_recording(tmp_path / "p.parquet", sample_rate=100, settings=Settings(max_signal_samples=1000))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(UnsupportedFormat) as ei:
        read_recording(tmp_path / "bad.parquet", sample_rate=100)
    _one_line(ei, "bad.parquet")


# ----------------------------------------------------------------------------- hostile / broken files
def test_wav_header_claiming_65535_channels(tmp_path):
    (tmp_path / "wide.wav").write_bytes(_wav_bytes(channels=65535, data=b"\x00" * 1000))
    with pytest.raises(TooLarge) as ei:
        read_recording(tmp_path / "wide.wav")
    assert "65535" in _one_line(ei, "wide.wav")


def test_wav_header_claiming_zero_channels(tmp_path):
    (tmp_path / "none.wav").write_bytes(_wav_bytes(channels=0))
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "none.wav")
    assert "got 0" in _one_line(ei, "none.wav")


def test_wav_header_claiming_4gb_is_refused_as_truncated(tmp_path):
    data = (np.arange(500, dtype=np.int16) * 7).tobytes()
    (tmp_path / "huge.wav").write_bytes(_wav_bytes(data=data, data_size=0xFFFFFFF0, riff_size=0xFFFFFFFF))
    with pytest.raises(InvalidInput, match=r"declares 4,294,967,280 bytes .* holds only 1,000 .*truncated") as ei:
        read_recording(tmp_path / "huge.wav")
    _one_line(ei, "huge.wav")
    # 0xFFFFFFFF is what streaming writers leave when they cannot fix the header: read to the end
    (tmp_path / "streamed.wav").write_bytes(_wav_bytes(data=data, data_size=0xFFFFFFFF, riff_size=0xFFFFFFFF))
    rec = read_recording(tmp_path / "streamed.wav")
    assert len(rec.samples) == 500 and rec.meta["data_size_unknown"] is True
    assert np.allclose(rec.samples, np.arange(500) * 7 / 32768)


def test_truncated_wav_is_refused(tmp_path):
    x = _signal(32000, 1)
    sf.write(tmp_path / "full.wav", x, 16000, subtype="PCM_16")
    raw = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: 44 + 2 * 24000])  # the header says 2 s, the file holds 1.5 s
    with pytest.raises(InvalidInput, match=r"declares 64,000 bytes of samples \(2.00 s\) but the file holds only "
                                           r"48,000 \(1.50 s\): it is truncated") as ei:
        read_recording(tmp_path / "cut.wav")
    assert "export the recording again" in ei.value.hint
    assert "truncated" not in read_recording(tmp_path / "full.wav").meta
    (tmp_path / "hdr.wav").write_bytes(raw[:30])
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "hdr.wav")
    _one_line(ei, "hdr.wav")


def test_audio_container_is_sniffed_before_decoding(tmp_path, capfd):
    import io

    buf = io.BytesIO()
    sf.write(buf, _signal(16000)[:, 0], 16000, format="MP3")
    (tmp_path / "mp3_as.wav").write_bytes(buf.getvalue())
    (tmp_path / "id3.wav").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + buf.getvalue())
    sf.write(tmp_path / "real.flac", _signal(4000), 16000, subtype="PCM_16")
    (tmp_path / "flac_as.wav").write_bytes((tmp_path / "real.flac").read_bytes())
    (tmp_path / "text.ogg").write_bytes(b"hello, this is not audio at all")
    for name, want in (("mp3_as.wav", "the file is MP3 data, not WAV"), ("id3.wav", "the file is MP3 data, not WAV"),
                       ("flac_as.wav", "the file is FLAC data, not WAV"),
                       ("text.ogg", r"expected Ogg data, but its first bytes \(b'hello, this '\) do not match the Ogg format")):
        with pytest.raises(UnsupportedFormat, match=want) as ei:
            read_recording(tmp_path / name)
        _one_line(ei, name)
    with pytest.raises(UnsupportedFormat) as ei:
        read_recording(tmp_path / "flac_as.wav")
    assert "rename it to .flac" in ei.value.hint
    assert capfd.readouterr().err == ""  # no decoder noise: nothing was decoded
    assert read_recording(tmp_path / "real.flac").sample_rate == 16000


def test_truncated_flac_is_refused(tmp_path):
    sf.write(tmp_path / "a.flac", _signal(16000), 16000, subtype="PCM_16")
    raw = (tmp_path / "a.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "cut.flac")
    _one_line(ei, "cut.flac")


def test_zero_frame_and_empty_files(tmp_path):
    (tmp_path / "silent.wav").write_bytes(_wav_bytes(data=b""))
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "silent.wav")
    assert "0 frames" in _one_line(ei, "silent.wav")
    for name in ("empty.wav", "empty.npy", "empty.csv", "empty.mat"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(InvalidInput) as ei:
            read_recording(tmp_path / name, sample_rate=10)
        assert "empty" in _one_line(ei, name)


def test_content_not_matching_extension(tmp_path):
    (tmp_path / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    with pytest.raises(UnsupportedFormat) as ei:
        read_recording(tmp_path / "notes.wav")
    _one_line(ei, "notes.wav")
    (tmp_path / "garbage.mat").write_text("MATLAB? no. " * 100)
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "garbage.mat", sample_rate=100)
    _one_line(ei, "garbage.mat")
    (tmp_path / "random.mat").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "random.mat", sample_rate=100)
    _one_line(ei, "random.mat")
    (tmp_path / "text.npy").write_text("1,2,3\n")
    with pytest.raises(UnsupportedFormat):
        read_recording(tmp_path / "text.npy", sample_rate=100)
    (tmp_path / "bin.csv").write_bytes(b"\x00\x01\x02garbage" * 10)
    with pytest.raises(UnsupportedFormat):
        read_recording(tmp_path / "bin.csv", sample_rate=100)
    (tmp_path / "song.mp3").write_bytes(b"ID3")
    with pytest.raises(UnsupportedFormat) as ei:
        read_recording(tmp_path / "song.mp3")
    assert ".wav" in _one_line(ei, "song.mp3")
    with pytest.raises(InvalidInput):
        read_recording(tmp_path / "missing.wav")


def test_non_finite_samples(tmp_path):
    x = np.linspace(-1, 1, 100)
    x[[3, 50, 70]] = [np.nan, np.inf, -np.inf]
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "nan.npy", sample_rate=100)
    assert "3 non-finite" in _one_line(ei, "nan.npy")
    sf.write(tmp_path / "nan.wav", x.astype(np.float32), 8000, subtype="FLOAT")
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "nan.wav")
    assert "3 non-finite" in _one_line(ei, "nan.wav")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_npy_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(3, dtype=object)
    arr[:] = [_Evil(marker), 1, 2]
    np.save(tmp_path / "evil.npy", arr, allow_pickle=True)
    with pytest.raises(UnsupportedFormat) as ei:
        read_recording(tmp_path / "evil.npy", sample_rate=100)
    assert "pickle" in _one_line(ei, "evil.npy")
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Evil(marker)))  # the payload is real: unpickling it does create the file
    assert marker.exists()


def test_npy_header_lies_are_caught_before_allocating(tmp_path):
    import numpy.lib.format as fmt

    def fake(name, shape, payload=b"\x00" * 64):
        with open(tmp_path / name, "wb") as fh:
            fmt.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": shape})
            fh.write(payload)
    fake("big.npy", (10**12,))
    with pytest.raises(TooLarge) as ei:
        read_recording(tmp_path / "big.npy", sample_rate=100)
    assert "1,000,000,000,000" in _one_line(ei, "big.npy")
    fake("short.npy", (1000,))
    with pytest.raises(InvalidInput) as ei:
        read_recording(tmp_path / "short.npy", sample_rate=100)
    assert "truncated" in _one_line(ei, "short.npy")
    fake("wide.npy", (1000, 500), b"\x00" * 8 * 500_000)
    with pytest.raises(TooLarge) as ei:
        read_recording(tmp_path / "wide.npy", sample_rate=100)
    assert "got 500" in _one_line(ei, "wide.npy")
    np.save(tmp_path / "cube.npy", np.zeros((4, 4, 4)))
    with pytest.raises(InvalidInput):
        read_recording(tmp_path / "cube.npy", sample_rate=100)
    np.save(tmp_path / "cplx.npy", np.zeros(10, complex))
    with pytest.raises(UnsupportedFormat):
        read_recording(tmp_path / "cplx.npy", sample_rate=100)


def test_settings_limits(tmp_path):
    sf.write(tmp_path / "a.wav", _signal(2000, 4), 8000)
    with pytest.raises(TooLarge) as ei:
        read_recording(tmp_path / "a.wav", settings=Settings(max_signal_samples=1999))
    assert "2,000 frames x 1 channel (one kept of 4)" in _one_line(ei, "a.wav")
    # audio is decoded keeping one channel: the limit counts what is held, not every channel of the file (a 50-min
    # 48 kHz stereo file, 288 M samples in the file, holds 144 M)
    rec = read_recording(tmp_path / "a.wav", settings=Settings(max_signal_samples=4000))
    assert len(rec.samples) == 2000
    with pytest.raises(TooLarge):
        read_recording(tmp_path / "a.wav", settings=Settings(max_channels=2))
    with pytest.raises(TooLarge):
        read_recording(tmp_path / "a.wav", settings=Settings(max_import_bytes=1000))
    with pytest.raises(TooLarge):
        read_recording(tmp_path / "a.wav", sample_rate=384000, settings=Settings(max_signal_samples=9000))
    scipy_io = pytest.importorskip("scipy.io")
    scipy_io.savemat(tmp_path / "m.mat", {"x": np.zeros((5000, 1))})
    with pytest.raises(TooLarge):
        read_recording(tmp_path / "m.mat", sample_rate=10, settings=Settings(max_signal_samples=4999))
    (tmp_path / "c.csv").write_text("\n".join(["1.0"] * 5000))
    with pytest.raises(TooLarge):
        read_recording(tmp_path / "c.csv", sample_rate=10, settings=Settings(max_signal_samples=4000))
    for bad in (0, -5, 1.5, "16k", True):
        with pytest.raises(InvalidInput):
            read_recording(tmp_path / "a.wav", sample_rate=bad)


# ----------------------------------------------------------------------------- folders and labels
def _touch(p: Path, data=b"x"):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_list_recordings(tmp_path):
    root = tmp_path / "data"
    for rel in ["normal/b.wav", "normal/a.WAV", "abnormal/deep/c.flac", "top.npy", "x.csv", "y.parquet", "z.mat",
                "w.ogg", "readme.txt", ".hidden.wav", ".cache/d.wav", "__MACOSX/normal/._a.wav", "normal/img.png"]:
        _touch(root / rel)
    found = [p.relative_to(root).as_posix() for p in list_recordings(root)]
    assert found == ["abnormal/deep/c.flac", "normal/a.WAV", "normal/b.wav", "top.npy", "w.ogg", "x.csv",
                     "y.parquet", "z.mat"]
    assert all(Path(p).suffix.lower() in SIGNAL_EXTENSIONS for p in found)
    with pytest.raises(InvalidInput):
        list_recordings(tmp_path / "nope")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_list_recordings_refuses_links_outside_root(tmp_path):
    root = tmp_path / "data"
    _touch(root / "normal" / "a.wav")
    secret = _touch(tmp_path / "outside" / "secret.wav")
    os.symlink(root / "normal" / "a.wav", root / "normal" / "alias.wav")  # inside: fine
    assert [p.name for p in list_recordings(root)] == ["a.wav", "alias.wav"]
    os.symlink(secret, root / "normal" / "leak.wav")
    with pytest.raises(InvalidInput) as ei:
        list_recordings(root)
    assert "outside" in _one_line(ei, "leak.wav")
    os.remove(root / "normal" / "leak.wav")
    os.symlink(tmp_path / "outside", root / "linked_dir")
    with pytest.raises(InvalidInput):
        list_recordings(root)


def test_label_sources(tmp_path):
    root = tmp_path / "data"
    assert label_from(root / "normal" / "sub" / "a.wav", root, "folder") == "normal"
    assert label_from(root / "a.wav", root, "folder") is None
    assert label_from(Path("normal/a.wav"), Path("."), "folder") == "normal"
    assert label_from(root / "normal" / "a.wav", root, "none") is None
    pat = r"regex:(B0\d\d|IR0\d\d|OR0\d\d@\d+|normal)"
    assert label_from(root / "12k_Drive_End_IR014_1_170.mat", root, pat) == "IR014"
    assert label_from(root / "1HP" / "12k_Drive_End_OR021@6_1_235.mat", root, pat) == "OR021@6"
    assert label_from(root / "normal_0_97.mat", root, pat) == "normal"
    assert label_from(root / "12k_Drive_End_X_1.mat", root, pat) is None
    assert label_from(root / "pump_fault_17.wav", root, r"regex:fault|ok") == "fault"  # no group: whole match
    with pytest.raises(InvalidInput):
        label_from(root / "a.wav", root, "regex:(unclosed")
    with pytest.raises(InvalidInput):
        label_from(root / "a.wav", root, "filename")


def test_labels_csv(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("\ufeffFile , Label\nnormal/a.wav,ok\n b.wav , bad \n.\\sub\\c.wav,ok\nd.wav,\n", encoding="utf-8")
    labels = read_labels_csv(p)
    assert labels == {"normal/a.wav": "ok", "b.wav": "bad", "sub/c.wav": "ok"}
    root = tmp_path / "d"
    files = [root / "normal" / "a.wav", root / "x" / "b.wav", root / "sub" / "c.wav", root / "e.wav"]
    assert list(labels_for_files(files, root, labels).values()) == ["ok", "bad", "ok", None]
    with pytest.raises(InvalidInput):
        labels_for_files(files + [root / "y" / "b.wav"], root, labels)
    p.write_text("file,label\na.wav,ok\na.wav,bad\n")
    with pytest.raises(InvalidInput) as ei:
        read_labels_csv(p)
    assert "line 3" in _one_line(ei, "labels.csv")
    p.write_text("path,class\na.wav,ok\n")
    with pytest.raises(InvalidInput):
        read_labels_csv(p)


@pytest.mark.parametrize("encoding,delimiter", [("gbk", ","), ("gb18030", ";"), ("utf-8-sig", ";"), ("utf-16", "\t"),
                                                ("utf-8", "\t")])
def test_labels_csv_encodings_and_delimiters(tmp_path, encoding, delimiter):
    """A labels file as Excel saves it on a Chinese Windows (GBK) or in Europe (semicolons), or as a TSV, is read
    like a table is (the same sniffing as tabular_io), not refused."""
    p = tmp_path / "labels.csv"
    rows = [("file", "label"), ("正常/a.wav", "正常"), ("b.wav", "轴承故障"), ("c d.wav", "ok")]
    p.write_bytes("".join(delimiter.join(r) + "\r\n" for r in rows).encode(encoding))
    assert read_labels_csv(p) == {"正常/a.wav": "正常", "b.wav": "轴承故障", "c d.wav": "ok"}


# ----------------------------------------------------------------------------- real data (opt-in)
@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_reads_all_real_recordings():
    cwru = sorted((SHARED / "cwru_12k_drive_end").glob("*/*.mat"))
    mimii = sorted((SHARED / "mimii_fan_id00").glob("*/*.wav"))
    assert cwru and mimii
    for p in cwru:
        rec = read_recording(p, sample_rate=12000, variable="DE_time")
        assert rec.meta["variable"].endswith("_DE_time") and 1700 < rec.meta["rpm"] < 1800
        assert len(rec.samples) > 120_000 and np.isfinite(rec.samples).all()
    for p in mimii:
        rec = read_recording(p)
        assert rec.sample_rate == 16000 and len(rec.samples) == 160_000
