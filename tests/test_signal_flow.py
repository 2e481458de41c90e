"""Recordings end to end: import a folder, train anomaly / fault models, predict, listen, threshold."""

import json
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput
from modelfab.modalities.signal import make_machine_dataset, make_machine_sound
from modelfab.workspace import Workspace
from tests.conftest import cli_json, run_cli


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    make_machine_dataset(root / "fan", n_normal=14, n_abnormal=7, seconds=3.0, seed=0)
    make_machine_dataset(root / "faults", n_normal=6, n_abnormal=12, seconds=3.0, seed=1, layout="by_fault")
    return root


@pytest.fixture(scope="module")
def sig_ws(tmp_path_factory, recordings):
    w = Workspace.init(tmp_path_factory.mktemp("sigws") / "ws")
    w.import_recordings(recordings / "fan", "fan")
    yield w
    w.close()


def test_import_folder_labels_and_idempotence(sig_ws, recordings):
    ds = sig_ws.dataset("fan")
    assert ds.kind == "signal" and ds.stats["files"] == 21
    assert ds.stats["labels"] == {"abnormal": 7, "normal": 14}
    assert ds.n_rows == 21 * 5  # 3 s clips, 1 s windows, 0.5 s hop
    feats, files = __import__("modelfab.recordings", fromlist=["x"]).load_signal_tables(sig_ws, ds)
    assert set(feats["file"]) == set(files["file"]) and feats.groupby("file").size().eq(5).all()
    again = sig_ws.import_recordings(recordings / "fan", "fan")
    assert not again.created and again.dataset.version == 1
    other = sig_ws.import_recordings(recordings / "fan", "fan", window_s=0.5)
    assert other.created and other.dataset.version == 2 and other.dataset.n_rows > ds.n_rows


def test_regex_and_csv_labels(tmp_path, recordings):
    w = Workspace.init(tmp_path / "ws")
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sorted((recordings / "faults").rglob("*.wav")):
        shutil.copy(f, flat / f"12k_Drive_End_{f.parent.name}_{f.stem}.wav")
    ds = w.import_recordings(flat, "re", labels=r"regex:Drive_End_([a-z]+)_").dataset
    assert set(ds.stats["labels"]) == {"normal", "impacts", "imbalance", "rubbing"}
    csv = tmp_path / "labels.csv"
    names = sorted(p.name for p in flat.iterdir())
    csv.write_text("file,label\n" + "".join(f"{n},{'good' if 'normal' in n else 'bad'}\n" for n in names))
    ds2 = w.import_recordings(flat, "csvlab", labels=str(csv)).dataset
    assert ds2.stats["labels"] == {"bad": 12, "good": 6}
    with pytest.raises(InvalidInput, match="regular expression"):
        w.import_recordings(flat, "bad", labels="regex:([")


def test_bad_files_are_listed_and_skip_bad_imports_the_rest(tmp_path, recordings):
    w = Workspace.init(tmp_path / "ws")
    folder = tmp_path / "mixed"
    shutil.copytree(recordings / "fan", folder)
    (folder / "normal" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (folder / "normal" / "short.wav").write_bytes(_wav_header(16000, 1, 100) + b"\x00\x00" * 100)
    (folder / "normal" / "notes.txt").write_text("not a recording")
    before = (len(w.datasets()), sorted(w.blobs.iter_ids()))
    with pytest.raises(InvalidInput, match=r"2 of 23 recordings cannot be used.*broken\.wav") as info:
        w.import_recordings(folder, "m")
    assert "--skip-bad" in str(info.value)
    assert (len(w.datasets()), sorted(w.blobs.iter_ids())) == before
    ds = w.import_recordings(folder, "m", skip_bad=True).dataset
    assert ds.stats["files"] == 21
    assert {s["file"] for s in ds.stats["skipped"]} == {"normal/broken.wav", "normal/short.wav"}


def _wav_header(rate: int, channels: int, frames: int, data_bytes: int | None = None) -> bytes:
    data = data_bytes if data_bytes is not None else frames * channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data)


def test_anomaly_from_normal_only_then_semi_supervised(sig_ws, recordings, tmp_path):
    normal_only = sig_ws.import_recordings(recordings / "fan" / "normal", "fan-normal", labels="none").dataset
    t0 = time.monotonic()
    m = sig_ws.train(normal_only, task="anomaly", budget=10, max_false_alarm=0.05)
    assert time.monotonic() - t0 <= 10 * 1.1 + 5
    assert m.task == "anomaly" and m.manifest["threshold"] > 0
    out = m.predictor.predict_files([recordings / "fan"])
    assert list(out.columns[:4]) == ["file", "score", "is_anomaly", "threshold"]
    truth = out["file"].str.startswith("abnormal")
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(truth, out["score"]) > 0.9
    assert out.loc[~truth, "is_anomaly"].mean() <= 0.3  # few false alarms on normals
    semi = sig_ws.train("fan", task="anomaly", budget=10)
    assert semi.metrics["auc"] >= 0.9 and semi.metrics["n_anomaly"] == 7
    hold = semi.holdout()  # every held-out score names its recording (the web's confusion cells open them)
    assert len(hold["file"]) == len(hold["scores"]) == len(hold["y_true"])
    assert {f.split("/")[0] for f in hold["file"][hold["y_true"] == 1]} == {"abnormal"}
    assert {f.split("/")[0] for f in hold["file"][hold["y_true"] == 0]} == {"normal"}
    html, _ = semi.write_report(tmp_path / "rep")
    text = html.read_text(encoding="utf-8")
    assert "Recordings to review" in text and text.count("data:image/png;base64,") >= 4


def test_threshold_moves_without_retraining(sig_ws):
    m = sig_ws.train("fan", task="anomaly", budget=6, name="thr")
    strict = m.with_threshold(threshold=m.manifest["threshold"] * 10)
    assert strict.version == m.version + 1 and strict.manifest["derived_from"]["model"] == m.ref
    assert strict.manifest["files"]["anomaly.npz"] == m.manifest["files"]["anomaly.npz"]
    loose = m.with_threshold(max_false_alarm=0.5)
    assert loose.manifest["threshold"] <= m.manifest["threshold"]
    with pytest.raises(InvalidInput, match="exactly one"):
        m.with_threshold()


def test_fault_classification_by_file(tmp_path, recordings):
    w = Workspace.init(tmp_path / "ws")
    w.import_recordings(recordings / "faults", "faults")
    m = w.train("faults", task="classification", budget=10)
    assert m.task == "classification" and set(m.manifest["labels"]) == {"normal", "impacts", "imbalance", "rubbing"}
    assert m.metrics["file_accuracy"] is not None and m.metrics["window_accuracy"] is not None
    holdout_files = set(m.manifest["data"]["holdout_files"])
    assert holdout_files and len(holdout_files) < 18
    res = cli_json("predict", "faults", str(recordings / "faults"), "-o", str(tmp_path / "p.csv"),
                   "--workspace", str(w.root))
    assert res["rows"] == 18
    df = pd.read_csv(tmp_path / "p.csv")
    assert list(df.columns[:4]) == ["file", "prediction", "label", "probabilities"]
    assert (df["prediction"] == df["label"]).all()  # `prediction` as every kind names it; `label` kept
    probs = json.loads(df["probabilities"].iloc[0])
    assert abs(sum(probs.values()) - 1) < 1e-4
    acc = (df["label"] == df["file"].str.split("/").str[0]).mean()
    assert acc >= 0.8


def test_cli_import_train_predict_listen(tmp_path, recordings):
    ws = tmp_path / "ws"
    w = ["--workspace", str(ws)]
    run_cli("init", str(ws))
    imp = cli_json("data", "import", str(recordings / "fan"), "--name", "fan", *w)
    assert imp["kind"] == "signal" and imp["stats"]["files"] == 21
    tr = cli_json("train", "fan", "--task", "anomaly", "--budget", "8", "--max-false-alarm", "0.05", *w)
    assert tr["task"] == "anomaly" and tr["elapsed_s"] <= 8 * 1.1 + 5
    res = cli_json("predict", "fan", str(recordings / "fan" / "abnormal"), str(recordings / "fan" / "normal" / "normal_0000.wav"),
                   "-o", str(tmp_path / "out.csv"), *w)
    assert res["rows"] == 8
    # live: 3 s normal then 3 s fault as raw PCM on stdin
    x = np.concatenate([make_machine_sound("normal", seconds=3, seed=70), make_machine_sound("rubbing", seconds=3, seed=71)])
    pcm = (x * 32767).astype("<i2").tobytes()
    proc = subprocess.run([sys.executable, "-m", "modelfab", "listen", "fan", "--json", "--smooth", "1", *w],
                          input=pcm, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(rows) == 11  # 6 s, 1 s windows every 0.5 s
    assert all(r["latency_ms"] < 1000 for r in rows)
    first, last = np.mean([r["score"] for r in rows[:3]]), np.mean([r["score"] for r in rows[-3:]])
    assert last > first
    # a dropout (NaN samples at 1.25 s) skips the windows holding it and listening goes on
    f32 = x.astype("<f4")
    f32[int(1.25 * 16000):int(1.25 * 16000) + 10] = np.nan
    proc = subprocess.run([sys.executable, "-m", "modelfab", "listen", "fan", "--json", "--format", "f32le", *w],
                          input=f32.tobytes(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    skipped = [r for r in rows if "error" in r]
    assert len(rows) == 11 and [(r["start_s"], r["end_s"]) for r in skipped] == [(0.5, 1.5), (1.0, 2.0)]
    assert "the first at 1.250 s" in skipped[0]["error"] and all("score" in r for r in rows if "error" not in r)
    for bad, says in ((["--format", "mp3"], "--format must be one of"), (["--smooth", "0"], "--smooth is a number"),
                      (["--sample-rate", "-5"], "--sample-rate is in Hz"),
                      (["--idle-timeout", "-1"], "--idle-timeout is a number of seconds above 0")):
        proc = subprocess.run([sys.executable, "-m", "modelfab", "listen", "fan", *bad, *w], input=b"",
                              capture_output=True, timeout=120)
        assert proc.returncode == 2 and says in proc.stderr.decode() and "listening:" not in proc.stderr.decode()


def test_anomaly_needs_normal_recordings(tmp_path, recordings):
    w = Workspace.init(tmp_path / "ws")
    w.import_recordings(recordings / "faults", "faults")
    with pytest.raises(InvalidInput, match="No recordings labelled 'good'"):
        w.train("faults", task="anomaly", budget=5, normal_label="good")
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        w.train("faults", task="anomaly", budget=5, max_false_alarm=2)
