"""Where work runs: in this process (default), a local process pool, or a Ray cluster.

One narrow protocol, :class:`Executor`, used by the AutoML search (independent
searches run side by side) and by batch prediction (row chunks):

- ``slots()``: how many tasks can run at once; starts the backend on first use
  (so Ray start-up happens inside the caller's budget clock).
- ``map(fn, shared, items, window=, deadline=)``: runs ``fn(shared, item)`` for
  every item and yields the results **in order**. ``shared`` is sent to the
  workers once; at most ``window`` items are in flight (memory stays bounded);
  an item that has not finished by ``deadline`` (``time.monotonic()``) yields
  ``None`` and is cancelled. ``fn`` must be a module-level function.
- ``close()``: stops what this executor started (it never stops a Ray
  cluster it only connected to).

Nothing here imports Ray: ``modelfab.execution.ray_executor`` does, and only
when ``get_executor("ray")`` is started.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Protocol

from ..errors import InvalidInput

EXECUTORS = ("local", "process", "ray")


class Executor(Protocol):
    name: str

    def slots(self) -> int: ...

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any], *, window: int | None = None,
            deadline: float | None = None) -> Iterator[Any]: ...

    def describe(self) -> dict: ...

    def close(self) -> None: ...


def get_executor(name: "str | Executor | None" = "local", *, ray_address: str | None = None,
                 workers: int | None = None) -> Executor:
    """An executor by name: ``local`` (in-process), ``process`` (local pool) or ``ray``.

    ``ray_address`` (``ray`` only): ``auto``, ``HOST:PORT`` of a running cluster, or ``ray://HOST:10001``;
    without it (and without ``RAY_ADDRESS`` in the environment) a private Ray is started on 127.0.0.1.
    ``workers``: pool size for ``process``, CPUs of a locally started Ray (default: all cores).
    """
    if name is None:
        name = "local"
    if not isinstance(name, str):
        return name  # already an executor
    key = name.strip().lower()
    if key not in EXECUTORS:
        raise InvalidInput(f"Executor must be one of {', '.join(EXECUTORS)}; got {name!r}.",
                           hint="Use --executor local (default), process, or ray.")
    if ray_address and key != "ray":
        raise InvalidInput(f"--ray-address only applies to --executor ray; got --executor {key}.",
                           hint="Add --executor ray, or drop --ray-address.")
    if workers is not None and workers < 1:
        raise InvalidInput(f"Workers must be at least 1; got {workers}.")
    if key == "local":
        from .local import LocalExecutor

        return LocalExecutor()
    if key == "process":
        from .local import ProcessExecutor

        return ProcessExecutor(workers)
    from .ray_executor import RayExecutor

    return RayExecutor(address=ray_address, num_cpus=workers)


@contextmanager
def open_executor(executor: "str | Executor | None") -> Iterator["Executor | None"]:
    """``None``/``"local"``: None (the in-process path). A name: a new executor, closed on exit.
    An executor instance: used as is and left open (its owner closes it)."""
    if executor is None or (isinstance(executor, str) and executor.strip().lower() == "local"):
        yield None
        return
    if not isinstance(executor, str):
        yield executor
        return
    ex = get_executor(executor)
    try:
        yield ex
    finally:
        ex.close()


def require_local(executor: "str | Executor | None", what: str) -> None:
    name = executor if isinstance(executor, str) or executor is None else executor.name
    if name not in (None, "local"):
        raise InvalidInput(f"{what} runs in this process; --executor {name} is for tables.",
                           hint="Drop --executor (or use --executor local).")
