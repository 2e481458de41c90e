"""A crash or kill -9 mid-import or mid-training never leaves a row pointing at missing blobs."""

import os
import signal
import subprocess
import sys
import time

import pytest

from modelfab.workspace import Workspace


def _consistent(root):
    ws = Workspace.open(root)
    try:
        for sha in ws.meta.referenced_blobs():
            assert ws.blobs.exists(sha), f"row points at missing blob {sha[:12]}"
        for m in ws.models():
            m.predictor  # every registered model loads and verifies
        for d in ws.datasets():
            assert len(ws.load_frame(d)) == d.n_rows
        return ws.datasets(), ws.models()
    finally:
        ws.close()


def _spawn(*args, root):
    env = dict(os.environ, MODELFAB_HOME=str(root))
    return subprocess.Popen([sys.executable, "-m", "modelfab", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    from modelfab.demo import make_factory_table

    path = tmp_path_factory.mktemp("big") / "big.csv"
    make_factory_table(150_000, seed=3).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("delay", [0.5, 1.0, 1.6, 2.4])
def test_kill_during_import(tmp_path, big_csv, delay):
    root = tmp_path / "ws"
    Workspace.init(root).close()
    proc = _spawn("data", "import", str(big_csv), "--name", "big", root=root)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    datasets, _ = _consistent(root)
    assert len(datasets) <= 1
    # and the workspace still works afterwards
    ws = Workspace.open(root)
    res = ws.import_table(big_csv, name="big")
    assert res.dataset.n_rows == 150_000
    ws.close()


def test_kill_during_training(tmp_path, factory_csv):
    root = tmp_path / "ws"
    ws = Workspace.init(root)
    ws.import_table(factory_csv, name="factory")
    ws.close()
    for delay in (3.0, 6.5):
        proc = _spawn("train", "factory", "--target", "quality", "--budget", "8", root=root)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _consistent(root)


def test_failure_between_blobs_and_row_leaves_no_row(ws, factory_csv, monkeypatch):
    def boom(**kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ws.meta, "add_dataset", boom)
    with pytest.raises(RuntimeError):
        ws.import_table(factory_csv, name="x")
    monkeypatch.undo()
    assert ws.datasets() == []
    assert ws.import_table(factory_csv, name="x").created


def test_failure_while_registering_leaves_no_model(ws, factory_csv, monkeypatch):
    ws.import_table(factory_csv, name="f")

    def boom(**kw):
        raise RuntimeError("db gone")

    monkeypatch.setattr(ws.meta, "add_model", boom)
    with pytest.raises(RuntimeError):
        ws.train("f", target="quality", budget=5)
    monkeypatch.undo()
    assert ws.models() == []
    assert os.listdir(ws.tmp_dir) == []  # the half-built package was removed
