"""Executors without Ray: in-process and process pool; `modelfab train` works without Ray installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from modelfab.errors import InvalidInput
from modelfab.execution import get_executor
from modelfab.execution.local import LocalExecutor, ProcessExecutor, ordered_window


def _square_and_pid(shared, item):
    return item * item + shared, os.getpid()


def _sleepy(shared, seconds):
    time.sleep(seconds)
    return seconds


def test_ordered_window_bounds_work_in_flight_and_keeps_order():
    in_flight, peak = set(), [0]

    def submit(item):
        in_flight.add(item)
        peak[0] = max(peak[0], len(in_flight))
        return item

    def result(handle, timeout):
        in_flight.discard(handle)
        return handle * 10

    out = list(ordered_window(submit, result, lambda h: None, range(25), window=3, deadline=None))
    assert out == [i * 10 for i in range(25)]
    assert peak[0] == 3


def test_local_executor_runs_in_this_process_in_order():
    ex = get_executor("local")
    assert isinstance(ex, LocalExecutor) and ex.slots() == 1
    out = list(ex.map(_square_and_pid, 1, [3, 1, 2]))
    assert [v for v, _ in out] == [10, 2, 5]
    assert {pid for _, pid in out} == {os.getpid()}
    assert list(ex.map(_square_and_pid, 0, [1, 2], deadline=time.monotonic() - 1)) == [None, None]


def test_process_executor_uses_other_processes_keeps_order_and_meets_deadline():
    assert isinstance(get_executor("process", workers=2), ProcessExecutor)
    ex = ProcessExecutor(2, warm=())  # no LightGBM/FLAML imports: only the executor is under test
    assert ex.slots() == 2
    out = list(ex.map(_square_and_pid, 1, list(range(9)), window=3))
    assert [v for v, _ in out] == [i * i + 1 for i in range(9)]
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    t0 = time.monotonic()
    late = list(ex.map(_sleepy, None, [0.0, 30.0, 30.0], deadline=time.monotonic() + 4.0))
    assert late == [0.0, None, None]
    assert time.monotonic() - t0 < 10  # the overrunning tasks were stopped, not waited for
    assert [v for v, _ in ex.map(_square_and_pid, 0, [4])] == [16]  # and the pool comes back
    ex.close()


@pytest.mark.parametrize("args,pattern", [
    (("gpu",), "Executor must be one of local, process, ray"),
    (("process",), "--ray-address only applies"),
])
def test_get_executor_rejects(args, pattern):
    with pytest.raises(InvalidInput, match=pattern):
        get_executor(*args, ray_address="127.0.0.1:6379" if args == ("process",) else None)


_NO_RAY = textwrap.dedent("""
    import importlib.abc, sys

    class NoRay(importlib.abc.MetaPathFinder):  # as if Ray were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "ray" or name.startswith("ray."):
                raise ModuleNotFoundError("No module named 'ray'", name="ray")
            return None

    sys.meta_path.insert(0, NoRay())
    from modelfab.cli import main
    try:
        main()
    finally:
        print("RAY_IMPORTED", any(m == "ray" or m.startswith("ray.") for m in sys.modules), file=sys.stderr)
""")


def _cli_without_ray(*args):
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    env.pop("MODELFAB_HOME", None)
    return subprocess.run([sys.executable, "-c", _NO_RAY, *args], env=env, text=True, capture_output=True,
                          timeout=120)


def test_train_needs_no_ray_and_never_imports_it(tmp_path, factory_csv):
    from modelfab.workspace import Workspace

    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        ws.import_table(factory_csv, name="factory")
    proc = _cli_without_ray("train", "factory", "--target", "quality", "--budget", "15", "--learners", "lgbm",
                            "-w", str(root), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RAY_IMPORTED False" in proc.stderr
    assert '"version": 1' in proc.stdout
    # asking for Ray where it is not installed: one line saying what to do, no traceback
    proc = _cli_without_ray("predict", "factory", str(factory_csv), "-o", str(tmp_path / "p.csv"), "--executor", "ray",
                            "-w", str(root))
    assert proc.returncode == 2
    assert "needs Ray, which is not installed" in proc.stderr and "pip install" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "p.csv").exists()


def test_docs_python_examples_run():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "execution.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/execution.md", "exec"), {})  # noqa: S102 - our own documentation
