"""Several imports, trainings and a serving process at once on one workspace, on SQLite + a folder and on
PostgreSQL + S3: no lost or colliding versions, every row's blobs present and verified, the server answers
throughout."""

import multiprocessing as mp
import os
import threading

import httpx
import numpy as np
import pandas as pd
import pytest

from modelfab.workspace import Workspace
from tests.conftest import start_server
from tests.storage.servers import free_port

N_IMPORTS = 4
N_TRAININGS = 2
RECORD = {"part_id": "P1", "timestamp": "2026-03-04 10:00", "line": "L3", "shift": "C", "material_batch": "MB-001",
          "temperature_c": 75.0, "pressure_bar": 5.9, "spindle_rpm": 1450, "humidity_pct": 40.0,
          "vibration_rms": 2.2, "tool_wear_pct": 90.0, "cycle_time_s": 35.0}


def _import(root, csv, out, go, env):
    os.environ.update(env)  # the fork server keeps the environment it started with
    go.wait(60)
    try:
        with Workspace.open(root) as ws:
            ds = ws.import_table(csv, name="shared").dataset
            out.put(("import", str(csv), ds.version, ds.data_sha))
    except BaseException as exc:
        out.put(("error", f"import {csv.name}: {type(exc).__name__}: {exc}"))
        raise


def _train(root, i, out, go, env):
    os.environ.update(env)
    go.wait(60)
    try:
        with Workspace.open(root) as ws:
            m = ws.train("base:1", target="y", budget=8, name="m", seed=i, learners=("lgbm",), ensemble=False)
            out.put(("train", i, m.version, m.row["package_sha"]))
    except BaseException as exc:
        out.put(("error", f"train {i}: {type(exc).__name__}: {exc}"))
        raise


@pytest.mark.parametrize("backend", ["sqlite-local", "postgresql-s3"])
def test_imports_trainings_and_a_server_at_once(request, backend, flaml_loaded, trained, tmp_path):
    init = {} if backend == "sqlite-local" else {"db_url": request.getfixturevalue("postgres_url"),
                                                 "blobs_url": request.getfixturevalue("s3_url")}
    root = tmp_path / "ws"
    src_ws, src_model = trained
    pkg = src_model.export(tmp_path / "served.mfpkg")
    rng = np.random.default_rng(0)
    base = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    base["y"] = np.where(base.a + base.b > 0, "bad", "good")
    base.to_csv(tmp_path / "base.csv", index=False)
    csvs = []
    for i in range(N_IMPORTS):
        csvs.append(tmp_path / f"part{i}.csv")
        base.assign(a=base.a + i).to_csv(csvs[-1], index=False)
    with Workspace.init(root, **init) as ws:
        ws.import_table(tmp_path / "base.csv", name="base")
        ws.import_package(pkg, name="served")
        _, token = ws.create_token("load", "predict")

    # Writers come from a fresh fork server: forking this process would copy LightGBM's OpenMP pool (the
    # session fixture trained here), which deadlocks the child.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.test_concurrency", "modelfab.training", "modelfab.datasets",
                               "modelfab.automl.engine", "flaml.automl", "lightgbm"])
    out = ctx.Queue()
    go = ctx.Event()
    procs = [ctx.Process(target=_import, args=(root, c, out, go, dict(os.environ))) for c in csvs]
    procs += [ctx.Process(target=_train, args=(root, i, out, go, dict(os.environ))) for i in range(N_TRAININGS)]
    for p in procs:
        p.start()
    server = start_server(root, port := free_port(), "served")
    statuses: list[int] = []
    stop = threading.Event()

    def hammer():
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                statuses.append(c.post(f"http://127.0.0.1:{port}/v1/models/served/predict", json={"records": [RECORD]},
                                       headers={"Authorization": f"Bearer {token}"}).status_code)

    th = threading.Thread(target=hammer)
    th.start()
    try:
        go.set()  # all writers at once, while the server is being called
        results = [out.get(timeout=120) for _ in procs]
        assert not [r for r in results if r[0] == "error"], results
        for p in procs:
            p.join(30)
    finally:
        stop.set()
        th.join()
        server.terminate()
        server.wait(20)
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    assert statuses and set(statuses) == {200}, statuses[:20]

    imports = [r for r in results if r[0] == "import"]
    trainings = [r for r in results if r[0] == "train"]
    assert sorted(r[2] for r in imports) == list(range(1, N_IMPORTS + 1))  # distinct versions, none lost
    assert sorted(r[2] for r in trainings) == list(range(1, N_TRAININGS + 1))
    with Workspace.open(root) as ws:
        for _, csv, version, data_sha in imports:  # every record is the one its writer made
            ds = ws.dataset(f"shared:{version}")
            assert ds.data_sha == data_sha
            got = ws.load_frame(ds)
            want = pd.read_csv(csv)
            np.testing.assert_allclose(got["a"].to_numpy(), want["a"].to_numpy())
        base_id = ws.dataset("base").id
        for _, seed, version, package_sha in trainings:
            m = ws.model(f"m:{version}")
            assert m.row["package_sha"] == package_sha and m.row["dataset_id"] == base_id
            assert len(m.predict(base.drop(columns="y").head(20))) == 20
        assert {m.version for m in ws.models("m")} == set(range(1, N_TRAININGS + 1))
        for sha in ws.meta.referenced_blobs():
            ws.blobs.get_bytes(sha)  # present, and the sha256 matches
