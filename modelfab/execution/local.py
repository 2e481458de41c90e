"""The in-process executor (default) and a local process pool."""

from __future__ import annotations

import collections
import multiprocessing
import os
import time
from typing import Any, Callable, Iterable, Iterator


def ordered_window(submit: Callable[[Any], Any], result: Callable[[Any, float | None], Any],
                   cancel: Callable[[Any], None], items: Iterable[Any], window: int,
                   deadline: float | None) -> Iterator[Any]:
    """Yield results in item order with at most ``window`` submitted and not yet yielded.

    ``result(handle, timeout)`` raises ``TimeoutError`` when the handle is not done in time; such an
    item (and every item not yet submitted once the deadline has passed) yields ``None``.
    """
    pending: collections.deque = collections.deque()
    it = iter(items)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < max(1, window):
                try:
                    item = next(it)
                except StopIteration:
                    exhausted = True
                    break
                late = deadline is not None and time.monotonic() >= deadline
                pending.append(None if late else submit(item))
            if not pending:
                return
            handle = pending.popleft()
            if handle is None:
                yield None
                continue
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                yield result(handle, timeout)
            except TimeoutError:
                cancel(handle)
                yield None
    finally:
        for handle in pending:
            if handle is not None:
                cancel(handle)


class LocalExecutor:
    """Runs everything in this process, one item after another.

    ``slots`` > 1 only makes callers plan that many independent tasks (and run them here in turn): it
    reproduces on one machine exactly what a parallel run computes.
    """

    name = "local"

    def __init__(self, slots: int = 1) -> None:
        self._slots = max(1, int(slots))

    def slots(self) -> int:
        return self._slots

    def map(self, fn, shared, items, *, window=None, deadline=None):
        for item in items:
            if deadline is not None and time.monotonic() >= deadline:
                yield None
                continue
            yield fn(shared, item)

    def describe(self) -> dict:
        return {"executor": "local", "slots": self._slots}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


WARM_MODULES = ("numpy", "pandas", "sklearn.ensemble", "lightgbm", "xgboost", "flaml", "modelfab.predictor",
                "modelfab.execution.search", "modelfab.execution.batch")


def warm_up(modules: tuple[str, ...] = WARM_MODULES, _item=None) -> int:
    """Import what tasks need, so that a worker's first task does not pay for it (start-up is timed)."""
    import importlib

    for name in modules or ():
        try:
            importlib.import_module(name)
        except ImportError:  # an optional piece: the task that needs it will say so
            pass
    return os.getpid()


def _call(fn, shared, item):
    return fn(shared, item)


class ProcessExecutor:
    """A pool of local worker processes (``spawn``: no state forked from threads).

    The pool starts on the first ``slots()``/``map`` and its workers import NumPy, pandas, LightGBM,
    XGBoost and FLAML right away (``startup_s``), so a caller that starts it inside its budget has
    the real time left afterwards. ``shared`` travels with every task (pickled between our own
    processes); workers cache what they build from it (e.g. the loaded model).
    """

    name = "process"

    def __init__(self, workers: int | None = None, warm: tuple[str, ...] = WARM_MODULES) -> None:
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.warm = tuple(warm)
        self.startup_s: float | None = None
        self._pool = None

    def start(self, timeout: float | None = None):
        """Start the pool and wait until every worker is warm; None (pool stopped) if that takes longer
        than ``timeout`` seconds."""
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor, wait

            t0 = time.monotonic()
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=warm_up, initargs=(self.warm,))
            futures = [self._pool.submit(warm_up, ()) for _ in range(self.workers)]  # every worker up and warm
            _, not_done = wait(futures, timeout=timeout)
            if not_done:
                self._stop()
                return None
            self.startup_s = time.monotonic() - t0
        return self._pool

    def _stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)

    def slots(self) -> int:
        return self.workers

    def map(self, fn, shared, items, *, window=None, deadline=None):
        pool = self.start()
        timed_out = []

        def cancel(fut) -> None:
            if not fut.cancel():
                timed_out.append(fut)

        try:
            yield from ordered_window(lambda item: pool.submit(_call, fn, shared, item),
                                      lambda fut, timeout: fut.result(timeout), cancel, items,
                                      window or 2 * self.workers, deadline)
        finally:
            if timed_out:  # a task that overran the deadline must not hold the caller: stop the pool
                self._stop()

    def describe(self) -> dict:
        return {"executor": "process", "slots": self.workers,
                "startup_s": None if self.startup_s is None else round(self.startup_s, 3)}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
