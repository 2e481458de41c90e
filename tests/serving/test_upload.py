"""Uploading recordings to a served anomaly model: real server, real WAV files, hostile uploads."""

import io
import os
import socket
import struct
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from modelfab.modalities.signal import make_machine_dataset, make_machine_sound
from modelfab.workspace import Workspace


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("upl")
    make_machine_dataset(root / "rec", n_normal=10, n_abnormal=5, seconds=3.0, seed=3)
    ws = Workspace.init(root / "ws")
    ws.import_recordings(root / "rec", "pump")
    ws.train("pump", task="anomaly", budget=6)
    _, token = ws.create_token("t", "predict")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MODELFAB_HOME=str(ws.root), MODELFAB_MAX_UPLOAD_BYTES=str(2 * 1024 * 1024))
    proc = subprocess.Popen([sys.executable, "-m", "modelfab", "serve", "pump", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(proc.stderr.read())
    yield base, {"Authorization": f"Bearer {token}"}
    proc.terminate()
    proc.wait(timeout=20)


def _wav(x: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_upload_scores_normal_low_and_fault_high(served):
    base, auth = served
    url = base + "/v1/models/pump/predict-file"
    good = httpx.post(url, files={"file": ("good.wav", _wav(make_machine_sound("normal", seconds=3, seed=90)))}, headers=auth)
    bad = httpx.post(url, files={"file": ("bad.wav", _wav(make_machine_sound("impacts", seconds=3, seed=91)))}, headers=auth)
    assert good.status_code == 200, good.text
    g, b = good.json()["result"], bad.json()["result"]
    assert good.json()["predictions"] == [g] and bad.json()["predictions"] == [b]  # the shape of /predict's answer
    assert b["score"] > g["score"] and b["is_anomaly"] is True
    assert {"start_s", "end_s"} <= set(b["top_windows"][0]) and b["top_features"][0]["description"]


@pytest.mark.parametrize("name,payload,status,pattern", [
    ("huge.wav", struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFF0, b"WAVE", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16,
                             b"data", 0xFFFFFF00) + b"\x00" * 64, 422, ""),
    ("../../etc/passwd.wav", b"RIFF....WAVEjunk", 415, ""),
    ("notes.txt", b"hello", 415, "Upload a recording"),  # a file of the wrong kind: 415, as for table models
    ("big.wav", b"\x00" * (3 * 1024 * 1024), 413, "limit"),
])
def test_hostile_uploads_get_4xx(served, name, payload, status, pattern):
    base, auth = served
    r = httpx.post(base + "/v1/models/pump/predict-file", files={"file": (name, payload)}, headers=auth, timeout=30)
    assert 400 <= r.status_code < 500, r.text
    if pattern:
        assert pattern in r.json()["error"]["message"]
    assert "Traceback" not in r.text
    ok = httpx.post(base + "/v1/models/pump/predict-file",
                    files={"file": ("ok.wav", _wav(make_machine_sound("normal", seconds=2, seed=5)))}, headers=auth)
    assert ok.status_code == 200


def test_a_misnamed_upload_field_gets_the_error_shape_and_says_how_to_send_it(served):
    base, auth = served
    wav = _wav(make_machine_sound("normal", seconds=2, seed=5))
    for kw in ({"files": {"upload": ("ok.wav", wav)}}, {"content": wav}):
        r = httpx.post(base + "/v1/models/pump/predict-file", headers=auth, timeout=30, **kw)
        assert r.status_code == 422, r.text
        err = r.json()["error"]  # ours, not FastAPI's {"detail": [...]}
        assert err["code"] == "invalid_input" and "file" in err["message"] and "-F file=@" in err["hint"]


def test_json_records_to_a_signal_model_explains_what_to_do(served):
    base, auth = served
    r = httpx.post(base + "/v1/models/pump/predict", json={"records": [{"a": 1}]}, headers=auth)
    assert r.status_code == 422 and "/v1/models/pump/predict-file" in r.json()["error"]["message"]


def test_file_answers_read_like_predict_answers():
    from modelfab.serving.app import _as_prediction

    rec = {"file": "a.wav", "label": "inner", "confidence": 0.9, "probabilities": '{"inner": 0.9, "outer": 0.1}'}
    row = _as_prediction(rec)
    assert row["prediction"] == "inner" and row["probabilities"] == {"inner": 0.9, "outer": 0.1}
    assert row["label"] == "inner" and rec["probabilities"].startswith("{")  # own fields kept, input untouched
    table = _as_prediction({"prediction": "defect", "proba_ok": 0.2, "proba_defect": 0.8})
    assert table["probabilities"] == {"ok": 0.2, "defect": 0.8} and table["confidence"] == 0.8  # as /predict rows
    anomaly = _as_prediction({"file": "x.png", "score": 3.0, "is_anomaly": True, "threshold": 2.0})
    assert "prediction" not in anomaly and "probabilities" not in anomaly


def test_a_recording_classifier_is_described_by_its_file_input_not_its_features():
    from types import SimpleNamespace

    from modelfab.serving.app import _describe

    man = {"modality": "signal", "labels": ["inner", "normal"], "input_schema": {"columns": [
        {"name": "spectral_centroid_mean", "kind": "numeric"}, {"name": "time_rms", "kind": "numeric"}]}}
    m = SimpleNamespace(name="bearings", version=1, task="classification", manifest=man, metrics={"accuracy": 1.0})
    assert _describe(m)["inputs"] == [{"name": "recording", "kind": "file"}]
