"""A real local Ray (num_cpus=2, started once for this file): same results as local, loopback only,
the budget promise held including Ray's start-up."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import cli_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_ex():
    from modelfab.execution.ray_executor import RayExecutor

    try:  # imported before modelfab starts it, as in a notebook: the harder case for binding to loopback
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("Ray is not installed: `make test` installs the ray extra (pip install -e '.[ray]').")
    ex = RayExecutor(num_cpus=2)
    ex.start()
    assert ex.slots() == 2
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def model_ws(tmp_path_factory):
    from modelfab.demo import write_factory_csv
    from modelfab.workspace import Workspace

    root = tmp_path_factory.mktemp("ray") / "ws"
    data = write_factory_csv(root.parent / "factory.csv", n_rows=2000, seed=7)
    ws = Workspace.init(root)
    ws.import_table(data, name="factory")
    model = ws.train("factory", target="quality", budget=8, learners=("lgbm",), ensemble=False)
    yield ws, model, data
    ws.close()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _listening() -> dict[str, str]:
    """socket inode -> local address of every listening TCP socket on this machine."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":  # LISTEN
                found[f[9]] = f[1].split(":")[0]
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_local_ray_listens_on_loopback_only_without_dashboard(ray_ex):
    listening = _listening()
    addrs, cmdlines, dashboard_ports = [], [], []
    for pid in _descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        cmdlines.append(cmdline)
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                addrs.append(listening[target[8:-1]])
                if "dashboard/dashboard.py" in cmdline:
                    dashboard_ports.append(cmdline)
    assert any("gcs_server" in c for c in cmdlines) and any("raylet" in c for c in cmdlines)
    assert len(addrs) >= 3, "expected Ray's GCS, raylet and workers to listen"
    assert set(addrs) <= LOOPBACK, f"Ray listens beyond loopback: {sorted(set(addrs) - LOOPBACK)}"
    # Ray keeps a headless "--minimal" dashboard process (usage stats only): no HTTP server, so no job API
    assert not dashboard_ports, "the Ray dashboard / job API must not listen"
    assert all("--minimal" in c for c in cmdlines if "dashboard/dashboard.py" in c)
    assert os.environ.get("RAY_USAGE_STATS_ENABLED") == "0"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batch_prediction_on_ray_equals_local(ray_ex, model_ws, tmp_path, suffix):
    from modelfab.batch import predict_table_file

    ws, model, data = model_ws
    src = data if suffix == ".csv" else tmp_path / "in.parquet"
    if suffix == ".parquet":
        pd.read_csv(data).to_parquet(src, index=False)
    local = predict_table_file(model, src, tmp_path / f"local{suffix}", chunk_rows=450)
    seen = []
    on_ray = predict_table_file(model, src, tmp_path / f"ray{suffix}", chunk_rows=450, executor=ray_ex,
                                progress=lambda rows, total: seen.append(rows))
    assert local["rows"] == on_ray["rows"] == 2000
    assert seen == sorted(seen) and seen[-1] == 2000 and len(seen) == 5  # 5 chunks, written in order
    if suffix == ".csv":
        assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    else:
        a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        pd.testing.assert_frame_equal(b[pd.read_parquet(src).columns], pd.read_parquet(src))  # rows in order


def test_batch_prediction_on_a_process_pool_equals_local(model_ws, tmp_path):
    from modelfab.batch import predict_table_file
    from modelfab.execution import get_executor

    ws, model, data = model_ws
    predict_table_file(model, data, tmp_path / "local.csv", chunk_rows=1000)
    with get_executor("process", workers=2) as pool:
        predict_table_file(model, data, tmp_path / "pool.csv", chunk_rows=1000, executor=pool)
        assert pool.startup_s is not None  # the pool really started (workers warmed up)
    assert (tmp_path / "pool.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()


def _search(executor, X, y):
    from modelfab.automl.budget import Budget
    from modelfab.automl.search import run_search

    budget = Budget(120)  # not the limit: max_trials is, so the search is reproducible
    return run_search(X, y, task="classification", metric="roc_auc", budget=budget, n_classes=2, seed=5,
                      learners=("lgbm", "xgboost"), max_trials=4, ensemble=True, executor=executor)


def test_search_on_ray_equals_the_same_plan_run_locally(ray_ex):
    """Two searches (lgbm | xgboost) on 2 Ray workers give the model the same plan gives in this process."""
    from sklearn.datasets import make_classification

    from modelfab.execution.local import LocalExecutor

    X, y = make_classification(n_samples=700, n_features=10, n_informative=5, flip_y=0.1, random_state=3)
    here = _search(LocalExecutor(slots=2), X, y)
    there = _search(ray_ex, X, y)
    pids = {s["pid"] for s in there.execution["searches"]}
    assert len(pids) == 2 and os.getpid() not in pids  # really ran side by side on Ray workers
    assert {s["pid"] for s in here.execution["searches"]} == {os.getpid()}
    assert (there.learner_name, there.config, there.trials) == (here.learner_name, here.config, here.trials)
    strip = [{k: v for k, v in r.items() if k != "train_time_s"} for r in here.leaderboard]
    assert [{k: v for k, v in r.items() if k != "train_time_s"} for r in there.leaderboard] == strip
    assert {r["learner"] for r in strip} == {"lgbm", "xgboost"}
    assert there.best_score == max(r["score"] for r in strip)  # the better of the two searches won
    np.testing.assert_array_equal(there.learner.predict_raw(X), here.learner.predict_raw(X))


def test_cli_train_on_ray_keeps_the_budget_and_predict_uses_a_running_cluster(ray_ex, model_ws, tmp_path):
    """`train --executor ray` starts its own private Ray inside the budget; `predict --ray-address` joins ours."""
    import ray

    ws, model, data = model_ws
    budget = 20
    t0 = time.monotonic()
    out = cli_json("train", "factory", "--target", "quality", "--budget", str(budget), "--executor", "ray",
                   "--name", "onray", "-w", str(ws.root))
    wall = time.monotonic() - t0
    assert out["elapsed_s"] <= budget * 1.1 + 5, out
    assert wall <= budget * 1.1 + 5 + 5, wall  # + interpreter start and imports, before the budget clock
    notes = json.dumps(ws.model("onray").manifest["training"]["notes"])
    assert "Starting ray took" in notes or "ray workers were not ready" in notes, notes
    res = cli_json("predict", "factory", str(data), "-o", str(tmp_path / "p.csv"), "--executor", "ray",
                   "--ray-address", ray.get_runtime_context().gcs_address, "-w", str(ws.root))
    assert res["rows"] == 2000
    from modelfab.batch import predict_table_file

    predict_table_file(model, data, tmp_path / "local.csv")
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
